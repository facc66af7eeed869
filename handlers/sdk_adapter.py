"""Every place the runtime reaches into the MCP SDK's private modules or attributes, in one file.

The SDK (`mcp` 2.x) has no public API for these yet. Each accessor raises `SdkChangedError`
naming what moved, so an SDK upgrade that changes one fails `tests/test_sdk_adapter.py` (and
the instance's init) with a sentence instead of an AttributeError deep in a request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from anyio.streams.memory import MemoryObjectSendStream
    from mcp.server.lowlevel.server import Server
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.prompts.base import Prompt
    from mcp.server.mcpserver.tools.base import Tool
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
    from mcp.shared.message import MessageMetadata
    from mcp.shared.transport_context import TransportContext
    from mcp_types import JSONRPCError, JSONRPCNotification, JSONRPCResponse, ProgressToken, RequestId
    from starlette.types import Receive, Scope, Send


class SdkChangedError(RuntimeError):
    """The installed `mcp` SDK no longer has an internal the kit relies on."""

    def __init__(self, what: str) -> None:
        from importlib.metadata import version

        super().__init__(f"mcp {version('mcp')}: {what} (handlers/sdk_adapter.py needs updating)")


def _attribute(owner: object, name: str, what: str) -> Any:
    try:
        return getattr(owner, name)
    except AttributeError:
        raise SdkChangedError(f"{type(owner).__name__}.{name} is gone; it held {what}") from None


def lowlevel_server(server: MCPServer) -> Server[Any]:
    """The low-level `Server` behind an `MCPServer`, to register request handlers on."""
    lowlevel: Server[Any] = _attribute(server, "_lowlevel_server", "the low-level Server")
    return lowlevel


def registered_tools(server: MCPServer) -> list[Tool]:
    """The `MCPServer`'s tool objects (with their Python functions), not the wire listing."""
    tools: list[Tool] = _attribute(server, "_tool_manager", "the tool registry").list_tools()
    return tools


def registered_prompts(server: MCPServer) -> list[Prompt]:
    prompts: list[Prompt] = _attribute(server, "_prompt_manager", "the prompt registry").list_prompts()
    return prompts


def lifespan_state(manager: StreamableHTTPSessionManager) -> Any:
    """What the session manager's `run()` entered (the server's lifespan), for `serve_one`."""
    return _attribute(manager, "_lifespan_state", "the lifespan state entered by run()")


def single_exchange_context(
    transport: TransportContext,
    request_id: RequestId,
    message_metadata: MessageMetadata,
    progress_token: ProgressToken | None,
    sink: MemoryObjectSendStream[bytes] | None = None,
) -> Any:
    """The SDK's dispatch context for one HTTP request (no back-channel).

    Without a `sink` the context drops the notifications a handler sends (one JSON answer); with
    one, each arrives there as an SSE `event: message` frame, in the order the handler sent them.
    """
    try:
        from mcp.server._streamable_http_modern import _SingleExchangeDispatchContext
    except ImportError:
        raise SdkChangedError("mcp.server._streamable_http_modern._SingleExchangeDispatchContext is gone") from None
    return _SingleExchangeDispatchContext(
        transport=transport,
        request_id=request_id,
        message_metadata=message_metadata,
        progress_token=progress_token,
        sink=sink,
    )


def serve_modern_request(
    manager: StreamableHTTPSessionManager, scope: Scope, receive: Receive, send: Send, *, json_response: bool
) -> Awaitable[None]:
    """The SDK's 2026-07-28 entry, with the JSON-or-event-stream choice made per request.

    The session manager passes its own `json_response` (fixed when it is built); the streaming front
    wants the deferred event stream for a client that accepts one, and JSON for one that does not.
    """
    try:
        from mcp.server._streamable_http_modern import handle_modern_request
    except ImportError:
        raise SdkChangedError("mcp.server._streamable_http_modern.handle_modern_request is gone") from None
    return handle_modern_request(
        manager.app, manager.security_settings, json_response, lifespan_state(manager), scope, receive, send
    )


@dataclass(frozen=True)
class EventStream:
    """How the SDK's 2026-07-28 entry writes an event stream, so the handshake path writes the same."""

    headers: list[tuple[bytes, bytes]]
    ping_seconds: float
    event: Callable[[JSONRPCResponse | JSONRPCError | JSONRPCNotification], bytes]
    # The SDK writes its keepalive inline; a comment line, which SSE clients skip.
    ping: bytes = b": ping\r\n\r\n"


def event_stream() -> EventStream:
    try:
        from mcp.server._streamable_http_modern import _SSE_HEADERS, _SSE_PING_INTERVAL, _sse_event
    except ImportError:
        raise SdkChangedError(
            "mcp.server._streamable_http_modern no longer has _SSE_HEADERS, _SSE_PING_INTERVAL and _sse_event"
        ) from None
    return EventStream(headers=list(_SSE_HEADERS), ping_seconds=_SSE_PING_INTERVAL, event=_sse_event)
