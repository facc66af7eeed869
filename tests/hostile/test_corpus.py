"""The hostile-request corpus (corpus.json), through the Lambda handler and through `mcpkit dev`.

Every case asserts the exact status and JSON-RPC error code (or API Gateway's own answer), that
the body is JSON and carries no stack trace, and that the very next good request still works.
"""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import httpx
import pytest

from mcpkit.local_gateway import LambdaContext
from mcpkit.messages import MODERN, modern_meta, rpc
from tests.conftest import load_event, start_dev_server, stop_dev_server
from tests.hostile.support import MCP_HEADERS, initialize_params

if TYPE_CHECKING:
    from collections.abc import Iterator

CORPUS: list[dict[str, Any]] = json.loads((Path(__file__).parent / "corpus.json").read_text())["cases"]
VERSION = "2025-06-18"
GOOD_CALL = rpc("tools/call", {"name": "add", "arguments": {"a": 2, "b": 40}}, id_=99)
MODERN_META = modern_meta("hostile")


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class Target(Protocol):
    """Somewhere to send a request: the handler with an API Gateway event, or `mcpkit dev` over HTTP."""

    name: str

    def send(self, method: str, headers: dict[str, str], body: bytes) -> Answer: ...


class HandlerTarget:
    name = "handler"

    def __init__(self, handler: Any) -> None:
        self._handler = handler
        self._event = load_event("http_api_post_mcp")

    def send(self, method: str, headers: dict[str, str], body: bytes) -> Answer:
        event = copy.deepcopy(self._event)
        event["requestContext"]["http"]["method"] = method
        event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} /mcp"
        for name in ("content-type", "accept", "origin"):
            event["headers"].pop(name, None)
        event["headers"].update(headers)
        try:
            event["body"], event["isBase64Encoded"] = body.decode("utf-8"), False
        except UnicodeDecodeError:
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
        event["headers"]["content-length"] = str(len(body))
        result: dict[str, Any] = self._handler(event, LambdaContext())
        raw = result.get("body") or ""
        data = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode()
        return Answer(int(result["statusCode"]), {k.lower(): v for k, v in result.get("headers", {}).items()}, data)

    @property
    def host(self) -> str:
        return str(self._event["headers"]["host"])


class DevTarget:
    name = "dev"

    def __init__(self, url: str) -> None:
        self._url = url
        self._http = httpx.Client(timeout=60)
        # httpx would add `Accept: */*`; the corpus decides which headers a request has.
        self._http.headers.pop("accept", None)

    def send(self, method: str, headers: dict[str, str], body: bytes) -> Answer:
        response = self._http.request(method, self._url, headers=headers, content=body or None)
        return Answer(response.status_code, dict(response.headers), response.content)

    def close(self) -> None:
        self._http.close()


@pytest.fixture(scope="module")
def dev_target() -> Iterator[DevTarget]:
    server = start_dev_server("--server", "example", "--auth", "none")
    target = DevTarget(server.url)
    yield target
    target.close()
    stop_dev_server(server)


@pytest.fixture(params=["handler", "dev"])
def target(request: pytest.FixtureRequest, lambda_module: Any) -> Target:
    if request.param == "handler":
        return HandlerTarget(lambda_module.handler)
    dev: DevTarget = request.getfixturevalue("dev_target")
    return dev


def post(target: Target, message: Any, headers: dict[str, str] | None = None) -> Answer:
    return target.send("POST", {**MCP_HEADERS, **(headers or {})}, json.dumps(message).encode())


def open_session(target: Target) -> str:
    answer = post(target, rpc("initialize", initialize_params(VERSION)))
    assert answer.status == 200, answer
    session_id = answer.headers["mcp-session-id"]
    post(
        target,
        rpc("notifications/initialized", id_=None),
        {"mcp-session-id": session_id, "mcp-protocol-version": VERSION},
    )
    return session_id


def build(case: dict[str, Any], target: Target) -> tuple[str, dict[str, str], bytes]:
    """The request a case describes: a good one, with the case's one change."""
    method = case.get("method", "POST")
    headers = dict(MCP_HEADERS)
    modern = case.get("modern", False)
    body_value: Any = case.get("body")
    if modern and isinstance(body_value, dict):
        body_value = copy.deepcopy(body_value)
        body_value.setdefault("params", {})["_meta"] = {**MODERN_META, **case.get("meta", {})}
        headers["mcp-protocol-version"] = MODERN
        headers["mcp-method"] = str(body_value.get("method"))
        if body_value.get("method") == "tools/call":
            headers["mcp-name"] = str(body_value["params"].get("name"))
    elif modern:
        headers["mcp-protocol-version"] = MODERN
        headers["mcp-method"] = "ping"

    session = case.get("session", "none" if modern else "live")
    if session != "none":
        session_id = {"unknown": "0" * 32, "garbage": "../../etc/passwd"}.get(session) or open_session(target)
        if session == "ended":
            ended = target.send("DELETE", {"mcp-session-id": session_id, "mcp-protocol-version": VERSION}, b"")
            assert ended.status == 204, ended
        headers["mcp-session-id"] = session_id
        headers["mcp-protocol-version"] = VERSION

    for name, value in case.get("headers", {}).items():
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value

    if "raw" in case:
        body = str(case["raw"]).encode()
    elif "raw_hex" in case:
        body = bytes.fromhex(case["raw_hex"])
    elif "raw_repeat" in case:
        text, count = case["raw_repeat"]
        body = (str(text) * int(count)).encode()
    elif "raw_pad" in case:
        prefix = b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"'
        body = prefix + b"a" * (int(case["raw_pad"]) - len(prefix) - 3) + b'"}}'
    elif body_value is not None:
        body = json.dumps(body_value).encode()
    else:
        body = b""
    if method != "POST":
        headers.pop("content-type", None)
    return method, headers, body


def check(answer: Answer, expect: dict[str, Any]) -> None:
    assert answer.status == expect["status"], answer
    assert b"Traceback" not in answer.body
    if "sse" in expect:
        check_event_stream(answer, expect)
        return
    assert answer.headers.get("content-type", "").startswith("application/json"), answer
    message = json.loads(answer.body)
    if "gateway_message" in expect:
        assert message == {"message": expect["gateway_message"]}
        return
    assert message["jsonrpc"] == "2.0"
    if "code" in expect:
        assert message["error"]["code"] == expect["code"], message
        assert message["error"]["message"].strip(), message
    if "data" in expect:
        assert message["error"]["data"] | expect["data"] == message["error"]["data"], message
    if "id" in expect:
        assert message["id"] == expect["id"]
    if expect.get("tool_error"):
        assert message["result"]["isError"] is True, message
    if "allow" in expect:
        assert answer.headers["allow"] == expect["allow"]


def check_event_stream(answer: Answer, expect: dict[str, Any]) -> None:
    """A complete event stream: its frames, in order, named by method (or `result` for the answer)."""
    assert answer.headers.get("content-type", "").startswith("text/event-stream"), answer
    frames = [json.loads(line[5:]) for line in answer.body.decode().splitlines() if line.startswith("data:")]
    assert [f.get("method", "result" if "result" in f else "error") for f in frames] == expect["sse"], frames
    assert frames[-1]["id"] == expect["id"]


@pytest.mark.parametrize("case", CORPUS, ids=[c["name"] for c in CORPUS])
def test_hostile_request_gets_a_clear_error_and_the_server_keeps_working(target: Target, case: dict[str, Any]) -> None:
    # GIVEN a good request with one hostile change
    method, headers, body = build(case, target)
    expect = case.get("expect_dev", case["expect"]) if target.name == "dev" else case["expect"]

    # WHEN it is sent
    answer = target.send(method, headers, body)

    # THEN the answer is the documented error, and a good request right after it still succeeds
    check(answer, expect)
    session_id = open_session(target)
    good = post(target, GOOD_CALL, {"mcp-session-id": session_id, "mcp-protocol-version": VERSION})
    assert good.status == 200, good
    assert json.loads(good.body)["result"]["structuredContent"] == {"result": 42.0}
