"""`python -m bench` (`make bench`): measure the kit against its peers, print, record, optionally check.

Order of work: virtualenvs and Lambda packages (reused when unchanged) → an embedded moto server
for DynamoDB → cold runs, interleaved round-robin over the subjects so drift on the machine hits
all of them alike → warm runs one subject at a time → import profile → table, JSON, README.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from bench import events, report
from bench.envs import (
    ROOT,
    Env,
    EnvError,
    check_pins_match_kit,
    ensure_envs,
    host_architecture,
    lambda_package,
    unpacked,
)
from bench.runner import (
    LEGACY,
    SUBJECTS_DIR,
    Measurement,
    RunError,
    Subject,
    import_profile,
    run_cold,
    run_restores,
    run_warm,
    subject_environment,
)
from mcpkit.messages import MODERN
from stacks.bundling import BundlingError

TABLE: Final = "mcpkit-bench"
AWSLABS_TABLE: Final = "mcpkit-bench-awslabs-sessions"
KIT_SERVERS: Final = {"example": ROOT / "servers" / "example", "minimal": ROOT / "server_templates" / "minimal"}
FLOOR: Final = Env("floor")  # boto3 only: also the kit's interpreter, as the Lambda runtime provides boto3
NAIVE: Final = Env("naive")
AWSLABS: Final = Env("awslabs")
RUNMCP: Final = Env("runmcp")
KIT_TABLE_CLIENT: Final = "handlers.lambda_handler:lambda_app.runtime.table.client"
# The key the stack draws at deploy, shared by the kit's instances and the bench's "other instance".
SESSION_KEY: Final = "bench-session-key-drawn-by-the-stack-at-deploy"
# Beyond what the issue asks for, and ~30 s of moto calls: run with `--only awslabs-dynamodb`.
OPTIONAL_PEERS: Final = frozenset({"awslabs-dynamodb"})


STARTED: Final = time.monotonic()


def log(message: str) -> None:
    print(f"bench [{time.monotonic() - STARTED:5.0f} s]: {message}", file=sys.stderr, flush=True)


def kit_subject(name: str, server_dir: Path, task_dir: Path, warm_iterations: int) -> Subject:
    from mcpkit.server_config import load_server

    folder = load_server(server_dir)
    environ = folder.runtime_environment(root=ROOT, table_name=TABLE)
    # What the stack adds for a function with default settings (stacks/constructs/mcp_server.py).
    environ.update(
        {"POWERTOOLS_LOG_LEVEL": "INFO", "POWERTOOLS_TRACE_DISABLED": "true", "MCPKIT_SESSION_KEY": SESSION_KEY}
    )
    tool, arguments, expect = (
        ("add", {"a": 2, "b": 40}, "42") if name == "example" else ("text_stats", {"text": "forty two"}, '"words"')
    )
    return Subject(
        key=f"kit-{name}",
        label=f"mcpkit ({server_dir.relative_to(ROOT).as_posix()})",
        env=FLOOR,
        handler="handlers.lambda_handler:handler",
        sys_path=(str(task_dir),),
        environ=environ,
        tool=tool,
        arguments=arguments,
        expect=expect,
        # The template changes only the server module, not the handler's path through each revision,
        # so it gets one handshake revision and 2026-07-28 (that keeps the run within 5 minutes).
        revisions=events.REVISIONS if name == "example" else ("2025-11-25", MODERN),
        cold_revisions=("2025-11-25", MODERN) if name == "example" else (MODERN,),
        sessions=True,
        dynamodb_client=KIT_TABLE_CLIENT,
        warm_iterations=warm_iterations,
        kit=True,
    )


def reading_subject(example: Subject) -> Subject:
    """The example server with `session_cache_seconds = 0`: what a session check costs when it reads.

    Informational, not a target row: it shows the read that every instance pays once per trust
    window (and on every request with this setting), on one handshake revision: warm, and cold as
    the first request on a fresh instance of a session opened longer than the window ago.
    """
    return dataclasses.replace(
        example,
        key="kit-example-read",
        label=f"{example.label}, session_cache_seconds = 0 (a DynamoDB read per request)",
        environ={**example.environ, "MCPKIT_SESSION_CACHE_SECONDS": "0"},
        revisions=("2025-11-25",),
        cold_revisions=("2025-11-25",),
        # Each request waits for moto (several ms); a quarter of the loop settles the figure.
        warm_iterations=max(1, example.warm_iterations // 4),
        kit=False,
    )


def streaming_subject(example: Subject) -> Subject:
    """The example server with `stream_responses = true`: the function behind a streaming function URL.

    Its own rows, beside the buffered ones, so the switch's price is a number: the streaming entry
    (handlers.lambda_handler.stream_handler, which handlers/stream_runtime.py calls per invocation)
    on one handshake revision and 2026-07-28, priced without the HTTP API's per-request charge. No
    SnapStart rows: the switch refuses it. Informational, like the peers: the targets are the
    buffered front's.
    """
    return dataclasses.replace(
        example,
        key="kit-example-stream",
        label=f"{example.label}, stream_responses = true (function URL)",
        handler="stream_subject:handler",
        sys_path=(*example.sys_path, str(SUBJECTS_DIR)),
        environ={**example.environ, "MCPKIT_STREAM_RESPONSES": "true"},
        revisions=("2025-11-25", MODERN),
        cold_revisions=("2025-11-25", MODERN),
        max_restores=0,
        kit=False,
        front="function-url",
    )


def peer_subjects(warm_iterations: int) -> list[Subject]:
    def peer(key: str, label: str, env: Env, handler: str, **rest: Any) -> Subject:
        """A peer from bench/subjects/, answering the same `add` 2 + 40 on the same warm budget."""
        shared: dict[str, Any] = {
            "sys_path": (str(SUBJECTS_DIR),),
            "environ": {},
            "tool": "add",
            "arguments": {"a": 2, "b": 40},
            "expect": "42",
            "revisions": (LEGACY,),
            "cold_revisions": (LEGACY,),
            "warm_iterations": warm_iterations,
        }
        return Subject(key=key, label=label, env=env, handler=f"{handler}:handler", **{**shared, **rest})

    return [
        peer(
            "naive",
            "naive: SDK MCPServer + Mangum, app per call",
            NAIVE,
            "naive_handler",
            # Warm: the three handshake revisions take one path through the stateless SDK (the version
            # header only seeds the request context), so one of them is timed and stands for all three
            # (bench/README.md, "The figures"); the no-header one, which the peers are compared with too.
            revisions=(events.HANDSHAKE_REVISIONS[0], MODERN),
            cold_revisions=("2025-11-25", MODERN),
        ),
        peer("awslabs", "awslabs-mcp-lambda-handler (no-op sessions)", AWSLABS, "awslabs_handler"),
        peer(
            "awslabs-dynamodb",
            "awslabs-mcp-lambda-handler (DynamoDB sessions)",
            AWSLABS,
            "awslabs_handler",
            environ={"MCPBENCH_AWSLABS_TABLE": AWSLABS_TABLE},
            cold_revisions=(),
            sessions=True,
            dynamodb_client="awslabs_handler:mcp.session_store.table.meta.client",
        ),
        peer(
            "runmcp",
            "run-mcp-servers-with-aws-lambda (stdio child per request)",
            RUNMCP,
            "runmcp_handler",
            environ={"LOG_LEVEL": "WARNING"},
            # Each request starts a Python child process (~1 s), so 2,000 would take half an hour.
            warm_iterations=min(warm_iterations, 10),
            warm_note="10 requests: each starts the stdio server as a child process",
            max_restores=3,  # the same child process per request: three settle it
        ),
        peer("floor", "floor: import boto3 + json, return a constant", FLOOR, "floor_handler"),
    ]


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def create_awslabs_table(endpoint: str) -> None:
    from mcpkit.local_aws import emulator_dynamodb

    client = emulator_dynamodb(endpoint)
    if AWSLABS_TABLE not in client.list_tables()["TableNames"]:
        client.create_table(
            TableName=AWSLABS_TABLE,
            KeySchema=[{"AttributeName": "session_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "session_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )


def session_for(subject: Subject, revision: str) -> str | None:
    """For the kit on a handshake revision, a session opened elsewhere for the first request to carry."""
    kit = subject.dynamodb_client == KIT_TABLE_CLIENT
    return open_kit_session(revision) if kit and revision in events.HANDSHAKE_REVISIONS else None


def open_kit_session(version: str) -> str:
    """A live session in the table, opened just now as `initialize` on another instance would have."""
    from handlers.sessions import SessionStore
    from handlers.store import Table

    return SessionStore(Table(TABLE), ttl_seconds=3600, key=SESSION_KEY.encode()).create(version).id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=10, help="cold runs per subject and revision (default 10)")
    parser.add_argument("--warm", type=int, default=2000, help="timed warm requests per revision (default 2000)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--no-readme", action="store_true", help="do not rewrite the table in bench/README.md")
    parser.add_argument(
        "--only",
        nargs="*",
        default=None,
        help=f"subject keys to run (default: all but {', '.join(sorted(OPTIONAL_PEERS))}; kit and naive always run)",
    )
    args = parser.parse_args(argv)
    started = time.monotonic()

    from mcpkit.local_aws import EmbeddedAws, endpoint_environment, ensure_table

    check_pins_match_kit(NAIVE, ["mcp", "mangum", "pydantic"])
    peers = peer_subjects(args.warm)
    if args.only is not None:
        peers = [p for p in peers if p.key in {"naive", *args.only}]
    else:
        peers = [p for p in peers if p.key not in OPTIONAL_PEERS]
    ensure_envs({FLOOR, *(p.env for p in peers)}, log)

    log("building the Lambda packages with stacks/bundling.py (cached while inputs are unchanged)")
    architecture = host_architecture()
    subjects: list[Subject] = []
    zip_mb: dict[str, float] = {}
    missing: list[str] = []
    for name, server_dir in KIT_SERVERS.items():
        if not (server_dir / "server.py").is_file():
            missing.append(str(server_dir.relative_to(ROOT)))
            continue
        # The deployed package (arm64, as the stack builds it) is what zip_mb reports.
        zip_mb[name] = lambda_package(server_dir, "arm64", cache_dir=ROOT / ".build").zipped_bytes / 1e6
        runnable = lambda_package(server_dir, architecture, cache_dir=ROOT / ".build")
        subjects.append(kit_subject(name, server_dir, unpacked(runnable), args.warm))
    if subjects and subjects[0].key == "kit-example":
        subjects.append(reading_subject(subjects[0]))
        subjects.append(streaming_subject(subjects[0]))
    subjects.extend(peers)

    results: dict[tuple[str, str], Measurement] = {}
    for subject in subjects:
        for revision in sorted({*subject.revisions, *subject.cold_revisions}):
            results[(subject.key, revision)] = Measurement(subject.key, subject.label, revision)

    with EmbeddedAws() as aws:
        ensure_table(TABLE, aws.endpoint)
        create_awslabs_table(aws.endpoint)
        aws_env = endpoint_environment(aws.endpoint)
        os.environ.update(aws_env)
        environments = {s.key: subject_environment(s, aws_env) for s in subjects}

        cold = [(s, r) for s in subjects for r in s.cold_revisions]
        log(f"cold: {len(cold)} scenarios x {args.runs} fresh processes (+1 unmeasured round)")
        for round_ in range(args.runs + 1):
            warmed: set[str] = set()
            for subject, revision in cold:
                if not round_ and subject.key in warmed:
                    continue  # one unmeasured process per subject fills the caches
                warmed.add(subject.key)
                session = session_for(subject, revision)
                # Round 0 fills the page cache and bytecode caches (Lambda's disk is warm too) and is dropped.
                into = results[(subject.key, revision)] if round_ else Measurement(subject.key, subject.label, revision)
                run_cold(subject, revision, environments[subject.key], session, into)

        restorable = sum(1 for s, _ in cold if s.max_restores != 0)
        log(f"SnapStart restore, emulated: {restorable} initialized processes x {args.runs} forked copies")
        for subject, revision in cold:
            session = session_for(subject, revision)
            restores = args.runs if subject.max_restores is None else min(args.runs, subject.max_restores)
            if not restores:
                continue
            run_restores(
                subject, revision, environments[subject.key], session, restores, results[(subject.key, revision)]
            )

        for subject in subjects:
            for revision in subject.revisions:
                log(f"warm: {subject.label} [{revision}] x {subject.warm_iterations}")
                run_warm(subject, revision, environments[subject.key], results[(subject.key, revision)])

        log("import profile of the kit (python -X importtime)")
        profile = import_profile(subjects[0], environments[subjects[0].key]) if subjects[0].kit else []

    summary = report.summarise(
        results=list(results.values()),
        subjects=subjects,
        zip_mb=zip_mb,
        import_profile=profile,
        machine=machine(),
        missing=missing,
        elapsed_s=time.monotonic() - started,
    )
    report.print_summary(summary)
    report.write_json(summary, ROOT / "bench" / "results.json")
    if not args.no_readme:
        report.update_readme(summary, ROOT / "bench" / "README.md")
        report.update_cost_table(summary, ROOT / "README.md")
    failed = [t for t in summary["targets"] if not t["pass"] and not t["informational"]]
    if args.check and failed:
        log(f"{len(failed)} target(s) missed")
        return 1
    return 0


def run(argv: list[str] | None = None) -> int:
    """`main` with the failures a person can act on reported as one line each, not a traceback."""
    try:
        return main(argv)
    except (RunError, EnvError, BundlingError) as exc:
        log(str(exc))
        return 2
