"""`mcpkit connect`: every snippet is valid JSON or a valid command, for the URL and name given."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

import pytest

from mcpkit.connect import ConnectError, default_name, setups
from tests.conftest import ROOT

URL = "https://abc123.execute-api.eu-west-1.amazonaws.com/mcp"


def snippet(client: str, name: str | None = "notes") -> str:
    return next(s.snippet for s in setups(URL, name) if s.client == client)


def test_claude_code_command() -> None:
    assert shlex.split(snippet("Claude Code")) == ["claude", "mcp", "add", "--transport", "http", "notes", URL]


def test_vscode_mcp_json() -> None:
    assert json.loads(snippet("VS Code")) == {"servers": {"notes": {"type": "http", "url": URL}}}


def test_cursor_mcp_json() -> None:
    assert json.loads(snippet("Cursor")) == {"mcpServers": {"notes": {"url": URL}}}


def test_inspector_ui_and_cli() -> None:
    ui, cli = snippet("MCP Inspector").splitlines()
    assert shlex.split(ui, comments=True) == ["npx", "@modelcontextprotocol/inspector"]
    assert shlex.split(cli) == [
        "npx", "@modelcontextprotocol/inspector", "--cli", URL, "--transport", "http", "--method", "tools/list",
    ]  # fmt: skip


def test_claude_steps_name_the_url() -> None:
    steps = snippet("Claude")
    assert "Add custom connector" in steps
    assert f"Remote MCP server URL: {URL}" in steps


def test_chatgpt_steps_name_the_url_and_oauth() -> None:
    steps = snippet("ChatGPT")
    assert "Developer mode" in steps
    assert f"MCP Server URL: {URL}" in steps
    assert "Authentication: OAuth" in steps


def test_default_name_comes_from_the_host() -> None:
    assert default_name(URL) == "abc123"
    assert default_name("http://127.0.0.1:8000/mcp") == "mcpkit-local"


@pytest.mark.parametrize(("url", "name"), [("ftp://x/mcp", "ok"), (URL, "has space"), (URL, "semi;colon")])
def test_bad_url_or_name_is_refused(url: str, name: str) -> None:
    with pytest.raises(ConnectError):
        setups(url, name)


def test_cli_prints_every_client() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mcpkit", "connect", URL, "--name", "notes"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for heading in (
        "Claude (custom connector)",
        "ChatGPT (connector, developer mode)",
        "Claude Code",
        "VS Code (.vscode/mcp.json)",
        "Cursor",
        "MCP Inspector",
    ):
        assert heading in result.stdout
    assert f"claude mcp add --transport http notes {URL}" in result.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "mcpkit", "connect", "not-a-url"], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert bad.returncode == 2
    assert "not an http(s) URL" in bad.stderr


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000/mcp", "http://localhost:8000/mcp", "http://192.168.1.20:8000/mcp"]
)
def test_a_url_only_this_machine_reaches_is_flagged_for_claude(url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mcpkit", "connect", url],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "claude.ai (and Claude Desktop) cannot connect to it" in result.stderr
    claude = snippet_for(url, "Claude")
    assert claude.startswith("Claude cannot use this URL")
    assert f"Remote MCP server URL: {url}" not in claude
    # Clients that run on this machine get the URL as it is.
    assert url in snippet_for(url, "Claude Code")


def test_a_public_url_gets_no_warning() -> None:
    assert not snippet("Claude").startswith("Claude cannot")


def snippet_for(url: str, client: str) -> str:
    return next(s.snippet for s in setups(url, "local") if s.client == client)
