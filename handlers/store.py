"""The single DynamoDB table, and the one boto3 client per instance that talks to it.

boto3 is imported on first use, not at import time: a 2026-07-28 request never touches
DynamoDB and should not pay for boto3 on a cold start.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from botocore.client import BaseClient


class StoreUnavailableError(RuntimeError):
    """DynamoDB could not be reached or kept refusing after retries; the caller answers 503."""


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
                    import boto3
                    from botocore.config import Config

                    # Bounded, jittered retries: a throttled table must not hold an invocation until
                    # API Gateway's 29 s cut-off; better to answer 503 + Retry-After quickly.
                    config = Config(
                        retries={"mode": "standard", "max_attempts": 3},
                        connect_timeout=2,
                        read_timeout=3,
                        tcp_keepalive=True,
                    )
                    self._client = boto3.client("dynamodb", config=config)
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
