"""OAuth under attack, over HTTP against `mcpkit dev --auth oauth`: bad tokens, floods, HTML pages, logs."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from mcpkit.messages import rpc
from tests.auth.harness import LOOPBACK_REDIRECT, b64url, pkce
from tests.hostile.support import MCP_HEADERS

if TYPE_CHECKING:
    from tests.hostile.support import OAuthDev, VaultHarness

pytestmark = pytest.mark.slow
TOKENS: list[dict[str, Any]] = json.loads((Path(__file__).parent / "corpus.json").read_text())["tokens"]
GOOD_CALL = rpc("tools/call", {"name": "add", "arguments": {"a": 2, "b": 40}}, id_=7)
CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"


@pytest.fixture(scope="module")
def harness(oauth_dev: OAuthDev) -> VaultHarness:
    return oauth_dev.harness


@pytest.fixture(scope="module")
def client(harness: VaultHarness) -> dict[str, Any]:
    return harness.register()


def _unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"


def token_of_kind(harness: VaultHarness, kind: str) -> str | None:
    """A bearer token of the corpus's `kind` (None: send no Authorization header)."""
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    now = int(time.time())
    kid = harness.http.get(f"{harness.base}/oauth/jwks.json").json()["keys"][0]["kid"]
    header = {"alg": "RS256", "typ": "at+jwt", "kid": kid}
    if kind == "none":
        return None
    if kind == "valid":
        return harness.forge(harness.claims())
    if kind == "garbage":
        return "not.a.jwt"
    if kind == "other-key":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return jwt.encode(harness.claims(), key, algorithm="RS256", headers=header)
    if kind == "expired":
        return harness.forge(harness.claims(iat=now - 7200, nbf=now - 7200, exp=now - 3600))
    if kind == "future":
        return harness.forge(harness.claims(iat=now + 3600, nbf=now + 3600, exp=now + 7200))
    if kind == "other-audience":
        return harness.forge(harness.claims(aud="https://other.example/mcp"))
    if kind == "other-issuer":
        return harness.forge(harness.claims(iss="https://other.example"))
    if kind == "alg-none":
        return _unsigned({"alg": "none", "typ": "at+jwt", "kid": kid}, harness.claims()) + "."
    if kind == "hs256":
        # The classic confusion: HMAC keyed with the published public key.
        jwk = harness.http.get(f"{harness.base}/oauth/jwks.json").json()["keys"][0]
        public = jwt.PyJWK(jwk).key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        import hashlib
        import hmac

        signing_input = _unsigned({"alg": "HS256", "typ": "at+jwt", "kid": kid}, harness.claims())
        signature = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64url(signature)}"
    if kind == "wrong-typ":
        return harness.forge(harness.claims(), {"typ": "JWT"})
    if kind == "tampered":
        head, _, jws_signature = harness.forge(harness.claims()).split(".")
        return f"{head}.{b64url(json.dumps(harness.claims(sub='someone-else')).encode())}.{jws_signature}"
    if kind == "no-scope":
        return harness.forge(harness.claims(scope="openid"))
    if kind == "basic":
        return "basic"
    raise AssertionError(f"unknown token kind {kind}")


@pytest.mark.parametrize("case", TOKENS, ids=[c["name"] for c in TOKENS])
def test_bad_token_is_refused_with_the_oauth_error_and_the_next_good_call_works(
    harness: VaultHarness, case: dict[str, Any]
) -> None:
    # GIVEN a tools/call with a hostile token
    token = token_of_kind(harness, case["token"])
    headers = dict(MCP_HEADERS)
    url = harness.server.url
    if token == "basic":
        headers["authorization"] = "Basic ZGV2OnBhc3N3b3Jk"
    elif token is not None:
        headers["authorization"] = f"Bearer {token}"
        if case.get("in_query"):
            url = f"{url}?access_token={token}"

    # WHEN it is sent
    response = harness.http.post(url, json=GOOD_CALL, headers=headers)

    # THEN the status and RFC 6750 error are exact, with the challenge that leads to discovery
    assert response.status_code == case["expect"]["status"], response.text
    assert response.json()["error"] == case["expect"]["error"]
    assert "Traceback" not in response.text
    if response.status_code in {401, 403}:  # the statuses API Gateway maps the challenge header back for
        assert (
            f'resource_metadata="{harness.base}/.well-known/oauth-protected-resource/mcp"'
            in (response.headers["www-authenticate"])
        )
    # AND the server still answers a good token
    good = harness.mcp(GOOD_CALL, harness.forge(harness.claims()))
    assert good.status_code == 200, good.text
    assert good.json()["result"]["structuredContent"] == {"result": 42.0}


# -- rate limits ---------------------------------------------------------------------------------
def _from(address: str) -> httpx.Client:
    """A client whose connections come from another loopback address: its own rate-limit bucket."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=30, follow_redirects=False)


def test_registration_flood_from_one_address_gets_429_slow_down(harness: VaultHarness) -> None:
    # GIVEN the default limit (60 registrations per source IP per minute)
    body = {"redirect_uris": [LOOPBACK_REDIRECT], "token_endpoint_auth_method": "none"}
    with _from("127.0.0.2") as http:
        # WHEN one address registers past it (up to two windows' worth: a window may end meanwhile)
        statuses: list[int] = []
        refused = None
        for _ in range(121):
            response = http.post(f"{harness.base}/oauth/register", json=body)
            if response.status_code != 201:
                refused = response
                break
            statuses.append(response.status_code)

    # THEN at least 60 succeed, then 429 + Retry-After + slow_down, and other addresses are unaffected
    assert len(statuses) >= 60
    assert refused is not None
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"] == "slow_down"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert harness.http.post(f"{harness.base}/oauth/register", json=body).status_code == 201


def test_token_flood_for_one_client_gets_429(harness: VaultHarness) -> None:
    # GIVEN a registered confidential client and the default limit of 120 token requests per client per minute
    client = harness.register()
    data = {
        "grant_type": "authorization_code",
        "code": "not-a-code",
        "code_verifier": "v" * 43,
        "client_id": client["client_id"],
        "client_secret": client["client_secret"],
    }
    with _from("127.0.0.3") as http:
        # WHEN it asks again and again with a wrong code (at most two windows' worth)
        answers: list[httpx.Response] = []
        while len(answers) < 241 and (not answers or answers[-1].status_code == 400):
            answers.append(http.post(f"{harness.base}/oauth/token", data=data))

    # THEN at least 120 are ordinary invalid_grant errors, then the client is slowed down
    assert len(answers) > 120
    assert {a.status_code for a in answers[:-1]} == {400}
    assert answers[-1].status_code == 429, answers[-1].text
    assert answers[-1].json()["error"] == "slow_down"
    assert int(answers[-1].headers["retry-after"]) >= 1
    # AND a wrong secret does not spend the client's budget (it is counted after authentication)
    wrong = harness.token({**data, "client_secret": "wrong"})
    assert wrong.status_code == 401


def test_rate_limit_counters_are_table_items_that_expire(oauth_dev: OAuthDev) -> None:
    # A registration of its own: under xdist the floods above may have run in another worker.
    oauth_dev.harness.register()
    items = oauth_dev.items("RATE#")
    assert any(i["pk"]["S"].startswith("RATE#register-ip#") for i in items)
    # each counter expires when its window (the sort key: the window's start) is over
    assert all(int(i["ttl"]["N"]) == int(i["sk"]["S"]) + 60 for i in items)


# -- HTML pages ----------------------------------------------------------------------------------
def test_error_page_and_sign_in_form_carry_security_headers(harness: VaultHarness, client: dict[str, Any]) -> None:
    # GIVEN the two HTML pages the kit serves: an authorize error page and the dev sign-in form
    error_page = harness.http.get(f"{harness.base}/oauth/authorize", params={"client_id": "unknown"})
    _, challenge = pkce()
    authorized = harness.authorize(client["client_id"], challenge)
    form = harness.http.get(authorized.headers["location"])

    # THEN both forbid scripts, framing, sniffing, referrers and caching
    for page in (error_page, form):
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "no-referrer"
        assert page.headers["cache-control"] == "no-store"
    assert error_page.headers["content-security-policy"] == CSP
    # The form may also submit (303) back to the client's own redirect origin, nowhere else.
    assert form.headers["content-security-policy"] == CSP.replace(
        "form-action 'self'", "form-action 'self' http://localhost:33418"
    )


# -- logs ----------------------------------------------------------------------------------------
def test_logs_carry_request_ids_but_no_token_code_secret_password_or_sensitive_argument(
    oauth_dev: OAuthDev,
) -> None:
    harness = oauth_dev.harness
    before = len(harness.server.output())
    secret_argument = "hunter2-sensitive-" + b64url(b"x" * 12)

    # GIVEN a whole connector flow, a refresh, tool calls (one with a sensitive argument) and failures
    client = harness.register()
    verifier, challenge = pkce()
    location = harness.sign_in(harness.authorize(client["client_id"], challenge))
    code = parse_qs(urlsplit(location).query)["code"][0]
    issued = harness.exchange(client, code, verifier).json()
    reused = harness.exchange(client, code, verifier)
    refreshed = harness.refresh(client, issued["refresh_token"]).json()
    call = rpc("tools/call", {"name": "store_secret", "arguments": {"label": "db", "secret": secret_argument}})
    stored = harness.mcp(call, refreshed["access_token"])
    wrong_type = rpc("tools/call", {"name": "add", "arguments": {"a": secret_argument, "b": 1}})
    harness.mcp(wrong_type, refreshed["access_token"])
    harness.mcp(call, issued["access_token"] + "x")
    harness.sign_in(harness.authorize(client["client_id"], pkce()[1]))  # a second sign-in, for its txn
    bad_password = harness.http.post(
        f"{harness.base}/oauth/dev-login", data={"txn": "x", "username": harness.username, "password": "wrong-Pass1"}
    )
    assert reused.status_code == 400
    assert stored.status_code == 200
    assert bad_password.status_code in {400, 401}

    # THEN the server's log has request ids, and none of the secrets
    time.sleep(0.5)  # the subprocess flushes its last lines
    log = harness.server.output()[before:]
    assert "correlation_id" in log, log[-2000:]
    secrets = {
        "access token": issued["access_token"],
        "refreshed access token": refreshed["access_token"],
        "refresh token": issued["refresh_token"],
        "rotated refresh token": refreshed["refresh_token"],
        "authorization code": code,
        "PKCE verifier": verifier,
        "client secret": client["client_secret"],
        "registration access token": client["registration_access_token"],
        "password": harness.password,
        "sensitive tool argument": secret_argument,
    }
    for what, value in secrets.items():
        assert value not in log, f"the {what} appears in the server's log"
    # JWT fragments too: the signature alone would be enough to replay nothing, but the payload names the user.
    assert issued["access_token"].split(".")[1] not in log
