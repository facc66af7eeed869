"""The GitHub Actions pipeline (.github/workflows/deploy.yml) and its OIDC roles (stacks/github_deploy.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from cfnlint.api import ManualArgs, lint

from stacks.application import build_app
from stacks.github_deploy import STACK_NAME, GitHubContextError, GitHubDeployStack
from stacks.idle_cost import estimate

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "deploy.yml"
DOCS = ROOT / "docs" / "deploy-pipeline.md"
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    return data


def _triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    # YAML 1.1 reads a bare `on` key as the boolean true.
    triggers: dict[str, Any] = workflow["on"] if "on" in workflow else workflow[True]
    return triggers


def _steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = job["steps"]
    return steps


def _assumes_a_role(job: dict[str, Any]) -> bool:
    return any(str(s.get("uses", "")).startswith("aws-actions/configure-aws-credentials@") for s in _steps(job))


def test_triggers_are_pull_requests_and_pushes_to_main(workflow: dict[str, Any]) -> None:
    triggers = _triggers(workflow)
    assert set(triggers) == {"pull_request", "push"}
    assert triggers["push"] == {"branches": ["main"]}


def test_only_the_jobs_that_assume_a_role_may_ask_for_an_oidc_token(workflow: dict[str, Any]) -> None:
    assert workflow["permissions"] == {"contents": "read"}
    jobs = workflow["jobs"]
    assert set(jobs) == {"test", "diff", "deploy"}
    for name, job in jobs.items():
        token = job.get("permissions", {}).get("id-token")
        assert (token == "write") == _assumes_a_role(job), name
        assert "write-all" not in json.dumps(job.get("permissions", {}))
    assert not _assumes_a_role(jobs["test"])
    assert jobs["diff"]["permissions"] == {"contents": "read", "id-token": "write", "pull-requests": "write"}
    assert jobs["deploy"]["permissions"] == {"contents": "read", "id-token": "write"}


def test_no_long_lived_aws_keys(workflow: dict[str, Any]) -> None:
    text = WORKFLOW.read_text(encoding="utf-8")
    assert not re.search(r"AWS_ACCESS_KEY|AWS_SECRET|aws-access-key-id|aws-secret-access-key|AWS_SESSION_TOKEN", text)
    assert "secrets." not in text
    roles = [
        s["with"]["role-to-assume"]
        for job in workflow["jobs"].values()
        for s in _steps(job)
        if "role-to-assume" in s.get("with", {})
    ]
    assert sorted(roles) == ["${{ vars.AWS_DEPLOY_ROLE_ARN }}", "${{ vars.AWS_DIFF_ROLE_ARN }}"]


def test_every_action_is_pinned_to_a_commit(workflow: dict[str, Any]) -> None:
    uses = [s["uses"] for job in workflow["jobs"].values() for s in _steps(job) if "uses" in s]
    assert uses
    unpinned = [u for u in uses if not PINNED.fullmatch(u)]
    assert unpinned == []
    # The release each SHA stands for is named next to it, for the person who updates it.
    for line in WORKFLOW.read_text(encoding="utf-8").splitlines():
        if "uses:" in line:
            assert re.search(r"@[0-9a-f]{40} # v\d+\.\d+\.\d+$", line), line


def test_deploy_runs_only_for_pushes_to_main_after_the_tests(workflow: dict[str, Any]) -> None:
    deploy = workflow["jobs"]["deploy"]
    assert deploy["if"] == "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    assert deploy["needs"] == "test"
    assert deploy["concurrency"] == {"group": "deploy", "cancel-in-progress": False}
    assert [s["run"] for s in _steps(deploy) if "run" in s] == ["make deploy-all"]


def test_diff_runs_on_pull_requests_of_the_repository_and_reaches_the_pull_request(workflow: dict[str, Any]) -> None:
    diff = workflow["jobs"]["diff"]
    assert diff["if"].startswith("github.event_name == 'pull_request' && ")
    assert "github.event.pull_request.head.repo.full_name == github.repository" in diff["if"]
    assert diff["needs"] == "test"
    runs = "\n".join(s["run"] for s in _steps(diff) if "run" in s)
    assert "make diff" in runs
    # Only an explicit `shell: bash` gets -o pipefail, so a failing `make diff | tee` fails the job.
    assert workflow["defaults"] == {"run": {"shell": "bash"}}
    assert "$GITHUB_STEP_SUMMARY" in runs
    assert 'gh pr comment "$PR"' in runs
    test = workflow["jobs"]["test"]
    assert [s["run"] for s in _steps(test) if "run" in s] == ["make test"]


def test_the_make_targets_it_calls_exist(workflow: dict[str, Any]) -> None:
    runs = [s["run"] for job in workflow["jobs"].values() for s in _steps(job) if "run" in s]
    targets = sorted({m for run in runs for m in re.findall(r"\bmake ([\w-]+)", run)})
    assert targets == ["deploy-all", "diff", "test"]
    for target in targets:
        # -n prints the recipe without running it; a missing target exits 2.
        result = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True, check=False)
        assert result.returncode == 0, (target, result.stderr)
    dry = subprocess.run(["make", "-n", "diff", "deploy-all"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "cdk diff --no-change-set 'McpServer-*'" in dry.stdout
    assert "cdk deploy 'McpServer-*' --require-approval never" in dry.stdout


def test_the_docs_name_the_variables_the_workflow_reads(workflow: dict[str, Any]) -> None:
    docs = DOCS.read_text(encoding="utf-8")
    variables = set(re.findall(r"vars\.(\w+)", WORKFLOW.read_text(encoding="utf-8")))
    assert variables == {"AWS_REGION", "AWS_DEPLOY_ROLE_ARN", "AWS_DIFF_ROLE_ARN"}
    for name in variables:
        assert f"gh variable set {name} " in docs


@pytest.fixture(scope="module")
def oidc_template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The optional stack, synthesized with cdk-nag attached (a finding fails synth) and no server stacks."""
    outdir = tmp_path_factory.mktemp("github-deploy")
    app = build_app(ROOT, [], outdir=str(outdir), context={"github_repo": "acme/mcp-tools"})
    template: dict[str, Any] = app.synth().get_stack_by_name(STACK_NAME).template
    report = json.loads((outdir / "validation-report.json").read_text(encoding="utf-8"))
    assert [v for plugin in report["pluginReports"] for v in plugin.get("violations", [])] == []
    return template


def _of_type(template: dict[str, Any], cfn_type: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == cfn_type}


def _policy_of(template: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in _of_type(template, "AWS::IAM::Policy").values()
        if policy["Properties"]["Roles"] == [{"Ref": role_id}]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


@pytest.mark.slow
def test_each_role_trusts_one_repository_and_one_subject(oidc_template: dict[str, Any]) -> None:
    ((provider_id, provider),) = _of_type(oidc_template, "AWS::IAM::OIDCProvider").items()
    assert provider["Properties"]["Url"] == "https://token.actions.githubusercontent.com"
    assert provider["Properties"]["ClientIdList"] == ["sts.amazonaws.com"]
    subjects = {}
    for role_id, role in _of_type(oidc_template, "AWS::IAM::Role").items():
        ((statement,),) = [role["Properties"]["AssumeRolePolicyDocument"]["Statement"]]
        assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert statement["Principal"] == {"Federated": {"Ref": provider_id}}
        assert set(statement["Condition"]) == {"StringEquals"}
        condition = statement["Condition"]["StringEquals"]
        assert condition["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
        assert role["Properties"]["MaxSessionDuration"] == 3600
        assert "ManagedPolicyArns" not in role["Properties"]
        subjects[role_id.split("Role")[0]] = condition["token.actions.githubusercontent.com:sub"]
    assert subjects == {"Deploy": "repo:acme/mcp-tools:ref:refs/heads/main", "Diff": "repo:acme/mcp-tools:pull_request"}


@pytest.mark.slow
def test_the_deploy_role_only_assumes_the_bootstrap_roles_and_the_diff_role_only_reads(
    oidc_template: dict[str, Any],
) -> None:
    roles = {k.split("Role")[0]: k for k in _of_type(oidc_template, "AWS::IAM::Role")}
    deploy = _policy_of(oidc_template, roles["Deploy"])
    assert [s["Action"] for s in deploy] == ["sts:AssumeRole"]
    assumed = json.dumps(deploy[0]["Resource"])
    for kind in ("deploy", "file-publishing", "lookup"):
        assert f":role/cdk-hnb659fds-{kind}-role-" in assumed
    assert len(deploy[0]["Resource"]) == 3

    diff = _policy_of(oidc_template, roles["Diff"])
    actions = sorted(a for s in diff for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]]))
    assert actions == [
        "cloudformation:DescribeStacks",
        "cloudformation:GetTemplate",
        "ssm:GetParameter",
        "sts:AssumeRole",
    ]
    text = json.dumps(diff)
    assert ":role/cdk-hnb659fds-lookup-role-" in text
    assert "deploy-role" not in text
    assert ":stack/McpServer-*/*" in text
    assert oidc_template["Outputs"].keys() == {"DeployRoleArn", "DiffRoleArn"}


@pytest.mark.slow
def test_the_oidc_stack_lints_clean_and_costs_nothing(oidc_template: dict[str, Any]) -> None:
    problems = [
        f"{m.rule.id} {m.message}"
        for m in lint(json.dumps(oidc_template), config=ManualArgs(regions=["us-east-1", "eu-west-1"]))
        if m.rule.id.startswith(("E", "W"))
    ]
    assert problems == []
    assert estimate(oidc_template).usd_month == 0


def test_bad_repository_or_branch_is_refused_with_the_fix(tmp_path: Path) -> None:
    from aws_cdk import App

    with pytest.raises(GitHubContextError, match=r"github_repo 'acme' must be OWNER/REPO, e.g. -c github_repo="):
        GitHubDeployStack(App(outdir=str(tmp_path)), repo="acme")
    with pytest.raises(GitHubContextError, match=r"github_branch '\*' must be one branch name"):
        GitHubDeployStack(App(outdir=str(tmp_path)), repo="acme/tools", branch="*")


def test_a_bad_repository_stops_synth_in_one_line(tmp_path: Path) -> None:
    """What `cdk deploy McpKitGitHubDeploy -c github_repo=acme` prints: the fix, not a traceback."""
    # No server stacks are bundled: the repository is checked before any of them is built.
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps({"github_repo": "acme"}), "CDK_OUTDIR": str(tmp_path / "out")}
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("mcpkit: github_repo 'acme' must be OWNER/REPO")
    assert "Traceback" not in result.stderr
