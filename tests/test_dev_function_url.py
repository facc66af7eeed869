"""`mcpkit dev` on a `stream_responses = true` server: a local RESPONSE_STREAM function URL, end to end over HTTP.

Every instance is a process running the real `python -m handlers.stream_runtime` against its own
local Runtime API; the front behaves as a function URL (mcpkit/function_url.py says where that
differs from the HTTP API stand-in).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from mcp import Client

from mcpkit.messages import MODERN, modern_meta, rpc
from tests.conftest import ROOT, DevServer, start_dev_server, stop_dev_server

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.slow

HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
SERVERS = ROOT / "tests" / "servers"


@pytest.fixture(scope="module")
def streaming_server() -> Iterator[DevServer]:
    server = start_dev_server("streaming", "--servers-dir", str(SERVERS))
    yield server
    stop_dev_server(server)


def _root(server: DevServer) -> str:
    return server.url.removesuffix("/mcp")


def modern_post(url: str, method: str, params: dict[str, Any], **headers: str) -> httpx.Response:
    body = rpc(method, {**params, "_meta": modern_meta("pytest")}, id_=7)
    sent = {**HEADERS, "mcp-protocol-version": MODERN, "mcp-method": method, **headers}
    if method == "tools/call":
        sent["mcp-name"] = params["name"]
    return httpx.post(url, json=body, headers=sent, timeout=30)


def test_the_handshake_revision_initializes_and_lists_tools(streaming_server: DevServer) -> None:
    init = rpc(
        "initialize",
        {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "e2e", "version": "1"}},
    )
    opened = httpx.post(streaming_server.url, json=init, headers=HEADERS, timeout=30)
    assert opened.status_code == 200, opened.text
    session = opened.headers["mcp-session-id"]
    sent = {**HEADERS, "mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}
    httpx.post(streaming_server.url, json=rpc("notifications/initialized", id_=None), headers=sent, timeout=30)
    listed = httpx.post(streaming_server.url, json=rpc("tools/list", id_=2), headers=sent, timeout=30)
    assert {t["name"] for t in listed.json()["result"]["tools"]} == {"add", "block", "crash"}


def test_the_2026_07_28_revision_discovers_and_calls(streaming_server: DevServer) -> None:
    discovered = modern_post(streaming_server.url, "server/discover", {})
    assert discovered.status_code == 200, discovered.text
    assert MODERN in discovered.json()["result"]["supportedVersions"]
    called = modern_post(streaming_server.url, "tools/call", {"name": "add", "arguments": {"a": 2, "b": 40}})
    assert called.json()["result"]["structuredContent"] == {"result": 42.0}


@pytest.mark.anyio
async def test_official_client_in_both_modes(streaming_server: DevServer) -> None:
    async with Client(streaming_server.url, mode="legacy") as client:
        legacy = await client.call_tool("add", {"a": 1, "b": 2})
    async with Client(streaming_server.url) as client:
        modern = await client.call_tool("add", {"a": 3, "b": 4})
        assert client.session.protocol_version == MODERN
    assert legacy.structured_content == {"result": 3.0}
    assert modern.structured_content == {"result": 7.0}


def test_each_chunk_reaches_the_client_before_the_function_writes_the_next(streaming_server: DevServer) -> None:
    # GIVEN a route of the function that writes three lines 0.8 s apart, each stamped when written
    arrivals: list[tuple[float, str]] = []
    with httpx.stream("GET", f"{_root(streaming_server)}/ticks?count=3&pause=0.8", timeout=30) as response:
        assert response.status_code == 207
        assert response.headers["x-ticks"] == "3"
        arrivals.extend((time.time(), line) for line in response.iter_lines() if line)

    # THEN each line reached the client before the function even wrote the next one: nothing buffers it
    assert [line.split()[:2] for _, line in arrivals] == [["tick", "0"], ["tick", "1"], ["tick", "2"]]
    written = [float(line.split()[2]) for _, line in arrivals]
    for (arrived, _), next_written in zip(arrivals, written[1:], strict=False):
        assert arrived < next_written


def test_an_unknown_path_reaches_the_function(streaming_server: DevServer) -> None:
    # A function URL has no route table: the app's own 404 (plain text), not a gateway's {"message": ...}
    response = httpx.post(f"{_root(streaming_server)}/admin", json={})
    assert response.status_code == 404
    assert response.text == "Not Found"


def test_cors_preflight_is_answered_by_the_front_and_responses_carry_the_origin(streaming_server: DevServer) -> None:
    origin = "http://localhost:6274"
    preflight = httpx.options(
        streaming_server.url,
        headers={
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization,content-type,mcp-protocol-version",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == origin
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "mcp-session-id" in preflight.headers["access-control-expose-headers"]

    answered = modern_post(streaming_server.url, "server/discover", {}, origin=origin)
    assert answered.headers["access-control-allow-origin"] == origin
    stranger = httpx.options(
        streaming_server.url,
        headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
    )
    assert "access-control-allow-origin" not in stranger.headers


def test_a_request_over_six_megabytes_is_refused_by_the_front(streaming_server: DevServer) -> None:
    response = httpx.post(streaming_server.url, content=b"x" * (6 * 1024 * 1024 + 1), headers=HEADERS, timeout=60)
    assert response.status_code == 413
    assert response.json() == {"Message": "Request Entity Too Large"}


def test_the_host_the_client_used_is_the_domain_the_function_sees(streaming_server: DevServer) -> None:
    port = streaming_server.url.split(":")[2].split("/")[0]
    served = modern_post(streaming_server.url, "server/discover", {}, host=f"localhost:{port}")
    assert served.status_code == 200
    refused = modern_post(streaming_server.url, "server/discover", {}, host="rebind.attacker.example")
    assert refused.status_code == 421


def test_a_function_past_its_timeout_gets_a_502_and_its_instance_is_replaced(streaming_server: DevServer) -> None:
    # GIVEN a function timeout of 3 s (tests/servers/streaming/mcpkit.toml) and a tool that blocks 60 s
    started = time.monotonic()
    response = modern_post(streaming_server.url, "tools/call", {"name": "block", "arguments": {"seconds": 60}})

    # THEN the function URL's answer for a timed-out function, at the timeout
    assert response.status_code == 502
    assert time.monotonic() - started < 30
    # AND a fresh instance serves the next request at once
    answer = modern_post(streaming_server.url, "tools/call", {"name": "add", "arguments": {"a": 1, "b": 1}})
    assert answer.json()["result"]["structuredContent"] == {"result": 2.0}


def test_a_stream_past_the_timeout_is_cut_and_the_instance_replaced(streaming_server: DevServer) -> None:
    # GIVEN a stream that would last 10 s behind a 3 s function timeout
    received = _lines_until_cut(f"{_root(streaming_server)}/ticks?count=10&pause=1")

    # THEN what was written before the timeout arrived, then the connection was cut (no clean end)
    assert 2 <= len(received) <= 4
    # AND the next request is served
    after = httpx.get(f"{_root(streaming_server)}/ticks?count=1", timeout=30)
    assert after.status_code == 207
    assert "function ran past its timeout" in streaming_server.output()


def test_an_instance_that_dies_mid_invocation_gets_a_502_at_once_and_is_replaced(streaming_server: DevServer) -> None:
    response = modern_post(streaming_server.url, "tools/call", {"name": "crash", "arguments": {}})
    assert response.status_code == 502
    assert "process exited during the invocation" in streaming_server.output()
    answer = modern_post(streaming_server.url, "tools/call", {"name": "add", "arguments": {"a": 3, "b": 3}})
    assert answer.json()["result"]["structuredContent"] == {"result": 6.0}


def test_a_failure_mid_stream_cuts_the_connection(streaming_server: DevServer) -> None:
    with httpx.stream("GET", f"{_root(streaming_server)}/fail-midway", timeout=30) as response:
        assert response.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            response.read()
    # The instance reported the failure and serves on.
    assert httpx.get(f"{_root(streaming_server)}/ticks?count=1", timeout=30).status_code == 207


def test_www_authenticate_is_remapped_and_reload_and_exit_with_the_parent_still_hold(tmp_path: Path) -> None:
    # GIVEN a copy of the streaming server with OAuth on, so /mcp without a token is a 401
    shutil.copytree(SERVERS / "streaming", tmp_path / "streaming")
    server = start_dev_server("streaming", "--servers-dir", str(tmp_path), "--auth", "oauth")
    try:
        unauthorized = modern_post(server.url, "server/discover", {})
        # THEN the challenge arrives as a function URL is reported to pass it: remapped
        assert unauthorized.status_code == 401
        assert "www-authenticate" not in unauthorized.headers
        assert unauthorized.headers["x-amzn-remapped-www-authenticate"].startswith("Bearer ")

        # WHEN the server's code changes, a new generation of streaming instances serves it
        instances = _instances(server.process.pid)
        assert instances, "no streaming instance process found"
        source = tmp_path / "streaming" / "server.py"
        source.write_text(source.read_text().replace('"""Add two numbers."""', '"""Add two numbers (reloaded)."""'))
        deadline = time.monotonic() + 60
        while "reloaded (" not in server.output():
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.2)
        assert set(_instances(server.process.pid)).isdisjoint(instances)

        # AND switching the front off is refused until a restart; the running front serves on
        config = tmp_path / "streaming" / "mcpkit.toml"
        config.write_text(config.read_text().replace("stream_responses = true", "stream_responses = false"))
        while "stream_responses changed; restart mcpkit dev" not in server.output():
            assert time.monotonic() < deadline + 60, server.output()
            time.sleep(0.2)
        assert httpx.get(f"{_root(server)}/ticks?count=1", timeout=30).status_code == 207

        # AND when mcpkit dev is killed outright, its instances end with it
        survivors = _instances(server.process.pid)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in survivors):
            assert time.monotonic() < deadline, f"instances outlived mcpkit dev: {survivors}"
            time.sleep(0.2)
    finally:
        stop_dev_server(server)


def _lines_until_cut(url: str) -> list[str]:
    """The lines that arrived before the connection was cut; fails if the stream ends cleanly."""
    received: list[str] = []
    try:
        with httpx.stream("GET", url, timeout=30) as response:
            received.extend(line for line in response.iter_lines() if line)
    except httpx.RemoteProtocolError:
        return received
    raise AssertionError(f"the stream ended cleanly after {received}")


def _instances(parent: int) -> list[int]:
    """Pids of the streaming runtime processes `parent` started."""
    listed = subprocess.run(
        ["ps", "-ww", "-o", "pid=,args=", "--ppid", str(parent)], capture_output=True, text=True, check=False
    )
    return [int(line.split()[0]) for line in listed.stdout.splitlines() if "handlers.stream_runtime" in line]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for every purpose here (its parent, the killed mcpkit dev, cannot reap it).
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] != "Z"


def test_the_response_body_of_a_json_answer_is_whole(streaming_server: DevServer) -> None:
    # A plain JSON answer (no notification sent) arrives as one JSON document, not an event stream.
    response = modern_post(streaming_server.url, "tools/list", {})
    assert response.headers["content-type"].startswith("application/json")
    assert json.loads(response.text)["result"]["tools"]


def test_an_event_stream_of_the_sdk_passes_through_whole(streaming_server: DevServer) -> None:
    # subscriptions/listen is answered as SSE by the SDK today: acknowledged, then ended gracefully.
    response = modern_post(streaming_server.url, "subscriptions/listen", {"notifications": {"toolsListChanged": True}})
    assert response.headers["content-type"].startswith("text/event-stream")
    frames = [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")]
    assert [f.get("method") for f in frames] == ["notifications/subscriptions/acknowledged", None]
