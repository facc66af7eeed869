"""{{ title }}: an external REST API behind MCP tools.

The tools call `API_BASE_URL` with httpx, sending the API key as a bearer token. The key is
read once per Lambda instance from Secrets Manager (`API_KEY_SECRET_NAME`) or SSM Parameter
Store (`API_KEY_SSM_PARAMETER`), the names `[secrets.API_KEY]` in mcpkit.toml produces. Every
request has a timeout, idempotent requests are retried a bounded number of times within a
budget that ends before API Gateway's 29 s, and upstream failures become tool errors that say
what went wrong and what to do.

Replace `get_item`/`search_items` with your API's endpoints; keep `call_api` for the plumbing.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from functools import cache
from pathlib import Path
from typing import Annotated, Any

import httpx
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

mcp = MCPServer(
    Path(__file__).resolve().parent.name,
    version="0.1.0",
    instructions="Look up and search items in the upstream API.",
)

RETRYABLE_STATUS = frozenset({429, 502, 503, 504})
# All attempts together must finish before the function's own timeout (28 s at most).
TOTAL_BUDGET_SECONDS = 20.0
MAX_BACKOFF_SECONDS = 2.0
MAX_ERROR_DETAIL = 300


def _setting(name: str, default: str) -> str:
    return os.environ.get(name, default)


@cache
def _read_secret(source: str, name: str) -> str:
    import boto3  # the Lambda runtime ships boto3; import it only when the key is first needed

    if source == "ssm":
        value = boto3.client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    else:
        value = boto3.client("secretsmanager").get_secret_value(SecretId=name)["SecretString"]
    # A Secrets Manager secret is often JSON; accept {"api_key": "..."} as well as the bare key.
    try:
        parsed = json.loads(value)
    except ValueError:
        return value
    return str(parsed["api_key"]) if isinstance(parsed, dict) and "api_key" in parsed else value


def api_key() -> str:
    secret, parameter = os.environ.get("API_KEY_SECRET_NAME"), os.environ.get("API_KEY_SSM_PARAMETER")
    if not secret and not parameter:
        raise ToolError("The API key is not configured: add [secrets.API_KEY] to mcpkit.toml and deploy again.")
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return _read_secret("ssm", parameter) if parameter else _read_secret("secretsmanager", secret or "")
    except (ClientError, BotoCoreError) as exc:
        where = f"SSM parameter {parameter}" if parameter else f"secret {secret}"
        raise ToolError(f"Cannot read the API key from {where}: {exc}") from exc


def _detail(response: httpx.Response) -> str:
    try:
        body: Any = response.json()
    except ValueError:
        return response.text[:MAX_ERROR_DETAIL]
    if isinstance(body, dict):
        for key in ("message", "error_description", "error", "detail"):
            if isinstance(body.get(key), str):
                return str(body[key])[:MAX_ERROR_DETAIL]
    return json.dumps(body)[:MAX_ERROR_DETAIL]


def _retry_delay(response: httpx.Response | None, attempt: int) -> float:
    delay: float = 0.2 * 2 ** (attempt - 1)
    if response is not None and (retry_after := response.headers.get("retry-after", "")).isdigit():
        delay = float(retry_after)
    return min(delay, MAX_BACKOFF_SECONDS)


def _tries(attempts: int) -> str:
    return f"{attempts} attempt" + ("s" if attempts > 1 else "")


def _error_for(response: httpx.Response, path: str, attempts: int) -> ToolError:
    status, detail = response.status_code, _detail(response)
    if status in (401, 403):
        return ToolError(f"The API refused the API key (HTTP {status}): {detail}. Check the configured secret.")
    if status == 404:
        return ToolError(f"Not found upstream: {path} (HTTP 404).")
    if status == 429:
        return ToolError(f"The API is rate-limiting requests (HTTP 429 after {_tries(attempts)}); try again later.")
    if status >= 500:
        return ToolError(f"The API is failing (HTTP {status} after {_tries(attempts)}): {detail}")
    return ToolError(f"The API rejected the request (HTTP {status}): {detail}")


async def call_api(path: str, params: dict[str, str | int] | None = None) -> Any:
    """GET `path` under API_BASE_URL and return its JSON, or raise a ToolError a person can act on."""
    base_url = _setting("API_BASE_URL", "").rstrip("/")
    if not base_url.startswith(("https://", "http://")):
        raise ToolError("API_BASE_URL is not set to an http(s) URL in mcpkit.toml [environment].")
    per_attempt = float(_setting("API_TIMEOUT_SECONDS", "8"))
    max_attempts = max(1, int(_setting("API_MAX_ATTEMPTS", "3")))
    deadline = time.monotonic() + TOTAL_BUDGET_SECONDS
    headers = {"Authorization": f"Bearer {api_key()}", "Accept": "application/json"}

    async with httpx.AsyncClient(base_url=base_url, headers=headers, follow_redirects=False) as client:
        for attempt in range(1, max_attempts + 1):
            remaining = deadline - time.monotonic()
            last = attempt == max_attempts or remaining <= per_attempt / 2
            response: httpx.Response | None = None
            try:
                response = await client.get(path, params=params, timeout=min(per_attempt, remaining))
            except httpx.TimeoutException as exc:
                if last:
                    raise ToolError(f"The API did not answer within {per_attempt:g} s ({_tries(attempt)}).") from exc
            except httpx.TransportError as exc:
                if last:
                    raise ToolError(f"Cannot reach the API at {base_url}: {exc!r} ({_tries(attempt)}).") from exc
            else:
                if response.status_code not in RETRYABLE_STATUS or last:
                    break
            await asyncio.sleep(_retry_delay(response, attempt))
    assert response is not None  # the loop either broke with a response or raised
    if response.is_success:
        try:
            return response.json()
        except ValueError as exc:
            raise ToolError(f"The API answered {path} with something that is not JSON.") from exc
    raise _error_for(response, path, attempt)


@mcp.tool()
async def get_item(item_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]) -> dict[str, Any]:
    """Fetch one item by its id."""
    result = await call_api(f"/items/{item_id}")
    if not isinstance(result, dict):
        raise ToolError("The API returned an unexpected item shape (expected a JSON object).")
    return result


@mcp.tool()
async def search_items(
    query: Annotated[str, Field(min_length=1, max_length=200)],
    limit: Annotated[int, Field(ge=1, le=50)] = 10,
) -> list[dict[str, Any]]:
    """Search items by text; returns at most `limit` matches."""
    result = await call_api("/items", params={"q": query, "limit": limit})
    items = result.get("items") if isinstance(result, dict) else result
    if not isinstance(items, list):
        raise ToolError("The API returned an unexpected search result (expected a list of items).")
    return items[:limit]
