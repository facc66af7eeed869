"""A real browser (Debian's Chromium, headless) as the person: sign-in form, consent page, back to the client.

The pages' security headers are enforced here (no `bypass_csp`): the clickjacking and CSRF
tests rely on Chromium applying them as it would for anyone.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest

from handlers.auth.consent import CONSENT_COOKIE
from tests.auth.browser import CONNECTED, OTHER_SITE, authorize_url, chromium, serve_pages, sign_in
from tests.auth.harness import pkce

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import Browser, BrowserContext, Page

    from tests.auth.harness import Harness

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context()
    try:
        yield context
    finally:
        context.close()


@pytest.fixture(scope="module")
def near() -> Iterator[tuple[str, dict[str, str]]]:
    """What a native client (Claude Code, VS Code) listens on for the redirect, at /callback. Its
    other pages are same-site to the kit (127.0.0.1, another port), yet another origin."""
    pages = {"/callback": CONNECTED}
    with serve_pages(pages) as base:
        yield base, pages


@pytest.fixture(scope="module")
def elsewhere() -> Iterator[tuple[str, dict[str, str]]]:
    """Pages on another site, as an attacker's would be."""
    pages: dict[str, str] = {}
    with serve_pages(pages, host=OTHER_SITE) as base:
        yield base, pages


class Connection:
    """One client's authorization in the browser: where it starts and what the client gets back."""

    def __init__(self, harness: Harness, client_id: str, redirect_uri: str, state: str) -> None:
        self.harness, self.client_id, self.redirect_uri, self.state = harness, client_id, redirect_uri, state
        self.verifier, challenge = pkce()
        self.url = authorize_url(harness, client_id, redirect_uri, challenge, state)

    def to_consent(self, page: Page) -> str:
        """Start the authorization, sign in, and stop at the consent page; its URL."""
        page.goto(self.url)
        sign_in(page, self.harness)
        page.wait_for_url(f"{self.harness.base}/oauth/consent?*")
        return page.url

    def landed(self, page: Page) -> dict[str, list[str]]:
        """Wait until the browser is back at the client; the query it brought."""
        page.wait_for_url(f"{self.redirect_uri}?*")
        assert page.title() == "Connected"
        return parse_qs(urlsplit(page.url).query)

    def token(self, query: dict[str, list[str]]) -> str:
        assert query["state"] == [self.state]
        assert query["iss"] == [self.harness.base]
        response = self.harness.token(
            {
                "grant_type": "authorization_code",
                "code": query["code"][0],
                "code_verifier": self.verifier,
                "redirect_uri": self.redirect_uri,
                "client_id": self.client_id,
            }
        )
        assert response.status_code == 200, response.text
        access_token: str = response.json()["access_token"]
        return access_token


def _register(harness: Harness, redirect_uri: str, name: str) -> str:
    client = harness.register(client_name=name, redirect_uris=[redirect_uri], token_endpoint_auth_method="none")
    client_id: str = client["client_id"]
    return client_id


def _whoami(harness: Harness, token: str) -> Any:
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}
    response = harness.mcp(call, token, **{"mcp-protocol-version": "2025-11-25"})
    return response.json()["result"]["structuredContent"]


def test_person_allows_a_client_which_gets_a_working_token_and_is_not_asked_again(
    harness: Harness, context: BrowserContext, near: tuple[str, dict[str, str]]
) -> None:
    callback = f"{near[0]}/callback"
    client_id = _register(harness, callback, "Browser Test Client")
    first = Connection(harness, client_id, callback, "browser-state")
    page = context.new_page()
    page.goto(first.url)
    sign_in(page, harness, password="wrong-password")
    assert "Wrong username or password" in page.inner_text("#error")
    sign_in(page, harness)

    # A client seen for the first time: the consent page says who asks, where it leads, and for what.
    page.wait_for_url(f"{harness.base}/oauth/consent?*")
    assert page.inner_text("h1") == "Allow Browser Test Client to use this server?"
    assert "unverified" in page.inner_text("[role=note]")
    assert page.inner_text("dt:has-text('Sends you back to') + dd") == "127.0.0.1"
    assert page.inner_text("dt:has-text('Signed in as') + dd") == harness.username
    asked = page.inner_text("ul.scopes")
    assert "Use this server's tools, resources and prompts" in asked
    assert "Unlocks: whoami" in asked
    page.click("#approve")
    token = first.token(first.landed(page))
    assert _whoami(harness, token)["email"] == harness.username

    # Same client, same scopes: straight back to the client after sign-in.
    second = Connection(harness, client_id, callback, "browser-state-2")
    visited: list[str] = []
    page.on("request", lambda request: visited.append(urlsplit(request.url).path))
    page.goto(second.url)
    sign_in(page, harness)
    assert second.token(second.landed(page))
    assert "/oauth/dev-login" in visited
    assert "/oauth/consent" not in visited


def test_deny_sends_the_client_access_denied_with_its_state_and_the_issuer(
    harness: Harness, context: BrowserContext, near: tuple[str, dict[str, str]]
) -> None:
    callback = f"{near[0]}/callback"
    connection = Connection(harness, _register(harness, callback, "Denied Client"), callback, "deny-state")
    page = context.new_page()
    connection.to_consent(page)
    page.click("#deny")
    query = connection.landed(page)
    assert query["error"] == ["access_denied"]
    assert query["state"] == ["deny-state"]
    assert query["iss"] == [harness.base]
    assert "code" not in query


def test_the_consent_page_cannot_be_framed_by_another_site(
    harness: Harness,
    context: BrowserContext,
    near: tuple[str, dict[str, str]],
    elsewhere: tuple[str, dict[str, str]],
) -> None:
    callback = f"{near[0]}/callback"
    connection = Connection(harness, _register(harness, callback, "Framed Client"), callback, "frame-state")
    consent_url = connection.to_consent(context.new_page())

    base, pages = elsewhere
    pages["/frame"] = f'<!doctype html><title>Win a prize</title><iframe src="{html.escape(consent_url)}"></iframe>'
    attacker = context.new_page()
    console: list[str] = []
    attacker.on("console", lambda message: console.append(message.text))
    with attacker.expect_event("framenavigated", lambda frame: frame.parent_frame is not None):
        attacker.goto(f"{base}/frame")
    framed = attacker.frames[1]
    framed.wait_for_load_state()
    assert any("frame-ancestors 'none'" in line for line in console), console
    assert framed.query_selector("#approve") is None
    # Chromium shows its own error document in the frame instead of the page.
    assert framed.url.startswith("chrome-error://"), framed.url


def test_a_cross_site_answer_is_refused_and_the_request_stays_open(
    harness: Harness,
    context: BrowserContext,
    near: tuple[str, dict[str, str]],
    elsewhere: tuple[str, dict[str, str]],
) -> None:
    """An attacker page that learnt the request id auto-posts "approve" from the person's own
    browser: from another site the SameSite=Strict cookie stays behind; from another origin of the
    same site the cookie goes along but the origin does not match. Neither answers the request."""
    callback = f"{near[0]}/callback"
    connection = Connection(harness, _register(harness, callback, "Forged Client"), callback, "csrf-state")
    page = context.new_page()
    consent_url = connection.to_consent(page)
    request_id = parse_qs(urlsplit(consent_url).query)["request"][0]
    forged = (
        "<!doctype html><title>Loading</title>"
        f'<form method="post" action="{harness.base}/oauth/consent">'
        f'<input type="hidden" name="request" value="{html.escape(request_id)}">'
        '<input type="hidden" name="decision" value="approve"></form>'
        "<script>document.forms[0].submit()</script>"
    )
    for (base, pages), cookie_sent in ((elsewhere, False), (near, True)):
        pages["/forged"] = forged
        attacker = context.new_page()
        with attacker.expect_request(lambda request: request.method == "POST") as posted:
            attacker.goto(f"{base}/forged")
        attacker.wait_for_url(f"{harness.base}/oauth/consent")
        assert attacker.title() == "Refused", base
        assert (CONSENT_COOKIE in posted.value.all_headers().get("cookie", "")) is cookie_sent, base
        attacker.close()

    # The person's own page still works: the request was neither used up nor approved.
    page.click("#approve")
    assert connection.token(connection.landed(page))


def test_allow_is_reachable_by_tab_and_works_with_enter(
    harness: Harness, context: BrowserContext, near: tuple[str, dict[str, str]]
) -> None:
    callback = f"{near[0]}/callback"
    connection = Connection(harness, _register(harness, callback, "Keyboard Client"), callback, "keyboard-state")
    page = context.new_page()
    connection.to_consent(page)
    focused = []
    for _ in range(10):
        page.keyboard.press("Tab")
        focused.append(page.evaluate("document.activeElement.id"))
        if focused[-1] == "approve":
            break
    assert focused[-1] == "approve", focused
    page.keyboard.press("Enter")
    assert connection.token(connection.landed(page))
