"""The streaming runtime (`python -m handlers.stream_runtime`) against the local Runtime API emulator.

A real runtime process serves tests/servers/streaming through the kit's real app; the test plays
Lambda: it queues events on the emulator and reads the parts of each answer as they arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

import pytest

from mcpkit.diagnose import describe_reported
from mcpkit.runtime_api import Buffered, Chunk, End, Failed, Part, Prelude, RuntimeApi
from tests.conftest import LAMBDA_ENV, ROOT, load_event

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

STREAMING_SERVER = "tests/servers/streaming/server.py:mcp"


@dataclass
class Runtime:
    api: RuntimeApi
    process: subprocess.Popen[bytes]
    log: IO[bytes]

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode()


def _environment(api: RuntimeApi, server: str, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MCPKIT_", "POWERTOOLS_", "AWS_LAMBDA"))}
    return {
        **env,
        **LAMBDA_ENV,
        "MCPKIT_SERVER": server,
        "MCPKIT_STREAM_RESPONSES": "true",
        "AWS_LAMBDA_FUNCTION_NAME": "streaming-test",
        "AWS_LAMBDA_RUNTIME_API": api.address,
        **extra,
    }


@contextlib.contextmanager
def running_runtime(
    server: str = STREAMING_SERVER, command: list[str] | None = None, env: dict[str, str] | None = None
) -> Iterator[Runtime]:
    api = RuntimeApi()
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        command or [sys.executable, "-m", "handlers.stream_runtime"],
        cwd=ROOT.parent if command else ROOT,  # the wrapper changes to the code root itself
        env=_environment(api, server, env or {}),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield Runtime(api, process, log)
    finally:
        process.kill()
        process.wait(timeout=10)
        api.close()
        log.close()


def _wait_polled(runtime: Runtime) -> None:
    deadline = time.monotonic() + 60
    while not runtime.api.polled.wait(0.05):
        assert runtime.process.poll() is None, runtime.output()
        assert time.monotonic() < deadline, runtime.output()


@pytest.fixture(scope="module")
def runtime() -> Iterator[Runtime]:
    with running_runtime() as started:
        _wait_polled(started)
        yield started


def http_event(path: str, method: str = "GET", query: str = "") -> dict[str, Any]:
    """A function URL event (payload format 2.0, routeKey `$default`)."""
    event = copy.deepcopy(load_event("http_api_post_mcp"))
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["rawQueryString"] = query
    event["requestContext"]["http"]["method"] = method
    event["routeKey"] = event["requestContext"]["routeKey"] = "$default"
    event["headers"]["host"] = event["requestContext"]["domainName"] = "mcp.example.com"
    return event


async def _collect(runtime: Runtime, event: dict[str, Any], deadline_ms: int | None = None) -> list[tuple[float, Part]]:
    """Every part of the answer with the wall-clock time it reached the emulator's consumer."""
    deadline = deadline_ms or int((time.time() + 10) * 1000)
    invocation = runtime.api.invoke(json.dumps(event).encode(), deadline, asyncio.get_running_loop())
    parts: list[tuple[float, Part]] = []
    while True:
        part = await asyncio.wait_for(invocation.parts.get(), 30)
        parts.append((time.time(), part))
        if isinstance(part, End | Failed | Buffered):
            return parts


def collect(runtime: Runtime, event: dict[str, Any], deadline_ms: int | None = None) -> list[tuple[float, Part]]:
    return asyncio.run(_collect(runtime, event, deadline_ms))


def test_prelude_carries_status_headers_and_cookies_and_each_chunk_arrives_before_the_next_is_written(
    runtime: Runtime,
) -> None:
    # GIVEN a route that writes three chunks 0.8 s apart, each stamped with the time it was written
    parts = collect(runtime, http_event("/ticks", query="count=3&pause=0.8"))

    # THEN the prelude comes first, with the app's status, headers and cookies
    prelude = parts[0][1]
    assert isinstance(prelude, Prelude)
    assert prelude.status == 207
    assert prelude.headers["x-ticks"] == "3"
    assert prelude.headers["content-type"].startswith("text/plain")
    assert [c.split(";")[0] for c in prelude.cookies] == ["first=1", "second=2"]
    # AND each chunk arrives on its own, before the function even wrote the next one
    chunks = [(arrived, part.data.decode()) for arrived, part in parts if isinstance(part, Chunk)]
    assert [text.split()[:2] for _, text in chunks] == [["tick", "0"], ["tick", "1"], ["tick", "2"]]
    written = [float(text.split()[2]) for _, text in chunks]
    for (arrived, _), next_written in zip(chunks, written[1:], strict=False):
        assert arrived < next_written, (
            f"a chunk arrived only at {arrived}, after the next was written at {next_written}"
        )
    # AND the stream ends cleanly, without error trailers
    assert parts[-1][1] == End(None)


def test_a_failure_after_the_first_byte_ends_the_stream_with_the_error_trailers(runtime: Runtime) -> None:
    parts = [part for _, part in collect(runtime, http_event("/fail-midway"))]

    assert isinstance(parts[0], Prelude)
    assert parts[0].status == 200
    assert parts[1] == Chunk(b"first part\n")
    end = parts[-1]
    assert isinstance(end, End)
    assert end.error is not None
    assert end.error["errorType"] == "RuntimeError"
    assert end.error["errorMessage"] == "failed after the first chunk"
    # AND the instance serves the next invocation
    assert isinstance(collect(runtime, http_event("/ticks", query="count=1"))[-1][1], End)


def test_mcp_requests_stream_through_the_real_app(runtime: Runtime) -> None:
    event = http_event("/mcp", "POST")
    event["headers"]["mcp-protocol-version"] = "2025-11-25"
    event["body"] = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    parts = [part for _, part in collect(runtime, event)]

    assert isinstance(parts[0], Prelude)
    body = b"".join(part.data for part in parts if isinstance(part, Chunk))
    assert parts[0].status == 200, body
    assert {tool["name"] for tool in json.loads(body)["result"]["tools"]} == {"add", "block", "crash"}


def test_a_non_http_event_is_answered_buffered_with_the_time_left_before_the_deadline_header(
    runtime: Runtime,
) -> None:
    # GIVEN an invocation whose Lambda-Runtime-Deadline-Ms lies 5 s ahead
    deadline_ms = int((time.time() + 5) * 1000)
    [(_, answer)] = collect(runtime, {"kind": "scheduled"}, deadline_ms)

    # THEN the server's handle_event saw a context whose remaining time counts down to that deadline
    assert isinstance(answer, Buffered)
    result = json.loads(answer.payload)
    assert 3000 < result["remaining_ms"] <= 5000
    assert result["request_id"]


def test_a_failure_before_any_byte_is_reported_as_an_invocation_error(runtime: Runtime) -> None:
    [(_, answer)] = collect(runtime, {"fail": True})

    assert isinstance(answer, Failed)
    assert answer.error["errorType"] == "ValueError"
    assert answer.error["errorMessage"] == "asked to fail"


def test_log_records_are_one_line_each_with_the_request_id(runtime: Runtime) -> None:
    # GIVEN a record with a line break, logged by a library through the root logger's handler
    [(_, answer)] = collect(runtime, {"log": "line one\nline two"})
    assert isinstance(answer, Buffered)
    request_id = json.loads(answer.payload)["request_id"]

    # THEN it is one line, in the format Lambda's Python runtime writes: [LEVEL] time request-id message
    time.sleep(0.2)
    lines = [line for line in runtime.output().split("\n") if "line one" in line]
    assert len(lines) == 1, runtime.output()
    level, stamp, logged_id, message = lines[0].split("\t")
    assert level == "[WARNING]"
    assert stamp.endswith("Z")
    assert logged_id == request_id
    assert message == "line one\rline two"


def test_an_init_failure_is_posted_to_init_error_and_the_runtime_exits_nonzero(tmp_path: Path) -> None:
    # GIVEN a server whose import raises on its third line
    server = tmp_path / "server.py"
    server.write_text("from mcp.server.mcpserver import MCPServer\nmcp = MCPServer('broken')\nlimit = 1 / 0\n")
    with running_runtime(f"{server}:mcp") as runtime:
        # THEN the runtime reports the init error and exits non-zero, as Lambda's own runtimes do
        assert runtime.process.wait(timeout=60) == 1, runtime.output()
        error = runtime.api.init_error
        assert error is not None
        assert not runtime.api.polled.is_set()
    assert error["errorType"] == "ZeroDivisionError"
    # AND `mcpkit dev` can say where in one or two lines, from what was posted
    assert describe_reported(error, tmp_path).startswith(f"{server}:3: ZeroDivisionError: division by zero\n")


def test_the_exec_wrapper_runs_the_streaming_runtime_with_the_interpreter_lambda_passes() -> None:
    # GIVEN the managed runtime's command line (its interpreter, then its own bootstrap) and the code root
    command = ["/bin/sh", str(ROOT / "handlers" / "stream_bootstrap"), sys.executable, "/var/runtime/bootstrap.py"]
    with running_runtime(command=command, env={"LAMBDA_TASK_ROOT": str(ROOT)}) as runtime:
        # THEN the kit's runtime polls the Runtime API (the managed runtime's bootstrap.py does not exist here)
        _wait_polled(runtime)
        assert isinstance(collect(runtime, {"kind": "scheduled"})[0][1], Buffered)
    assert os.access(ROOT / "handlers" / "stream_bootstrap", os.X_OK)


def test_the_streaming_runtime_keeps_the_cold_path_of_the_buffered_handler() -> None:
    # The runtime client adds only standard-library modules to what the buffered handler's init loads.
    from tests.test_cold_path import FORBIDDEN_ON_COLD_PATH, _loaded, _run_probe

    show = "print(json.dumps(sorted(sys.modules)))"
    modules: list[str] = _run_probe(
        f"import json, sys\nimport handlers.stream_runtime, handlers.lambda_handler\n{show}", {}
    )
    assert [name for name in FORBIDDEN_ON_COLD_PATH if _loaded(modules, name)] == []
    buffered: list[str] = _run_probe(
        "import json, sys\nimport handlers.lambda_handler\nprint(json.dumps(sorted(sys.modules)))", {}
    )
    added = sorted(set(modules) - set(buffered))
    assert added == ["handlers.stream_runtime"], added  # http.client, socket, base64: already loaded
