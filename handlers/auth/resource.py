"""The MCP endpoint as an OAuth resource server (RFC 6750, RFC 9728, MCP authorization spec).

Each request's bearer token is verified here, without a network call, and the caller is handed
to the SDK the way its own `AuthContextMiddleware` would: an `AuthenticatedUser` in
`scope["user"]` and in the SDK's auth contextvar, so tools call
`mcp.server.auth.middleware.auth_context.get_access_token()` to learn `sub`, email and scopes.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from starlette.datastructures import QueryParams
from starlette.responses import Response

from handlers.auth.config import CHALLENGE_HEADER, SCOPES_SUPPORTED, TOOLS_SCOPE
from handlers.auth.tokens import InvalidTokenError, verify_access_token
from handlers.auth.urls import server_urls

if TYPE_CHECKING:
    from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
    from starlette.datastructures import Headers
    from starlette.types import Scope

    from handlers.auth.tokens import TokenSigner
    from handlers.auth.urls import ServerUrls


def challenge(urls: ServerUrls, status: int, error: str | None = None, description: str | None = None) -> Response:
    """401/403/400 with the RFC 6750 §3 challenge, under both header names (see CHALLENGE_HEADER)."""
    params = [f'resource_metadata="{urls.resource_metadata}"', f'scope="{TOOLS_SCOPE}"']
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
    def __init__(self, signer: TokenSigner) -> None:
        self._signer = signer

    def authenticate(self, scope: Scope, headers: Headers) -> AuthenticatedUser | Response:
        from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
        from mcp.server.auth.provider import AccessToken

        urls = server_urls(scope)
        if "access_token" in QueryParams(scope.get("query_string", b"")):
            # RFC 6750 §2.3 query tokens end up in logs and browser history; the MCP spec forbids them.
            return challenge(urls, 400, "invalid_request", "Send the access token in the Authorization header.")
        authorization = headers.get("authorization", "")
        kind, _, token = authorization.partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            return challenge(urls, 401)
        key, kid = self._signer.public_key()
        try:
            claims = verify_access_token(token.strip(), key, kid, issuer=urls.issuer, audience=urls.resource)
        except InvalidTokenError as exc:
            return challenge(urls, 401, "invalid_token", str(exc))
        if TOOLS_SCOPE not in claims.scopes:
            return challenge(urls, 403, "insufficient_scope", f"This server needs the {TOOLS_SCOPE} scope.")
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


def protected_resource_metadata(urls: ServerUrls) -> dict[str, object]:
    """RFC 9728 §2."""
    return {
        "resource": urls.resource,
        "authorization_servers": [urls.issuer],
        "scopes_supported": list(SCOPES_SUPPORTED),
        "bearer_methods_supported": ["header"],
        "resource_name": "MCP server",
    }
