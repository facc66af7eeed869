"""Behind a function URL the function finds its Cognito app client by name (handlers/auth/app_client.py).

The stack cannot put the client's id in the function's environment there (the client's callback is
the function's URL: a cycle), so the id is looked up in moto's user pool with ListUserPoolClients,
the call the deployed function makes, at the first sign-in.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import SecretStr

from handlers.auth.app_client import AppClientNotFoundError, find_client_id
from handlers.auth.upstream import CognitoUpstream, UpstreamError, new_verifier
from tests.auth.test_cognito_upstream import CALLBACK, DOMAIN, FakeCognito, _config
from tests.conftest import load_event

if TYPE_CHECKING:
    from mcpkit.local_aws import EmbeddedAws

NAME = "mcpkit"


def _pool(idp: Any, decoys: int = 0) -> str:
    pool_id: str = idp.create_user_pool(PoolName=f"app-client-{secrets.token_hex(4)}")["UserPool"]["Id"]
    for n in range(decoys):
        idp.create_user_pool_client(UserPoolId=pool_id, ClientName=f"other-{n}")
    return pool_id


@pytest.fixture(scope="module")
def idp(aws: EmbeddedAws) -> Any:
    import boto3

    return boto3.client("cognito-idp")


def test_the_client_is_found_by_name_past_the_first_page(idp: Any) -> None:
    # GIVEN more clients than ListUserPoolClients returns in one page (60), ours last
    pool_id = _pool(idp, decoys=61)
    client_id = idp.create_user_pool_client(UserPoolId=pool_id, ClientName=NAME)["UserPoolClient"]["ClientId"]
    assert find_client_id(idp, pool_id, NAME) == client_id


def test_a_missing_or_ambiguous_client_names_pool_and_name(idp: Any) -> None:
    pool_id = _pool(idp, decoys=2)
    with pytest.raises(AppClientNotFoundError, match=rf"the user pool {pool_id} has no app client named 'mcpkit'"):
        find_client_id(idp, pool_id, NAME)
    for _ in range(2):
        idp.create_user_pool_client(UserPoolId=pool_id, ClientName=NAME)
    with pytest.raises(AppClientNotFoundError, match=r"has 2 app clients named 'mcpkit'; delete the ones"):
        find_client_id(idp, pool_id, NAME)


def _by_name(pool_id: str) -> Any:
    config = _config(pool_id, "")
    return type(config)(**{**config.__dict__, "upstream_client_name": NAME})


@pytest.mark.anyio
async def test_sign_in_with_only_the_client_name(idp: Any) -> None:
    """Authorize URL, secret and ID-token audience all use the id found by name, looked up once."""
    pool_id = _pool(idp, decoys=1)
    created = idp.create_user_pool_client(UserPoolId=pool_id, ClientName=NAME, GenerateSecret=True)["UserPoolClient"]
    fake = FakeCognito(pool_id, created["ClientId"], created["ClientSecret"])
    upstream = CognitoUpstream(_by_name(pool_id), transport=httpx2.MockTransport(fake.handle))
    calls: list[str] = []
    upstream._idp.meta.events.register("before-call.cognito-idp", lambda model, **_: calls.append(model.name))

    verifier, challenge = new_verifier()
    authorize = urlsplit(upstream.authorize_url(callback=CALLBACK, state="txn", challenge=challenge))
    assert parse_qs(authorize.query)["client_id"] == [created["ClientId"]]
    identity = await upstream.exchange(code="cognito-code", verifier=verifier, callback=CALLBACK)

    assert identity.subject == "user-sub-1"
    assert fake.token_requests[0]["client_id"] == [created["ClientId"]]
    assert calls == ["ListUserPoolClients", "DescribeUserPoolClient"]


def test_a_missing_client_is_an_upstream_error_with_the_reason(idp: Any) -> None:
    pool_id = _pool(idp)
    upstream = CognitoUpstream(_by_name(pool_id))
    with pytest.raises(UpstreamError, match=rf"sign-in is not set up: the user pool {pool_id} has no app client"):
        upstream.authorize_url(callback=CALLBACK, state="txn", challenge="c" * 43)


def _request(app: Any, method: str, path: str, query: str = "", body: Any = None) -> dict[str, Any]:
    event = copy.deepcopy(load_event("http_api_post_mcp"))
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} {path}"
    event["requestContext"]["http"]["method"] = method
    event["rawQueryString"] = query
    text = "" if body is None else json.dumps(body)
    event["body"] = text
    event["headers"] = {
        "host": event["requestContext"]["domainName"],
        "content-type": "application/json",
        "content-length": str(len(text)),
    }
    response: dict[str, Any] = app(event, LambdaContext())
    return response


@pytest.mark.parametrize("client_exists", [True, False])
def test_what_a_person_sees_at_authorize(idp: Any, lambda_module: Any, client_exists: bool) -> None:
    """The real handler, configured as a streaming stack configures it: the pool id and the client's name."""
    import boto3

    from handlers.settings import Settings

    pool_id = _pool(idp)
    if client_exists:
        client_id = idp.create_user_pool_client(UserPoolId=pool_id, ClientName=NAME, GenerateSecret=True)[
            "UserPoolClient"
        ]["ClientId"]
    key_id = boto3.client("kms").create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    app = lambda_module.LambdaApp(
        Settings(
            server="servers/example/server.py:mcp",
            table_name="mcpkit-test",
            auth_mode="oauth",
            kms_key_id=key_id,
            cognito_user_pool_id=pool_id,
            cognito_client_name=NAME,
            cognito_domain=DOMAIN,
            session_key=SecretStr("test-session-key-of-at-least-32-characters"),
        )
    )
    redirect = "http://127.0.0.1:33418/callback"
    registered = _request(app, "POST", "/oauth/register", body={"redirect_uris": [redirect], "client_name": "t"})
    assert registered["statusCode"] == 201, registered
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = urlencode(
        {
            "response_type": "code",
            "client_id": json.loads(registered["body"])["client_id"],
            "redirect_uri": redirect,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": "s",
        }
    )
    response = _request(app, "GET", "/oauth/authorize", query)
    if client_exists:
        assert response["statusCode"] == 302, response
        location = urlsplit(response["headers"]["location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == f"{DOMAIN}/oauth2/authorize"
        assert parse_qs(location.query)["client_id"] == [client_id]
    else:
        assert response["statusCode"] == 503, response
        assert "Sign-in unavailable" in response["body"]
        assert f"the user pool {pool_id} has no app client named &#x27;mcpkit&#x27;" in response["body"]
        assert "Tell the server&#x27;s operator" in response["body"]
        assert "Traceback" not in response["body"]
