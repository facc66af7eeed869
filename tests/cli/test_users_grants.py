"""`mcpkit users` and `mcpkit grants`, run as the real CLI against a running `mcpkit dev --auth oauth`
(found through its discovery file) and against a "deployed" stack: a CloudFormation stack in moto
whose outputs name a real table and user pool."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from mcpkit.dev import DevDiscovery, discovery_path, read_discovery, write_discovery
from mcpkit.local_aws import FAKE_AWS_ENVIRONMENT
from mcpkit.server_config import load_server
from tests.auth.harness import Harness, dev_credentials
from tests.conftest import ROOT, start_dev_server, stop_dev_server

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import httpx

    from mcpkit.local_aws import EmbeddedAws

pytestmark = pytest.mark.slow

WHOAMI = ROOT / "tests" / "auth" / "servers" / "whoami"
REQUIRED_GROUP = "staff"


def mcpkit(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI in a child process that sees no emulator unless `env` names one."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MCPKIT_", "AWS_"))}
    result = subprocess.run(
        [sys.executable, "-m", "mcpkit", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**base, "COLUMNS": "200", **(env or {})},
        timeout=60,
        check=False,
    )
    # Whatever happened, the person sees a message, never a stack trace.
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    return result


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result.stdout


def failed(result: subprocess.CompletedProcess[str], code: int, message: str) -> None:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert message in " ".join(result.stderr.split()), result.stderr


def assert_invalid_grant(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_grant"


def make_server(servers_dir: Path, name: str, extra_toml: str = "") -> Path:
    folder = servers_dir / name
    shutil.copytree(WHOAMI, folder)
    with (folder / "mcpkit.toml").open("a", encoding="utf-8") as toml:
        toml.write(extra_toml)
    return folder


# -- against `mcpkit dev --auth oauth` -------------------------------------------------------------


@dataclass
class Dev:
    servers_dir: Path
    name: str
    idle: str  # a server folder of the same project that is not running
    harness: Harness

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return mcpkit(*args, "--dev", "--servers-dir", str(self.servers_dir))

    def grants(self, user: str | None = None) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = json.loads(
            ok(self.cli("grants", "list", "--json", *(["--user", user] if user else [])))
        )
        return rows


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    servers_dir = tmp_path_factory.mktemp("servers")
    suffix = uuid.uuid4().hex[:8]
    name, idle = f"grants{suffix}", f"idle{suffix}"
    make_server(servers_dir, name, f'\n[oauth]\nrequired_group = "{REQUIRED_GROUP}"\n')
    make_server(servers_dir, idle)
    # The embedded emulator of `mcpkit dev` itself: the CLI must find it through the discovery file.
    server = start_dev_server(name, "--servers-dir", str(servers_dir), "--auth", "oauth", ready_when="Dev sign-in:")
    found = read_discovery(load_server(servers_dir / name))
    username, password = dev_credentials(server.output())
    harness = Harness(server, found.aws_endpoint, username, password, server_name=name)
    yield Dev(servers_dir, name, idle, harness)
    harness.http.close()
    stop_dev_server(server)
    assert not discovery_path(load_server(servers_dir / name)).exists(), "mcpkit dev left its discovery file"


def added_password(output: str) -> str:
    found = re.search(r"Dev sign-in:\s+username \S+\s+password (\S+)", output)
    assert found, output
    return found.group(1)


def test_discovery_names_the_running_dev_server(dev: Dev) -> None:
    found = read_discovery(load_server(dev.servers_dir / dev.name))
    assert found.url == dev.harness.server.url
    assert found.pid == dev.harness.server.process.pid
    assert found.user_pool_id is not None
    assert found.required_group == REQUIRED_GROUP


def test_grants_list_and_revoke_one_client_then_all(dev: Dev) -> None:
    email = f"carol-{uuid.uuid4().hex[:6]}@example.com"
    # No --server: the one server running under `mcpkit dev` in this project.
    added = ok(dev.cli("users", "add", email))
    assert f"Added {email}" in added
    assert f"{REQUIRED_GROUP} (required to sign in)" in added
    h = dev.harness
    h.username, h.password = email, added_password(added)
    first, second = h.register(client_name="Client A"), h.register(client_name="Client B")
    first_tokens, second_tokens = h.tokens(first), h.tokens(second)

    grants = dev.grants(email)
    assert {(g["client_name"], g["client_id"]) for g in grants} == {
        ("Client A", first["client_id"]),
        ("Client B", second["client_id"]),
    }
    for grant in grants:
        assert grant["email"] == email
        assert grant["scopes"] == ["mcp:tools"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", grant["last_used"])
    table = ok(dev.cli("grants", "list"))
    assert re.search(rf"{re.escape(email)}\s+Client A\s+mcp:tools\s+\d{{4}}-\d\d-\d\d \d\d:\d\d UTC", table), table
    # On an 80-column terminal (or a pipe) the id `grants revoke --client` needs is printed whole, on its row.
    narrow = ok(mcpkit("grants", "list", "--dev", "--servers-dir", str(dev.servers_dir), env={"COLUMNS": "80"}))
    row = next(line for line in narrow.splitlines() if "Client A" in line)
    assert row.split()[-1] == first["client_id"], narrow

    revoked = ok(dev.cli("grants", "revoke", "--user", email, "--client", first["client_id"]))
    assert f"Revoked: {email} → Client A ({first['client_id']})" in revoked
    assert "within 15 minutes" in " ".join(revoked.split())
    refused = h.refresh(first, first_tokens["refresh_token"])
    assert_invalid_grant(refused)
    # The other client keeps working until its own grant goes.
    refreshed = h.refresh(second, second_tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    assert [g["client_id"] for g in dev.grants(email)] == [second["client_id"]]

    ok(dev.cli("grants", "revoke", "--user", grants[0]["subject"], "--all"))
    refused = h.refresh(second, refreshed.json()["refresh_token"])
    assert_invalid_grant(refused)
    assert dev.grants(email) == []


def test_users_add_to_a_group_list_and_remove(dev: Dev) -> None:
    email = f"dave-{uuid.uuid4().hex[:6]}@example.com"
    added = ok(dev.cli("users", "add", email, "--group", "editors", "--server", dev.name))
    assert "editors (group created)" in added
    listed = {u["email"]: u for u in json.loads(ok(dev.cli("users", "list", "--json")))}
    assert listed[email]["groups"] == ["editors", REQUIRED_GROUP]
    assert listed[email]["status"] == "CONFIRMED"

    h = dev.harness
    h.username, h.password = email, added_password(added)
    client = h.register(client_name="Dave's client")
    tokens = h.tokens(client)
    # A second invitation is refused only when it would change nothing; here it re-checks the groups.
    again = ok(dev.cli("users", "add", email))
    assert "already a user" in again

    removed = ok(dev.cli("users", "remove", email))
    assert f"Removed {email}" in removed
    assert f"Revoked: {email} → Dave's client" in removed
    refused = h.refresh(client, tokens["refresh_token"])
    assert_invalid_grant(refused)
    assert email not in {u["email"] for u in json.loads(ok(dev.cli("users", "list", "--json")))}
    failed(dev.cli("users", "remove", email), 1, f"no user {email}")


def test_bad_input_is_an_error_message(dev: Dev) -> None:
    failed(dev.cli("users", "add", "not-an-email"), 2, "'not-an-email' is not an email address")
    failed(dev.cli("grants", "list", "--server", "nope"), 1, "no server 'nope'")
    failed(dev.cli("grants", "revoke", "--user", "ghost@example.com", "--all"), 1, "no user ghost@example.com")
    failed(dev.cli("grants", "revoke", "--user", "ghost@example.com"), 2, "give --client CLIENT_ID or --all")
    failed(
        dev.cli("grants", "revoke", "--user", dev.harness.username, "--client", "x", "--all"),
        2,
        "give --client CLIENT_ID or --all",
    )


def test_a_server_that_is_not_running_or_was_killed(dev: Dev) -> None:
    message = f"mcpkit dev is not running for {dev.idle}"
    failed(dev.cli("users", "list", "--server", dev.idle), 1, message)

    # A file left behind by a `mcpkit dev` that died without cleaning up: its pid is gone.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    folder = load_server(dev.servers_dir / dev.idle)
    stale = DevDiscovery(
        server=dev.idle,
        server_path=str(folder.path),
        pid=int(dead.stdout),
        url="http://127.0.0.1:9/mcp",
        aws_endpoint="http://127.0.0.1:9",
        table_name="mcpkit-local",
        user_pool_id="us-east-1_gone",
    )
    path = write_discovery(folder, stale)
    failed(dev.cli("grants", "list", "--server", dev.idle), 1, message)
    assert not path.exists()


# -- against a deployed stack ----------------------------------------------------------------------


@dataclass
class Deployed:
    servers_dir: Path
    name: str
    missing: str  # a server folder whose stack was never deployed
    pool_id: str
    table_name: str
    env: dict[str, str]

    def cli(self, *args: str, server: str | None = None, env: dict[str, str] | None = None) -> Any:
        folder = ["--servers-dir", str(self.servers_dir), "--server", server or self.name]
        return mcpkit(*args, *folder, env=self.env if env is None else env)


def _stack_template() -> str:
    key = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
    types = [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}]
    return json.dumps(
        {
            # moto's CloudFormation makes tables but not user pools: the pool comes in as a parameter.
            "Parameters": {"PoolId": {"Type": "String"}, "Group": {"Type": "String"}},
            "Resources": {
                "Table": {
                    "Type": "AWS::DynamoDB::Table",
                    "Properties": {"KeySchema": key, "AttributeDefinitions": types, "BillingMode": "PAY_PER_REQUEST"},
                }
            },
            "Outputs": {
                "TableName": {"Value": {"Ref": "Table"}},
                "UserPoolId": {"Value": {"Ref": "PoolId"}},
                "RequiredGroup": {"Value": {"Ref": "Group"}},
            },
        }
    )


@pytest.fixture(scope="module")
def deployed(aws: EmbeddedAws, tmp_path_factory: pytest.TempPathFactory) -> Deployed:
    servers_dir = tmp_path_factory.mktemp("deployed")
    suffix = uuid.uuid4().hex[:8]
    name, missing = f"deployed{suffix}", f"missing{suffix}"
    make_server(servers_dir, name, f'\n[oauth]\nrequired_group = "{REQUIRED_GROUP}"\n')
    make_server(servers_dir, missing)
    idp = boto3.client("cognito-idp", endpoint_url=aws.endpoint)
    pool_id = idp.create_user_pool(PoolName=f"McpServer-{name}", UsernameAttributes=["email"])["UserPool"]["Id"]
    idp.create_group(UserPoolId=pool_id, GroupName=REQUIRED_GROUP)
    cloudformation = boto3.client("cloudformation", endpoint_url=aws.endpoint)
    stack_name = f"McpServer-{name}"
    cloudformation.create_stack(
        StackName=stack_name,
        TemplateBody=_stack_template(),
        Parameters=[
            {"ParameterKey": "PoolId", "ParameterValue": pool_id},
            {"ParameterKey": "Group", "ParameterValue": REQUIRED_GROUP},
        ],
    )
    outputs = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]["Outputs"]
    table_name = next(o["OutputValue"] for o in outputs if o["OutputKey"] == "TableName")
    # What a deployment's shell has: credentials, a region, and here the one endpoint for every service.
    env = {**FAKE_AWS_ENVIRONMENT, "AWS_ENDPOINT_URL": aws.endpoint}
    return Deployed(servers_dir, name, missing, pool_id, table_name, env)


def test_users_add_invites_into_the_stacks_pool_and_groups(deployed: Deployed, aws: EmbeddedAws) -> None:
    email = f"erin-{uuid.uuid4().hex[:6]}@example.com"
    output = ok(deployed.cli("users", "add", email, "--group", "editors"))
    assert f"Invited {email}" in output
    assert "temporary password" in output
    assert "password " not in output.split("temporary password", 1)[1]  # nothing to print: Cognito emails it
    idp = boto3.client("cognito-idp", endpoint_url=aws.endpoint)
    user = idp.admin_get_user(UserPoolId=deployed.pool_id, Username=email)
    assert user["UserStatus"] == "FORCE_CHANGE_PASSWORD"
    attributes = {a["Name"]: a["Value"] for a in user["UserAttributes"]}
    assert attributes["email"] == email
    assert attributes["email_verified"] == "true"
    groups = idp.admin_list_groups_for_user(UserPoolId=deployed.pool_id, Username=email)["Groups"]
    assert sorted(g["GroupName"] for g in groups) == ["editors", REQUIRED_GROUP]
    listed = json.loads(ok(deployed.cli("users", "list", "--json")))
    assert any(u["email"] == email and u["status"] == "FORCE_CHANGE_PASSWORD" for u in listed)


def test_grants_of_the_deployed_table_list_and_revoke(deployed: Deployed) -> None:
    from handlers.auth.state import Grant, OAuthState
    from handlers.store import Table

    state = OAuthState(Table(deployed.table_name))
    subject, email = str(uuid.uuid4()), f"frank-{uuid.uuid4().hex[:6]}@example.com"
    state.record_consent(
        subject=subject, email=email, client_id="claude", client_name="Claude", scopes=("mcp:tools",), lifetime=3600
    )
    grant = Grant(client_id="claude", subject=subject, email=email, scopes=("mcp:tools",), resource="https://x/mcp")
    refresh_token = state.start_family(grant, 3600, 3600)

    listed = json.loads(ok(deployed.cli("grants", "list", "--json", "--user", email)))
    assert [(g["subject"], g["client_id"], g["client_name"]) for g in listed] == [(subject, "claude", "Claude")]
    revoked = ok(deployed.cli("grants", "revoke", "--user", email, "--client", "claude"))
    assert f"Revoked: {email} → Claude (claude)" in revoked
    assert state.rotate(refresh_token, "claude", 3600, 3600, prepare=lambda _: None) is None
    assert state.list_grants(subject) == []


def test_deployed_errors_are_messages(deployed: Deployed) -> None:
    failed(
        deployed.cli("grants", "list", server=deployed.missing),
        1,
        f"no stack McpServer-{deployed.missing} in us-east-1",
    )
    no_credentials = {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": deployed.env["AWS_ENDPOINT_URL"],
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    failed(deployed.cli("users", "list", env=no_credentials), 1, "no AWS credentials:")
    no_region = {k: v for k, v in deployed.env.items() if "REGION" not in k} | {"AWS_CONFIG_FILE": "/nonexistent"}
    failed(deployed.cli("grants", "list", env=no_region), 1, "no AWS region: pass --region")
    assert "No grants" in ok(
        deployed.cli("grants", "list", "--user", str(uuid.uuid4()), "--region", "us-east-1", env=no_region)
    )


def test_default_server_is_the_only_oauth_one(deployed: Deployed) -> None:
    # Both fixture servers use OAuth: the CLI cannot guess and says which to pick.
    result = mcpkit("grants", "list", "--servers-dir", str(deployed.servers_dir), env=deployed.env)
    failed(result, 1, "several servers use OAuth")
    assert deployed.name in result.stderr
    assert deployed.missing in result.stderr
