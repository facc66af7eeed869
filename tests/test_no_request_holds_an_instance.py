"""No request can hold a Lambda instance: listen ends at once, overruns end before or at the deadline.

Against `mcpkit dev`, whose local API Gateway runs every instance in its own process and replaces
one whose invocation outlived the function's timeout, as Lambda does.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from mcpkit.messages import MODERN, modern_meta, rpc
from tests.conftest import ROOT, DevServer, start_dev_server, stop_dev_server

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.slow

HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


def modern_post(
    url: str, method: str, params: dict[str, Any], *, timeout: float = 30, headers: dict[str, str] | None = None
) -> httpx.Response:
    body = rpc(method, {**params, "_meta": modern_meta("pytest")}, id_=7)
    sent = {**HEADERS, "mcp-protocol-version": MODERN, "mcp-method": method, **(headers or {})}
    if method == "tools/call":
        sent["mcp-name"] = params["name"]
    return httpx.post(url, json=body, headers=sent, timeout=timeout)


def call(url: str, name: str, arguments: dict[str, Any], **headers: str) -> httpx.Response:
    return modern_post(url, "tools/call", {"name": name, "arguments": arguments}, headers=headers)


@pytest.fixture(scope="module")
def slow_server() -> Iterator[DevServer]:
    server = start_dev_server("slow", "--servers-dir", str(ROOT / "tests" / "servers"))
    yield server
    stop_dev_server(server)


def test_a_hundred_listens_in_a_row_each_end_at_once_and_the_server_serves_on(dev_server: DevServer) -> None:
    # GIVEN the one warm instance of `mcpkit dev`
    # WHEN a client sends 100 subscriptions/listen requests one after the other (each of which used
    # to hold the instance until the integration timeout, after which nothing was answered again)
    for _ in range(100):
        # THEN each is answered completely within a second: acknowledged, then ended gracefully
        response = modern_post(
            dev_server.url, "subscriptions/listen", {"notifications": {"toolsListChanged": True}}, timeout=1
        )
        frames = [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")]
        assert [f.get("method") for f in frames] == ["notifications/subscriptions/acknowledged", None]
        assert frames[1]["result"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == 7

    # AND the server serves normally afterwards
    answer = modern_post(dev_server.url, "tools/call", {"name": "add", "arguments": {"a": 1, "b": 2}}, timeout=10)
    assert answer.json()["result"]["structuredContent"] == {"result": 3.0}


def test_a_waiting_tool_is_stopped_with_a_jsonrpc_error_before_the_function_times_out(slow_server: DevServer) -> None:
    # GIVEN a function timeout of 3 s (tests/servers/slow/mcpkit.toml) and a tool that waits 20 s
    response = call(slow_server.url, "nap", {"seconds": 20})

    # THEN the handler answers before the deadline with an error the person can act on
    error = response.json()["error"]
    assert error["code"] == -32603
    assert "timeout_seconds" in error["message"]
    assert response.json()["id"] == 7
    # AND the same instance answers the next request at once
    assert call(slow_server.url, "add", {"a": 1, "b": 1}).json()["result"]["structuredContent"] == {"result": 2.0}


def test_a_blocking_tool_ends_like_a_lambda_timeout_and_never_blocks_the_next_request(slow_server: DevServer) -> None:
    # GIVEN a tool that holds the event loop past the function's timeout
    response = call(slow_server.url, "block", {"seconds": 60})

    # THEN the gateway answers as HTTP API does for a function that timed out
    assert response.status_code == 500
    assert response.json() == {"message": "Internal Server Error"}
    # AND the instance was replaced (a cold start), so the next request is served at once, not after 60 s
    answer = call(slow_server.url, "add", {"a": 2, "b": 2})
    assert answer.json()["result"]["structuredContent"] == {"result": 4.0}


def test_an_instance_that_dies_mid_invocation_is_replaced(slow_server: DevServer) -> None:
    response = call(slow_server.url, "crash", {})
    assert response.status_code == 500
    assert response.json() == {"message": "Internal Server Error"}
    assert call(slow_server.url, "add", {"a": 3, "b": 3}).json()["result"]["structuredContent"] == {"result": 6.0}


def test_mcp_param_headers_pass_through_the_gateway_to_the_handler(slow_server: DevServer) -> None:
    # GIVEN a tool whose `region` argument is mirrored into `Mcp-Param-Region` (SEP-2243)
    listed = modern_post(slow_server.url, "tools/list", {}).json()["result"]["tools"]
    schema = next(t for t in listed if t["name"] == "weather")["inputSchema"]
    assert schema["properties"]["region"]["x-mcp-header"] == "Region"

    # WHEN a client mirrors the argument, or sends a header that disagrees, or none at all
    mirrored = call(slow_server.url, "weather", {"region": "eu-west-1"}, **{"mcp-param-region": "eu-west-1"})
    disagreeing = call(slow_server.url, "weather", {"region": "eu-west-1"}, **{"mcp-param-region": "us-east-1"})
    missing = call(slow_server.url, "weather", {"region": "eu-west-1"})

    # THEN the header reached the server: the mirrored call is served and the others are refused by
    # the server's comparison of header and body (which it can only make with the header in hand)
    assert mirrored.json()["result"]["content"][0]["text"] == "sunny in eu-west-1"
    assert disagreeing.status_code == 400
    assert disagreeing.json()["error"]["code"] == -32020
    assert "does not match" in disagreeing.json()["error"]["message"]
    assert missing.status_code == 400
    assert "is missing" in missing.json()["error"]["message"]
