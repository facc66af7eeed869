"""Subjects, scenarios and the two kinds of run: cold (a fresh process per run) and warm (in-process loop)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from bench import events
from bench.envs import ROOT, Env
from mcpkit.messages import MODERN

if TYPE_CHECKING:
    from collections.abc import Mapping

    from bench.costs import Front

PROBE: Final = Path(__file__).resolve().parent / "probe.py"
SUBJECTS_DIR: Final = Path(__file__).resolve().parent / "subjects"
LEGACY: Final = "own"  # the revision label for peers that speak their own fixed protocol version
COLD_TIMEOUT_S: Final = 60
WARM_TIMEOUT_S: Final = 600


@dataclass(frozen=True)
class Subject:
    """One implementation under test, and how to call its `tools/call` in each revision it supports."""

    key: str
    label: str
    env: Env
    handler: str
    sys_path: tuple[str, ...]
    environ: Mapping[str, str]
    tool: str
    arguments: Mapping[str, Any]
    expect: str
    # Revisions with their own rows; `LEGACY` for a peer that ignores the revision headers.
    revisions: tuple[str, ...]
    cold_revisions: tuple[str, ...]
    # True: handshake revisions open a DynamoDB session with `initialize` and send its id back.
    sessions: bool = False
    dynamodb_client: str | None = None
    warm_iterations: int = 2000
    warm_note: str = ""
    # Emulated restores (forked copies) at most; None: as many as cold runs; 0: none (no SnapStart).
    max_restores: int | None = None
    kit: bool = False
    # What fronts the function in AWS, for its price per request (bench/costs.py).
    front: Front = "http-api"


@dataclass
class Measurement:
    subject: str
    label: str
    revision: str
    first_response_ms: list[float] = field(default_factory=list)
    # SnapStart restore, emulated: fork of the initialized process → first response (bench/probe.py).
    restore_ms: list[float] = field(default_factory=list)
    first_response_cpu_ms: list[float] = field(default_factory=list)
    import_ms: list[float] = field(default_factory=list)
    modules: int | None = None
    warm_us: list[float] = field(default_factory=list)
    warm_iterations: int = 0
    dynamodb_calls_per_request: float | None = None
    # Mean time per request spent inside DynamoDB calls (on moto, here): part of the warm figures.
    dynamodb_us_per_request: float | None = None
    # Each request's duration minus its own time inside DynamoDB calls: what the handler itself costs.
    own_us: list[float] = field(default_factory=list)
    # Bytes of log output (stdout + stderr) per request over the whole warm process.
    log_bytes_per_request: float | None = None
    # Per request, by operation name (PutItem, UpdateItem, GetItem, …): what the cost model prices.
    dynamodb_operations: dict[str, float] = field(default_factory=dict)
    initialize_dynamodb_calls: list[str] | None = None
    errors: list[str] = field(default_factory=list)


class RunError(RuntimeError):
    """A subject failed to answer; the benchmark stops rather than time error responses."""


def subject_environment(subject: Subject, aws_env: Mapping[str, str]) -> dict[str, str]:
    # The orchestrator's own settings (its venv, PYTHONPATH, test env) must not leak into a subject.
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "MCPKIT_", "POWERTOOLS_", "PYTHON", "VIRTUAL_ENV", "MCPBENCH_"))
    }
    return {**base, **aws_env, **subject.environ, "PYTHONHASHSEED": "random"}


def _write_job(directory: Path, job: dict[str, Any]) -> Path:
    path = directory / f"job-{time.monotonic_ns()}.json"
    job["result_path"] = str(path.with_suffix(".result.json"))
    path.write_text(json.dumps(job))
    return path


def _run_probe(
    subject: Subject, job: dict[str, Any], env: Mapping[str, str], timeout: float, extra_args: tuple[str, ...] = ()
) -> tuple[dict[str, Any], int, str]:
    """Start the subject's interpreter on the probe; returns (result, monotonic ns at start, stderr).

    The result gains `log_bytes`: what the subject wrote to stdout, which Lambda ships to
    CloudWatch Logs (billed per GB ingested).
    """
    with tempfile.TemporaryDirectory(prefix="mcpkit-bench-") as tmp:
        job_path = _write_job(Path(tmp), job)
        log_path = Path(tmp) / "stdout.log"
        # -P: the probe's folder is not put on sys.path, so nothing of the bench shadows a subject's module.
        command = [str(subject.env.python), "-P", *extra_args, str(PROBE), str(job_path)]
        with log_path.open("wb") as log:
            started = time.monotonic_ns()
            completed = subprocess.run(
                command,
                env=dict(env),
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,  # the handlers' request logs and metrics, as Lambda would ship them
                stderr=subprocess.PIPE,
                text=True,
                timeout=timeout,
                check=False,
            )
        result_path = Path(job["result_path"])
        if completed.returncode != 0 or not result_path.is_file():
            raise RunError(f"{subject.label}: probe exited {completed.returncode}:\n{completed.stderr[-4000:]}")
        result: dict[str, Any] = json.loads(result_path.read_text())
        result["log_bytes"] = log_path.stat().st_size + len(completed.stderr.encode())
        return result, started, completed.stderr


def request_event(subject: Subject, revision: str, session_id: str | None) -> dict[str, Any]:
    if revision == LEGACY:
        return events.legacy_tools_call(subject.tool, dict(subject.arguments), session_id)
    return events.tools_call(revision, subject.tool, dict(subject.arguments), session_id)


def cold_job(subject: Subject, revision: str, session_id: str | None) -> dict[str, Any]:
    """Import, then the first `tools/call`: for a session revision, one on a session opened elsewhere."""
    return {
        "mode": "cold",
        "cwd": str(ROOT),
        "sys_path": list(subject.sys_path),
        "handler": subject.handler,
        "setup": [],
        "request": json.dumps(request_event(subject, revision, session_id)),
        "expect": subject.expect,
    }


def restore_job(subject: Subject, revision: str, session_id: str | None, restores: int) -> dict[str, Any]:
    return {**cold_job(subject, revision, session_id), "mode": "restore", "restores": restores}


def warm_job(subject: Subject, revision: str) -> dict[str, Any]:
    setup: list[dict[str, Any]] = []
    session_id: str | None = None
    if revision in events.HANDSHAKE_REVISIONS or (revision == LEGACY and subject.sessions):
        # What a client does before its first call; a kit session's id is swapped in by the probe.
        version = "2025-11-25" if revision == LEGACY else revision
        session_id = events.SESSION_PLACEHOLDER if subject.sessions else None
        setup = [events.initialize(version)]
        if revision != LEGACY:
            setup.append(events.initialized(version, session_id))
    return {
        "mode": "warm",
        "cwd": str(ROOT),
        "sys_path": list(subject.sys_path),
        "handler": subject.handler,
        "setup": [json.dumps(e) for e in setup],
        "request": json.dumps(request_event(subject, revision, session_id)),
        "expect": subject.expect,
        "warmup": min(50, subject.warm_iterations),
        "iterations": subject.warm_iterations,
        "dynamodb_client": subject.dynamodb_client,
    }


def run_cold(
    subject: Subject, revision: str, env: Mapping[str, str], session_id: str | None, into: Measurement
) -> None:
    """One fresh process: start, import, first `tools/call` response."""
    result, started, _ = _run_probe(subject, cold_job(subject, revision, session_id), env, COLD_TIMEOUT_S)
    if result.get("error"):
        raise RunError(f"{subject.label} [{revision}] cold request failed: {result['error']}")
    into.first_response_ms.append((result["first_response_ns"] - started) / 1e6)
    into.first_response_cpu_ms.append(result["first_response_cpu_ns"] / 1e6)
    into.import_ms.append(result["import_ns"] / 1e6)
    into.modules = int(result["modules"])


def run_restores(
    subject: Subject, revision: str, env: Mapping[str, str], session_id: str | None, restores: int, into: Measurement
) -> None:
    """One initialized process (a SnapStart init), then `restores` forked copies answering their first request."""
    snapstart_env = {**env, "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start"}
    job = restore_job(subject, revision, session_id, restores)
    result, _, _ = _run_probe(subject, job, snapstart_env, COLD_TIMEOUT_S + restores * 10)
    if result.get("error"):
        raise RunError(f"{subject.label} [{revision}] request after an emulated restore failed: {result['error']}")
    into.restore_ms = [ns / 1e6 for ns in result["restore_ns"]]


def run_warm(subject: Subject, revision: str, env: Mapping[str, str], into: Measurement) -> None:
    job = warm_job(subject, revision)
    result, _, _ = _run_probe(subject, job, env, WARM_TIMEOUT_S)
    if result.get("errors"):
        raise RunError(f"{subject.label} [{revision}]: {result['errors']} warm requests failed: {result['error']}")
    into.warm_us = [d / 1000 for d in result["durations_ns"]]
    into.warm_iterations = len(into.warm_us)
    requests = len(job["setup"]) + job["warmup"] + job["iterations"]
    into.log_bytes_per_request = result["log_bytes"] / requests
    if result.get("dynamodb_calls") is not None:
        into.dynamodb_calls_per_request = result["dynamodb_calls"] / into.warm_iterations
        in_dynamodb = result["dynamodb_ns"]
        into.dynamodb_us_per_request = sum(in_dynamodb) / 1000 / into.warm_iterations
        into.own_us = [(d - x) / 1000 for d, x in zip(result["durations_ns"], in_dynamodb, strict=True)]
        into.dynamodb_operations = {
            name: count / into.warm_iterations for name, count in result["dynamodb_operation_counts"].items()
        }
        setup_calls = result["setup_dynamodb_calls"]
        into.initialize_dynamodb_calls = setup_calls[0] if setup_calls else []


def import_profile(subject: Subject, env: Mapping[str, str], top: int = 15) -> list[dict[str, Any]]:
    """`python -X importtime` of the subject's cold import, summed per top-level package."""
    job = cold_job(subject, MODERN, None)
    _, _, stderr = _run_probe(subject, job, env, COLD_TIMEOUT_S, extra_args=("-X", "importtime"))
    return summarise_importtime(stderr, top)


def summarise_importtime(stderr: str, top: int) -> list[dict[str, Any]]:
    """Self time summed by root package (where the time is really spent), largest first."""
    by_root: dict[str, float] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        parts = line[len("import time:") :].split("|")
        if len(parts) != 3:
            continue
        root = parts[2].strip().split(".")[0]
        by_root[root] = by_root.get(root, 0.0) + int(parts[0])
    ranked = sorted(by_root.items(), key=lambda kv: kv[1], reverse=True)[:top]
    return [{"package": name, "self_ms": round(us / 1000, 1)} for name, us in ranked]


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def python_version(env: Env) -> str:
    out = subprocess.run([str(env.python), "-c", "import sys; print(sys.version.split()[0])"], capture_output=True,
                         text=True, check=True)  # fmt: skip
    return out.stdout.strip()


def current_python() -> str:
    return sys.version.split()[0]
