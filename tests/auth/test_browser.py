"""A real browser (Debian's Chromium, headless) through authorize → sign-in form → redirect back."""

from __future__ import annotations

import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tests.auth.harness import pkce

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.auth.harness import Harness

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class _Callback(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<!doctype html><title>Connected</title><p>You can close this window.</p>"
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def callback_url() -> Iterator[str]:
    """What a native client (Claude Code, VS Code) listens on for the redirect."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Callback)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/callback"
    server.shutdown()


@pytest.mark.anyio
async def test_person_signs_in_with_chromium_and_the_client_gets_a_working_token(
    harness: Harness, callback_url: str
) -> None:
    from playwright.async_api import async_playwright

    client = harness.register(redirect_uris=[callback_url], token_endpoint_auth_method="none")
    verifier, challenge = pkce()
    authorize = f"{harness.base}/oauth/authorize?" + urlencode(
        {
            "response_type": "code",
            "client_id": client["client_id"],
            "redirect_uri": callback_url,
            "state": "browser-state",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "resource": harness.resource,
        }
    )
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await page.goto(authorize)
            await page.fill("input[name=username]", harness.username)
            await page.fill("input[name=password]", "wrong-password")
            await page.click("#sign-in")
            assert "Wrong username or password" in await page.inner_text("#error")
            await page.fill("input[name=username]", harness.username)
            await page.fill("input[name=password]", harness.password)
            await page.click("#sign-in")
            # A client seen for the first time: the person allows it on the consent page.
            await page.wait_for_url(f"{harness.base}/oauth/consent?*")
            await page.click("#approve")
            await page.wait_for_url(f"{callback_url}?*")
            landed = page.url
            assert await page.title() == "Connected"
        finally:
            await browser.close()

    query = parse_qs(urlsplit(landed).query)
    assert query["state"] == ["browser-state"]
    assert query["iss"] == [harness.base]
    token = harness.token(
        {
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "code_verifier": verifier,
            "redirect_uri": callback_url,
            "client_id": client["client_id"],
        }
    )
    assert token.status_code == 200, token.text
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}
    response = harness.mcp(call, token.json()["access_token"], **{"mcp-protocol-version": "2025-11-25"})
    assert response.json()["result"]["structuredContent"]["email"] == harness.username
