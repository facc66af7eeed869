"""Forged, stale and borrowed `private_key_jwt` assertions, over HTTP against `mcpkit dev --auth oauth`.

Each refusal is RFC 6749 `invalid_client` (HTTP 401) with a description that says what to change.
Client authentication comes before the grant, so every case sends a refresh token that does not
exist: an assertion that got through would be answered `invalid_grant` (400) instead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.auth.jwt_client import JwtClient, SigningKey, publish
from tests.hostile.support import DEV_TABLE, from_address

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.hostile.documents import DocumentServer
    from tests.hostile.support import OAuthDev, VaultHarness

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def harness(oauth_dev: OAuthDev) -> VaultHarness:
    return oauth_dev.harness


_ADDRESSES = (f"127.0.9.{n}" for n in range(1, 255))


@pytest.fixture(autouse=True)
def _own_source_address(harness: VaultHarness) -> Iterator[None]:
    """Each test asks from its own loopback address. Every new client costs a document and a key-set
    fetch against the per-address fetch limit (20 a minute), and from 127.0.0.1 that budget is shared
    with every test on the session's dev server: in one minute it runs out."""
    shared, harness.http = harness.http, from_address(next(_ADDRESSES))
    try:
        yield
    finally:
        harness.http.close()
        harness.http = shared


@pytest.fixture(scope="module")
def pair(harness: VaultHarness, documents: DocumentServer) -> tuple[JwtClient, JwtClient]:
    """Two ChatGPT-like clients, each with its own key."""
    return publish(documents, harness, "victim"), publish(documents, harness, "other")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(client: JwtClient, header: dict[str, Any], key: bytes | None = None) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {"iss": client.client_id, "sub": client.client_id, "aud": client.token_endpoint}
    claims |= {"exp": now + 60, "jti": secrets.token_hex(8)}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = b"" if key is None else hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _present(harness: VaultHarness, data: dict[str, str]) -> httpx.Response:
    return harness.token({"grant_type": "refresh_token", "refresh_token": secrets.token_urlsafe(32), **data})


def _assert_invalid_client(response: httpx.Response, says: str) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["error"] == "invalid_client"
    assert says in body["error_description"], body


Case = Callable[[JwtClient, JwtClient], dict[str, str]]
CASES: dict[str, tuple[Case, str]] = {
    "expired": (
        lambda c, _: c.auth(c.assertion({"exp": int(time.time()) - 120, "iat": int(time.time()) - 300})),
        "has expired",
    ),
    "lives-too-long": (
        lambda c, _: c.auth(c.assertion({"exp": int(time.time()) + 3600})),
        "at most 300 seconds ahead",
    ),
    "no-exp": (lambda c, _: c.auth(c.assertion({"exp": None})), "lacks the exp claim"),
    "no-jti": (lambda c, _: c.auth(c.assertion({"jti": None})), "lacks the jti claim"),
    "wrong-aud": (lambda c, _: c.auth(c.assertion({"aud": "https://elsewhere.example/token"})), "aud must be"),
    "unknown-kid": (lambda c, _: c.auth(c.assertion(header={"kid": "no-such-key"})), "kid 'no-such-key'"),
    "alg-none": (lambda c, _: c.auth(_unsigned(c, {"alg": "none", "kid": c.key.kid})), "alg 'none' is not accepted"),
    # The classic confusion: the public key, which anyone can fetch, used as an HMAC secret.
    "hs256-with-public-key": (
        lambda c, _: c.auth(_unsigned(c, {"alg": "HS256", "kid": c.key.kid}, c.key.public_pem())),
        "alg 'HS256' is not accepted",
    ),
    "key-of-another-client": (lambda c, o: c.auth(c.assertion(key=o.key)), "No RS256 key with kid"),
    "key-of-another-client-same-kid": (
        lambda c, o: c.auth(c.assertion(header={"kid": c.key.kid}, key=o.key)),
        "signature does not verify",
    ),
    "assertion-for-another-client": (
        lambda c, o: {**o.auth(), "client_id": c.client_id},
        "iss and sub must be the client_id",
    ),
    "sub-of-another-client": (lambda c, o: c.auth(c.assertion({"sub": o.client_id})), "sub must be the client_id"),
    "missing-assertion": (lambda c, _: {"client_id": c.client_id}, "authenticates with private_key_jwt"),
    "wrong-assertion-type": (
        lambda c, _: {**c.auth(), "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"},
        "client_assertion_type must be",
    ),
    "not-a-jwt": (lambda c, _: c.auth("not.a.jwt"), "not a signed JWT"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bad_assertion_is_invalid_client_with_a_reason(
    harness: VaultHarness, pair: tuple[JwtClient, JwtClient], case: str
) -> None:
    build, says = CASES[case]
    _assert_invalid_client(_present(harness, build(*pair)), says)


def test_a_replayed_assertion_is_refused(harness: VaultHarness, pair: tuple[JwtClient, JwtClient]) -> None:
    client, _ = pair
    assertion = client.assertion()
    first = _present(harness, client.auth(assertion))
    # Authenticated: the (made-up) refresh token is what fails.
    assert first.status_code == 400, first.text
    assert first.json()["error"] == "invalid_grant"
    _assert_invalid_client(_present(harness, client.auth(assertion)), "already used")


def test_an_assertion_for_a_client_without_keys_is_refused(harness: VaultHarness, documents: DocumentServer) -> None:
    client_id = documents.publish(f"/public-{secrets.token_hex(4)}.json")  # token_endpoint_auth_method none
    client = JwtClient(client_id, f"{harness.base}/oauth/token", SigningKey())
    _assert_invalid_client(_present(harness, client.auth()), "not private_key_jwt")


def test_an_assertion_with_a_client_secret_is_refused(harness: VaultHarness, pair: tuple[JwtClient, JwtClient]) -> None:
    client, _ = pair
    response = _present(harness, {**client.auth(), "client_secret": "guess"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_an_unreachable_jwks_uri_is_fetched_at_most_once_a_minute(
    harness: VaultHarness, documents: DocumentServer
) -> None:
    name = f"keyless-{secrets.token_hex(4)}"
    client = publish(documents, harness, name)
    del documents.documents[f"/{name}/jwks.json"]
    for _ in range(3):
        _assert_invalid_client(_present(harness, client.auth()), "jwks_uri could not be fetched")
    assert documents.count(f"/{name}/jwks.json") == 1


def test_a_rotated_key_within_the_minute_is_not_fetched_again(harness: VaultHarness, documents: DocumentServer) -> None:
    name = f"rotating-{secrets.token_hex(4)}"
    client = publish(documents, harness, name)
    assert _present(harness, client.auth()).status_code == 400  # authenticated; keys now cached
    # Someone sends ever new kids: the set is not refetched for each (once a minute per client).
    for _ in range(3):
        _assert_invalid_client(
            _present(harness, client.auth(client.assertion(header={"kid": secrets.token_hex(4)}))), "kid"
        )
    assert documents.count(f"/{name}/jwks.json") == 1


def test_a_rotated_key_is_fetched_once_after_the_minute(
    oauth_dev: OAuthDev, harness: VaultHarness, documents: DocumentServer
) -> None:
    name = f"rotated-{secrets.token_hex(4)}"
    client = publish(documents, harness, name)
    assert _present(harness, client.auth()).status_code == 400  # authenticated; keys now cached
    # GIVEN the client rotated its key, and the cached set was fetched over a minute ago
    new_key = SigningKey("ES256")
    documents.documents[f"/{name}/jwks.json"] = {"keys": [new_key.jwk()]}
    jwks_uri = f"{documents.base}/{name}/jwks.json"
    digest = hashlib.sha256(f"{client.client_id}\n{jwks_uri}".encode()).hexdigest()
    key = {"pk": {"S": f"JWKS#{digest}"}, "sk": {"S": "KEYS"}}
    oauth_dev.table().update_item(
        TableName=DEV_TABLE,
        Key=key,
        UpdateExpression="SET fetched_at = :then",
        ExpressionAttributeValues={":then": {"N": str(int(time.time()) - 61)}},
    )
    # WHEN it signs with the new key THEN the set is fetched again, once, and the assertion accepted
    response = _present(harness, client.auth(client.assertion(key=new_key)))
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_grant"
    assert documents.count(f"/{name}/jwks.json") == 2
    # AND the old key is gone with the old set
    _assert_invalid_client(_present(harness, client.auth()), "No RS256 key")
    assert documents.count(f"/{name}/jwks.json") == 2


@pytest.mark.parametrize(
    "jwks_uri",
    ["https://169.254.169.254/latest/meta-data/jwks", "https://10.0.0.1/jwks.json", "https://[fd00::1]/jwks.json"],
)
def test_a_jwks_uri_to_an_internal_address_is_never_fetched(
    harness: VaultHarness, documents: DocumentServer, jwks_uri: str
) -> None:
    # The same address rules as the metadata document (dev mode allows loopback only).
    client = publish(documents, harness, f"internal-{secrets.token_hex(4)}", jwks_uri=jwks_uri)
    _assert_invalid_client(_present(harness, client.auth()), "jwks_uri could not be fetched")


def test_one_assertion_sent_many_times_at_once_authenticates_exactly_once(
    harness: VaultHarness, pair: tuple[JwtClient, JwtClient]
) -> None:
    # Three instances behind the dev gateway: the conditional write, not memory, decides.
    client, _ = pair
    data = client.auth()

    def send() -> httpx.Response:
        with httpx.Client(timeout=30) as http:
            return http.post(
                f"{harness.base}/oauth/token",
                data={"grant_type": "refresh_token", "refresh_token": secrets.token_urlsafe(32), **data},
            )

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: send(), range(8)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [400] + [401] * 7, [a.text for a in answers]
    assert all("already used" in a.json()["error_description"] for a in answers if a.status_code == 401)
