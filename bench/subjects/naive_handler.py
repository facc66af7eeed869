"""The naive baseline: the official SDK's `MCPServer` behind Mangum, everything rebuilt on every call.

This is the workaround posted for python-sdk #3121: Mangum runs the ASGI lifespan on each
invocation and the SDK's session manager can be `run()` only once, so the server, its
Starlette app and the Mangum adapter are created per call. Stateless JSON responses are the
only mode that works behind API Gateway; the SDK's Host check is turned off because it only
knows localhost names by default (the same setting the kit uses, with its own guard instead).
"""

from __future__ import annotations

from typing import Any

from mangum import Mangum
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings


def create_mcp() -> MCPServer:
    mcp = MCPServer("bench-naive", version="1.0.0")

    @mcp.tool()
    def add(a: float, b: float) -> float:
        """Add two numbers and return the sum."""
        return a + b

    @mcp.tool()
    def echo(text: str, repeat: int = 1) -> str:
        """Return `text`, repeated `repeat` times, separated by spaces."""
        return " ".join([text] * repeat)

    return mcp


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    app = create_mcp().streamable_http_app(
        stateless_http=True,
        json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    response: dict[str, Any] = Mangum(app, lifespan="auto")(event, context)
    return response
