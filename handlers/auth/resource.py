"""The MCP endpoint as an OAuth resource server (RFC 6750, RFC 9728, MCP authorization spec).

Each request's bearer token is verified here, without a network call, and the caller is handed
to the SDK the way its own `AuthContextMiddleware` would: an `AuthenticatedUser` in
`scope["user"]` and in the SDK's auth contextvar, so tools call
`mcp.server.auth.middleware.auth_context.get_access_token()` to learn `sub`, email and scopes.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.datastructures import QueryParams
from starlette.responses import Response

from handlers.auth.config import CHALLENGE_HEADER
from handlers.auth.tokens import InvalidTokenError, verify_access_token
from handlers.auth.urls import server_urls

if TYPE_CHECKING:
    from collections.abc import Iterable

    from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
    from starlette.datastructures import Headers
    from starlette.types import Scope

    from handlers.auth.scopes import ScopePolicy
    from handlers.auth.tokens import TokenSigner
    from handlers.auth.urls import ServerUrls


def challenge(
    urls: ServerUrls,
    status: int,
    scopes: Iterable[str],
    error: str | None = None,
    description: str | None = None,
) -> Response:
    """401/403/400 with the RFC 6750 §3 challenge, under both header names (see CHALLENGE_HEADER)."""
    params = [f'resource_metadata="{urls.resource_metadata}"', f'scope="{" ".join(scopes)}"']
    if error is not None:
        params.append(f'error="{error}"')
    if description is not None:
        params.append('error_description="{}"'.format(description.replace('"', "'").replace("\\", "/")))
    value = "Bearer " + ", ".join(params)
    body = {"error": error or "unauthorized", "error_description": description or "A bearer token is required."}
    return Response(
        json.dumps(body),
        status_code=status,
        media_type="application/json",
        headers={"WWW-Authenticate": value, CHALLENGE_HEADER: value, "Cache-Control": "no-store"},
    )


class BearerGate:
    def __init__(self, signer: TokenSigner, permissions: ScopePolicy) -> None:
        self._signer = signer
        self.permissions = permissions

    def authenticate(self, scope: Scope, headers: Headers) -> AuthenticatedUser | Response:
        from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
        from mcp.server.auth.provider import AccessToken

        urls = server_urls(scope)
        everything = self.permissions.supported
        if "access_token" in QueryParams(scope.get("query_string", b"")):
            # RFC 6750 §2.3 query tokens end up in logs and browser history; the MCP spec forbids them.
            return challenge(
                urls, 400, everything, "invalid_request", "Send the access token in the Authorization header."
            )
        authorization = headers.get("authorization", "")
        kind, _, token = authorization.partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            # MCP 2025-11-25 clients ask for exactly the scopes named here: the whole server, so a
            # client that never steps up still gets everything the person consents to.
            return challenge(urls, 401, everything)
        key, kid = self._signer.public_key()
        try:
            claims = verify_access_token(token.strip(), key, kid, issuer=urls.issuer, audience=urls.resource)
        except InvalidTokenError as exc:
            return challenge(urls, 401, everything, "invalid_token", str(exc))
        if not set(claims.scopes) & set(everything):
            default = self.permissions.default_scope
            return challenge(urls, 403, [default], "insufficient_scope", f"This server needs the {default} scope.")
        return AuthenticatedUser(
            AccessToken(
                token=token.strip(),
                client_id=claims.client_id,
                scopes=list(claims.scopes),
                expires_at=claims.expires_at,
                resource=claims.audience,
                subject=claims.subject,
                claims={"iss": claims.issuer, "sub": claims.subject, "email": claims.email, "jti": claims.jwt_id},
            )
        )

    def authorize(self, scope: Scope, user: AuthenticatedUser, message: dict[str, Any]) -> Response | None:
        """None when the token's scopes cover the item the request uses; else the step-up 403."""
        needed = self.permissions.needed_for(message)
        if needed is None or needed[2] in user.scopes:
            return None
        kind, name, required = needed
        # The scopes held plus the missing one: a 2025-11-25 client re-authorizes with exactly this
        # list, and a 2026-07-28 client's union with what it holds comes out the same.
        wanted = [s for s in self.permissions.supported if s in user.scopes or s == required]
        shown = name if len(name) <= 80 else f"{name[:77]}..."
        return challenge(
            server_urls(scope),
            403,
            wanted,
            "insufficient_scope",
            f"The {kind} {shown!r} needs the {required} scope; authorize again including it.",
        )


def protected_resource_metadata(urls: ServerUrls, permissions: ScopePolicy) -> dict[str, object]:
    """RFC 9728 §2."""
    return {
        "resource": urls.resource,
        "authorization_servers": [urls.issuer],
        "scopes_supported": list(permissions.supported),
        "bearer_methods_supported": ["header"],
        "resource_name": "MCP server",
    }
