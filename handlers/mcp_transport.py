"""The `/mcp` endpoint: sessions and request checks around the SDK's stateless Streamable HTTP.

The SDK serves each POST statelessly (JSON responses, no in-memory session), so any Lambda
instance can answer any request. What the handshake revisions expect of a session — an
`Mcp-Session-Id` from `initialize`, 404 once it has ended, `DELETE` to end it — is kept in
DynamoDB here. 2026-07-28 requests carry everything in each request and go straight through.
Behind a streaming front (`stream_responses`), a request whose handler sends progress or log
notifications is answered as an event stream while it runs; every other one as JSON.

The SDK's session manager must be `run()` exactly once, but Mangum runs the ASGI lifespan on
every invocation (python-sdk #3121). So the lifespan is off in Mangum and `McpTransport.start()`
enters `run()` once per instance, in a task that lives on the instance's event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

from mcp_types import DEFAULT_NEGOTIATED_VERSION, UNSUPPORTED_PROTOCOL_VERSION
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS, SUPPORTED_PROTOCOL_VERSIONS
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response

from handlers.asgi import read_body, replay_body
from handlers.auth.scopes import LISTS
from handlers.errors import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    PARSE_ERROR,
    jsonrpc_error,
    service_unavailable,
)
from handlers.store import StoreUnavailableError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
    from mcp.server.context import ServerRequestContext
    from mcp.server.mcpserver import MCPServer
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
    from mcp_types import JSONRPCError, JSONRPCResponse, SubscriptionsListenRequestParams, SubscriptionsListenResult
    from starlette.types import Message, Receive, Scope, Send

    from handlers.auth.resource import BearerGate
    from handlers.auth.scopes import ScopePolicy
    from handlers.request_guard import RequestGuard
    from handlers.sessions import SessionStore

SESSION_HEADER = "mcp-session-id"
VERSION_HEADER = "mcp-protocol-version"
ALLOWED_METHODS = "POST, DELETE"


class McpTransport:
    """Owns the SDK session manager for the life of the instance."""

    def __init__(self, server: MCPServer, max_body_bytes: int, *, stream_responses: bool = False) -> None:
        from mcp.server.transport_security import TransportSecuritySettings
        from mcp_types import SubscriptionsListenRequestParams

        from handlers.sdk_adapter import lowlevel_server

        # The SDK's Host/Origin guard only knows fixed lists; RequestGuard does that job with the
        # request context, so the SDK's copy is off rather than configured twice.
        server.streamable_http_app(
            stateless_http=True,
            json_response=True,
            max_request_body_size=max_body_bytes,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        self._manager: StreamableHTTPSessionManager = server.session_manager
        lowlevel_server(server).add_request_handler(
            "subscriptions/listen", SubscriptionsListenRequestParams, end_listen_at_once
        )
        self._stream_responses = stream_responses
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        ready = asyncio.Event()

        async def hold() -> None:
            async with self._manager.run():
                ready.set()
                await self._stop.wait()

        self._task = asyncio.get_running_loop().create_task(hold(), name="mcp-session-manager")
        waiter = asyncio.ensure_future(ready.wait())
        await asyncio.wait({self._task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if not ready.is_set():
            waiter.cancel()
            self._task.result()  # re-raise why the manager could not start
            raise RuntimeError("the MCP session manager stopped during start-up")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._manager.handle_request(scope, receive, send)

    def streams(self, scope: Scope, message: dict[str, Any]) -> bool:
        """Whether `message` may be answered as an event stream: the front streams and the client accepts one.

        A list never streams: its JSON body is what `_only_permitted` filters by the token's scopes.
        """
        return self._stream_responses and message.get("method") not in LISTS and _accepts(scope)[1]

    async def modern(self, scope: Scope, receive: Receive, send: Send, message: dict[str, Any]) -> None:
        """Serve one 2026-07-28 request through the SDK's own entry.

        On a streaming front the SDK defers: JSON if the handler ends without sending a notification,
        an event stream from the first one on. It also commits the stream after 15 s of silence, to
        ping every 15 s: a tool may now run up to 900 s, and a client's read timeout (30 s in the
        official Python client) would otherwise give up on a quiet one long before its JSON came.
        """
        if self.streams(scope, message):
            from handlers.sdk_adapter import serve_modern_request

            await serve_modern_request(self._manager, scope, receive, send, json_response=False)
            return
        await self._manager.handle_request(scope, receive, send)

    async def answer(self, scope: Scope, receive: Receive, send: Send, request: dict[str, Any], version: str) -> None:
        """Answer one handshake-revision request (not `initialize`) as the SDK's stateless JSON path would.

        That path builds a transport, a dispatcher and a task for every POST, which cost more than
        the whole 2026-07-28 path (bench/README.md). Both end in the same kernel (`serve_one`, a
        `ServerRunner` on a born-ready `Connection`), so this calls it directly, the way the SDK's
        own 2026-07-28 entry does, with the negotiated version instead of an envelope. The answer is
        the same JSON-RPC body with status 200, except that an unexpected exception is an
        INTERNAL_ERROR without its text (the legacy dispatcher sends `str(exc)` with code 0).
        On a streaming front it defers as the 2026-07-28 entry does (`_EventSink`).
        """
        from mcp.server.connection import Connection
        from mcp.server.runner import modern_error_data, serve_one
        from mcp.shared.jsonrpc_dispatcher import progress_token_from_params
        from mcp.shared.message import ServerMessageMetadata
        from mcp.shared.transport_context import TransportContext
        from mcp_types import JSONRPCError, JSONRPCResponse
        from starlette.requests import Request

        from handlers.sdk_adapter import lifespan_state, single_exchange_context

        request_id, params = request["id"], request.get("params")
        events = _EventSink() if self.streams(scope, request) else None
        context = single_exchange_context(
            transport=TransportContext(kind="streamable-http", can_send_request=False),
            request_id=request_id,
            message_metadata=ServerMessageMetadata(request_context=Request(scope, receive)),
            progress_token=progress_token_from_params(params),
            sink=None if events is None else events.sink,
        )

        async def reply() -> JSONRPCResponse | JSONRPCError:
            try:
                result = await serve_one(
                    self._manager.app,
                    context,
                    request["method"],
                    params,
                    connection=Connection.from_envelope(version, None, None),
                    lifespan_state=lifespan_state(self._manager),
                )
            except Exception as exc:  # noqa: BLE001 - the wire boundary: every failure becomes a JSON-RPC error
                return JSONRPCError(jsonrpc="2.0", id=request_id, error=modern_error_data(exc))
            return JSONRPCResponse(jsonrpc="2.0", id=request_id, result=result)

        if events is None:
            await _json(await reply())(scope, receive, send)
            return
        await events.json_unless_notified(reply, scope, receive, send)


def _json(reply: JSONRPCResponse | JSONRPCError) -> Response:
    return Response(reply.model_dump_json(by_alias=True, exclude_unset=True), media_type="application/json")


class _EventSink:
    """What the handshake path needs of the SDK's deferral, which lives inline in its 2026-07-28 entry.

    JSON if the handler ends without sending a notification; from the first one on, an event stream
    carrying each notification as it is sent and then the answer. After `ping_seconds` of silence
    the stream is committed anyway and pinged, for the reason `McpTransport.modern` gives.
    """

    def __init__(self) -> None:
        import anyio

        from handlers.sdk_adapter import event_stream

        self.sink, self._events = anyio.create_memory_object_stream[bytes](0)
        self._format = event_stream()

    async def json_unless_notified(
        self,
        reply: Callable[[], Awaitable[JSONRPCResponse | JSONRPCError]],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        import anyio

        answer: list[JSONRPCResponse | JSONRPCError] = []

        async def run() -> None:
            async with self.sink:
                answer.append(await reply())

        async def end_on_disconnect(group: anyio.CancelScope) -> None:
            # A client that goes away cancels the handler, as on the SDK's event-stream path.
            while (await receive())["type"] != "http.disconnect":
                pass
            group.cancel()

        committed = False
        async with self._events, anyio.create_task_group() as group:
            group.start_soon(run)
            group.start_soon(end_on_disconnect, group.cancel_scope)
            while True:
                event: bytes | None = None
                with anyio.move_on_after(self._format.ping_seconds) as waiting:
                    event = await anext(self._events, None)
                if event is None and not waiting.cancelled_caught:
                    break  # the handler has answered
                if not committed:
                    committed = True
                    await send({"type": "http.response.start", "status": 200, "headers": self._format.headers})
                await send({"type": "http.response.body", "body": event or self._format.ping, "more_body": True})
            if committed:
                await send({"type": "http.response.body", "body": self._format.event(answer[0]), "more_body": False})
            else:
                await _json(answer[0])(scope, receive, send)
            group.cancel_scope.cancel()


async def end_listen_at_once(
    ctx: ServerRequestContext[Any, Any], params: SubscriptionsListenRequestParams
) -> SubscriptionsListenResult:
    """`subscriptions/listen` on a buffered transport: acknowledge an empty filter, then end at once.

    A listen response is meant to stay open as an event stream, but API Gateway's HTTP API and
    Mangum deliver a response only when it is complete: the SDK's open-ended handler would hold
    the instance until the integration timeout and deliver nothing. No event can reach a client
    from here (nor from another instance), so the acknowledgment honours none of the requested
    notification types (the spec has the server omit what it does not support), and the empty
    `SubscriptionsListenResult` closes the subscription gracefully: both frames in one SSE body.
    """
    from mcp.shared.subscriptions import SUBSCRIPTION_ID_META_KEY
    from mcp_types import (
        SubscriptionFilter,
        SubscriptionsAcknowledgedNotification,
        SubscriptionsAcknowledgedNotificationParams,
        SubscriptionsListenResult,
    )

    meta: dict[str, Any] = {SUBSCRIPTION_ID_META_KEY: ctx.request_id}
    acknowledged = SubscriptionsAcknowledgedNotificationParams(notifications=SubscriptionFilter(), _meta=meta)
    await ctx.session.send_notification(
        SubscriptionsAcknowledgedNotification(params=acknowledged), related_request_id=ctx.request_id
    )
    return SubscriptionsListenResult(_meta=meta)


class McpEndpoint:
    """ASGI endpoint for `/mcp`: guard → bearer token (auth = "oauth") → session → SDK."""

    def __init__(
        self,
        transport: McpTransport,
        sessions: SessionStore,
        guard: RequestGuard,
        max_body_bytes: int,
        gate: BearerGate | None = None,
    ) -> None:
        self._transport = transport
        self._sessions = sessions
        self._guard = guard
        self._max_body = max_body_bytes
        self._gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        refusal = self._guard.check(headers, scope.get("aws.event"))
        if refusal is None and self._gate is not None:
            try:
                outcome = self._gate.authenticate(scope, headers)
            except StoreUnavailableError:
                outcome = service_unavailable()
            if isinstance(outcome, Response):
                refusal = outcome
            else:
                await self._as_user(outcome, scope, receive, send, headers)
                return
        if refusal is None:
            await self._serve(scope, receive, send, headers, None)
            return
        await refusal(scope, receive, send)

    async def _as_user(
        self, user: AuthenticatedUser, scope: Scope, receive: Receive, send: Send, headers: Headers
    ) -> None:
        """What the SDK's AuthenticationMiddleware + AuthContextMiddleware would set, so tools see the caller."""
        from mcp.server.auth.middleware.auth_context import auth_context_var
        from starlette.authentication import AuthCredentials

        scope["user"] = user
        scope["auth"] = AuthCredentials(user.scopes)
        token = auth_context_var.set(user)
        try:
            await self._serve(scope, receive, send, headers, user)
        finally:
            auth_context_var.reset(token)

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, headers: Headers, user: AuthenticatedUser | None
    ) -> None:
        refusal: Response
        method = scope["method"]
        try:
            if method == "POST":
                await self._post(scope, receive, send, headers, user)
                return
            if method == "DELETE":
                refusal = self._delete(headers, _owner(user))
            else:
                # No server-to-client SSE stream is offered (Lambda answers each POST with JSON);
                # the Streamable HTTP spec asks for 405 on GET in that case.
                refusal = jsonrpc_error(
                    405,
                    INVALID_REQUEST,
                    f"{method} is not supported on this endpoint; use POST (and DELETE to end a session).",
                    headers={"Allow": ALLOWED_METHODS},
                )
        except StoreUnavailableError:
            refusal = service_unavailable()
        await refusal(scope, receive, send)

    def _delete(self, headers: Headers, owner: str | None) -> Response:
        session_id = headers.get(SESSION_HEADER)
        if session_id is None:
            return jsonrpc_error(400, INVALID_REQUEST, "DELETE needs the Mcp-Session-Id header of the session to end.")
        if not self._sessions.end(session_id, owner):
            return jsonrpc_error(404, INVALID_REQUEST, "Session not found: it has ended or expired.")
        return Response(status_code=204)

    async def _post(
        self, scope: Scope, receive: Receive, send: Send, headers: Headers, user: AuthenticatedUser | None
    ) -> None:
        body = await read_body(receive, self._max_body)
        decoded: dict[str, Any] | Response
        if body is None:
            decoded = jsonrpc_error(413, INVALID_REQUEST, f"Request body is larger than {self._max_body} bytes.")
        else:
            decoded = _content_type_refusal(headers) or decode_message(body)
        if isinstance(decoded, Response):
            await decoded(scope, receive, send)
            return
        assert body is not None  # a decoded message came from a body
        if user is not None and self._gate is not None:
            step_up = self._gate.authorize(scope, user, decoded)
            if step_up is not None:
                await step_up(scope, receive, send)
                return
            send = _only_permitted(send, self._gate.permissions, decoded, frozenset(user.scopes))
        replay, owner = replay_body(body, receive), _owner(user)
        await _before_the_deadline(
            lambda send: self._dispatch(scope, replay, send, headers, owner, decoded), scope, receive, send, decoded
        )

    async def _dispatch(
        self, scope: Scope, receive: Receive, send: Send, headers: Headers, owner: str | None, message: dict[str, Any]
    ) -> None:
        version = headers.get(VERSION_HEADER)
        if version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS:
            if version not in SUPPORTED_PROTOCOL_VERSIONS:
                # The data lists what server/discover lists (the stateless revisions); the handshake
                # revisions are named in the message, since they are reached through initialize.
                refusal = jsonrpc_error(
                    400,
                    UNSUPPORTED_PROTOCOL_VERSION,
                    f"Unsupported MCP-Protocol-Version {version[:40]!r}; this server supports "
                    f"{', '.join(MODERN_PROTOCOL_VERSIONS)} (and {', '.join(HANDSHAKE_PROTOCOL_VERSIONS)} "
                    "after initialize).",
                    request_id=message.get("id"),
                    data={"supported": list(MODERN_PROTOCOL_VERSIONS), "requested": version},
                )
                await refusal(scope, receive, send)
                return
            if message.get("method") == "subscriptions/listen" and not _accepts(scope)[1]:
                # The SDK answers this with a bare 406; a client should be told what to change.
                refusal = jsonrpc_error(
                    406,
                    INVALID_REQUEST,
                    "subscriptions/listen is answered with an event stream; send Accept: text/event-stream.",
                    request_id=message.get("id"),
                )
                await refusal(scope, receive, send)
                return
            # 2026-07-28: self-contained requests, no session, no DynamoDB.
            await self._transport.modern(scope, receive, send, message)
            return

        if message.get("method") == "initialize":
            await self._initialize(scope, receive, send, owner)
            return

        session_id = headers.get(SESSION_HEADER)
        if session_id is not None:
            # Someone else's session answers exactly like an unknown one: ids reveal nothing.
            session = self._sessions.touch(session_id, owner)
            if session is None:
                refusal = jsonrpc_error(
                    404, INVALID_REQUEST, "Session not found: it has ended or expired.", request_id=message.get("id")
                )
                await refusal(scope, receive, send)
                return
            if version is None:
                # 2025-03-26 clients send no version header; serve them with what initialize negotiated.
                mutable = MutableHeaders(scope=scope)
                mutable[VERSION_HEADER] = session.protocol_version
            # A different supported version than the one negotiated is served as its header says: the
            # official conformance suite (server-sse-multiple-streams) sends 2025-03-26 on a 2025-11-25 session.
        # Without a session id the request is still served: Claude's connector never echoes it
        # (claude-ai-mcp #975), and nothing in a stateless server depends on it.
        if "id" in message and "method" in message and _accepts(scope)[0]:
            negotiated = headers.get(VERSION_HEADER) or DEFAULT_NEGOTIATED_VERSION
            await self._transport.answer(scope, receive, send, message, negotiated)
            return
        # Notifications (202), client responses and a wrong Accept header: the SDK's own path.
        await self._transport(scope, receive, send)

    async def _initialize(self, scope: Scope, receive: Receive, send: Send, owner: str | None) -> None:
        """Serve `initialize`, and on success open a session and return its id."""
        messages: list[Message] = []

        async def capture(message: Message) -> None:
            messages.append(message)

        await self._transport(scope, receive, capture)
        start = next(m for m in messages if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
        negotiated = _negotiated_version(body) if start["status"] == 200 else None
        if negotiated is not None:
            session = self._sessions.create(negotiated, owner=owner)
            MutableHeaders(raw=start["headers"])[SESSION_HEADER] = session.id
        for message in messages:
            await send(message)


# Time kept back from the invocation's deadline to answer, serialize and return through Mangum.
DEADLINE_MARGIN_SECONDS = 1.0


async def _before_the_deadline(
    serve: Callable[[Send], Awaitable[None]], scope: Scope, receive: Receive, send: Send, message: dict[str, Any]
) -> None:
    """Run `serve(send)`, but answer with a JSON-RPC error before the function's timeout would end it.

    A Lambda function that times out is killed mid-request: the caller gets API Gateway's bare 500,
    the whole timeout is billed, and the instance is replaced (a cold start). Anything that waits
    (a slow tool, a hung call) is cancelled here instead, while there is still time to say why; an
    answer that has begun as an event stream (`stream_responses`) ends with that error as its last
    event. A tool that blocks the event loop cannot be interrupted; the function's timeout still ends it.
    """
    context = scope.get("aws.context")
    if context is None:
        await serve(send)
        return
    start: Message | None = None

    async def tracking(reply: Message) -> None:
        nonlocal start
        if reply["type"] == "http.response.start":
            start = reply
        await send(reply)

    seconds = context.get_remaining_time_in_millis() / 1000 - DEADLINE_MARGIN_SECONDS
    timeout = asyncio.timeout(max(0.0, seconds))
    try:
        async with timeout:
            await serve(tracking)
    except TimeoutError:
        if not timeout.expired() or (start is not None and not _is_event_stream(start)):
            raise
        logging.getLogger("handlers").error("request %s ran out of time", message.get("method"))
        text = (
            f"{message.get('method')} did not finish within the function's timeout (timeout_seconds in "
            "mcpkit.toml) and was stopped; long work belongs in an asynchronous task (see the long-task template)."
        )
        if start is not None:
            # The answer has begun as an event stream: it ends with the error as its last event.
            last = _error_event(message.get("id"), text)
            await send({"type": "http.response.body", "body": last, "more_body": False})
            return
        await jsonrpc_error(200, INTERNAL_ERROR, text, request_id=message.get("id"))(scope, receive, send)


def _is_event_stream(start: Message) -> bool:
    return Headers(raw=start["headers"]).get("content-type", "").startswith("text/event-stream")


def _error_event(request_id: Any, text: str) -> bytes:
    from mcp_types import ErrorData, JSONRPCError

    from handlers.sdk_adapter import event_stream

    error = JSONRPCError(jsonrpc="2.0", id=request_id, error=ErrorData(code=INTERNAL_ERROR, message=text))
    return event_stream().event(error)


def _owner(user: AuthenticatedUser | None) -> str | None:
    return None if user is None else user.access_token.subject


def _only_permitted(send: Send, permissions: ScopePolicy, message: dict[str, Any], granted: frozenset[str]) -> Send:
    """`send` for a list request, holding its JSON answer back to drop what the token may not use."""
    method = str(message.get("method"))
    if method not in LISTS:
        return send
    held: list[Message] = []

    async def filtering(message: Message) -> None:
        held.append(message)
        if message["type"] != "http.response.body" or message.get("more_body", False):
            return
        start, *parts = held
        body = b"".join(m.get("body", b"") for m in parts)
        filtered = permissions.filter_list(method, body, granted)
        if filtered is not None:
            body = filtered
            MutableHeaders(raw=start["headers"])["content-length"] = str(len(body))
        await send(start)
        await send({"type": "http.response.body", "body": body})

    return filtering


def _accepts(scope: Scope) -> tuple[bool, bool]:
    """(JSON accepted, event stream accepted), read from Accept as the SDK reads it."""
    from mcp.server.streamable_http import check_accept_headers
    from starlette.requests import Request

    return check_accept_headers(Request(scope))


def _content_type_refusal(headers: Headers) -> Response | None:
    # The SDK answers a wrong Content-Type with a plain-text 400; clients expect a JSON-RPC error.
    media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type == "application/json":
        return None
    shown = f"{media_type[:60]!r}" if media_type else "missing"
    return jsonrpc_error(415, INVALID_REQUEST, f"Content-Type must be application/json (it is {shown}).")


def decode_message(body: bytes) -> dict[str, Any] | Response:
    """The one JSON-RPC message in `body`, or the 400 that explains what is wrong with it.

    The SDK checks messages too, but lets some invalid ones through as notifications (an object
    id, a float id, `id: null`: answered 202 and dropped) and calls a batch "invalid params".
    """
    try:
        message: Any = json.loads(body)
    except RecursionError:
        return jsonrpc_error(400, PARSE_ERROR, "Parse error: the JSON is nested too deeply.")
    except ValueError as exc:  # includes UnicodeDecodeError
        return jsonrpc_error(400, PARSE_ERROR, f"Parse error: the body is not valid JSON ({_short(exc)}).")
    if isinstance(message, list):
        return jsonrpc_error(400, INVALID_REQUEST, "JSON-RPC batches are not supported; send one message per request.")
    if not isinstance(message, dict):
        return jsonrpc_error(400, INVALID_REQUEST, "The body must be one JSON-RPC message (a JSON object).")
    request_id = message.get("id")
    has_id = "id" in message
    if has_id and not _valid_id(request_id):
        return jsonrpc_error(400, INVALID_REQUEST, "A JSON-RPC id must be a string or an integer.")
    echo = request_id if has_id else None
    if message.get("jsonrpc") != "2.0":
        return jsonrpc_error(400, INVALID_REQUEST, 'The message must say "jsonrpc": "2.0".', request_id=echo)
    if "method" in message:
        method = message["method"]
        if not isinstance(method, str) or not method:
            return jsonrpc_error(400, INVALID_REQUEST, "method must be a non-empty string.", request_id=echo)
        if "params" in message and not isinstance(message["params"], dict):
            return jsonrpc_error(400, INVALID_PARAMS, "params must be a JSON object.", request_id=echo)
        return message
    # No method: a response to a server request, which needs an id and exactly one of result/error.
    if not has_id or ("result" in message) == ("error" in message):
        return jsonrpc_error(
            400, INVALID_REQUEST, "A message needs a method (request) or an id with result or error (response)."
        )
    return message


def _valid_id(value: object) -> bool:
    # MCP: "string or integer", never null; bool is an int in Python but not a JSON number.
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _short(exc: Exception) -> str:
    return str(exc).split("\n", 1)[0][:120]


def _negotiated_version(body: bytes) -> str | None:
    try:
        message: Any = json.loads(body)
    except ValueError:
        return None
    result = message.get("result") if isinstance(message, dict) else None
    version = result.get("protocolVersion") if isinstance(result, dict) else None
    return version if isinstance(version, str) else None
