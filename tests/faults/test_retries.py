"""DynamoDB in trouble, seen through the Lambda handler: a fault proxy between the kit's real boto3 client and moto.

Shows the kit's retry policy as it really runs (botocore standard mode: 3 attempts, full-jitter
backoff), the 503 + Retry-After + JSON-RPC error after the last attempt, and that a write whose
response was lost neither fails nor leaves a half-made session.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from handlers.settings import Settings
from mcpkit.fault_proxy import Fault, FaultProxy
from mcpkit.local_gateway import LambdaContext
from mcpkit.messages import rpc
from tests.conftest import TEST_TABLE, load_event
from tests.hostile.support import MCP_HEADERS, initialize_params

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mcpkit.local_aws import EmbeddedAws

VERSION = "2025-06-18"
ERROR_FAULTS = [Fault.THROTTLE, Fault.THROTTLING, Fault.INTERNAL, Fault.UNAVAILABLE]


@dataclass
class Faulty:
    """A second Lambda instance of the example server whose DynamoDB endpoint is the fault proxy."""

    proxy: FaultProxy
    app: Any
    aws: EmbeddedAws

    def post(self, message: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
        event = copy.deepcopy(load_event("http_api_post_mcp"))
        event["headers"].update({**MCP_HEADERS, **(headers or {})})
        event["body"] = json.dumps(message)
        result: dict[str, Any] = self.app(event, LambdaContext())
        return result

    def sessions(self) -> list[dict[str, Any]]:
        import boto3

        client = boto3.client("dynamodb", endpoint_url=self.aws.endpoint)
        items = client.scan(TableName=TEST_TABLE)["Items"]
        return [i for i in items if i["pk"]["S"].startswith("SESSION#")]

    def operations(self) -> list[str]:
        return [seen.operation for seen in self.proxy.seen]


@pytest.fixture(scope="module")
def faulty(aws: EmbeddedAws, lambda_module: Any) -> Iterator[Faulty]:
    with FaultProxy(aws.endpoint, seed=11) as proxy:
        saved = os.environ["AWS_ENDPOINT_URL_DYNAMODB"]
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = proxy.endpoint
        try:
            # No trust window: every use of a session reads it, so every use meets the scripted faults.
            app = lambda_module.LambdaApp(Settings(session_cache_seconds=0))
            _ = app.runtime.table.client  # made now, against the proxy, with the kit's own retry config
        finally:
            os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = saved
        yield Faulty(proxy, app, aws)


@pytest.fixture
def sleeps(faulty: Faulty, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """The backoff delays botocore's retry handler decides (recorded instead of slept: no waiting in tests).

    botocore's endpoint sleeps what the `needs-retry` handler returns; only that module's `time` is replaced.
    """
    import types

    import botocore.endpoint

    recorded: list[float] = []
    monkeypatch.setattr(botocore.endpoint, "time", types.SimpleNamespace(sleep=recorded.append))
    faulty.proxy.reset()
    yield recorded
    faulty.proxy.reset()


def initialize(faulty: Faulty) -> dict[str, Any]:
    return faulty.post(rpc("initialize", initialize_params(VERSION)))


@pytest.mark.parametrize("fault", ERROR_FAULTS)
def test_transient_fault_is_retried_and_the_request_succeeds(faulty: Faulty, sleeps: list[float], fault: Fault) -> None:
    # GIVEN DynamoDB fails the first two attempts of the session write
    faulty.proxy.script([fault, fault])

    # WHEN a client initializes
    response = initialize(faulty)

    # THEN the third attempt succeeds and the session works
    assert response["statusCode"] == 200, response
    assert faulty.operations()[:3] == ["PutItem"] * 3
    assert len(sleeps) == 2
    session = response["headers"]["mcp-session-id"]
    ping = faulty.post(rpc("ping"), {"mcp-session-id": session, "mcp-protocol-version": VERSION})
    assert ping["statusCode"] == 200


@pytest.mark.parametrize("fault", ERROR_FAULTS)
def test_persistent_fault_gives_503_retry_after_and_no_session(
    faulty: Faulty, sleeps: list[float], fault: Fault
) -> None:
    # GIVEN DynamoDB fails every attempt
    before = faulty.sessions()
    faulty.proxy.script([fault] * 3)

    # WHEN a client initializes
    response = initialize(faulty)

    # THEN exactly 3 attempts were made, then 503 + Retry-After + a JSON-RPC error, and nothing was stored
    assert faulty.operations() == ["PutItem"] * 3
    assert response["statusCode"] == 503
    assert int(response["headers"]["retry-after"]) >= 1
    body = json.loads(response["body"])
    assert body["jsonrpc"] == "2.0"
    assert body["error"]["code"] == -32001
    assert "mcp-session-id" not in response["headers"]
    assert faulty.sessions() == before


def test_backoff_is_full_jitter_and_bounded(faulty: Faulty, sleeps: list[float]) -> None:
    # GIVEN ten initializes that are throttled twice and ten that get two 500s
    for fault in (Fault.THROTTLE, Fault.INTERNAL):
        for _ in range(10):
            faulty.proxy.script([fault, fault])
            assert initialize(faulty)["statusCode"] == 200

    # THEN each delay is rand(0, 1) * scale * 2**i: 1 s scale after throttling, 25 ms after a 500
    throttled, failed = sleeps[:20], sleeps[20:]
    assert all(0 <= d <= 1 for d in throttled[0::2])
    assert all(0 <= d <= 2 for d in throttled[1::2])
    assert all(0 <= d <= 0.025 for d in failed[0::2])
    assert all(0 <= d <= 0.05 for d in failed[1::2])
    # and the delays are random (jitter), not one fixed schedule every client would follow in lockstep
    # (exact values: rounded to µs, two of the twenty 0-50 ms delays collide in about one run of 200)
    assert len(set(sleeps)) == len(sleeps)


def test_lost_response_to_the_session_write_still_opens_one_session(faulty: Faulty, sleeps: list[float]) -> None:
    # GIVEN the session write is applied but its response never arrives (the client times out and retries)
    before = {i["pk"]["S"] for i in faulty.sessions()}
    faulty.proxy.script([Fault.TIMEOUT])

    # WHEN a client initializes
    response = initialize(faulty)

    # THEN the retry's failed condition is recognized as our own write: 200, and exactly one new, whole session
    assert response["statusCode"] == 200, response
    assert faulty.operations() == ["PutItem", "PutItem", "GetItem"]
    created = [i for i in faulty.sessions() if i["pk"]["S"] not in before]
    assert [i["pk"]["S"] for i in created] == [f"SESSION#{response['headers']['mcp-session-id']}"]
    assert set(created[0]) == {"pk", "sk", "protocolVersion", "createdAt", "ttl"}
    ping = faulty.post(rpc("ping"), {"mcp-session-id": response["headers"]["mcp-session-id"]})
    assert ping["statusCode"] == 200


def test_session_check_under_persistent_throttling_is_503_and_the_session_survives(
    faulty: Faulty, sleeps: list[float]
) -> None:
    # GIVEN a live session, then a table that throttles every attempt of the next check
    session = initialize(faulty)["headers"]["mcp-session-id"]
    headers = {"mcp-session-id": session, "mcp-protocol-version": VERSION}
    faulty.proxy.script([Fault.THROTTLE] * 3)

    # WHEN the client calls a tool, and again once the table recovers
    refused = faulty.post(rpc("tools/list"), headers)
    served = faulty.post(rpc("tools/list"), headers)

    # THEN the first is a 503 with Retry-After, the second is served: the session was not harmed
    assert refused["statusCode"] == 503
    assert "retry-after" in refused["headers"]
    assert served["statusCode"] == 200
