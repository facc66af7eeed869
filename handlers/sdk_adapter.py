"""Every place the runtime reaches into the MCP SDK's private modules or attributes, in one file.

The SDK (`mcp` 2.x) has no public API for these yet. Each accessor raises `SdkChangedError`
naming what moved, so an SDK upgrade that changes one fails `tests/test_sdk_adapter.py` (and
the instance's init) with a sentence instead of an AttributeError deep in a request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp.server.lowlevel.server import Server
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.prompts.base import Prompt
    from mcp.server.mcpserver.tools.base import Tool
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
    from mcp.shared.message import MessageMetadata
    from mcp.shared.transport_context import TransportContext
    from mcp_types import ProgressToken, RequestId


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
) -> Any:
    """The SDK's dispatch context for one HTTP request and its one JSON answer (no back-channel)."""
    try:
        from mcp.server._streamable_http_modern import _SingleExchangeDispatchContext
    except ImportError:
        raise SdkChangedError("mcp.server._streamable_http_modern._SingleExchangeDispatchContext is gone") from None
    return _SingleExchangeDispatchContext(
        transport=transport,
        request_id=request_id,
        message_metadata=message_metadata,
        progress_token=progress_token,
    )
