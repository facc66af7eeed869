"""The CDK app: one `McpServer-<name>` stack per server folder, checked by cdk-nag at synth."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks

from stacks.github_deploy import DEFAULT_QUALIFIER, GitHubDeployStack
from stacks.server_stack import ServerStack

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from mcpkit.server_config import ServerFolder


def cdk_json_context(root: Path) -> dict[str, Any]:
    """The feature flags of cdk.json, so `python app.py` and the tests synthesize what `cdk` would."""
    path = root / "cdk.json"
    if not path.is_file():
        return {}
    context: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")).get("context", {})
    return context


def build_app(
    root: Path,
    servers: Iterable[ServerFolder],
    *,
    outdir: str | None = None,
    build_dir: Path | None = None,
    nag: bool = True,
    context: dict[str, Any] | None = None,
) -> App:
    """`build_dir` holds the cached Lambda zips (default `<root>/.build`).

    With context `github_repo=OWNER/REPO` (`cdk deploy McpKitGitHubDeploy -c github_repo=...`) the app
    also holds the deploy pipeline's OIDC roles (stacks/github_deploy.py).
    """
    app = App(context={**cdk_json_context(root), **(context or {})}, outdir=outdir)
    # First: a bad repository name is refused before any Lambda zip is built.
    repo = app.node.try_get_context("github_repo")
    if repo is not None:
        GitHubDeployStack(
            app,
            repo=str(repo),
            branch=str(app.node.try_get_context("github_branch") or "main"),
            qualifier=str(app.node.try_get_context("cdk_qualifier") or DEFAULT_QUALIFIER),
            existing_provider_arn=app.node.try_get_context("github_oidc_provider_arn"),
        )
    for server in servers:
        ServerStack(app, server=server, root=root, build_dir=build_dir)
    if nag:
        # Every AwsSolutions finding fails synth unless acknowledged next to the construct, with a reason.
        Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app
