"""Alarms and a dashboard for one MCP server: the four signals that mean users are failing.

Both are opt-in because both have a monthly price (README, "What a server costs"); the metrics
they read are AWS's own and free, in the Lambda and API Gateway consoles either way. The front's
request, error and latency metrics come from the HTTP API or, behind a function URL, from Lambda's
`Url*` metrics of the `live` alias's URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from aws_cdk import Duration
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

PERIOD = Duration.minutes(5)


class FrontMetrics(Protocol):
    """What the dashboard and the alarms read from whatever answers HTTP in front of the function."""

    @property
    def alarm_prefix(self) -> str:
        """The start of its 5xx and latency alarms' logical ids ("Api5xx", "Url5xx")."""

    @property
    def server_errors_alarm(self) -> str: ...
    @property
    def latency_alarm(self) -> str: ...
    @property
    def requests_title(self) -> str: ...
    @property
    def latency_title(self) -> str: ...

    def requests(self, statistic: str) -> cloudwatch.Metric: ...
    def client_errors(self, statistic: str) -> cloudwatch.Metric: ...
    def server_errors(self, statistic: str) -> cloudwatch.Metric: ...
    def latency(self, statistic: str) -> cloudwatch.Metric: ...


class HttpApiMetrics:
    alarm_prefix = "Api"
    server_errors_alarm = "The HTTP API answered 5xx (function errors, integration timeouts, 503 from the store)."
    latency_alarm = "p99 latency of the HTTP API stayed high for 15 minutes."
    requests_title = "API requests and errors"
    latency_title = "API latency (ms)"

    def __init__(self, api: apigwv2.HttpApi | None) -> None:
        if api is None:
            raise ValueError("the HTTP API front needs its API")
        self._api = api

    def requests(self, statistic: str) -> cloudwatch.Metric:
        return self._api.metric_count(period=PERIOD, statistic=statistic)

    def client_errors(self, statistic: str) -> cloudwatch.Metric:
        return self._api.metric_client_error(period=PERIOD, statistic=statistic)

    def server_errors(self, statistic: str) -> cloudwatch.Metric:
        return self._api.metric_server_error(period=PERIOD, statistic=statistic)

    def latency(self, statistic: str) -> cloudwatch.Metric:
        return self._api.metric_latency(period=PERIOD, statistic=statistic)


@dataclass(frozen=True)
class FunctionUrlMetrics:
    """Lambda's function URL metrics (AWS/Lambda, `Url*`) of the URL on the alias.

    Dimensions FunctionName + Resource (`<function>:<alias>`), as Lambda publishes them for the URL of
    one alias (docs.aws.amazon.com/lambda/latest/dg/urls-monitoring.html). UrlRequestLatency runs until
    the response ends, so for a streamed response it is the whole stream, not the time to first byte.
    """

    function: lambda_.IFunction
    alias: lambda_.Alias
    alarm_prefix: str = "Url"
    server_errors_alarm: str = "The function URL answered 5xx (function errors, timeouts, 503 from the store)."
    latency_alarm: str = (
        "p99 latency of the function URL stayed high for 15 minutes (a streamed response counts until its end)."
    )
    requests_title: str = "Function URL requests and errors"
    latency_title: str = "Function URL latency, whole stream (ms)"

    def _metric(self, metric_name: str, statistic: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace="AWS/Lambda",
            metric_name=metric_name,
            dimensions_map={
                "FunctionName": self.function.function_name,
                "Resource": f"{self.function.function_name}:{self.alias.alias_name}",
            },
            period=PERIOD,
            statistic=statistic,
        )

    def requests(self, statistic: str) -> cloudwatch.Metric:
        return self._metric("UrlRequestCount", statistic)

    def client_errors(self, statistic: str) -> cloudwatch.Metric:
        return self._metric("Url4xxCount", statistic)

    def server_errors(self, statistic: str) -> cloudwatch.Metric:
        return self._metric("Url5xxCount", statistic)

    def latency(self, statistic: str) -> cloudwatch.Metric:
        return self._metric("UrlRequestLatency", statistic)


class McpObservability(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: lambda_.Function,
        front: FrontMetrics,
        table: dynamodb.Table,
        alarms: bool = False,
        dashboard: bool = False,
        error_threshold: int = 5,
        p99_latency: Duration = Duration.seconds(5),  # noqa: B008 - immutable CDK value
        alarm_topic: sns.ITopic | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        # Quiet periods have no data points; that is health, not an outage.
        not_breaching = cloudwatch.TreatMissingData.NOT_BREACHING
        at_least = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD

        errors = function.metric_errors(period=PERIOD, statistic=cloudwatch.Stats.SUM)
        throttles = function.metric_throttles(period=PERIOD, statistic=cloudwatch.Stats.SUM)
        server_errors = front.server_errors(cloudwatch.Stats.SUM)
        latency_p99 = front.latency(cloudwatch.Stats.p(99))

        def create(
            metric: cloudwatch.Metric,
            alarm_id: str,
            description: str,
            threshold: float,
            evaluation_periods: int = 1,
            comparison: cloudwatch.ComparisonOperator = at_least,
        ) -> cloudwatch.Alarm:
            return metric.create_alarm(
                self,
                alarm_id,
                alarm_description=description,
                threshold=threshold,
                evaluation_periods=evaluation_periods,
                comparison_operator=comparison,
                treat_missing_data=not_breaching,
            )

        self.alarms: list[cloudwatch.Alarm] = []
        if alarms:
            self.alarms = [
                create(
                    errors,
                    "FunctionErrors",
                    "The MCP function raised errors (unhandled exceptions, timeouts, out of memory).",
                    error_threshold,
                ),
                create(
                    throttles,
                    "FunctionThrottles",
                    "Invocations were throttled: reserved concurrency or the account limit is reached.",
                    1,
                ),
                create(
                    server_errors,
                    f"{front.alarm_prefix}5xx",
                    front.server_errors_alarm,
                    error_threshold,
                ),
                create(
                    latency_p99,
                    f"{front.alarm_prefix}LatencyP99",
                    front.latency_alarm,
                    p99_latency.to_milliseconds(),
                    evaluation_periods=3,
                    comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                ),
            ]
        if alarm_topic is not None:
            action = cw_actions.SnsAction(alarm_topic)
            for alarm in self.alarms:
                alarm.add_alarm_action(action)
                alarm.add_ok_action(action)

        self.dashboard: cloudwatch.Dashboard | None = None
        if not dashboard:
            return
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=Duration.hours(6))
        if self.alarms:
            self.dashboard.add_widgets(
                cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms), width=24, height=3),
            )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title=front.requests_title,
                left=[front.requests(cloudwatch.Stats.SUM), front.client_errors(cloudwatch.Stats.SUM), server_errors],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title=front.latency_title,
                left=[front.latency(cloudwatch.Stats.p(50)), latency_p99],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Function invocations, errors, throttles",
                left=[function.metric_invocations(period=PERIOD, statistic=cloudwatch.Stats.SUM), errors, throttles],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Function duration (ms)",
                left=[
                    function.metric_duration(period=PERIOD, statistic=cloudwatch.Stats.p(50)),
                    function.metric_duration(period=PERIOD, statistic=cloudwatch.Stats.p(99)),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Concurrent executions",
                left=[function.metric("ConcurrentExecutions", period=PERIOD, statistic=cloudwatch.Stats.MAXIMUM)],
                width=8,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Table capacity and throttling",
                left=[
                    table.metric_consumed_read_capacity_units(period=PERIOD, statistic=cloudwatch.Stats.SUM),
                    table.metric_consumed_write_capacity_units(period=PERIOD, statistic=cloudwatch.Stats.SUM),
                ],
                right=[table.metric("ThrottledRequests", period=PERIOD, statistic=cloudwatch.Stats.SUM)],
                width=24,
            ),
        )
