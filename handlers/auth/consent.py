"""The consent page: who is asking, for what, in plain words; Approve or Deny.

Server-rendered HTML without scripts. Clickjacking: `frame-ancestors 'none'` + `X-Frame-Options`
(HTML_HEADERS). CSRF: the form carries the consent request's id (a 256-bit secret known only to
the browser that signed in) and the POST must also bring the `SameSite=Strict` cookie set with
it, whose hash the request holds; a cross-site form post has neither.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from handlers.auth.errors import form_page

if TYPE_CHECKING:
    from starlette.responses import HTMLResponse

CONSENT_PATH = "/oauth/consent"
CONSENT_COOKIE = "mcpkit_consent"

_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;color:#1a1a1a;background:#fff;max-width:38rem;margin:2rem auto;"
    "padding:0 1rem;overflow-wrap:anywhere}h1{font-size:1.5rem}dt{font-weight:600}dd{margin:0 0 .75rem}"
    ".note{color:#5c3c00;background:#fff4e0;padding:.5rem .75rem;border-radius:4px}"
    "ul.scopes{padding-left:1.25rem}ul.scopes li{margin-bottom:.75rem}code{font-size:.95em}"
    ".actions{display:flex;gap:1rem;margin-top:1.5rem}"
    "button{font:inherit;padding:.6rem 1.4rem;border-radius:4px;border:2px solid #1d4ed8;cursor:pointer}"
    "button[value=approve]{background:#1d4ed8;color:#fff}button[value=deny]{background:#fff;color:#1d4ed8}"
    "button:focus-visible{outline:3px solid #b45309;outline-offset:2px}"
)


@dataclass(frozen=True)
class ScopeLine:
    scope: str
    description: str
    unlocks: list[str]


@dataclass(frozen=True)
class ConsentView:
    request_id: str
    client_name: str | None
    # The host that published the client's metadata document (CIMD), None for a registered (DCR) client.
    document_host: str | None
    redirect_uri: str
    account: str
    scopes: list[ScopeLine]
    already_allowed: list[str]


def _redirect_shown(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.scheme in {"http", "https"}:
        return parts.hostname or uri
    return f"{parts.scheme}: (an app on this device)"


def render(view: ConsentView, status: int = 200) -> HTMLResponse:
    e = html.escape
    name = e(view.client_name or "An unnamed application")
    if view.document_host is not None:
        provenance = (
            f"Its details come from <strong>{e(view.document_host)}</strong>, which published them; "
            "the name is the application's own claim."
        )
    else:
        provenance = "The application registered itself with this name: <strong>unverified</strong>."
    scope_items = "".join(
        f"<li><strong>{e(line.description)}</strong> (<code>{e(line.scope)}</code>)"
        + (f"<br>Unlocks: {', '.join(f'<code>{e(u)}</code>' for u in line.unlocks)}" if line.unlocks else "")
        + "</li>"
        for line in view.scopes
    )
    already = (
        f"<p>You already allowed: {', '.join(f'<code>{e(s)}</code>' for s in view.already_allowed)}.</p>"
        if view.already_allowed
        else ""
    )
    page = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>Allow {name} to use this server?</title><style>{_STYLE}</style></head><body><main>"
        f"<h1>Allow {name} to use this server?</h1>"
        f'<p class=note role="note">{provenance}</p>'
        "<dl>"
        f"<dt>Application</dt><dd>{name}</dd>"
        f"<dt>Sends you back to</dt><dd>{e(_redirect_shown(view.redirect_uri))}</dd>"
        f"<dt>Signed in as</dt><dd>{e(view.account)}</dd>"
        "</dl>"
        '<h2 id="asked">It asks to</h2>'
        f'<ul class=scopes aria-labelledby="asked">{scope_items}</ul>{already}'
        f'<form method="post" action="{CONSENT_PATH}">'
        f'<input type="hidden" name="request" value="{e(view.request_id)}">'
        '<div class=actions><button type="submit" name="decision" value="approve" id="approve">Allow</button>'
        '<button type="submit" name="decision" value="deny" id="deny">Deny</button></div></form>'
        "<p>You can take this back at any time: ask the server's administrator to revoke it "
        "(<code>mcpkit grants revoke</code>).</p>"
        "</main></body></html>"
    )
    return form_page(page, view.redirect_uri, status)
