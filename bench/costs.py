"""What one million `tools/call` requests cost on AWS, from measured warm durations and unit prices.

Prices: us-east-1, on-demand list prices, looked up on 2026-11-25:
- Lambda, arm64: $0.0000133334 per GB-second (first 7.5 billion GB-s a month) and $0.20 per
  million requests; duration is billed per 1 ms, rounded up (https://aws.amazon.com/lambda/pricing/).
- API Gateway HTTP API: $1.00 per million requests (first 300 million a month; a request is
  metered per 512 KB) (https://aws.amazon.com/api-gateway/pricing/).
- DynamoDB on-demand (since the 2024-11-01 price cut): $0.625 per million write request units,
  $0.125 per million read request units (https://aws.amazon.com/dynamodb/pricing/on-demand/).
  A write of an item up to 1 KB is 1 WRU — also when its condition fails; an eventually
  consistent read of up to 4 KB is 0.5 RRU, a strongly consistent one 1 RRU.
- CloudWatch Logs: $0.50 per GB ingested (standard log class) (https://aws.amazon.com/cloudwatch/pricing/),
  applied to what each handler itself writes per request (its request log lines and EMF metrics);
  Lambda's own START/END/REPORT lines are the same for every subject and left out.
Free tiers, data transfer and log storage are left out: they depend on traffic shape and
retention rather than on the handler.

The measured durations come from this machine, not from a 512 MB Graviton function (which gets
about a third of a vCPU), so absolute dollars are indicative; the ratios between subjects are
the point, as for every other figure in the benchmark.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterable

REGION: Final = "us-east-1"
PRICES_AS_OF: Final = "2026-11-25"
MEMORY_GB: Final = 512 / 1024
LAMBDA_USD_PER_GB_SECOND_ARM64: Final = 0.0000133334
LAMBDA_USD_PER_REQUEST: Final = 0.20 / 1_000_000
HTTP_API_USD_PER_REQUEST: Final = 1.00 / 1_000_000
DYNAMODB_USD_PER_WRU: Final = 0.625 / 1_000_000
DYNAMODB_USD_PER_RRU: Final = 0.125 / 1_000_000
CLOUDWATCH_LOGS_USD_PER_BYTE: Final = 0.50 / 1e9

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
            raise ValueError(f"no price for DynamoDB {operation}; add it to bench/costs.py")
    logs = log_bytes_per_request * CLOUDWATCH_LOGS_USD_PER_BYTE
    per_request = lambda_compute + LAMBDA_USD_PER_REQUEST + HTTP_API_USD_PER_REQUEST + dynamodb + logs
    return per_request * 1_000_000
