"""start → progress → result, locally (worker thread) and through the Lambda worker entry point."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from mcp import Client
from mcp_types import CallToolResult, TextContent

if TYPE_CHECKING:
    from types import ModuleType

    from mcp.server.mcpserver import MCPServer

pytestmark = pytest.mark.anyio
PRIMES_BELOW_100_000 = 9592


def _text(result: CallToolResult) -> str:
    content = result.content[0]
    assert isinstance(content, TextContent)
    return content.text


async def _wait_until_done(client: Client, task_id: str) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = (await client.call_tool("task_status", {"task_id": task_id})).structured_content
        seen.append(state)
        if state["status"] != "working":
            return seen
        await anyio.sleep(0.01)
    raise AssertionError(f"task still working after 60 s: {seen[-1]}")


async def test_start_then_progress_then_result(server: MCPServer) -> None:
    async with Client(server) as client:
        started = await client.call_tool("start_count_primes", {"limit": 100_000})
        assert started.structured_content["status"] == "working"
        states = await _wait_until_done(client, started.structured_content["task_id"])
    final = states[-1]
    assert final["status"] == "completed"
    assert final["result"] == PRIMES_BELOW_100_000
    assert final["progress"] == 1.0
    progress = [s["progress"] for s in states]
    assert progress == sorted(progress)


async def test_cancel_stops_the_task(server: MCPServer, module: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    # No worker: the task stays 'working' until cancelled, so the test controls the timing.
    monkeypatch.setattr(module, "dispatch", lambda task_id: None)
    async with Client(server) as client:
        started = await client.call_tool("start_count_primes", {"limit": 1_000_000})
        task_id = started.structured_content["task_id"]
        cancelled = await client.call_tool("cancel_task", {"task_id": task_id})
        again = await client.call_tool("cancel_task", {"task_id": task_id})
    assert cancelled.structured_content["status"] == "cancelled"
    assert again.is_error
    assert "already cancelled" in _text(again)
    assert module.run_task(task_id, lambda: 1000.0) is False


async def test_unknown_task_is_a_clear_error(server: MCPServer) -> None:
    async with Client(server) as client:
        result = await client.call_tool("task_status", {"task_id": "0" * 32})
        bad = await client.call_tool("start_count_primes", {"limit": 1})
    assert result.is_error
    assert "No task" in _text(result)
    assert bad.is_error


@dataclass
class FakeContext:
    """A Lambda context whose invocation has `seconds` left and loses one per call."""

    seconds: float

    def get_remaining_time_in_millis(self) -> int:
        self.seconds -= 1
        return int(self.seconds * 1000)


async def test_lambda_worker_hands_over_before_its_deadline_and_finishes_later(
    server: MCPServer, module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    handed_over: list[str] = []
    monkeypatch.setattr(module, "dispatch", handed_over.append)
    async with Client(server) as client:
        started = await client.call_tool("start_count_primes", {"limit": 100_000})
        task_id = started.structured_content["task_id"]
        event = {module.EVENT_KEY: {"server": server.name, "task_id": task_id}}

        # An invocation with 8 s left runs chunks until the 5 s margin, saves, and re-invokes itself.
        first = module.handle_event(event, FakeContext(seconds=8))
        midway = (await client.call_tool("task_status", {"task_id": task_id})).structured_content
        # The next invocation has plenty of time and completes the job.
        second = module.handle_event(event, FakeContext(seconds=10_000))
        final = (await client.call_tool("task_status", {"task_id": task_id})).structured_content

    assert first == {"handled": True, "handed_over": True}
    assert handed_over == [task_id, task_id]  # at start, then the hand-over
    assert midway["status"] == "working"
    assert 0 < midway["progress"] < 1
    assert second == {"handled": True, "handed_over": False}
    assert final["status"] == "completed"
    assert final["result"] == PRIMES_BELOW_100_000


def test_worker_ignores_events_for_other_servers(module: ModuleType) -> None:
    event = {module.EVENT_KEY: {"server": "someone-else", "task_id": "0" * 32}}
    assert module.handle_event(event, FakeContext(seconds=100))["handled"] is False


def test_in_lambda_the_worker_is_an_async_self_invocation(module: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    import boto3
    from botocore.stub import Stubber

    client = boto3.client("lambda", region_name="us-east-1")
    monkeypatch.setattr(boto3, "client", lambda service, **_: client)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "McpServer-x-ServerFunction-abc")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_VERSION", "7")
    payload = {module.EVENT_KEY: {"server": module.SERVER_NAME, "task_id": "t1"}}
    with Stubber(client) as stub:
        stub.add_response(
            "invoke",
            {"StatusCode": 202},
            {
                "FunctionName": "McpServer-x-ServerFunction-abc",
                "Qualifier": "7",
                "InvocationType": "Event",
                "Payload": json.dumps(payload).encode(),
            },
        )
        module.dispatch("t1")
        stub.assert_no_pending_responses()


async def test_count_primes_reports_progress_and_log_lines_before_its_result(server: MCPServer) -> None:
    events: list[tuple[str, Any]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        events.append(("progress", (progress, total)))

    async def on_log(params: Any) -> None:
        events.append(("log", params.data))

    async with Client(server, logging_callback=on_log, log_level="info") as client:
        result = await client.call_tool("count_primes", {"limit": 100_000}, progress_callback=on_progress)
    events.append(("result", result.structured_content))

    assert events[-1] == ("result", {"result": PRIMES_BELOW_100_000})
    progress = [value for kind, value in events if kind == "progress"]
    # LONG_TASK_CHUNK is 5000 in conftest.py: one notification per chunk, rising to the limit.
    assert len(progress) == 100_000 // 5000
    assert progress == sorted(progress)
    assert progress[-1] == (100_000, 100_000)
    logs = [value for kind, value in events if kind == "log"]
    assert logs[0].startswith("counting the primes below 100,000")
    assert logs[-1].endswith(f"{PRIMES_BELOW_100_000:,} primes so far")
