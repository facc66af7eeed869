"""The same two tools as a stdio MCP server, for the `run-mcp-servers-with-aws-lambda` peer.

That peer's virtualenv resolves the SDK to 1.x, where the server class is `FastMCP`; type-checked
here against the kit's 2.x SDK, which renamed it `MCPServer`.
"""

from __future__ import annotations

from typing import Any

try:
    from mcp.server.fastmcp import FastMCP as Server  # type: ignore[attr-defined]
except ImportError:  # the 2.x SDK
    from mcp.server.mcpserver import MCPServer as Server

mcp: Any = Server("bench-stdio")


@mcp.tool()  # type: ignore[untyped-decorator]
def add(a: float, b: float) -> float:
    """Add two numbers and return the sum."""
    return a + b


@mcp.tool()  # type: ignore[untyped-decorator]
def echo(text: str, repeat: int = 1) -> str:
    """Return `text`, repeated `repeat` times, separated by spaces."""
    return " ".join([text] * repeat)


if __name__ == "__main__":
    mcp.run()
