"""Who may sign in, as synthesized: sign-up closed unless the config opens it, the required group in the pool,
and the outputs `mcpkit users` / `mcpkit grants` read."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.stacks.conftest import Synth

pytestmark = pytest.mark.slow


def _of_type(template: dict[str, Any], cfn_type: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == cfn_type}


def _pool(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    (found,) = _of_type(template, "AWS::Cognito::UserPool").items()
    return found


def test_sign_up_is_closed_by_default(synth: Synth) -> None:
    server = synth.servers["fixture-oauth"]
    assert server.config.oauth.self_sign_up is False
    _, pool = _pool(synth.template(server.stack_name))
    assert pool["Properties"]["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True


def test_self_sign_up_follows_the_config(synth: Synth) -> None:
    server = synth.servers["fixture-full"]
    assert server.config.oauth.self_sign_up is True
    _, pool = _pool(synth.template(server.stack_name))
    assert pool["Properties"]["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is False


def test_required_group_is_a_group_of_the_pool_and_an_output(synth: Synth) -> None:
    server = synth.servers["fixture-full"]
    template = synth.template(server.stack_name)
    pool_id, _ = _pool(template)
    (group_id, group), *others = _of_type(template, "AWS::Cognito::UserPoolGroup").items()
    assert not others
    assert group["Properties"]["GroupName"] == "mcp-users" == server.config.oauth.required_group
    assert group["Properties"]["UserPoolId"] == {"Ref": pool_id}
    assert template["Outputs"]["RequiredGroup"]["Value"] == {"Ref": group_id}
    fn = next(iter(_of_type(template, "AWS::Lambda::Function").values()))
    assert fn["Properties"]["Environment"]["Variables"]["MCPKIT_REQUIRED_GROUP"] == "mcp-users"


def test_no_group_without_required_group(synth: Synth) -> None:
    for server in synth.servers.values():
        if server.config.auth != "oauth" or server.config.oauth.required_group is not None:
            continue
        template = synth.template(server.stack_name)
        assert not _of_type(template, "AWS::Cognito::UserPoolGroup"), server.name
        assert "RequiredGroup" not in template["Outputs"]
        assert "MCPKIT_REQUIRED_GROUP" not in json_env(template)


def test_cli_outputs_of_every_oauth_stack(synth: Synth) -> None:
    for server in synth.servers.values():
        outputs = synth.template(server.stack_name)["Outputs"]
        assert "TableName" in outputs
        assert ("UserPoolId" in outputs) is (server.config.auth == "oauth")


def json_env(template: dict[str, Any]) -> dict[str, Any]:
    fn = next(iter(_of_type(template, "AWS::Lambda::Function").values()))
    env: dict[str, Any] = fn["Properties"]["Environment"]["Variables"]
    return env
