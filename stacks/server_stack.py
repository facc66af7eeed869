"""The stack for one server folder: its validated `mcpkit.toml` turned into an `McpServer`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import CfnOutput, Duration, Stack, Tags
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_sns as sns

from stacks.bundling import BundleSpec, build_bundle
from stacks.constructs.mcp_server import CustomDomainProps, McpServer, SecretReferences

if TYPE_CHECKING:
    from pathlib import Path

    from constructs import Construct

    from mcpkit.server_config import ServerFolder


def connector_steps(name: str, url: str) -> str:
    return (
        f"Claude: Settings > Connectors > Add custom connector > paste {url} . "
        f"Claude Code: claude mcp add --transport http {name} {url}"
    )


class ServerStack(Stack):
    """`McpServer-<name>`: everything one MCP server needs, configured only by its folder."""

    def __init__(
        self,
        scope: Construct,
        *,
        server: ServerFolder,
        root: Path,
        code: lambda_.Code | None = None,
        build_dir: Path | None = None,
    ) -> None:
        cfg = server.config
        super().__init__(
            scope,
            server.stack_name,
            description=f"MCP server {server.name}" + (f": {cfg.description}" if cfg.description else ""),
        )
        Tags.of(self).add("mcpkit:server", server.name)
        Tags.of(self).add("mcpkit:stage", cfg.stage)

        if code is None:
            bundle = build_bundle(
                BundleSpec(root=root, server_dir=server.path, architecture=cfg.architecture), cache_dir=build_dir
            )
            code = lambda_.Code.from_asset(str(bundle.path))

        self.server = McpServer(
            self,
            "Server",
            code=code,
            runtime_environment=lambda table_name: server.runtime_environment(root=root, table_name=table_name),
            service_name=server.name,
            description=cfg.description,
            auth=cfg.auth,
            architecture=cfg.architecture,
            memory_mb=cfg.memory_mb,
            timeout=Duration.seconds(cfg.timeout_seconds),
            snapstart=cfg.snapstart,
            xray=cfg.xray,
            reserved_concurrency=cfg.reserved_concurrency,
            log_level=cfg.log_level,
            log_retention_days=cfg.log_retention_days,
            allowed_origins=cfg.allowed_origins,
            throttle_rate_limit=cfg.throttling.rate_limit,
            throttle_burst_limit=cfg.throttling.burst_limit,
            retain_data=cfg.stage == "prod",
            custom_domain=self._custom_domain(server),
            extra_statements=[
                iam.PolicyStatement(actions=list(s.actions), resources=list(s.resources)) for s in cfg.iam_statements
            ],
            secrets=SecretReferences(
                ssm_parameters=[r.ssm_parameter for r in cfg.secrets.values() if r.ssm_parameter],
                secrets_manager=[r.secrets_manager for r in cfg.secrets.values() if r.secrets_manager],
            ),
            oauth_feature_plan=cfg.oauth.feature_plan,
            oauth_mfa=cfg.oauth.mfa,
            oauth_self_sign_up=cfg.oauth.self_sign_up,
            oauth_required_group=cfg.oauth.required_group,
            point_in_time_recovery=cfg.point_in_time_recovery,
            dashboard=cfg.dashboard,
            alarms=cfg.alarms.enabled,
            alarm_topic=(
                sns.Topic.from_topic_arn(self, "AlarmTopic", cfg.alarms.topic_arn) if cfg.alarms.topic_arn else None
            ),
            alarm_error_threshold=cfg.alarms.error_threshold,
            alarm_p99_latency=Duration.millis(cfg.alarms.p99_latency_ms),
            stream_responses=cfg.stream_responses,
        )

        CfnOutput(self, "McpServerUrl", value=self.server.mcp_url, description="The MCP endpoint (Streamable HTTP)")
        CfnOutput(
            self,
            "ConnectorSteps",
            value=connector_steps(server.name, self.server.mcp_url),
            description="How to add this server to Claude and Claude Code",
        )
        CfnOutput(self, "TableName", value=self.server.table.table_name, description="Sessions, clients, tokens")
        CfnOutput(self, "FunctionName", value=self.server.function.function_name)
        if self.server.observability.dashboard is not None:
            CfnOutput(self, "DashboardName", value=self.server.observability.dashboard.dashboard_name)
        if self.server.oauth is not None:
            CfnOutput(
                self,
                "UserPoolId",
                value=self.server.oauth.user_pool.user_pool_id,
                description=f"Invite users: mcpkit users add EMAIL --server {server.name}",
            )
            if self.server.oauth.required_group is not None:
                CfnOutput(
                    self,
                    "RequiredGroup",
                    value=self.server.oauth.required_group.ref,
                    description="Only members of this Cognito group get tokens",
                )
            CfnOutput(self, "SignInDomain", value=self.server.oauth.domain.base_url())
        if cfg.custom_domain is not None and cfg.custom_domain.hosted_zone_id is None:
            CfnOutput(
                self,
                "CustomDomainTarget",
                value=self.server.domain_name.regional_domain_name,
                description=f"Point a CNAME for {cfg.custom_domain.domain_name} at this name",
            )

    def _custom_domain(self, server: ServerFolder) -> CustomDomainProps | None:
        domain = server.config.custom_domain
        if domain is None:
            return None
        zone = (
            route53.HostedZone.from_hosted_zone_attributes(
                self, "HostedZone", hosted_zone_id=domain.hosted_zone_id, zone_name=domain.hosted_zone_name
            )
            if domain.hosted_zone_id is not None and domain.hosted_zone_name is not None
            else None
        )
        certificate = (
            acm.Certificate.from_certificate_arn(self, "ExistingCertificate", domain.certificate_arn)
            if domain.certificate_arn is not None
            else None
        )
        return CustomDomainProps(domain_name=domain.domain_name, certificate=certificate, hosted_zone=zone)
