"""`mcpkit check`: green against `mcpkit dev` (with and without OAuth), and a precise red item for
each fault injected into a deliberately broken local server."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mcpkit.check import CheckReport, parse_challenge, run_check, transport_security, well_known_urls
from tests.cli.broken_server import GOOD_TOKEN, Faults, serve
from tests.conftest import ROOT, DevServer, start_dev_server, stop_dev_server


def failed(report: CheckReport) -> dict[str, str]:
    return {i.title: i.detail for i in report.items if i.status == "fail"}


def test_a_correct_server_passes_every_item() -> None:
    with serve(Faults()) as url:
        report = run_check(url)
    assert report.ok, failed(report)
    statuses = {i.title: i.status for i in report.items}
    assert statuses["HTTPS"] == "warn"  # loopback http: acceptable for local development only
    assert statuses["Claude callback URLs accepted"] == "pass"
    assert statuses["Cursor's registration (cursor:// and two other redirect URIs)"] == "pass"
    assert statuses["registration_client_uri"] == "pass"
    assert statuses["ChatGPT's metadata-document client (private_key_jwt)"] == "pass"
    assert statuses["ChatGPT callback URLs accepted"] == "pass"
    assert statuses["tools/list"] == "skip"


@pytest.mark.parametrize(
    ("fault", "item", "detail"),
    [
        (Faults(no_www_authenticate=True), "401 carries WWW-Authenticate", "401 without a WWW-Authenticate header"),
        (Faults(remapped_challenge=True), "401 carries WWW-Authenticate", "x-amzn-remapped-www-authenticate"),
        (Faults(prm_only_at_root=True), "Protected resource metadata at the path URL", "HTTP 404"),
        (Faults(prm_only_at_path=True), "Protected resource metadata at the root URL", "HTTP 404"),
        (Faults(no_s256=True), "PKCE S256", "['plain']"),
        (Faults(dcr_without_registration_client_uri=True), "registration_client_uri", "no registration_client_uri"),
        (Faults(claude_callback_refused=True), "Claude callback URLs accepted", "invalid_redirect_uri"),
        (
            Faults(cursor_scheme_refused=True),
            "Cursor's registration (cursor:// and two other redirect URIs)",
            "invalid_redirect_uri",
        ),
        (
            Faults(no_private_key_jwt=True),
            "ChatGPT's metadata-document client (private_key_jwt)",
            "private_key_jwt is not in token_endpoint_auth_methods_supported",
        ),
        (Faults(chatgpt_callback_refused=True), "ChatGPT callback URLs accepted", "invalid_redirect_uri"),
        (Faults(no_cors_expose_headers=True), "CORS preflight from http://localhost:6274", "do not expose"),
        (Faults(challenge_scope_not_listed=True), "Scopes a client will ask for", "files:admin"),
    ],
)
def test_each_fault_is_one_precise_red_item_with_a_fix(fault: Faults, item: str, detail: str) -> None:
    with serve(fault) as url:
        report = run_check(url)
    assert not report.ok
    assert list(failed(report)) == [item]
    red = report.item(item)
    assert detail in red.detail
    assert red.fix


def test_a_function_url_front_is_named_and_its_renamed_challenge_is_only_a_warning() -> None:
    # A function URL cannot map the challenge back, but its metadata is at the host root, where
    # clients look when the 401 names none; the event-stream answer is checked with the token.
    with serve(Faults(function_url=True)) as url:
        report = run_check(url, token=GOOD_TOKEN)
    assert report.ok, failed(report)
    assert report.item("Front").detail.startswith("Lambda function URL")
    assert report.item("401 carries WWW-Authenticate").status == "warn"
    assert report.item("Protected resource metadata at the root URL").status == "pass"
    assert report.item("Event-stream answer (subscriptions/listen)").status == "pass"


def test_a_function_url_that_does_not_stream_is_red() -> None:
    with serve(Faults(function_url=True, listen_not_streamed=True)) as url:
        report = run_check(url, token=GOOD_TOKEN)
    assert failed(report).keys() == {"Event-stream answer (subscriptions/listen)"}
    assert "RESPONSE_STREAM" in report.item("Event-stream answer (subscriptions/listen)").fix


def test_https_rules() -> None:
    assert transport_security("https://abc.execute-api.eu-west-1.amazonaws.com/mcp").status == "pass"
    assert transport_security("http://127.0.0.1:8000/mcp").status == "warn"
    assert transport_security("http://localhost:8000/mcp").status == "warn"
    assert transport_security("http://[::1]:8000/mcp").status == "warn"
    plain = transport_security("http://mcp.example.com/mcp")
    assert plain.status == "fail"
    assert "https" in plain.fix


def test_a_non_loopback_http_url_fails_the_check() -> None:
    # An address from TEST-NET-1 (RFC 5737): never routed, so nothing is contacted for long.
    report = run_check("http://192.0.2.1/mcp", timeout=0.5)
    assert report.item("HTTPS").status == "fail"
    assert not report.ok


def test_with_a_token_the_tools_are_listed_and_a_bad_token_is_red() -> None:
    with serve(Faults()) as url:
        good = run_check(url, token=GOOD_TOKEN)
        bad = run_check(url, token="expired")
    assert good.item("tools/list").status == "pass"
    assert "ping_tool" in good.item("tools/list").detail
    assert failed(bad) == {"tools/list": "the server refused the token (401)"}


def test_well_known_urls_and_challenge_parsing() -> None:
    assert well_known_urls("https://h.example/mcp", "oauth-protected-resource") == (
        "https://h.example/.well-known/oauth-protected-resource/mcp",
        "https://h.example/.well-known/oauth-protected-resource",
    )
    assert parse_challenge('Bearer resource_metadata="https://x/y", scope="a b"') == (
        "bearer",
        {"resource_metadata": "https://x/y", "scope": "a b"},
    )


def mcpkit_check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcpkit", "check", *args], capture_output=True, text=True, cwd=ROOT, timeout=120
    )


def test_cli_exit_code_and_checklist() -> None:
    with serve(Faults()) as good_url, serve(Faults(no_s256=True)) as bad_url:
        good = mcpkit_check(good_url)
        bad = mcpkit_check(bad_url)
    assert good.returncode == 0, good.stdout
    assert "✔ PKCE S256" in good.stdout
    assert "A connector would connect." in good.stdout
    assert bad.returncode == 1
    assert "✖ PKCE S256" in bad.stdout
    assert "fix: Advertise" in bad.stdout


@pytest.mark.slow
def test_green_against_mcpkit_dev_without_oauth(dev_server: DevServer) -> None:
    result = mcpkit_check(dev_server.url)
    assert result.returncode == 0, result.stdout
    assert "✔ tools/list: 2 tools: add, echo" in result.stdout
    assert "✔ Front: API Gateway HTTP API (buffered)" in result.stdout


def test_green_against_mcpkit_dev_serving_the_streaming_front() -> None:
    # tests/servers/chatty has stream_responses = true: mcpkit dev plays the function URL.
    server = start_dev_server("--servers-dir", str(ROOT / "tests" / "servers"), "--server", "chatty")
    try:
        report = run_check(server.url)
    finally:
        stop_dev_server(server)
    assert report.ok, failed(report)
    assert report.item("Front").detail.startswith("Lambda function URL")
    assert report.item("Event-stream answer (subscriptions/listen)").status == "pass"


def _dev_supports_oauth() -> bool:
    help_text = subprocess.run(
        [sys.executable, "-m", "mcpkit", "dev", "--help"], capture_output=True, text=True, cwd=ROOT, check=False
    ).stdout
    return "--auth" in help_text and (ROOT / "handlers" / "auth").is_dir()


@pytest.mark.slow
@pytest.mark.skipif(not _dev_supports_oauth(), reason="OAuth routes not in the tree yet (mcpkit dev --auth oauth)")
def test_green_against_mcpkit_dev_with_oauth() -> None:
    server = start_dev_server("--auth", "oauth")
    try:
        report = run_check(server.url)
    finally:
        stop_dev_server(server)
    assert report.ok, failed(report)
    for title in (
        "401 carries WWW-Authenticate",
        "Protected resource metadata at the path URL",
        "Protected resource metadata at the root URL",
        "Authorization server metadata",
        "PKCE S256",
        "Dynamic client registration (Claude's request)",
        "registration_client_uri",
        "Claude callback URLs accepted",
        "Cursor's registration (cursor:// and two other redirect URIs)",
        "ChatGPT's metadata-document client (private_key_jwt)",
        "ChatGPT callback URLs accepted",
    ):
        assert report.item(title).status == "pass", report.item(title)


@pytest.mark.slow
def test_an_origin_the_server_does_not_allow_is_a_red_cors_item(dev_server: DevServer) -> None:
    report = run_check(dev_server.url, origin="https://elsewhere.example")
    assert list(failed(report)) == ["CORS preflight from https://elsewhere.example"]
    assert "allowed_origins" in report.item("CORS preflight from https://elsewhere.example").fix
