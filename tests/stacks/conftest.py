"""One synthesized CDK app per test session, shared by every infrastructure test.

The app holds a stack for each server in servers/, for each rendered template of
server_templates/, and for fixture servers that switch on every optional feature, on both fronts
(the HTTP API, and the function URL of `stream_responses`). It is
synthesized once, with cdk-nag attached exactly as app.py does, so a passing session also means
zero unacknowledged nag findings. Lambda zips come from the real bundler and its `.build/` cache.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mcpkit.server_config import SERVER_FILE, ServerFolder, discover_servers

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES_DIR = ROOT / "server_templates"
# Shared with app.py's builds: a warm cache makes the session's bundling a handful of hash checks.
BUILD_DIR = ROOT / ".build"

FULL_OAUTH_TOML = """
description = "Every optional feature switched on"
memory_mb = 1024
timeout_seconds = 20
architecture = "x86_64"
auth = "oauth"
stage = "dev"
allowed_origins = ["https://app.example.com"]
session_ttl_seconds = 3600
log_retention_days = 7
xray = true
reserved_concurrency = 5
snapstart = true
dashboard = true
point_in_time_recovery = false
log_level = "DEBUG"

[throttling]
rate_limit = 10
burst_limit = 20

[custom_domain]
domain_name = "mcp.example.com"
hosted_zone_name = "example.com"
hosted_zone_id = "Z0123456789ABCDEFGHIJ"

[[iam_statements]]
actions = ["s3:GetObject"]
resources = ["arn:aws:s3:::fixture-bucket/docs/*"]

[[iam_statements]]
actions = ["sqs:SendMessage"]
resources = ["arn:aws:sqs:eu-west-1:123456789012:jobs"]

[environment]
FEATURE_FLAG = "on"

[secrets.API_KEY]
secrets_manager = "fixture/api-key"

[secrets.DB_PASSWORD]
ssm_parameter = "/fixture/db-password"

[oauth]
feature_plan = "plus"
mfa = "required"
self_sign_up = true
required_group = "mcp-users"

[alarms]
topic_arn = "arn:aws:sns:eu-west-1:123456789012:alerts"
p99_latency_ms = 3000
error_threshold = 2
"""

DEFAULT_OAUTH_TOML = """
auth = "oauth"

[custom_domain]
domain_name = "tools.example.org"
certificate_arn = "arn:aws:acm:eu-west-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
"""

# The streaming front (a function URL): with defaults, with OAuth, and with everything it allows switched on.
STREAM_TOML = "stream_responses = true\n"
STREAM_OAUTH_TOML = 'stream_responses = true\nauth = "oauth"\n'
STREAM_FULL_TOML = """
stream_responses = true
auth = "oauth"
stage = "dev"
timeout_seconds = 900
memory_mb = 1024
allowed_origins = ["https://app.example.com"]
reserved_concurrency = 10
dashboard = true
log_retention_days = 14

[oauth]
required_group = "mcp-users"

[alarms]
topic_arn = "arn:aws:sns:eu-west-1:123456789012:alerts"
p99_latency_ms = 20000
"""
STREAM_FIXTURES = {
    "fixture-stream": STREAM_TOML,
    "fixture-stream-oauth": STREAM_OAUTH_TOML,
    "fixture-stream-full": STREAM_FULL_TOML,
}

FIXTURE_SERVER_PY = '''"""A fixture server for the infrastructure tests."""

from mcp.server.mcpserver import MCPServer

mcp = MCPServer("fixture")


@mcp.tool()
def ping() -> str:
    """Answer pong."""
    return "pong"
'''


@dataclass(frozen=True)
class Synth:
    root: Path
    outdir: Path
    servers: dict[str, ServerFolder]
    seconds: float

    def template(self, stack_name: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.outdir / f"{stack_name}.template.json").read_text(encoding="utf-8"))
        return data


def _link(root: Path, name: str) -> None:
    (root / name).symlink_to(ROOT / name)


def template_folders() -> list[Path]:
    if not TEMPLATES_DIR.is_dir():
        return []
    return sorted(p for p in TEMPLATES_DIR.iterdir() if (p / SERVER_FILE).is_file())


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Synth:
    """The synthesized kit; with pytest-xdist the first worker synthesizes and the others reuse it."""
    base = tmp_path_factory.getbasetemp()
    shared = base if worker_id == "master" else base.parent
    root = shared / "stacks-kit"
    with (shared / "stacks-kit.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            done = root / "synthesized.json"
            if not done.is_file():
                seconds = _synthesize(root)
                done.write_text(json.dumps({"seconds": seconds}), encoding="utf-8")
            seconds = json.loads(done.read_text(encoding="utf-8"))["seconds"]
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    servers = {s.name: s for s in discover_servers(root / "servers")}
    return Synth(root=root, outdir=root / "cdk.out", servers=servers, seconds=seconds)


def _synthesize(root: Path) -> float:
    """A kit checkout in `root`: the real handlers and requirements, the real, template and fixture servers."""
    from stacks.application import build_app

    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    for name in ("handlers", "requirements.txt", "requirements.lock", "cdk.json"):
        _link(root, name)
    servers_dir = root / "servers"
    servers_dir.mkdir()
    for real in discover_servers(ROOT / "servers"):
        (servers_dir / real.name).symlink_to(real.path.resolve(), target_is_directory=True)
    fixtures = {"fixture-full": FULL_OAUTH_TOML, "fixture-oauth": DEFAULT_OAUTH_TOML, **STREAM_FIXTURES}
    for name, toml in fixtures.items():
        (servers_dir / name).mkdir()
        (servers_dir / name / SERVER_FILE).write_text(FIXTURE_SERVER_PY, encoding="utf-8")
        (servers_dir / name / "mcpkit.toml").write_text(toml, encoding="utf-8")
    if template_folders():
        from mcpkit.templates import render

        for template in template_folders():
            render(template.name, f"tpl-{template.name}", servers_dir / f"tpl-{template.name}")

    # discover_servers resolves nothing, so the symlinked folders keep their servers/<name> paths.
    servers = discover_servers(servers_dir)
    started = time.monotonic()
    build_app(root, servers, outdir=str(root / "cdk.out"), build_dir=BUILD_DIR).synth()
    seconds = time.monotonic() - started
    print(f"\nsynthesized {len(servers)} stacks in {seconds:.1f} s", file=sys.stderr)
    return seconds
