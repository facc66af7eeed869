"""What one million `tools/call` requests cost on AWS, from measured warm durations and unit prices.

The unit prices (us-east-1 list prices, their sources and date) are `stacks/prices.py`, the kit's
one price table, which the stacks' idle estimate uses too. Here they are applied per request:
- Lambda duration per 1 ms, rounded up, at `MEMORY_GB`, plus Lambda's request price and the front's:
  the HTTP API's per request, or nothing for a function URL (`stream_responses`), whose only price of
  its own is for a streamed response's bytes beyond the first 6 MB;
- DynamoDB request units: a write of an item up to 1 KB is 1 WRU (also when its condition fails);
  an eventually consistent read of up to 4 KB is 0.5 RRU, a strongly consistent one 1 RRU;
- CloudWatch Logs ingestion of what each handler itself writes per request (its request log lines
  and EMF metrics); Lambda's own START/END/REPORT lines are the same for every subject and left out.
Free tiers, data transfer and log storage are left out: they depend on traffic shape and
retention rather than on the handler.

The measured durations come from this machine, not from a 512 MB Graviton function (which gets
about a third of a vCPU), so absolute dollars are indicative; the ratios between subjects are
the point, as for every other figure in the benchmark.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Final, Literal

from stacks.prices import (
    BYTES_PER_GB,
    CLOUDWATCH_LOGS_USD_PER_GB_INGESTED,
    DYNAMODB_USD_PER_RRU,
    DYNAMODB_USD_PER_WRU,
    FUNCTION_URL_USD_PER_REQUEST,
    HTTP_API_USD_PER_REQUEST,
    LAMBDA_STREAMED_FREE_BYTES_PER_RESPONSE,
    LAMBDA_STREAMED_USD_PER_GB,
    LAMBDA_USD_PER_GB_SECOND_ARM64,
    LAMBDA_USD_PER_REQUEST,
    PRICES_AS_OF,
    REGION,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "DYNAMODB_USD_PER_RRU",
    "DYNAMODB_USD_PER_WRU",
    "FRONT_USD_PER_REQUEST",
    "FUNCTION_URL_USD_PER_REQUEST",
    "HTTP_API_USD_PER_REQUEST",
    "LAMBDA_STREAMED_USD_PER_GB",
    "LAMBDA_USD_PER_GB_SECOND_ARM64",
    "LAMBDA_USD_PER_REQUEST",
    "PRICES_AS_OF",
    "REGION",
    "billed_ms",
    "streamed_usd",
    "usd_per_million",
]

MEMORY_GB: Final = 512 / 1024
Front = Literal["http-api", "function-url"]
# What the front in front of the function charges per request (the HTTP API, or a function URL: nothing).
FRONT_USD_PER_REQUEST: Final[dict[Front, float]] = {
    "http-api": HTTP_API_USD_PER_REQUEST,
    "function-url": FUNCTION_URL_USD_PER_REQUEST,
}
CLOUDWATCH_LOGS_USD_PER_BYTE: Final = CLOUDWATCH_LOGS_USD_PER_GB_INGESTED / 1e9

# Request units per call, for items under 1 KB (writes) / 4 KB (reads), as the session items are.
WRITE_OPERATIONS: Final = frozenset({"PutItem", "UpdateItem", "DeleteItem"})
EVENTUALLY_CONSISTENT_READS: Final = frozenset({"GetItem", "Query"})
# The probe names a read with `ConsistentRead` "<operation>/consistent": 1 RRU instead of 0.5.
STRONGLY_CONSISTENT_READS: Final = frozenset({"GetItem/consistent", "Query/consistent"})


def billed_ms(durations_us: Iterable[float]) -> float:
    """Mean billed duration: each invocation rounded up to the next whole millisecond."""
    values = [max(1, math.ceil(us / 1000)) for us in durations_us]
    return sum(values) / len(values)


def streamed_usd(response_bytes: float) -> float:
    """A function URL's price for one streamed response: its bytes beyond the first 6 MB."""
    beyond = max(0.0, response_bytes - LAMBDA_STREAMED_FREE_BYTES_PER_RESPONSE)
    return beyond / BYTES_PER_GB * LAMBDA_STREAMED_USD_PER_GB


def usd_per_million(
    durations_us: list[float],
    dynamodb_operations_per_request: dict[str, float],
    log_bytes_per_request: float = 0.0,
    *,
    front: Front = "http-api",
    response_bytes: float = 0.0,
) -> float:
    """USD per million requests; `response_bytes` (each response's size) matters only for a function URL."""
    lambda_compute = billed_ms(durations_us) / 1000 * MEMORY_GB * LAMBDA_USD_PER_GB_SECOND_ARM64
    dynamodb = 0.0
    for operation, per_request in dynamodb_operations_per_request.items():
        if operation in WRITE_OPERATIONS:
            dynamodb += per_request * DYNAMODB_USD_PER_WRU
        elif operation in EVENTUALLY_CONSISTENT_READS:
            dynamodb += per_request * 0.5 * DYNAMODB_USD_PER_RRU
        elif operation in STRONGLY_CONSISTENT_READS:
            dynamodb += per_request * DYNAMODB_USD_PER_RRU
        else:
            raise ValueError(f"no price for DynamoDB {operation}; add it to stacks/prices.py and bench/costs.py")
    logs = log_bytes_per_request * CLOUDWATCH_LOGS_USD_PER_BYTE
    front_usd = FRONT_USD_PER_REQUEST[front] + (streamed_usd(response_bytes) if front == "function-url" else 0.0)
    per_request = lambda_compute + LAMBDA_USD_PER_REQUEST + front_usd + dynamodb + logs
    return per_request * 1_000_000
