"""`mcpkit dev` as a newcomer lives in it: an honest start-up, state that survives restarts and
reloads, the host the client used, short errors for mistakes in the server folder, copyable output."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import httpx
import pytest

from mcpkit.dev import read_discovery
from mcpkit.server_config import load_server
from tests.auth.harness import Harness, dev_credentials
from tests.conftest import ROOT, DevServer, free_port, start_dev_server, stop_dev_server

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
TOOLS_LIST = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}


def copy_example(tmp_path: Path, name: str = "example") -> Path:
    servers = tmp_path / "servers"
    shutil.copytree(ROOT / "servers" / "example", servers / name, ignore=shutil.ignore_patterns("__pycache__"))
    return servers


def run_dev(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MCPKIT_", "AWS_ENDPOINT_URL"))}
    env.pop("COLUMNS", None)
    return subprocess.run(
        [sys.executable, "-m", "mcpkit", "dev", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=timeout,
        check=False,
    )


def wait_for(server: DevServer, text: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        output = server.output()
        if text in output:
            return output
        time.sleep(0.2)
    raise AssertionError(f"{text!r} never appeared:\n{server.output()}")


def tool_names(url: str, token: str | None = None, session: str | None = None) -> list[str]:
    headers = {**HEADERS, "mcp-protocol-version": "2025-11-25"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    if session:
        headers["mcp-session-id"] = session
    response = httpx.post(url, json=TOOLS_LIST, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return [t["name"] for t in response.json()["result"]["tools"]]


# -- 18.1: a busy port -------------------------------------------------------------------------------


def test_a_second_dev_on_a_busy_port_says_who_holds_it_and_leaves_the_first_alone(tmp_path: Path) -> None:
    servers = copy_example(tmp_path)
    first = start_dev_server("--servers-dir", str(servers), "--auth", "oauth", ready_when="Dev sign-in:")
    try:
        port = first.url.split(":")[2].split("/")[0]
        second = run_dev("--servers-dir", str(servers), "--auth", "oauth", "--port", port)
        assert second.returncode == 2
        output = second.stdout + second.stderr
        assert "ready" not in output, output
        assert "Dev sign-in" not in output
        assert "Traceback" not in output
        assert f"port {port}" in output
        assert f"pid {first.process.pid}" in output, output
        assert f"--port {int(port) + 1}" in output
        assert f"PORT={int(port) + 1} make dev" in output
        assert len(second.stderr.strip().splitlines()) == 1, second.stderr
        # The running server's discovery file is untouched: `users list --dev` still finds it.
        assert read_discovery(load_server(servers / "example")).pid == first.process.pid
        assert httpx.post(first.url, json=INIT, headers=HEADERS).status_code == 401
        # A second one on a free port serves, and still leaves the first one's file alone.
        other = start_dev_server("--servers-dir", str(servers), "--auth", "oauth", ready_when="Dev sign-in:")
        try:
            assert read_discovery(load_server(servers / "example")).pid == first.process.pid
            assert f"pid {first.process.pid}" in other.output()
        finally:
            stop_dev_server(other)
        assert read_discovery(load_server(servers / "example")).pid == first.process.pid
    finally:
        stop_dev_server(first)


# -- 18.2: the host the client used ----------------------------------------------------------------


def test_resource_and_issuer_follow_the_loopback_name_the_client_used(tmp_path: Path) -> None:
    servers = copy_example(tmp_path)
    server = start_dev_server("--servers-dir", str(servers), "--auth", "oauth", ready_when="Dev sign-in:")
    try:
        port = server.url.split(":")[2].split("/")[0]
        for host in ("localhost", "127.0.0.1"):
            base = f"http://{host}:{port}"
            prm = httpx.get(f"{base}/.well-known/oauth-protected-resource/mcp").json()
            assert prm["resource"] == f"{base}/mcp"
            assert prm["authorization_servers"] == [base]
            meta = httpx.get(f"{base}/.well-known/oauth-authorization-server").json()
            assert meta["issuer"] == base
            assert meta["token_endpoint"] == f"{base}/oauth/token"
            challenge = httpx.post(f"{base}/mcp", json=INIT, headers=HEADERS).headers["www-authenticate"]
            assert f'resource_metadata="{base}/.well-known/oauth-protected-resource/mcp"' in challenge
        # A name the server does not answer to is still refused (DNS rebinding), not adopted.
        foreign = httpx.post(server.url, json=INIT, headers={**HEADERS, "host": "rebind.attacker.example"})
        assert foreign.status_code == 421
        checked = subprocess.run(
            [sys.executable, "-m", "mcpkit", "check", f"http://localhost:{port}/mcp"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
            check=False,
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
    finally:
        stop_dev_server(server)


# -- 18.3: dev state survives a restart ------------------------------------------------------------


def test_a_restart_keeps_the_dev_user_clients_grants_and_tokens_and_fresh_starts_clean(tmp_path: Path) -> None:
    servers = copy_example(tmp_path)
    state = tmp_path / "state"
    args = ("--servers-dir", str(servers), "--auth", "oauth", "--state-dir", str(state))
    port = free_port()  # the same URL each time: tokens are bound to it (their audience)
    server = start_dev_server(*args, ready_when="Dev sign-in:", port=port)
    username, password = dev_credentials(server.output())
    harness = Harness(server, "", username, password)
    try:
        client = harness.register(token_endpoint_auth_method="none")
        issued = harness.tokens(client)
        assert tool_names(server.url, issued["access_token"]) == ["add", "echo"]
    finally:
        stop_dev_server(server)

    server = start_dev_server(*args, ready_when="Dev sign-in:", port=port)
    try:
        assert dev_credentials(server.output()) == (username, password)
        # The access token signed before the restart verifies after it (same KMS key, same issuer).
        assert tool_names(server.url, issued["access_token"]) == ["add", "echo"]
        # The refresh token, its grant and the registered client are still in the table.
        harness.server = server
        refreshed = harness.refresh(client, issued["refresh_token"])
        assert refreshed.status_code == 200, refreshed.text
        assert tool_names(server.url, refreshed.json()["access_token"]) == ["add", "echo"]
        # The dev user signs in with the same password.
        assert harness.tokens(client)["access_token"]
    finally:
        stop_dev_server(server)

    server = start_dev_server(*args, "--fresh", ready_when="Dev sign-in:", port=port)
    try:
        assert dev_credentials(server.output())[1] != password
        gone = httpx.post(
            server.url, json=TOOLS_LIST, headers={**HEADERS, "authorization": f"Bearer {issued['access_token']}"}
        )
        assert gone.status_code == 401
    finally:
        stop_dev_server(server)


def test_the_default_state_folder_is_per_project_and_never_committed(tmp_path: Path) -> None:
    from mcpkit.dev_state import state_folder

    assert state_folder(ROOT / "servers", "example") == ROOT / ".mcpkit" / "dev" / "example"
    ignored = subprocess.run(["git", "check-ignore", "-q", ".mcpkit/dev/example/aws.pickle"], cwd=ROOT, check=False)
    assert ignored.returncode == 0, ".mcpkit/ must be git-ignored"


# -- 16.2: reload ----------------------------------------------------------------------------------


def test_a_saved_change_reloads_the_instance_and_keeps_the_session_and_a_syntax_error_keeps_the_last_good(
    tmp_path: Path,
) -> None:
    servers = copy_example(tmp_path)
    source = servers / "example" / "server.py"
    server = start_dev_server("--servers-dir", str(servers), "--auth", "oauth", ready_when="Dev sign-in:")
    username, password = dev_credentials(server.output())
    harness = Harness(server, "", username, password)
    try:
        client = harness.register(token_endpoint_auth_method="none")
        token = harness.tokens(client)["access_token"]
        opened = httpx.post(server.url, json=INIT, headers={**HEADERS, "authorization": f"Bearer {token}"})
        session = opened.headers["mcp-session-id"]
        assert tool_names(server.url, token, session) == ["add", "echo"]

        source.write_text(
            source.read_text()
            + '\n\n@mcp.tool()\ndef twice(a: float) -> float:\n    """Double a."""\n    return 2 * a\n'
        )
        wait_for(server, "reloaded (server.py changed)")
        # A new instance with the new code; the sign-in and the session survive (state is in the emulator).
        assert tool_names(server.url, token, session) == ["add", "echo", "twice"]

        good = source.read_text()
        source.write_text(good + "\ndef broken(:\n")
        output = wait_for(server, "reload failed")
        failure = output[output.index("reload failed") :]
        assert re.search(rf"{re.escape(str(source.resolve()))}:\d+: SyntaxError", failure), failure
        assert "Traceback" not in output
        assert tool_names(server.url, token, session) == ["add", "echo", "twice"]

        source.write_text(good.replace("return 2 * a", "return 3 * a"))
        deadline = time.monotonic() + 120
        while server.output().count("reloaded (") < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        call = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "twice", "arguments": {"a": 2}}}
        headers = {**HEADERS, "mcp-protocol-version": "2025-11-25", "authorization": f"Bearer {token}"}
        answer = httpx.post(server.url, json=call, headers={**headers, "mcp-session-id": session}).json()
        assert answer["result"]["structuredContent"] == {"result": 6.0}
    finally:
        stop_dev_server(server)


def test_no_reload_leaves_the_instance_alone(tmp_path: Path) -> None:
    servers = copy_example(tmp_path)
    server = start_dev_server("--servers-dir", str(servers), "--no-reload")
    try:
        (servers / "example" / "server.py").write_text((servers / "example" / "server.py").read_text() + "\n# x\n")
        time.sleep(2)
        assert "reloaded" not in server.output()
        assert "reload failed" not in server.output()
    finally:
        stop_dev_server(server)


# -- 18.6: mistakes in the server folder -----------------------------------------------------------


MISTAKES = [
    ("from mcp.server.mcpserver import MCPServer\napp = MCPServer('x')\n", "", r"server\.py: defines no `mcp`"),
    (
        "from mcp.server.mcpserver import MCPServer\nmcp = MCPServer('x')\n\n@mcp.tool()\ndef add() -> int:\n"
        "    return 1\n",
        'auth = "oauth"\n\n[permissions]\ndefault_scope = "a"\n\n[permissions.scopes.a]\n'
        'description = "A"\ntools = ["ad"]\n',
        r"mcpkit\.toml:8: \[permissions\] scope 'a' lists the tool 'ad'",
    ),
    (
        "from mcp.server.mcpserver import MCPServer\nmcp = MCPServer('x')\n",
        'auth = "oauth"\n\n[permissions.scopes.a]\ndescription = "A"\ntool = ["x"]\n',
        r"mcpkit\.toml:5: permissions\.scopes\.a\.tool: unknown setting 'tool'",
    ),
    ("from mcp.server.mcpserver import MCPServer\nmcp = MCPServer('x'\n", "", r"server\.py:2: SyntaxError"),
    ("import not_a_module_anywhere\n", "", r"server\.py:1: ModuleNotFoundError"),
    ("", "auth = oauth\n", r"mcpkit\.toml:1: not valid TOML"),
]
# Every mistake through the reloading instances (the default); the in-process instance for two of them.
CASES = [(*m, "--reload") for m in MISTAKES] + [(*m, "--no-reload") for m in MISTAKES[:2]]


@pytest.mark.parametrize(("server_py", "toml", "expected", "reload"), CASES)
def test_a_mistake_in_the_server_folder_is_one_or_two_lines(
    tmp_path: Path, server_py: str, toml: str, expected: str, reload: str
) -> None:
    folder = tmp_path / "servers" / "broken"
    folder.mkdir(parents=True)
    (folder / "server.py").write_text(server_py)
    (folder / "mcpkit.toml").write_text(toml)
    result = run_dev("broken", "--servers-dir", str(tmp_path / "servers"), "--port", str(free_port()), reload)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert re.search(expected, result.stderr), result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2, result.stderr
    assert "ready" not in result.stdout


# -- 16.3: output that never wraps -----------------------------------------------------------------


def test_the_banner_is_never_wrapped_when_written_to_a_file(tmp_path: Path) -> None:
    long_name = "a-rather-long-server-name-for-wrapping"
    servers = copy_example(tmp_path, long_name)
    # start_dev_server sets no COLUMNS: output goes to a file, which rich treats as 80 columns wide.
    server = start_dev_server(long_name, "--servers-dir", str(servers), "--auth", "oauth", ready_when="Dev sign-in:")
    try:
        lines = server.output().splitlines()
        assert f"  Claude Code:     claude mcp add --transport http {long_name} {server.url}" in lines
        token = f"$(.venv/bin/mcpkit token --dev --server {long_name})"
        tail = f"--method tools/list --header 'Authorization: Bearer {token}'\""
        assert any(line.endswith(tail) for line in lines), lines
        assert "without it the CLI needs a terminal" in server.output()
        assert max(len(line) for line in lines) > 80
    finally:
        stop_dev_server(server)


def test_log_lines_from_the_server_are_never_wrapped(tmp_path: Path) -> None:
    servers = copy_example(tmp_path)
    long_path = "/".join(["a-rather-long-folder-name"] * 6) + "/file.txt"
    source = servers / "example" / "server.py"
    source.write_text(
        source.read_text() + f'\n\n@mcp.tool()\ndef shout() -> str:\n    """Log a warning."""\n'
        f'    import logging\n\n    logging.getLogger("example").warning("cannot read {long_path}")\n'
        '    return "ok"\n'
    )
    server = start_dev_server("--servers-dir", str(servers))
    try:
        call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "shout", "arguments": {}}}
        headers = {**HEADERS, "mcp-protocol-version": "2025-11-25"}
        assert httpx.post(server.url, json=call, headers=headers, timeout=30).status_code == 200
        output = wait_for(server, "file.txt")
        assert f"cannot read {long_path}" in output.splitlines()[-1] or any(
            f"cannot read {long_path}" in line for line in output.splitlines()
        ), output
    finally:
        stop_dev_server(server)


@pytest.mark.parametrize(("server_py", "toml", "expected"), MISTAKES)
def test_validate_as_make_synth_runs_it_reports_a_mistake_in_one_or_two_lines(
    tmp_path: Path, server_py: str, toml: str, expected: str
) -> None:
    folder = tmp_path / "servers" / "broken"
    folder.mkdir(parents=True)
    (folder / "server.py").write_text(server_py)
    (folder / "mcpkit.toml").write_text(toml)
    result = subprocess.run(
        [sys.executable, "-m", "mcpkit", "validate", "--servers-dir", str(tmp_path / "servers")],
        capture_output=True, text=True, cwd=ROOT, timeout=240, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert re.search(expected, result.stderr), result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2, result.stderr
    synth = subprocess.run(["make", "-n", "synth"], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert synth.index("mcpkit validate") < synth.index("cdk synth")


def test_with_a_wildcard_bind_the_lan_urls_are_printed_and_answered(tmp_path: Path) -> None:
    from mcpkit.dev import machine_addresses

    addresses = machine_addresses()
    if not addresses:
        pytest.skip("this machine has no non-loopback IPv4 address")
    servers = copy_example(tmp_path)
    server = start_dev_server("--servers-dir", str(servers), "--host", "0.0.0.0")  # noqa: S104 - the point of the test
    try:
        output = server.output()
        port = server.url.split(":")[2].split("/")[0]
        assert "0.0.0.0" not in output.split("\n")[0]  # noqa: S104
        lan = f"http://{addresses[0]}:{port}/mcp"
        assert f"Also on the LAN:  {lan}" in output
        # A request addressed to the LAN name (sent over loopback here: the test stays off the network).
        answered = httpx.post(server.url, json=INIT, headers={**HEADERS, "host": f"{addresses[0]}:{port}"})
        assert answered.status_code == 200, answered.text
    finally:
        stop_dev_server(server)
