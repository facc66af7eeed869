"""The `stream_responses` front, resource by resource: a function URL on the `live` alias, no API Gateway.

The three fixture servers (tests/stacks/conftest.py STREAM_FIXTURES) are synthesized with the rest of
the kit, so cdk-nag, cfn-lint, the dependency-cycle check and the cost checks cover them too
(test_checks.py, test_costs.py); this module asserts what only this front has.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest
from aws_cdk import App, Duration, Stack
from aws_cdk import aws_lambda as lambda_

from mcpkit import gateway_contract as contract
from stacks.constructs import McpServer
from stacks.constructs.mcp_server import EXEC_WRAPPER, CustomDomainProps
from stacks.constructs.oauth import APP_CLIENT_NAME
from stacks.idle_cost import FREE, estimate
from tests.stacks.conftest import FIXTURE_SERVER_PY, ROOT, STREAM_FIXTURES
from tests.stacks.test_server_stack import as_list, of_type, only, policy_statements

if TYPE_CHECKING:
    from pathlib import Path

    from mcpkit.server_config import ServerFolder
    from tests.stacks.conftest import Synth

pytestmark = pytest.mark.slow


def streaming(synth: Synth) -> list[ServerFolder]:
    servers = [s for s in synth.servers.values() if s.config.stream_responses]
    assert {s.name for s in servers} >= set(STREAM_FIXTURES)
    return servers


def expected_types(server: ServerFolder) -> Counter[str]:
    """Every resource a streaming stack holds, by type and count: nothing more, nothing less."""
    cfg = server.config
    types = Counter(
        {
            "AWS::DynamoDB::Table": 1,
            # The server's function and the session key's one-off provider; each with its role, policy, logs.
            "AWS::Lambda::Function": 2,
            "AWS::IAM::Role": 2,
            "AWS::IAM::Policy": 2,
            "AWS::Logs::LogGroup": 2,
            "AWS::Lambda::Version": 1,
            "AWS::Lambda::Alias": 1,
            "AWS::Lambda::Url": 1,
            # lambda:InvokeFunctionUrl and, since October 2025, lambda:InvokeFunction via the URL.
            "AWS::Lambda::Permission": 2,
            "Custom::AWS": 1,
        }
    )
    if cfg.auth == "oauth":
        for cfn_type in (
            "AWS::Cognito::UserPool",
            "AWS::Cognito::UserPoolResourceServer",
            "AWS::Cognito::UserPoolClient",
            "AWS::Cognito::UserPoolDomain",
            "AWS::Cognito::ManagedLoginBranding",
            "AWS::KMS::Key",
        ):
            types[cfn_type] += 1
        if cfg.oauth.required_group is not None:
            types["AWS::Cognito::UserPoolGroup"] += 1
    if cfg.iam_statements:
        types["AWS::IAM::Policy"] += 1  # the author's own statements, in a policy of their own
    if cfg.alarms.enabled:
        types["AWS::CloudWatch::Alarm"] += 4
    if cfg.dashboard:
        types["AWS::CloudWatch::Dashboard"] += 1
    return types


def test_every_resource_type_and_count(synth: Synth) -> None:
    for server in streaming(synth):
        template = synth.template(server.stack_name)
        found = Counter(r["Type"] for r in template["Resources"].values())
        assert found == expected_types(server), server.name
        assert not [t for t in found if t.startswith("AWS::ApiGateway")], server.name


def test_function_url_is_a_public_streaming_url_on_the_live_alias(synth: Synth) -> None:
    for server in streaming(synth):
        template = synth.template(server.stack_name)
        fn_id, _ = only(template, "AWS::Lambda::Function")
        alias_id, alias = only(template, "AWS::Lambda::Alias")
        _, url = only(template, "AWS::Lambda::Url")
        assert alias["Properties"]["Name"] == "live"
        assert url["Properties"] == {
            "AuthType": "NONE",
            "InvokeMode": "RESPONSE_STREAM",
            "TargetFunctionArn": {"Fn::GetAtt": [fn_id, "Arn"]},
            "Qualifier": "live",
            "Cors": {
                "AllowOrigins": server.config.allowed_origins,
                # A function URL takes no OPTIONS here: Lambda answers preflights from this configuration.
                "AllowMethods": ["GET", "POST", "DELETE"],
                "AllowHeaders": list(contract.CORS_ALLOW_HEADERS),
                "ExposeHeaders": list(contract.CORS_EXPOSE_HEADERS),
                "MaxAge": contract.CORS_MAX_AGE_SECONDS,
            },
        }
        assert url["DependsOn"] == [alias_id]


def test_cors_fits_what_a_function_url_accepts() -> None:
    """AWS::Lambda::Url Cors: at most 6 methods from GET PUT HEAD POST PATCH DELETE *, 100 headers
    of up to 1024 characters, MaxAge up to 86400 (CloudFormation's schema, cfn-lint's copy)."""
    methods = contract.FUNCTION_URL_CORS_ALLOW_METHODS
    assert methods == ("GET", "POST", "DELETE")
    assert set(methods) <= {"GET", "PUT", "HEAD", "POST", "PATCH", "DELETE", "*"}
    assert len(methods) <= 6
    assert "*" in contract.CORS_ALLOW_HEADERS  # Mcp-Param-* headers
    assert len(contract.CORS_ALLOW_HEADERS) <= 100
    assert len(contract.CORS_EXPOSE_HEADERS) <= 100
    assert 0 <= contract.CORS_MAX_AGE_SECONDS <= 86400


def test_the_two_public_invoke_permissions_are_on_the_alias(synth: Synth) -> None:
    """Lambda's October 2025 change: a public (NONE) URL needs InvokeFunctionUrl and InvokeFunction."""
    for server in streaming(synth):
        template = synth.template(server.stack_name)
        alias_id, _ = only(template, "AWS::Lambda::Alias")
        permissions = sorted(
            (p["Properties"] for p in of_type(template, "AWS::Lambda::Permission").values()),
            key=lambda p: str(p["Action"]),
        )
        assert permissions == [
            {
                "Action": "lambda:InvokeFunction",
                "FunctionName": {"Ref": alias_id},
                "InvokedViaFunctionUrl": True,
                "Principal": "*",
            },
            {
                "Action": "lambda:InvokeFunctionUrl",
                "FunctionName": {"Ref": alias_id},
                "FunctionUrlAuthType": "NONE",
                "Principal": "*",
            },
        ]


def test_function_runs_the_streaming_runtime_with_its_timeout(synth: Synth) -> None:
    for server in streaming(synth):
        template = synth.template(server.stack_name)
        _, fn = only(template, "AWS::Lambda::Function")
        props = fn["Properties"]
        assert props["Environment"]["Variables"]["AWS_LAMBDA_EXEC_WRAPPER"] == EXEC_WRAPPER
        assert props["Environment"]["Variables"]["MCPKIT_STREAM_RESPONSES"] == "true"
        assert props["Handler"] == "handlers.lambda_handler.handler"
        assert props["Timeout"] == server.config.timeout_seconds
        assert "SnapStart" not in props
        assert props.get("ReservedConcurrentExecutions") == server.config.reserved_concurrency
    full = synth.template(synth.servers["fixture-stream-full"].stack_name)
    _, fn = only(full, "AWS::Lambda::Function")
    assert fn["Properties"]["Timeout"] == 900
    assert fn["Properties"]["ReservedConcurrentExecutions"] == 10


def test_the_http_api_fronts_have_no_exec_wrapper(synth: Synth) -> None:
    for server in synth.servers.values():
        if server.config.stream_responses:
            continue
        _, fn = only(synth.template(server.stack_name), "AWS::Lambda::Function")
        assert "AWS_LAMBDA_EXEC_WRAPPER" not in fn["Properties"]["Environment"]["Variables"]


def test_oauth_client_is_found_by_name_with_a_permission_scoped_to_the_pool(synth: Synth) -> None:
    for server in synth.servers.values():
        if server.config.auth != "oauth":
            continue
        template = synth.template(server.stack_name)
        pool_id, _ = only(template, "AWS::Cognito::UserPool")
        _, client = only(template, "AWS::Cognito::UserPoolClient")
        listing = [s for s in policy_statements(template) if "cognito-idp:ListUserPoolClients" in as_list(s["Action"])]
        if server.config.stream_responses:
            assert client["Properties"]["ClientName"] == APP_CLIENT_NAME
            assert [s["Resource"] for s in listing] == [{"Fn::GetAtt": [pool_id, "Arn"]}]
        else:
            assert listing == []


def test_mcp_server_url_is_the_function_url_plus_mcp(synth: Synth) -> None:
    for server in streaming(synth):
        template = synth.template(server.stack_name)
        url_id, _ = only(template, "AWS::Lambda::Url")
        outputs = template["Outputs"]
        # The function URL ends with "/".
        assert outputs["McpServerUrl"]["Value"] == {"Fn::Join": ["", [{"Fn::GetAtt": [url_id, "FunctionUrl"]}, "mcp"]]}
        assert url_id in json.dumps(outputs["ConnectorSteps"]["Value"])
        assert "CustomDomainTarget" not in outputs


def test_alarms_read_the_url_metrics_of_the_alias(synth: Synth) -> None:
    server = synth.servers["fixture-stream-full"]
    template = synth.template(server.stack_name)
    fn_id, _ = only(template, "AWS::Lambda::Function")
    url_alarms = {
        a["Properties"]["MetricName"]: a["Properties"]
        for a in of_type(template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["MetricName"].startswith("Url")
    }
    assert set(url_alarms) == {"Url5xxCount", "UrlRequestLatency"}
    for alarm in url_alarms.values():
        assert alarm["Namespace"] == "AWS/Lambda"
        assert alarm["Dimensions"] == [
            {"Name": "FunctionName", "Value": {"Ref": fn_id}},
            {"Name": "Resource", "Value": {"Fn::Join": ["", [{"Ref": fn_id}, ":live"]]}},
        ]
        assert alarm["AlarmActions"] == [server.config.alarms.topic_arn]
    assert url_alarms["UrlRequestLatency"]["ExtendedStatistic"] == "p99"
    assert url_alarms["UrlRequestLatency"]["Threshold"] == 20000
    assert "until its end" in url_alarms["UrlRequestLatency"]["AlarmDescription"]
    assert url_alarms["Url5xxCount"]["Statistic"] == "Sum"


def test_the_function_url_costs_nothing_while_idle(synth: Synth) -> None:
    assert "AWS::Lambda::Url" in FREE
    for server in streaming(synth):
        result = estimate(synth.template(server.stack_name))
        assert not [c for c in result.charges if c.resource_type == "AWS::Lambda::Url"]
        # Without the API's access log, one log group fewer than the same server behind the HTTP API.
        assert len([c for c in result.charges if c.item == "CloudWatch log storage"]) == 2


def _probe(**kwargs: Any) -> None:
    app = App()
    McpServer(
        Stack(app, "Probe"),
        "Server",
        code=lambda_.Code.from_inline("def handler(event, context):\n    return {}\n"),
        runtime_environment=lambda table: {"MCPKIT_TABLE_NAME": table},
        service_name="probe",
        stream_responses=True,
        **kwargs,
    )


def test_the_construct_refuses_what_a_function_url_cannot_do() -> None:
    _probe(timeout=Duration.seconds(900))
    with pytest.raises(ValueError, match=r"at most 900 s"):
        _probe(timeout=Duration.seconds(901))
    with pytest.raises(ValueError, match=r"no custom domain of its own"):
        _probe(custom_domain=CustomDomainProps(domain_name="mcp.example.com"))


def test_synth_of_a_servers_dir_with_a_streaming_server(synth: Synth, tmp_path: Path) -> None:
    """What `make synth` runs (`cdk synth` runs app.py), on a checkout whose one server streams.

    After the session's synth, so the shared `.build/` cache holds the dependencies (no pip run here).
    """
    (tmp_path / "app.py").write_text((ROOT / "app.py").read_text(encoding="utf-8"), encoding="utf-8")
    for name in ("cdk.json", "requirements.txt", "requirements.lock", "handlers", ".build"):
        (tmp_path / name).symlink_to(ROOT / name)
    folder = tmp_path / "servers" / "longtask"
    folder.mkdir(parents=True)
    (folder / "server.py").write_text(FIXTURE_SERVER_PY, encoding="utf-8")
    (folder / "mcpkit.toml").write_text(STREAM_FIXTURES["fixture-stream-oauth"] + "timeout_seconds = 300\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CDK_OUTDIR": str(tmp_path / "out")}
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=600
    )
    assert result.returncode == 0, result.stderr
    template = json.loads((tmp_path / "out" / "McpServer-longtask.template.json").read_text(encoding="utf-8"))
    types = Counter(r["Type"] for r in template["Resources"].values())
    assert types["AWS::Lambda::Url"] == 1
    assert not [t for t in types if t.startswith("AWS::ApiGateway")]
    assert "McpServer-longtask: idle $" in result.stderr
    report = json.loads((tmp_path / "out" / "validation-report.json").read_text(encoding="utf-8"))
    assert [v for plugin in report["pluginReports"] for v in plugin.get("violations", [])] == []
