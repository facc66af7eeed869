"""AWS on the laptop: an embedded moto server and the kit's table, shaped exactly as the stack makes it."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import TracebackType

    from mypy_boto3_dynamodb import DynamoDBClient

# Credentials and region for the emulator only; they never reach real AWS because every client
# the kit makes is pointed at the emulator's endpoint.
FAKE_AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "mcpkit-local",
    "AWS_SECRET_ACCESS_KEY": "mcpkit-local",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
# botocore reads `AWS_ENDPOINT_URL_<service id>`: the service *id* ("Cognito Identity Provider"), not the
# client name ("cognito-idp"), upper-cased with underscores.
EMULATED_SERVICES = ("dynamodb", "cognito_identity_provider", "kms", "secrets_manager", "ssm", "s3")


def endpoint_environment(endpoint: str) -> dict[str, str]:
    """Service-specific endpoint variables that botocore honours, so no code of ours needs an endpoint setting."""
    env = {f"AWS_ENDPOINT_URL_{service.upper()}": endpoint for service in EMULATED_SERVICES}
    return {**FAKE_AWS_ENVIRONMENT, **env}


class EmbeddedAws:
    """moto's server in a thread of this process, on a free loopback port."""

    def __init__(self, port: int = 0) -> None:
        from moto.server import ThreadedMotoServer

        # moto's request log would drown the dev server's own output.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self.endpoint = ""

    def __enter__(self) -> EmbeddedAws:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.stop()


def emulator_dynamodb(endpoint: str) -> DynamoDBClient:
    """A DynamoDB client for the emulator at `endpoint`, whatever this process's environment says."""
    import boto3

    env = endpoint_environment(endpoint)
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def ensure_table(name: str, endpoint: str) -> None:
    """Create the kit's single table (pk/sk strings, TTL on `ttl`, on-demand) unless it exists."""
    client = emulator_dynamodb(endpoint)
    if name in client.list_tables()["TableNames"]:
        return
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"})


@dataclass(frozen=True)
class LocalOAuth:
    """The sign-in side of `auth = "oauth"` in the emulator, and the dev user who can sign in."""

    user_pool_id: str
    client_id: str
    kms_key_id: str
    username: str
    password: str

    def environment(self) -> dict[str, str]:
        return {
            "MCPKIT_KMS_KEY_ID": self.kms_key_id,
            "MCPKIT_COGNITO_USER_POOL_ID": self.user_pool_id,
            "MCPKIT_COGNITO_CLIENT_ID": self.client_id,
            # moto serves no managed-login pages; the dev sign-in form replaces them.
            "MCPKIT_COGNITO_DOMAIN": "",
            "MCPKIT_DEV_LOGIN": "1",
        }


DEV_USERNAME = "dev@example.com"


def ensure_oauth(
    endpoint: str, name: str, callback_url: str, required_group: str | None = None, password: str | None = None
) -> LocalOAuth:
    """User pool, confidential app client, dev user and RSA signing key, shaped like stacks/constructs/oauth.py.

    Found again by name when they exist (several `mcpkit dev` sharing one emulator, or a restart with
    the kept dev state, find them); the dev user's password is `password` (kept with the dev state),
    or a fresh random one.
    """
    import secrets

    import boto3

    env = endpoint_environment(endpoint)
    session = boto3.session.Session(
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    idp = session.client("cognito-idp", endpoint_url=endpoint)
    kms = session.client("kms", endpoint_url=endpoint)
    pool_name = f"mcpkit-local-{name}"

    pool_id = next((p["Id"] for p in idp.list_user_pools(MaxResults=60)["UserPools"] if p["Name"] == pool_name), None)
    if pool_id is None:
        pool_id = idp.create_user_pool(
            PoolName=pool_name, UsernameAttributes=["email"], AutoVerifiedAttributes=["email"]
        )["UserPool"]["Id"]
    clients = idp.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60)["UserPoolClients"]
    client_id = next((c["ClientId"] for c in clients if c["ClientName"] == "mcpkit"), None)
    if client_id is None:
        client_id = idp.create_user_pool_client(
            UserPoolId=pool_id,
            ClientName="mcpkit",
            GenerateSecret=True,
            AllowedOAuthFlows=["code"],
            AllowedOAuthFlowsUserPoolClient=True,
            AllowedOAuthScopes=["openid", "email"],
            CallbackURLs=[callback_url],
            SupportedIdentityProviders=["COGNITO"],
            # The dev sign-in form checks passwords with AdminInitiateAuth; the deployed client has no such flow.
            ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        )["UserPoolClient"]["ClientId"]

    password = password or f"{secrets.token_urlsafe(12)}-Aa1"
    try:
        idp.admin_get_user(UserPoolId=pool_id, Username=DEV_USERNAME)
    except idp.exceptions.UserNotFoundException:
        idp.admin_create_user(
            UserPoolId=pool_id,
            Username=DEV_USERNAME,
            UserAttributes=[{"Name": "email", "Value": DEV_USERNAME}, {"Name": "email_verified", "Value": "true"}],
            MessageAction="SUPPRESS",
        )
    idp.admin_set_user_password(UserPoolId=pool_id, Username=DEV_USERNAME, Password=password, Permanent=True)
    if required_group is not None:
        # The server admits only this group's members; the dev user is one, so `make dev` signs in.
        with contextlib.suppress(idp.exceptions.GroupExistsException):
            idp.create_group(UserPoolId=pool_id, GroupName=required_group)
        idp.admin_add_user_to_group(UserPoolId=pool_id, Username=DEV_USERNAME, GroupName=required_group)

    alias = f"alias/{pool_name}"
    try:
        key_id = kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"]
    except kms.exceptions.NotFoundException:
        key_id = kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec="RSA_2048")["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    return LocalOAuth(pool_id, client_id, key_id, DEV_USERNAME, password)
