"""`stream_responses`: progress and log lines reach the client while a tool runs, and every stream ends.

The real app (`handlers.app.create_runtime`, the fixture server tests/servers/chatty) is served
by uvicorn on a loopback port, so each body chunk reaches the client when the app writes it; the
Lambda context it gets per request carries the function's deadline, as the streaming runtime's
does. The tests that matter most run through `mcpkit dev` as well (the `either` fixture), where
each byte also crosses the real streaming runtime and the local function URL; the conformance
suite's progress and logging scenarios run through it in tests/conformance. Timings are only
compared with each other, with margins of seconds.
"""

from __future__ import annotations

import json
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import httpx2
import pytest
import uvicorn
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from pydantic import SecretStr

from handlers.app import Runtime, create_runtime
from handlers.settings import Settings
from mcpkit.local_gateway import LambdaContext
from mcpkit.messages import MODERN, modern_meta, rpc
from tests.conftest import ROOT, TEST_TABLE, DevServer, free_port, start_dev_server, stop_dev_server

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from mcp_types import LoggingMessageNotificationParams
    from starlette.types import Receive, Scope, Send

    from mcpkit.local_aws import EmbeddedAws

CHATTY = ROOT / "tests" / "servers" / "chatty"
# tests/servers/chatty/mcpkit.toml: the overrun tests end 1 s (the kit's margin) before this.
TIMEOUT_SECONDS = 5.0
HANDSHAKE = "2025-11-25"
REVISIONS = (MODERN, HANDSHAKE)
BOTH = "application/json, text/event-stream"
PAUSE = 0.6  # what `report` waits after each thing it sends


@dataclass
class Served:
    """One instance of the app on a loopback port."""

    url: str
    runtime: Runtime
    server: uvicorn.Server
    thread: threading.Thread


def serve(folder: Path, *, stream_responses: bool, timeout_seconds: float = TIMEOUT_SECONDS) -> Served:
    settings = Settings(
        server=f"{folder / 'server.py'}:mcp",
        table_name=TEST_TABLE,
        allowed_hosts=["127.0.0.1"],
        session_key=SecretStr("test-session-key-of-at-least-32-characters"),
        stream_responses=stream_responses,
    )
    runtime = create_runtime(settings)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            # The streaming runtime starts the transport once per instance, as LambdaApp does.
            while (await receive())["type"] != "lifespan.shutdown":
                await runtime.transport.start()
                await send({"type": "lifespan.startup.complete"})
            await runtime.transport.stop()
            await send({"type": "lifespan.shutdown.complete"})
            return
        scope["aws.context"] = LambdaContext(deadline=time.monotonic() + timeout_seconds)
        await runtime.app(scope, receive, send)

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped while starting"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    return Served(f"http://127.0.0.1:{port}/mcp", runtime, server, thread)


def stop(served: Served) -> None:
    served.server.should_exit = True
    served.thread.join(timeout=10)


@pytest.fixture(scope="module")
def streaming(aws: EmbeddedAws) -> Iterator[Served]:
    served = serve(CHATTY, stream_responses=True)
    yield served
    stop(served)


@pytest.fixture(scope="module")
def buffered(aws: EmbeddedAws, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    # Its own copy of the module (its own MCPServer), as another deployed function would have.
    folder = tmp_path_factory.mktemp("servers") / "chatty_buffered"
    shutil.copytree(CHATTY, folder)
    served = serve(folder, stream_responses=False)
    yield served
    stop(served)


@pytest.fixture(scope="module")
def patient(aws: EmbeddedAws, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The streaming server with a timeout well past the SDK's 15 s keepalive interval."""
    folder = tmp_path_factory.mktemp("servers") / "chatty_patient"
    shutil.copytree(CHATTY, folder)
    served = serve(folder, stream_responses=True, timeout_seconds=60)
    yield served
    stop(served)


@dataclass
class Answer:
    status: int
    content_type: str
    # Each JSON-RPC message with the monotonic time its `data:` line arrived.
    messages: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    # When each SSE comment line (the keepalive) arrived.
    pings: list[float] = field(default_factory=list)
    body: bytes = b""
    sent_at: float = 0.0
    ended_at: float = 0.0
    headers: httpx.Headers = field(default_factory=httpx.Headers)

    @property
    def kinds(self) -> list[str]:
        return [m.get("method") or ("error" if "error" in m else "result") for _, m in self.messages]

    @property
    def last(self) -> dict[str, Any]:
        return self.messages[-1][1]


def post(url: str, message: dict[str, Any], headers: dict[str, str]) -> Answer:
    answer = Answer(0, "", sent_at=time.monotonic())
    with httpx.stream(
        "POST", url, json=message, headers={"content-type": "application/json", **headers}, timeout=30
    ) as response:
        answer.status, answer.headers = response.status_code, response.headers
        answer.content_type = response.headers.get("content-type", "")
        if answer.content_type.startswith("text/event-stream"):
            for line in response.iter_lines():
                if line.startswith("data:"):
                    answer.messages.append((time.monotonic(), json.loads(line[5:])))
                elif line.startswith(":"):
                    answer.pings.append(time.monotonic())
        else:
            answer.body = response.read()
            answer.messages.append((time.monotonic(), json.loads(answer.body)))
    answer.ended_at = time.monotonic()
    return answer


class Caller:
    """Calls tools at one protocol revision, the way a client of that revision does."""

    def __init__(self, url: str, revision: str) -> None:
        self.url, self.revision = url, revision
        self.session: str | None = None
        if revision == HANDSHAKE:
            client = {"name": "pytest", "version": "1"}
            initialize = rpc("initialize", {"protocolVersion": HANDSHAKE, "capabilities": {}, "clientInfo": client})
            opened = post(url, initialize, {"accept": BOTH})
            # initialize never streams: its body is read to open the session.
            assert opened.content_type == "application/json", opened
            self.session = opened.headers["mcp-session-id"]

    def call(self, tool: str, arguments: dict[str, Any] | None = None, *, accept: str = BOTH) -> Answer:
        return post(self.url, *self.request(tool, arguments or {}, accept))

    def request(self, tool: str, arguments: dict[str, Any], accept: str) -> tuple[dict[str, Any], dict[str, str]]:
        """The tools/call message (id 7, progress token "p-1") and its headers."""
        params: dict[str, Any] = {"name": tool, "arguments": arguments, "_meta": {"progressToken": "p-1"}}
        headers = {"content-type": "application/json", "accept": accept, "mcp-protocol-version": self.revision}
        if self.revision == MODERN:
            # 2026-07-28 sends log lines only to a request that asks for them, at its level.
            params["_meta"] |= modern_meta("pytest") | {"io.modelcontextprotocol/logLevel": "info"}
            headers |= {"mcp-method": "tools/call", "mcp-name": tool}
        else:
            assert self.session is not None
            headers["mcp-session-id"] = self.session
        return rpc("tools/call", params, id_=7), headers


@pytest.mark.parametrize("revision", REVISIONS)
def test_progress_and_log_lines_arrive_in_order_while_the_tool_runs(either: Served | DevServer, revision: str) -> None:
    # GIVEN a tool that reports progress twice and then logs a line, pausing after each
    answer = Caller(either.url, revision).call("report", {"pause": PAUSE})

    # THEN the answer is an event stream: the notifications in the order sent, then the result
    assert answer.status == 200
    assert answer.content_type.startswith("text/event-stream")
    assert answer.kinds == ["notifications/progress", "notifications/progress", "notifications/message", "result"]
    progress = [m["params"] for _, m in answer.messages[:2]]
    assert [(p["progressToken"], p["progress"], p["total"]) for p in progress] == [("p-1", 1, 2), ("p-1", 2, 2)]
    assert answer.messages[2][1]["params"]["data"] == "report written"
    assert answer.last["id"] == 7
    assert answer.last["result"]["content"][0]["text"] == "report done"
    # AND each arrived while the tool was still running: the first one pause after pause before the result
    first, second, log, result = (at for at, _ in answer.messages)
    assert first < second < log < result
    assert result - first > 2 * PAUSE * 0.75


@pytest.mark.parametrize("revision", REVISIONS)
def test_a_call_with_nothing_to_report_is_one_json_body(streaming: Served, revision: str) -> None:
    answer = Caller(streaming.url, revision).call("quiet")

    assert answer.content_type == "application/json"
    (message,) = (m for _, m in answer.messages)
    assert (message["id"], message["result"]["content"][0]["text"]) == (7, "nothing to report")


@pytest.mark.parametrize("revision", REVISIONS)
def test_a_client_that_accepts_only_json_gets_json_without_the_notifications(
    streaming: Served, buffered: Served, revision: str
) -> None:
    # GIVEN a client that accepts only application/json (the SDK would answer it 406 in SSE mode)
    answer = Caller(streaming.url, revision).call("report", {"pause": 0}, accept="application/json")

    # THEN it gets the one JSON body, exactly what a server without the switch answers
    assert answer.status == 200
    assert answer.content_type == "application/json"
    assert answer.kinds == ["result"]
    assert answer.body == Caller(buffered.url, revision).call("report", {"pause": 0}).body


@pytest.mark.parametrize("revision", REVISIONS)
def test_without_the_switch_a_reporting_tool_is_answered_with_json_as_before(buffered: Served, revision: str) -> None:
    answer = Caller(buffered.url, revision).call("report", {"pause": 0})

    assert answer.content_type == "application/json"
    (message,) = (m for _, m in answer.messages)
    assert (message["id"], message["result"]["content"][0]["text"]) == (7, "report done")


@pytest.mark.slow
def test_a_quiet_tool_that_outlasts_the_keepalive_interval_gets_a_pinged_stream(patient: Served) -> None:
    # GIVEN a handshake-revision call of a tool that sends nothing for 17 s (the SDK's 2026-07-28
    # entry, whose behaviour the handshake path copies, commits the stream after 15 s of silence)
    answer = Caller(patient.url, HANDSHAKE).call("ponder", {"seconds": 17})
    # THEN the client is kept reading by an event stream, which ends with the result
    assert answer.content_type.startswith("text/event-stream")
    assert answer.kinds == ["result"]
    assert answer.last["result"]["content"][0]["text"] == "pondered 17.0 s"
    # AND kept alive while the tool was still quiet
    assert len(answer.pings) == 1
    assert answer.messages[0][0] - answer.pings[0] > 1


@pytest.mark.parametrize("revision", REVISIONS)
def test_a_stream_that_reaches_the_deadline_ends_with_a_jsonrpc_error_event(
    either: Served | DevServer, revision: str
) -> None:
    # GIVEN a tool that reports progress, then waits an hour, on a function with a 5 s timeout
    answer = Caller(either.url, revision).call("overrun")

    # THEN the stream carries the progress, then ends with the error (the body ends: the read returned)
    assert answer.content_type.startswith("text/event-stream")
    assert answer.kinds == ["notifications/progress", "error"]
    error = answer.last
    assert error["id"] == 7
    assert error["error"]["code"] == -32603
    assert "timeout_seconds" in error["error"]["message"]
    # AND it ended before the function's timeout would have killed the instance
    assert answer.ended_at - answer.sent_at < TIMEOUT_SECONDS


@pytest.mark.parametrize("revision", REVISIONS)
def test_a_tool_that_fails_after_reporting_ends_its_stream_with_the_failure(streaming: Served, revision: str) -> None:
    caller = Caller(streaming.url, revision)

    # A tool's own exception is a tool error: a result with isError, as the last event.
    failed = caller.call("fail")
    assert failed.kinds == ["notifications/progress", "result"]
    assert failed.last["result"]["isError"] is True
    assert failed.last["result"]["content"][0]["text"] == "Error executing tool fail"

    # An MCPError is a JSON-RPC error, as the last event.
    refused = caller.call("refuse")
    assert refused.kinds == ["notifications/message", "error"]
    assert refused.last == {"jsonrpc": "2.0", "id": 7, "error": {"code": -32602, "message": "no such report"}}


@pytest.mark.parametrize("revision", REVISIONS)
def test_a_client_that_goes_away_mid_stream_cancels_the_tool(streaming: Served, revision: str) -> None:
    cancelled = sys.modules["mcpkit_server_chatty_server"].cancelled
    cancelled.clear()
    message, headers = Caller(streaming.url, revision).request("hold", {}, BOTH)
    # GIVEN a tool that reports progress and then waits an hour
    with httpx.stream("POST", streaming.url, json=message, headers=headers, timeout=30) as response:
        first = next(line for line in response.iter_lines() if line.startswith("data:"))
        assert json.loads(first[5:])["method"] == "notifications/progress"
    # WHEN the client closes the connection after the first event
    # THEN the tool is cancelled rather than left holding the instance
    deadline = time.monotonic() + 3
    while not cancelled.is_set() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cancelled.is_set()


def test_a_result_that_asks_for_input_ends_the_stream_and_its_sealed_state_opens_on_the_next_call(
    streaming: Served,
) -> None:
    # GIVEN a 2026-07-28 tool that reports progress, then asks the person (InputRequiredResult)
    caller = Caller(streaming.url, MODERN)
    capabilities: dict[str, Any] = {"io.modelcontextprotocol/clientCapabilities": {"elicitation": {"form": {}}}}
    message, headers = caller.request("confirm", {}, BOTH)
    message["params"]["_meta"] |= capabilities
    asked = post(streaming.url, message, headers)

    # THEN the question is the result that ends the stream, its requestState sealed by the kit
    assert asked.kinds == ["notifications/progress", "result"]
    result = asked.last["result"]
    assert result["resultType"] == "input_required"
    assert result["requestState"] not in (None, "asked")
    # AND the answer with that state is served like any other call
    message["params"] |= {
        "inputResponses": {"confirm": {"action": "accept", "content": {"ok": True}}},
        "requestState": result["requestState"],
    }
    done = post(streaming.url, message, headers)
    assert done.kinds == ["notifications/progress", "result"]
    assert done.last["result"]["content"][0]["text"] == "confirmed=True"


def test_lists_listen_and_refusals_are_answered_as_without_the_switch(streaming: Served, buffered: Served) -> None:
    for served in (streaming, buffered):
        # A list is what the OAuth scope filter reads as JSON: it never streams.
        listed = post(served.url, rpc("tools/list", {"_meta": modern_meta("pytest")}), _modern("tools/list"))
        assert listed.content_type == "application/json"
        assert "report" in {tool["name"] for tool in json.loads(listed.body)["result"]["tools"]}
        # subscriptions/listen is still acknowledged and ended at once (it would hold an instance).
        listen = post(
            served.url,
            rpc("subscriptions/listen", {"notifications": {"toolsListChanged": True}, "_meta": modern_meta("pytest")}),
            _modern("subscriptions/listen"),
        )
        assert listen.kinds == ["notifications/subscriptions/acknowledged", "result"]
        # An unsupported revision is refused before anything could stream.
        refused = post(served.url, rpc("tools/list"), {"accept": BOTH, "mcp-protocol-version": "2099-01-01"})
        assert (refused.status, refused.last["error"]["code"]) == (400, -32022)


def _modern(method: str) -> dict[str, str]:
    return {"accept": BOTH, "mcp-protocol-version": MODERN, "mcp-method": method}


@pytest.fixture(scope="module")
def dev_chatty() -> Iterator[DevServer]:
    """The same server through `mcpkit dev`: the streaming runtime behind the local function URL."""
    server = start_dev_server("--servers-dir", str(CHATTY.parent), "--server", CHATTY.name)
    yield server
    stop_dev_server(server)


@pytest.fixture(params=["app", "mcpkit dev"])
def either(request: pytest.FixtureRequest) -> Served | DevServer:
    """The streaming server as uvicorn serves the app, and through `mcpkit dev`, where each byte also
    crosses the Runtime API (the real handlers/stream_runtime.py process) and the local function URL."""
    served: Served | DevServer = request.getfixturevalue("streaming" if request.param == "app" else "dev_chatty")
    return served


@pytest.mark.parametrize("mode", ["legacy", MODERN])
def test_the_official_client_gets_progress_before_the_result(either: Served | DevServer, mode: str) -> None:
    served = either
    reported: list[tuple[float, float]] = []
    logs: list[LoggingMessageNotificationParams] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        reported.append((time.monotonic(), progress))

    async def on_log(params: LoggingMessageNotificationParams) -> None:
        logs.append(params)

    async def run() -> float:
        async with (
            httpx2.AsyncClient(timeout=30) as http,
            Client(
                streamable_http_client(served.url, http_client=http),
                mode=mode,
                logging_callback=on_log,
                log_level="info",
            ) as client,
        ):
            result = await client.call_tool("report", {"pause": PAUSE}, progress_callback=on_progress)
            assert result.content[0].text == "report done"  # type: ignore[union-attr]
            return time.monotonic()

    returned = anyio.run(run)

    assert [value for _, value in reported] == [1, 2]
    # The first progress came while the tool still had three pauses to go.
    assert returned - reported[0][0] > 2 * PAUSE * 0.75
    assert [log.data for log in logs] == ["report written"]
