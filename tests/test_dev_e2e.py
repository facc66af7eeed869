"""`mcpkit dev` as a user runs it, driven by real clients over HTTP."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from typing import TYPE_CHECKING

import httpx
import pytest
from mcp import Client

from mcpkit.local_aws import EmbeddedAws
from tests.conftest import ROOT, DevServer, start_dev_server, stop_dev_server

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "e2e", "version": "1"}},
}
HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


@pytest.mark.anyio
async def test_official_client_handshake_mode_lists_and_calls(dev_server: DevServer) -> None:
    async with Client(dev_server.url, mode="legacy") as client:
        tools = await client.list_tools()
        result = await client.call_tool("add", {"a": 20, "b": 22})
        resources = await client.list_resources()
        prompt = await client.get_prompt("review_code", {"code": "print(1)"})
    assert {t.name for t in tools.tools} == {"add", "echo"}
    assert result.structured_content == {"result": 42.0}
    assert [str(r.uri) for r in resources.resources] == ["example://server-time"]
    assert prompt.messages


@pytest.mark.anyio
async def test_official_client_auto_mode_discovers_2026_07_28(dev_server: DevServer) -> None:
    async with Client(dev_server.url) as client:
        result = await client.call_tool("echo", {"text": "ok", "repeat": 3})
        assert client.session.protocol_version == "2026-07-28"
    assert result.structured_content == {"result": "ok ok ok"}


def test_mcp_inspector_cli_lists_and_calls(dev_server: DevServer) -> None:
    inspector = ROOT / "node_modules" / ".bin" / "mcp-inspector"
    env = {**os.environ, "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    base = [str(inspector), "--cli", dev_server.url, "--transport", "http"]
    listed = subprocess.run([*base, "--method", "tools/list"], capture_output=True, text=True, env=env, timeout=120)
    called = subprocess.run(
        [*base, "--method", "tools/call", "--tool-name", "add", "--tool-arg", "a=1", "--tool-arg", "b=2"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    assert {t["name"] for t in json.loads(listed.stdout)["tools"]} == {"add", "echo"}
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout)["structuredContent"] == {"result": 3}


def test_local_gateway_answers_cors_preflight_without_invoking_auth(dev_server: DevServer) -> None:
    response = httpx.options(
        dev_server.url,
        headers={
            "origin": "http://localhost:6274",
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization,content-type,mcp-protocol-version",
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "http://localhost:6274"
    assert "mcp-session-id" in response.headers["access-control-expose-headers"]
    assert "www-authenticate" in response.headers["access-control-expose-headers"]


def test_a_preflight_for_a_tools_mcp_param_header_is_allowed(dev_server: DevServer) -> None:
    # A browser client calling an `x-mcp-header` tool sends `Mcp-Param-<Name>`, a name no fixed list knows.
    response = httpx.options(
        dev_server.url,
        headers={
            "origin": "http://localhost:6274",
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization,content-type,mcp-method,mcp-name,mcp-param-region",
        },
    )
    assert response.status_code == 204
    allowed = {h.strip() for h in response.headers["access-control-allow-headers"].split(",")}
    assert "*" in allowed
    assert "authorization" in allowed  # the wildcard never covers it (Fetch standard)


def test_local_gateway_routes_only_what_the_stack_routes(dev_server: DevServer) -> None:
    response = httpx.post(dev_server.url.replace("/mcp", "/admin"), json={})
    assert response.status_code == 404
    assert response.json() == {"message": "Not Found"}


def test_dns_rebinding_host_is_refused_through_the_gateway(dev_server: DevServer) -> None:
    response = httpx.post(dev_server.url, json=INIT, headers={**HEADERS, "host": "rebind.attacker.example"})
    assert response.status_code == 421


def test_session_made_on_one_instance_is_valid_on_another_and_ends_everywhere(tmp_path: Path) -> None:
    # Two separate handler processes (two "Lambda instances") sharing one table, each trusting a
    # session it has seen for 1 s (`session_cache_seconds`; 30 by default).
    shutil.copytree(ROOT / "servers" / "example", tmp_path / "example", ignore=shutil.ignore_patterns("__pycache__"))
    config = tmp_path / "example" / "mcpkit.toml"
    config.write_text(config.read_text() + "session_cache_seconds = 1\n")
    with EmbeddedAws() as aws:
        args = ("--servers-dir", str(tmp_path), "--server", "example", "--aws-endpoint", aws.endpoint)
        first = start_dev_server(*args)
        second = start_dev_server(*args)
        try:
            opened = httpx.post(first.url, json=INIT, headers=HEADERS)
            session = {"mcp-session-id": opened.headers["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}
            call = {
                "jsonrpc": "2.0",
                "id": 2,
                "method": "tools/call",
                "params": {"name": "add", "arguments": {"a": 1, "b": 2}},
            }

            on_second = httpx.post(second.url, json=call, headers={**HEADERS, **session})
            assert on_second.status_code == 200, on_second.text
            assert on_second.json()["result"]["structuredContent"] == {"result": 3.0}

            assert httpx.delete(second.url, headers=session).status_code == 204
            assert httpx.post(second.url, json=call, headers={**HEADERS, **session}).status_code == 404
            time.sleep(1.1)  # the first instance's trust in what it wrote at initialize runs out
            after = httpx.post(first.url, json=call, headers={**HEADERS, **session})
            assert after.status_code == 404
        finally:
            stop_dev_server(first)
            stop_dev_server(second)
