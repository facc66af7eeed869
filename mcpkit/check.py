"""`mcpkit check URL`: the connector preflight.

Walks the path Claude's custom-connector dialog (and other remote MCP clients) take against a
server URL and reports each step as an item: pass, warn (works, with a caveat), fail (a
connector would not connect; every failure carries a fix) or skip. The steps follow the MCP
authorization spec (2025-11-25 / 2026-07-28): 401 + `WWW-Authenticate` (RFC 6750 §3) naming
the protected-resource metadata (RFC 9728), authorization-server metadata (RFC 8414) with PKCE
S256, dynamic client registration (RFC 7591/7592) or client ID metadata documents (CIMD).

Each probe is a plain HTTP request, so the same code checks `mcpkit dev` and a deployed stack.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import ipaddress
import json
import re
import secrets
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict

from mcpkit.messages import MODERN, modern_meta, rpc

if TYPE_CHECKING:
    import httpx

Status = Literal["pass", "warn", "fail", "skip"]
Front = Literal["http-api", "function-url", "unknown"]

HANDSHAKE_VERSION: Final = "2025-11-25"
MODERN_VERSION: Final = MODERN
# Claude's connector callbacks; Anthropic asks servers to allow both (support article 11503834).
CLAUDE_CALLBACKS: Final = ("https://claude.ai/api/mcp/auth_callback", "https://claude.com/api/mcp/auth_callback")
# Cursor's DCR request carries all three at once; many servers refuse the set for the custom scheme
# (erp-mafia/accounted PR #2225, bytebase#20510; ../shared/notes/clients.md).
CURSOR_CALLBACKS: Final = (
    "cursor://anysphere.cursor-mcp/oauth/callback",
    "https://www.cursor.com/agents/mcp/oauth/callback",
    "http://localhost:8787/callback",
)
# ChatGPT: one callback per connector plus a legacy one; its metadata document authenticates with
# private_key_jwt (../shared/notes/clients.md).
CHATGPT_CALLBACKS: Final = (
    "https://chatgpt.com/connector/oauth/mcpkit-check",
    "https://chatgpt.com/connector_platform_oauth_redirect",
)
# Which one ChatGPT signs with is not documented; a server offering either of the two common ones.
JWT_ALGS: Final = ("RS256", "ES256")
# The MCP Inspector's origin: the browser-based client that needs CORS.
DEFAULT_ORIGIN: Final = "http://localhost:6274"
EXPOSED_HEADERS: Final = ("mcp-session-id", "www-authenticate", "mcp-protocol-version")
PREFLIGHT_HEADERS: Final = ("authorization", "content-type", "mcp-protocol-version", "mcp-session-id")
REMAPPED_CHALLENGE: Final = "x-amzn-remapped-www-authenticate"
ACCEPT: Final = "application/json, text/event-stream"
CLIENT_INFO: Final = {"name": "mcpkit-check", "version": "1"}


class CheckItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    title: str
    status: Status
    detail: str = ""
    fix: str = ""


class CheckReport(BaseModel):
    url: str
    items: list[CheckItem]

    @property
    def ok(self) -> bool:
        """True when a connector would connect: nothing failed."""
        return not any(item.status == "fail" for item in self.items)

    def item(self, title: str) -> CheckItem:
        return next(i for i in self.items if i.title == title)


class _Stop(Exception):
    """Nothing further can be checked (the server is unreachable or the URL is unusable)."""


def is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def transport_security(url: str) -> CheckItem:
    """https is required for a connector; plain http is acceptable only on this machine (mcpkit dev)."""
    title = "HTTPS"
    parts = urlsplit(url)
    if parts.scheme == "https":
        return CheckItem(title=title, status="pass", detail="served over https")
    if parts.scheme == "http" and is_loopback(parts.hostname or ""):
        return CheckItem(
            title=title,
            status="warn",
            detail="plain http on loopback: fine for local development; connectors need the deployed https URL",
        )
    return CheckItem(
        title=title,
        status="fail",
        detail=f"{parts.scheme or 'no scheme'}:// on a non-loopback host: connectors refuse it, tokens travel in clear",
        fix="Use the https URL from `cdk deploy` (the McpServerUrl output) or a custom domain with a certificate.",
    )


def well_known_urls(resource_url: str, suffix: str) -> tuple[str, str]:
    """(path-inserted, root) well-known URLs for a resource or issuer (RFC 9728 §3.1, RFC 8414 §3.1)."""
    parts = urlsplit(resource_url)
    path = parts.path.rstrip("/")
    inserted = urlunsplit((parts.scheme, parts.netloc, f"/.well-known/{suffix}{path}", "", ""))
    root = urlunsplit((parts.scheme, parts.netloc, f"/.well-known/{suffix}", "", ""))
    return inserted, root


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """`Bearer a="b", c="d"` → ("bearer", {"a": "b", "c": "d"}) (RFC 6750 §3)."""
    scheme, _, rest = header.strip().partition(" ")
    params = {k.lower(): v for k, v in re.findall(r'([A-Za-z_][\w-]*)\s*=\s*"([^"]*)"', rest)}
    return scheme.lower(), params


def _pkce_challenge() -> str:
    verifier = secrets.token_urlsafe(48)
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _jsonrpc_result(response: httpx.Response) -> dict[str, Any] | None:
    """The JSON-RPC message of a JSON or SSE response, or None."""
    text = response.text
    messages: list[Any] = []
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        for line in text.splitlines():
            if line.startswith("data:"):
                try:
                    messages.append(json.loads(line[5:].strip()))
                except ValueError:
                    continue
    else:
        try:
            messages.append(response.json())
        except ValueError:
            return None
    for message in messages:
        if isinstance(message, dict) and ("result" in message or "error" in message):
            return message
    return None


def _token_fix(token: str, url: str) -> str:
    """Why a token was refused, when its claims tell (read unverified: only to explain)."""
    import time

    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return "That is not a JWT access token; get one with: .venv/bin/mcpkit token " + url
    audience = claims.get("aud") if isinstance(claims, dict) else None
    if isinstance(audience, str) and audience.rstrip("/") != url.rstrip("/"):
        return (
            f"The token was issued for {audience}, not {url}: a token is bound to the URL it was asked for "
            f"(localhost and 127.0.0.1 are different URLs). Get one for this URL: .venv/bin/mcpkit token {url}"
        )
    if isinstance(claims, dict) and isinstance(claims.get("exp"), int) and claims["exp"] < time.time():
        return f"The token has expired; get a fresh one: .venv/bin/mcpkit token {url}"
    return f"Get a fresh access token for this server: .venv/bin/mcpkit token {url}"


def _snippet(response: httpx.Response) -> str:
    return " ".join(response.text.split())[:200] or "(empty body)"


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _json_body(response: httpx.Response) -> Any:
    """The response's JSON body, or None when it says it is something else or is not JSON after all."""
    if not response.headers.get("content-type", "").startswith("application/json"):
        return None
    try:
        return response.json()
    except ValueError:
        return None


class _Checker:
    def __init__(self, url: str, client: httpx.Client, token: str | None, origin: str) -> None:
        self.url = url
        self.client = client
        self.token = token
        self.origin = origin
        self.items: list[CheckItem] = []
        self.auth_required = False
        self.challenge: httpx.Response | None = None
        self.front: Front = "unknown"

    def add(self, title: str, status: Status, detail: str = "", fix: str = "") -> None:
        self.items.append(CheckItem(title=title, status=status, detail=detail, fix=fix))

    # -- MCP requests --------------------------------------------------------------------------

    def post(self, body: dict[str, Any], *, version: str, extra: dict[str, str] | None = None) -> httpx.Response:
        import httpx

        headers = {"content-type": "application/json", "accept": ACCEPT, "mcp-protocol-version": version}
        if body.get("method") != "initialize":
            headers["mcp-method"] = str(body["method"])
        headers.update(extra or {})
        try:
            return self.client.post(self.url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            self.add(
                "Reachable",
                "fail",
                f"POST {self.url} failed: {exc!r}",
                "Check the URL (it ends in /mcp), that the server runs (`mcpkit dev` or the deployed stack) "
                "and that this machine can reach it.",
            )
            raise _Stop from exc

    def initialize_body(self) -> dict[str, Any]:
        return rpc("initialize", {"protocolVersion": HANDSHAKE_VERSION, "capabilities": {}, "clientInfo": CLIENT_INFO})

    def register(
        self, endpoint: str, name: str, redirect_uris: tuple[str, ...], auth_method: str
    ) -> tuple[httpx.Response, Any]:
        """POST the registration `name`'s client sends (RFC 7591); the response and its JSON body, or None.

        Raises httpx.HTTPError when the endpoint cannot be reached.
        """
        body = {
            "client_name": name,
            "redirect_uris": list(redirect_uris),
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": auth_method,
        }
        response = self.client.post(endpoint, json=body, headers={"accept": "application/json"})
        return response, _json_body(response)

    def check_initialize(self) -> None:
        title = f"initialize ({HANDSHAKE_VERSION})"
        response = self.post(self.initialize_body(), version=HANDSHAKE_VERSION)
        self.check_front(response)
        if response.status_code == 401:
            self.auth_required = True
            self.challenge = response
            self.add(title, "pass", "401: the server requires sign-in (OAuth); the authorization steps follow")
            return
        message = _jsonrpc_result(response) if response.status_code == 200 else None
        result = (message or {}).get("result")
        if isinstance(result, dict) and "protocolVersion" in result:
            name = (result.get("serverInfo") or {}).get("name", "?")
            self.add(title, "pass", f"server '{name}' negotiated {result['protocolVersion']}; no sign-in required")
            return
        self.add(
            title,
            "fail",
            f"HTTP {response.status_code}: {_snippet(response)}",
            "The endpoint must answer a JSON-RPC initialize POST with 200 (or 401 when sign-in is required); "
            "check the URL path and the server's logs.",
        )

    def check_front(self, response: httpx.Response) -> None:
        """Which of the kit's two fronts answers: it decides what the later steps may expect."""
        self.front = detect_front(self.url, response)
        if self.front == "function-url":
            self.add(
                "Front",
                "pass",
                "Lambda function URL (stream_responses = true): progress and log messages reach the client while "
                "a tool runs",
            )
        elif self.front == "http-api":
            self.add(
                "Front",
                "pass",
                "API Gateway HTTP API (buffered): a tool's progress and log messages are not delivered; "
                "stream_responses = true in mcpkit.toml streams them",
            )

    def check_streaming(self) -> None:
        """On the streaming front, an event-stream answer must arrive as SSE frames, ending with the result."""
        if self.front != "function-url":
            return
        title = "Event-stream answer (subscriptions/listen)"
        if self.auth_required and self.token is None:
            self.add(title, "skip", "sign-in required; pass --token to check an event-stream answer")
            return
        auth = {"authorization": f"Bearer {self.token}"} if self.token else {}
        body = rpc("subscriptions/listen", {"_meta": modern_meta(CLIENT_INFO["name"]), "notifications": {}}, id_=4)
        response = self.post(body, version=MODERN_VERSION, extra=auth)
        media_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        frames = [_json_or_none(line[5:]) for line in response.text.splitlines() if line.startswith("data:")]
        last = frames[-1] if frames else None
        ends_with_result = isinstance(last, dict) and last.get("id") == body["id"] and "result" in last
        if response.status_code == 200 and media_type == "text/event-stream" and ends_with_result:
            self.add(title, "pass", f"{len(frames)} SSE frames, the last one the result")
            return
        self.add(
            title,
            "fail",
            f"HTTP {response.status_code} {media_type or 'no content type'}: {_snippet(response)}",
            "The function URL must use invoke mode RESPONSE_STREAM and the function the kit's streaming runtime "
            "(AWS_LAMBDA_EXEC_WRAPPER=/var/task/handlers/stream_bootstrap); redeploy the stack with make deploy.",
        )

    @staticmethod
    def discover_body() -> dict[str, Any]:
        return rpc("server/discover", {"_meta": modern_meta(CLIENT_INFO["name"])}, id_=2)

    def check_modern(self) -> None:
        title = f"{MODERN_VERSION} request (server/discover)"
        response = self.post(self.discover_body(), version=MODERN_VERSION)
        if response.status_code == 401:
            self.add(title, "pass", "401 as for initialize: sign-in required")
            return
        message = _jsonrpc_result(response) or {}
        result = message.get("result")
        if response.status_code == 200 and isinstance(result, dict):
            versions = result.get("supportedVersions") or []
            if MODERN_VERSION in versions:
                self.add(title, "pass", f"supported versions: {', '.join(versions)}")
            else:
                self.add(title, "warn", f"answers server/discover but lists only {versions}; clients use initialize")
            return
        if response.status_code < 500 and ("error" in message or response.status_code in (400, 404, 405)):
            self.add(
                title,
                "warn",
                f"not supported (HTTP {response.status_code}); clients fall back to initialize",
            )
            return
        self.add(
            title,
            "fail",
            f"HTTP {response.status_code}: {_snippet(response)}",
            "A 5xx on an unknown method breaks clients that probe server/discover first; see the server's logs.",
        )

    # -- authorization ---------------------------------------------------------------------------

    def check_challenge(self) -> str | None:
        """The resource_metadata URL named by the 401, if any."""
        title = "401 carries WWW-Authenticate"
        assert self.challenge is not None
        header = self.challenge.headers.get("www-authenticate")
        if header is None:
            if REMAPPED_CHALLENGE in self.challenge.headers and self.front == "function-url":
                # Nothing between a function URL and the client can rename it back, but the metadata sits
                # at the host root, where clients look when the challenge names none (checked next).
                self.add(
                    title,
                    "warn",
                    f"the challenge arrived as {REMAPPED_CHALLENGE}: the function URL renamed it; clients fall back "
                    "to the well-known URLs at the host root",
                )
            elif REMAPPED_CHALLENGE in self.challenge.headers:
                self.add(
                    title,
                    "fail",
                    f"the challenge arrived as {REMAPPED_CHALLENGE}: API Gateway renamed the function's header",
                    "Map it back onto WWW-Authenticate for 401/403 (the kit's HTTP API response parameter mapping "
                    "of x-mcpkit-www-authenticate, mcpkit/gateway_contract.py) or reject in an authorizer with a "
                    "gateway response; clients read only WWW-Authenticate.",
                )
            else:
                self.add(
                    title,
                    "fail",
                    "401 without a WWW-Authenticate header",
                    'Answer 401 with `WWW-Authenticate: Bearer resource_metadata="<https URL of the protected '
                    'resource metadata>"` (MCP authorization spec, RFC 9728 §5.1).',
                )
            return None
        scheme, params = parse_challenge(header)
        if scheme != "bearer":
            self.add(
                title, "fail", f"scheme {scheme!r}, not Bearer", "Use the Bearer scheme (RFC 6750) for the challenge."
            )
            return None
        metadata_url = params.get("resource_metadata")
        if metadata_url is None:
            self.add(
                title,
                "warn",
                "Bearer challenge without resource_metadata; clients fall back to probing the well-known URLs",
                'Add resource_metadata="<PRM URL>" to the challenge.',
            )
        else:
            self.add(title, "pass", f"Bearer, resource_metadata={metadata_url}")
        return metadata_url

    def check_scopes(self, prm: dict[str, Any]) -> None:
        """Clients ask for the scopes the 401 names, else all of `scopes_supported` (MCP 2025-11-25)."""
        title = "Scopes a client will ask for"
        assert self.challenge is not None
        _, params = parse_challenge(self.challenge.headers.get("www-authenticate", ""))
        named = params.get("scope", "").split()
        supported = prm.get("scopes_supported")
        listed = [s for s in supported if isinstance(s, str)] if isinstance(supported, list) else []
        unknown = [s for s in named if listed and s not in listed]
        if unknown:
            self.add(
                title,
                "fail",
                f"the 401 names {' '.join(unknown)}, which scopes_supported ({' '.join(listed)}) lacks",
                "Name only scopes the protected resource metadata lists; clients request exactly these.",
            )
        elif named:
            self.add(title, "pass", f"the 401 names {' '.join(named)}")
        elif listed:
            self.add(title, "pass", f"no scope in the 401; clients ask for scopes_supported: {' '.join(listed)}")
        else:
            self.add(
                title,
                "warn",
                "neither the 401 nor the metadata names a scope; clients ask for none",
                'Add scope="..." to the challenge or scopes_supported to the protected resource metadata.',
            )

    def get_json(self, url: str, *, origin: bool = False) -> tuple[httpx.Response | None, Any]:
        import httpx

        try:
            response = self.client.get(
                url, headers={"accept": "application/json"} | ({"origin": self.origin} if origin else {})
            )
        except httpx.HTTPError:
            return None, None
        try:
            return response, response.json()
        except ValueError:
            return response, None

    def check_prm(self, metadata_url: str | None) -> dict[str, Any] | None:
        inserted, root = well_known_urls(self.url, "oauth-protected-resource")
        found: dict[str, Any] | None = None
        for title, url in (
            ("Protected resource metadata at the path URL", inserted),
            ("Protected resource metadata at the root URL", root),
        ):
            response, data = self.get_json(url)
            problem = self._prm_problem(response, data)
            if problem is None:
                assert isinstance(data, dict)
                found = found or data
                self.add(title, "pass", f"{url}: authorization_servers {data['authorization_servers']}")
            else:
                self.add(
                    title,
                    "fail",
                    f"{url}: {problem}",
                    self._host_mismatch(data)
                    or "Serve the RFC 9728 document at both /.well-known/oauth-protected-resource/mcp and "
                    "/.well-known/oauth-protected-resource: clients differ in which one they try.",
                )
        if metadata_url is not None and metadata_url not in (inserted, root):
            response, data = self.get_json(metadata_url)
            problem = self._prm_problem(response, data)
            if problem is not None:
                self.add(
                    "resource_metadata URL from the challenge",
                    "fail",
                    f"{metadata_url}: {problem}",
                    "Point resource_metadata at a URL that serves the metadata.",
                )
            else:
                found = found or data
        return found

    def _host_mismatch(self, data: Any) -> str | None:
        """The real cause when the metadata names this server under another host name (localhost vs 127.0.0.1)."""
        resource = data.get("resource") if isinstance(data, dict) else None
        if not isinstance(resource, str):
            return None
        want, got = urlsplit(self.url), urlsplit(resource)
        if want.hostname == got.hostname or (want.path.rstrip("/"), want.port) != (got.path.rstrip("/"), got.port):
            return None
        return (
            f"The server answered on {want.hostname} but names itself {got.hostname}: it builds its URLs from a "
            "fixed host instead of the Host the request used, so clients (the Inspector, Claude Code) reject it. "
            f"Use the URL it names ({resource}) or make it follow the request's host (mcpkit dev does)."
        )

    def _prm_problem(self, response: httpx.Response | None, data: Any) -> str | None:
        if response is None:
            return "unreachable"
        if response.status_code != 200:
            return f"HTTP {response.status_code}"
        if not isinstance(data, dict):
            return "not a JSON object"
        servers = data.get("authorization_servers")
        if not isinstance(servers, list) or not servers or not all(isinstance(s, str) for s in servers):
            return "no authorization_servers"
        resource = data.get("resource")
        if not isinstance(resource, str):
            return "no resource"
        want, got = urlsplit(self.url), urlsplit(resource)
        same_origin = (want.scheme, want.netloc.lower()) == (got.scheme, got.netloc.lower())
        # Clients accept a resource that is the server URL or a path prefix of it (TypeScript SDK checkResourceAllowed).
        if not same_origin or not want.path.rstrip("/").startswith(got.path.rstrip("/")):
            return f"resource {resource!r} does not identify {self.url}"
        return None

    def check_as_metadata(self, prm: dict[str, Any]) -> dict[str, Any] | None:
        title = "Authorization server metadata"
        issuer = prm["authorization_servers"][0]
        candidates = [
            *well_known_urls(issuer, "oauth-authorization-server")[:1],
            *well_known_urls(issuer, "openid-configuration")[:1],
        ]
        if urlsplit(issuer).path.strip("/"):
            candidates.append(issuer.rstrip("/") + "/.well-known/openid-configuration")
        for url in dict.fromkeys(candidates):
            response, data = self.get_json(url)
            if response is None or response.status_code != 200 or not isinstance(data, dict):
                continue
            missing = [
                k for k in ("issuer", "authorization_endpoint", "token_endpoint") if not isinstance(data.get(k), str)
            ]
            if missing:
                self.add(title, "fail", f"{url} lacks {', '.join(missing)}", "Publish a complete RFC 8414 document.")
                return None
            if data["issuer"].rstrip("/") != issuer.rstrip("/"):
                self.add(
                    title,
                    "fail",
                    f"{url} says issuer {data['issuer']!r} but the resource metadata names {issuer!r}",
                    "The issuer in the metadata must equal the authorization server URL (RFC 8414 §3.3).",
                )
                return None
            if "code" not in (data.get("response_types_supported") or ["code"]):
                self.add(title, "fail", "response_types_supported lacks 'code'", "Support the authorization code flow.")
                return None
            self.add(title, "pass", f"{url} (issuer {issuer})")
            return data
        self.add(
            title,
            "fail",
            f"no RFC 8414 or OpenID metadata found for issuer {issuer} (tried {', '.join(dict.fromkeys(candidates))})",
            "Serve /.well-known/oauth-authorization-server for the issuer named in the protected resource metadata.",
        )
        return None

    def check_pkce(self, metadata: dict[str, Any]) -> None:
        methods = metadata.get("code_challenge_methods_supported") or []
        if "S256" in methods:
            self.add("PKCE S256", "pass", f"code_challenge_methods_supported: {methods}")
        else:
            self.add(
                "PKCE S256",
                "fail",
                f"code_challenge_methods_supported is {methods or 'absent'}",
                'Advertise "S256" in code_challenge_methods_supported; MCP clients refuse an AS without it.',
            )

    def check_cimd(self, metadata: dict[str, Any]) -> bool:
        title = "Client ID metadata documents (CIMD)"
        if metadata.get("client_id_metadata_document_supported") is not True:
            self.add(title, "warn", "not advertised; Claude falls back to dynamic client registration")
            return False
        if "none" not in (metadata.get("token_endpoint_auth_methods_supported") or []):
            self.add(
                title,
                "warn",
                "advertised, but 'none' is not in token_endpoint_auth_methods_supported, so Claude uses DCR instead",
                'Add "none" to token_endpoint_auth_methods_supported.',
            )
            return False
        self.add(title, "pass", "client_id_metadata_document_supported with 'none' auth")
        return True

    def check_dcr(self, metadata: dict[str, Any], cimd: bool) -> dict[str, Any] | None:
        import httpx

        title = "Dynamic client registration (Claude's request)"
        endpoint = metadata.get("registration_endpoint")
        if not isinstance(endpoint, str):
            self.add(
                title,
                "warn" if cimd else "fail",
                "no registration_endpoint",
                "" if cimd else "Offer RFC 7591 registration (or CIMD): otherwise Claude cannot obtain a client.",
            )
            return None
        try:
            response, data = self.register(endpoint, "Claude", CLAUDE_CALLBACKS, "client_secret_post")
        except httpx.HTTPError as exc:
            self.add(title, "fail", f"POST {endpoint}: {exc!r}", "Make the registration endpoint reachable.")
            return None
        if response.status_code not in (200, 201) or not isinstance(data, dict) or "client_id" not in data:
            error = data.get("error") if isinstance(data, dict) else None
            callbacks_refused = error == "invalid_redirect_uri"
            self.add(
                "Claude callback URLs accepted" if callbacks_refused else title,
                "fail",
                f"HTTP {response.status_code}: {_snippet(response)}",
                "Allow https://claude.ai/api/mcp/auth_callback and https://claude.com/api/mcp/auth_callback as "
                "redirect URIs."
                if callbacks_refused
                else "Accept an RFC 7591 registration like Claude's (client_secret_post).",
            )
            return None
        method = data.get("token_endpoint_auth_method", "client_secret_basic")
        if method == "client_secret_post" and not data.get("client_secret"):
            self.add(title, "fail", "client_secret_post granted without a client_secret", "Return the client_secret.")
        elif method not in ("client_secret_post", "none"):
            self.add(
                title,
                "fail",
                f"granted token_endpoint_auth_method {method!r}; Claude authenticates only with client_secret_post",
                "Grant client_secret_post (or 'none' for a public client) as requested.",
            )
        else:
            self.add(title, "pass", f"client {data['client_id']} with {method}")
        if data.get("registration_client_uri") and data.get("registration_access_token"):
            self.add("registration_client_uri", "pass", str(data["registration_client_uri"]))
        else:
            self.add(
                "registration_client_uri",
                "fail",
                "the registration response has no registration_client_uri/registration_access_token",
                "Return both (RFC 7592) so clients can read, update and delete their registration.",
            )
        return data

    def check_callbacks(
        self,
        metadata: dict[str, Any],
        client: dict[str, Any] | None,
        who: str = "Claude",
        callbacks: tuple[str, ...] = CLAUDE_CALLBACKS,
    ) -> None:
        import httpx

        title = f"{who} callback URLs accepted"
        if any(i.title == title for i in self.items):
            return  # already failed at registration
        if client is None:
            self.add(title, "skip", "no registered client to try them with")
            return
        registered = client.get("redirect_uris") or []
        missing = [c for c in callbacks if c not in registered]
        if missing:
            self.add(title, "fail", f"registration dropped {missing}", "Keep every requested redirect URI.")
            return
        for callback in callbacks:
            query = {
                "response_type": "code",
                "client_id": client["client_id"],
                "redirect_uri": callback,
                "code_challenge": _pkce_challenge(),
                "code_challenge_method": "S256",
                "state": secrets.token_urlsafe(16),
                "resource": self.url,
            }
            try:
                response = self.client.get(f"{metadata['authorization_endpoint']}?{urlencode(query)}")
            except httpx.HTTPError as exc:
                self.add(title, "fail", f"authorization endpoint unreachable: {exc!r}", "Make it reachable.")
                return
            location = response.headers.get("location", "")
            error = (
                parse_qs(urlsplit(location).query).get("error", [None])[0] if location.startswith(callback) else None
            )
            if response.status_code >= 400 or error is not None:
                self.add(
                    title,
                    "fail",
                    f"/authorize with redirect_uri={callback} answered HTTP {response.status_code}"
                    + (f" error={error}" if error else f": {_snippet(response)}"),
                    f"Allow {' and '.join(callbacks)} as redirect URIs of registered clients.",
                )
                return
        self.add(title, "pass", f"registration and /authorize accept {', '.join(callbacks)}")

    def check_chatgpt(self, metadata: dict[str, Any]) -> None:
        """ChatGPT's client: a metadata document with private_key_jwt, or DCR with its callbacks."""
        import httpx

        title = "ChatGPT's metadata-document client (private_key_jwt)"
        methods = metadata.get("token_endpoint_auth_methods_supported") or []
        algs = metadata.get("token_endpoint_auth_signing_alg_values_supported") or []
        if metadata.get("client_id_metadata_document_supported") is not True:
            self.add(title, "warn", "CIMD not advertised; ChatGPT registers with DCR instead")
        elif "private_key_jwt" not in methods:
            self.add(
                title,
                "fail",
                "CIMD is advertised but private_key_jwt is not in token_endpoint_auth_methods_supported: ChatGPT's "
                "metadata document uses private_key_jwt, so its sign-in or token request would be refused",
                "Support private_key_jwt (RFC 7523) for metadata-document clients and advertise it, with "
                "token_endpoint_auth_signing_alg_values_supported.",
            )
        elif not set(JWT_ALGS) & set(algs):
            self.add(
                title,
                "fail",
                f"token_endpoint_auth_signing_alg_values_supported is {algs}: ChatGPT's assertion may be refused",
                f"Accept {' and '.join(JWT_ALGS)} client assertions and list them.",
            )
        else:
            self.add(
                title,
                "pass",
                f"private_key_jwt advertised with {', '.join(a for a in JWT_ALGS if a in algs)} "
                "(only a live connection shows ChatGPT's assertion is accepted)",
            )
        endpoint = metadata.get("registration_endpoint")
        if not isinstance(endpoint, str):
            return
        client: dict[str, Any] | None = None
        try:
            response, data = self.register(endpoint, "ChatGPT", CHATGPT_CALLBACKS, "none")
        except httpx.HTTPError as exc:
            data, response = None, None
            self.add("ChatGPT callback URLs accepted", "fail", f"POST {endpoint}: {exc!r}", "Make it reachable.")
        if response is not None and (response.status_code not in (200, 201) or not isinstance(data, dict)):
            self.add(
                "ChatGPT callback URLs accepted",
                "fail",
                f"registration with ChatGPT's redirect URIs answered HTTP {response.status_code}: {_snippet(response)}",
                f"Accept {' and '.join(CHATGPT_CALLBACKS)} (https redirect URIs on chatgpt.com).",
            )
        elif isinstance(data, dict):
            client = data
        self.check_callbacks(metadata, client, "ChatGPT", CHATGPT_CALLBACKS)
        self.delete_client(client)

    def check_cursor(self, metadata: dict[str, Any]) -> None:
        import httpx

        title = "Cursor's registration (cursor:// and two other redirect URIs)"
        endpoint = metadata.get("registration_endpoint")
        if not isinstance(endpoint, str):
            self.add(title, "skip", "no registration_endpoint")
            return
        try:
            response, data = self.register(endpoint, "Cursor", CURSOR_CALLBACKS, "none")
        except httpx.HTTPError as exc:
            self.add(title, "fail", f"POST {endpoint}: {exc!r}", "Make the registration endpoint reachable.")
            return
        registered = data.get("redirect_uris") if isinstance(data, dict) else None
        if response.status_code not in (200, 201) or not isinstance(registered, list):
            self.add(
                title,
                "fail",
                f"HTTP {response.status_code}: {_snippet(response)}",
                "Accept cursor://anysphere.cursor-mcp/oauth/callback together with Cursor's other two redirect URIs: "
                "refusing one refuses Cursor.",
            )
            return
        missing = [c for c in CURSOR_CALLBACKS if c not in registered]
        if missing:
            self.add(title, "fail", f"registration dropped {missing}", "Keep every requested redirect URI.")
        else:
            self.add(title, "pass", "all three redirect URIs registered")
        if isinstance(data, dict):
            self.delete_client(data)

    def delete_client(self, client: dict[str, Any] | None) -> None:
        import httpx

        if client is None or not client.get("registration_client_uri") or not client.get("registration_access_token"):
            return
        # Best effort: the check should not leave its test client behind (RFC 7592 §2.3).
        with contextlib.suppress(httpx.HTTPError):
            self.client.delete(
                client["registration_client_uri"],
                headers={"authorization": f"Bearer {client['registration_access_token']}"},
            )

    # -- CORS and tools ----------------------------------------------------------------------------

    def check_cors(self) -> None:
        import httpx

        title = f"CORS preflight from {self.origin}"
        try:
            response = self.client.options(
                self.url,
                headers={
                    "origin": self.origin,
                    "access-control-request-method": "POST",
                    "access-control-request-headers": ",".join(PREFLIGHT_HEADERS),
                },
            )
        except httpx.HTTPError as exc:
            self.add(title, "fail", f"OPTIONS failed: {exc!r}", "Answer CORS preflights.")
            return
        allow_origin = response.headers.get("access-control-allow-origin")
        allow_headers = {h.strip().lower() for h in response.headers.get("access-control-allow-headers", "").split(",")}
        problems = []
        if response.status_code >= 300:
            problems.append(f"HTTP {response.status_code} (a preflight must never meet auth)")
        if allow_origin not in (self.origin, "*"):
            problems.append(f"Access-Control-Allow-Origin is {allow_origin!r}")
        elif "*" not in allow_headers and (missing := [h for h in PREFLIGHT_HEADERS if h not in allow_headers]):
            problems.append(f"Access-Control-Allow-Headers lacks {', '.join(missing)}")
        if problems:
            self.add(
                title,
                "fail",
                "; ".join(problems),
                f'Add "{self.origin}" to allowed_origins in mcpkit.toml (or pass --origin for the client you use).',
            )
            return
        # A stateless request (no session is created) from the browser origin, to see what it may read.
        answered = self.post(self.discover_body(), version=MODERN_VERSION, extra={"origin": self.origin})
        if answered.status_code == 403:
            self.add(
                title,
                "fail",
                f"requests from {self.origin} are refused (HTTP 403)",
                f'Add "{self.origin}" to allowed_origins in mcpkit.toml (or pass --origin for the client you use).',
            )
            return
        exposed = {h.strip().lower() for h in answered.headers.get("access-control-expose-headers", "").split(",")}
        needed = [h for h in EXPOSED_HEADERS if h != "www-authenticate" or self.auth_required]
        if "*" not in exposed and (missing := [h for h in needed if h not in exposed]):
            self.add(
                title,
                "fail",
                f"responses do not expose {', '.join(missing)} (Access-Control-Expose-Headers)",
                "Expose Mcp-Session-Id, WWW-Authenticate and MCP-Protocol-Version so browser clients can read them.",
            )
            return
        self.add(title, "pass", "preflight answered; session, version and challenge headers exposed")

    def check_tools(self) -> None:
        title = "tools/list"
        if self.auth_required and self.token is None:
            self.add(
                title,
                "skip",
                "sign-in required; to list the tools pass --token with an access token from "
                f".venv/bin/mcpkit token {self.url} (or --dev for the running mcpkit dev)",
            )
            return
        auth = {"authorization": f"Bearer {self.token}"} if self.token else {}
        opened = self.post(self.initialize_body(), version=HANDSHAKE_VERSION, extra=auth)
        if opened.status_code == 401:
            self.add(title, "fail", "the server refused the token (401)", _token_fix(self.token or "", self.url))
            return
        session = {"mcp-session-id": opened.headers["mcp-session-id"]} if "mcp-session-id" in opened.headers else {}
        listed = self.post(
            {"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {}},
            version=HANDSHAKE_VERSION,
            extra={**auth, **session},
        )
        result = ((_jsonrpc_result(listed) if listed.status_code == 200 else None) or {}).get("result")
        if not isinstance(result, dict) or not isinstance(result.get("tools"), list):
            self.add(title, "fail", f"HTTP {listed.status_code}: {_snippet(listed)}", "See the server's logs.")
            return
        names = [str(t.get("name")) for t in result["tools"] if isinstance(t, dict)]
        self.add(title, "pass" if names else "warn", f"{len(names)} tools: {', '.join(names) or 'none'}")

    def run(self) -> None:
        security = transport_security(self.url)
        self.items.append(security)
        if urlsplit(self.url).scheme not in ("http", "https"):
            raise _Stop
        self.check_initialize()
        self.check_modern()
        if self.auth_required:
            metadata_url = self.check_challenge()
            prm = self.check_prm(metadata_url)
            if prm is not None:
                self.check_scopes(prm)
            metadata = self.check_as_metadata(prm) if prm is not None else None
            if metadata is not None:
                self.check_pkce(metadata)
                cimd = self.check_cimd(metadata)
                client = self.check_dcr(metadata, cimd)
                self.check_callbacks(metadata, client)
                self.delete_client(client)
                self.check_cursor(metadata)
                self.check_chatgpt(metadata)
        else:
            self.add("Authorization (OAuth)", "skip", "the server answers without sign-in")
        self.check_cors()
        self.check_tools()
        self.check_streaming()


def detect_front(url: str, response: httpx.Response) -> Front:
    """HTTP API answers carry `apigw-requestid`; function URLs have their own host names and `x-amzn-requestid`."""
    host = (urlsplit(url).hostname or "").lower()
    if ".lambda-url." in host and host.endswith(".on.aws"):
        return "function-url"
    if "apigw-requestid" in response.headers or (".execute-api." in host and host.endswith(".amazonaws.com")):
        return "http-api"
    if "x-amzn-requestid" in response.headers:
        return "function-url"
    return "unknown"


def run_check(
    url: str,
    *,
    token: str | None = None,
    origin: str = DEFAULT_ORIGIN,
    timeout: float = 10.0,
) -> CheckReport:
    """Run every check against `url` and return the report (never raises for a broken server)."""
    import httpx

    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        checker = _Checker(url, client, token, origin)
        with contextlib.suppress(_Stop):
            checker.run()
    return CheckReport(url=url, items=checker.items)


SYMBOLS: Final[dict[Status, str]] = {
    "pass": "[green]✔[/]",
    "warn": "[yellow]![/]",
    "fail": "[red]✖[/]",
    "skip": "[dim]-[/]",
}


def print_report(report: CheckReport, console: Any) -> None:
    from rich.markup import escape

    console.print(f"[bold]Connector preflight for {escape(report.url)}[/]")
    for item in report.items:
        console.print(
            f" {SYMBOLS[item.status]} {escape(item.title)}: {escape(item.detail)}", highlight=False, soft_wrap=True
        )
        if item.status == "fail" and item.fix:
            console.print(f"     [bold]fix:[/] {escape(item.fix)}", highlight=False, soft_wrap=True)
    failed = sum(1 for i in report.items if i.status == "fail")
    if report.ok:
        console.print("[bold green]A connector would connect.[/]")
    else:
        console.print(f"[bold red]{failed} problem(s): a connector would not connect.[/]")
