"""{{ title }}: a job that runs longer than one request may, and one that reports while it runs.

`count_primes` does the job within the request and reports progress and log lines as it goes
(`ctx.report_progress`, `ctx.info`). With `stream_responses = true` in mcpkit.toml (this
template's default) the server sits behind a streaming function URL, so the client sees them
while the tool runs, for up to `timeout_seconds` (at most 900 s). Behind the buffered HTTP API
they have nowhere to go and only the result arrives.

Longer than that, or when the client should be free to go away: `start_count_primes` only
records the task (pk `TASK#<id>`, sk `META` in the kit's table) and hands it to a worker, then
returns the task id at once. The client polls `task_status` for progress and the result, and
may `cancel_task`.

The worker runs the job in chunks and saves progress after each one. In Lambda it is an
asynchronous invocation of this same function (InvocationType=Event, the function name from
`AWS_LAMBDA_FUNCTION_NAME`) whose event the kit's handler passes to `handle_event`; when the
invocation's time runs low it saves its place and invokes itself again, so a job may run far
longer than any single invocation. Locally (`mcpkit dev`, tests) the worker is a thread.

Replace `_count_primes_chunk` and the tool's arguments with your own job; keep the rest.
"""

from __future__ import annotations

import math
import os
import threading
import time
import uuid
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_lambda.client import LambdaClient

SERVER_NAME = Path(__file__).resolve().parent.name
mcp = MCPServer(
    SERVER_NAME,
    version="0.1.0",
    instructions=(
        "Long jobs run in the background: start one, then poll task_status with the returned task_id "
        "until status is 'completed' (or 'failed'/'cancelled')."
    ),
)

# The event key the kit's Lambda handler routes to `handle_event` instead of the HTTP app.
EVENT_KEY = "mcpkit_task"
# Stop a worker invocation this long before its deadline, save progress and hand over.
HANDOVER_MARGIN_SECONDS = 5.0
TASK_TTL_SECONDS = 7 * 24 * 3600
MAX_LIMIT = 2_000_000_000
Status = Literal["working", "completed", "failed", "cancelled"]


class TaskState(BaseModel):
    task_id: str
    status: Status
    progress: float = Field(ge=0, le=1, description="Fraction done, 0 to 1.")
    done: int
    total: int
    result: int | None = None
    error: str | None = None
    poll_interval_seconds: float = 2.0


class Clock(Protocol):
    def __call__(self) -> float:
        """Seconds left for this worker invocation."""
        ...


# ---- the job ------------------------------------------------------------------------------------


def _chunk_size() -> int:
    return int(os.environ.get("LONG_TASK_CHUNK", "2000000"))


def _count_primes_chunk(start: int, stop: int) -> int:
    """Primes in [start, stop), by a segmented sieve: memory stays O(chunk) however large the limit."""
    if stop <= 2:
        return 0
    start = max(start, 2)
    segment = bytearray([1]) * (stop - start)
    for p in range(2, math.isqrt(stop - 1) + 1):
        first = max(p * p, (start + p - 1) // p * p)
        segment[first - start :: p] = bytes(len(range(first, stop, p)))
    return sum(segment)


# ---- state in the table -------------------------------------------------------------------------


@cache
def _dynamodb() -> DynamoDBClient:
    import boto3  # the Lambda runtime ships boto3; import it only when a task is touched

    return boto3.client("dynamodb")


def _key(task_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"TASK#{task_id}"}, "sk": {"S": "META"}}


def _owner() -> str:
    token = get_access_token()
    sub = (token.subject or (token.claims or {}).get("sub")) if token is not None else None
    return sub if isinstance(sub, str) and sub else "anonymous"


def _state(item: dict[str, Any]) -> TaskState:
    done, total = int(item["done"]["N"]), int(item["total"]["N"])
    return TaskState(
        task_id=item["pk"]["S"].removeprefix("TASK#"),
        status=item["status"]["S"],
        progress=round(done / total, 4) if total else 1.0,
        done=done,
        total=total,
        result=int(item["result"]["N"]) if "result" in item else None,
        error=item["error"]["S"] if "error" in item else None,
    )


def _load(task_id: str) -> dict[str, Any] | None:
    table = os.environ["MCPKIT_TABLE_NAME"]
    return _dynamodb().get_item(TableName=table, Key=_key(task_id), ConsistentRead=True).get("Item")


def _save_progress(task_id: str, done: int, partial: int, *, finished: bool) -> bool:
    """Record a chunk; False when the task is no longer 'working' (cancelled meanwhile)."""
    from botocore.exceptions import ClientError

    names = {"#s": "status", "#d": "done", "#p": "partial", "#u": "updated_at"}
    values: dict[str, Any] = {
        ":done": {"N": str(done)},
        ":partial": {"N": str(partial)},
        ":now": {"S": datetime.now(UTC).isoformat()},
        ":working": {"S": "working"},
    }
    update = "SET #d = :done, #p = :partial, #u = :now"
    if finished:
        update += ", #s = :completed, #r = :partial"
        values[":completed"] = {"S": "completed"}
        names["#r"] = "result"
    try:
        _dynamodb().update_item(
            TableName=os.environ["MCPKIT_TABLE_NAME"],
            Key=_key(task_id),
            UpdateExpression=update,
            ConditionExpression="#s = :working",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise
    return True


def _fail(task_id: str, message: str) -> None:
    _dynamodb().update_item(
        TableName=os.environ["MCPKIT_TABLE_NAME"],
        Key=_key(task_id),
        UpdateExpression="SET #s = :failed, #e = :error",
        ConditionExpression="#s = :working",
        ExpressionAttributeNames={"#s": "status", "#e": "error"},
        ExpressionAttributeValues={":failed": {"S": "failed"}, ":error": {"S": message}, ":working": {"S": "working"}},
    )


# ---- the worker ---------------------------------------------------------------------------------


def run_task(task_id: str, time_left: Clock) -> bool:
    """Advance the task until it ends or time runs low; True when it still needs another run."""
    item = _load(task_id)
    if item is None or item["status"]["S"] != "working":
        return False
    done, total, partial = int(item["done"]["N"]), int(item["total"]["N"]), int(item.get("partial", {"N": "0"})["N"])
    try:
        while done < total:
            if time_left() < HANDOVER_MARGIN_SECONDS:
                return True
            stop = min(total, done + _chunk_size())
            partial += _count_primes_chunk(done, stop)
            done = stop
            if not _save_progress(task_id, done, partial, finished=done >= total):
                return False  # cancelled
        if total == 0:
            _save_progress(task_id, 0, 0, finished=True)
    except Exception as exc:
        _fail(task_id, f"{type(exc).__name__}: {exc}")
        raise
    return False


def _invoke_self(task_id: str) -> None:
    import json

    import boto3

    client: LambdaClient = boto3.client("lambda")
    client.invoke(
        FunctionName=os.environ["AWS_LAMBDA_FUNCTION_NAME"],
        # The version this code runs as, so a deploy mid-task does not switch code under it.
        Qualifier=os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        InvocationType="Event",
        Payload=json.dumps({EVENT_KEY: {"server": SERVER_NAME, "task_id": task_id}}).encode(),
    )


def dispatch(task_id: str) -> None:
    """Run the task in the background: a new Lambda invocation in AWS, a thread on a laptop."""
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        _invoke_self(task_id)
        return
    threading.Thread(target=run_task, args=(task_id, lambda: math.inf), name=f"task-{task_id}", daemon=True).start()


def handle_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Entry for the asynchronous worker invocation (the kit's handler routes `mcpkit_task` events here)."""
    payload = event.get(EVENT_KEY) or {}
    task_id = payload.get("task_id")
    if not isinstance(task_id, str) or payload.get("server") != SERVER_NAME:
        return {"handled": False, "reason": "not a task event for this server"}
    if run_task(task_id, lambda: context.get_remaining_time_in_millis() / 1000):
        dispatch(task_id)
        return {"handled": True, "handed_over": True}
    return {"handled": True, "handed_over": False}


# ---- MCP tools ----------------------------------------------------------------------------------


def _owned(task_id: str) -> dict[str, Any]:
    item = _load(task_id) if len(task_id) == 32 and task_id.isalnum() else None
    # Someone else's task looks exactly like a missing one: ids are not an oracle.
    if item is None or item.get("owner", {}).get("S") != _owner():
        raise ToolError(f"No task {task_id}; start one with start_count_primes.")
    return item


@mcp.tool()
async def count_primes(limit: Annotated[int, Field(ge=2, le=MAX_LIMIT)], ctx: Context) -> int:
    """Count the primes below `limit` now, reporting progress as it goes; for minutes of work use start_count_primes."""
    chunks = max(1, math.ceil(limit / _chunk_size()))
    await ctx.info(f"counting the primes below {limit:,} in {chunks} chunk(s)")
    found = 0
    for number, start in enumerate(range(0, limit, _chunk_size()), 1):
        stop = min(limit, start + _chunk_size())
        found += _count_primes_chunk(start, stop)
        # Each await is also where the kit can stop the call cleanly before the function's timeout.
        await ctx.report_progress(stop, limit, f"{found:,} primes below {stop:,}")
        if number % 10 == 0 or stop == limit:
            await ctx.info(f"chunk {number}/{chunks}: {found:,} primes so far")
    return found


@mcp.tool()
def start_count_primes(limit: Annotated[int, Field(ge=2, le=MAX_LIMIT)]) -> TaskState:
    """Start counting the primes below `limit` in the background; returns a task_id to poll with task_status."""
    task_id = uuid.uuid4().hex
    now = datetime.now(UTC)
    _dynamodb().put_item(
        TableName=os.environ["MCPKIT_TABLE_NAME"],
        Item={
            **_key(task_id),
            "status": {"S": "working"},
            "owner": {"S": _owner()},
            "done": {"N": "0"},
            "total": {"N": str(limit)},
            "partial": {"N": "0"},
            "created_at": {"S": now.isoformat()},
            "updated_at": {"S": now.isoformat()},
            "ttl": {"N": str(int(time.time()) + TASK_TTL_SECONDS)},
        },
        ConditionExpression="attribute_not_exists(pk)",
    )
    try:
        dispatch(task_id)
    except Exception as exc:
        _fail(task_id, f"could not start the worker: {exc}")
        raise ToolError(f"Could not start the background worker: {exc}") from exc
    return TaskState(task_id=task_id, status="working", progress=0.0, done=0, total=limit)


@mcp.tool()
def task_status(task_id: str) -> TaskState:
    """Progress of a task, and its result once status is 'completed'."""
    return _state(_owned(task_id))


@mcp.tool()
def cancel_task(task_id: str) -> TaskState:
    """Stop a running task; its progress so far is kept."""
    from botocore.exceptions import ClientError

    _owned(task_id)
    try:
        item = _dynamodb().update_item(
            TableName=os.environ["MCPKIT_TABLE_NAME"],
            Key=_key(task_id),
            UpdateExpression="SET #s = :cancelled",
            ConditionExpression="#s = :working",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":cancelled": {"S": "cancelled"}, ":working": {"S": "working"}},
            ReturnValues="ALL_NEW",
        )["Attributes"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        state = _state(_owned(task_id))
        raise ToolError(f"Task {task_id} is already {state.status}; nothing to cancel.") from exc
    return _state(item)
