"""The single DynamoDB table, and the one AWS client per instance that talks to it.

botocore is imported on first use, not at import time: a 2026-07-28 request never touches
DynamoDB and should not pay for it on a cold start.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

    from botocore.client import BaseClient
    from botocore.config import Config


def aws_client(service: str, config: Config) -> Any:
    """A low-level client for `service`, configured from the environment exactly as `boto3.client` would be.

    botocore's session rather than boto3's: `import boto3` also imports s3transfer, ~90 ms of the
    first session request on a fresh instance (bench/README.md), and the kit only needs low-level
    clients. A new session per client, so a client rebuilt after a SnapStart restore resolves
    credentials afresh instead of reusing those cached in the snapshot; but one data loader for
    all of them, which keeps what it has parsed: without it every client re-lists botocore's ~400
    service directories and re-parses the shared JSON, 60 to 100 ms a client here.
    """
    from botocore.session import get_session

    session = get_session()
    loader = _DATA_LOADER.setdefault("botocore", session.get_component("data_loader"))
    session.register_component("data_loader", loader)
    return session.create_client(service, config=config)


_DATA_LOADER: dict[str, Any] = {}  # the instance's one botocore data loader, once a client has made it


class StoreUnavailableError(RuntimeError):
    """An AWS dependency (DynamoDB; KMS and Cognito for OAuth) could not be reached or kept refusing
    after the client's bounded retries; the caller answers 503 + Retry-After."""


@contextlib.contextmanager
def aws_dependency(service: str, operation: str) -> Iterator[None]:
    """Turn any botocore failure of a call to `service` (after its retries) into `StoreUnavailableError`.

    For KMS and Cognito, whose errors would otherwise surface as a 500 with a stack trace.
    Only the service, operation and AWS error code are logged: never parameters or messages,
    which may quote what was sent.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "Unknown")
        logging.getLogger("handlers").error("%s %s failed: %s", service, operation, code)
        raise StoreUnavailableError(f"{service} {operation} failed: {code}") from exc
    except BotoCoreError as exc:
        logging.getLogger("handlers").error("%s %s failed: %s", service, operation, type(exc).__name__)
        raise StoreUnavailableError(f"{service} {operation} failed: {type(exc).__name__}") from exc


class ConditionFailedError(Exception):
    """A conditional write's condition did not hold (the item is missing, expired or already there)."""


class Table:
    """Names the table and lazily owns the client; `reset()` drops the client (SnapStart restore)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._client: BaseClient | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> BaseClient:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    from botocore.config import Config

                    # Bounded, jittered retries: a throttled table must not hold an invocation until
                    # API Gateway's 29 s cut-off; better to answer 503 + Retry-After quickly.
                    # botocore's "standard" mode retries throttling errors, 5xx and timeouts: 3 attempts in
                    # all (`total_max_attempts`; the older `max_attempts` key counts retries, so 3 of those
                    # made 4 attempts, up to 12 s of read timeouts, as the fault proxy showed). Before retry
                    # i it sleeps rand(0, 1) * min(scale * 2**i, 20 s) (full jitter; scale 1 s after
                    # throttling, 25 ms after other DynamoDB errors in botocore 1.44), and stops retrying
                    # once its per-client retry quota is spent. Checked in tests/faults/test_retries.py.
                    config = Config(
                        retries={"mode": "standard", "total_max_attempts": 3},
                        connect_timeout=2,
                        read_timeout=3,
                        tcp_keepalive=True,
                    )
                    self._client = aws_client("dynamodb", config)
        return self._client

    def reset(self) -> None:
        self._client = None

    def call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        """Run one DynamoDB operation on the table.

        Raises `ConditionFailedError` when a condition expression did not hold and
        `StoreUnavailableError` for everything else (throttling past retries, timeouts, 5xx).
        """
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            result: dict[str, Any] = getattr(self.client, operation)(TableName=self.name, **kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "Unknown")
            if code == "ConditionalCheckFailedException":
                raise ConditionFailedError(operation) from exc
            raise StoreUnavailableError(f"DynamoDB {operation} failed: {code}") from exc
        except BotoCoreError as exc:
            raise StoreUnavailableError(f"DynamoDB {operation} failed: {type(exc).__name__}") from exc
        return result

    def create(self, item: dict[str, Any]) -> None:
        """Put a new item (`attribute_not_exists(pk)`), tolerating the client's own retry.

        When a first attempt is applied but its response is lost (a read timeout, a 5xx from the
        front end), botocore retries and the retry fails the condition on the item it wrote
        itself. Keys here are random, so an item that is already there and equal to ours is ours:
        success. Anything else there raises `ConditionFailedError`.
        """
        try:
            self.call("put_item", Item=item, ConditionExpression="attribute_not_exists(pk)")
        except ConditionFailedError:
            key = {"pk": item["pk"], "sk": item["sk"]}
            stored = self.call("get_item", Key=key, ConsistentRead=True).get("Item")
            if stored != item:
                raise

    def transact(self, items: list[dict[str, Any]]) -> None:
        """All of `items` (TransactWriteItems entries, without TableName) or none of them.

        Raises `ConditionFailedError` when any item's condition did not hold.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        for item in items:
            for action in item.values():
                action["TableName"] = self.name
        try:
            client: Any = self.client  # typed as BaseClient; the operation exists on the DynamoDB client
            client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if error.get("Code") == "TransactionCanceledException" and "ConditionalCheckFailed" in reasons:
                raise ConditionFailedError("transact_write_items") from exc
            raise StoreUnavailableError(
                f"DynamoDB transact_write_items failed: {error.get('Code', 'Unknown')}"
            ) from exc
        except BotoCoreError as exc:
            raise StoreUnavailableError(f"DynamoDB transact_write_items failed: {type(exc).__name__}") from exc
