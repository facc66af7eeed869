"""Cognito as the place where the person signs in; the kit's one confidential app client.

The client secret is read with `DescribeUserPoolClient` once per instance (the stack grants
exactly that; no copy of the secret lives in the environment or a parameter). The ID token from
Cognito's token endpoint is verified against the pool's JWKS (cached per instance) before its
`sub` and `email` are trusted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from handlers.auth.app_client import AppClientNotFoundError, find_client_id
from handlers.auth.config import CLOCK_LEEWAY_SECONDS
from handlers.auth.tokens import pkce_challenge
from handlers.store import StoreUnavailableError, aws_client, aws_dependency

if TYPE_CHECKING:
    import httpx2
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient

    from handlers.auth.config import OAuthConfig

UPSTREAM_SCOPES = "openid email"
_JWKS_REFRESH_SECONDS = 300


@dataclass(frozen=True)
class Identity:
    subject: str
    email: str | None
    # Cognito groups (`cognito:groups` of the ID token), for `oauth.required_group`.
    groups: tuple[str, ...] = ()


def _identity(claims: dict[str, Any]) -> Identity:
    email, groups = claims.get("email"), claims.get("cognito:groups")
    return Identity(
        str(claims["sub"]),
        email if isinstance(email, str) else None,
        tuple(str(g) for g in groups) if isinstance(groups, list) else (),
    )


class _AccountGoneError(Exception):
    pass


class UpstreamError(Exception):
    """Signing in upstream failed; the message is safe to show."""


def new_verifier() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, pkce_challenge(verifier)


class CognitoUpstream:
    def __init__(self, config: OAuthConfig, transport: httpx2.AsyncBaseTransport | None = None) -> None:
        self._config = config
        self._transport = transport  # tests stand in for Cognito's HTTPS endpoints
        self._client: CognitoIdentityProviderClient | None = None
        self._secret: str | None = None
        self._client_id: str | None = config.upstream_client_id or None
        self._jwks: dict[str, Any] = {}
        self._jwks_fetched: float | None = None
        self._lock = threading.Lock()

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.{self._config.region}.amazonaws.com/{self._config.user_pool_id}"

    @property
    def _idp(self) -> CognitoIdentityProviderClient:
        if self._client is None:
            from botocore.config import Config

            self._client = aws_client(
                "cognito-idp", Config(retries={"mode": "standard", "total_max_attempts": 3}, read_timeout=5)
            )
        return self._client

    def reset(self) -> None:
        """SnapStart restore: new connections; the secret and the pool's keys stay valid."""
        self._client = None

    def client_id(self) -> str:
        """The app client's id: from the environment, or found once by its name (handlers/auth/app_client.py)."""
        if self._client_id is None:
            with self._lock:
                if self._client_id is None:
                    try:
                        self._client_id = find_client_id(
                            self._idp, self._config.user_pool_id, self._config.upstream_client_name
                        )
                    except AppClientNotFoundError as exc:
                        raise UpstreamError(f"sign-in is not set up: {exc}") from exc
        return self._client_id

    def client_secret(self) -> str:
        # The one read of the secret per instance: the stack grants DescribeUserPoolClient for it.
        if self._secret is None:
            client_id = self.client_id()
            with self._lock:
                if self._secret is None:
                    with aws_dependency("Cognito", "DescribeUserPoolClient"):
                        described = self._idp.describe_user_pool_client(
                            UserPoolId=self._config.user_pool_id, ClientId=client_id
                        )["UserPoolClient"]
                    self._secret = str(described["ClientSecret"])
        return self._secret

    def authorize_url(self, *, callback: str, state: str, challenge: str) -> str:
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id(),
                "redirect_uri": callback,
                "scope": UPSTREAM_SCOPES,
                "state": state,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        return f"{self._config.cognito_domain}/oauth2/authorize?{query}"

    async def exchange(self, *, code: str, verifier: str, callback: str) -> Identity:
        """Cognito's authorization code → verified ID token → the person's identity."""
        import httpx2

        basic = base64.b64encode(f"{self.client_id()}:{self.client_secret()}".encode()).decode()
        try:
            async with httpx2.AsyncClient(timeout=5.0, follow_redirects=False, transport=self._transport) as http:
                response = await http.post(
                    f"{self._config.cognito_domain}/oauth2/token",
                    data={
                        "grant_type": "authorization_code",
                        "code": code,
                        "redirect_uri": callback,
                        "code_verifier": verifier,
                        "client_id": self.client_id(),
                    },
                    headers={"Authorization": f"Basic {basic}", "Accept": "application/json"},
                )
        except httpx2.HTTPError as exc:
            raise UpstreamError("the sign-in service could not be reached") from exc
        if response.status_code != 200:
            raise UpstreamError(f"the sign-in service refused the code (HTTP {response.status_code})")
        id_token = response.json().get("id_token")
        if not isinstance(id_token, str):
            raise UpstreamError("the sign-in service returned no ID token")
        return await self.verify_id_token(id_token)

    async def verify_id_token(self, id_token: str) -> Identity:
        import jwt

        try:
            kid = jwt.get_unverified_header(id_token).get("kid")
        except jwt.PyJWTError as exc:
            raise UpstreamError("the sign-in service returned a malformed ID token") from exc
        key = await self._pool_key(str(kid))
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key,
                algorithms=["RS256"],
                audience=self.client_id(),
                issuer=self.issuer,
                leeway=CLOCK_LEEWAY_SECONDS,
                options={"require": ["sub", "exp", "iat", "aud", "iss"]},
            )
        except jwt.PyJWTError as exc:
            raise UpstreamError("the sign-in service's ID token did not verify") from exc
        if claims.get("token_use") != "id":
            raise UpstreamError("the sign-in service's token is not an ID token")
        return _identity(claims)

    async def _pool_key(self, kid: str) -> Any:
        import httpx2
        import jwt

        # A key id we have not seen may be a rotation: refetch, but not more than every few minutes.
        stale = self._jwks_fetched is None or time.monotonic() - self._jwks_fetched > _JWKS_REFRESH_SECONDS
        if kid not in self._jwks and stale:
            try:
                async with httpx2.AsyncClient(timeout=5.0, transport=self._transport) as http:
                    response = await http.get(f"{self.issuer}/.well-known/jwks.json")
                    response.raise_for_status()
                    keys = response.json()["keys"]
            except (httpx2.HTTPError, ValueError, KeyError) as exc:
                raise UpstreamError("the sign-in service's keys could not be fetched") from exc
            self._jwks = {k["kid"]: jwt.PyJWK(k).key for k in keys if k.get("kty") == "RSA"}
            self._jwks_fetched = time.monotonic()
        if kid not in self._jwks:
            raise UpstreamError("the sign-in service's ID token is signed by an unknown key")
        return self._jwks[kid]

    def account_allows(self, subject: str, group: str | None) -> bool:
        """Is the person's account still enabled (and in `group`)? Asked on every refresh, since the
        kit's refresh tokens never go back to Cognito: disabling, deleting or removing someone from
        the group in the console would otherwise leave their grants working for months."""
        from botocore.exceptions import ClientError

        pool = self._config.user_pool_id
        # With email sign-in the Cognito username is the `sub`.
        try:
            with aws_dependency("Cognito", "AdminGetUser"):
                try:
                    user = self._idp.admin_get_user(UserPoolId=pool, Username=subject)
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") == "UserNotFoundException":
                        raise _AccountGoneError from exc
                    raise
        except _AccountGoneError:
            return False
        if not user.get("Enabled", True):
            return False
        if group is None:
            return True
        with aws_dependency("Cognito", "AdminListGroupsForUser"):
            pages = self._idp.get_paginator("admin_list_groups_for_user").paginate(UserPoolId=pool, Username=subject)
            return any(g["GroupName"] == group for page in pages for g in page.get("Groups", []))

    def password_sign_in(self, username: str, password: str) -> Identity | None:
        """Local dev sign-in form only: check the password with Cognito's API (moto's pool)."""
        from botocore.exceptions import BotoCoreError, ClientError

        secret_hash = base64.b64encode(
            hmac.new(self.client_secret().encode(), (username + self.client_id()).encode(), hashlib.sha256).digest()
        ).decode()
        try:
            result = self._idp.admin_initiate_auth(
                UserPoolId=self._config.user_pool_id,
                ClientId=self.client_id(),
                AuthFlow="ADMIN_USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": username, "PASSWORD": password, "SECRET_HASH": secret_hash},
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "Unknown")
            if code in {"NotAuthorizedException", "UserNotFoundException"}:
                return None
            raise StoreUnavailableError(f"Cognito sign-in failed: {code}") from exc
        except BotoCoreError as exc:
            raise StoreUnavailableError(f"Cognito sign-in failed: {type(exc).__name__}") from exc
        id_token = result.get("AuthenticationResult", {}).get("IdToken")
        if id_token is None:
            return None  # a challenge (new password, MFA) the dev form cannot answer
        import jwt

        # Straight from Cognito's API over the authenticated call above, not from a browser: the
        # claims are as trustworthy as the call (its issuer's JWKS is the real AWS's, not moto's).
        return _identity(jwt.decode(id_token, options={"verify_signature": False}))
