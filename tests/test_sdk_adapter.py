"""The SDK internals the runtime uses (handlers/sdk_adapter.py), checked against the installed `mcp`.

When one of these fails after an SDK upgrade, its message names the internal that moved; look for
a public replacement first, and change only handlers/sdk_adapter.py.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from mcp.server.lowlevel.server import Server
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.message import ServerMessageMetadata
from mcp.shared.transport_context import TransportContext
from mcp_types import JSONRPCResponse

from handlers import sdk_adapter

if TYPE_CHECKING:
    from starlette.types import Message


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


def test_a_sink_on_the_single_exchange_context_receives_each_notification_as_an_sse_event() -> None:
    async def notified() -> bytes:
        sink, events = anyio.create_memory_object_stream[bytes](1)
        context = sdk_adapter.single_exchange_context(
            TransportContext(kind="streamable-http", can_send_request=False),
            7,
            ServerMessageMetadata(request_context=None),
            "token-1",
            sink=sink,
        )
        await context.progress(1, 2)
        return await events.receive()

    event = anyio.run(notified)
    assert event.startswith(b"event: message\r\ndata: "), "the context's sink no longer gets SSE frames"
    message = json.loads(event.split(b"data: ", 1)[1])
    assert message["method"] == "notifications/progress"
    assert message["params"] == {"progressToken": "token-1", "progress": 1, "total": 2}


def test_event_stream_is_how_the_sdk_frames_its_2026_07_28_stream() -> None:
    stream = sdk_adapter.event_stream()
    assert (b"content-type", b"text/event-stream") in stream.headers
    assert stream.ping_seconds > 0
    frame = stream.event(JSONRPCResponse(jsonrpc="2.0", id=7, result={}))
    assert frame == b'event: message\r\ndata: {"jsonrpc":"2.0","id":7,"result":{}}\r\n\r\n'


@pytest.mark.parametrize(
    ("json_response", "accept", "expected"),
    [
        (False, "application/json, text/event-stream", "text/event-stream"),
        (True, "application/json", "application/json"),
    ],
)
def test_serve_modern_request_answers_as_json_response_says(json_response: bool, accept: str, expected: str) -> None:
    server = _server()

    @server.tool()
    async def tell(ctx: Context) -> str:
        await ctx.report_progress(1, 1)
        return "told"

    server.streamable_http_app(
        stateless_http=True,
        json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    manager = server.session_manager
    params = {"name": "tell", "arguments": {}, "_meta": {"progressToken": 1, **_envelope()}}
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}).encode()
    headers = {
        "content-type": "application/json",
        "accept": accept,
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "tools/call",
        "mcp-name": "tell",
    }
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/mcp",
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
    }
    sent: list[Message] = []

    async def served() -> None:
        requested = False

        async def receive() -> Message:
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": body, "more_body": False}
            await anyio.sleep_forever()
            raise AssertionError

        async def send(message: Message) -> None:
            sent.append(message)

        async with manager.run():
            await sdk_adapter.serve_modern_request(manager, scope, receive, send, json_response=json_response)

    anyio.run(served)
    start = dict(sent[0]["headers"])
    assert start[b"content-type"].decode().startswith(expected), "handle_modern_request's json_response changed"
    assert b'"told"' in b"".join(m.get("body", b"") for m in sent[1:])


def _envelope() -> dict[str, Any]:
    return {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "pytest", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
