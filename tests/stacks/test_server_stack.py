"""What each synthesized stack contains, property by property, against its mcpkit.toml."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from aws_cdk.assertions import Match, Template
from aws_cdk.custom_resources import AwsCustomResource

from mcpkit import gateway_contract as contract
from stacks.constructs.mcp_server import ACCESS_LOG_FORMAT, TABLE_ACTIONS, cfn_response_parameters, route_keys
from stacks.constructs.oauth import APP_CLIENT_NAME, RESOURCE_SERVER_ID, TOOLS_SCOPE, domain_prefix_base
from tests.stacks.conftest import template_folders

if TYPE_CHECKING:
    from mcpkit.server_config import ServerFolder
    from tests.stacks.conftest import Synth

pytestmark = pytest.mark.slow

Resources = dict[str, dict[str, Any]]


# The session key's custom resource and its one-off provider (function, role, logs) have their own test;
# the others look only at the server's resources.
SESSION_KEY_PARTS = ("ServerSessionKey", "AWS" + AwsCustomResource.PROVIDER_FUNCTION_UUID.replace("-", ""))


def of_type(template: dict[str, Any], cfn_type: str) -> Resources:
    return {
        k: v for k, v in template["Resources"].items() if v["Type"] == cfn_type and not k.startswith(SESSION_KEY_PARTS)
    }


def only(template: dict[str, Any], cfn_type: str) -> tuple[str, dict[str, Any]]:
    found = of_type(template, cfn_type)
    assert len(found) == 1, f"expected one {cfn_type}, found {sorted(found)}"
    return next(iter(found.items()))


def policy_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        statement
        for policy in of_type(template, "AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def behind_the_http_api(synth: Synth) -> list[ServerFolder]:
    """The servers of the buffered front; `stream_responses` ones have their own test (test_streaming_front.py)."""
    return [s for s in synth.servers.values() if not s.config.stream_responses]


def test_every_server_has_a_stack(synth: Synth) -> None:
    for name, server in synth.servers.items():
        assert (synth.outdir / f"{server.stack_name}.template.json").is_file(), name
    assert {"example", "fixture-full", "fixture-oauth"} <= set(synth.servers)


def test_every_server_template_is_synthesized(synth: Synth) -> None:
    templates = template_folders()
    if not templates:
        pytest.skip("no server_templates/*/server.py yet")
    for template in templates:
        server = synth.servers[f"tpl-{template.name}"]
        assert (synth.outdir / f"{server.stack_name}.template.json").is_file()


def test_function_properties_follow_config(synth: Synth) -> None:
    for server in synth.servers.values():
        cfg = server.config
        _, fn = only(synth.template(server.stack_name), "AWS::Lambda::Function")
        props = fn["Properties"]
        assert props["Runtime"] == "python3.12"
        assert props["Handler"] == "handlers.lambda_handler.handler"
        assert props["Architectures"] == [cfg.architecture]
        assert props["MemorySize"] == cfg.memory_mb
        assert props["Timeout"] == cfg.timeout_seconds
        # Tracing.DISABLED leaves the property out (Lambda's PassThrough default).
        assert props.get("TracingConfig") == ({"Mode": "Active"} if cfg.xray else None)
        assert props.get("ReservedConcurrentExecutions") == cfg.reserved_concurrency
        if cfg.snapstart:
            assert props["SnapStart"] == {"ApplyOn": "PublishedVersions"}
        else:
            assert "SnapStart" not in props
        assert props["LoggingConfig"]["LogGroup"]["Ref"] in of_type(
            synth.template(server.stack_name), "AWS::Logs::LogGroup"
        )


def test_environment_is_runtime_environment_plus_infra_only(synth: Synth) -> None:
    for server in synth.servers.values():
        template = synth.template(server.stack_name)
        table_id, _ = only(template, "AWS::DynamoDB::Table")
        _, fn = only(template, "AWS::Lambda::Function")
        env = fn["Properties"]["Environment"]["Variables"]
        expected: dict[str, Any] = dict(server.runtime_environment(root=synth.root, table_name="TABLE"))
        expected["MCPKIT_TABLE_NAME"] = {"Ref": table_id}
        expected["POWERTOOLS_LOG_LEVEL"] = server.config.log_level
        session_key, _ = next((k, v) for k, v in template["Resources"].items() if v["Type"] == "Custom::AWS")
        expected["MCPKIT_SESSION_KEY"] = {"Fn::GetAtt": [session_key, "RandomPassword"]}
        if server.config.xray:
            expected |= {"POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false", "POWERTOOLS_TRACER_CAPTURE_ERROR": "true"}
        else:
            expected["POWERTOOLS_TRACE_DISABLED"] = "true"
        streaming = server.config.stream_responses
        if streaming:
            expected["AWS_LAMBDA_EXEC_WRAPPER"] = "/var/task/handlers/stream_bootstrap"
        # Behind a function URL the client is found by name: its id would close a cycle through the callback.
        client_key = "MCPKIT_COGNITO_CLIENT_NAME" if streaming else "MCPKIT_COGNITO_CLIENT_ID"
        oauth_keys = {"MCPKIT_KMS_KEY_ID", "MCPKIT_COGNITO_USER_POOL_ID", client_key, "MCPKIT_COGNITO_DOMAIN"}
        if server.config.auth == "oauth":
            assert oauth_keys <= set(env)
            key_id, _ = only(template, "AWS::KMS::Key")
            pool_id, _ = only(template, "AWS::Cognito::UserPool")
            client_id, client = only(template, "AWS::Cognito::UserPoolClient")
            assert env["MCPKIT_KMS_KEY_ID"] == {"Ref": key_id}
            assert env["MCPKIT_COGNITO_USER_POOL_ID"] == {"Ref": pool_id}
            if streaming:
                assert env[client_key] == client["Properties"]["ClientName"] == APP_CLIENT_NAME
                assert client_id not in json.dumps(env)
            else:
                assert env[client_key] == {"Ref": client_id}
                assert "ClientName" not in client["Properties"]
            assert "amazoncognito.com" in json.dumps(env["MCPKIT_COGNITO_DOMAIN"])
            env = {k: v for k, v in env.items() if k not in oauth_keys}
        assert not {"MCPKIT_COGNITO_CLIENT_ID", "MCPKIT_COGNITO_CLIENT_NAME"} & set(env)
        assert env == expected, server.name
        # The function cannot know its front's URL (front -> alias -> function); it reads it per request.
        front_id, _ = only(template, "AWS::Lambda::Url" if streaming else "AWS::ApiGatewayV2::Api")
        assert front_id not in json.dumps(fn["Properties"]["Environment"])


def test_api_calls_the_live_alias_of_a_published_version(synth: Synth) -> None:
    for server in behind_the_http_api(synth):
        template = synth.template(server.stack_name)
        fn_id, _ = only(template, "AWS::Lambda::Function")
        alias_id, alias = only(template, "AWS::Lambda::Alias")
        _, version = only(template, "AWS::Lambda::Version")
        # Replaced versions are deleted once the alias points at the new one: with SnapStart each kept
        # version would keep a cached snapshot billed every month (stacks/idle_cost.py).
        assert version["DeletionPolicy"] == "Delete"
        assert version["UpdateReplacePolicy"] == "Delete"
        assert alias["Properties"]["Name"] == "live"
        assert alias["Properties"]["FunctionName"] == {"Ref": fn_id}
        assert version["Properties"]["FunctionName"] == {"Ref": fn_id}
        _, integration = only(template, "AWS::ApiGatewayV2::Integration")
        assert integration["Properties"]["IntegrationUri"] == {"Ref": alias_id}
        assert integration["Properties"]["IntegrationType"] == "AWS_PROXY"
        assert integration["Properties"]["PayloadFormatVersion"] == "2.0"
        assert integration["Properties"]["TimeoutInMillis"] == contract.INTEGRATION_TIMEOUT_SECONDS * 1000
        permissions = of_type(template, "AWS::Lambda::Permission").values()
        assert permissions
        assert all(p["Properties"]["FunctionName"] == {"Ref": alias_id} for p in permissions)


def test_routes_are_exactly_the_served_paths(synth: Synth) -> None:
    for server in behind_the_http_api(synth):
        template = synth.template(server.stack_name)
        integration_id, _ = only(template, "AWS::ApiGatewayV2::Integration")
        routes = of_type(template, "AWS::ApiGatewayV2::Route").values()
        keys = sorted(r["Properties"]["RouteKey"] for r in routes)
        assert keys == sorted(route_keys(server.config.auth))
        assert {"GET /mcp", "POST /mcp", "DELETE /mcp"} <= set(keys)
        assert ("POST /oauth/token" in keys) == (server.config.auth == "oauth")
        for route in routes:
            assert route["Properties"]["Target"] == {"Fn::Join": ["", ["integrations/", {"Ref": integration_id}]]}
            assert route["Properties"].get("AuthorizationType", "NONE") == "NONE"


def test_challenge_header_mapping_matches_the_contract(synth: Synth) -> None:
    expected = {
        str(status): {
            "ResponseParameters": [{"Destination": d, "Source": s} for d, s in sorted(pairs.items())],
        }
        for status, pairs in contract.RESPONSE_PARAMETER_MAPPINGS.items()
    }
    assert set(expected) == {"401", "403"}
    for server in behind_the_http_api(synth):
        _, integration = only(synth.template(server.stack_name), "AWS::ApiGatewayV2::Integration")
        mapping = integration["Properties"].get("ResponseParameters")
        if server.config.auth == "oauth":
            assert mapping == expected
            back = {
                int(status): {p["Destination"]: p["Source"] for p in v["ResponseParameters"]}
                for status, v in mapping.items()
            }
            assert back == contract.RESPONSE_PARAMETER_MAPPINGS
        else:
            assert mapping is None


def test_cfn_response_parameters_shape() -> None:
    assert cfn_response_parameters({401: {"overwrite:header.A": "$response.header.b"}}) == {
        "401": {"ResponseParameters": [{"Destination": "overwrite:header.A", "Source": "$response.header.b"}]}
    }


def test_cors_is_answered_by_api_gateway_from_the_contract(synth: Synth) -> None:
    for server in behind_the_http_api(synth):
        _, api = only(synth.template(server.stack_name), "AWS::ApiGatewayV2::Api")
        props = api["Properties"]
        assert props["ProtocolType"] == "HTTP"
        cors = props["CorsConfiguration"]
        assert cors["AllowOrigins"] == server.config.allowed_origins
        assert cors["AllowMethods"] == list(contract.CORS_ALLOW_METHODS)
        assert cors["AllowHeaders"] == list(contract.CORS_ALLOW_HEADERS)
        assert cors["ExposeHeaders"] == list(contract.CORS_EXPOSE_HEADERS)
        assert cors["MaxAge"] == contract.CORS_MAX_AGE_SECONDS
        assert props.get("DisableExecuteApiEndpoint", False) == (server.config.custom_domain is not None)


def test_default_stage_throttling_and_json_access_logs(synth: Synth) -> None:
    for server in behind_the_http_api(synth):
        template = synth.template(server.stack_name)
        _, stage = only(template, "AWS::ApiGatewayV2::Stage")
        props = stage["Properties"]
        assert props["StageName"] == "$default"
        assert props["AutoDeploy"] is True
        assert props["DefaultRouteSettings"] == {
            "ThrottlingRateLimit": server.config.throttling.rate_limit,
            "ThrottlingBurstLimit": server.config.throttling.burst_limit,
        }
        destination = props["AccessLogSettings"]["DestinationArn"]["Fn::GetAtt"]
        assert destination[0] in of_type(template, "AWS::Logs::LogGroup")
        assert json.loads(props["AccessLogSettings"]["Format"]) == ACCESS_LOG_FORMAT
        assert "authorization" not in props["AccessLogSettings"]["Format"].lower()


def test_log_groups_have_configured_retention(synth: Synth) -> None:
    for server in synth.servers.values():
        groups = of_type(synth.template(server.stack_name), "AWS::Logs::LogGroup").values()
        # The function's, and the HTTP API's access log (a function URL has none).
        assert len(groups) == (1 if server.config.stream_responses else 2)
        assert {g["Properties"]["RetentionInDays"] for g in groups} == {server.config.log_retention_days}


def test_table_schema_and_data_protection(synth: Synth) -> None:
    for server in synth.servers.values():
        table_id, table = only(synth.template(server.stack_name), "AWS::DynamoDB::Table")
        props = table["Properties"]
        assert props["KeySchema"] == [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ]
        assert props["AttributeDefinitions"] == [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ]
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
        assert props["PointInTimeRecoverySpecification"] == {
            "PointInTimeRecoveryEnabled": server.config.point_in_time_recovery
        }
        assert props["SSESpecification"] == {"SSEEnabled": True}
        assert "GlobalSecondaryIndexes" not in props
        prod = server.config.stage == "prod"
        assert props.get("DeletionProtectionEnabled", False) is prod
        assert table["DeletionPolicy"] == ("Retain" if prod else "Delete"), table_id


def test_function_permissions_are_exact(synth: Synth) -> None:
    for server in synth.servers.values():
        template = synth.template(server.stack_name)
        table_id, _ = only(template, "AWS::DynamoDB::Table")
        statements = policy_statements(template)
        table_statements = [s for s in statements if any(a.startswith("dynamodb:") for a in as_list(s["Action"]))]
        assert len(table_statements) == 1
        assert sorted(as_list(table_statements[0]["Action"])) == sorted(TABLE_ACTIONS)
        assert table_statements[0]["Resource"] == {"Fn::GetAtt": [table_id, "Arn"]}
        actions = {a for s in statements for a in as_list(s["Action"])}
        assert "dynamodb:Scan" not in actions
        assert not any(a.endswith("*") for a in actions)
        logs = [s for s in statements if "logs:PutLogEvents" in as_list(s["Action"])]
        assert len(logs) == 1
        assert logs[0]["Resource"]["Fn::GetAtt"][0] in of_type(template, "AWS::Logs::LogGroup")
        # No AWS managed policy: AWSLambdaBasicExecutionRole would allow every log group.
        _, role = only(template, "AWS::IAM::Role")
        assert "ManagedPolicyArns" not in role["Properties"]
        kms = [s for s in statements if "kms:Sign" in as_list(s["Action"])]
        cognito = [s for s in statements if "cognito-idp:DescribeUserPoolClient" in as_list(s["Action"])]
        if server.config.auth == "oauth":
            key_id, _ = only(template, "AWS::KMS::Key")
            pool_id, _ = only(template, "AWS::Cognito::UserPool")
            assert [sorted(as_list(s["Action"])) for s in kms] == [["kms:GetPublicKey", "kms:Sign"]]
            assert kms[0]["Resource"] == {"Fn::GetAtt": [key_id, "Arn"]}
            assert [s["Resource"] for s in cognito] == [{"Fn::GetAtt": [pool_id, "Arn"]}]
        else:
            assert not kms
            assert not cognito


def test_secrets_and_declared_statements(synth: Synth) -> None:
    server = synth.servers["fixture-full"]
    statements = policy_statements(synth.template(server.stack_name))
    ssm = [s for s in statements if as_list(s["Action"]) == ["ssm:GetParameter"]]
    assert len(ssm) == 1
    assert ":parameter/fixture/db-password" in json.dumps(ssm[0]["Resource"])
    sm = [s for s in statements if as_list(s["Action"]) == ["secretsmanager:GetSecretValue"]]
    assert len(sm) == 1
    assert ":secret:fixture/api-key-??????" in json.dumps(sm[0]["Resource"])
    declared = [
        (as_list(s["Action"]), s["Resource"]) for s in statements if s["Action"] in ("s3:GetObject", "sqs:SendMessage")
    ]
    assert declared == [
        (["s3:GetObject"], "arn:aws:s3:::fixture-bucket/docs/*"),
        (["sqs:SendMessage"], "arn:aws:sqs:eu-west-1:123456789012:jobs"),
    ]
    # Only names reach the environment, never values.
    _, fn = only(synth.template(server.stack_name), "AWS::Lambda::Function")
    env = fn["Properties"]["Environment"]["Variables"]
    assert env["API_KEY_SECRET_NAME"] == "fixture/api-key"
    assert env["DB_PASSWORD_SSM_PARAMETER"] == "/fixture/db-password"
    assert env["FEATURE_FLAG"] == "on"


def test_oauth_user_pool_client_domain_and_key(synth: Synth) -> None:
    for server in synth.servers.values():
        template = synth.template(server.stack_name)
        if server.config.auth != "oauth":
            assert not of_type(template, "AWS::Cognito::UserPool")
            assert not of_type(template, "AWS::KMS::Key")
            continue
        t = Template.from_json(template)
        plus = server.config.oauth.feature_plan == "plus"
        mfa = server.config.oauth.mfa
        pool_id, pool = only(template, "AWS::Cognito::UserPool")
        props = pool["Properties"]
        assert props["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is not server.config.oauth.self_sign_up
        assert props["UsernameAttributes"] == ["email"]
        policy = props["Policies"]["PasswordPolicy"]
        assert policy["MinimumLength"] >= 12
        assert all(policy[k] for k in ("RequireLowercase", "RequireUppercase", "RequireNumbers", "RequireSymbols"))
        assert props["UserPoolTier"] == ("PLUS" if plus else "ESSENTIALS")
        assert props["MfaConfiguration"] == {"off": "OFF", "optional": "OPTIONAL", "required": "ON"}[mfa]
        if plus:
            assert props["UserPoolAddOns"] == {"AdvancedSecurityMode": "ENFORCED"}
        prod = server.config.stage == "prod"
        assert props.get("DeletionProtection", "INACTIVE") == ("ACTIVE" if prod else "INACTIVE")
        assert pool["DeletionPolicy"] == ("Retain" if prod else "Delete")

        _, resource_server = only(template, "AWS::Cognito::UserPoolResourceServer")
        assert resource_server["Properties"]["Identifier"] == RESOURCE_SERVER_ID
        assert [s["ScopeName"] for s in resource_server["Properties"]["Scopes"]] == [TOOLS_SCOPE]

        client_id, client = only(template, "AWS::Cognito::UserPoolClient")
        cprops = client["Properties"]
        assert cprops["GenerateSecret"] is True
        assert cprops["AllowedOAuthFlows"] == ["code"]
        assert cprops["AllowedOAuthFlowsUserPoolClient"] is True
        assert cprops["SupportedIdentityProviders"] == ["COGNITO"]
        assert cprops["PreventUserExistenceErrors"] == "ENABLED"
        scopes = json.dumps(cprops["AllowedOAuthScopes"])
        assert '"openid"' in scopes
        assert '"email"' in scopes
        assert f"/{TOOLS_SCOPE}" in scopes
        callback = cprops["CallbackURLs"]
        assert len(callback) == 1
        domain = server.config.custom_domain
        if domain is not None:
            assert callback == [f"https://{domain.domain_name}/oauth/callback"]
        elif server.config.stream_responses:
            # The function URL ends with "/".
            url_id, _ = only(template, "AWS::Lambda::Url")
            assert callback == [{"Fn::Join": ["", [{"Fn::GetAtt": [url_id, "FunctionUrl"]}, "oauth/callback"]]}]
        else:
            api_id, _ = only(template, "AWS::ApiGatewayV2::Api")
            assert callback == [{"Fn::Join": ["", [{"Fn::GetAtt": [api_id, "ApiEndpoint"]}, "/oauth/callback"]]}]

        _, pool_domain = only(template, "AWS::Cognito::UserPoolDomain")
        assert pool_domain["Properties"]["ManagedLoginVersion"] == 2
        assert pool_domain["Properties"]["Domain"] == {
            "Fn::Join": ["-", [domain_prefix_base(server.stack_name), {"Ref": "AWS::AccountId"}]]
        }
        t.has_resource_properties(
            "AWS::Cognito::ManagedLoginBranding",
            {"UserPoolId": {"Ref": pool_id}, "ClientId": {"Ref": client_id}, "UseCognitoProvidedValues": True},
        )
        _, key = only(template, "AWS::KMS::Key")
        assert key["Properties"]["KeySpec"] == "RSA_2048"
        assert key["Properties"]["KeyUsage"] == "SIGN_VERIFY"
        assert key["Properties"].get("EnableKeyRotation", False) is False
        assert key["DeletionPolicy"] == ("Retain" if prod else "Delete")


def test_domain_prefix_avoids_reserved_words_and_fits() -> None:
    base = domain_prefix_base("McpServer-aws-cognito-" + "x" * 40)
    assert "aws" not in base
    assert "cognito" not in base
    assert len(base) + 1 + 12 <= 63


def test_custom_domain_with_zone(synth: Synth) -> None:
    template = synth.template(synth.servers["fixture-full"].stack_name)
    t = Template.from_json(template)
    cert_id, cert = only(template, "AWS::CertificateManager::Certificate")
    assert cert["Properties"]["DomainName"] == "mcp.example.com"
    assert cert["Properties"]["ValidationMethod"] == "DNS"
    assert cert["Properties"]["DomainValidationOptions"] == [
        {"DomainName": "mcp.example.com", "HostedZoneId": "Z0123456789ABCDEFGHIJ"}
    ]
    domain_id, domain = only(template, "AWS::ApiGatewayV2::DomainName")
    assert domain["Properties"]["DomainName"] == "mcp.example.com"
    assert domain["Properties"]["DomainNameConfigurations"][0]["CertificateArn"] == {"Ref": cert_id}
    assert domain["Properties"]["DomainNameConfigurations"][0]["SecurityPolicy"] == "TLS_1_2"
    api_id, _ = only(template, "AWS::ApiGatewayV2::Api")
    t.has_resource_properties(
        "AWS::ApiGatewayV2::ApiMapping", {"ApiId": {"Ref": api_id}, "DomainName": {"Ref": domain_id}}
    )
    t.has_resource_properties(
        "AWS::Route53::RecordSet",
        {
            "Name": "mcp.example.com.",
            "Type": "A",
            "HostedZoneId": "Z0123456789ABCDEFGHIJ",
            "AliasTarget": Match.object_like({"DNSName": {"Fn::GetAtt": [domain_id, "RegionalDomainName"]}}),
        },
    )
    outputs = template["Outputs"]
    assert outputs["McpServerUrl"]["Value"] == "https://mcp.example.com/mcp"


def test_custom_domain_with_existing_certificate(synth: Synth) -> None:
    template = synth.template(synth.servers["fixture-oauth"].stack_name)
    assert not of_type(template, "AWS::CertificateManager::Certificate")
    assert not of_type(template, "AWS::Route53::RecordSet")
    _, domain = only(template, "AWS::ApiGatewayV2::DomainName")
    assert domain["Properties"]["DomainNameConfigurations"][0]["CertificateArn"] == (
        "arn:aws:acm:eu-west-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
    )
    assert "CustomDomainTarget" in template["Outputs"]


def test_outputs_for_the_cli_and_the_connector(synth: Synth) -> None:
    for server in synth.servers.values():
        template = synth.template(server.stack_name)
        outputs = template["Outputs"]
        url = outputs["McpServerUrl"]["Value"]
        if server.config.stream_responses:
            url_id, _ = only(template, "AWS::Lambda::Url")
            assert url == {"Fn::Join": ["", [{"Fn::GetAtt": [url_id, "FunctionUrl"]}, "mcp"]]}
        elif server.config.custom_domain is None:
            api_id, _ = only(template, "AWS::ApiGatewayV2::Api")
            assert url == {"Fn::Join": ["", [{"Fn::GetAtt": [api_id, "ApiEndpoint"]}, "/mcp"]]}
        steps = json.dumps(outputs["ConnectorSteps"]["Value"])
        assert "Settings > Connectors > Add custom connector" in steps
        assert f"claude mcp add --transport http {server.name} " in steps
        table_id, _ = only(template, "AWS::DynamoDB::Table")
        assert outputs["TableName"]["Value"] == {"Ref": table_id}
        if server.config.auth == "oauth":
            pool_id, _ = only(template, "AWS::Cognito::UserPool")
            assert outputs["UserPoolId"]["Value"] == {"Ref": pool_id}
        else:
            assert "UserPoolId" not in outputs


def test_alarms_and_dashboard(synth: Synth) -> None:
    for server in synth.servers.values():
        template = synth.template(server.stack_name)
        alarms = list(of_type(template, "AWS::CloudWatch::Alarm").values())
        cfg = server.config.alarms
        # Alarms exist only with a topic to notify (each costs $0.10 a month); the dashboard only when asked for.
        # The front's 5xx and latency: the HTTP API's, or Lambda's function URL metrics.
        five_xx, latency_metric = (
            (("AWS/Lambda", "Url5xxCount"), ("AWS/Lambda", "UrlRequestLatency"))
            if server.config.stream_responses
            else (("AWS/ApiGateway", "5xx"), ("AWS/ApiGateway", "Latency"))
        )
        if cfg.topic_arn is None:
            assert alarms == []
        else:
            by_metric = {(a["Properties"]["Namespace"], a["Properties"]["MetricName"]): a["Properties"] for a in alarms}
            assert set(by_metric) == {("AWS/Lambda", "Errors"), ("AWS/Lambda", "Throttles"), five_xx, latency_metric}
            assert by_metric["AWS/Lambda", "Errors"]["Threshold"] == cfg.error_threshold
            assert by_metric[five_xx]["Threshold"] == cfg.error_threshold
            assert by_metric["AWS/Lambda", "Throttles"]["Threshold"] == 1
            latency = by_metric[latency_metric]
            assert latency["Threshold"] == cfg.p99_latency_ms
            assert latency["ExtendedStatistic"] == "p99"
            assert all(a["Properties"]["TreatMissingData"] == "notBreaching" for a in alarms)
            actions = [a["Properties"].get("AlarmActions") for a in alarms]
            assert actions == [[cfg.topic_arn]] * 4
        dashboards = of_type(template, "AWS::CloudWatch::Dashboard")
        assert ("DashboardName" in template["Outputs"]) == server.config.dashboard
        if not server.config.dashboard:
            assert dashboards == {}
            continue
        _, dashboard = only(template, "AWS::CloudWatch::Dashboard")
        body = json.dumps(dashboard["Properties"]["DashboardBody"])
        for metric in (
            "Invocations",
            "Errors",
            "Throttles",
            "Duration",
            "ThrottledRequests",
            five_xx[1],
            latency_metric[1],
        ):
            assert metric in body
        front_metrics = ("UrlRequestCount", "Url4xxCount") if server.config.stream_responses else ("Count", "4xx")
        # The body is a Fn::Join of JSON text and tokens; its text names each metric in quotes.
        text = "".join(
            part for part in dashboard["Properties"]["DashboardBody"]["Fn::Join"][1] if isinstance(part, str)
        )
        assert all(f'"{m}"' in text for m in front_metrics), text
        assert ("Alarms" in body) == bool(alarms)


def test_session_key_is_drawn_by_the_stack_and_never_logged(synth: Synth) -> None:
    for server in synth.servers.values():
        template = synth.template(server.stack_name)
        keys = {k: v for k, v in template["Resources"].items() if v["Type"] == "Custom::AWS"}
        assert len(keys) == 1
        ((key_id, key),) = keys.items()
        assert key_id.startswith("ServerSessionKey")
        for event in ("Create", "Update"):
            call = json.loads(key["Properties"][event])
            assert call["service"] == "SecretsManager"
            assert call["action"] == "getRandomPassword"
            assert call["parameters"] == {"PasswordLength": 64, "ExcludePunctuation": True}
            assert call["logApiResponseData"] is False
        assert "Delete" not in key["Properties"]
        provider = {k: v for k, v in template["Resources"].items() if k.startswith(SESSION_KEY_PARTS[1])}
        function = next(v for v in provider.values() if v["Type"] == "AWS::Lambda::Function")
        role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
        assert role_id.startswith("ServerSessionKeyRole")
        role = template["Resources"][role_id]["Properties"]
        assert "ManagedPolicyArns" not in role
        statements = [
            statement
            for policy in template["Resources"].values()
            if policy["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in policy["Properties"]["Roles"]
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        ]
        actions = sorted(a for s in statements for a in as_list(s["Action"]))
        assert actions == ["logs:CreateLogStream", "logs:PutLogEvents", "secretsmanager:GetRandomPassword"]
        logs_group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert template["Resources"][logs_group]["Properties"]["RetentionInDays"] == server.config.log_retention_days


def test_request_state_is_sealed_under_a_key_derived_from_the_one_drawn_secret(
    synth: Synth, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every instance must open what another sealed (handlers/request_state.py): the key comes from the
    function's environment, from the same drawn secret as the session key, and from nothing else."""
    import secrets

    from handlers.request_state import request_state_key, shared_security
    from handlers.settings import Settings

    for server in synth.servers.values():
        template = synth.template(server.stack_name)
        (key_id,) = [k for k, v in template["Resources"].items() if v["Type"] == "Custom::AWS"]
        _, fn = only(template, "AWS::Lambda::Function")
        env = fn["Properties"]["Environment"]["Variables"]
        # One secret drawn at deploy, in one variable; no second key to draw, store or leak.
        drawn = [name for name, value in env.items() if key_id in json.dumps(value)]
        assert drawn == ["MCPKIT_SESSION_KEY"], server.name
        assert not [name for name in env if "REQUEST_STATE" in name and "TTL" not in name], server.name

        # WHEN two instances start from that environment (the drawn value filled in; OAuth's ids are
        # other resources' attributes, which this check does not need)
        secret = secrets.token_urlsafe(48)
        for name, value in env.items():
            if name.startswith("MCPKIT_") and isinstance(value, str):
                monkeypatch.setenv(name, value)
        monkeypatch.setenv("MCPKIT_SESSION_KEY", secret)
        monkeypatch.setenv("MCPKIT_AUTH_MODE", "none")
        one, two = shared_security(Settings()), shared_security(Settings())
        # THEN what one seals the other opens, under a key derived from the secret, not the secret itself
        assert one is not None, server.name
        assert two is not None, server.name
        assert two.codec.unseal(one.codec.seal(b"round one")) == b"round one"
        assert request_state_key(secret.encode()) != secret.encode()[:32]
