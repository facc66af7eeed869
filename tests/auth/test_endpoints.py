"""Discovery, registration, authorization, token and resource-server rules over real HTTP (`mcpkit dev`)."""

from __future__ import annotations

import base64
import json
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.auth.harness import LOOPBACK_REDIRECT, b64url, pkce

if TYPE_CHECKING:
    from tests.auth.harness import Harness

pytestmark = pytest.mark.slow
TOOLS_CALL = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}


@pytest.fixture(scope="module")
def client(harness: Harness) -> dict[str, Any]:
    return harness.register()


# -- discovery ---------------------------------------------------------------------------------
def test_protected_resource_metadata_at_both_paths(harness: Harness) -> None:
    for path in ("/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"):
        document = harness.http.get(f"{harness.base}{path}").json()
        assert document["resource"] == harness.resource
        assert document["authorization_servers"] == [harness.base]
        assert document["scopes_supported"] == ["mcp:tools"]
        assert document["bearer_methods_supported"] == ["header"]
    assert harness.http.get(f"{harness.base}/.well-known/oauth-protected-resource/other").status_code == 404


def test_authorization_server_metadata_has_what_clients_choose_by(harness: Harness) -> None:
    metadata = harness.http.get(f"{harness.base}/.well-known/oauth-authorization-server").json()
    assert metadata["issuer"] == harness.base
    assert metadata["registration_endpoint"] == f"{harness.base}/oauth/register"
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    # Claude picks CIMD only with both of these (clients.md, claude.com connector docs).
    assert metadata["client_id_metadata_document_supported"] is True
    assert {"none", "client_secret_post"} <= set(metadata["token_endpoint_auth_methods_supported"])
    assert metadata["authorization_response_iss_parameter_supported"] is True
    assert metadata["grant_types_supported"] == ["authorization_code", "refresh_token"]
    assert metadata["response_types_supported"] == ["code"]
    openid = harness.http.get(f"{harness.base}/.well-known/openid-configuration").json()
    assert openid["jwks_uri"] == f"{harness.base}/oauth/jwks.json"
    assert openid["code_challenge_methods_supported"] == ["S256"]
    keys = harness.http.get(openid["jwks_uri"]).json()["keys"]
    assert [(k["kty"], k["alg"]) for k in keys] == [("RSA", "RS256")]


# -- registration --------------------------------------------------------------------------------
def test_registration_returns_what_claude_needs_and_can_be_read_and_deleted(harness: Harness) -> None:
    registered = harness.register(redirect_uris=["https://claude.ai/api/mcp/auth_callback"])
    assert registered["client_secret"]
    assert registered["client_secret_expires_at"] == 0
    assert registered["client_id_issued_at"] <= time.time()
    assert registered["token_endpoint_auth_method"] == "client_secret_post"
    uri = registered["registration_client_uri"]
    bearer = {"authorization": f"Bearer {registered['registration_access_token']}"}
    read = harness.http.get(uri, headers=bearer)
    assert read.json()["redirect_uris"] == ["https://claude.ai/api/mcp/auth_callback"]
    assert "client_secret" not in read.json()
    assert harness.http.get(uri, headers={"authorization": "Bearer wrong"}).status_code == 401
    assert harness.http.delete(uri, headers=bearer).status_code == 204
    assert harness.http.get(uri, headers=bearer).status_code == 401


def test_cursor_registers_its_three_redirect_uris(harness: Harness) -> None:
    uris = [
        "cursor://anysphere.cursor-mcp/oauth/callback",
        "https://www.cursor.com/agents/mcp/oauth/callback",
        "http://localhost:8787/callback",
    ]
    registered = harness.register(redirect_uris=uris, token_endpoint_auth_method="none")
    assert registered["redirect_uris"] == uris
    assert "client_secret" not in registered


@pytest.mark.parametrize(
    "uri",
    [
        "http://example.com/callback",
        "javascript:alert(1)",
        "data:text/html,hi",
        "file:///etc/passwd",
        "https://example.com/cb#fragment",
        "relative/path",
    ],
)
def test_registration_refuses_unsafe_redirect_uris(harness: Harness, uri: str) -> None:
    response = harness.http.post(f"{harness.base}/oauth/register", json={"redirect_uris": [uri]})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_redirect_uri"
    assert response.headers["cache-control"] == "no-store"


def test_a_scheme_the_servers_mcpkit_toml_allows_is_accepted_there_only(harness: Harness, notes: Harness) -> None:
    body = {"redirect_uris": ["windsurf://callback"], "token_endpoint_auth_method": "none"}
    refused = harness.http.post(f"{harness.base}/oauth/register", json=body)
    assert refused.status_code == 400
    assert "redirect_schemes" in refused.json()["error_description"]
    accepted = notes.http.post(f"{notes.base}/oauth/register", json=body)
    assert accepted.status_code == 201, accepted.text


# -- authorization -------------------------------------------------------------------------------
def test_authorize_refuses_a_mismatched_redirect_uri_without_redirecting(
    harness: Harness, client: dict[str, Any]
) -> None:
    _, challenge = pkce()
    response = harness.authorize(client["client_id"], challenge, redirect_uri="https://attacker.example/cb")
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "redirect" in response.text.lower()


def test_authorize_refuses_an_unknown_client_without_redirecting(harness: Harness) -> None:
    _, challenge = pkce()
    response = harness.authorize("mcp-unknown", challenge)
    assert response.status_code == 400
    assert "location" not in response.headers


def test_loopback_redirect_matches_on_any_port(harness: Harness, client: dict[str, Any]) -> None:
    _, challenge = pkce()
    response = harness.authorize(client["client_id"], challenge, redirect_uri="http://localhost:50123/callback")
    assert response.status_code == 302
    assert "/oauth/dev-login" in response.headers["location"]


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"code_challenge": ""}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"resource": "https://other.example/mcp"}, "invalid_target"),
        ({"scope": "admin"}, "invalid_scope"),
    ],
)
def test_authorize_errors_before_sign_in_are_shown_not_redirected(
    harness: Harness, client: dict[str, Any], params: dict[str, str], error: str
) -> None:
    # RFC 9700 §4.11.2: anyone can register a redirect URI, so before sign-in the server never sends
    # a browser there on its own; the page names the error for the developer.
    _, challenge = pkce()
    response = harness.authorize(client["client_id"], challenge, **params)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert error in response.text


def test_wrong_password_shows_the_form_again(harness: Harness, client: dict[str, Any]) -> None:
    _, challenge = pkce()
    with pytest.raises(AssertionError, match="Wrong username or password"):
        harness.sign_in(harness.authorize(client["client_id"], challenge), password="not-the-password")


def test_redirect_back_carries_code_state_and_iss(harness: Harness, client: dict[str, Any]) -> None:
    _, challenge = pkce()
    location = harness.sign_in(harness.authorize(client["client_id"], challenge, state="xyz"))
    query = parse_qs(urlsplit(location).query)
    assert location.startswith(LOOPBACK_REDIRECT)
    assert query["state"] == ["xyz"]
    assert query["iss"] == [harness.base]
    assert len(query["code"][0]) >= 40


# -- token ---------------------------------------------------------------------------------------
def test_access_token_claims(harness: Harness, client: dict[str, Any]) -> None:
    issued = harness.tokens(client)
    assert issued["token_type"] == "Bearer"
    assert issued["expires_in"] == 900
    assert issued["scope"] == "mcp:tools"
    header_part, claims_part, _ = issued["access_token"].split(".")
    header = json.loads(base64.urlsafe_b64decode(header_part + "=="))
    claims = json.loads(base64.urlsafe_b64decode(claims_part + "=="))
    assert header["alg"] == "RS256"
    assert header["typ"] == "at+jwt"
    assert header["kid"]
    assert claims["iss"] == harness.base
    assert claims["aud"] == harness.resource
    assert claims["email"] == harness.username
    assert claims["client_id"] == client["client_id"]
    assert claims["exp"] - claims["iat"] == 900
    assert {"sub", "nbf", "jti", "scope"} <= set(claims)


def test_token_errors_are_json_and_not_cached(harness: Harness, client: dict[str, Any]) -> None:
    response = harness.token({"grant_type": "password", "client_id": client["client_id"], **_secret(client)})
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"
    assert response.headers["cache-control"] == "no-store"


def test_wrong_pkce_verifier_is_refused_and_burns_the_code(harness: Harness, client: dict[str, Any]) -> None:
    code, verifier = harness.code(client)
    wrong, _ = pkce()
    refused = harness.exchange(client, code, wrong)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"
    assert harness.exchange(client, code, verifier).json()["error"] == "invalid_grant"


def test_code_is_single_use(harness: Harness, client: dict[str, Any]) -> None:
    code, verifier = harness.code(client)
    assert harness.exchange(client, code, verifier).status_code == 200
    reused = harness.exchange(client, code, verifier)
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"


def test_code_is_bound_to_its_redirect_uri_and_client(harness: Harness, client: dict[str, Any]) -> None:
    code, verifier = harness.code(client)
    response = harness.exchange(client, code, verifier, redirect_uri="http://localhost:33418/other")
    assert response.json()["error"] == "invalid_grant"
    other = harness.register()
    code, verifier = harness.code(client)
    stolen = harness.exchange(other, code, verifier)
    assert stolen.json()["error"] == "invalid_grant"


def test_unknown_client_gets_401_invalid_client(harness: Harness) -> None:
    response = harness.token({"grant_type": "authorization_code", "client_id": "mcp-gone", "code": "x"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_wrong_client_secret_gets_401_invalid_client(harness: Harness, client: dict[str, Any]) -> None:
    code, verifier = harness.code(client)
    response = harness.exchange({**client, "client_secret": "wrong"}, code, verifier)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_client_secret_basic_works_too(harness: Harness, client: dict[str, Any]) -> None:
    code, verifier = harness.code(client)
    basic = base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()
    data = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
    response = harness.token({**data, "redirect_uri": LOOPBACK_REDIRECT}, headers={"authorization": f"Basic {basic}"})
    assert response.status_code == 200, response.text


def test_refresh_rotates_and_reuse_revokes_the_family(harness: Harness, client: dict[str, Any]) -> None:
    first = harness.tokens(client)["refresh_token"]
    rotated = harness.refresh(client, first)
    assert rotated.status_code == 200
    second = rotated.json()["refresh_token"]
    assert second != first
    reused = harness.refresh(client, first)
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    # The thief replayed the old token; the legitimate successor is revoked with its family.
    assert harness.refresh(client, second).json()["error"] == "invalid_grant"


def test_revoked_refresh_token_no_longer_works(harness: Harness, client: dict[str, Any]) -> None:
    refresh = harness.tokens(client)["refresh_token"]
    revoked = harness.http.post(
        f"{harness.base}/oauth/revoke", data={"token": refresh, "client_id": client["client_id"], **_secret(client)}
    )
    assert revoked.status_code == 200
    assert harness.refresh(client, refresh).json()["error"] == "invalid_grant"


# -- resource server -----------------------------------------------------------------------------
def test_issued_token_calls_tools(harness: Harness, client: dict[str, Any]) -> None:
    token = harness.tokens(client)["access_token"]
    response = harness.mcp(TOOLS_CALL, token, **{"mcp-protocol-version": "2025-11-25"})
    assert response.status_code == 200, response.text
    assert response.json()["result"]["structuredContent"]["email"] == harness.username


@pytest.mark.parametrize(
    "case",
    ["wrong audience", "wrong issuer", "expired", "not yet valid", "alg none", "HS256 with the public key"],
)
def test_bad_tokens_get_401_invalid_token(harness: Harness, case: str) -> None:
    now = int(time.time())
    forged = {
        "wrong audience": lambda: harness.forge(harness.claims(aud="https://other.example/mcp")),
        "wrong issuer": lambda: harness.forge(harness.claims(iss="https://other.example")),
        "expired": lambda: harness.forge(harness.claims(exp=now - 3600, iat=now - 4000, nbf=now - 4000)),
        "not yet valid": lambda: harness.forge(harness.claims(nbf=now + 3600)),
        "alg none": lambda: _unsigned(harness, {"alg": "none"}),
        "HS256 with the public key": lambda: _hs256_with_public_key(harness),
    }[case]()
    response = harness.mcp(TOOLS_CALL, forged, **{"mcp-protocol-version": "2025-11-25"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_a_correctly_forged_token_passes_so_the_negative_cases_mean_something(harness: Harness) -> None:
    response = harness.mcp(TOOLS_CALL, harness.forge(harness.claims()), **{"mcp-protocol-version": "2025-11-25"})
    assert response.status_code == 200
    assert response.json()["result"]["structuredContent"]["sub"] == "forged-subject"


def test_missing_scope_gets_403_insufficient_scope(harness: Harness) -> None:
    response = harness.mcp(TOOLS_CALL, harness.forge(harness.claims(scope="other")))
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


def test_token_in_the_query_string_is_refused(harness: Harness, client: dict[str, Any]) -> None:
    token = harness.tokens(client)["access_token"]
    response = harness.http.post(
        f"{harness.server.url}?access_token={token}",
        json=TOOLS_CALL,
        headers={"accept": "application/json, text/event-stream", "authorization": f"Bearer {token}"},
    )
    # RFC 6750 §3.1: 400 invalid_request (the gateway maps the challenge header on 401/403 only; the body says it).
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_a_session_is_bound_to_the_subject_that_opened_it(harness: Harness, client: dict[str, Any]) -> None:
    mine = harness.tokens(client)["access_token"]
    opened = harness.mcp(INIT, mine)
    session = opened.headers["mcp-session-id"]
    harness.add_user("second@example.com", "Second-user-1!")
    verifier, challenge = pkce()
    location = harness.sign_in(
        harness.authorize(client["client_id"], challenge), username="second@example.com", password="Second-user-1!"
    )
    code = parse_qs(urlsplit(location).query)["code"][0]
    theirs = harness.exchange(client, code, verifier).json()["access_token"]
    headers = {"mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}
    assert harness.mcp(TOOLS_CALL, theirs, **headers).status_code == 404
    assert (
        harness.http.delete(harness.server.url, headers={**headers, "authorization": f"Bearer {theirs}"}).status_code
        == 404
    )
    assert harness.mcp(TOOLS_CALL, mine, **headers).status_code == 200


def _secret(client: dict[str, Any]) -> dict[str, str]:
    return {"client_secret": client["client_secret"]} if "client_secret" in client else {}


def _unsigned(harness: Harness, header: dict[str, Any]) -> str:
    kid = harness.http.get(f"{harness.base}/oauth/jwks.json").json()["keys"][0]["kid"]
    head = {"typ": "at+jwt", "kid": kid, **header}
    return f"{b64url(json.dumps(head).encode())}.{b64url(json.dumps(harness.claims()).encode())}."


def _hs256_with_public_key(harness: Harness) -> str:
    import hashlib
    import hmac

    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_der_public_key

    der = harness.kms().get_public_key(KeyId="alias/mcpkit-local-whoami")["PublicKey"]
    pem = load_der_public_key(der).public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    kid = harness.http.get(f"{harness.base}/oauth/jwks.json").json()["keys"][0]["kid"]
    head = b64url(json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": kid}).encode())
    body = b64url(json.dumps(harness.claims()).encode())
    signature = hmac.new(pem, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(signature)}"
