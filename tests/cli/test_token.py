"""`mcpkit token` through the real flow against `mcpkit dev --auth oauth`, and `mcpkit check` naming
the real cause when a token or the metadata belongs to another host name."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.auth.harness import dev_credentials
from tests.conftest import ROOT, start_dev_server, stop_dev_server

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.conftest import DevServer

pytestmark = pytest.mark.slow

HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}


def mcpkit(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MCPKIT_", "AWS_"))}
    result = subprocess.run(
        [sys.executable, "-m", "mcpkit", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**base, **(env or {})},
        timeout=120,
        check=False,
    )
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


def lists_tools(url: str, token: str) -> bool:
    headers = {**HEADERS, "mcp-protocol-version": "2025-11-25", "authorization": f"Bearer {token}"}
    return httpx.post(url, json=LIST, headers=headers, timeout=30).status_code == 200


@pytest.fixture(scope="module")
def oauth_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DevServer, Path]]:
    servers = tmp_path_factory.mktemp("servers")
    shutil.copytree(ROOT / "servers" / "example", servers / "example", ignore=shutil.ignore_patterns("__pycache__"))
    server = start_dev_server("--servers-dir", str(servers), "--auth", "oauth", ready_when="Dev sign-in:")
    yield server, servers
    stop_dev_server(server)


def test_token_dev_signs_the_dev_user_in_and_prints_a_working_access_token(
    oauth_dev: tuple[DevServer, Path],
) -> None:
    server, servers = oauth_dev
    result = mcpkit("token", "--dev", "--servers-dir", str(servers))
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert "\n" not in token
    assert claims(token)["aud"] == server.url
    assert claims(token)["scope"] == "mcp:tools"  # no --scope: what the server's 401 names
    assert lists_tools(server.url, token)
    # The banner's own line runs as printed.
    assert ".venv/bin/mcpkit token --dev --server example" in server.output()


def test_token_asks_for_the_scopes_given_and_reports_a_refusal(oauth_dev: tuple[DevServer, Path]) -> None:
    _, servers = oauth_dev
    full = mcpkit("token", "--dev", "--servers-dir", str(servers), "--scope", "mcp:tools", "--json")
    assert full.returncode == 0, full.stderr
    assert {"access_token", "refresh_token", "expires_in"} <= set(json.loads(full.stdout))
    refused = mcpkit("token", "--dev", "--servers-dir", str(servers), "--scope", "no:such-scope")
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: "), refused.stderr
    assert "invalid_scope" in refused.stderr, refused.stderr


def test_token_for_a_url_runs_the_browser_flow_on_a_loopback_redirect(
    oauth_dev: tuple[DevServer, Path], tmp_path: Path
) -> None:
    server, _ = oauth_dev
    username, password = dev_credentials(server.output())
    # BROWSER names one program, which `webbrowser` runs with the URL.
    browser = tmp_path / "browser"
    browser.write_text(f'#!/bin/sh\nexec {sys.executable} {ROOT / "tests" / "cli" / "fake_browser.py"} "$1"\n')
    browser.chmod(0o755)
    result = mcpkit(
        "token",
        server.url,
        env={"BROWSER": str(browser), "FAKE_BROWSER_USER": username, "FAKE_BROWSER_PASSWORD": password},
    )
    assert result.returncode == 0, result.stderr
    assert "/oauth/authorize?" in result.stderr  # the URL to open by hand, whole on one line
    assert lists_tools(server.url, result.stdout.strip())


def test_check_says_a_token_for_another_host_name_is_why_it_was_refused(oauth_dev: tuple[DevServer, Path]) -> None:
    server, servers = oauth_dev
    token = mcpkit("token", "--dev", "--servers-dir", str(servers)).stdout.strip()
    localhost = server.url.replace("127.0.0.1", "localhost")
    report = mcpkit("check", localhost, "--token", token)
    assert report.returncode == 1
    text = " ".join(report.stdout.split())
    assert f"The token was issued for {server.url}, not {localhost}" in text, report.stdout


def test_check_names_a_server_that_names_itself_under_another_host(tmp_path: Path) -> None:
    runner = [sys.executable, str(ROOT / "tests" / "cli" / "fixed_host_gateway.py")]
    server = start_dev_server("--auth", "oauth", runner=runner, ready_when="Dev sign-in:")
    try:
        localhost = server.url.replace("127.0.0.1", "localhost")
        report = mcpkit("check", localhost)
    finally:
        stop_dev_server(server)
    assert report.returncode == 1
    text = " ".join(report.stdout.split())
    assert "The server answered on localhost but names itself 127.0.0.1" in text, report.stdout
