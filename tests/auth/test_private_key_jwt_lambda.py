"""`private_key_jwt` through the Lambda handler itself (deployed settings, no dev server): a client
registered with its own keys redeems a code, refreshes with a fresh assertion, calls a tool, and a
replayed assertion is refused. The browser steps before the code are covered over HTTP in
test_private_key_jwt.py."""

from __future__ import annotations

import copy
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from handlers.auth import clients
from handlers.auth.state import CodeRecord
from handlers.settings import Settings
from mcpkit.local_aws import ensure_oauth
from mcpkit.local_gateway import LambdaContext
from tests.auth.harness import pkce
from tests.auth.jwt_client import CHATGPT_REDIRECT, JwtClient, SigningKey
from tests.conftest import load_event

if TYPE_CHECKING:
    from mcpkit.local_aws import EmbeddedAws

FORM = {"content-type": "application/x-www-form-urlencoded"}


def _send(app: Any, method: str, path: str, headers: dict[str, str], body: str) -> dict[str, Any]:
    event = copy.deepcopy(load_event("http_api_post_mcp"))
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} {path}"
    event["headers"].update(headers)
    event["body"] = body
    result: dict[str, Any] = app(event, LambdaContext())
    return result


def test_the_lambda_handler_authenticates_a_private_key_jwt_client(aws: EmbeddedAws, lambda_module: Any) -> None:
    # GIVEN a deployed-shape OAuth instance and a client registered with its own key (inline jwks)
    local = ensure_oauth(aws.endpoint, "jwt-lambda", "http://127.0.0.1/oauth/callback")
    settings = Settings(
        auth_mode="oauth",
        kms_key_id=local.kms_key_id,
        cognito_user_pool_id=local.user_pool_id,
        cognito_client_id=local.client_id,
        cognito_domain="https://auth.example.com",  # the hosted UI; never reached here
    )
    app = lambda_module.LambdaApp(settings)
    oauth = app.runtime.oauth
    key = SigningKey("ES256")
    registered = clients.register(
        oauth.state,
        clients.RegistrationRequest(
            redirect_uris=[CHATGPT_REDIRECT], token_endpoint_auth_method="private_key_jwt", jwks={"keys": [key.jwk()]}
        ),
        86400,
        "https://x/oauth/register",
        oauth.permissions.supported,
    )
    assert "client_secret" not in registered
    domain = load_event("http_api_post_mcp")["requestContext"]["domainName"]
    client = JwtClient(registered["client_id"], f"https://{domain}/oauth/token", key)
    import boto3

    user = boto3.client("cognito-idp").admin_get_user(UserPoolId=local.user_pool_id, Username=local.username)
    subject = next(a["Value"] for a in user["UserAttributes"] if a["Name"] == "sub")
    oauth.state.record_consent(
        subject=subject,
        email=local.username,
        client_id=client.client_id,
        client_name=None,
        scopes=oauth.permissions.supported,
        lifetime=3600,
    )
    verifier, challenge = pkce()
    code = oauth.state.put_code(
        CodeRecord(
            client_id=client.client_id,
            subject=subject,
            email=local.username,
            scopes=oauth.permissions.supported,
            resource=f"https://{domain}/mcp",
            redirect_uri=CHATGPT_REDIRECT,
            code_challenge=challenge,
        ),
        60,
    )

    # WHEN it redeems the code and refreshes, each time with a fresh assertion
    redeem = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
    redeem["redirect_uri"] = CHATGPT_REDIRECT
    issued = _send(app, "POST", "/oauth/token", FORM, urlencode({**redeem, **client.auth()}))
    assert issued["statusCode"] == 200, issued
    tokens = json.loads(issued["body"])
    assertion = client.assertion({"aud": f"https://{domain}"})  # the issuer is an accepted audience too
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    refreshed = _send(app, "POST", "/oauth/token", FORM, urlencode({**refresh, **client.auth(assertion)}))
    assert refreshed["statusCode"] == 200, refreshed

    # THEN the access token works on /mcp, and the same assertion a second time is refused
    new_refresh = {"grant_type": "refresh_token", "refresh_token": json.loads(refreshed["body"])["refresh_token"]}
    replayed = _send(app, "POST", "/oauth/token", FORM, urlencode({**new_refresh, **client.auth(assertion)}))
    assert replayed["statusCode"] == 401, replayed
    assert "already used" in json.loads(replayed["body"])["error_description"]
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    headers = {
        "authorization": f"Bearer {json.loads(refreshed['body'])['access_token']}",
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": "2025-11-25",
    }
    answered = _send(app, "POST", "/mcp", headers, json.dumps(ping))
    assert answered["statusCode"] == 200, answered
