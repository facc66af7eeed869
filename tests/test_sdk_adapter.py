"""The SDK internals the runtime uses (handlers/sdk_adapter.py), checked against the installed `mcp`.

When one of these fails after an SDK upgrade, its message names the internal that moved; look for
a public replacement first, and change only handlers/sdk_adapter.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from mcp.server.lowlevel.server import Server
from mcp.server.mcpserver import MCPServer
from mcp.shared.message import ServerMessageMetadata
from mcp.shared.transport_context import TransportContext

from handlers import sdk_adapter


def _server() -> MCPServer:
    server = MCPServer("adapter-probe")

    @server.tool()
    def shout(text: str) -> str:
        return text.upper()

    @server.prompt()
    def greet() -> str:
        return "hello"

    return server


def test_lowlevel_server_is_the_one_that_dispatches_requests() -> None:
    lowlevel = sdk_adapter.lowlevel_server(_server())
    assert isinstance(lowlevel, Server), "MCPServer._lowlevel_server is no longer the low-level Server"
    assert lowlevel.get_request_handler("tools/call") is not None


def test_registered_tools_are_the_objects_holding_the_python_functions() -> None:
    (tool,) = sdk_adapter.registered_tools(_server())
    assert tool.name == "shout"
    assert callable(tool.fn), "Tool.fn changed (handlers/app.py rewrites it)"
    assert tool.is_async is False, "Tool.is_async changed (handlers/app.py rewrites it)"
    assert [p.name for p in sdk_adapter.registered_prompts(_server())] == ["greet"]


def test_lifespan_state_is_what_the_session_manager_entered() -> None:
    server = _server()
    server.streamable_http_app(stateless_http=True, json_response=True)
    manager = server.session_manager

    async def entered() -> Any:
        async with manager.run():
            return sdk_adapter.lifespan_state(manager)

    state = asyncio.run(entered())
    assert state is not None, "StreamableHTTPSessionManager._lifespan_state no longer holds the lifespan state"


def test_single_exchange_context_has_no_back_channel() -> None:
    context = sdk_adapter.single_exchange_context(
        TransportContext(kind="streamable-http", can_send_request=False),
        7,
        ServerMessageMetadata(request_context=None),
        None,
    )
    assert context.request_id == 7
    assert context.can_send_request is False


def test_a_moved_internal_is_named_in_the_error() -> None:
    with pytest.raises(sdk_adapter.SdkChangedError, match=r"MCPServer\._lowlevel_server is gone"):
        sdk_adapter.lowlevel_server(object.__new__(MCPServer))
