"""Fixed-window rate limits kept in the single table, for the OAuth endpoints anyone can call.

`/oauth/register`, `/oauth/authorize` and `/oauth/token` need no prior credential, so a scanner
can hammer them; every registration writes a `CLIENT#` item, every authorization request a `TXN#`
item, and an unknown client ID metadata document costs an outbound fetch. Each check is one
UpdateItem that adds 1 to the counter of the current window (`RATE#<scope>#<key>` /
`<window start>`) and returns the new count, so any Lambda instance sees the same count and nothing
lives in memory. The item expires (TTL) when its window is over.

A retried UpdateItem whose first attempt was applied counts twice: the limit errs on the strict side.
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from handlers.settings import EnvSettings

if TYPE_CHECKING:
    from handlers.store import Table


class RateLimitSettings(EnvSettings):
    """`MCPKIT_RATE_LIMIT_*`; a limit of 0 turns that check off.

    Per-IP limits are generous on purpose: hosted clients (Claude's connectors, for one) register
    and fetch tokens for all their users from a few shared egress addresses.
    """

    env_prefix = "MCPKIT_RATE_LIMIT_"

    window_seconds: Annotated[int, Field(ge=1, le=3600)] = 60
    register_per_ip: Annotated[int, Field(ge=0)] = 60
    token_per_ip: Annotated[int, Field(ge=0)] = 600
    token_per_client: Annotated[int, Field(ge=0)] = 120
    # A person's browser asks a few times per sign-in; this leaves room for a whole office behind one NAT.
    authorize_per_ip: Annotated[int, Field(ge=0)] = 120
    # Fetches of metadata documents not in the table (a known document costs no fetch for its max-age).
    cimd_fetch_per_ip: Annotated[int, Field(ge=0)] = 20
    # Per document host, whoever asks: bounds what many addresses together can make the server fetch
    # from one (slow) host. ChatGPT has one document per connector on one host, hence not lower.
    cimd_fetch_per_host: Annotated[int, Field(ge=0)] = 60


class RateLimitedError(Exception):
    """The caller went over a limit; `retry_after` is the number of seconds until the window ends."""

    def __init__(self, scope: str, retry_after: int) -> None:
        super().__init__(f"rate limit {scope} exceeded")
        self.scope = scope
        self.retry_after = retry_after


def _bucket_key(value: str) -> str:
    # Client ids can be 2000-character metadata URLs; DynamoDB keys must stay small.
    return value if len(value) <= 128 else hashlib.sha256(value.encode()).hexdigest()


class RateLimiter:
    def __init__(self, table: Table, settings: RateLimitSettings) -> None:
        self._table = table
        self.settings = settings

    def hit(self, scope: str, key: str, limit: int) -> None:
        """Count one request of `key` against `scope`; RateLimitedError once the window's count passes `limit`."""
        if limit <= 0:
            return
        window = self.settings.window_seconds
        now = time.time()
        start = int(now // window) * window
        result = self._table.call(
            "update_item",
            Key={"pk": {"S": f"RATE#{scope}#{_bucket_key(key)}"}, "sk": {"S": str(start)}},
            UpdateExpression="ADD #count :one SET #ttl = if_not_exists(#ttl, :end)",
            ExpressionAttributeNames={"#count": "count", "#ttl": "ttl"},
            ExpressionAttributeValues={":one": {"N": "1"}, ":end": {"N": str(start + window)}},
            ReturnValues="UPDATED_NEW",
        )
        if int(result["Attributes"]["count"]["N"]) > limit:
            raise RateLimitedError(scope, max(1, math.ceil(start + window - now)))
