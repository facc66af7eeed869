"""The FastAPI application for one MCP server: `/mcp` now, the OAuth routes when auth is on."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from starlette.routing import Route

from handlers.errors import INTERNAL_ERROR, jsonrpc_error
from handlers.mcp_transport import McpEndpoint, McpTransport
from handlers.request_guard import RequestGuard
from handlers.server_loader import load_server
from handlers.sessions import SessionStore
from handlers.store import Table

if TYPE_CHECKING:
    from starlette.responses import Response

    from handlers.auth.server import OAuthServer
    from handlers.settings import Settings


@dataclass(frozen=True)
class Runtime:
    """Everything one Lambda instance builds once, during init."""

    app: FastAPI
    transport: McpTransport
    table: Table
    oauth: OAuthServer | None = None


def create_runtime(settings: Settings) -> Runtime:
    server = load_server(settings.server)
    # MCPServer() configures the `mcp` logger at INFO; in Lambda every line is billed CloudWatch ingestion.
    logging.getLogger("mcp").setLevel(settings.sdk_log_level)
    table = Table(settings.table_name)
    transport = McpTransport(server, settings.max_body_bytes)
    oauth: OAuthServer | None = None
    if settings.auth_mode == "oauth":
        from handlers.auth.server import OAuthServer

        oauth = OAuthServer.from_settings(settings, table)
    endpoint = McpEndpoint(
        transport,
        SessionStore(table, settings.session_ttl_seconds),
        RequestGuard(settings.allowed_hosts, settings.allowed_origins),
        settings.max_body_bytes,
        gate=oauth.gate if oauth is not None else None,
    )
    app = FastAPI(title=server.name, docs_url=None, redoc_url=None, openapi_url=None)
    # No `methods=`: the endpoint answers other methods itself, with the MCP-specific 405 and `Allow`.
    app.router.routes.append(Route("/mcp", endpoint=endpoint))
    if oauth is not None:
        app.router.routes.extend(oauth.routes())

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # The cause goes to the logs (with the request id); the caller gets no internals.
        logging.getLogger("handlers").exception("unhandled error on %s %s", request.method, request.url.path)
        return jsonrpc_error(500, INTERNAL_ERROR, "Internal server error; the details are in the server's logs.")

    return Runtime(app=app, transport=transport, table=table, oauth=oauth)
