"""A test server with a sensitive tool argument: the convention the kit documents.

A tool argument is marked sensitive with `Field(json_schema_extra={"sensitive": True})` (it then
shows as `"sensitive": true` in the tool's input schema) or typed `SecretStr`. The kit never logs
tool arguments at all; the mark is for server authors' own logging and for reviewers.
"""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from pydantic import Field

mcp = MCPServer("vault", version="1.0.0")


@mcp.tool()
def store_secret(
    label: str,
    secret: Annotated[str, Field(json_schema_extra={"sensitive": True}, description="Never logged.")],
) -> str:
    """Pretend to store a secret; answers with its length only."""
    return f"stored {label} ({len(secret)} characters)"


@mcp.tool()
def add(a: float, b: float) -> float:
    """Add two numbers (the corpus's known-good call)."""
    return a + b
