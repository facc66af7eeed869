"""OAuth error answers: RFC 6749 §5.2 JSON for the back channel, an HTML page for the person."""

from __future__ import annotations

import html
import json
import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from starlette.responses import HTMLResponse, Response

if TYPE_CHECKING:
    from collections.abc import Mapping

_CSP_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d+)?$|^\[[0-9A-Fa-f:.]+\](:\d+)?$")
_CSP_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# The kit's own HTML (error page, dev sign-in form): no scripts, no framing (clickjacking of the
# sign-in), forms only back to this origin, no referrer leaking the query (txn, state), never cached.
HTML_HEADERS = {
    **NO_STORE,
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class OAuthError(Exception):
    """An RFC 6749 error for a back-channel endpoint (token, register, revoke)."""

    def __init__(
        self, error: str, description: str, status: int = 400, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status
        self.headers = dict(headers or {})

    def response(self) -> Response:
        return oauth_json(
            {"error": self.error, "error_description": self.description}, self.status, headers=self.headers
        )


def invalid_client(description: str) -> OAuthError:
    # HTTP 401: Claude (and the MCP SDKs) drop their registration and register again on it.
    return OAuthError("invalid_client", description, 401, {"WWW-Authenticate": 'Basic realm="oauth"'})


def oauth_json(body: object, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body), status_code=status, media_type="application/json", headers={**NO_STORE, **(headers or {})}
    )


def error_page(title: str, message: str, status: int = 400) -> HTMLResponse:
    """Shown instead of a redirect when the redirect target itself cannot be trusted (RFC 6749 §4.1.2.1)."""
    return HTMLResponse(
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1"><title>'
        f"{html.escape(title)}</title></head><body><main><h1>{html.escape(title)}</h1>"
        f"<p>{html.escape(message)}</p><p>Go back to the application and connect again.</p></main></body></html>",
        status_code=status,
        headers=HTML_HEADERS,
    )


def form_page(page: str, redirect_uri: str, status: int = 200) -> HTMLResponse:
    """A page whose form's answer is a 303 to the client's `redirect_uri`.

    Chromium applies the CSP's `form-action` to the redirect after a form POST, so 'self' alone
    would block the way back to the client: the redirect's origin (or a native app's scheme) is
    added, and only if it is plain host[:port], so a registered URI cannot smuggle in directives.
    """
    parts = urlsplit(redirect_uri)
    if parts.scheme in {"http", "https"}:
        target = f"{parts.scheme}://{parts.netloc}" if _CSP_HOST.fullmatch(parts.netloc) else ""
    else:
        target = f"{parts.scheme}:" if _CSP_SCHEME.fullmatch(parts.scheme) else ""  # cursor:, vscode:
    policy = HTML_HEADERS["Content-Security-Policy"].replace(
        "form-action 'self'", f"form-action 'self' {target}".rstrip()
    )
    return HTMLResponse(page, status_code=status, headers={**HTML_HEADERS, "Content-Security-Policy": policy})
