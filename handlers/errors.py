"""Errors a person can act on: an HTTP status plus a JSON-RPC error body, never a stack trace."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from starlette.responses import Response

if TYPE_CHECKING:
    from collections.abc import Mapping

# JSON-RPC 2.0 codes (https://www.jsonrpc.org/specification#error_object).
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
# Server-defined range: the request was fine but the service cannot answer it now.
SERVICE_UNAVAILABLE = -32001


def jsonrpc_error(
    status: int,
    code: int,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    request_id: object = None,
    data: object = None,
) -> Response:
    error: dict[str, object] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    body = {"jsonrpc": "2.0", "id": request_id, "error": error}
    return Response(json.dumps(body), status_code=status, media_type="application/json", headers=headers)


def service_unavailable(retry_after_seconds: int = 1) -> Response:
    return jsonrpc_error(
        503,
        SERVICE_UNAVAILABLE,
        "A service this server depends on (its session store) is temporarily unavailable; retry after "
        f"{retry_after_seconds} s.",
        headers={"Retry-After": str(retry_after_seconds)},
    )
