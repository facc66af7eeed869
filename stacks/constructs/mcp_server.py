"""`McpServer`: a remote MCP server on Lambda behind an HTTP API, with its table and (optionally) OAuth.

With `stream_responses=True` the front is a Lambda function URL in RESPONSE_STREAM mode instead
(`_add_function_url`): see "Streaming front" in docs/infrastructure.md for what that changes.

Why an HTTP API (API Gateway v2) with only the `$default` stage, and not a REST API:
- $1.00 instead of $3.50 per million requests (first pricing tier);
- no stage prefix in the URL, so the RFC 9728 / RFC 8414 well-known documents are at the host
  root, where MCP clients probe for them;
- the runtime answers JSON, not SSE (stateless Streamable HTTP), so REST-only response streaming
  is not needed.
What it costs: HTTP APIs have no gateway responses, and API Gateway renames a `WWW-Authenticate`
header returned by a Lambda proxy integration. The function therefore repeats the challenge under
`mcpkit.gateway_contract.CHALLENGE_HEADER` and the integration maps it back (see `_map_challenge`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

import jsii
from aws_cdk import (
    Acknowledgment,
    ArnFormat,
    Duration,
    IStableStringProducer,
    Lazy,
    RemovalPolicy,
    Stack,
    Validations,
)
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_route53_targets as targets
from aws_cdk import aws_sns as sns
from aws_cdk import custom_resources as cr
from constructs import Construct

from mcpkit import gateway_contract as contract
from stacks.constructs import oauth
from stacks.constructs.oauth import McpOAuth
from stacks.constructs.observability import FunctionUrlMetrics, HttpApiMetrics, McpObservability

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

HANDLER: Final = "handlers.lambda_handler.handler"
ALIAS_NAME: Final = "live"
# Python's managed runtime cannot stream a response, so behind a function URL the runtime's exec
# wrapper replaces its bootstrap with the kit's own Runtime API client (handlers/stream_runtime.py).
EXEC_WRAPPER: Final = "/var/task/handlers/stream_bootstrap"
# Lambda's ceiling for one invocation, which is all that bounds a request through a function URL.
MAX_STREAM_TIMEOUT_SECONDS: Final = 900
# The function's whole access to its table: item reads and writes, queries, conditions; no Scan, no admin.
# TransactWriteItems is not an IAM action (cfn-lint W3037): a transaction is authorized by the Put/Update/
# Delete/ConditionCheckItem permissions of the items it contains, which are all here.
TABLE_ACTIONS: Final[tuple[str, ...]] = (
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
    "dynamodb:ConditionCheckItem",
)
# One JSON object per request; no headers, so no tokens or session ids end up in the logs.
ACCESS_LOG_FORMAT: Final[dict[str, str]] = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "httpMethod": "$context.httpMethod",
    "routeKey": "$context.routeKey",
    "path": "$context.path",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationLatency": "$context.integrationLatency",
    "integrationStatus": "$context.integrationStatus",
    "integrationError": "$context.integrationErrorMessage",
    "error": "$context.error.message",
    "userAgent": "$context.identity.userAgent",
}
_RETENTION: Final[dict[int, logs.RetentionDays]] = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def retention_days(days: int) -> logs.RetentionDays:
    try:
        return _RETENTION[days]
    except KeyError:
        raise ValueError(f"CloudWatch Logs has no {days}-day retention; choose one of {sorted(_RETENTION)}") from None


def cfn_response_parameters(mappings: Mapping[int, Mapping[str, str]]) -> dict[str, object]:
    """`gateway_contract.RESPONSE_PARAMETER_MAPPINGS` in the shape CloudFormation accepts.

    The API takes `{"401": {"overwrite:header.X": "$response.header.Y"}}`, but the CloudFormation
    resource schema wants a list of Destination/Source pairs per status code; the flat map fails to
    deploy (aws/aws-cdk#20993, aws-cloudformation/cloudformation-coverage-roadmap#2114).
    """
    return {
        str(status): {
            "ResponseParameters": [{"Destination": dest, "Source": src} for dest, src in sorted(pairs.items())]
        }
        for status, pairs in sorted(mappings.items())
    }


@jsii.implements(IStableStringProducer)
class _Later:
    """A value known only after construction (the function URL), for a property set before it."""

    def __init__(self) -> None:
        self.value: str | None = None

    def produce(self) -> str | None:
        return self.value


def route_keys(auth: Literal["none", "oauth"]) -> list[str]:
    """Every route the API has: only paths the function serves, so everything else is API Gateway's 404."""
    routes = [*contract.MCP_ROUTES, *(contract.OAUTH_ROUTES if auth == "oauth" else ())]
    return [f"{method} {path}" for method, path in routes]


@dataclass(frozen=True)
class CustomDomainProps:
    """Serve on `https://<domain_name>/mcp`; give a certificate, a hosted zone, or both.

    With a zone and no certificate, a DNS-validated ACM certificate is issued in it; with a zone,
    the alias record is created too.
    """

    domain_name: str
    certificate: acm.ICertificate | None = None
    hosted_zone: route53.IHostedZone | None = None


@dataclass(frozen=True)
class SecretReferences:
    """Secrets the tools read at run time, by name; the function may read exactly these."""

    ssm_parameters: Sequence[str] = ()
    secrets_manager: Sequence[str] = ()


class McpServer(Construct):
    """One MCP server: function (+ `live` alias), HTTP API, table, logs; OAuth, alarms, dashboard if asked.

    The defaults are the cheapest idle server (README, "What a server costs"): SnapStart, alarms and
    the dashboard each cost a fixed amount a month, so each is opt-in.

        `runtime_environment` receives the table name (a token) and returns the handler's environment;
        in the kit that is `ServerFolder.runtime_environment`, so Lambda and `mcpkit dev` never differ.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code: lambda_.Code,
        runtime_environment: Callable[[str], Mapping[str, str]],
        service_name: str,
        description: str = "",
        auth: Literal["none", "oauth"] = "none",
        architecture: Literal["arm64", "x86_64"] = "arm64",
        memory_mb: int = 512,
        timeout: Duration = Duration.seconds(28),  # noqa: B008 - immutable CDK value
        snapstart: bool = False,
        xray: bool = False,
        reserved_concurrency: int | None = None,
        log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO",
        log_retention_days: int = 30,
        allowed_origins: Sequence[str] = (),
        throttle_rate_limit: float = 50,
        throttle_burst_limit: int = 100,
        retain_data: bool = True,
        custom_domain: CustomDomainProps | None = None,
        extra_statements: Sequence[iam.PolicyStatement] = (),
        secrets: SecretReferences = SecretReferences(),
        oauth_feature_plan: Literal["essentials", "plus"] = "essentials",
        oauth_mfa: Literal["off", "optional", "required"] = "optional",
        oauth_self_sign_up: bool = False,
        oauth_required_group: str | None = None,
        alarms: bool = False,
        alarm_topic: sns.ITopic | None = None,
        dashboard: bool = False,
        point_in_time_recovery: bool = True,
        alarm_error_threshold: int = 5,
        alarm_p99_latency: Duration = Duration.seconds(5),  # noqa: B008 - immutable CDK value
        stream_responses: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        if stream_responses:
            if timeout.to_seconds() > MAX_STREAM_TIMEOUT_SECONDS:
                raise ValueError(f"timeout must be at most {MAX_STREAM_TIMEOUT_SECONDS} s: Lambda's own limit")
            if custom_domain is not None:
                raise ValueError("a function URL has no custom domain of its own (it needs CloudFront in front)")
        elif timeout.to_seconds() >= contract.INTEGRATION_TIMEOUT_SECONDS:
            raise ValueError(
                f"timeout must be under {contract.INTEGRATION_TIMEOUT_SECONDS} s: API Gateway cuts the request off"
            )
        removal = RemovalPolicy.RETAIN if retain_data else RemovalPolicy.DESTROY
        retention = retention_days(log_retention_days)

        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute="ttl",
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=point_in_time_recovery
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            deletion_protection=retain_data,
            removal_policy=removal,
        )
        if not point_in_time_recovery:
            Validations.of(self.table).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-DDB3",
                    reason="point_in_time_recovery = false in mcpkit.toml: the server owner chose to do without "
                    "continuous backups of sessions and OAuth state.",
                )
            )

        self.api: apigwv2.HttpApi | None = None
        self.function_url: lambda_.FunctionUrl | None = None
        # The function URL exists only once the alias does, so Cognito's callback is filled in then.
        later_url = _Later()
        if stream_responses:
            # Ends with "/": https://<url id>.lambda-url.<region>.on.aws/
            self.base_url = Lazy.string(later_url)
            self.mcp_url = f"{self.base_url}mcp"
            callback_url = f"{self.base_url}oauth/callback"
        else:
            # The API exists before the function: its URL feeds Cognito's callback, whose client id feeds the
            # function's environment. Routes (API -> integration -> function) come after, so there is no cycle.
            self.api = apigwv2.HttpApi(
                self,
                "Api",
                description=description or f"MCP server {service_name}",
                create_default_stage=False,
                # One canonical URL per server: with a custom domain, execute-api would be a second resource URL.
                disable_execute_api_endpoint=custom_domain is not None,
                cors_preflight=apigwv2.CorsPreflightOptions(
                    allow_origins=list(allowed_origins),
                    allow_methods=[apigwv2.CorsHttpMethod(m) for m in contract.CORS_ALLOW_METHODS],
                    allow_headers=list(contract.CORS_ALLOW_HEADERS),
                    expose_headers=list(contract.CORS_EXPOSE_HEADERS),
                    max_age=Duration.seconds(contract.CORS_MAX_AGE_SECONDS),
                ),
            )
            self.base_url = (
                f"https://{custom_domain.domain_name}" if custom_domain is not None else self.api.api_endpoint
            )
            self.mcp_url = f"{self.base_url}/mcp"
            callback_url = f"{self.base_url}/oauth/callback"

        self.oauth: McpOAuth | None = None
        if auth == "oauth":
            self.oauth = McpOAuth(
                self,
                "OAuth",
                callback_url=callback_url,
                # Function -> environment -> client -> callback -> function URL -> alias -> function would be a
                # cycle: behind a function URL the runtime finds the client by name (handlers/auth/app_client.py).
                client_name=oauth.APP_CLIENT_NAME if stream_responses else None,
                feature_plan=oauth_feature_plan,
                mfa=oauth_mfa,
                self_sign_up=oauth_self_sign_up,
                required_group=oauth_required_group,
                retain=retain_data,
            )

        self.log_group = logs.LogGroup(self, "FunctionLogs", retention=retention, removal_policy=removal)
        self.role = iam.Role(
            self,
            "FunctionRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"MCP server {service_name}: its log group, its table, its declared secrets and statements",
        )
        # Written out instead of AWSLambdaBasicExecutionRole, which allows every log group in the account.
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[self.log_group.log_group_arn]
            )
        )
        self.role.add_to_policy(iam.PolicyStatement(actions=list(TABLE_ACTIONS), resources=[self.table.table_arn]))
        self._grant_secrets(secrets)
        if extra_statements:
            self._add_declared_statements(extra_statements)

        environment = dict(runtime_environment(self.table.table_name))
        environment["POWERTOOLS_LOG_LEVEL"] = log_level
        if xray:
            # Responses can carry user data; errors are what traces are for.
            environment["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] = "false"
            environment["POWERTOOLS_TRACER_CAPTURE_ERROR"] = "true"
        else:
            environment["POWERTOOLS_TRACE_DISABLED"] = "true"
        if self.oauth is not None:
            environment.update(self.oauth.environment.as_env())
            self.oauth.grant_runtime(self.role)
        environment["MCPKIT_SESSION_KEY"] = self._session_key(retention)
        if stream_responses:
            environment["AWS_LAMBDA_EXEC_WRAPPER"] = EXEC_WRAPPER

        self.function = lambda_.Function(
            self,
            "Function",
            description=description or f"MCP server {service_name}",
            runtime=lambda_.Runtime.PYTHON_3_12,
            architecture=lambda_.Architecture.ARM_64 if architecture == "arm64" else lambda_.Architecture.X86_64,
            handler=HANDLER,
            code=code,
            memory_size=memory_mb,
            timeout=timeout,
            role=self.role,
            environment=environment,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE if xray else lambda_.Tracing.DISABLED,
            reserved_concurrent_executions=reserved_concurrency,
            # Init (imports, server load, app build) runs once at publish time and is restored from a snapshot.
            snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if snapstart else None,
            # Explicit, not left to CDK's default: with SnapStart a retained version keeps a cached snapshot
            # that is billed for as long as it exists, and only the live one is ever called.
            current_version_options=lambda_.VersionOptions(removal_policy=RemovalPolicy.DESTROY),
        )
        Validations.of(self.function).acknowledge(
            Acknowledgment(
                id="AwsSolutions-L1",
                reason="Python 3.12 is the runtime contract: the zip's wheels and bytecode are built for cp312 "
                "and the handler is tested on it. Move all three together when upgrading.",
            ),
            Acknowledgment(
                id="Annotation::@aws-cdk/aws-lambda:snapStartRequirePublish",
                reason="The 'live' alias below publishes current_version on every change; the API calls the alias.",
            ),
        )
        if xray:
            Validations.of(self.role).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-IAM5[Resource::*]",
                    reason="xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level "
                    "permissions; CDK adds them only because xray = true in mcpkit.toml.",
                )
            )
        # SnapStart works on published versions only; the API calls the alias, never $LATEST.
        self.alias = lambda_.Alias(self, "LiveAlias", alias_name=ALIAS_NAME, version=self.function.current_version)

        if stream_responses:
            self.function_url = self._add_function_url(allowed_origins)
            later_url.value = self.function_url.url
        else:
            assert self.api is not None
            self._add_http_api(
                self.api, auth, retention, removal, throttle_rate_limit, throttle_burst_limit, custom_domain
            )

        self.observability = McpObservability(
            self,
            "Observability",
            function=self.function,
            front=FunctionUrlMetrics(self.function, self.alias) if stream_responses else HttpApiMetrics(self.api),
            table=self.table,
            alarms=alarms,
            dashboard=dashboard,
            error_threshold=alarm_error_threshold,
            p99_latency=alarm_p99_latency,
            alarm_topic=alarm_topic,
        )

    def _add_function_url(self, allowed_origins: Sequence[str]) -> lambda_.FunctionUrl:
        """The streaming front: a function URL on the `live` alias, public, CORS answered by Lambda.

        Auth type NONE: the function is the OAuth resource server and checks every request itself. For
        NONE, CDK grants `*` both lambda:InvokeFunctionUrl (FunctionUrlAuthType NONE) and, since Lambda's
        October 2025 authorization change, lambda:InvokeFunction (InvokedViaFunctionUrl true), each on the
        alias; without the second a new URL answers 403 (docs.aws.amazon.com/lambda/latest/dg/urls-auth.html).
        CORS: a function URL allows no OPTIONS in its method list (Lambda answers preflights itself).
        """
        return lambda_.FunctionUrl(
            self,
            "FunctionUrl",
            function=self.alias,
            auth_type=lambda_.FunctionUrlAuthType.NONE,
            invoke_mode=lambda_.InvokeMode.RESPONSE_STREAM,
            cors=lambda_.FunctionUrlCorsOptions(
                allowed_origins=list(allowed_origins),
                allowed_methods=[lambda_.HttpMethod(m) for m in contract.FUNCTION_URL_CORS_ALLOW_METHODS],
                allowed_headers=list(contract.CORS_ALLOW_HEADERS),
                exposed_headers=list(contract.CORS_EXPOSE_HEADERS),
                max_age=Duration.seconds(contract.CORS_MAX_AGE_SECONDS),
            ),
        )

    def _add_http_api(
        self,
        api: apigwv2.HttpApi,
        auth: Literal["none", "oauth"],
        retention: logs.RetentionDays,
        removal: RemovalPolicy,
        throttle_rate_limit: float,
        throttle_burst_limit: int,
        custom_domain: CustomDomainProps | None,
    ) -> None:
        """The buffered front: `$default` stage (throttled, access-logged), one integration, the served routes."""
        stack = Stack.of(self)
        self.stage = apigwv2.HttpStage(
            self,
            "DefaultStage",
            http_api=api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(rate_limit=throttle_rate_limit, burst_limit=throttle_burst_limit),
        )
        self.access_logs = logs.LogGroup(self, "ApiAccessLogs", retention=retention, removal_policy=removal)
        cfn_stage = self.stage.node.default_child
        assert isinstance(cfn_stage, apigwv2.CfnStage)
        cfn_stage.access_log_settings = apigwv2.CfnStage.AccessLogSettingsProperty(
            destination_arn=self.access_logs.log_group_arn,
            format=stack.to_json_string(ACCESS_LOG_FORMAT),
        )

        self.integration = integrations.HttpLambdaIntegration(
            "Function",
            self.alias,
            payload_format_version=apigwv2.PayloadFormatVersion.VERSION_2_0,
            timeout=Duration.seconds(contract.INTEGRATION_TIMEOUT_SECONDS),
        )
        for route_key in route_keys(auth):
            method, path = route_key.split(" ", 1)
            api.add_routes(path=path, methods=[apigwv2.HttpMethod(method)], integration=self.integration)
        if auth == "oauth":
            self._map_challenge(api)
        Validations.of(api).acknowledge(
            Acknowledgment(
                id="AwsSolutions-APIG4",
                reason="Authorization is the function's job (MCP OAuth resource server): an API Gateway JWT "
                "authorizer's 401 cannot carry the RFC 9728 resource_metadata challenge, and discovery, "
                "registration and token routes must stay public by the MCP authorization spec.",
            )
        )

        if custom_domain is not None:
            self._add_custom_domain(api, custom_domain)

    def _map_challenge(self, api: apigwv2.HttpApi) -> None:
        """Put the function's challenge back on `WWW-Authenticate` for 401/403.

        API Gateway renames a Lambda-returned WWW-Authenticate to x-amzn-remapped-www-authenticate
        (AWS "Amazon API Gateway important notes"; anthropics/claude-ai-mcp#748), which breaks MCP
        OAuth discovery. HTTP API response parameter mapping may overwrite the header (it is not in
        the reserved list of the `http-api-parameter-mapping` page). The L2 integration does not expose
        response parameters, hence the L1 property.
        """
        cfn_integrations = [c for c in api.node.find_all() if isinstance(c, apigwv2.CfnIntegration)]
        if len(cfn_integrations) != 1:
            raise RuntimeError(f"expected the one Lambda integration, found {len(cfn_integrations)}")
        cfn_integrations[0].add_property_override(
            "ResponseParameters", cfn_response_parameters(contract.RESPONSE_PARAMETER_MAPPINGS)
        )

    def _session_key(self, retention: logs.RetentionDays) -> str:
        """64 random characters, drawn once when the stack is created, that sign session ids.

        The runtime also derives from them (HKDF, a label of its own) the key that seals 2026-07-28
        `requestState` for every instance (handlers/request_state.py): one secret to draw and keep.

        Secrets Manager's GetRandomPassword generates them without storing a secret (nothing to pay
        for monthly). The key is only as secret as the function's environment, which is enough: a
        forged id would still need the bearer token of its owner and would only spare a read
        (handlers/sessions.py). CloudFormation draws again only when the custom resource itself
        changes (a CDK upgrade may do that); a new key only costs the sessions open at the time a read.
        """
        log_group = logs.LogGroup(self, "SessionKeyLogs", retention=retention, removal_policy=RemovalPolicy.DESTROY)
        # Its own role instead of the provider's default one, which has AWSLambdaBasicExecutionRole.
        role = iam.Role(self, "SessionKeyRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[log_group.log_group_arn]
            )
        )
        role.add_to_policy(iam.PolicyStatement(actions=["secretsmanager:GetRandomPassword"], resources=["*"]))
        Validations.of(role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="secretsmanager:GetRandomPassword acts on no resource, so it cannot be scoped to one.",
            )
        )
        draw = cr.AwsSdkCall(
            service="SecretsManager",
            action="getRandomPassword",
            parameters={"PasswordLength": 64, "ExcludePunctuation": True},
            physical_resource_id=cr.PhysicalResourceId.of("session-key"),
            logging=cr.Logging.with_data_hidden(),
        )
        # on_update too: an update without a response would leave GetAtt nothing to read.
        key = cr.AwsCustomResource(
            self,
            "SessionKey",
            on_create=draw,
            on_update=draw,
            role=role,
            install_latest_aws_sdk=False,
            log_group=log_group,
        )
        return key.get_response_field("RandomPassword")

    def _grant_secrets(self, secrets: SecretReferences) -> None:
        stack = Stack.of(self)
        if secrets.ssm_parameters:
            self.role.add_to_policy(
                iam.PolicyStatement(
                    actions=["ssm:GetParameter"],
                    resources=[
                        stack.format_arn(service="ssm", resource="parameter", resource_name=name.lstrip("/"))
                        for name in secrets.ssm_parameters
                    ],
                )
            )
        if secrets.secrets_manager:
            resources = [
                name
                if name.startswith("arn:")
                # Secrets Manager appends six random characters to every secret's ARN.
                else stack.format_arn(
                    service="secretsmanager",
                    resource="secret",
                    resource_name=f"{name}-??????",
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                )
                for name in secrets.secrets_manager
            ]
            self.role.add_to_policy(iam.PolicyStatement(actions=["secretsmanager:GetSecretValue"], resources=resources))

    def _add_declared_statements(self, statements: Sequence[iam.PolicyStatement]) -> None:
        """The server author's own statements, in their own policy so their review scope is visible."""
        self.declared_policy = iam.Policy(self, "DeclaredPolicy", statements=list(statements), roles=[self.role])
        # Wildcards here were written on purpose in mcpkit.toml (e.g. `arn:aws:s3:::bucket/*`); acknowledge
        # exactly those findings, so any wildcard the kit itself adds elsewhere still fails the check.
        wildcards = sorted(
            {f"Action::{a}" for s in statements for a in s.actions if "*" in a}
            | {f"Resource::{r}" for s in statements for r in s.resources if "*" in r}
        )
        for finding in wildcards:
            Validations.of(self.declared_policy).acknowledge(
                Acknowledgment(
                    id=f"AwsSolutions-IAM5[{finding}]",
                    reason="Declared explicitly by the server author in mcpkit.toml iam_statements.",
                )
            )

    def _add_custom_domain(self, api: apigwv2.HttpApi, props: CustomDomainProps) -> None:
        certificate = props.certificate
        if certificate is None:
            if props.hosted_zone is None:
                raise ValueError("a custom domain needs a certificate or a hosted zone to issue one in")
            certificate = acm.Certificate(
                self,
                "Certificate",
                domain_name=props.domain_name,
                validation=acm.CertificateValidation.from_dns(props.hosted_zone),
            )
        self.domain_name = apigwv2.DomainName(
            self,
            "DomainName",
            domain_name=props.domain_name,
            certificate=certificate,
            security_policy=apigwv2.SecurityPolicy.TLS_1_2,
        )
        apigwv2.ApiMapping(self, "ApiMapping", api=api, domain_name=self.domain_name, stage=self.stage)
        if props.hosted_zone is not None:
            route53.ARecord(
                self,
                "AliasRecord",
                zone=props.hosted_zone,
                record_name=props.domain_name,
                target=route53.RecordTarget.from_alias(
                    targets.ApiGatewayv2DomainProperties(
                        self.domain_name.regional_domain_name, self.domain_name.regional_hosted_zone_id
                    )
                ),
            )
