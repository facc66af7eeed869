"""The floor: what any Python Lambda behind API Gateway pays at least (boto3 imported, JSON out)."""

from __future__ import annotations

import json
from typing import Any

import boto3  # noqa: F401 - imported on purpose: most real handlers do, and it is most of this floor

RESULT = json.dumps({"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": "42.0"}]}})


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": RESULT}
