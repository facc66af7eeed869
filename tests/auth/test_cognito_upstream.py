"""The deployed sign-in leg (Cognito managed login) that `mcpkit dev` replaces with its form.

moto serves no `/oauth2/*`, so Cognito's HTTPS endpoints are stood in for by an httpx2 mock
transport; the client secret comes from moto's user pool client through DescribeUserPoolClient,
exactly the call the deployed function makes.
"""

from __future__ import annotations

import base64
import json
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from handlers.auth.config import OAuthConfig
from handlers.auth.upstream import CognitoUpstream, UpstreamError, new_verifier

if TYPE_CHECKING:
    from mcpkit.local_aws import EmbeddedAws

pytestmark = pytest.mark.anyio
DOMAIN = "https://mcp-example-123456789012.auth.us-east-1.amazoncognito.com"
CALLBACK = "https://abc.execute-api.us-east-1.amazonaws.com/oauth/callback"
SIGNING_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def pool(aws: EmbeddedAws) -> tuple[str, str, str]:
    import boto3

    idp = boto3.client("cognito-idp")
    pool_id = idp.create_user_pool(PoolName="upstream-test")["UserPool"]["Id"]
    created = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="mcpkit", GenerateSecret=True)
    return pool_id, created["UserPoolClient"]["ClientId"], created["UserPoolClient"]["ClientSecret"]


def _config(pool_id: str, client_id: str) -> OAuthConfig:
    return OAuthConfig(
        kms_key_id="unused",
        user_pool_id=pool_id,
        upstream_client_id=client_id,
        cognito_domain=DOMAIN,
        access_token_seconds=900,
        refresh_token_seconds=3600,
        refresh_family_max_seconds=7200,
        client_idle_seconds=86400,
        dev_mode=False,
    )


class FakeCognito:
    """Cognito's token endpoint and JWKS, checking what the function sends."""

    def __init__(self, pool_id: str, client_id: str, secret: str, **id_claims: Any) -> None:
        self.issuer = f"https://cognito-idp.us-east-1.amazonaws.com/{pool_id}"
        self.client_id = client_id
        self.secret = secret
        self.id_claims = id_claims
        self.token_requests: list[dict[str, list[str]]] = []

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        if request.url.path == f"{urlsplit(self.issuer).path}/.well-known/jwks.json":
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(SIGNING_KEY.public_key()))
            return httpx2.Response(200, json={"keys": [{**jwk, "kid": "cognito-1", "alg": "RS256"}]})
        assert str(request.url) == f"{DOMAIN}/oauth2/token"
        expected = base64.b64encode(f"{self.client_id}:{self.secret}".encode()).decode()
        assert request.headers["authorization"] == f"Basic {expected}"
        form = parse_qs(request.content.decode())
        self.token_requests.append(form)
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.client_id,
            "sub": "user-sub-1",
            "email": "person@example.com",
            "token_use": "id",
            "iat": now,
            "exp": now + 3600,
            **self.id_claims,
        }
        id_token = jwt.encode(claims, SIGNING_KEY, algorithm="RS256", headers={"kid": "cognito-1"})
        return httpx2.Response(200, json={"id_token": id_token, "access_token": "x", "token_type": "Bearer"})


async def test_callback_exchange_uses_the_secret_and_verifies_the_id_token(pool: tuple[str, str, str]) -> None:
    pool_id, client_id, secret = pool
    fake = FakeCognito(pool_id, client_id, secret)
    upstream = CognitoUpstream(_config(pool_id, client_id), transport=httpx2.MockTransport(fake.handle))
    verifier, challenge = new_verifier()
    authorize = urlsplit(upstream.authorize_url(callback=CALLBACK, state="txn-1", challenge=challenge))
    assert f"{authorize.scheme}://{authorize.netloc}{authorize.path}" == f"{DOMAIN}/oauth2/authorize"
    assert parse_qs(authorize.query)["code_challenge_method"] == ["S256"]

    identity = await upstream.exchange(code="cognito-code", verifier=verifier, callback=CALLBACK)

    assert (identity.subject, identity.email) == ("user-sub-1", "person@example.com")
    sent = fake.token_requests[0]
    assert sent["code"] == ["cognito-code"]
    assert sent["code_verifier"] == [verifier]
    assert sent["redirect_uri"] == [CALLBACK]


@pytest.mark.parametrize(
    "claims",
    [{"aud": "another-client"}, {"iss": "https://cognito-idp.us-east-1.amazonaws.com/other"}, {"token_use": "access"}],
)
async def test_an_id_token_for_something_else_is_refused(pool: tuple[str, str, str], claims: dict[str, Any]) -> None:
    pool_id, client_id, secret = pool
    fake = FakeCognito(pool_id, client_id, secret, **claims)
    upstream = CognitoUpstream(_config(pool_id, client_id), transport=httpx2.MockTransport(fake.handle))
    with pytest.raises(UpstreamError):
        await upstream.exchange(code="c", verifier="v" * 43, callback=CALLBACK)
