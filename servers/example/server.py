"""The kit's example server: two tools, a resource and a prompt.

Any module that defines an `MCPServer` named `mcp` can be served; this one shows each kind of
capability once, with the typing and docstrings the SDK turns into schemas and descriptions.
"""

from __future__ import annotations

from datetime import UTC, datetime

from mcp.server.mcpserver import MCPServer

mcp = MCPServer(
    "example",
    version="1.0.0",
    instructions="A small demonstration server: arithmetic, echo, the server time and a review prompt.",
)


@mcp.tool()
def add(a: float, b: float) -> float:
    """Add two numbers and return the sum."""
    return a + b


@mcp.tool()
def echo(text: str, repeat: int = 1) -> str:
    """Return `text`, repeated `repeat` times (1 to 10), separated by spaces."""
    if not 1 <= repeat <= 10:
        raise ValueError("repeat must be between 1 and 10")
    return " ".join([text] * repeat)


@mcp.resource("example://server-time", mime_type="text/plain")
def server_time() -> str:
    """The server's current time in UTC, ISO 8601."""
    return datetime.now(UTC).isoformat()


@mcp.prompt()
def review_code(code: str, language: str = "python") -> str:
    """Ask the model for a careful review of a piece of code."""
    return (
        f"Please review this {language} code. Point out bugs first, then risky patterns, "
        f"then style, each with a concrete fix:\n\n{code}"
    )
