"""Chromium or Chrome (headless, through Playwright) for the tests that act as the person at the browser.

`make test` finds one (PATH, then the usual macOS places), installs Debian's when it is root with
apt-get, and otherwise these tests alone are skipped with one line saying how to get a browser;
under CI (`CI=true`) they are mandatory and fail instead.

One browser per test module (launching costs ~0.5 s); each test takes a fresh context, so cookies
never leak from one test into another.
"""

from __future__ import annotations

import os
import shutil
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import Browser, Page

    from tests.auth.harness import Harness

OTHER_SITE = "other-site.test"
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
BROWSER_PATHS = (
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
)
NO_BROWSER = (
    "no Chromium or Chrome found (PATH, /Applications); install one "
    "(Debian/Ubuntu: sudo make browser; macOS: brew install --cask chromium, or Google Chrome)"
)


def find_browser() -> str | None:
    """A Chromium-family browser on this machine, or None."""
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return next((p for p in BROWSER_PATHS if Path(p).is_file()), None)


def require_browser() -> str:
    found = find_browser()
    if found is not None:
        return found
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"{NO_BROWSER}: under CI (CI=true) the browser tests are mandatory")
    pytest.skip(f"{NO_BROWSER}: skipping the browser sign-in tests")


CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # A second site for the clickjacking and CSRF tests: a page there is cross-site to the kit
    # (127.0.0.1), so SameSite=Strict cookies stay home, as they would for a real attacker's page.
    f"--host-resolver-rules=MAP {OTHER_SITE} 127.0.0.1",
]
CONNECTED = "<!doctype html><html lang=en><title>Connected</title><main><p>You can close this window.</p></main>"


@contextmanager
def chromium() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    executable = require_browser()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class _PageServer(ThreadingHTTPServer):
    pages: dict[str, str]


class _Pages(BaseHTTPRequestHandler):
    server: _PageServer

    def do_GET(self) -> None:
        page = self.server.pages.get(urlsplit(self.path).path)
        body = (page if page is not None else "not found").encode()
        self.send_response(200 if page is not None else 404)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve_pages(pages: dict[str, str], host: str = "127.0.0.1") -> Iterator[str]:
    """A tiny web server on its own port: a native client's redirect listener (`/callback`), or a
    page on another origin. Pages may be added to the returned server's dict while it runs."""
    server = _PageServer(("127.0.0.1", 0), _Pages)
    server.pages = pages
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def authorize_url(harness: Harness, client_id: str, redirect_uri: str, challenge: str, state: str) -> str:
    return f"{harness.base}/oauth/authorize?" + urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "resource": harness.resource,
        }
    )


def sign_in(page: Page, harness: Harness, password: str | None = None) -> None:
    """On the dev sign-in form: fill it in and submit it with a click, as a person would."""
    page.fill("input[name=username]", harness.username)
    page.fill("input[name=password]", password or harness.password)
    page.click("#sign-in")


if __name__ == "__main__":
    # `make browser`: exit 0 when a browser is there.
    raise SystemExit(0 if find_browser() else 1)
