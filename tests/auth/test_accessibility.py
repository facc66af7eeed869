"""axe-core (pinned in package.json) in headless Chromium over every HTML page the kit shows a person:
the consent page (registered and metadata-document clients), the dev sign-in form (with and
without its error) and the error page. WCAG 2.0/2.1 A and AA rules plus axe's best practices
(landmarks, one main heading), which catch what a screen-reader user trips over first.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from tests.auth.browser import authorize_url, chromium, serve_pages, sign_in
from tests.auth.harness import pkce

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from playwright.sync_api import Browser, Page

    from tests.auth.harness import Harness

pytestmark = pytest.mark.slow
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    # The pages' CSP (`default-src 'none'`) rightly refuses the injected axe script; bypassing it
    # is for the audit only. The browser tests (test_browser.py) run with the policy enforced.
    context = browser.new_context(bypass_csp=True)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(scope="module")
def sites() -> Iterator[tuple[str, dict[str, str]]]:
    """One local web server: the redirect listener at /callback and client metadata documents."""
    pages = {"/callback": "<!doctype html><html lang=en><title>Connected</title><main>Connected</main></html>"}
    with serve_pages(pages) as base:
        yield base, pages


def audit(page: Page) -> dict[str, list[dict[str, Any]]]:
    """axe's findings on the page as it is now: `violations`, and `incomplete` (what axe could not
    decide, e.g. contrast over a background image; none of these pages should leave it unsure)."""
    page.add_script_tag(content=AXE.read_text())
    options = {"runOnly": {"type": "tag", "values": AXE_TAGS}, "resultTypes": ["violations", "incomplete"]}
    result: dict[str, Any] = page.evaluate("options => axe.run(document, options)", options)
    return {"violations": result["violations"], "incomplete": result["incomplete"]}


def describe(findings: list[dict[str, Any]]) -> str:
    lines = []
    for finding in findings:
        targets = ", ".join(json.dumps(node["target"]) for node in finding["nodes"])
        lines.append(f"  {finding['id']} ({finding['impact']}): {finding['help']} — at {targets}")
    return "\n".join(lines)


def assert_accessible(page: Page) -> None:
    found = audit(page)
    assert not found["violations"], f"{page.url} violates:\n{describe(found['violations'])}"
    assert not found["incomplete"], f"{page.url} leaves axe unsure:\n{describe(found['incomplete'])}"
    # WCAG 1.4.10 Reflow, which axe does not check: at 320 CSS pixels wide (a phone, or 400 % zoom)
    # nothing needs scrolling sideways.
    page.set_viewport_size({"width": 320, "height": 640})
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 320, f"{page.url} is {width}px wide at a 320px viewport"


class _Client:
    """How each kind of client starts an authorization: the client id and its redirect URI."""

    documents: ClassVar[int] = 0

    @staticmethod
    def registered(harness: Harness, base: str, _: dict[str, str]) -> str:
        registered = harness.register(
            client_name="Accessibility Check", redirect_uris=[f"{base}/callback"], token_endpoint_auth_method="none"
        )
        client_id: str = registered["client_id"]
        return client_id

    @classmethod
    def metadata_document(cls, _: Harness, base: str, pages: dict[str, str]) -> str:
        cls.documents += 1
        path = f"/client-{cls.documents}.json"
        pages[path] = json.dumps(
            {
                "client_id": f"{base}{path}",
                "client_name": "Accessibility Check (document)",
                "redirect_uris": [f"{base}/callback"],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code"],
            }
        )
        return f"{base}{path}"


@pytest.mark.parametrize("make_client", [_Client.registered, _Client.metadata_document], ids=["dcr", "cimd"])
def test_consent_page_is_accessible(
    harness: Harness,
    page: Page,
    sites: tuple[str, dict[str, str]],
    make_client: Callable[[Harness, str, dict[str, str]], str],
) -> None:
    base, pages = sites
    client_id = make_client(harness, base, pages)
    page.goto(authorize_url(harness, client_id, f"{base}/callback", pkce()[1], "a11y"))
    sign_in(page, harness)
    page.wait_for_url(f"{harness.base}/oauth/consent?*")
    assert_accessible(page)


def test_sign_in_form_is_accessible_with_and_without_its_error(
    harness: Harness, page: Page, sites: tuple[str, dict[str, str]]
) -> None:
    base, pages = sites
    client_id = _Client.registered(harness, base, pages)
    page.goto(authorize_url(harness, client_id, f"{base}/callback", pkce()[1], "a11y"))
    page.wait_for_url(f"{harness.base}/oauth/dev-login?*")
    assert_accessible(page)
    sign_in(page, harness, password="wrong-password")
    page.wait_for_selector("#error")
    assert_accessible(page)


def test_the_audit_reports_what_is_wrong(page: Page) -> None:
    """The check itself: a page with the usual mistakes fails, naming the rule and the element."""
    page.set_content("<!doctype html><title>x</title><h3>Sign in</h3><input name=username>")
    violations = {finding["id"]: finding for finding in audit(page)["violations"]}
    assert {"html-has-lang", "label", "landmark-one-main", "page-has-heading-one"} <= violations.keys()
    assert violations["label"]["nodes"][0]["target"] == ["input"]
    with pytest.raises(AssertionError, match=r"label \(critical\): .* at \[\"input\"\]"):
        assert_accessible(page)
    page.set_content(f"<!doctype html><html lang=en><title>x</title><main><h1>x</h1><pre>{'x' * 200}</pre></main>")
    with pytest.raises(AssertionError, match=r"is \d+px wide at a 320px viewport"):
        assert_accessible(page)


def test_error_page_is_accessible(harness: Harness, page: Page) -> None:
    response = page.goto(f"{harness.base}/oauth/consent?request=unknown")
    assert response is not None
    assert response.status == 400
    assert "Consent expired" in page.title()
    assert_accessible(page)
