"""AWS list prices the kit's cost figures use: one table, for the benchmark's per-call cost and the idle estimate.

us-east-1, on-demand list prices, in USD. Each constant names its pricing page; the per-call prices
were looked up on 2026-11-25, the monthly ones on 2026-11-29 (`PRICES_AS_OF` is the later date).

Per call:
- Lambda, arm64: $0.0000133334 per GB-second (first 7.5 billion GB-s a month) and $0.20 per
  million requests; duration is billed per 1 ms, rounded up (https://aws.amazon.com/lambda/pricing/).
- API Gateway HTTP API: $1.00 per million requests (first 300 million a month; a request is
  metered per 512 KB) (https://aws.amazon.com/api-gateway/pricing/).
- Lambda function URL (the `stream_responses` front): no charge of its own; its requests are
  Lambda requests and duration as above ("Function URLs are included in Lambda's request and
  duration pricing", https://aws.amazon.com/lambda/pricing/). A streamed response is free up to
  6 MB; the bytes beyond that are $0.008 per GB (the "Lambda HTTP response streaming" price of
  the same page; its free tier is 100 GiB a month). The MCP responses the kit streams are a few
  KB, so that price applies only to a tool that returns more than 6 MB.
- DynamoDB on-demand (since the 2024-11-01 price cut): $0.625 per million write request units,
  $0.125 per million read request units (https://aws.amazon.com/dynamodb/pricing/on-demand/).
- CloudWatch Logs: $0.50 per GB ingested, standard class (https://aws.amazon.com/cloudwatch/pricing/).

A month, whatever the traffic:
- Lambda SnapStart (Python, .NET): the snapshot cache costs $0.0000015046 per GB-second of the
  function's memory for every published version with SnapStart, for as long as the version
  exists (3 hours at least); each restore $0.0001397998 per GB (https://aws.amazon.com/lambda/pricing/).
  Lambda's 14-day clean-up of unused snapshots applies to Java only.
- KMS: $1 a month per customer managed key, asymmetric ones included; none while scheduled for
  deletion (https://aws.amazon.com/kms/pricing/).
- CloudWatch: $3.00 per dashboard a month, the first 3 dashboards (up to 50 metrics each) of an
  account free; $0.10 per standard-resolution alarm metric a month ($0.30 high resolution), the
  first 10 alarm metrics free; log storage $0.03 per GB-month, 5 GB of logs (ingestion and
  storage) free (https://aws.amazon.com/cloudwatch/pricing/).
- DynamoDB: storage $0.25 per GB-month, the first 25 GB free; point-in-time recovery $0.20 per
  GB-month of table size, no free tier (https://aws.amazon.com/dynamodb/pricing/on-demand/).
- Cognito user pools are priced per monthly active user (MAU), so an idle pool costs nothing.
  Essentials (the kit's default plan): the first 10,000 MAU of an account free, then $0.015 each;
  Plus: $0.02 per MAU, no free tier (https://aws.amazon.com/cognito/pricing/).
"""

from __future__ import annotations

from typing import Final

REGION: Final = "us-east-1"
PRICES_AS_OF: Final = "2026-11-29"
# AWS prices "a month" as 730 hours.
SECONDS_PER_MONTH: Final = 730 * 3600

LAMBDA_USD_PER_GB_SECOND_ARM64: Final = 0.0000133334
LAMBDA_USD_PER_REQUEST: Final = 0.20 / 1_000_000
HTTP_API_USD_PER_REQUEST: Final = 1.00 / 1_000_000
FUNCTION_URL_USD_PER_REQUEST: Final = 0.0
LAMBDA_STREAMED_USD_PER_GB: Final = 0.008
LAMBDA_STREAMED_FREE_BYTES_PER_RESPONSE: Final = 6 * 1024 * 1024
# AWS meters data in GB of 2^30 bytes.
BYTES_PER_GB: Final = 1024**3
DYNAMODB_USD_PER_WRU: Final = 0.625 / 1_000_000
DYNAMODB_USD_PER_RRU: Final = 0.125 / 1_000_000
CLOUDWATCH_LOGS_USD_PER_GB_INGESTED: Final = 0.50

SNAPSTART_CACHE_USD_PER_GB_SECOND: Final = 0.0000015046
SNAPSTART_RESTORE_USD_PER_GB: Final = 0.0001397998
KMS_KEY_USD_PER_MONTH: Final = 1.00
CLOUDWATCH_DASHBOARD_USD_PER_MONTH: Final = 3.00
CLOUDWATCH_FREE_DASHBOARDS: Final = 3
CLOUDWATCH_ALARM_METRIC_USD_PER_MONTH: Final = 0.10
CLOUDWATCH_HIGH_RESOLUTION_ALARM_METRIC_USD_PER_MONTH: Final = 0.30
CLOUDWATCH_FREE_ALARM_METRICS: Final = 10
CLOUDWATCH_LOGS_USD_PER_GB_MONTH_STORED: Final = 0.03
CLOUDWATCH_LOGS_FREE_GB: Final = 5
DYNAMODB_USD_PER_GB_MONTH: Final = 0.25
DYNAMODB_FREE_GB: Final = 25
DYNAMODB_PITR_USD_PER_GB_MONTH: Final = 0.20
COGNITO_ESSENTIALS_USD_PER_MAU: Final = 0.015
COGNITO_ESSENTIALS_FREE_MAU: Final = 10_000
COGNITO_PLUS_USD_PER_MAU: Final = 0.020

PRICE_PAGES: Final[dict[str, str]] = {
    "lambda": "https://aws.amazon.com/lambda/pricing/",
    "kms": "https://aws.amazon.com/kms/pricing/",
    "cloudwatch": "https://aws.amazon.com/cloudwatch/pricing/",
    "dynamodb": "https://aws.amazon.com/dynamodb/pricing/on-demand/",
    "cognito": "https://aws.amazon.com/cognito/pricing/",
    "api-gateway": "https://aws.amazon.com/api-gateway/pricing/",
}
