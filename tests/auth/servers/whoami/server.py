"""A test server whose one tool reports who called it, as the SDK's request context tells it."""

from __future__ import annotations

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import MCPServer

mcp = MCPServer("whoami", version="1.0.0")


@mcp.tool()
def whoami() -> dict[str, object]:
    """The caller's subject, email, client and scopes (or 'anonymous' without a token)."""
    token = get_access_token()
    if token is None:
        return {"sub": "anonymous"}
    claims = token.claims or {}
    return {"sub": token.subject, "email": claims.get("email"), "client_id": token.client_id, "scopes": token.scopes}
