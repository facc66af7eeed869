"""Fast in-process checks of the rules the HTTP tests cannot reach (deployed mode, Lambda detection)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from handlers.auth.clients import ClientMetadataError, check_redirect_uri, fetch_client_metadata, redirect_uri_matches
from handlers.auth.config import OAuthConfig
from handlers.auth.tokens import InvalidTokenError, verify_access_token
from handlers.auth.urls import server_urls
from handlers.settings import Settings

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ISSUER = "https://abc.execute-api.us-east-1.amazonaws.com"
AUDIENCE = f"{ISSUER}/mcp"


@pytest.mark.parametrize(
    "uri",
    [
        "https://claude.ai/api/mcp/auth_callback",
        "http://localhost/callback",
        "http://127.0.0.1:33418/",
        "http://[::1]:8080/cb",
        "cursor://anysphere.cursor-mcp/oauth/callback",
        "com.example.app:/oauth2redirect",
    ],
)
def test_acceptable_redirect_uris(uri: str) -> None:
    assert check_redirect_uri(uri) == uri


@pytest.mark.parametrize(
    "uri",
    [
        "http://example.com/cb",
        "http://localhost.evil.example/cb",
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:text/html,x",
        "file:///etc/passwd",
        "https://user@example.com/cb",
        "https:///nohost",
        "https://example.com/cb#frag",
        "/relative",
    ],
)
def test_refused_redirect_uris(uri: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        check_redirect_uri(uri)


def test_only_loopback_ignores_the_port() -> None:
    assert redirect_uri_matches("http://localhost/callback", "http://localhost:49152/callback")
    assert redirect_uri_matches("http://127.0.0.1:33418/", "http://127.0.0.1:50000/")
    assert not redirect_uri_matches("http://localhost/callback", "http://localhost:1/other")
    assert not redirect_uri_matches("http://localhost/callback", "http://127.0.0.1:1/callback")
    assert not redirect_uri_matches("https://example.com/cb", "https://example.com:8443/cb")
    assert not redirect_uri_matches("https://example.com/cb", "https://example.com/cb?x=1")


@pytest.mark.anyio
@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/client.json",
        "https://localhost/client.json",
        "https://10.1.2.3/client.json",
        "https://192.168.0.1/client.json",
        "https://169.254.169.254/latest",
        "https://[::1]/client.json",
        "https://[::ffff:127.0.0.1]/client.json",
        "https://224.0.0.1/client.json",
        "http://127.0.0.1/client.json",
        "https://example.com/",
    ],
)
async def test_deployed_mode_never_fetches_internal_client_metadata(url: str) -> None:
    with pytest.raises(ClientMetadataError):
        await fetch_client_metadata(url, allow_loopback=False)


def _token(claims: dict[str, Any], header: dict[str, Any] | None = None, key: Any = KEY) -> str:
    import jwt

    now = int(time.time())
    body = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "u1",
        "client_id": "c1",
        "scope": "mcp:tools",
        "iat": now,
        "nbf": now,
        "exp": now + 60,
        **claims,
    }
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": "k1", "typ": "at+jwt", **(header or {})})


def _verify(token: str) -> Any:
    return verify_access_token(token, KEY.public_key(), "k1", issuer=ISSUER, audience=AUDIENCE)


def test_a_good_token_verifies() -> None:
    claims = _verify(_token({"email": "a@example.com"}))
    assert (claims.subject, claims.email, claims.scopes) == ("u1", "a@example.com", ("mcp:tools",))


def test_clock_skew_within_leeway_is_tolerated() -> None:
    assert _verify(_token({"exp": int(time.time()) - 30})).subject == "u1"


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (lambda: _token({"aud": "https://other/mcp"}), "not issued for"),
        (lambda: _token({"iss": "https://other"}), "invalid"),
        (lambda: _token({"exp": int(time.time()) - 120}), "expired"),
        (lambda: _token({"nbf": int(time.time()) + 120}), "not valid yet"),
        (lambda: _token({}, {"kid": "other"}), "not signed by this server"),
        (lambda: _token({}, {"typ": "JWT"}), "not an access token"),
        (lambda: _token({}, key=rsa.generate_private_key(public_exponent=65537, key_size=2048)), "invalid"),
        (lambda: _none_token(), "RS256"),
        (lambda: "not.a.jwt", "well-formed"),
    ],
)
def test_bad_tokens_are_refused(token: Any, message: str) -> None:
    with pytest.raises(InvalidTokenError, match=message):
        _verify(token())


def _none_token() -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    header = {"alg": "none", "kid": "k1", "typ": "at+jwt"}
    return f"{part(header)}.{part({'iss': ISSUER, 'aud': AUDIENCE, 'sub': 'x', 'exp': 2**31})}."


def _scope(domain: str, **headers: str) -> dict[str, Any]:
    return {"aws.event": {"requestContext": {"domainName": domain}, "headers": headers}}


def test_urls_come_from_the_request_in_lambda_always_https(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "fn")
    urls = server_urls(_scope("mcp.example.com", **{"x-forwarded-proto": "http", "x-forwarded-port": "8080"}))
    assert urls.issuer == "https://mcp.example.com"
    assert urls.resource == "https://mcp.example.com/mcp"
    assert urls.resource_metadata == "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"


def test_urls_locally_follow_the_local_gateways_forwarded_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    monkeypatch.delenv("AWS_EXECUTION_ENV", raising=False)
    urls = server_urls(_scope("127.0.0.1", **{"x-forwarded-proto": "http", "x-forwarded-port": "8000"}))
    assert urls.issuer == "http://127.0.0.1:8000"


OAUTH_ENV = {
    "MCPKIT_AUTH_MODE": "oauth",
    "MCPKIT_KMS_KEY_ID": "key",
    "MCPKIT_COGNITO_USER_POOL_ID": "eu-west-1_abc",
    "MCPKIT_COGNITO_CLIENT_ID": "client",
    "MCPKIT_DEV_LOGIN": "1",
}


def test_dev_login_cannot_be_enabled_inside_lambda(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in OAUTH_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    monkeypatch.delenv("AWS_EXECUTION_ENV", raising=False)
    assert OAuthConfig.from_settings(Settings()).dev_mode is True
    monkeypatch.setenv("AWS_EXECUTION_ENV", "AWS_Lambda_python3.12")
    config = OAuthConfig.from_settings(Settings())
    assert config.dev_mode is False
    assert config.region == "eu-west-1"


def test_oauth_settings_name_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCPKIT_AUTH_MODE", "oauth")
    for name in ("MCPKIT_KMS_KEY_ID", "MCPKIT_COGNITO_USER_POOL_ID", "MCPKIT_COGNITO_CLIENT_ID", "MCPKIT_DEV_LOGIN"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match=r"MCPKIT_KMS_KEY_ID.*MCPKIT_COGNITO_DOMAIN"):
        Settings()
