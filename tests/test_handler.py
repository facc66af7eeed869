"""The Lambda handler, driven with real API Gateway HTTP API events, for every protocol revision."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from mcpkit.local_gateway import LambdaContext
from mcpkit.messages import MODERN, modern_meta, rpc

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import Invoker

HANDSHAKE_REVISIONS = ["2025-03-26", "2025-06-18", "2025-11-25"]
NAME_PARAM = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}


def body_of(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


def initialize(invoke: Invoker, version: str) -> str:
    response = invoke(
        rpc(
            "initialize",
            {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "pytest", "version": "1"}},
        )
    )
    assert response["statusCode"] == 200, response
    assert body_of(response)["result"]["protocolVersion"] == version
    session_id: str = response["headers"]["mcp-session-id"]
    return session_id


def session_headers(session_id: str, version: str) -> dict[str, str]:
    # 2025-03-26 predates the MCP-Protocol-Version header; later revisions must send it.
    headers = {"mcp-session-id": session_id}
    if version != "2025-03-26":
        headers["mcp-protocol-version"] = version
    return headers


def modern(invoke: Invoker, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    params = dict(params or {})
    params["_meta"] = modern_meta("pytest")
    headers = {"mcp-protocol-version": MODERN, "mcp-method": method}
    if method in NAME_PARAM:
        headers["mcp-name"] = params[NAME_PARAM[method]]
    return invoke(rpc(method, params), headers=headers)


@pytest.mark.parametrize("version", HANDSHAKE_REVISIONS)
def test_handshake_revision_full_lifecycle(invoke: Invoker, version: str) -> None:
    # GIVEN a session opened with initialize
    session_id = initialize(invoke, version)
    headers = session_headers(session_id, version)

    # WHEN the client completes the handshake and uses every capability
    assert invoke(rpc("notifications/initialized", id_=None), headers=headers)["statusCode"] == 202
    tools = body_of(invoke(rpc("tools/list"), headers=headers))["result"]["tools"]
    call = body_of(invoke(rpc("tools/call", {"name": "add", "arguments": {"a": 2, "b": 40}}), headers=headers))
    resource = body_of(invoke(rpc("resources/read", {"uri": "example://server-time"}), headers=headers))
    prompt = body_of(invoke(rpc("prompts/get", {"name": "review_code", "arguments": {"code": "x=1"}}), headers=headers))

    # THEN each answers from the example server
    assert {t["name"] for t in tools} == {"add", "echo"}
    assert call["result"]["structuredContent"] == {"result": 42.0}
    assert resource["result"]["contents"][0]["uri"] == "example://server-time"
    assert "x=1" in prompt["result"]["messages"][0]["content"]["text"]

    # AND DELETE ends the session, after which it is unknown (404, as the spec requires)
    assert invoke(method="DELETE", headers=headers)["statusCode"] == 204
    gone = invoke(rpc("tools/list"), headers=headers)
    assert gone["statusCode"] == 404
    assert body_of(gone)["error"]["code"] == -32600
    assert invoke(method="DELETE", headers=headers)["statusCode"] == 404


def test_modern_revision_needs_no_session_and_never_touches_dynamodb(
    invoke: Invoker, dynamodb_calls: list[str]
) -> None:
    discover = modern(invoke, "server/discover")
    tools = modern(invoke, "tools/list")
    call = modern(invoke, "tools/call", {"name": "echo", "arguments": {"text": "hi", "repeat": 2}})
    resource = modern(invoke, "resources/read", {"uri": "example://server-time"})
    prompt = modern(invoke, "prompts/get", {"name": "review_code", "arguments": {"code": "y"}})

    assert discover["statusCode"] == 200, discover
    assert MODERN in body_of(discover)["result"]["supportedVersions"]
    assert {t["name"] for t in body_of(tools)["result"]["tools"]} == {"add", "echo"}
    assert body_of(call)["result"]["structuredContent"] == {"result": "hi hi"}
    assert body_of(resource)["result"]["contents"][0]["uri"] == "example://server-time"
    assert body_of(prompt)["result"]["messages"]
    assert "mcp-session-id" not in call["headers"]
    assert dynamodb_calls == []


def test_modern_request_whose_headers_disagree_with_body_is_rejected(invoke: Invoker) -> None:
    response = invoke(
        rpc("tools/call", {"name": "add", "arguments": {"a": 1, "b": 2}, "_meta": {}}),
        headers={"mcp-protocol-version": MODERN, "mcp-method": "tools/list"},
    )
    assert response["statusCode"] == 400
    assert "error" in body_of(response)


def test_session_use_on_the_instance_that_opened_it_costs_no_dynamodb_call(
    invoke: Invoker, dynamodb_calls: list[str]
) -> None:
    # Other instances read it once per trust window: tests/test_cold_path.py.
    session_id = initialize(invoke, "2025-11-25")
    assert dynamodb_calls == ["PutItem"]
    invoke(rpc("tools/list"), headers=session_headers(session_id, "2025-11-25"))
    assert dynamodb_calls == ["PutItem"]


def test_request_without_session_id_is_still_served(invoke: Invoker) -> None:
    # Claude's connector never echoes Mcp-Session-Id (claude-ai-mcp #975).
    initialize(invoke, "2025-06-18")
    response = invoke(rpc("tools/list"), headers={"mcp-protocol-version": "2025-06-18"})
    assert response["statusCode"] == 200
    assert body_of(response)["result"]["tools"]


def test_unknown_and_malformed_session_ids_are_404_and_malformed_ones_cost_nothing(
    invoke: Invoker, dynamodb_calls: list[str]
) -> None:
    unknown = invoke(rpc("tools/list"), headers={"mcp-session-id": "0" * 32})
    assert unknown["statusCode"] == 404
    assert dynamodb_calls == ["GetItem"]
    malformed = invoke(rpc("tools/list"), headers={"mcp-session-id": "'; DROP TABLE --"})
    assert malformed["statusCode"] == 404
    assert dynamodb_calls == ["GetItem"]


def test_2025_03_26_client_without_version_header_is_served_with_the_negotiated_version(invoke: Invoker) -> None:
    session_id = initialize(invoke, "2025-03-26")
    response = invoke(
        rpc("tools/call", {"name": "add", "arguments": {"a": 1, "b": 1}}), headers={"mcp-session-id": session_id}
    )
    assert response["statusCode"] == 200
    assert body_of(response)["result"]["content"][0]["text"] == "2.0"


def test_delete_without_session_header_is_a_clear_400(invoke: Invoker) -> None:
    response = invoke(method="DELETE")
    assert response["statusCode"] == 400
    assert "Mcp-Session-Id" in body_of(response)["error"]["message"]


def test_get_is_405_with_allow_instead_of_an_endless_stream(invoke: Invoker) -> None:
    response = invoke(method="GET", headers={"accept": "text/event-stream"})
    assert response["statusCode"] == 405
    assert response["headers"]["allow"] == "POST, DELETE"


def test_warm_invocations_keep_working(invoke: Invoker) -> None:
    # Mangum's per-invocation lifespan would re-run the SDK's session manager and fail from the
    # second invocation on (python-sdk #3121); the instance must serve many in a row.
    for i in range(25):
        response = modern(invoke, "tools/call", {"name": "add", "arguments": {"a": i, "b": 1}})
        assert body_of(response)["result"]["structuredContent"] == {"result": i + 1.0}


def test_event_loop_replaced_by_other_code_does_not_break_the_instance(invoke: Invoker) -> None:
    import asyncio

    async def unrelated() -> int:
        return 1

    asyncio.run(unrelated())  # leaves the thread without a current loop
    assert modern(invoke, "tools/list")["statusCode"] == 200


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com", 200),  # the domain in the request context
        ("mcp.example.com", 200),  # a configured custom domain
        ("MCP.EXAMPLE.COM:443", 200),
        ("attacker.example.net", 421),
        ("127.0.0.1:8000", 421),
    ],
)
def test_host_must_be_where_the_request_really_arrived(invoke: Invoker, host: str, expected: int) -> None:
    response = invoke(rpc("tools/list"), headers={"host": host, "mcp-protocol-version": "2025-11-25"})
    assert response["statusCode"] == expected
    if expected == 421:
        assert "not a name this server is deployed on" in body_of(response)["error"]["message"]


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("http://localhost:6274", 200),  # allow-listed (the MCP Inspector)
        ("https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com", 200),  # same origin
        ("https://evil.example.net", 403),
        ("null", 403),
    ],
)
def test_origin_must_be_allow_listed(invoke: Invoker, origin: str, expected: int) -> None:
    response = invoke(rpc("tools/list"), headers={"origin": origin, "mcp-protocol-version": "2025-11-25"})
    assert response["statusCode"] == expected
    if expected == 403:
        assert "allowed_origins" in body_of(response)["error"]["message"]


def test_malformed_json_is_a_jsonrpc_parse_error_not_a_crash(invoke: Invoker) -> None:
    response = invoke(raw_body="{not json", headers={"mcp-protocol-version": "2025-11-25"})
    assert response["statusCode"] == 400
    assert body_of(response)["error"]["code"] == -32700


def test_oversized_body_is_413(invoke: Invoker) -> None:
    response = invoke(raw_body="x" * (1024 * 1024 + 1), headers={"mcp-protocol-version": "2025-11-25"})
    assert response["statusCode"] == 413


def test_session_store_outage_is_503_with_retry_after(invoke: Invoker, lambda_module: Any) -> None:
    table = lambda_module.lambda_app.runtime.table
    real_name = table.name
    table.name = "no-such-table"
    try:
        response = invoke(rpc("tools/list"), headers={"mcp-session-id": "a" * 32})
    finally:
        table.name = real_name
    assert response["statusCode"] == 503
    assert response["headers"]["retry-after"] == "1"
    assert body_of(response)["error"]["code"] == -32001


def test_snapstart_after_restore_hook_is_registered_and_renews_instance_state(lambda_module: Any) -> None:
    import snapshot_restore_py

    hooks = snapshot_restore_py.get_after_restore()
    assert any(getattr(h[0], "__func__", None) is type(lambda_module.lambda_app).after_restore for h in hooks)
    table = lambda_module.lambda_app.runtime.table
    client_before = table.client
    for hook, args, kwargs in hooks:
        hook(*args, **kwargs)
    assert table.client is not client_before


def test_non_http_invocation_goes_to_the_servers_handle_event(tmp_path: Path, lambda_module: Any) -> None:
    # GIVEN a server module with its own entry for asynchronous self-invocations (long-task template)
    (tmp_path / "server.py").write_text(
        "from mcp.server.mcpserver import MCPServer\n"
        "mcp = MCPServer('worker')\n"
        "def handle_event(event, context):\n"
        "    return {'handled': event['job']}\n"
    )
    # Through `lambda_module`: importing handlers.lambda_handler here first would build the module's
    # own app without the deployed environment, and every later handler test would use that one.
    from handlers.settings import Settings

    app = lambda_module.LambdaApp(Settings(server=f"{tmp_path / 'server.py'}:mcp", table_name="unused"))

    # WHEN Lambda delivers an event that did not come through API Gateway
    result = app.handle_event({"job": "j-1"}, LambdaContext())

    # THEN the server's handler gets it
    assert result == {"handled": "j-1"}


def test_non_http_invocation_without_handle_event_is_a_clear_error(lambda_module: Any) -> None:
    with pytest.raises(ValueError, match="defines no handle_event"):
        lambda_module.handler({"job": "x"}, LambdaContext())


def test_snapstart_init_builds_the_dynamodb_client_ahead_and_restore_renews_it(
    lambda_module: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from handlers.settings import Settings

    # GIVEN the init phase that Lambda runs before taking a SnapStart snapshot
    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "snap-start")
    app = lambda_module.LambdaApp(Settings(server="servers/example/server.py:mcp", table_name="unused"))
    snapshotted = app.runtime.table._client

    # WHEN a copy is restored
    app.after_restore()

    # THEN the client was built during init, and the restored copy makes its own
    assert snapshotted is not None
    assert app.runtime.table._client is None
    assert app.runtime.table.client is not snapshotted


def test_snapstart_init_fetches_the_token_verification_key_ahead(
    lambda_module: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    from handlers.settings import Settings

    def oauth_settings(key_id: str) -> Settings:
        return Settings(
            server="servers/example/server.py:mcp",
            table_name="unused",
            auth_mode="oauth",
            kms_key_id=key_id,
            cognito_user_pool_id="unused",
            cognito_client_id="unused",
            dev_login=True,
        )

    key_id = boto3.client("kms").create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]

    # GIVEN the init phase that Lambda runs before taking a SnapStart snapshot
    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "snap-start")
    app = lambda_module.LambdaApp(oauth_settings(key_id))
    # WHEN a copy is restored
    app.after_restore()
    # THEN it verifies tokens with the key fetched during init, without a KMS call or client
    signer = app.runtime.oauth.signer
    assert signer._public is not None
    assert signer._client is None

    # AND a KMS failure during init leaves the key to the first request instead of failing the init
    assert lambda_module.LambdaApp(oauth_settings("alias/missing")).runtime.oauth.signer._public is None


def test_without_snapstart_the_dynamodb_client_stays_lazy(lambda_module: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from handlers.settings import Settings

    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
    app = lambda_module.LambdaApp(Settings(server="servers/example/server.py:mcp", table_name="unused"))
    assert app.runtime.table._client is None


def sse_messages(response: dict[str, Any]) -> list[Any]:
    assert response["headers"]["content-type"].startswith("text/event-stream"), response
    return [json.loads(line[len("data:") :]) for line in response["body"].splitlines() if line.startswith("data:")]


def test_listen_is_acknowledged_and_ended_at_once_not_held_open(invoke: Invoker) -> None:
    # GIVEN a 2026-07-28 listen request, which would open an endless event stream
    filter_ = {"toolsListChanged": True, "resourceSubscriptions": ["example://server-time"]}

    # WHEN the buffered Lambda transport answers it
    response = modern(invoke, "subscriptions/listen", {"notifications": filter_})

    # THEN the answer is complete: the acknowledgment first, tagged with the subscription id and
    # honouring nothing (no event can reach a buffered response), then the graceful end
    ack, end = sse_messages(response)
    assert response["statusCode"] == 200
    assert ack["method"] == "notifications/subscriptions/acknowledged"
    assert ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == 1
    assert ack["params"]["notifications"] == {}
    assert end["id"] == 1
    assert end["result"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == 1


def test_listen_at_a_handshake_revision_is_method_not_found_at_once(invoke: Invoker) -> None:
    # The handshake revisions have no subscriptions/listen; the SDK's version gate answers it.
    session_id = initialize(invoke, "2025-11-25")
    headers = session_headers(session_id, "2025-11-25")
    response = invoke(rpc("subscriptions/listen", {"notifications": {"toolsListChanged": True}}), headers=headers)
    assert body_of(response)["error"]["code"] == -32601
