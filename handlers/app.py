"""The ASGI application for one MCP server: `/mcp`, plus the OAuth routes when auth is on.

A plain Starlette app (the SDK already depends on Starlette): the kit uses nothing of FastAPI's
beyond routing, and importing FastAPI cost ~145 ms on every cold start (bench/README.md).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.routing import Route

from handlers.errors import INTERNAL_ERROR, jsonrpc_error
from handlers.mcp_transport import McpEndpoint, McpTransport
from handlers.request_guard import RequestGuard
from handlers.request_state import install as install_request_state
from handlers.server_loader import load_server
from handlers.sessions import SessionStore
from handlers.store import Table

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from mcp.server.mcpserver import MCPServer
    from starlette.requests import Request
    from starlette.responses import Response

    from handlers.auth.scopes import Kind
    from handlers.auth.server import OAuthServer
    from handlers.settings import Settings


@dataclass(frozen=True)
class Runtime:
    """Everything one Lambda instance builds once, during init."""

    app: Starlette
    transport: McpTransport
    table: Table
    oauth: OAuthServer | None = None


def create_runtime(settings: Settings) -> Runtime:
    server = load_server(settings.server)
    install_request_state(server, settings)
    # MCPServer() configures the `mcp` logger at INFO; in Lambda every line is billed CloudWatch ingestion.
    logging.getLogger("mcp").setLevel(settings.sdk_log_level)
    table = Table(settings.table_name)
    transport = McpTransport(server, settings.max_body_bytes, stream_responses=settings.stream_responses)
    oauth: OAuthServer | None = None
    if settings.auth_mode == "oauth":
        from handlers.auth.server import OAuthServer

        _check_permissions(server, settings)
        oauth = OAuthServer.from_settings(settings, table, functools.partial(_catalog, server))
    endpoint = McpEndpoint(
        transport,
        SessionStore(
            table,
            settings.session_ttl_seconds,
            settings.session_cache_seconds,
            key=settings.session_key.get_secret_value().encode() if settings.session_key else None,
        ),
        RequestGuard(settings.allowed_hosts, settings.allowed_origins),
        settings.max_body_bytes,
        gate=oauth.gate if oauth is not None else None,
    )
    # No `methods=`: the endpoint answers other methods itself, with the MCP-specific 405 and `Allow`.
    routes = [Route("/mcp", endpoint=endpoint), *(oauth.routes() if oauth is not None else [])]
    app = Starlette(routes=routes, exception_handlers={Exception: _unexpected})
    _run_sync_tools_inline(server)
    return Runtime(app=app, transport=transport, table=table, oauth=oauth)


def _check_permissions(server: MCPServer, settings: Settings) -> None:
    from handlers.sdk_adapter import registered_prompts, registered_tools
    from handlers.server_loader import ServerLoadError

    unknown = settings.permissions.unknown_names(
        {t.name for t in registered_tools(server)}, {p.name for p in registered_prompts(server)}
    )
    if unknown:
        raise ServerLoadError(
            f"mcpkit.toml [permissions] lists what {settings.server} does not define: {', '.join(unknown)}"
        )


async def _catalog(server: MCPServer) -> dict[Kind, list[str]]:
    """Names of what the server offers, for the consent page."""
    return {
        "tool": [t.name for t in await server.list_tools()],
        "prompt": [p.name for p in await server.list_prompts()],
        "resource": [str(r.uri) for r in await server.list_resources()]
        + [t.uri_template for t in await server.list_resource_templates()],
    }


async def _unexpected(request: Request, exc: Exception) -> Response:
    # The cause goes to the logs (with the request id); the caller gets no internals.
    logging.getLogger("handlers").exception("unhandled error on %s %s", request.method, request.url.path)
    return jsonrpc_error(500, INTERNAL_ERROR, "Internal server error; the details are in the server's logs.")


def _run_sync_tools_inline(server: MCPServer) -> None:
    """Call plain `def` tools on the event loop instead of handing each call to a worker thread.

    A Lambda instance serves one request at a time, so blocking the loop costs nothing, while the
    SDK's `anyio.to_thread` hand-off costs ~0.4 ms per call here: anyio's idle workers belong to the
    root task, and Mangum runs every invocation as a new one, so each call starts a thread
    (bench/README.md, proposal 1).
    """
    from handlers.sdk_adapter import registered_tools

    for tool in registered_tools(server):
        if not tool.is_async:
            tool.fn = _as_coroutine_function(tool.fn)
            tool.is_async = True


def _as_coroutine_function(fn: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(fn)
    async def call(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return call
