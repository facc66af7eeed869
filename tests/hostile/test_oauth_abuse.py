"""The authorization server as an attacker's tool, over HTTP against `mcpkit dev --auth oauth`.

Malformed URLs in every URL-shaped parameter, metadata documents that are slow or missing, error
redirects through self-registered clients, refused refreshes and forged forwarding headers.
"""

from __future__ import annotations

import secrets
import socket
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.auth.harness import LOOPBACK_REDIRECT, pkce
from tests.hostile.support import from_address

if TYPE_CHECKING:
    import httpx

    from tests.hostile.documents import DocumentServer
    from tests.hostile.support import OAuthDev, VaultHarness

pytestmark = pytest.mark.slow
ATTACKER = "https://attacker.example/welcome"
# Shapes that made urllib, IDNA or DynamoDB raise: each once as a metadata-document URL.
MALFORMED_CLIENT_IDS = [
    "https://[::1/client.json",  # unclosed IPv6 literal: urlsplit raises
    "https://[fe80::1%25en0/client.json",
    "https://[not-an-address]/client.json",
    "https://exa\u0308mple\u200d.com/client.json",  # IDNA: a joiner where none may stand
    "https://\ufffd.example/client.json",
    "https://xn--zz-.example/client.json",  # punycode that does not decode
    f"https://{'a' * 64}.example/client.json",  # a DNS label over 63 characters
    "https://%C0%AE%C0%AE.example/client.json",  # overlong UTF-8 escapes in the host
    "https://example.com/%C0%AE%C0%AE/%E0%80%AF",  # ... and in the path
    "https://example.com%00.evil/client.json",
    "https://example.com:99999/client.json",
    "https://example.com:port/client.json",
    "https://exa mple.com/client.json",
    "https://[::ffff:169.254.169.254]/latest/meta-data",
    f"https://example.com/{'€' * 700}",  # longer than any DynamoDB key in UTF-8
]
# Not URLs, so looked up as registered clients: the table's key limit must not turn them into 5xx.
ODD_CLIENT_IDS = ["€" * 700, "mcp-\u0000", " ", "x" * 1999]


@pytest.fixture(scope="module")
def harness(oauth_dev: OAuthDev) -> VaultHarness:
    return oauth_dev.harness


def _authorize_query(client_id: str, redirect_uri: str = LOOPBACK_REDIRECT, **params: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "state": "s-1",
        "code_challenge": pkce()[1],
        "code_challenge_method": "S256",
        **params,
    }


def _assert_error_page(response: httpx.Response, status: int = 400) -> None:
    assert response.status_code == status, response.text
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert "Traceback" not in response.text


# -- 1. no input gives a 5xx ---------------------------------------------------------------------
@pytest.mark.parametrize("client_id", MALFORMED_CLIENT_IDS + ODD_CLIENT_IDS)
def test_a_malformed_client_id_is_an_error_page_and_invalid_client_never_a_5xx(
    harness: VaultHarness, client_id: str
) -> None:
    with from_address("127.0.0.30") as http:
        page = http.get(f"{harness.base}/oauth/authorize", params=_authorize_query(client_id))
        token = http.post(
            f"{harness.base}/oauth/token",
            data={"grant_type": "authorization_code", "code": "x", "code_verifier": "v" * 43, "client_id": client_id},
        )
    _assert_error_page(page)
    assert token.status_code == 401, token.text
    assert token.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    "redirect_uri",
    ["http://[::1/callback", "http://[zz]/callback", "http://localhost:99999/callback", "http://localhost:x/callback"],
)
def test_a_malformed_redirect_uri_at_authorize_is_an_error_page(harness: VaultHarness, redirect_uri: str) -> None:
    client = harness.register()
    response = harness.http.get(
        f"{harness.base}/oauth/authorize", params=_authorize_query(client["client_id"], redirect_uri)
    )
    _assert_error_page(response)
    assert "redirect" in response.text.lower()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("client_uri", "https://[::1/x"),
        ("client_uri", "javascript:alert(1)"),
        ("logo_uri", "https://exa mple.com/logo.png"),
        ("logo_uri", "https://ex\u200dample.com/logo.png"),
        ("client_uri", "not a url"),
    ],
)
def test_malformed_client_and_logo_uris_are_refused_at_registration(
    harness: VaultHarness, field: str, value: str
) -> None:
    body = {"redirect_uris": [LOOPBACK_REDIRECT], field: value}
    response = harness.http.post(f"{harness.base}/oauth/register", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_client_metadata"
    assert field in response.json()["error_description"]


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("GET", "/oauth/register/" + "€" * 700, {}),
        ("GET", "/oauth/consent", {"request": "€" * 700}),
        ("GET", "/oauth/callback", {"state": "€" * 700, "code": "x"}),
        ("POST", "/oauth/dev-login", {"txn": "€" * 700, "username": "a", "password": "b"}),
        ("POST", "/oauth/consent", {"request": "€" * 700, "decision": "approve"}),
    ],
)
def test_oversized_identifiers_anywhere_are_4xx_not_a_table_error(
    harness: VaultHarness, method: str, path: str, params: dict[str, str]
) -> None:
    if method == "GET":
        response = harness.http.get(f"{harness.base}{path}", params=params)
    else:
        response = harness.http.post(f"{harness.base}{path}", data=params)
    assert 400 <= response.status_code < 500, response.text


# -- 2. fetching metadata documents costs a bounded amount ---------------------------------------
def test_a_failed_document_fetch_is_remembered_and_not_repeated(
    harness: VaultHarness, documents: DocumentServer
) -> None:
    path = f"/missing-{secrets.token_hex(4)}.json"
    client_id = f"{documents.base}{path}"
    first = harness.http.get(f"{harness.base}/oauth/authorize", params=_authorize_query(client_id))
    _assert_error_page(first)
    documents.publish(path)
    second = harness.http.get(f"{harness.base}/oauth/authorize", params=_authorize_query(client_id))
    token = harness.token({"grant_type": "refresh_token", "refresh_token": "x", "client_id": client_id})
    # THEN the failure is answered from the table for a while: one fetch in all
    _assert_error_page(second)
    assert "could not be fetched" in second.text
    assert token.status_code == 401
    assert documents.count(path) == 1


def test_a_slow_document_host_is_given_up_on_within_the_fetch_budget(
    harness: VaultHarness, documents: DocumentServer
) -> None:
    # 3.5 s: within the old 5 s budget, beyond the 2 s one (clients.CIMD_TIMEOUT_SECONDS says why 2)
    path = f"/slow-{secrets.token_hex(4)}.json"
    client_id = documents.publish(path, redirect_uris=[LOOPBACK_REDIRECT])
    documents.delays[path] = 3.5
    response = harness.http.get(f"{harness.base}/oauth/authorize", params=_authorize_query(client_id))
    _assert_error_page(response)
    assert "could not be fetched" in response.text


def test_document_fetches_are_rate_limited_per_source_address(harness: VaultHarness) -> None:
    # GIVEN one address asking for ever new documents (default: 20 fetches per address per minute)
    with from_address("127.0.0.31") as http:
        answers = []
        for n in range(42):  # two windows' worth: a window may end meanwhile
            client_id = f"http://localhost:9/ip-{secrets.token_hex(4)}-{n}.json"
            answers.append(http.get(f"{harness.base}/oauth/authorize", params=_authorize_query(client_id)))
            if answers[-1].status_code == 429:
                break
    # THEN after at least 20 fetches it is refused without fetching, on a page with Retry-After
    assert len(answers) > 20
    assert {a.status_code for a in answers[:-1]} == {400}
    _assert_error_page(answers[-1], 429)
    assert int(answers[-1].headers["retry-after"]) >= 1
    # AND another address still gets its fetch (and its ordinary error page)
    with from_address("127.0.0.32") as http:
        other = http.get(f"{harness.base}/oauth/authorize", params=_authorize_query("http://localhost:9/o.json"))
    _assert_error_page(other)


def test_document_fetches_are_rate_limited_per_document_host(harness: VaultHarness) -> None:
    # GIVEN many addresses asking at once for ever new documents on one host (default: 60 fetches
    # per host per minute); concurrent, so that a window's worth fits into a window on a busy machine
    addresses = [f"127.0.0.{n}" for n in range(40, 48)]
    clients = {address: from_address(address) for address in addresses}

    def ask(n: int) -> httpx.Response:
        client_id = f"http://[::1]:9/host-{secrets.token_hex(4)}-{n}.json"
        return clients[addresses[n % len(addresses)]].get(
            f"{harness.base}/oauth/authorize", params=_authorize_query(client_id)
        )

    allowed, refused = 0, None
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            for start in range(0, 4 * 61, 16):  # up to four windows' worth, stopping at the first 429
                answers = list(pool.map(ask, range(start, start + 16)))
                allowed += sum(a.status_code == 400 for a in answers)
                refused = next((a for a in answers if a.status_code == 429), None)
                if refused is not None:
                    break
    finally:
        for http in clients.values():
            http.close()
    # THEN at least a window's worth is fetched, then the host is protected whoever asks
    assert allowed >= 60
    assert refused is not None
    _assert_error_page(refused, 429)
    assert "metadata host was asked too often" in refused.text


def test_authorize_flood_from_one_address_gets_429(harness: VaultHarness) -> None:
    # GIVEN a registered client and the default limit of 120 authorization requests per address per minute
    client = harness.register()
    with from_address("127.0.0.33") as http:
        answers: list[httpx.Response] = []
        while len(answers) < 241 and (not answers or answers[-1].status_code == 302):
            answers.append(http.get(f"{harness.base}/oauth/authorize", params=_authorize_query(client["client_id"])))
    assert len(answers) > 120
    _assert_error_page(answers[-1], 429)
    assert int(answers[-1].headers["retry-after"]) >= 1


# -- 3. no open redirect before sign-in ----------------------------------------------------------
PRE_SIGN_IN_ERRORS = [
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"response_type": ""}, "unsupported_response_type"),
    ({"code_challenge": ""}, "invalid_request"),
    ({"code_challenge_method": "plain"}, "invalid_request"),
    ({"code_challenge": "short"}, "invalid_request"),
    ({"resource": "https://other.example/mcp"}, "invalid_target"),
    ({"scope": "admin"}, "invalid_scope"),
]


@pytest.mark.parametrize(("params", "error"), PRE_SIGN_IN_ERRORS, ids=[e for _, e in PRE_SIGN_IN_ERRORS])
def test_errors_before_sign_in_never_redirect_to_a_self_registered_client(
    harness: VaultHarness, params: dict[str, str], error: str
) -> None:
    # GIVEN an attacker's self-registered client whose redirect URI is their own site
    client = harness.register(redirect_uris=[ATTACKER], token_endpoint_auth_method="none")
    # WHEN a person is sent to /authorize with a request that fails before sign-in
    response = harness.http.get(
        f"{harness.base}/oauth/authorize", params=_authorize_query(client["client_id"], ATTACKER, **params)
    )
    # THEN the server shows the error itself instead of redirecting to the attacker
    _assert_error_page(response)
    assert error in response.text


@pytest.mark.parametrize(("params", "error"), PRE_SIGN_IN_ERRORS, ids=[e for _, e in PRE_SIGN_IN_ERRORS])
def test_errors_before_sign_in_never_redirect_to_a_metadata_document_client(
    harness: VaultHarness, documents: DocumentServer, params: dict[str, str], error: str
) -> None:
    client_id = documents.publish(f"/redirector-{secrets.token_hex(4)}.json", redirect_uris=[ATTACKER])
    response = harness.http.get(
        f"{harness.base}/oauth/authorize", params=_authorize_query(client_id, ATTACKER, **params)
    )
    _assert_error_page(response)
    assert error in response.text


@pytest.mark.parametrize("answer", [{"error": "access_denied"}, {}, {"code": "forged-upstream-code"}])
def test_a_cancelled_or_failed_upstream_sign_in_never_redirects_to_a_self_registered_client(
    harness: VaultHarness, answer: dict[str, str]
) -> None:
    # GIVEN an authorization request of the attacker's client, waiting for the person to sign in upstream
    client = harness.register(redirect_uris=[ATTACKER], token_endpoint_auth_method="none")
    started = harness.http.get(
        f"{harness.base}/oauth/authorize", params=_authorize_query(client["client_id"], ATTACKER)
    )
    assert started.status_code == 302, started.text
    txn = parse_qs(urlsplit(started.headers["location"]).query)["txn"][0]
    # WHEN the upstream answer is a cancellation, nothing, or a code Cognito refuses
    response = harness.http.get(f"{harness.base}/oauth/callback", params={"state": txn, **answer})
    # THEN nobody has signed in, so the person sees a page, not the attacker's site
    _assert_error_page(response)


# -- 4. a refused refresh changes nothing --------------------------------------------------------
REFUSED_REFRESHES = {
    "wider scope": ({"scope": "mcp:tools vault:admin"}, 400, "invalid_scope"),
    "unknown scope": ({"scope": "admin"}, 400, "invalid_scope"),
    "empty scope": ({"scope": ""}, 400, "invalid_scope"),
    "another resource": ({"resource": "https://other.example/mcp"}, 400, "invalid_target"),
    "wrong client secret": ({"client_secret": "wrong"}, 401, "invalid_client"),
}


@pytest.mark.parametrize("case", list(REFUSED_REFRESHES))
def test_a_refused_refresh_leaves_the_refresh_token_good(harness: VaultHarness, case: str) -> None:
    # GIVEN a client holding a refresh token
    client = harness.register()
    refresh = harness.tokens(client)["refresh_token"]
    extra, status, error = REFUSED_REFRESHES[case]
    # WHEN a refresh is refused
    data = {
        "grant_type": "refresh_token",
        "refresh_token": refresh,
        "client_id": client["client_id"],
        "client_secret": client["client_secret"],
        **extra,
    }
    refused = harness.token(data)
    assert refused.status_code == status, refused.text
    assert refused.json()["error"] == error
    # THEN the client's next, correct refresh works
    again = harness.refresh(client, refresh)
    assert again.status_code == 200, again.text
    assert again.json()["scope"] == "mcp:tools"


def test_a_refresh_token_presented_by_another_client_is_refused_and_stays_good(harness: VaultHarness) -> None:
    client, other = harness.register(), harness.register()
    refresh = harness.tokens(client)["refresh_token"]
    stolen = harness.refresh(other, refresh)
    assert stolen.status_code == 400
    assert stolen.json()["error"] == "invalid_grant"
    assert harness.refresh(client, refresh).status_code == 200


# -- 5. the issuer never comes from a client's forwarding headers ---------------------------------
@pytest.mark.parametrize(
    "headers",
    [
        {"x-forwarded-proto": "https"},
        {"x-forwarded-port": "8443"},
        {"x-forwarded-proto": "https", "x-forwarded-port": "443"},
        {"x-forwarded-host": "evil.example", "forwarded": "host=evil.example;proto=https"},
        {"x-forwarded-port": "1, 2"},
    ],
)
def test_forwarding_headers_sent_by_a_client_do_not_change_the_issuer(
    harness: VaultHarness, headers: dict[str, str]
) -> None:
    metadata = harness.http.get(f"{harness.base}/.well-known/oauth-authorization-server", headers=headers).json()
    assert metadata["issuer"] == harness.base
    assert metadata["token_endpoint"] == f"{harness.base}/oauth/token"
    prm = harness.http.get(f"{harness.base}/.well-known/oauth-protected-resource/mcp", headers=headers).json()
    assert prm["resource"] == harness.resource
    challenge = harness.http.post(harness.server.url, json={}, headers=headers)
    assert f'resource_metadata="{harness.base}/' in challenge.headers["www-authenticate"]


def test_a_forged_x_forwarded_for_does_not_choose_the_rate_limit_bucket(oauth_dev: OAuthDev) -> None:
    # GIVEN a registration from 127.0.0.1 (the address uvicorn's proxy-header support trusts by
    # default) whose caller claims to be someone else
    forged = "198.51.100.23"
    response = oauth_dev.harness.http.post(
        f"{oauth_dev.harness.base}/oauth/register",
        json={"redirect_uris": [LOOPBACK_REDIRECT]},
        headers={"x-forwarded-for": forged, "x-forwarded-proto": "https"},
    )
    assert response.status_code == 201, response.text
    # THEN it is counted against the address it really came from
    keys = {item["pk"]["S"] for item in oauth_dev.items("RATE#register-ip#")}
    assert "RATE#register-ip#127.0.0.1" in keys
    assert not any(forged in key for key in keys)
    assert response.json()["registration_client_uri"].startswith(oauth_dev.harness.base)


# -- 6. redirect URI schemes ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "uri",
    [
        "ms-msdt:/id PCWDiagnostic",
        "ms-msdt:?id=PCWDiagnostic",
        "search-ms:query=x",
        "ms-settings:privacy",
        "vscode-insiders:x",
        "myapp:/callback",
        "https://a b/c",
        "https://exa%20mple.com/cb",
        "https://[::1/cb",
        "https://ex\u00e4mple.com/cb",
        "https:/nohost",
    ],
)
def test_registration_refuses_os_handler_schemes_and_malformed_uris_with_invalid_redirect_uri(
    harness: VaultHarness, uri: str
) -> None:
    response = harness.http.post(f"{harness.base}/oauth/register", json={"redirect_uris": [LOOPBACK_REDIRECT, uri]})
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_redirect_uri"
    assert "redirect_uris" in response.json()["error_description"]


def test_cursors_exact_registration_still_succeeds(harness: VaultHarness) -> None:
    # Cursor's DCR request: three redirect URIs in one request, a public client (clients.md).
    uris = [
        "cursor://anysphere.cursor-mcp/oauth/callback",
        "https://www.cursor.com/agents/mcp/oauth/callback",
        "http://localhost:8787/callback",
    ]
    body = {
        "client_name": "Cursor",
        "redirect_uris": uris,
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    }
    response = harness.http.post(f"{harness.base}/oauth/register", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["redirect_uris"] == uris
    # and each of them works at /authorize
    for uri in uris:
        authorized = harness.http.get(
            f"{harness.base}/oauth/authorize", params=_authorize_query(response.json()["client_id"], uri)
        )
        assert authorized.status_code == 302, authorized.text
        assert "/oauth/dev-login?txn=" in authorized.headers["location"]


def test_reverse_domain_private_use_schemes_are_accepted(harness: VaultHarness) -> None:
    uris = ["com.example.app:/oauth2redirect", "io.github.someone.tool://callback"]
    response = harness.http.post(f"{harness.base}/oauth/register", json={"redirect_uris": uris})
    assert response.status_code == 201, response.text


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_failed_document_fetch_says_only_that_it_could_not_be_fetched(
    harness: VaultHarness, documents: DocumentServer
) -> None:
    # GIVEN document URLs on loopback: a closed port, a port that speaks no HTTP, a 404, a slow host
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    try:
        targets = [
            f"http://127.0.0.1:{_closed_port()}/a.json",
            f"http://127.0.0.1:{silent.getsockname()[1]}/b.json",
            f"{documents.base}/nothing-{secrets.token_hex(4)}.json",
            f"http://localhost:{_closed_port()}/c.json",
        ]
        texts = []
        for target in targets:
            response = harness.http.get(f"{harness.base}/oauth/authorize", params=_authorize_query(target))
            _assert_error_page(response)
            texts.append(response.text)
    finally:
        silent.close()
    # THEN every page says the same, so nobody learns which ports are open
    assert len(set(texts)) == 1, texts
    assert "could not be fetched" in texts[0]
    for leak in ("Connect", "Timeout", "404", "refused", "resolve", "Protocol"):
        assert leak not in texts[0]


def test_the_code_still_reaches_a_client_after_sign_in(harness: VaultHarness) -> None:
    # The open-redirect fix must not stop the normal path: the code goes back to the registered URI.
    client = harness.register()
    location = harness.sign_in(harness.authorize(client["client_id"], pkce()[1]))
    assert location.startswith(LOOPBACK_REDIRECT)
    assert "code" in parse_qs(urlsplit(location).query)
