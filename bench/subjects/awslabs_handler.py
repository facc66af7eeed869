"""`awslabs-mcp-lambda-handler`, written as its README shows, with the same two tools.

`MCPBENCH_AWSLABS_TABLE` switches on its DynamoDB session store (a GetItem per request with a
session id); unset, it runs with its default no-op store, which keeps no session at all.
"""

from __future__ import annotations

import os
from typing import Any

from awslabs.mcp_lambda_handler import MCPLambdaHandler  # type: ignore[import-not-found]

_table = os.environ.get("MCPBENCH_AWSLABS_TABLE")
mcp = MCPLambdaHandler(name="bench-awslabs", version="1.0.0", session_store=_table or None)


@mcp.tool()  # type: ignore[untyped-decorator]
def add(a: float, b: float) -> float:
    """Add two numbers and return the sum."""
    return a + b


@mcp.tool()  # type: ignore[untyped-decorator]
def echo(text: str, repeat: int = 1) -> str:
    """Return `text`, repeated `repeat` times, separated by spaces."""
    return " ".join([text] * repeat)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    response: dict[str, Any] = mcp.handle_request(event, context)
    return response
