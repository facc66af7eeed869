"""`mcpkit token`: an access token for scripts, curl and `mcpkit check --token`, through the real flow.

Both modes do what an MCP client does (RFC 9728 discovery from the 401, RFC 8414 metadata, RFC 7591
registration as a public client, PKCE S256, `resource` on both legs, RFC 8252 loopback redirect):

- `--dev`: against a running `mcpkit dev`, the dev user signs in on the dev sign-in form and
  approves the consent page, all over HTTP without a browser;
- a deployed URL: the person's browser opens the authorization URL, and a one-shot listener on
  127.0.0.1 receives the code.

Scopes follow the client rules: `--scope` if given, else the 401's `scope`, else every scope in
the protected-resource metadata (as Claude asks).
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx

CLIENT_NAME = "mcpkit token"
BROWSER_TIMEOUT_SECONDS = 300


class TokenError(Exception):
    """The flow stopped; the message says at which step and why."""


@dataclass(frozen=True)
class Authorization:
    resource: str
    scopes: list[str]
    authorization_endpoint: str
    token_endpoint: str
    registration_endpoint: str


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def _json(response: httpx.Response, step: str) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.status_code >= 400 or not isinstance(data, dict):
        detail = data.get("error_description") or data.get("error") if isinstance(data, dict) else response.text[:200]
        raise TokenError(f"{step}: HTTP {response.status_code} from {response.request.url}: {detail}")
    return data


def discover(http: httpx.Client, url: str, scopes: list[str] | None) -> Authorization:
    """From the MCP URL to the endpoints and scopes, as a client does on its first 401."""
    from mcpkit.check import parse_challenge, well_known_urls

    probe = http.post(
        url,
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={"accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-11-25"},
    )
    if probe.status_code != 401:
        raise TokenError(f"{url} answered {probe.status_code}, not 401: it does not ask for sign-in, so needs no token")
    header = probe.headers.get("www-authenticate") or probe.headers.get("x-amzn-remapped-www-authenticate") or ""
    _, params = parse_challenge(header)
    prm = _json(
        http.get(params.get("resource_metadata") or well_known_urls(url, "oauth-protected-resource")[0]),
        "protected resource metadata",
    )
    issuer = str((prm.get("authorization_servers") or [""])[0])
    metadata = _json(
        http.get(well_known_urls(issuer, "oauth-authorization-server")[0]), "authorization server metadata"
    )
    if "registration_endpoint" not in metadata:
        raise TokenError(f"{issuer} offers no dynamic client registration; register a client by hand")
    chosen = scopes or (
        params["scope"].split() if params.get("scope") else [str(s) for s in prm.get("scopes_supported", [])]
    )
    return Authorization(
        resource=str(prm.get("resource") or url),
        scopes=chosen,
        authorization_endpoint=str(metadata["authorization_endpoint"]),
        token_endpoint=str(metadata["token_endpoint"]),
        registration_endpoint=str(metadata["registration_endpoint"]),
    )


def _register(http: httpx.Client, auth: Authorization, redirect_uri: str) -> str:
    registered = _json(
        http.post(
            auth.registration_endpoint,
            json={
                "client_name": CLIENT_NAME,
                "redirect_uris": [redirect_uri],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
            },
        ),
        "client registration",
    )
    return str(registered["client_id"])


def _authorize_url(auth: Authorization, client_id: str, redirect_uri: str, challenge: str, state: str) -> str:
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": state,
        "resource": auth.resource,
    }
    if auth.scopes:
        query["scope"] = " ".join(auth.scopes)
    return f"{auth.authorization_endpoint}?{urlencode(query)}"


def _redeem(
    http: httpx.Client, auth: Authorization, client_id: str, redirect_uri: str, callback: str, state: str, verifier: str
) -> dict[str, Any]:
    query = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
    if query.get("state") != state:
        raise TokenError("the authorization response carries another state; start again")
    if "error" in query:
        raise TokenError(f"authorization refused: {query['error']}: {query.get('error_description', '')}".rstrip(": "))
    return _json(
        http.post(
            auth.token_endpoint,
            data={
                "grant_type": "authorization_code",
                "code": query.get("code", ""),
                "code_verifier": verifier,
                "redirect_uri": redirect_uri,
                "client_id": client_id,
                "resource": auth.resource,
            },
        ),
        "token request",
    )


def dev_token(url: str, username: str, password: str, scopes: list[str] | None = None) -> dict[str, Any]:
    """Sign the dev user in on `mcpkit dev`'s own form and consent page; the token response."""
    import httpx

    redirect_uri = "http://127.0.0.1/callback"  # never visited: the code is read from the redirect itself
    with httpx.Client(timeout=30, follow_redirects=False) as http:
        auth = discover(http, url, scopes)
        client_id = _register(http, auth, redirect_uri)
        verifier, challenge = _pkce()
        state = secrets.token_urlsafe(16)
        response = http.get(_authorize_url(auth, client_id, redirect_uri, challenge, state))
        for _ in range(6):
            location = response.headers.get("location")
            if location is not None and location.startswith(redirect_uri):
                return _redeem(http, auth, client_id, redirect_uri, location, state, verifier)
            if location is not None:
                response = http.get(httpx.URL(str(response.request.url)).join(location))
                continue
            response = _answer_page(http, response, username, password)
        raise TokenError("the sign-in did not come back to the client; is this a `mcpkit dev --auth oauth`?")


def _page_text(page: str) -> str:
    """What an HTML page says to the person (the server's error page names the OAuth error), on one line."""
    body = re.sub(r"<(title|style|script)\b.*?</\1>", " ", page, flags=re.DOTALL | re.IGNORECASE)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())[:300]


def _answer_page(http: httpx.Client, page: httpx.Response, username: str, password: str) -> httpx.Response:
    """Fill in the dev sign-in form or approve the consent page, as the person would."""
    if page.status_code != 200:
        raise TokenError(f"sign-in: HTTP {page.status_code} at {page.request.url}: {_page_text(page.text)}")
    fields = {
        html.unescape(name): html.unescape(value)
        for name, value in re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page.text)
    }
    action = re.search(r'<form[^>]*action="([^"]+)"', page.text)
    target = page.request.url.join(html.unescape(action.group(1))) if action else page.request.url
    if "password" in page.text and "txn" in fields:
        return http.post(target, data={**fields, "username": username, "password": password})
    if "request" in fields:
        return http.post(target, data={"request": fields["request"], "decision": "approve"})
    raise TokenError(f"sign-in: unexpected page at {page.request.url}")


def browser_token(
    url: str, scopes: list[str] | None = None, open_browser: Callable[[str], object] | None = None
) -> dict[str, Any]:
    """The person signs in in their browser; a one-shot listener on 127.0.0.1 receives the code."""
    import webbrowser

    import httpx

    received: list[str] = []
    done = threading.Event()

    class Callback(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if urlsplit(self.path).path != "/callback":
                self.send_error(404)
                return
            received.append(self.path)
            self.send_response(200)
            self.send_header("content-type", "text/plain; charset=utf-8")
            self.end_headers()
            self.wfile.write(b"mcpkit token: signed in; you can close this tab and return to the terminal.\n")
            done.set()

        def log_message(self, *_: Any) -> None:
            return

    listener = HTTPServer(("127.0.0.1", 0), Callback)
    redirect_uri = f"http://127.0.0.1:{listener.server_port}/callback"
    threading.Thread(target=listener.serve_forever, name="token-callback", daemon=True).start()
    try:
        with httpx.Client(timeout=30, follow_redirects=False) as http:
            auth = discover(http, url, scopes)
            client_id = _register(http, auth, redirect_uri)
            verifier, challenge = _pkce()
            state = secrets.token_urlsafe(16)
            authorize = _authorize_url(auth, client_id, redirect_uri, challenge, state)
            import sys

            print(f"Opening the sign-in page; if no browser opens, visit:\n{authorize}", file=sys.stderr)
            (open_browser or webbrowser.open)(authorize)
            if not done.wait(BROWSER_TIMEOUT_SECONDS):
                raise TokenError(f"no sign-in came back to {redirect_uri} within {BROWSER_TIMEOUT_SECONDS} s")
            return _redeem(
                http, auth, client_id, redirect_uri, f"{redirect_uri}{received[0][len('/callback') :]}", state, verifier
            )
    finally:
        listener.shutdown()
        listener.server_close()
