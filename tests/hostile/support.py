"""Shared by tests/hostile and tests/faults: an OAuth `mcpkit dev` behind the fault proxy, and helpers.

Layout per test worker: moto (in this process) ← FaultProxy (in this process, no faults unless a
test asks) ← `mcpkit dev --auth oauth --instances 3` (a subprocess serving the vault test server).
The proxy sits in front of everything the dev server asks AWS, but only DynamoDB calls are ever
faulted; the tests talk to moto directly to inspect the table or forge tokens with the real key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from mcpkit.fault_proxy import FaultProxy
from mcpkit.local_aws import EmbeddedAws, endpoint_environment
from tests.auth.harness import Harness, dev_credentials
from tests.conftest import DevServer, start_dev_server, stop_dev_server

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mypy_boto3_dynamodb import DynamoDBClient

SERVERS_DIR = "tests/hostile/servers"
SERVER = "vault"
DEV_TABLE = "mcpkit-local"
KEY_ALIAS = f"alias/mcpkit-local-{SERVER}"
MCP_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
INSTANCES = 3


def from_address(address: str) -> httpx.Client:
    """A client whose connections come from another loopback address: its own rate-limit bucket."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=30, follow_redirects=False)


def start_oauth_dev(aws_endpoint: str, *, instances: int = INSTANCES, timeout: float = 90) -> DevServer:
    """`mcpkit dev --auth oauth` for the vault server against `aws_endpoint`, once it answers."""
    args = ["--servers-dir", SERVERS_DIR, "--server", SERVER, "--auth", "oauth"]
    args += ["--instances", str(instances), "--aws-endpoint", aws_endpoint]
    # INFO, so the log test sees what the kit's modules log during the flow.
    return start_dev_server(*args, timeout=timeout, ready_when="Dev sign-in:", env={"POWERTOOLS_LOG_LEVEL": "INFO"})


class VaultHarness(Harness):
    """The auth tests' harness, for the vault server (its own signing key alias)."""

    key_alias = KEY_ALIAS


@dataclass
class OAuthDev:
    emulator: EmbeddedAws
    proxy: FaultProxy
    harness: VaultHarness

    def table(self) -> DynamoDBClient:
        """A client straight to moto (never through the proxy) for looking at what was stored."""
        import boto3

        env = endpoint_environment(self.emulator.endpoint)
        client: DynamoDBClient = boto3.client(
            "dynamodb",
            endpoint_url=self.emulator.endpoint,
            region_name=env["AWS_DEFAULT_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )
        return client

    def items(self, prefix: str) -> list[dict[str, Any]]:
        pages = self.table().get_paginator("scan").paginate(TableName=DEV_TABLE)
        return [item for page in pages for item in page["Items"] if item["pk"]["S"].startswith(prefix)]


_shared: list[Any] = []  # [OAuthDev, ExitStack, users] while running


def open_oauth_dev() -> Iterator[OAuthDev]:
    """The worker's one OAuth dev server, shared by tests/hostile and tests/faults (each has a fixture)."""
    import contextlib

    if not _shared:
        stack = contextlib.ExitStack()
        emulator = stack.enter_context(EmbeddedAws())
        proxy = stack.enter_context(FaultProxy(emulator.endpoint, seed=6))
        server = start_oauth_dev(proxy.endpoint)
        stack.callback(stop_dev_server, server)
        username, password = dev_credentials(server.output())
        harness = VaultHarness(server, emulator.endpoint, username, password)
        stack.callback(harness.http.close)
        _shared[:] = [OAuthDev(emulator, proxy, harness), stack, 0]
    _shared[2] += 1
    try:
        yield _shared[0]
    finally:
        _shared[2] -= 1
        if _shared[2] == 0:
            _shared[1].close()
            _shared.clear()


def initialize_params(version: str = "2025-06-18") -> dict[str, Any]:
    return {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "hostile", "version": "1"}}
