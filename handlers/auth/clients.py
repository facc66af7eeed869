"""OAuth clients: dynamic registration (RFC 7591), client ID metadata documents, redirect URI rules.

Redirect URIs (decided here, tested in tests/auth and tests/hostile):
- `https://…` with a valid host: web clients (Claude, ChatGPT, vscode.dev).
- `http://` only on a loopback host (`localhost`, `127.0.0.1`, `[::1]`): native apps (Claude
  Code, VS Code, the Inspector). A loopback URI matches on any port (RFC 8252 §7.3), because a
  native app picks a free port at run time and Claude Code's CIMD document has none.
- private-use schemes in reverse-domain form (`com.example.app:/cb`, RFC 8252 §7.1), plus the
  schemes of known clients that predate that advice (`cursor`, KNOWN_CLIENT_SCHEMES) and any the
  server's `mcpkit.toml` adds (`[oauth] redirect_schemes`). Any other scheme may open an OS
  handler (`ms-msdt:`, `search-ms:`) or act in the browser (`javascript:`, `data:`): refused.
- plain RFC 3986 ASCII (handlers/auth/uris.py), no fragments, no user info. Everything except
  the loopback port matches exactly.

Client ID metadata documents: a `client_id` that is an https URL is the URL of the client's
metadata. It is fetched SSRF-safe (every address of the host must be public, the connection goes
to the checked address, no redirects, CIMD_TIMEOUT_SECONDS in all, 64 KB) and cached in the table
for min(max-age, 24 h), 1 h without max-age and never less than 5 min. A failure is cached too
(CIMD_FAILURE_SECONDS), and fetches are rate limited per source address and per document host, so
nobody can make the server fetch on their behalf faster than that. In local dev mode only,
loopback addresses (and plain http to them) are allowed, so tests and laptops can serve a document.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import secrets
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal
from urllib.parse import SplitResult, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from handlers.auth import uris
from handlers.auth.errors import OAuthError
from handlers.auth.state import ClientRecord
from handlers.auth.tokens import sha256_hex

if TYPE_CHECKING:
    from handlers.auth.state import OAuthState
    from handlers.rate_limit import RateLimiter

logger = logging.getLogger("handlers.auth")
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})
REFUSED_SCHEMES = frozenset(
    {"javascript", "data", "file", "blob", "about", "vbscript", "ftp", "ws", "wss", "filesystem", "view-source"}
)
# Clients whose redirect scheme is not in reverse-domain form; each named with its source.
# cursor: Cursor registers cursor://anysphere.cursor-mcp/oauth/callback with two other URIs in one
# request (erp-mafia/accounted PR #2225, bytebase#20510; ../shared/notes/clients.md).
KNOWN_CLIENT_SCHEMES: Final = frozenset({"cursor"})
# "none" stays listed: Claude picks metadata documents only when it is (../shared/notes/clients.md).
AUTH_METHODS = ("client_secret_post", "client_secret_basic", "private_key_jwt", "none")
# Clients that hold no secret of ours: public ones and those that sign assertions with their own keys.
SECRETLESS_METHODS = frozenset({"none", "private_key_jwt"})
MAX_JWKS_KEYS = 20
# A document host is a CDN or a web server: from an AWS region, DNS, TCP, TLS 1.3 and one GET take
# about four round trips, 1.2 s even at a 300 ms intercontinental round trip. 2 s fits that with
# margin and caps how long any one request can make an instance wait for a host someone else chose.
CIMD_TIMEOUT_SECONDS = 2.0
CIMD_MAX_BYTES = 64 * 1024
CIMD_DEFAULT_SECONDS = 3600
CIMD_MIN_SECONDS = 300
CIMD_MAX_SECONDS = 24 * 3600
# A failed fetch is answered from the table this long: long enough that retries cost no fetch,
# short enough that a developer who just fixed their document waits only a minute.
CIMD_FAILURE_SECONDS = 60
NOT_FETCHED = "the client metadata document could not be fetched"
# Registered (DCR) client ids are ours: printable ASCII, short. Anything else is not looked up
# (a 700-character non-ASCII id would be over DynamoDB's key size and fail the read).
_CLIENT_ID = re.compile(r"^[\x21-\x7e]{1,200}$")


def check_redirect_uri(uri: str, native_schemes: frozenset[str] = KNOWN_CLIENT_SCHEMES) -> str:
    """`uri` if it is an acceptable redirect URI, else ValueError saying why."""
    parsed = uris.parse(uri, "redirect URI")
    scheme, parts = parsed.scheme, parsed.parts
    if parts.fragment or "#" in uri:
        raise ValueError(f"{uri!r}: a redirect URI must not contain a fragment")
    if "@" in parts.netloc:
        raise ValueError(f"{uri!r}: a redirect URI must not contain user info")
    if scheme == "https":
        uris.check_host(parsed, "redirect URI")
        return uri
    if scheme == "http":
        if parsed.host in LOOPBACK_HOSTS:
            return uri
        raise ValueError(f"{uri!r}: plain http is allowed only for loopback hosts (localhost, 127.0.0.1, [::1])")
    if scheme in REFUSED_SCHEMES:
        raise ValueError(f"{uri!r}: the {scheme}: scheme cannot be a redirect URI")
    if uris.is_reverse_domain_scheme(scheme) or scheme in native_schemes:
        return uri
    raise ValueError(
        f"{uri!r}: a native app's redirect URI needs a private-use scheme in reverse-domain form such as "
        f"com.example.app:/callback (RFC 8252 §7.1); the server's mcpkit.toml can allow {scheme}: under "
        "[oauth] redirect_schemes"
    )


def _split(uri: str) -> SplitResult | None:
    try:
        parts = urlsplit(uri)
        _ = parts.hostname, parts.port
    except ValueError:
        return None
    return parts


def _is_loopback_http(parts: SplitResult | None) -> bool:
    return parts is not None and parts.scheme.lower() == "http" and (parts.hostname or "").lower() in LOOPBACK_HOSTS


def redirect_uri_matches(registered: str, presented: str) -> bool:
    if registered == presented:
        return True
    a, b = _split(registered), _split(presented)
    if a is None or b is None or not (_is_loopback_http(a) and _is_loopback_http(b)):
        return False
    # RFC 8252 §7.3: any port on loopback; everything else exact.
    return (a.hostname or "").lower() == (b.hostname or "").lower() and (a.path, a.query) == (b.path, b.query)


class RegistrationRequest(BaseModel):
    """RFC 7591 §2 client metadata; unknown fields are ignored (§3.2.1 allows it)."""

    model_config = ConfigDict(extra="ignore")

    redirect_uris: Annotated[list[str], Field(min_length=1, max_length=20)]
    token_endpoint_auth_method: Literal["client_secret_post", "client_secret_basic", "private_key_jwt", "none"] = (
        "client_secret_basic"  # noqa: S105 - RFC 7591 §2 default, a method name
    )
    jwks_uri: Annotated[str, Field(max_length=2000)] | None = None
    jwks: dict[str, Any] | None = None
    grant_types: list[str] = Field(default_factory=lambda: ["authorization_code"])
    response_types: list[str] = Field(default_factory=lambda: ["code"])
    client_name: Annotated[str, Field(max_length=200)] | None = None
    client_uri: Annotated[str, Field(max_length=2000)] | None = None
    logo_uri: Annotated[str, Field(max_length=2000)] | None = None
    scope: Annotated[str, Field(max_length=1000)] | None = None
    contacts: list[str] | None = None
    software_id: Annotated[str, Field(max_length=200)] | None = None
    software_version: Annotated[str, Field(max_length=100)] | None = None

    @field_validator("redirect_uris")
    @classmethod
    def _redirects(cls, values: list[str], info: ValidationInfo) -> list[str]:
        schemes = (info.context or {}).get("redirect_schemes", KNOWN_CLIENT_SCHEMES)
        return [check_redirect_uri(u, schemes) for u in values]

    @field_validator("client_uri", "logo_uri", mode="before")
    @classmethod
    def _empty_is_absent(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("client_uri", "logo_uri")
    @classmethod
    def _web_urls(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else uris.web_url(value, str(info.field_name))

    @field_validator("jwks_uri")
    @classmethod
    def _jwks_uri(cls, value: str | None) -> str | None:
        return None if value is None else check_jwks_uri(value)

    @field_validator("jwks")
    @classmethod
    def _jwks(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else check_jwks(value)

    @model_validator(mode="after")
    def _keys_for_jwt(self) -> RegistrationRequest:
        signs = self.token_endpoint_auth_method == "private_key_jwt"  # noqa: S105 - a method name
        has_keys = (self.jwks_uri is not None) + (self.jwks is not None)
        if signs and has_keys != 1:
            raise ValueError("private_key_jwt needs the client's public keys: send exactly one of jwks_uri and jwks")
        return self

    @field_validator("grant_types")
    @classmethod
    def _grants(cls, grants: list[str]) -> list[str]:
        unsupported = set(grants) - {"authorization_code", "refresh_token"}
        if unsupported:
            raise ValueError(f"unsupported grant types {sorted(unsupported)}; use authorization_code, refresh_token")
        return grants

    @field_validator("response_types")
    @classmethod
    def _responses(cls, types: list[str]) -> list[str]:
        if set(types) - {"code"}:
            raise ValueError("only the 'code' response type is supported")
        return types


@dataclass(frozen=True)
class Client:
    """A client as the authorize and token endpoints see it, registered or described by a document."""

    client_id: str
    redirect_uris: tuple[str, ...]
    auth_method: str
    secret_hash: str | None
    record: ClientRecord | None = None  # None for metadata-document clients
    # `client_name` as the client states it (DCR request or metadata document): shown, never trusted.
    name: str | None = None
    # private_key_jwt: where the client's public keys are (exactly one of the two).
    jwks_uri: str | None = None
    jwks: dict[str, Any] | None = None

    def allows_redirect(self, uri: str) -> bool:
        return any(redirect_uri_matches(r, uri) for r in self.redirect_uris)

    def secret_matches(self, secret: str | None) -> bool:
        if self.secret_hash is None:
            return True
        return secret is not None and secrets.compare_digest(sha256_hex(secret), self.secret_hash)


def register(
    state: OAuthState,
    request: RegistrationRequest,
    idle_seconds: int,
    registration_uri: str,
    supported_scopes: tuple[str, ...],
) -> dict[str, Any]:
    """Store a new client and return the RFC 7591 §3.2.1 response (secrets appear here once, never again)."""
    client_id = f"mcp-{secrets.token_urlsafe(18)}"
    secretless = request.token_endpoint_auth_method in SECRETLESS_METHODS
    secret = None if secretless else secrets.token_urlsafe(32)
    registration_token = secrets.token_urlsafe(32)
    now = int(time.time())
    metadata = request.model_dump(exclude_none=True)
    if "scope" in metadata:
        # Informational only: authorization requests may ask for any supported scope (step-up).
        granted = [s for s in str(metadata["scope"]).split() if s in supported_scopes]
        metadata["scope"] = " ".join(granted or supported_scopes)
    record = ClientRecord(
        client_id=client_id,
        secret_hash=sha256_hex(secret) if secret else None,
        registration_token_hash=sha256_hex(registration_token),
        issued_at=now,
        metadata=metadata,
        touched_at=now,
    )
    state.put_client(record, idle_seconds)
    response = registration_view(record, registration_uri)
    response["registration_access_token"] = registration_token
    if secret is not None:
        response["client_secret"] = secret
        response["client_secret_expires_at"] = 0
    return response


def registration_view(record: ClientRecord, registration_uri: str) -> dict[str, Any]:
    return {
        "client_id": record.client_id,
        "client_id_issued_at": record.issued_at,
        "registration_client_uri": f"{registration_uri}/{record.client_id}",
        **record.metadata,
    }


def from_record(record: ClientRecord) -> Client:
    name = record.metadata.get("client_name")
    return Client(
        record.client_id,
        tuple(record.redirect_uris),
        record.auth_method,
        record.secret_hash,
        record,
        name if isinstance(name, str) else None,
        record.metadata.get("jwks_uri"),
        record.metadata.get("jwks"),
    )


class ClientMetadataError(Exception):
    """A client ID metadata document cannot be used; the message is safe to show."""


def is_metadata_url(client_id: str) -> bool:
    return client_id.startswith(("https://", "http://"))


class ClientResolver:
    def __init__(
        self,
        state: OAuthState,
        idle_seconds: int,
        *,
        allow_loopback_documents: bool,
        limits: RateLimiter | None = None,
        redirect_schemes: frozenset[str] = KNOWN_CLIENT_SCHEMES,
    ) -> None:
        self._state = state
        self._idle = idle_seconds
        self._allow_loopback = allow_loopback_documents
        self._limits = limits
        self.redirect_schemes = redirect_schemes

    async def resolve(self, client_id: str, source_ip: str = "unknown") -> Client | None:
        """The client, or None if unknown; ClientMetadataError for an unusable metadata document.

        RateLimitedError when a document would have to be fetched and `source_ip` or the
        document's host has had its share of fetches.
        """
        if not client_id or len(client_id) > uris.MAX_URI_LENGTH:
            return None
        if is_metadata_url(client_id):
            return await self._from_document(client_id, source_ip)
        if not _CLIENT_ID.fullmatch(client_id):
            return None
        record = self._state.get_client(client_id)
        if record is None:
            return None
        self._state.touch_client(record, self._idle)
        return from_record(record)

    async def _from_document(self, url: str, source_ip: str) -> Client:
        try:
            parsed = uris.parse(url, "client ID URL")
            uris.check_host(parsed, "client ID URL")
        except ValueError as exc:
            raise ClientMetadataError(str(exc)) from exc
        document = self._state.get_cimd(url)
        if document is None:
            if self._limits is not None:
                settings = self._limits.settings
                self._limits.hit("cimd-ip", source_ip, settings.cimd_fetch_per_ip)
                self._limits.hit("cimd-host", parsed.host, settings.cimd_fetch_per_host)
            try:
                text, lifetime = await fetch_client_metadata(url, allow_loopback=self._allow_loopback)
                document = _parse_document(url, text, self.redirect_schemes)
            except ClientMetadataError as exc:
                self._state.put_cimd(url, json.dumps({"failure": str(exc)}), CIMD_FAILURE_SECONDS)
                raise
            self._state.put_cimd(url, json.dumps(document), lifetime)
        if "failure" in document:
            raise ClientMetadataError(str(document["failure"]))
        name = document.get("client_name")
        return Client(
            url,
            tuple(document["redirect_uris"]),
            str(document.get("token_endpoint_auth_method", "none")),
            None,
            None,
            name if isinstance(name, str) else None,
            document.get("jwks_uri"),
            document.get("jwks"),
        )


def _parse_document(url: str, text: bytes, schemes: frozenset[str] = KNOWN_CLIENT_SCHEMES) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except ValueError:
        logger.info("client metadata document %s is not JSON", url)
        raise ClientMetadataError(NOT_FETCHED) from None
    if not isinstance(document, dict):
        logger.info("client metadata document %s is not a JSON object", url)
        raise ClientMetadataError(NOT_FETCHED)
    if document.get("client_id") != url:
        raise ClientMetadataError("the document's client_id is not the URL it was fetched from")
    method = document.get("token_endpoint_auth_method", "none")
    if method not in SECRETLESS_METHODS:
        raise ClientMetadataError(
            f"token_endpoint_auth_method {method!r} is not supported for metadata documents; "
            "use none or private_key_jwt"
        )
    try:
        redirect_uris = RegistrationRequest.model_validate(
            {"redirect_uris": document.get("redirect_uris"), "token_endpoint_auth_method": "none"},
            context={"redirect_schemes": schemes},
        ).redirect_uris
    except ValidationError as exc:
        problems = "; ".join(str(e["msg"]) for e in exc.errors())
        raise ClientMetadataError(f"the document's redirect_uris are not usable: {problems}") from exc
    parsed: dict[str, Any] = {
        "client_id": url,
        "redirect_uris": redirect_uris,
        "client_name": str(document.get("client_name", ""))[:200],
        "token_endpoint_auth_method": method,
    }
    if method == "private_key_jwt":
        try:
            keys = RegistrationRequest.model_validate(
                {
                    "redirect_uris": redirect_uris,
                    "token_endpoint_auth_method": method,
                    "jwks_uri": document.get("jwks_uri"),
                    "jwks": document.get("jwks"),
                },
                context={"redirect_schemes": schemes},
            )
        except ValidationError as exc:
            problems = "; ".join(str(e["msg"]) for e in exc.errors())
            raise ClientMetadataError(f"the document's keys are not usable: {problems}") from exc
        parsed.update(keys.model_dump(include={"jwks_uri", "jwks"}, exclude_none=True))
    return parsed


def check_jwks_uri(uri: str) -> str:
    """`uri` if the server may fetch keys from it (the fetch itself applies the address rules)."""
    parsed = uris.parse(uri, "jwks_uri")
    uris.check_host(parsed, "jwks_uri")
    if parsed.scheme != "https" and not (parsed.scheme == "http" and parsed.host in LOOPBACK_HOSTS):
        raise ValueError(f"{uri!r}: a jwks_uri must use https")
    if parsed.parts.username or parsed.parts.password or parsed.parts.fragment:
        raise ValueError(f"{uri!r}: a jwks_uri must not contain user info or a fragment")
    return uri


def host_of(url: str) -> str:
    return uris.parse(url).host


def check_jwks(jwks: Any) -> dict[str, Any]:
    """A JWK Set (RFC 7517 §5) of at most MAX_JWKS_KEYS public keys, else ValueError."""
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not keys or not all(isinstance(k, dict) for k in keys):
        raise ValueError("a JWK Set is an object whose 'keys' is a non-empty list of keys")
    if len(keys) > MAX_JWKS_KEYS:
        raise ValueError(f"a JWK Set may hold at most {MAX_JWKS_KEYS} keys")
    if any("d" in k or k.get("kty") == "oct" for k in keys):
        raise ValueError("a JWK Set for private_key_jwt holds public keys only (no 'd', no 'oct' keys)")
    return {"keys": keys}


def _address_allowed(address: ipaddress.IPv4Address | ipaddress.IPv6Address, allow_loopback: bool) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if allow_loopback and address.is_loopback:
        return True
    return address.is_global and not address.is_multicast


async def fetch_client_metadata(
    url: str, *, allow_loopback: bool, what: str = "client ID URL", not_fetched: str = NOT_FETCHED
) -> tuple[bytes, int]:
    """GET the document at `url` without letting `url` reach anything internal; (body, cache lifetime).

    Every failure of the fetch itself is one message, `not_fetched`: which step failed (no such
    name, a private address, a closed port, a status) would tell a caller what lies behind the
    server. The step goes to the log. Client key sets (jwks_uri) are fetched the same way.
    """
    try:
        parsed = uris.parse(url, what)
        uris.check_host(parsed, what)
    except ValueError as exc:
        raise ClientMetadataError(str(exc)) from exc
    parts, host = parsed.parts, parsed.host
    if parts.username or parts.password or parts.fragment:
        raise ClientMetadataError(f"a {what} must not contain user info or a fragment")
    if parts.path in {"", "/"}:
        raise ClientMetadataError(f"a {what} must have a path")
    if parsed.scheme != "https" and not (allow_loopback and parsed.scheme == "http" and host in LOOPBACK_HOSTS):
        raise ClientMetadataError(f"a {what} must use https")
    try:
        return await _fetch(parsed, allow_loopback)
    except _FetchError as exc:
        logger.info("%s %s not fetched: %s", what, url, exc)
        raise ClientMetadataError(not_fetched) from None


class _FetchError(Exception):
    """Why a fetch failed, for the log only."""


async def _fetch(parsed: uris.Uri, allow_loopback: bool) -> tuple[bytes, int]:
    import anyio
    import httpx2

    parts, host = parsed.parts, parsed.host
    port = parts.port or (443 if parsed.scheme == "https" else 80)
    body = bytearray()
    try:
        with anyio.fail_after(CIMD_TIMEOUT_SECONDS):
            try:
                infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except (OSError, ValueError) as exc:  # IDNA refusals are ValueErrors (UnicodeError)
                raise _FetchError(f"cannot resolve {host}: {exc}") from exc
            addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
            if not addresses or not all(_address_allowed(a, allow_loopback) for a in addresses):
                raise _FetchError(f"{host} resolves to an address this server does not fetch from")
            # Connect to the address just checked (a second lookup could answer differently: DNS
            # rebinding); Host and TLS SNI/certificate checks still use the name.
            target = addresses[0]
            literal = f"[{target}]" if target.version == 6 else str(target)
            connect_url = urlunsplit((parts.scheme, f"{literal}:{port}", parts.path, parts.query, ""))
            async with (
                httpx2.AsyncClient(timeout=CIMD_TIMEOUT_SECONDS, follow_redirects=False, trust_env=False) as http,
                http.stream(
                    "GET",
                    connect_url,
                    headers={"Host": parts.netloc.lower(), "Accept": "application/json"},
                    extensions={"sni_hostname": host},
                ) as response,
            ):
                if response.status_code != 200:
                    raise _FetchError(f"answered HTTP {response.status_code}")
                async for chunk in response.aiter_bytes():
                    body.extend(chunk)
                    if len(body) > CIMD_MAX_BYTES:
                        raise _FetchError(f"larger than {CIMD_MAX_BYTES} bytes")
                cache_control = response.headers.get("cache-control", "")
    except TimeoutError as exc:
        raise _FetchError(f"no answer within {CIMD_TIMEOUT_SECONDS} s") from exc
    except httpx2.HTTPError as exc:
        raise _FetchError(type(exc).__name__) from exc
    return bytes(body), _lifetime(cache_control)


def _lifetime(cache_control: str) -> int:
    found = re.search(r"max-age=(\d+)", cache_control)
    if found is None:
        return CIMD_DEFAULT_SECONDS
    return max(CIMD_MIN_SECONDS, min(int(found.group(1)), CIMD_MAX_SECONDS))


def known_scopes(requested: str | None, supported: tuple[str, ...]) -> tuple[str, ...] | None:
    """The supported subset of `requested` (all when omitted); None if nothing is left."""
    if requested is None or not requested.strip():
        return supported
    granted = tuple(s for s in supported if s in requested.split())
    return granted or None


def registration_error(exc: ValidationError) -> OAuthError:
    problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors())
    error = "invalid_redirect_uri" if any(e["loc"][:1] == ("redirect_uris",) for e in exc.errors()) else None
    return OAuthError(error or "invalid_client_metadata", problems)
