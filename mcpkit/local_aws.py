"""AWS on the laptop: an embedded moto server and the kit's table, shaped exactly as the stack makes it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import TracebackType

# Credentials and region for the emulator only; they never reach real AWS because every client
# the kit makes is pointed at the emulator's endpoint.
FAKE_AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "mcpkit-local",
    "AWS_SECRET_ACCESS_KEY": "mcpkit-local",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
EMULATED_SERVICES = ("dynamodb", "cognito_idp", "kms", "secretsmanager", "ssm", "s3")


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


def ensure_table(name: str, endpoint: str) -> None:
    """Create the kit's single table (pk/sk strings, TTL on `ttl`, on-demand) unless it exists."""
    import boto3

    env = endpoint_environment(endpoint)
    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
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
