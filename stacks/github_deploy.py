"""`McpKitGitHubDeploy`: what `.github/workflows/deploy.yml` needs in the AWS account, and nothing more.

Optional, deployed once per account and region by hand (docs/deploy-pipeline.md):
`cdk deploy McpKitGitHubDeploy -c github_repo=OWNER/REPO`. It holds GitHub's OIDC provider and two
roles that only GitHub Actions runs of that repository can assume, so the workflow needs no stored
AWS keys:
- the deploy role, for runs on the deploy branch (`main`), may only assume the CDK bootstrap roles,
  which do the deploying (CloudFormation's execution role does the real work);
- the diff role, for pull requests of the repository itself, may only read: the CDK lookup role and
  the `McpServer-*` stacks' templates, for `cdk diff --no-change-set`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

from aws_cdk import Acknowledgment, Aws, CfnOutput, Duration, Stack, Validations
from aws_cdk import aws_iam as iam

if TYPE_CHECKING:
    from constructs import Construct

STACK_NAME: Final = "McpKitGitHubDeploy"
GITHUB_ISSUER: Final = "token.actions.githubusercontent.com"
AUDIENCE: Final = "sts.amazonaws.com"
# `cdk bootstrap`'s default qualifier; a custom one goes in `-c cdk_qualifier=...`.
DEFAULT_QUALIFIER: Final = "hnb659fds"
_REPO: Final = re.compile(r"^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$")
_BRANCH: Final = re.compile(r"^[A-Za-z0-9._/-]+$")


class GitHubContextError(ValueError):
    """A `-c github_...` value that cannot be used; the message says which and how to fix it."""


def deploy_subject(repo: str, branch: str) -> str:
    return f"repo:{repo}:ref:refs/heads/{branch}"


def pull_request_subject(repo: str) -> str:
    return f"repo:{repo}:pull_request"


class GitHubDeployStack(Stack):
    def __init__(
        self,
        scope: Construct,
        *,
        repo: str,
        branch: str = "main",
        qualifier: str = DEFAULT_QUALIFIER,
        existing_provider_arn: str | None = None,
    ) -> None:
        if not _REPO.fullmatch(repo):
            raise GitHubContextError(f"github_repo {repo!r} must be OWNER/REPO, e.g. -c github_repo=acme/mcp-tools")
        if not _BRANCH.fullmatch(branch) or "*" in branch:
            raise GitHubContextError(f"github_branch {branch!r} must be one branch name, e.g. main (no wildcards)")
        super().__init__(
            scope, STACK_NAME, description=f"GitHub Actions OIDC roles for {repo}: deploy from {branch}, diff on PRs"
        )
        # An account holds one provider per issuer: reuse it when another stack or a person made it already.
        provider: iam.IOidcProvider = (
            iam.OidcProviderNative.from_oidc_provider_arn(self, "GitHub", existing_provider_arn)
            if existing_provider_arn
            else iam.OidcProviderNative(self, "GitHub", url=f"https://{GITHUB_ISSUER}", client_ids=[AUDIENCE])
        )

        def trusted(subject: str) -> iam.WebIdentityPrincipal:
            # StringEquals, never StringLike: one repository, one branch (or its pull requests), nothing else.
            return iam.WebIdentityPrincipal(
                provider.oidc_provider_arn,
                conditions={
                    "StringEquals": {f"{GITHUB_ISSUER}:aud": AUDIENCE, f"{GITHUB_ISSUER}:sub": subject},
                },
            )

        def bootstrap_role(kind: str) -> str:
            name = f"cdk-{qualifier}-{kind}-role-{Aws.ACCOUNT_ID}-{Aws.REGION}"
            return f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role/{name}"

        self.deploy_role = iam.Role(
            self,
            "DeployRole",
            assumed_by=trusted(deploy_subject(repo, branch)),
            description=f"GitHub Actions, {repo} on {branch}: cdk deploy through the bootstrap roles",
            max_session_duration=Duration.hours(1),
        )
        self.deploy_role.add_to_policy(
            iam.PolicyStatement(
                actions=["sts:AssumeRole"],
                resources=[bootstrap_role(kind) for kind in ("deploy", "file-publishing", "lookup")],
            )
        )

        self.diff_role = iam.Role(
            self,
            "DiffRole",
            assumed_by=trusted(pull_request_subject(repo)),
            description=f"GitHub Actions, pull requests of {repo}: cdk diff, read only",
            max_session_duration=Duration.hours(1),
        )
        self.diff_role.add_to_policy(
            iam.PolicyStatement(actions=["sts:AssumeRole"], resources=[bootstrap_role("lookup")])
        )
        server_stacks = f"arn:{Aws.PARTITION}:cloudformation:{Aws.REGION}:{Aws.ACCOUNT_ID}:stack/McpServer-*/*"
        self.diff_role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudformation:DescribeStacks", "cloudformation:GetTemplate"], resources=[server_stacks]
            )
        )
        self.diff_role.add_to_policy(
            iam.PolicyStatement(
                actions=["ssm:GetParameter"],
                resources=[
                    f"arn:{Aws.PARTITION}:ssm:{Aws.REGION}:{Aws.ACCOUNT_ID}:parameter/cdk-bootstrap/{qualifier}/version"
                ],
            )
        )
        Validations.of(self.diff_role).acknowledge(
            Acknowledgment(
                # cdk-nag names the resource as CloudFormation writes it, pseudo parameters in <>.
                id="AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:cloudformation:<AWS::Region>:"
                "<AWS::AccountId>:stack/McpServer-*/*]",
                reason="A stack ARN ends in a random id, and every McpServer-<name> stack is to be diffed; "
                "the actions only read.",
            )
        )

        CfnOutput(
            self,
            "DeployRoleArn",
            value=self.deploy_role.role_arn,
            description="Repository variable AWS_DEPLOY_ROLE_ARN",
        )
        CfnOutput(
            self, "DiffRoleArn", value=self.diff_role.role_arn, description="Repository variable AWS_DIFF_ROLE_ARN"
        )
