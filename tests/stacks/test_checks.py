"""Whole-template checks: cdk-nag, cfn-lint, dependency cycles, and config errors at synth."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest
from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from cfnlint.api import ManualArgs, lint

from stacks.application import build_app
from stacks.constructs import McpServer
from tests.stacks.conftest import ROOT

if TYPE_CHECKING:
    from pathlib import Path

    from tests.stacks.conftest import Synth

pytestmark = pytest.mark.slow

# Regions the templates are linted for: the main commercial ones. SnapStart (E2530) and Cognito (E3006)
# are missing in a few partitions/regions (China, GovCloud, the newest regions); deploy there with
# `snapstart = false` and without `auth = "oauth"`.
LINT_REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-northeast-1", "ap-southeast-2"]
# W3005: CDK writes DependsOn next to a GetAtt of the same resource (the function's role); harmless.
# I*: informational (Fn::Sub style, architecture metadata).
ACCEPTED_WARNINGS = {"W3005"}


def test_cdk_nag_has_no_unacknowledged_findings(synth: Synth) -> None:
    """Synth already raised on any nag error; warnings and annotations must be acknowledged too."""
    report = json.loads((synth.outdir / "validation-report.json").read_text(encoding="utf-8"))
    violations = [v for plugin in report["pluginReports"] for v in plugin.get("violations", [])]
    assert violations == []


def test_cdk_nag_is_attached_and_fails_synth(tmp_path: Path) -> None:
    """An unacknowledged wildcard, added next to a real McpServer, must stop synth."""
    app = build_app(ROOT, [], outdir=str(tmp_path / "out"))
    stack = Stack(app, "NagProbe")
    server = McpServer(
        stack,
        "Server",
        code=lambda_.Code.from_inline("def handler(event, context):\n    return {}\n"),
        runtime_environment=lambda table: {"MCPKIT_TABLE_NAME": table},
        service_name="probe",
    )
    server.role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=["*"]))
    with pytest.raises(RuntimeError, match=r"AwsSolutions-IAM5\[Resource::\*\]"):
        app.synth()


def test_cfn_lint_finds_no_errors(synth: Synth) -> None:
    config = ManualArgs(regions=LINT_REGIONS)
    problems: list[str] = []
    for template in sorted(synth.outdir.glob("*.template.json")):
        for match in lint(template.read_text(encoding="utf-8"), config=config):
            rule = match.rule.id
            if rule.startswith("E") or (rule.startswith("W") and rule not in ACCEPTED_WARNINGS):
                problems.append(f"{template.name}: {rule} {match.message}")
    assert problems == []


def _references(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                found.add(inner[0] if isinstance(inner, list) else str(inner).split(".")[0])
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                found |= {part.split("}")[0].split(".")[0] for part in str(text).split("${")[1:]}
            found |= _references(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= _references(inner)
    return found


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A dependency cycle in `edges` (node -> nodes it needs), or None."""
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> list[str] | None:
        if node in done:
            return None
        if node in visiting:
            return [*visiting[visiting.index(node) :], node]
        visiting.append(node)
        for target in sorted(edges[node]):
            cycle = visit(target)
            if cycle:
                return cycle
        visiting.pop()
        done.add(node)
        return None

    for name in sorted(edges):
        cycle = visit(name)
        if cycle:
            return cycle
    return None


def test_find_cycle_detects_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_templates_have_no_dependency_cycle(synth: Synth) -> None:
    """API -> integration -> alias -> function -> Cognito client -> API endpoint would be a cycle."""
    for template_path in sorted(synth.outdir.glob("*.template.json")):
        resources: dict[str, Any] = json.loads(template_path.read_text(encoding="utf-8"))["Resources"]
        edges = {
            name: (_references(body.get("Properties", {})) | set(_as_list(body.get("DependsOn", [])))) & set(resources)
            for name, body in resources.items()
        }
        assert find_cycle(edges) is None, template_path.name


def _as_list(value: Any) -> list[str]:
    return value if isinstance(value, list) else [value]


def test_bad_config_fails_synth_naming_file_and_field(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text((ROOT / "app.py").read_text(encoding="utf-8"), encoding="utf-8")
    for name in ("cdk.json", "requirements.txt", "handlers"):
        (tmp_path / name).symlink_to(ROOT / name)
    bad = tmp_path / "servers" / "broken"
    bad.mkdir(parents=True)
    (bad / "server.py").write_text("mcp = None\n", encoding="utf-8")
    (bad / "mcpkit.toml").write_text("memory_mb = 64\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CDK_OUTDIR": str(tmp_path / "out")}
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 1
    assert str(bad / "mcpkit.toml") in result.stderr
    assert "memory_mb" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
