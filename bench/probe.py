"""The measuring side of the benchmark: runs *inside* each subject's own interpreter and virtualenv.

Standard library only, because the peers' virtualenvs have nothing else in common. The
orchestrator (`bench.runner`) writes a JSON job file, starts `python probe.py JOB`, and reads the
JSON result the probe writes next to it. Nothing is printed: the handlers' own logging goes to
stdout as it would in Lambda, and the orchestrator discards it.

Three modes:
- `cold`: import the handler (timed), then answer the first `tools/call`; the orchestrator turns
  the monotonic timestamps into "process start → first response".
- `restore`: a SnapStart restore, emulated. Import the handler (the init, with
  `AWS_LAMBDA_INITIALIZATION_TYPE=snap-start` in the environment), then fork `restores` children
  one after the other, each a copy of the initialized process as a restored snapshot is. A child
  runs the after-restore hooks the handler registered (`snapshot_restore_py`, which Lambda's
  Python runtime provides) and answers the first `tools/call`; fork → response is timed.
- `warm`: run the setup events (e.g. `initialize`), warm up, then time `iterations` identical
  `tools/call` events one by one, and count the DynamoDB calls the handler's client makes.
"""

from __future__ import annotations

import time

PROBE_STARTED_NS = time.monotonic_ns()

import importlib  # noqa: E402 - the timestamp above must come first
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import uuid  # noqa: E402
from typing import Any  # noqa: E402

SESSION_HEADER = "mcp-session-id"


class LambdaContext:
    """The attributes of Lambda's context object that the handlers (and Powertools) read."""

    function_name = "mcpkit-bench"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:mcpkit-bench"
    memory_limit_in_mb = 512
    log_group_name = "/aws/lambda/mcpkit-bench"
    log_stream_name = "bench"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 28_000


def resolve(target: str) -> Any:
    """`module:attr.attr` → the object."""
    module_name, _, path = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in filter(None, path.split(".")):
        obj = getattr(obj, part)
    return obj


def with_session(event: dict[str, Any], session_id: str | None) -> dict[str, Any]:
    if session_id is not None and SESSION_HEADER in event.get("headers", {}):
        event["headers"][SESSION_HEADER] = session_id
    return event


def session_of(response: dict[str, Any]) -> str | None:
    for key, value in (response.get("headers") or {}).items():
        if key.lower() == SESSION_HEADER:
            return str(value)
    for key, values in (response.get("multiValueHeaders") or {}).items():
        if key.lower() == SESSION_HEADER and values:
            return str(values[0])
    return None


def failure(response: Any, expect: str) -> str | None:
    """Why a response is not a successful tool result, or None when it is."""
    if not isinstance(response, dict):
        return f"handler returned {type(response).__name__}"
    body = str(response.get("body", ""))
    if response.get("statusCode") != 200 or expect not in body or '"isError":true' in body.replace(" ", ""):
        return f"status {response.get('statusCode')}: {body[:300]}"
    return None


def main(job_path: str) -> None:
    with open(job_path) as handle:
        job: dict[str, Any] = json.load(handle)
    # Lambda's runtime gives the root logger a handler (and leaves it at WARNING) before it imports
    # the handler, so a library's `logging.basicConfig(level=INFO)` (the SDK's MCPServer does one)
    # is a no-op there. Do the same, or every subject would log INFO lines here that Lambda drops.
    logging.getLogger().addHandler(logging.StreamHandler(sys.stdout))
    os.chdir(job["cwd"])
    sys.path[:0] = job["sys_path"]

    before_import = time.monotonic_ns()
    handler = resolve(job["handler"])
    imported = time.monotonic_ns()
    result: dict[str, Any] = {
        "probe_started_ns": PROBE_STARTED_NS,
        "import_ns": imported - before_import,
        "modules": len(sys.modules),
    }

    session_id: str | None = None
    setup_calls: list[list[str]] = []
    calls: list[str] = []
    dynamodb_ns = [0]
    client = resolve(job["dynamodb_client"]) if job.get("dynamodb_client") and job["mode"] == "warm" else None
    if client is not None:
        # The hook the kit's own tests use: one entry per DynamoDB API call this client makes.
        consistent = [False]

        def parameters(params: dict[str, Any], **_: Any) -> None:
            consistent[0] = bool(params.get("ConsistentRead"))

        def before(model: Any, **_: Any) -> None:
            # A strongly consistent read costs twice an eventually consistent one (bench/costs.py).
            calls.append(f"{model.name}/consistent" if consistent[0] else model.name)
            dynamodb_ns[0] -= time.perf_counter_ns()

        def after(**_: Any) -> None:
            dynamodb_ns[0] += time.perf_counter_ns()

        client.meta.events.register("before-parameter-build.dynamodb", parameters)
        client.meta.events.register("before-call.dynamodb", before)
        client.meta.events.register("after-call.dynamodb", after)

    for raw in job["setup"]:
        response = handler(with_session(json.loads(raw), session_id), LambdaContext())
        if not isinstance(response, dict) or int(response.get("statusCode", 500)) >= 300:
            raise SystemExit(f"setup event failed: {response!r}"[:2000])
        session_id = session_of(response) or session_id
        setup_calls.append(calls[:])
        calls.clear()

    request: str = job["request"]
    expect: str = job["expect"]
    if job["mode"] == "restore":
        result["restore_ns"], result["error"] = restores(handler, with_session(json.loads(request), session_id), job)
    elif job["mode"] == "cold":
        response = handler(with_session(json.loads(request), session_id), LambdaContext())
        result["first_response_ns"] = time.monotonic_ns()
        # CPU time since the process started (interpreter start-up included): steadier than wall
        # time on a machine that is busy with other work.
        result["first_response_cpu_ns"] = time.process_time_ns()
        result["error"] = failure(response, expect)
    else:
        events = [with_session(json.loads(request), session_id) for _ in range(job["warmup"] + job["iterations"])]
        contexts = [LambdaContext() for _ in events]
        for event, context in zip(events[: job["warmup"]], contexts, strict=False):
            error = failure(handler(event, context), expect)
            if error is not None:
                raise SystemExit(f"warm-up request failed: {error}")
        calls.clear()
        dynamodb_ns[0] = 0
        durations: list[int] = []
        errors: list[str] = []
        clock = time.perf_counter_ns
        in_dynamodb: list[int] = []
        for event, context in zip(events[job["warmup"] :], contexts[job["warmup"] :], strict=True):
            before_request = dynamodb_ns[0]
            started = clock()
            response = handler(event, context)
            durations.append(clock() - started)
            in_dynamodb.append(dynamodb_ns[0] - before_request)
            error = failure(response, expect)
            if error is not None:
                errors.append(error)
        result.update(
            durations_ns=durations,
            errors=len(errors),
            error=errors[0] if errors else None,
            setup_dynamodb_calls=setup_calls,
            dynamodb_calls=len(calls) if client is not None else None,
            dynamodb_ns=in_dynamodb,
            dynamodb_operation_counts={name: calls.count(name) for name in sorted(set(calls))},
        )

    with open(job["result_path"], "w") as handle:
        json.dump(result, handle)


def restores(handler: Any, event: dict[str, Any], job: dict[str, Any]) -> tuple[list[int], str | None]:
    """Fork → first response of `job["restores"]` children of this initialized process, and the first failure."""
    durations: list[int] = []
    for _ in range(job["restores"]):
        read_end, write_end = os.pipe()
        forked = time.monotonic_ns()
        pid = os.fork()
        if pid == 0:  # the restored copy
            os.close(read_end)
            outcome: dict[str, Any]
            try:
                try:
                    from snapshot_restore_py import get_after_restore
                except ImportError:  # a peer's interpreter without Lambda's runtime library: no hooks
                    hooks: list[Any] = []
                else:
                    hooks = list(get_after_restore())
                for hook, args, kwargs in hooks:
                    hook(*args, **kwargs)
                response = handler(event, LambdaContext())
                outcome = {"ns": time.monotonic_ns() - forked, "error": failure(response, job["expect"])}
            except BaseException as exc:  # reported to the parent, which fails the run
                outcome = {"ns": 0, "error": f"{type(exc).__name__}: {exc}"}
            os.write(write_end, json.dumps(outcome).encode())
            os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            outcome = json.loads(pipe.read() or b'{"ns": 0, "error": "the restored copy died"}')
        os.waitpid(pid, 0)
        if outcome["error"]:
            return durations, str(outcome["error"])
        durations.append(int(outcome["ns"]))
    return durations, None


if __name__ == "__main__":
    main(sys.argv[1])
