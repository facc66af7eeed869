"""Drive the kit's OAuth endpoints by hand over HTTP, the way a client and a person's browser would."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import httpx

from mcpkit.local_aws import endpoint_environment
from tests.conftest import DevServer, start_dev_server

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient
    from mypy_boto3_kms import KMSClient

SERVERS_DIR = "tests/auth/servers"
SERVER = "whoami"
KEY_ALIAS = f"alias/mcpkit-local-{SERVER}"
LOOPBACK_REDIRECT = "http://localhost:33418/callback"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, b64url(hashlib.sha256(verifier.encode()).digest())


def dev_credentials(output: str) -> tuple[str, str]:
    found = re.search(r"Dev sign-in:\s+username\s+(\S+)\s+password\s+(\S+)", output)
    assert found, output
    return found.group(1), found.group(2)


def start_oauth_dev_server(
    aws_endpoint: str,
    *,
    runner: list[str] | None = None,
    timeout: float = 60,
    servers_dir: str = SERVERS_DIR,
    server: str = SERVER,
) -> DevServer:
    """`mcpkit dev --auth oauth` for the whoami test server, on an emulator the test process can reach too.

    `runner` replaces `python -m mcpkit` (a test runs the same CLI behind a gateway without the
    WWW-Authenticate mapping). Every emulator in one process shares moto's state, so a second dev
    server for the same server name re-keys the shared dev user's password: give it another name.
    """
    args = ["--servers-dir", servers_dir, "--server", server, "--auth", "oauth", "--aws-endpoint", aws_endpoint]
    return start_dev_server(*args, timeout=timeout, runner=runner, ready_when="Dev sign-in:")


@dataclass
class Harness:
    # The dev server's signing key; each test server has its own (`mcpkit dev` names it after the server).
    key_alias: ClassVar[str] = KEY_ALIAS
    server: DevServer
    aws_endpoint: str
    username: str
    password: str
    http: httpx.Client = field(default_factory=lambda: httpx.Client(follow_redirects=False, timeout=30))
    # `mcpkit dev` names the emulated user pool after the server.
    server_name: str = SERVER

    @property
    def base(self) -> str:
        return self.server.url.removesuffix("/mcp")

    @property
    def resource(self) -> str:
        return self.server.url

    # -- AWS side, for forging tokens with the real key and adding users ---------------------
    def _session(self) -> Any:
        import boto3

        env = endpoint_environment(self.aws_endpoint)
        return boto3.session.Session(
            region_name=env["AWS_DEFAULT_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )

    def kms(self) -> KMSClient:
        client: KMSClient = self._session().client("kms", endpoint_url=self.aws_endpoint)
        return client

    def cognito(self) -> CognitoIdentityProviderClient:
        client: CognitoIdentityProviderClient = self._session().client("cognito-idp", endpoint_url=self.aws_endpoint)
        return client

    def pool_id(self) -> str:
        pools = self.cognito().list_user_pools(MaxResults=60)["UserPools"]
        return next(p["Id"] for p in pools if p["Name"] == f"mcpkit-local-{self.server_name}")

    def add_user(self, email: str, password: str, group: str | None = None) -> None:
        idp = self.cognito()
        pool = self.pool_id()
        idp.admin_create_user(
            UserPoolId=pool,
            Username=email,
            UserAttributes=[{"Name": "email", "Value": email}],
            MessageAction="SUPPRESS",
        )
        idp.admin_set_user_password(UserPoolId=pool, Username=email, Password=password, Permanent=True)
        if group is not None:
            idp.admin_add_user_to_group(UserPoolId=pool, Username=email, GroupName=group)

    def forge(self, claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
        """A JWT signed by the server's own KMS key with whatever claims a test needs."""
        kid = self.http.get(f"{self.base}/oauth/jwks.json").json()["keys"][0]["kid"]
        head = {"alg": "RS256", "typ": "at+jwt", "kid": kid, **(header or {})}
        signing_input = f"{b64url(json.dumps(head).encode())}.{b64url(json.dumps(claims).encode())}"
        signature = self.kms().sign(
            KeyId=self.key_alias,
            Message=signing_input.encode(),
            MessageType="RAW",
            SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256",
        )["Signature"]
        return f"{signing_input}.{b64url(signature)}"

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": self.base,
            "aud": self.resource,
            "sub": "forged-subject",
            "client_id": "forged",
            "scope": "mcp:tools",
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "jti": secrets.token_hex(8),
            **overrides,
        }

    # -- the OAuth dance -----------------------------------------------------------------------
    def register(self, **metadata: Any) -> dict[str, Any]:
        body = {
            "redirect_uris": [LOOPBACK_REDIRECT],
            "token_endpoint_auth_method": "client_secret_post",
            "client_name": "harness",
            "grant_types": ["authorization_code", "refresh_token"],
            **metadata,
        }
        response = self.http.post(f"{self.base}/oauth/register", json=body)
        assert response.status_code == 201, response.text
        registered: dict[str, Any] = response.json()
        return registered

    def authorize(self, client_id: str, challenge: str, **params: str) -> httpx.Response:
        query = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": LOOPBACK_REDIRECT,
            "state": "state-123",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "resource": self.resource,
            "scope": "mcp:tools",
            **params,
        }
        return self.http.get(f"{self.base}/oauth/authorize", params=query)

    def sign_in(
        self,
        authorized: httpx.Response,
        username: str | None = None,
        password: str | None = None,
        decision: str | None = "approve",
    ) -> str:
        """Follow /authorize to the sign-in form and submit it, then answer the consent page if one
        comes (`decision=None` stops there); the Location the browser is sent to."""
        assert authorized.status_code == 302, authorized.text
        form = self.http.get(authorized.headers["location"])
        assert form.status_code == 200, form.text
        txn = re.search(r'name="txn" value="([^"]+)"', form.text)
        assert txn, form.text
        submitted = self.http.post(
            f"{self.base}/oauth/dev-login",
            data={"txn": txn.group(1), "username": username or self.username, "password": password or self.password},
        )
        assert submitted.status_code == 303, (submitted.status_code, submitted.text)
        location = submitted.headers["location"]
        if decision is not None and urlsplit(location).path == "/oauth/consent":
            location = self.answer_consent(location, decision)
        return location

    def answer_consent(self, location: str, decision: str) -> str:
        page = self.http.get(location)
        assert page.status_code == 200, page.text
        request_id = re.search(r'name="request" value="([^"]+)"', page.text)
        assert request_id, page.text
        answered = self.http.post(
            f"{self.base}/oauth/consent", data={"request": request_id.group(1), "decision": decision}
        )
        assert answered.status_code == 303, answered.text
        return answered.headers["location"]

    def code(self, client: dict[str, Any], **authorize_params: str) -> tuple[str, str]:
        verifier, challenge = pkce()
        location = self.sign_in(self.authorize(client["client_id"], challenge, **authorize_params))
        query = parse_qs(urlsplit(location).query)
        return query["code"][0], verifier

    def token(self, data: dict[str, str], **kwargs: Any) -> httpx.Response:
        return self.http.post(f"{self.base}/oauth/token", data=data, **kwargs)

    def exchange(self, client: dict[str, Any], code: str, verifier: str, **extra: str) -> httpx.Response:
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": LOOPBACK_REDIRECT,
            "client_id": client["client_id"],
            "resource": self.resource,
            **extra,
        }
        if "client_secret" in client:
            data["client_secret"] = client["client_secret"]
        return self.token(data)

    def tokens(self, client: dict[str, Any], **authorize_params: str) -> dict[str, Any]:
        code, verifier = self.code(client, **authorize_params)
        response = self.exchange(client, code, verifier)
        assert response.status_code == 200, response.text
        issued: dict[str, Any] = response.json()
        return issued

    def refresh(self, client: dict[str, Any], refresh_token: str) -> httpx.Response:
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client["client_id"]}
        if "client_secret" in client:
            data["client_secret"] = client["client_secret"]
        return self.token(data)

    def mcp(self, body: dict[str, Any], token: str | None = None, **headers: str) -> httpx.Response:
        all_headers = {"content-type": "application/json", "accept": "application/json, text/event-stream", **headers}
        if token is not None:
            all_headers["authorization"] = f"Bearer {token}"
        return self.http.post(self.server.url, json=body, headers=all_headers)
