"""The authorization server's endpoints (RFC 8414, 7591, 6749 + PKCE, 9207, 7009) and the PRM documents."""

from __future__ import annotations

import base64
import hmac
import html
import logging
import re
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from pydantic import ValidationError
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from handlers.auth import assertions, clients, consent
from handlers.auth.config import CODE_SECONDS, TRANSACTION_SECONDS, OAuthConfig
from handlers.auth.errors import NO_STORE, OAuthError, error_page, form_page, invalid_client, oauth_json
from handlers.auth.resource import BearerGate, protected_resource_metadata
from handlers.auth.state import (
    CodeRecord,
    ConsentRequest,
    FamilyRecord,
    Grant,
    GrantRevokedError,
    OAuthState,
    Transaction,
)
from handlers.auth.tokens import TokenSigner, pkce_challenge, sha256_hex
from handlers.auth.upstream import CognitoUpstream, Identity, UpstreamError, new_verifier
from handlers.auth.urls import ServerUrls, UnknownOriginError, server_urls
from handlers.rate_limit import RateLimitedError, RateLimiter, RateLimitSettings
from handlers.store import StoreUnavailableError

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from starlette.requests import Request

    from handlers.auth.scopes import Kind
    from handlers.settings import Settings
    from handlers.store import Table

logger = logging.getLogger("handlers.auth")
MAX_FORM_BYTES = 64 * 1024
# RFC 7636 §4.1: 43-128 characters of [A-Z a-z 0-9 - . _ ~]; a challenge (S256) is always 43.
_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
DEV_LOGIN_PATH = "/oauth/dev-login"

Endpoint = Callable[["Request"], "Awaitable[Response]"]
# What the server offers, by kind, for the consent page's "unlocks" lines.
Catalog = Callable[[], "Awaitable[dict[Kind, list[str]]]"]


def _guarded(endpoint: Endpoint) -> Endpoint:
    """Store outages become 503 + Retry-After; a request without an API Gateway context a 400."""

    async def run(request: Request) -> Response:
        try:
            return await endpoint(request)
        except OAuthError as exc:
            return exc.response()
        except StoreUnavailableError:
            logger.warning("table unavailable during %s", request.url.path)
            return oauth_json(
                {"error": "temporarily_unavailable", "error_description": "Storage is unavailable; retry shortly."},
                503,
                {"Retry-After": "1"},
            )
        except UnknownOriginError:
            return oauth_json({"error": "invalid_request", "error_description": "Unknown origin."}, 400)
        except RateLimitedError as exc:
            logger.warning("rate limit %s exceeded on %s", exc.scope, request.url.path)
            return oauth_json(
                {
                    "error": "slow_down",
                    "error_description": f"Too many requests; retry after {exc.retry_after} s.",
                },
                429,
                {"Retry-After": str(exc.retry_after)},
            )

    return run


async def _form(request: Request) -> dict[str, str]:
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "Send the parameters as application/x-www-form-urlencoded.")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise OAuthError("invalid_request", "The request body is too large.")
    pairs = parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise OAuthError("invalid_request", f"The parameter {name!r} was sent more than once.")
        form[name] = value
    return form


def _source_ip(request: Request) -> str:
    """The caller's address as API Gateway saw it (not X-Forwarded-For, which the caller writes)."""
    event: dict[str, Any] = request.scope.get("aws.event") or {}
    return str(event.get("requestContext", {}).get("http", {}).get("sourceIp") or "unknown")


def _with_query(uri: str, params: dict[str, str]) -> str:
    parts = urlsplit(uri)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


class OAuthServer:
    """Everything `auth = "oauth"` adds to the app; one per instance."""

    def __init__(self, config: OAuthConfig, table: Table, catalog: Catalog) -> None:
        self.config = config
        self.permissions = config.permissions
        self.catalog = catalog
        self.state = OAuthState(table)
        self.signer = TokenSigner(config.kms_key_id)
        self.upstream = CognitoUpstream(config)
        self.gate = BearerGate(self.signer, config.permissions)
        self.limits = RateLimiter(table, RateLimitSettings())
        self.clients = clients.ClientResolver(
            self.state,
            config.client_idle_seconds,
            allow_loopback_documents=config.dev_mode,
            limits=self.limits,
            redirect_schemes=clients.KNOWN_CLIENT_SCHEMES | config.redirect_schemes,
        )
        self.assertions = assertions.AssertionVerifier(self.state, self.limits, allow_loopback=config.dev_mode)

    @classmethod
    def from_settings(cls, settings: Settings, table: Table, catalog: Catalog) -> OAuthServer:
        return cls(OAuthConfig.from_settings(settings), table, catalog)

    def reset(self) -> None:
        self.signer.reset()
        self.upstream.reset()

    def routes(self) -> list[Route]:
        g = _guarded
        return [
            Route("/.well-known/oauth-protected-resource", g(self.prm), methods=["GET"]),
            Route("/.well-known/oauth-protected-resource/{rest:path}", g(self.prm), methods=["GET"]),
            Route("/.well-known/oauth-authorization-server", g(self.metadata), methods=["GET"]),
            Route("/.well-known/openid-configuration", g(self.openid_configuration), methods=["GET"]),
            Route("/oauth/jwks.json", g(self.jwks), methods=["GET"]),
            Route("/oauth/register", g(self.register), methods=["POST"]),
            Route("/oauth/register/{client_id}", g(self.registration), methods=["GET", "DELETE"]),
            Route("/oauth/authorize", g(self.authorize), methods=["GET"]),
            Route("/oauth/callback", g(self.callback), methods=["GET"]),
            Route("/oauth/token", g(self.token), methods=["POST"]),
            Route("/oauth/revoke", g(self.revoke), methods=["POST"]),
            Route(consent.CONSENT_PATH, g(self.consent), methods=["GET", "POST"]),
            Route(DEV_LOGIN_PATH, g(self.dev_login), methods=["GET", "POST"]),
        ]

    # -- discovery -------------------------------------------------------------------------
    async def prm(self, request: Request) -> Response:
        rest = request.path_params.get("rest")
        if rest is not None and rest.strip("/") != "mcp":
            return oauth_json({"error": "not_found", "error_description": "No protected resource at that path."}, 404)
        return oauth_json(
            protected_resource_metadata(server_urls(request.scope), self.permissions),
            headers={"Cache-Control": "max-age=300"},
        )

    def _metadata(self, urls: ServerUrls) -> dict[str, Any]:
        return {
            "issuer": urls.issuer,
            "authorization_endpoint": urls.path("/oauth/authorize"),
            "token_endpoint": urls.path("/oauth/token"),
            "registration_endpoint": urls.path("/oauth/register"),
            "revocation_endpoint": urls.path("/oauth/revoke"),
            "jwks_uri": urls.path("/oauth/jwks.json"),
            "scopes_supported": list(self.permissions.supported),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_methods_supported": list(clients.AUTH_METHODS),
            "token_endpoint_auth_signing_alg_values_supported": list(assertions.ALGORITHMS),
            "revocation_endpoint_auth_methods_supported": list(clients.AUTH_METHODS),
            "revocation_endpoint_auth_signing_alg_values_supported": list(assertions.ALGORITHMS),
            "code_challenge_methods_supported": ["S256"],
            # Claude uses CIMD only when both this and "none" above are present (clients.md).
            "client_id_metadata_document_supported": True,
            "authorization_response_iss_parameter_supported": True,
        }

    async def metadata(self, request: Request) -> Response:
        return oauth_json(self._metadata(server_urls(request.scope)), headers={"Cache-Control": "max-age=300"})

    async def openid_configuration(self, request: Request) -> Response:
        document = {
            **self._metadata(server_urls(request.scope)),
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }
        return oauth_json(document, headers={"Cache-Control": "max-age=300"})

    async def jwks(self, request: Request) -> Response:
        return oauth_json(self.signer.jwks(), headers={"Cache-Control": "max-age=3600"})

    # -- dynamic client registration -------------------------------------------------------
    async def register(self, request: Request) -> Response:
        self.limits.hit("register-ip", _source_ip(request), self.limits.settings.register_per_ip)
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            raise OAuthError("invalid_client_metadata", "The registration request is too large.")
        try:
            parsed = clients.RegistrationRequest.model_validate_json(
                body or b"{}", context={"redirect_schemes": self.clients.redirect_schemes}
            )
        except ValidationError as exc:
            raise clients.registration_error(exc) from exc
        urls = server_urls(request.scope)
        response = clients.register(
            self.state,
            parsed,
            self.config.client_idle_seconds,
            urls.path("/oauth/register"),
            self.permissions.supported,
        )
        logger.info("registered client %s", response["client_id"])
        return oauth_json(response, 201)

    async def registration(self, request: Request) -> Response:
        """RFC 7592 read/delete with the registration access token."""
        client_id = request.path_params["client_id"]
        record = self.state.get_client(client_id)
        kind, _, token = request.headers.get("authorization", "").partition(" ")
        if (
            record is None
            or kind.lower() != "bearer"
            or not hmac.compare_digest(sha256_hex(token.strip()), record.registration_token_hash)
        ):
            # The same answer for unknown clients and wrong tokens: no probing for client ids.
            raise OAuthError(
                "invalid_token",
                "Unknown client or wrong registration access token.",
                401,
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        if request.method == "DELETE":
            self.state.delete_client(client_id)
            return Response(status_code=204, headers=NO_STORE)
        return oauth_json(clients.registration_view(record, server_urls(request.scope).path("/oauth/register")))

    # -- authorization ---------------------------------------------------------------------
    async def authorize(self, request: Request) -> Response:
        source = _source_ip(request)
        try:
            self.limits.hit("authorize-ip", source, self.limits.settings.authorize_per_ip)
            return await self._authorize(request, source)
        except RateLimitedError as exc:
            logger.warning("rate limit %s exceeded on /oauth/authorize", exc.scope)
            what = (
                "This application's metadata host was asked too often"
                if exc.scope == "cimd-host"
                else "Too many requests came from your network"
            )
            page = error_page("Too many requests", f"{what} just now; try again in {exc.retry_after} s.", 429)
            page.headers["Retry-After"] = str(exc.retry_after)
            return page

    async def _authorize(self, request: Request, source: str) -> Response:
        """Every refusal here is a page, never a redirect: nobody has signed in yet, and a redirect
        URI that anyone could register (DCR) or publish (a metadata document) is not one to send a
        person's browser to unasked (RFC 9700 §4.11.2)."""
        urls = server_urls(request.scope)
        params = request.query_params
        for name in ("client_id", "redirect_uri", "state", "code_challenge", "response_type", "scope", "resource"):
            if len(params.getlist(name)) > 1:
                return error_page("Invalid request", f"The parameter {name!r} was sent more than once.")
        client_id = params.get("client_id", "")
        try:
            client = await self.clients.resolve(client_id, source)
        except clients.ClientMetadataError as exc:
            return error_page("Unknown application", f"The application's metadata document cannot be used: {exc}.")
        if client is None:
            return error_page("Unknown application", "This application is not registered with this server (any more).")
        redirect_uri = params.get("redirect_uri")
        if redirect_uri is None and len(client.redirect_uris) == 1:
            redirect_uri = client.redirect_uris[0]
        if redirect_uri is None or not client.allows_redirect(redirect_uri):
            return error_page("Invalid redirect", "The redirect URI is not one this application registered.")

        def fail(error: str, description: str) -> Response:
            return error_page("The application's request was refused", f"{error}: {description}")

        if params.get("response_type") != "code":
            return fail("unsupported_response_type", "Only response_type=code is supported.")
        challenge = params.get("code_challenge", "")
        if not challenge:
            return fail("invalid_request", "PKCE is required: send code_challenge with code_challenge_method=S256.")
        if params.get("code_challenge_method", "plain") != "S256" or not _CHALLENGE.fullmatch(challenge):
            return fail("invalid_request", "Only the S256 code challenge method is supported.")
        resource = params.get("resource")
        if resource is not None and resource.rstrip("/") != urls.resource:
            return fail("invalid_target", f"This server is the resource {urls.resource}.")
        scopes = clients.known_scopes(params.get("scope"), self.permissions.supported)
        if scopes is None:
            return fail("invalid_scope", f"Supported scopes: {' '.join(self.permissions.supported)}.")

        verifier, upstream_challenge = new_verifier()
        transaction = Transaction(
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            code_challenge=challenge,
            scopes=scopes,
            resource=urls.resource,
            client_state=params.get("state"),
            upstream_verifier=verifier,
        )
        txn = self.state.put_transaction(transaction, TRANSACTION_SECONDS)
        if self.config.dev_mode:
            target = f"{urls.path(DEV_LOGIN_PATH)}?{urlencode({'txn': txn})}"
        else:
            try:
                target = self.upstream.authorize_url(
                    callback=urls.path("/oauth/callback"), state=txn, challenge=upstream_challenge
                )
            except UpstreamError as exc:
                # A deployment fault (handlers/auth/app_client.py), not the person's: say so, and whom to tell.
                logger.error("cannot start the upstream sign-in: %s", exc)
                return error_page(
                    "Sign-in unavailable",
                    f"This server cannot start a sign-in: {exc}. Tell the server's operator.",
                    503,
                )
        return RedirectResponse(target, 302, headers=NO_STORE)

    def _finish(self, urls: ServerUrls, transaction: Transaction, identity: Identity) -> Response:
        """Hand the client its own one-time code, with `state` and `iss` (RFC 9207)."""
        record = CodeRecord(
            client_id=transaction.client_id,
            subject=identity.subject,
            email=identity.email,
            scopes=transaction.scopes,
            resource=transaction.resource,
            redirect_uri=transaction.redirect_uri,
            code_challenge=transaction.code_challenge,
        )
        code = self.state.put_code(record, CODE_SECONDS)
        query = {"code": code, "iss": urls.issuer}
        if transaction.client_state is not None:
            query["state"] = transaction.client_state
        return RedirectResponse(_with_query(transaction.redirect_uri, query), 302, headers=NO_STORE)

    def _back_to_client(self, urls: ServerUrls, transaction: Transaction, error: str, description: str) -> Response:
        query = {"error": error, "error_description": description, "iss": urls.issuer}
        if transaction.client_state is not None:
            query["state"] = transaction.client_state
        return RedirectResponse(_with_query(transaction.redirect_uri, query), 302, headers=NO_STORE)

    async def callback(self, request: Request) -> Response:
        urls = server_urls(request.scope)
        state = request.query_params.get("state", "")
        transaction = self.state.take_transaction(state) if state else None
        if transaction is None:
            return error_page("Sign-in expired", "This sign-in is unknown or took longer than 10 minutes.")
        # Not signed in: a page, not a redirect to a URI nobody vouches for (see _authorize).
        if "error" in request.query_params or "code" not in request.query_params:
            return error_page("Sign-in cancelled", "Sign-in was cancelled or refused.")
        try:
            identity = await self.upstream.exchange(
                code=request.query_params["code"],
                verifier=transaction.upstream_verifier,
                callback=urls.path("/oauth/callback"),
            )
        except UpstreamError as exc:
            logger.warning("upstream sign-in failed: %s", exc)
            return error_page("Sign-in failed", "Signing in with the identity service failed.")
        return self._signed_in(urls, transaction, identity)

    async def dev_login(self, request: Request) -> Response:
        """`mcpkit dev` only: a plain form stands in for Cognito's managed login, which moto lacks."""
        if not self.config.dev_mode:
            return oauth_json({"error": "not_found", "error_description": "Not found."}, 404)
        urls = server_urls(request.scope)
        if request.method == "GET":
            txn = request.query_params.get("txn", "")
            pending = self.state.get_transaction(txn) if txn else None
            if pending is None:
                return error_page("Sign-in expired", "This sign-in is unknown or took longer than 10 minutes.")
            return _login_form(txn, pending.redirect_uri)
        try:
            form = await _form(request)
        except OAuthError as exc:
            return error_page("Invalid request", exc.description)
        txn = form.get("txn", "")
        pending = self.state.get_transaction(txn) if txn else None
        if pending is None:
            return error_page("Sign-in expired", "This sign-in is unknown or took longer than 10 minutes.")
        identity = self.upstream.password_sign_in(form.get("username", ""), form.get("password", ""))
        if identity is None:
            return _login_form(txn, pending.redirect_uri, "Wrong username or password.", status=401)
        transaction = self.state.take_transaction(txn)
        if transaction is None:
            return error_page("Sign-in expired", "This sign-in was already completed.")
        return self._signed_in(urls, transaction, identity)

    # -- who may sign in, and consent ------------------------------------------------------
    def _signed_in(self, urls: ServerUrls, transaction: Transaction, identity: Identity) -> Response:
        """After sign-in: the group rule, then consent unless this client already has these scopes."""
        group = self.config.required_group
        if group is not None and group not in identity.groups:
            logger.info("sign-in refused: account outside the required group")
            response = self._back_to_client(
                urls, transaction, "access_denied", "This account may not use this server; ask its administrator."
            )
        elif self._consented(identity, transaction):
            response = self._finish(urls, transaction, identity)
        else:
            browser = secrets.token_urlsafe(32)
            request_id = self.state.put_consent_request(
                ConsentRequest(
                    transaction=transaction,
                    subject=identity.subject,
                    email=identity.email,
                    browser_hash=sha256_hex(browser),
                ),
                TRANSACTION_SECONDS,
            )
            target = f"{urls.path(consent.CONSENT_PATH)}?{urlencode({'request': request_id})}"
            response = RedirectResponse(target, 303, headers=NO_STORE)
            response.set_cookie(
                consent.CONSENT_COOKIE,
                browser,
                max_age=TRANSACTION_SECONDS,
                path=consent.CONSENT_PATH,
                secure=urls.issuer.startswith("https://"),
                httponly=True,
                samesite="strict",
            )
        # After a form POST (dev sign-in), 303 makes the browser GET the next page.
        response.status_code = 303
        return response

    def _consented(self, identity: Identity, transaction: Transaction) -> bool:
        granted = self.state.get_grant(identity.subject, transaction.client_id)
        return granted is not None and set(transaction.scopes) <= set(granted.scopes)

    async def consent(self, request: Request) -> Response:
        if request.method == "GET":
            request_id = request.query_params.get("request", "")
            pending = self.state.get_consent_request(request_id) if request_id else None
            if pending is None:
                return error_page(
                    "Consent expired", "This request is unknown, answered already or older than 10 minutes."
                )
            return await self._consent_page(request_id, pending, _source_ip(request))
        if not _same_origin(request):
            return error_page("Refused", "The answer did not come from this server's consent page.")
        try:
            form = await _form(request)
        except OAuthError as exc:
            return error_page("Invalid request", exc.description)
        request_id, decision = form.get("request", ""), form.get("decision")
        pending = self.state.get_consent_request(request_id) if request_id else None
        if pending is None:
            return error_page("Consent expired", "This request is unknown, answered already or older than 10 minutes.")
        cookie = request.cookies.get(consent.CONSENT_COOKIE, "")
        if not cookie or not hmac.compare_digest(sha256_hex(cookie), pending.browser_hash):
            return error_page("Refused", "Answer from the browser that signed in (cookies must be on).")
        if decision not in {"approve", "deny"}:
            return error_page("Invalid request", "Choose Allow or Deny.")
        taken = self.state.take_consent_request(request_id)
        if taken is None:
            return error_page("Consent expired", "This request was answered already.")
        urls = server_urls(request.scope)
        transaction = taken.transaction
        if decision == "deny":
            response = self._back_to_client(urls, transaction, "access_denied", "The person denied access.")
        else:
            client = await self._client_or_none(transaction.client_id, _source_ip(request))
            self.state.record_consent(
                subject=taken.subject,
                email=taken.email,
                client_id=transaction.client_id,
                client_name=client.name if client is not None else None,
                scopes=transaction.scopes,
                lifetime=self.config.refresh_family_max_seconds,
            )
            response = self._finish(urls, transaction, Identity(taken.subject, taken.email))
        response.status_code = 303
        response.delete_cookie(consent.CONSENT_COOKIE, path=consent.CONSENT_PATH)
        return response

    async def _client_or_none(self, client_id: str, source_ip: str) -> clients.Client | None:
        try:
            return await self.clients.resolve(client_id, source_ip)
        except clients.ClientMetadataError:
            return None

    async def _consent_page(self, request_id: str, pending: ConsentRequest, source_ip: str) -> Response:
        transaction = pending.transaction
        client = await self._client_or_none(transaction.client_id, source_ip)
        if client is None:
            return error_page("Unknown application", "This application is not registered with this server (any more).")
        granted = self.state.get_grant(pending.subject, transaction.client_id)
        already = set(granted.scopes) if granted is not None else set()
        catalog = await self.catalog()
        lines = [
            consent.ScopeLine(
                scope, self.permissions.scopes[scope].description, self.permissions.unlocks(scope, catalog)
            )
            for scope in transaction.scopes
            if scope in self.permissions.scopes
        ]
        view = consent.ConsentView(
            request_id=request_id,
            client_name=client.name,
            document_host=urlsplit(client.client_id).hostname if client.record is None else None,
            redirect_uri=transaction.redirect_uri,
            account=pending.email or pending.subject,
            scopes=lines,
            already_allowed=sorted(already & set(transaction.scopes)),
        )
        return consent.render(view)

    # -- token -----------------------------------------------------------------------------
    async def _authenticate_client(
        self, request: Request, form: dict[str, str], audiences: list[str]
    ) -> clients.Client:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        assertion_type, assertion = form.get("client_assertion_type"), form.get("client_assertion")
        authorization = request.headers.get("authorization", "")
        basic = authorization.lower().startswith("basic ")
        if assertion_type is not None or assertion is not None:
            if assertion_type != assertions.ASSERTION_TYPE:
                raise invalid_client(f"client_assertion_type must be {assertions.ASSERTION_TYPE}.")
            if not assertion:
                raise invalid_client("client_assertion is missing.")
            assertions.must_not_mix(form, basic)
            # RFC 7521 §4.2: client_id may be left out; the assertion names the client.
            client_id = client_id or assertions.claimed_client_id(assertion)
        if basic:
            try:
                decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
            except ValueError as exc:
                raise invalid_client("Malformed Basic client credentials.") from exc
            basic_id, _, basic_secret = decoded.partition(":")
            if client_id is not None and client_id != unquote(basic_id):
                raise OAuthError("invalid_request", "client_id differs between the header and the body.")
            client_id, secret = unquote(basic_id), unquote(basic_secret)
        if not client_id:
            raise invalid_client("client_id is missing.")
        try:
            client = await self.clients.resolve(client_id, _source_ip(request))
        except clients.ClientMetadataError as exc:
            raise invalid_client(f"The client metadata document cannot be used: {exc}.") from exc
        if client is None:
            raise invalid_client("Unknown client; register again.")
        if client.auth_method == "private_key_jwt":
            if not assertion:
                raise invalid_client(
                    "This client authenticates with private_key_jwt: send client_assertion_type="
                    f"{assertions.ASSERTION_TYPE} and a client_assertion signed with a key from its JWK Set."
                )
            await self.assertions.verify(client, assertion, audiences, _source_ip(request))
            return client
        if assertion:
            raise invalid_client(
                f"This client's token_endpoint_auth_method is {client.auth_method}, not private_key_jwt; "
                "send no client_assertion."
            )
        if not client.secret_matches(secret):
            raise invalid_client("Client authentication failed.")
        return client

    async def token(self, request: Request) -> Response:
        urls = server_urls(request.scope)
        self.limits.hit("token-ip", _source_ip(request), self.limits.settings.token_per_ip)
        form = await _form(request)
        client = await self._authenticate_client(request, form, [urls.path("/oauth/token"), urls.issuer])
        # Counted once the client is authenticated, so nobody can spend another client's budget.
        self.limits.hit("token-client", client.client_id, self.limits.settings.token_per_client)
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            grant = self._redeem_code(form, client, urls)
            access = self._access_token(urls, client, grant)
            try:
                refresh = self.state.start_family(
                    grant, self.config.refresh_token_seconds, self.config.refresh_family_max_seconds
                )
            except GrantRevokedError as exc:
                raise OAuthError("invalid_grant", "Access was revoked meanwhile; authorize again.") from exc
        elif grant_type == "refresh_token":
            grant, refresh, access = self._rotate(form, client, urls)
        else:
            raise OAuthError("unsupported_grant_type", "Use authorization_code or refresh_token.")
        return oauth_json(
            {
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": self.config.access_token_seconds,
                "refresh_token": refresh,
                "scope": " ".join(grant.scopes),
            }
        )

    def _access_token(self, urls: ServerUrls, client: clients.Client, grant: Grant) -> str:
        return self.signer.issue(
            issuer=urls.issuer,
            audience=grant.resource,
            subject=grant.subject,
            email=grant.email,
            client_id=client.client_id,
            scopes=grant.scopes,
            lifetime=self.config.access_token_seconds,
        )

    def _redeem_code(self, form: dict[str, str], client: clients.Client, urls: ServerUrls) -> Grant:
        code, verifier = form.get("code"), form.get("code_verifier")
        if not code:
            raise OAuthError("invalid_request", "code is missing.")
        if not verifier:
            raise OAuthError("invalid_request", "code_verifier is missing (PKCE is required).")
        # Consumed before any check: a code is tried once, whatever the outcome (RFC 6749 §4.1.2).
        record = self.state.take_code(code)
        if record is None or record.client_id != client.client_id:
            raise OAuthError("invalid_grant", "The authorization code is invalid, expired or already used.")
        redirect_uri = form.get("redirect_uri")
        if redirect_uri is not None and redirect_uri != record.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri differs from the authorization request's.")
        if not _VERIFIER.fullmatch(verifier) or not hmac.compare_digest(
            pkce_challenge(verifier), record.code_challenge
        ):
            raise OAuthError("invalid_grant", "The code_verifier does not match the code_challenge.")
        resource = form.get("resource")
        if resource is not None and resource.rstrip("/") != record.resource:
            raise OAuthError("invalid_target", f"This code was issued for {record.resource}.")
        return Grant(**record.model_dump(include=set(Grant.model_fields)))

    def _rotate(self, form: dict[str, str], client: clients.Client, urls: ServerUrls) -> tuple[Grant, str, str]:
        """(grant, new refresh token, access token); the presented token is used up only on success."""
        token = form.get("refresh_token")
        if not token:
            raise OAuthError("invalid_request", "refresh_token is missing.")

        def prepare(family: FamilyRecord) -> tuple[Grant, str]:
            grant = _refreshed_grant(family, form)
            # The kit's refresh tokens never reach Cognito: it is asked here whether the account is
            # still enabled (and in the group).
            if not self.upstream.account_allows(family.subject, self.config.required_group):
                raise GrantRevokedError
            return grant, self._access_token(urls, client, grant)

        try:
            rotated = self.state.rotate(
                token,
                client.client_id,
                self.config.refresh_token_seconds,
                self.config.refresh_family_max_seconds,
                prepare,
            )
        except GrantRevokedError as exc:
            raise OAuthError("invalid_grant", "This account may no longer use this server; sign in again.") from exc
        if rotated is None:
            raise OAuthError("invalid_grant", "The refresh token is invalid, expired, revoked or already used.")
        _, successor, (grant, access) = rotated
        return grant, successor, access

    async def revoke(self, request: Request) -> Response:
        """RFC 7009: refresh tokens end their whole family; access tokens simply expire (15 min)."""
        urls = server_urls(request.scope)
        form = await _form(request)
        audiences = [urls.path("/oauth/token"), urls.issuer, urls.path("/oauth/revoke")]
        client = await self._authenticate_client(request, form, audiences)
        token = form.get("token")
        if not token:
            raise OAuthError("invalid_request", "token is missing.")
        found = self.state.family_of(token)
        if found is not None and found[1].client_id == client.client_id:
            self.state.revoke_family(found[0])
        return Response(status_code=200, headers=NO_STORE)


def _refreshed_grant(family: FamilyRecord, form: dict[str, str]) -> Grant:
    """What a refresh request may have of its family's grant: the same resource, a subset of the scopes."""
    grant = Grant(**family.model_dump(include=set(Grant.model_fields)))
    resource = form.get("resource")
    if resource is not None and resource.rstrip("/") != grant.resource:
        raise OAuthError("invalid_target", f"This grant is for {grant.resource}.")
    requested = form.get("scope")
    if requested is not None:
        narrowed = tuple(s for s in grant.scopes if s in requested.split())
        if set(requested.split()) - set(grant.scopes) or not narrowed:
            raise OAuthError("invalid_scope", "A refresh cannot widen the granted scope.")
        grant = grant.model_copy(update={"scopes": narrowed})
    return grant


def _same_origin(request: Request) -> bool:
    """A browser's form post says where it comes from; anything cross-site is refused outright."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site in {"same-origin", "none"}
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None  # no header: a non-browser client, still bound by the cookie check
    return origin.rstrip("/") == server_urls(request.scope).issuer.rstrip("/")


def _login_form(txn: str, redirect_uri: str, message: str | None = None, status: int = 200) -> HTMLResponse:
    notice = f'<p role="alert" id="error">{html.escape(message)}</p>' if message else ""
    page = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        "<title>Sign in (local development)</title></head>"
        "<body><main><h1>Sign in</h1><p>Local development sign-in: the user pool is emulated.</p>"
        f'{notice}<form method="post" action="{DEV_LOGIN_PATH}">'
        f'<input type="hidden" name="txn" value="{html.escape(txn)}">'
        '<label>Username <input name="username" autocomplete="username" required></label>'
        '<label>Password <input name="password" type="password" autocomplete="current-password" required></label>'
        '<button type="submit" id="sign-in">Sign in</button></form></main></body></html>'
    )
    return form_page(page, redirect_uri, status)
