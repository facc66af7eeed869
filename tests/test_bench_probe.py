"""The benchmark's emulated SnapStart restore (`bench/probe.py`, mode `restore`), on a tiny handler."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING

from tests.conftest import ROOT

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

HANDLER = """
import os
from snapshot_restore_py import register_after_restore

state = {"init_pid": os.getpid(), "restored_in": None}


def restored():
    state["restored_in"] = os.getpid()


register_after_restore(restored)


def handler(event, context):
    # A copy answers only once its hooks ran, in its own process: never the initialized one.
    fresh = state["restored_in"] == os.getpid() != state["init_pid"]
    return {"statusCode": 200, "body": "restored" if fresh else "stale"}
"""


def _probe(tmp_path: Path, restores: int, expect: str = "restored") -> dict[str, object]:
    (tmp_path / "tiny_handler.py").write_text(HANDLER)
    job = {
        "mode": "restore",
        "cwd": str(ROOT),
        "sys_path": [str(tmp_path)],
        "handler": "tiny_handler:handler",
        "setup": [],
        "request": json.dumps({"body": "{}"}),
        "expect": expect,
        "restores": restores,
        "result_path": str(tmp_path / "result.json"),
    }
    return _run(tmp_path, job)


def _run(tmp_path: Path, job: Mapping[str, object], env: dict[str, str] | None = None) -> dict[str, object]:
    """bench/probe.py on `job`, in a fresh interpreter as the bench runs it; its result."""
    (tmp_path / "job.json").write_text(json.dumps(job))
    completed = subprocess.run(
        [sys.executable, "-P", str(ROOT / "bench" / "probe.py"), str(tmp_path / "job.json")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert completed.returncode == 0, completed.stderr
    result: dict[str, object] = json.loads((tmp_path / "result.json").read_text())
    return result


def test_each_restored_copy_runs_the_hooks_before_answering(tmp_path: Path) -> None:
    result = _probe(tmp_path, restores=3)
    assert result["error"] is None
    durations = result["restore_ns"]
    assert isinstance(durations, list)
    assert len(durations) == 3
    assert all(isinstance(ns, int) and ns > 0 for ns in durations)


def test_a_copy_that_answers_wrongly_fails_the_run(tmp_path: Path) -> None:
    result = _probe(tmp_path, restores=2, expect="something else")
    assert "restored" in str(result["error"])  # the failure quotes what the copy answered
    assert result["restore_ns"] == []


def test_the_streaming_subject_answers_through_the_stream_entry(tmp_path: Path) -> None:
    # bench/subjects/stream_subject.py: the streaming front's rows time stream_handler, not the buffered handler.
    from mcpkit.messages import MODERN, modern_meta, rpc
    from mcpkit.server_config import load_server

    # bench.events.tools_call's 2026-07-28 event (bench/ is not an importable package under pytest).
    event = json.loads((ROOT / "tests" / "events" / "http_api_post_mcp.json").read_text())
    params = {"name": "add", "arguments": {"a": 2, "b": 40}, "_meta": modern_meta("bench-test")}
    event["body"] = json.dumps(rpc("tools/call", params))
    event["headers"].update({"mcp-protocol-version": MODERN, "mcp-method": "tools/call", "mcp-name": "add"})
    event["headers"].pop("content-length", None)

    environ = load_server(ROOT / "servers" / "example").runtime_environment(root=ROOT, table_name="unused")
    environ.update(
        {"MCPKIT_STREAM_RESPONSES": "true", "MCPKIT_SESSION_KEY": "k" * 64, "AWS_DEFAULT_REGION": "us-east-1"}
    )
    job = {
        "mode": "cold",
        "cwd": str(ROOT),
        "sys_path": [str(ROOT), str(ROOT / "bench" / "subjects")],
        "handler": "stream_subject:handler",
        "setup": [],
        "request": json.dumps(event),
        "expect": "42",
        "result_path": str(tmp_path / "result.json"),
    }
    result = _run(
        tmp_path, job, env={**{k: v for k, v in os.environ.items() if not k.startswith("MCPKIT_")}, **environ}
    )
    assert result["error"] is None
    assert isinstance(result["first_response_ns"], int)
    assert isinstance(result["probe_started_ns"], int)
    assert result["first_response_ns"] > result["probe_started_ns"]
