"""OAuth error answers: RFC 6749 §5.2 JSON for the back channel, an HTML page for the person."""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING

from starlette.responses import HTMLResponse, Response

if TYPE_CHECKING:
    from collections.abc import Mapping

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
