"""Fast in-process checks of the rules the HTTP tests cannot reach (deployed mode, Lambda detection)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any, cast

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.auth.clients import (
    KNOWN_CLIENT_SCHEMES,
    NOT_FETCHED,
    ClientMetadataError,
    check_redirect_uri,
    fetch_client_metadata,
    redirect_uri_matches,
)
from handlers.auth.config import OAuthConfig
from handlers.auth.tokens import InvalidTokenError, verify_access_token
from handlers.auth.urls import server_urls
from handlers.settings import Settings
from mcpkit.local_gateway import LocalGateway, _merge_headers

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
        "io.github.someone.tool://callback",
        "https://vscode.dev/redirect",
        "https://[2001:db8::1]/cb",
        "https://xn--bcher-kva.example/cb",
    ],
)
def test_acceptable_redirect_uris(uri: str) -> None:
    assert check_redirect_uri(uri) == uri


@pytest.mark.parametrize(
    "uri",
    [
        "ms-msdt:/id PCWDiagnostic",
        "ms-msdt:?id=PCWDiagnostic",
        "search-ms:query=x",
        "ms-settings:privacy",
        "myapp:/callback",
        "windsurf://callback",
        "https://a b/c",
        "https://exa%20mple.com/cb",
        "https://ex\u00e4mple.com/cb",
        "https://[::1/cb",
        "https://[zz]/cb",
        "https://example.com:99999/cb",
        "https://-bad-.example/cb",
        "https://example.com/%zz",
        "com.example.app:/cb\n",
    ],
)
def test_os_handler_schemes_and_malformed_uris_are_refused(uri: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        check_redirect_uri(uri)


def test_a_configured_scheme_is_accepted_and_only_then() -> None:
    assert check_redirect_uri("windsurf://callback", KNOWN_CLIENT_SCHEMES | {"windsurf"}) == "windsurf://callback"
    with pytest.raises(ValueError, match=r"redirect_schemes"):
        check_redirect_uri("windsurf://callback")


def test_a_malformed_presented_redirect_uri_never_matches_and_never_raises() -> None:
    for presented in ("http://[::1", "http://[zz]/callback", "http://localhost:99999/callback", "http://localhost:x/"):
        assert not redirect_uri_matches("http://localhost/callback", presented)


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


@pytest.mark.anyio
@pytest.mark.parametrize(
    "url",
    [
        "https://[::1/client.json",
        "https://exa\u0308mple\u200d.com/client.json",
        "https://ab\ud800c.example/client.json",
        "https://xn--zz-.example/client.json",
        f"https://{'a' * 64}.example/client.json",
        "https://%C0%AE.example/client.json",
        "https://example.com:99999/client.json",
        "https://exa mple.com/client.json",
    ],
)
async def test_a_malformed_client_id_url_is_a_client_metadata_error_never_another_exception(url: str) -> None:
    with pytest.raises(ClientMetadataError):
        await fetch_client_metadata(url, allow_loopback=False)


@pytest.mark.anyio
async def test_internal_addresses_and_unknown_names_get_the_same_answer() -> None:
    messages = set()
    for url in ("https://10.1.2.3/c.json", "https://[::1]/c.json", "https://no-such-host.invalid/c.json"):
        with pytest.raises(ClientMetadataError) as caught:
            await fetch_client_metadata(url, allow_loopback=False)
        messages.add(str(caught.value))
    assert messages == {NOT_FETCHED}


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


header_values = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(
    headers=st.dictionaries(
        st.sampled_from(
            [
                "host",
                "x-forwarded-proto",
                "x-forwarded-port",
                "x-forwarded-host",
                "forwarded",
                "x-original-url",
                "origin",
            ]
        ),
        header_values,
    )
)
def test_deployed_urls_never_come_from_a_header_the_client_controls(headers: dict[str, str]) -> None:
    # In Lambda only requestContext.domainName (API Gateway's, not the client's) makes the URLs.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_LAMBDA_FUNCTION_NAME", "fn")
        urls = server_urls(_scope("abc.execute-api.us-east-1.amazonaws.com", **headers))
    assert urls.issuer == "https://abc.execute-api.us-east-1.amazonaws.com"
    assert urls.resource == "https://abc.execute-api.us-east-1.amazonaws.com/mcp"


def _local_event(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    gateway = LocalGateway(cast("Any", None), routes=[("GET", "/x")], allowed_origins=[], domain_name="127.0.0.1")
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "path": "/x",
        "scheme": "http",
        "server": ("127.0.0.1", 8123),
        "client": ("127.0.0.9", 50000),
        "headers": headers,
    }
    route, params = gateway._match("GET", "/x") or (None, {})
    assert route is not None
    return gateway._event(scope, _merge_headers(headers), b"", route.key, params)


def test_the_local_gateway_overwrites_forwarding_headers_like_api_gateway() -> None:
    # GIVEN a client that sends its own X-Forwarded-* headers
    event = _local_event(
        [
            (b"x-forwarded-proto", b"https"),
            (b"x-forwarded-port", b"443"),
            (b"x-forwarded-for", b"203.0.113.7"),
        ]
    )
    # THEN proto and port are the connection's, and the caller's address is appended (API Gateway's behaviour)
    assert event["headers"]["x-forwarded-proto"] == "http"
    assert event["headers"]["x-forwarded-port"] == "8123"
    assert event["headers"]["x-forwarded-for"] == "203.0.113.7, 127.0.0.9"
    assert event["requestContext"]["http"]["sourceIp"] == "127.0.0.9"
    plain = _local_event([])
    assert plain["headers"]["x-forwarded-for"] == "127.0.0.9"


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
