"""The OAuth side when DynamoDB or KMS is in trouble, and single-use codes under concurrent redemption.

Over HTTP against `mcpkit dev --auth oauth --instances 3`, whose AWS endpoint is the fault proxy.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from handlers.auth import clients
from handlers.auth.state import (
    ClientRecord,
    CodeRecord,
    ConsentRequest,
    FamilyRecord,
    Grant,
    GrantRecord,
    Transaction,
)
from handlers.settings import Settings
from mcpkit.fault_proxy import Fault, FaultRates
from mcpkit.local_aws import ensure_oauth
from mcpkit.local_gateway import LambdaContext
from mcpkit.messages import rpc
from tests.auth.harness import LOOPBACK_REDIRECT, pkce
from tests.conftest import load_event
from tests.hostile.support import MCP_HEADERS

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pydantic import BaseModel

    from mcpkit.local_aws import EmbeddedAws
    from tests.hostile.support import OAuthDev

pytestmark = pytest.mark.slow
REGISTRATION = {"redirect_uris": [LOOPBACK_REDIRECT], "token_endpoint_auth_method": "client_secret_post"}


@pytest.fixture
def dev(oauth_dev: OAuthDev) -> Iterator[OAuthDev]:
    oauth_dev.proxy.reset()
    yield oauth_dev
    oauth_dev.proxy.reset()


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["error"] == "temporarily_unavailable"


def assert_whole_records(dev: OAuthDev) -> None:
    """Every OAuth item is complete and parses; every refresh family's current token exists."""
    models: dict[str, type[BaseModel]] = {
        "CLIENT#": ClientRecord,
        "CODE#": CodeRecord,
        "TXN#": Transaction,
        "FAMILY#": FamilyRecord,
        "CONSENT#": ConsentRequest,
    }
    for prefix, model in models.items():
        for item in dev.items(prefix):
            assert int(item["ttl"]["N"]) > 0
            model.model_validate_json(item["data"]["S"])
    refresh = {i["pk"]["S"]: i for i in dev.items("REFRESH#")}
    for family in dev.items("FAMILY#"):
        current = refresh.get(f"REFRESH#{family['current']['S']}")
        assert current is not None, f"{family['pk']['S']} has no current refresh token item"
        assert current["family"]["S"] == family["pk"]["S"].removeprefix("FAMILY#")
    # A family is created in one transaction with its grant's update: none exists outside a grant.
    grants = {(g.subject, g.client_id): g for g in map(GrantRecord.from_item, dev.items("GRANT#"))}
    for family in dev.items("FAMILY#"):
        record = FamilyRecord.model_validate_json(family["data"]["S"])
        grant = grants.get((record.subject, record.client_id))
        assert grant is not None, f"{family['pk']['S']} has no grant"
        assert family["pk"]["S"].removeprefix("FAMILY#") in grant.families


def test_register_gives_503_temporarily_unavailable_and_stores_nothing_when_the_table_keeps_failing(
    dev: OAuthDev,
) -> None:
    # GIVEN the rate-limit check passes, then every attempt of the client write is throttled
    harness = dev.harness
    before = len(dev.items("CLIENT#"))
    dev.proxy.script([None, Fault.THROTTLE, Fault.THROTTLE, Fault.THROTTLE])

    # WHEN a client registers, and registers again once the table recovers
    refused = harness.http.post(f"{harness.base}/oauth/register", json=REGISTRATION)
    accepted = harness.http.post(f"{harness.base}/oauth/register", json=REGISTRATION)

    # THEN the first is 503 + Retry-After + temporarily_unavailable with nothing stored; the retry works
    assert_unavailable(refused)
    assert accepted.status_code == 201
    assert len(dev.items("CLIENT#")) == before + 1


def test_register_whose_write_response_is_lost_stores_exactly_one_whole_client(dev: OAuthDev) -> None:
    # GIVEN the client write is applied but its response never reaches the function
    harness = dev.harness
    before = {i["pk"]["S"] for i in dev.items("CLIENT#")}
    dev.proxy.script([None, Fault.TIMEOUT])

    # WHEN a client registers
    response = harness.http.post(f"{harness.base}/oauth/register", json=REGISTRATION)

    # THEN the retried conditional write is recognized as its own: 201 and exactly that one client
    assert response.status_code == 201, response.text
    created = [i for i in dev.items("CLIENT#") if i["pk"]["S"] not in before]
    assert [i["pk"]["S"] for i in created] == [f"CLIENT#{response.json()['client_id']}"]
    assert_whole_records(dev)


def test_connector_flows_under_random_faults_end_in_tokens_or_503_and_leave_only_whole_records(
    dev: OAuthDev,
) -> None:
    # GIVEN a table that throttles, fails or times out (lost responses) on a good share of requests
    harness = dev.harness
    client = harness.register()
    dev.proxy.set_rates(FaultRates(throttle=0.2, internal=0.1, unavailable=0.05, timeout=0.02))
    outcomes: list[int] = []

    # WHEN people go through sign-in and token exchange and refresh, retrying whatever answered 503
    for _ in range(4):
        verifier, challenge = pkce()
        authorized = harness.authorize(client["client_id"], challenge)
        outcomes.append(authorized.status_code)
        if authorized.status_code != 302:
            assert_unavailable(authorized)
            continue
        form = harness.http.get(authorized.headers["location"])
        outcomes.append(form.status_code)
        if form.status_code != 200:
            assert form.status_code == 503, form.text
            continue
        txn = parse_qs(urlsplit(authorized.headers["location"]).query)["txn"][0]
        signed_in = harness.http.post(
            f"{harness.base}/oauth/dev-login",
            data={"txn": txn, "username": harness.username, "password": harness.password},
        )
        outcomes.append(signed_in.status_code)
        if signed_in.status_code != 303:
            assert signed_in.status_code in {503, 400}, signed_in.text
            continue
        location = signed_in.headers["location"]
        if urlsplit(location).path == "/oauth/consent":
            page = harness.http.get(location)
            outcomes.append(page.status_code)
            if page.status_code != 200:
                assert page.status_code in {503, 400}, page.text
                continue
            request_id = parse_qs(urlsplit(location).query)["request"][0]
            answered = harness.http.post(
                f"{harness.base}/oauth/consent", data={"request": request_id, "decision": "approve"}
            )
            outcomes.append(answered.status_code)
            if answered.status_code != 303:
                assert answered.status_code in {503, 400}, answered.text
                continue
            location = answered.headers["location"]
        code = parse_qs(urlsplit(location).query)["code"][0]
        for _attempt in range(3):
            exchanged = harness.exchange(client, code, verifier)
            outcomes.append(exchanged.status_code)
            if exchanged.status_code != 503:
                break
            assert_unavailable(exchanged)
        if exchanged.status_code == 200:
            refreshed = harness.refresh(client, exchanged.json()["refresh_token"])
            outcomes.append(refreshed.status_code)
            if refreshed.status_code == 503:
                assert_unavailable(refreshed)

    # THEN no answer was a 5xx other than 503, and the table holds only whole records
    dev.proxy.set_rates(FaultRates())
    assert not [s for s in outcomes if s >= 500 and s != 503], outcomes
    assert 200 in outcomes, outcomes  # some flows made it through: the retries work
    assert dev.proxy.counts()["pass"] > 0
    assert_whole_records(dev)


def test_a_code_redeemed_by_many_at_once_is_redeemed_exactly_once(dev: OAuthDev) -> None:
    # GIVEN one authorization code and eight clients racing to redeem it (three Lambda instances serve them)
    harness = dev.harness
    client = harness.register()
    code, verifier = harness.code(client)
    barrier = threading.Barrier(8)
    results: list[httpx.Response] = []
    lock = threading.Lock()

    def redeem() -> None:
        with httpx.Client(timeout=30) as http:
            data = {
                "grant_type": "authorization_code",
                "code": code,
                "code_verifier": verifier,
                "redirect_uri": LOOPBACK_REDIRECT,
                "client_id": client["client_id"],
                "client_secret": client["client_secret"],
            }
            barrier.wait()
            response = http.post(f"{harness.base}/oauth/token", data=data)
        with lock:
            results.append(response)

    # WHEN they all send it at the same moment
    threads = [threading.Thread(target=redeem) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # THEN exactly one gets tokens; the others get invalid_grant
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200] + [400] * 7, [r.text for r in results]
    assert {r.json()["error"] for r in results if r.status_code == 400} == {"invalid_grant"}


# -- KMS and Cognito, through one in-process instance ---------------------------------------------
def send(app: Any, method: str, path: str, headers: dict[str, str], body: str = "") -> dict[str, Any]:
    event = copy.deepcopy(load_event("http_api_post_mcp"))
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} {path}"
    event["headers"].update(headers)
    event["body"] = body
    result: dict[str, Any] = app(event, LambdaContext())
    return result


@contextlib.contextmanager
def endpoint(variable: str, url: str) -> Iterator[None]:
    """AWS clients made inside the block talk to `url` (botocore reads the variable at creation)."""
    saved = os.environ.get(variable)
    os.environ[variable] = url
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(variable)
        else:
            os.environ[variable] = saved


def _refreshable(aws: EmbeddedAws, lambda_module: Any, name: str) -> tuple[Any, dict[str, str], str]:
    """An OAuth instance with a person's grant and its refresh token: (app, refresh form, refresh token)."""
    local = ensure_oauth(aws.endpoint, name, "http://127.0.0.1/oauth/callback")
    settings = Settings(
        auth_mode="oauth",
        kms_key_id=local.kms_key_id,
        cognito_user_pool_id=local.user_pool_id,
        cognito_client_id=local.client_id,
        dev_login=True,
    )
    app = lambda_module.LambdaApp(settings)
    oauth = app.runtime.oauth
    import boto3

    idp = boto3.client("cognito-idp")  # the `aws` fixture points it at the emulator
    user = idp.admin_get_user(UserPoolId=local.user_pool_id, Username=local.username)
    subject = next(a["Value"] for a in user["UserAttributes"] if a["Name"] == "sub")
    client = clients.register(
        oauth.state,
        clients.RegistrationRequest(redirect_uris=[LOOPBACK_REDIRECT], token_endpoint_auth_method="client_secret_post"),
        86400,
        "http://127.0.0.1/oauth/register",
        oauth.permissions.supported,
    )
    oauth.state.record_consent(
        subject=subject,
        email=local.username,
        client_id=client["client_id"],
        client_name=None,
        scopes=oauth.permissions.supported,
        lifetime=3600,
    )
    grant = Grant(
        client_id=client["client_id"],
        subject=subject,
        email=local.username,
        scopes=oauth.permissions.supported,
        resource="https://mcp.example.com/mcp",
    )
    refresh_token = oauth.state.start_family(grant, 3600, 7200)
    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": client["client_id"],
        "client_secret": client["client_secret"],
    }
    return app, form, refresh_token


FORM_HEADERS = {"content-type": "application/x-www-form-urlencoded"}


def test_cognito_unreachable_during_a_refresh_gives_503_and_the_token_still_works(
    aws: EmbeddedAws, lambda_module: Any
) -> None:
    # GIVEN an OAuth instance with a person's grant, its refresh token, and Cognito unreachable
    app, form, refresh_token = _refreshable(aws, lambda_module, "refresh-outage")
    oauth = app.runtime.oauth
    oauth.upstream.reset()
    with endpoint("AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER", "http://127.0.0.1:9"):
        _ = oauth.upstream._idp  # made now, against the dead endpoint

    # WHEN the client refreshes during the outage, and again once Cognito is back
    during = send(app, "POST", "/oauth/token", FORM_HEADERS, urlencode(form))
    oauth.upstream.reset()
    after = send(app, "POST", "/oauth/token", FORM_HEADERS, urlencode(form))

    # THEN the first is 503 and used nothing up: the same refresh token works afterwards
    assert during["statusCode"] == 503, during
    assert json.loads(during["body"])["error"] == "temporarily_unavailable"
    assert after["statusCode"] == 200, after
    assert json.loads(after["body"])["refresh_token"] != refresh_token


def test_kms_unreachable_during_a_refresh_gives_503_and_the_token_still_works(
    aws: EmbeddedAws, lambda_module: Any
) -> None:
    # GIVEN a refresh token, and KMS (which signs the new access token) unreachable
    app, form, refresh_token = _refreshable(aws, lambda_module, "refresh-kms-outage")
    signer = app.runtime.oauth.signer
    signer.reset()
    with endpoint("AWS_ENDPOINT_URL_KMS", "http://127.0.0.1:9"):
        _ = signer._kms  # made now, against the dead endpoint

    # WHEN the client refreshes during the outage, and again once KMS is back
    during = send(app, "POST", "/oauth/token", FORM_HEADERS, urlencode(form))
    signer.reset()
    after = send(app, "POST", "/oauth/token", FORM_HEADERS, urlencode(form))

    # THEN the token is signed before the refresh token is rotated: the 503 used nothing up
    assert during["statusCode"] == 503, during
    assert after["statusCode"] == 200, after
    assert json.loads(after["body"])["refresh_token"] != refresh_token


def test_kms_unreachable_gives_503_not_500(aws: EmbeddedAws, lambda_module: Any) -> None:
    # GIVEN an OAuth instance whose KMS endpoint refuses connections
    with endpoint("AWS_ENDPOINT_URL_KMS", "http://127.0.0.1:9"):
        settings = Settings(
            auth_mode="oauth",
            kms_key_id="alias/missing",
            cognito_user_pool_id="us-east-1_missing",
            cognito_client_id="missing",
            dev_login=True,
        )
        app = lambda_module.LambdaApp(settings)
        _ = app.runtime.oauth.signer._kms  # the client is made now, against the dead endpoint

    # WHEN the JWKS is fetched and a bearer token must be verified
    jwks = send(app, "GET", "/oauth/jwks.json", {})
    mcp = send(app, "POST", "/mcp", {**MCP_HEADERS, "authorization": "Bearer a.b.c"}, json.dumps(rpc("tools/list")))

    # THEN both are 503 with Retry-After: an OAuth error and a JSON-RPC error, never a 500
    assert jwks["statusCode"] == 503, jwks
    assert jwks["headers"]["retry-after"] == "1"
    assert json.loads(jwks["body"])["error"] == "temporarily_unavailable"
    assert mcp["statusCode"] == 503, mcp
    assert "retry-after" in mcp["headers"]
    assert json.loads(mcp["body"])["error"]["code"] == -32001
