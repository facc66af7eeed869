"""Property-based fuzzing: the /mcp request decoder (through the Lambda handler) and the OAuth endpoints' parameters.

Bounded for CI: few examples, derandomized (the same inputs on every run), no example database.
The properties: never a 5xx, never a stack trace, always an error body of the documented shape.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mcpkit.local_gateway import LambdaContext
from tests.auth.harness import LOOPBACK_REDIRECT
from tests.conftest import load_event

if TYPE_CHECKING:
    from tests.hostile.support import OAuthDev

BOUNDED = settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
OVER_HTTP = settings(BOUNDED, max_examples=40)
FORM = "application/x-www-form-urlencoded"

VERSIONS = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"]
METHODS = [
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "resources/read",
    "prompts/get",
    "notifications/initialized",
]
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
)
jsonrpc_like = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.sampled_from(["2.0", "1.0", 2]) | json_scalars,
        "id": st.integers() | st.text(max_size=10) | json_values,
        "method": st.sampled_from(METHODS) | json_values,
        "params": st.fixed_dictionaries(
            {},
            optional={
                "name": st.sampled_from(["add", "echo", "nope"]) | json_values,
                "arguments": json_values,
                "protocolVersion": st.sampled_from(VERSIONS) | json_values,
                "_meta": json_values,
                "uri": json_values,
            },
        )
        | json_values,
        "result": json_values,
        "error": json_values,
    },
)
bodies = (
    st.binary(max_size=300)
    | json_values.map(lambda v: json.dumps(v).encode())
    | jsonrpc_like.map(lambda v: json.dumps(v).encode())
    | st.lists(jsonrpc_like, max_size=3).map(lambda v: json.dumps(v).encode())
)
mcp_headers = st.fixed_dictionaries(
    {},
    optional={
        "content-type": st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain", ""])
        | header_text,
        "accept": st.sampled_from(["application/json, text/event-stream", "application/json", "*/*", "text/html"])
        | header_text,
        "mcp-protocol-version": st.sampled_from(VERSIONS) | header_text,
        "mcp-session-id": st.sampled_from(["0" * 32, "f" * 32, "../x"]) | header_text,
        "mcp-method": st.sampled_from(METHODS) | header_text,
        "mcp-name": header_text,
        "origin": st.sampled_from(["http://localhost:6274", "https://evil.example", "null"]) | header_text,
    },
)


def _event(method: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    event = copy.deepcopy(load_event("http_api_post_mcp"))
    event["requestContext"]["http"]["method"] = method
    event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} /mcp"
    for name in ("content-type", "accept"):
        event["headers"].pop(name, None)
    event["headers"].update(headers)
    event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    return event


@BOUNDED
@given(method=st.sampled_from(["POST", "POST", "POST", "DELETE", "GET"]), headers=mcp_headers, body=bodies)
def test_mcp_decoder_never_fails_and_always_answers_json_rpc(
    lambda_module: Any, method: str, headers: dict[str, str], body: bytes
) -> None:
    response = lambda_module.handler(_event(method, headers, body), LambdaContext())
    status = int(response["statusCode"])
    text = response.get("body") or ""
    if response.get("isBase64Encoded"):
        text = base64.b64decode(text).decode()
    assert status < 500, (status, text)
    assert "Traceback" not in text
    if status in {202, 204}:
        return
    message = json.loads(text)
    assert message["jsonrpc"] == "2.0"
    if status >= 400:
        assert isinstance(message["error"]["code"], int)
        assert isinstance(message["error"]["message"], str)
        assert message["error"]["message"]
    else:
        assert ("result" in message) != ("error" in message)


# -- OAuth endpoints over HTTP -----------------------------------------------------------------------
def _from(address: str) -> httpx.Client:
    # A loopback source address of its own: these floods must not spend other tests' rate-limit budget.
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=30, follow_redirects=False)


def assert_oauth_error(response: httpx.Response, *, allowed: set[int]) -> None:
    assert response.status_code < 500, response.text
    assert response.status_code in allowed, response.text
    assert "Traceback" not in response.text
    if response.status_code >= 400 and response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
        assert isinstance(body["error"], str)
        assert body["error"]


# Hosts and escapes that stress URL and IDNA parsing: unclosed and bogus IP literals, bad ports,
# joiners and other code points IDNA refuses, overlong UTF-8 escapes, spaces, NULs, long labels.
hostile_hosts = st.sampled_from(
    [
        "[::1",
        "[::1]",
        "[zz]",
        "[fe80::1%25eth0]",
        "[::ffff:127.0.0.1]",
        "example.com:99999",
        "example.com:x",
        "example.com:",
        "exa\u0308mple\u200d.com",
        "\u00e9xample.com",
        "\ufffd.example",
        "xn--zz-.example",
        "xn--.example",
        "a" * 64 + ".example",
        "%C0%AE%C0%AE.example",
        "%ZZ.example",
        "exa mple.com",
        "example.com%00.evil",
        "localhost",
        "127.0.0.1:1",
        "user:pass@example.com",
        "",
        ".",
        "-a-.example",
        "\u0130.example",
        "\uff21.example",
    ]
) | st.text(max_size=12)
hostile_paths = st.sampled_from(["/", "/cb", "/%C0%AE%C0%AE/", "/%E0%80%AF", "/%", "/a b", "#frag", "?x=%FF", ""])
hostile_urls = st.builds(
    lambda scheme, host, path: f"{scheme}{host}{path}",
    st.sampled_from(["https://", "http://", "HTTPS://", "cursor://", "ms-msdt:", "com.example.app:/", "javascript:"]),
    hostile_hosts,
    hostile_paths,
)


def _b64json(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


# Shaped like a JWS (header.payload.signature) with any JSON in the header and payload, so the
# assertion checks see odd alg/kid/exp/aud types, not just text PyJWT refuses at once.
jws_like = st.builds(
    lambda header, payload, signature: f"{_b64json(header)}.{_b64json(payload)}.{signature}",
    st.fixed_dictionaries(
        {},
        optional={
            "alg": st.sampled_from(["RS256", "ES256", "none", "HS256"]) | json_values,
            "kid": st.sampled_from(["k1", "k2"]) | json_values,
        },
    ),
    st.fixed_dictionaries({}, optional=dict.fromkeys(("iss", "sub", "aud", "exp", "jti", "iat", "nbf"), json_values)),
    st.text(alphabet="ABCDEFabcdef0123456789-_", max_size=40),
)
registration_documents = st.fixed_dictionaries(
    {},
    optional={
        "redirect_uris": st.lists(
            st.sampled_from(
                [LOOPBACK_REDIRECT, "https://app.example/cb", "javascript:alert(1)", "http://evil.example/"]
            )
            | hostile_urls
            | st.text(max_size=30),
            max_size=3,
        )
        | json_values,
        "token_endpoint_auth_method": st.sampled_from(
            ["none", "client_secret_post", "client_secret_basic", "private_key_jwt", "x"]
        )
        | json_values,
        "jwks_uri": hostile_urls | json_values,
        "jwks": st.fixed_dictionaries({"keys": st.lists(json_values, max_size=3)}) | json_values,
        "grant_types": st.lists(st.sampled_from(["authorization_code", "refresh_token", "implicit"]), max_size=3)
        | json_values,
        # "\ud800": a lone surrogate is valid JSON but no valid UTF-8
        "client_name": st.text(max_size=300) | json_values | st.just("\ud800 lone"),
        "client_uri": hostile_urls | json_values,
        "logo_uri": hostile_urls | json_values,
        "scope": st.text(max_size=30) | json_values,
        "contacts": json_values,
    },
)


@OVER_HTTP
@given(document=registration_documents | json_values, raw=st.none() | st.binary(max_size=100))
def test_registration_never_fails(oauth_dev: OAuthDev, document: Any, raw: bytes | None) -> None:
    harness = oauth_dev.harness
    body = raw if raw is not None else json.dumps(document).encode()
    with _from("127.0.0.4") as http:
        response = http.post(
            f"{harness.base}/oauth/register", content=body, headers={"content-type": "application/json"}
        )
    assert_oauth_error(response, allowed={201, 400, 429})
    if response.status_code == 400:
        assert response.json()["error"] in {"invalid_client_metadata", "invalid_redirect_uri"}


@pytest.fixture(scope="module")
def fuzz_client(oauth_dev: OAuthDev) -> dict[str, Any]:
    return oauth_dev.harness.register()


@pytest.fixture(scope="module")
def jwt_fuzz_client(oauth_dev: OAuthDev) -> dict[str, Any]:
    """A client that authenticates with private_key_jwt: the fuzzed assertions reach its key checks."""
    from tests.auth.jwt_client import SigningKey

    keys = {"keys": [SigningKey("RS256", kid="k1").jwk(), SigningKey("ES256", kid="k2").jwk()]}
    return oauth_dev.harness.register(token_endpoint_auth_method="private_key_jwt", jwks=keys)


authorize_queries = st.fixed_dictionaries(
    {},
    optional={
        "response_type": st.sampled_from(["code", "token", ""]) | st.text(max_size=10),
        "redirect_uri": st.sampled_from([LOOPBACK_REDIRECT, "https://evil.example/cb"])
        | hostile_urls
        | st.text(max_size=30),
        "state": st.text(max_size=30),
        "code_challenge": st.sampled_from(["a" * 43, ""]) | st.text(max_size=60),
        "code_challenge_method": st.sampled_from(["S256", "plain"]) | st.text(max_size=10),
        "resource": hostile_urls | st.text(max_size=40),
        "scope": st.sampled_from(["mcp:tools", "openid", ""]) | st.text(max_size=20),
    },
)


# The shapes the outside review found (issue 19), always tried besides the random ones.
@example(query={}, known_client=False, other_id="https://[::1/client.json")
@example(query={}, known_client=False, other_id="https://exa\u0308mple\u200d.com/client.json")
@example(query={"redirect_uri": "http://[::1"}, known_client=True, other_id="")
@OVER_HTTP
@given(query=authorize_queries, known_client=st.booleans(), other_id=hostile_urls | st.text(max_size=60))
def test_authorize_never_fails(
    oauth_dev: OAuthDev, fuzz_client: dict[str, Any], query: dict[str, str], known_client: bool, other_id: str
) -> None:
    harness = oauth_dev.harness
    params = {**query, "client_id": fuzz_client["client_id"] if known_client else other_id}
    with _from("127.0.0.6") as http:
        response = http.get(f"{harness.base}/oauth/authorize", params=params)
    # Every refusal is an HTML page (no redirect before sign-in); the only redirect is to sign in.
    assert_oauth_error(response, allowed={302, 400, 429})
    if response.status_code == 302:
        assert "/oauth/dev-login?txn=" in response.headers["location"], response.headers["location"]


token_forms = st.fixed_dictionaries(
    {},
    optional={
        "grant_type": st.sampled_from(["authorization_code", "refresh_token", "client_credentials", ""])
        | st.text(max_size=10),
        "code": st.text(max_size=50),
        "code_verifier": st.text(max_size=130),
        "redirect_uri": st.text(max_size=30),
        "refresh_token": st.text(max_size=50),
        "resource": st.text(max_size=30),
        "scope": st.text(max_size=20),
        "client_secret": st.text(max_size=50),
        "client_assertion_type": st.just("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        | st.text(max_size=20),
        "client_assertion": jws_like | st.text(max_size=60),
    },
)


@example(form={}, client_choice="https://[::1/client.json", basic=None, content_type=FORM)
@example(form={}, client_choice="https://\ufffd.example/client.json", basic=None, content_type=FORM)
@OVER_HTTP
@given(
    form=token_forms,
    client_choice=st.sampled_from(["right", "jwt", "none", "other"]) | hostile_urls,
    basic=st.none() | header_text,
    content_type=st.sampled_from([FORM, "application/json", "text/plain"]),
)
def test_token_never_fails(
    oauth_dev: OAuthDev,
    fuzz_client: dict[str, Any],
    jwt_fuzz_client: dict[str, Any],
    form: dict[str, str],
    client_choice: str,
    basic: str | None,
    content_type: str,
) -> None:
    harness = oauth_dev.harness
    data = dict(form)
    if client_choice == "right":
        data["client_id"] = fuzz_client["client_id"]
    elif client_choice == "jwt":
        data["client_id"] = jwt_fuzz_client["client_id"]
    elif client_choice == "other":
        data["client_id"] = "mcp-unknown"
    elif client_choice != "none":
        data["client_id"] = client_choice  # a metadata-document URL that stresses the parsers
    headers = {"content-type": content_type}
    if basic is not None:
        headers["authorization"] = f"Basic {basic.strip()}".strip()  # h11 refuses edge whitespace in values
    with _from("127.0.0.5") as http:
        body = httpx.QueryParams(data).__str__().encode()
        response = http.post(f"{harness.base}/oauth/token", content=body, headers=headers)
    assert_oauth_error(response, allowed={400, 401, 429})
    assert response.json()["error"] in {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unsupported_grant_type",
        "invalid_scope",
        "invalid_target",
        "slow_down",
    }


consent_forms = st.fixed_dictionaries(
    {},
    optional={
        "request": st.text(max_size=60),
        "decision": st.sampled_from(["approve", "deny", "", "maybe"]) | st.text(max_size=10),
        "extra": st.text(max_size=20),
    },
)


@OVER_HTTP
@given(
    form=consent_forms,
    cookie=st.none()
    | st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=";,"), max_size=50),
    origin=st.sampled_from([None, "null", "https://evil.example"]),
    query=st.text(max_size=60),
)
def test_consent_never_fails(
    oauth_dev: OAuthDev, form: dict[str, str], cookie: str | None, origin: str | None, query: str
) -> None:
    """Forged consent answers and pages for made-up requests: an HTML page with 400, never 5xx."""
    harness = oauth_dev.harness
    headers = {"content-type": "application/x-www-form-urlencoded"}
    if origin is not None:
        headers["origin"] = origin
    if cookie is not None:
        headers["cookie"] = f"mcpkit_consent={cookie}"
    with httpx.Client(timeout=30) as http:
        page = http.get(f"{harness.base}/oauth/consent", params={"request": query})
        answer = http.post(
            f"{harness.base}/oauth/consent", content=httpx.QueryParams(form).__str__().encode(), headers=headers
        )
    for response in (page, answer):
        assert response.status_code == 400, response.text
        assert response.headers["content-type"].startswith("text/html")
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
