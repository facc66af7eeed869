"""What one million `tools/call` requests cost on AWS, from measured warm durations and unit prices.

The unit prices (us-east-1 list prices, their sources and date) are `stacks/prices.py`, the kit's
one price table, which the stacks' idle estimate uses too. Here they are applied per request:
- Lambda duration per 1 ms, rounded up, at `MEMORY_GB`, plus Lambda's and the HTTP API's request prices;
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
from typing import TYPE_CHECKING, Final

from stacks.prices import (
    CLOUDWATCH_LOGS_USD_PER_GB_INGESTED,
    DYNAMODB_USD_PER_RRU,
    DYNAMODB_USD_PER_WRU,
    HTTP_API_USD_PER_REQUEST,
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
    "HTTP_API_USD_PER_REQUEST",
    "LAMBDA_USD_PER_GB_SECOND_ARM64",
    "LAMBDA_USD_PER_REQUEST",
    "PRICES_AS_OF",
    "REGION",
    "billed_ms",
    "usd_per_million",
]

MEMORY_GB: Final = 512 / 1024
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


def usd_per_million(
    durations_us: list[float], dynamodb_operations_per_request: dict[str, float], log_bytes_per_request: float = 0.0
) -> float:
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
    per_request = lambda_compute + LAMBDA_USD_PER_REQUEST + HTTP_API_USD_PER_REQUEST + dynamodb + logs
    return per_request * 1_000_000
