"""2026-07-28 multi round-trip requests across Lambda instances: the sealed `requestState`.

Each "instance" is the real handler's `LambdaApp` built from the deployed environment, serving
its own copy of the conformance server (loaded from its own folder, so each has its own
`MCPServer`, as separate Lambda execution environments do). They share only what deployed
instances share: the environment (the deploy-drawn secret) and the table.
"""

from __future__ import annotations

import json
import shutil
import time
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import SecretStr

from handlers.settings import Settings
from mcpkit.messages import MODERN, rpc
from tests.conftest import ROOT, Invoker, load_event

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

INVALID_STATE = {"code": -32602, "message": "Invalid or expired requestState"}
CAPABILITIES: dict[str, Any] = {"elicitation": {"form": {}}, "sampling": {}, "roots": {}}


def call(invoke: Invoker, tool: str, **params: Any) -> dict[str, Any]:
    """A 2026-07-28 tools/call of `tool` with `params` (inputResponses, requestState); the JSON-RPC message."""
    body = {
        "name": tool,
        "arguments": {},
        **params,
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientInfo": {"name": "pytest", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": CAPABILITIES,
        },
    }
    headers = {"mcp-protocol-version": MODERN, "mcp-method": "tools/call", "mcp-name": tool}
    response = invoke(rpc("tools/call", body), headers=headers)
    message: dict[str, Any] = json.loads(response["body"])
    return message


def accept(**content: Any) -> dict[str, Any]:
    return {"action": "accept", "content": content}


@pytest.fixture
def instance(lambda_module: Any, tmp_path: Path) -> Callable[..., Invoker]:
    """`instance(name, **settings)`: a new Lambda instance with its own copy of the conformance server."""

    def build(name: str, **settings: Any) -> Invoker:
        folder = tmp_path / name
        folder.mkdir()
        shutil.copy(ROOT / "servers" / "conformance" / "server.py", folder / "server.py")
        app = lambda_module.LambdaApp(Settings(server=f"{folder / 'server.py'}:mcp", **settings))
        return Invoker(app, load_event("http_api_post_mcp"))

    return build


def test_each_round_may_land_on_another_instance(instance: Callable[..., Invoker]) -> None:
    # GIVEN three instances of one deployment
    first, second, third = instance("a"), instance("b"), instance("c")

    # WHEN round one is answered by the first, round two by the second, round three by the third
    one = call(first, "test_input_required_result_multi_round")["result"]
    assert one["resultType"] == "input_required", one
    two = call(
        second,
        "test_input_required_result_multi_round",
        inputResponses={"step1": accept(name="Alice")},
        requestState=one["requestState"],
    )["result"]
    assert two["resultType"] == "input_required", two
    assert list(two["inputRequests"]) == ["step2"]
    three = call(
        third,
        "test_input_required_result_multi_round",
        inputResponses={"step2": accept(color="blue")},
        requestState=two["requestState"],
    )["result"]

    # THEN the last one finishes with what the first round learnt (carried in the sealed state)
    assert three["resultType"] == "complete", three
    assert three["content"][0]["text"] == "Alice's favorite color is blue."


def _flip(state: str, at: int) -> str:
    return state[:at] + ("A" if state[at] != "A" else "B") + state[at + 1 :]


def test_tampered_unknown_and_foreign_states_are_refused_with_the_spec_error(
    instance: Callable[..., Invoker],
) -> None:
    # GIVEN a state sealed by one instance
    sealer, other = instance("a"), instance("b")
    state = call(sealer, "test_input_required_result_tampered_state")["result"]["requestState"]
    answers = {"confirm": accept(ok=True)}

    refused = {
        "tampered in the middle": _flip(state, len(state) // 2),
        "tampered in the tag": _flip(state, len(state) - 3),
        "cut short": state[:-10],
        "made up": "v1." + "A" * 80,
        "not ours at all": "confirm-pending",
    }
    # WHEN another instance gets it back changed in any way, or one that no instance sealed
    for what, bad in refused.items():
        message = call(other, "test_input_required_result_tampered_state", inputResponses=answers, requestState=bad)
        # THEN it is refused with -32602 and the body never ran
        assert message.get("error", {}) | {"data": None} == INVALID_STATE | {"data": None}, (what, message)

    # AND the untouched state still completes there
    done = call(other, "test_input_required_result_tampered_state", inputResponses=answers, requestState=state)
    assert done["result"]["resultType"] == "complete", done


def test_state_sealed_by_another_deployment_is_refused(instance: Callable[..., Invoker]) -> None:
    # GIVEN an instance of another deployment (its own drawn secret)
    elsewhere = instance("elsewhere", session_key="another-deployment-secret-of-32-characters")
    state = call(elsewhere, "test_input_required_result_tampered_state")["result"]["requestState"]
    # WHEN its state is sent to this deployment, THEN it is refused
    message = call(
        instance("here"),
        "test_input_required_result_tampered_state",
        inputResponses={"confirm": accept(ok=True)},
        requestState=state,
    )
    assert message["error"]["code"] == INVALID_STATE["code"], message


def test_state_for_other_arguments_is_refused(instance: Callable[..., Invoker]) -> None:
    # A state answers one request: the same tool called with other arguments cannot reuse it.
    sealer, other = instance("a"), instance("b")
    state = call(sealer, "test_input_required_result_request_state")["result"]["requestState"]
    message = call(
        other,
        "test_input_required_result_request_state",
        arguments={"unexpected": 1},
        inputResponses={"confirm": accept(ok=True)},
        requestState=state,
    )
    assert message["error"]["code"] == INVALID_STATE["code"], message


def test_an_expired_state_is_refused(instance: Callable[..., Invoker], monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a state sealed with a 60 s lifetime
    sealer, other = instance("a", request_state_ttl_seconds=60), instance("b")
    state = call(sealer, "test_input_required_result_request_state")["result"]["requestState"]
    answers = {"confirm": accept(ok=True)}

    # WHEN the answer comes back 61 s later (the clock moved, no one waits), THEN it is refused
    sealed_at = time.time()
    monkeypatch.setattr(time, "time", lambda: sealed_at + 61)
    late = call(other, "test_input_required_result_request_state", inputResponses=answers, requestState=state)
    assert late["error"]["code"] == INVALID_STATE["code"], late

    # AND within its lifetime it completes
    monkeypatch.setattr(time, "time", lambda: sealed_at + 59)
    on_time = call(other, "test_input_required_result_request_state", inputResponses=answers, requestState=state)
    assert "state-ok" in on_time["result"]["content"][0]["text"], on_time


def test_the_key_is_derived_from_the_deploy_secret_under_its_own_label() -> None:
    from handlers.request_state import request_state_key

    root = b"the-secret-the-stack-draws-at-deploy-64-chars"
    key = request_state_key(root)
    # Every instance derives the same key; another secret gives an unrelated one; the root never seals.
    assert key == request_state_key(root)
    assert len(key) == 32
    assert key != request_state_key(root + b"x")
    assert root[:32] != key


def test_loading_fails_loudly_when_the_sdk_stops_installing_a_request_state_boundary() -> None:
    # What breaks on an SDK upgrade that moves the boundary: the kit would otherwise seal with a
    # per-instance key and every round two on another instance would fail.
    from mcp.server.mcpserver import MCPServer, RequestStateBoundary

    from handlers.request_state import install

    server = MCPServer("upgrade-probe")
    assert sum(isinstance(layer, RequestStateBoundary) for layer in server.middleware) == 1
    install(server, Settings(session_key=SecretStr("k" * 32)))
    assert sum(isinstance(layer, RequestStateBoundary) for layer in server.middleware) == 1
    server.middleware[:] = [layer for layer in server.middleware if not isinstance(layer, RequestStateBoundary)]
    with pytest.raises(RuntimeError, match="no longer installs a RequestStateBoundary"):
        install(server, Settings(session_key=SecretStr("k" * 32)))
