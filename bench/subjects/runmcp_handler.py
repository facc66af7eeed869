"""`run-mcp-servers-with-aws-lambda`, deployed the way its README's API Gateway example does.

The README's Python example wraps a stdio server module with `StdioServerAdapterRequestHandler`;
it uses `APIGatewayProxyEventHandler` for REST APIs, and the package's
`APIGatewayProxyEventV2Handler` is the same thing for HTTP API (v2) events, which is what the
benchmark sends. Every request starts the stdio server as a child process.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from mcp.client.stdio import StdioServerParameters
from mcp_lambda import (  # type: ignore[import-not-found]
    APIGatewayProxyEventV2Handler,
    StdioServerAdapterRequestHandler,
)

server_params = StdioServerParameters(
    command=sys.executable,
    args=[str(Path(__file__).with_name("stdio_server.py"))],
)

request_handler = StdioServerAdapterRequestHandler(server_params)
event_handler = APIGatewayProxyEventV2Handler(request_handler)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    response: dict[str, Any] = event_handler.handle(event, context)
    return response
