"""The scope policy on its own: config validation, which item needs which scope, list filtering."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from handlers.auth.scopes import ScopePolicy, ScopeSpec
from handlers.server_loader import ServerLoadError
from mcpkit.server_config import ServerConfigError, load_server

if TYPE_CHECKING:
    from pathlib import Path

POLICY = ScopePolicy(
    default_scope="notes:read",
    scopes={
        "notes:read": ScopeSpec(description="Read", tools=("list_notes",), resources=("notes://*",)),
        "notes:write": ScopeSpec(description="Write", tools=("create_note",), prompts=("draft",)),
        "admin": ScopeSpec(description="Admin", resources=("admin://secrets/*",)),
    },
)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"method": "tools/call", "params": {"name": "create_note"}}, ("tool", "create_note", "notes:write")),
        ({"method": "tools/call", "params": {"name": "unlisted"}}, ("tool", "unlisted", "notes:read")),
        ({"method": "prompts/get", "params": {"name": "draft"}}, ("prompt", "draft", "notes:write")),
        (
            {"method": "resources/read", "params": {"uri": "admin://secrets/x"}},
            ("resource", "admin://secrets/x", "admin"),
        ),
        ({"method": "resources/read", "params": {"uri": "notes://1"}}, ("resource", "notes://1", "notes:read")),
        ({"method": "tools/list", "params": {}}, None),
        ({"method": "tools/call", "params": {"name": 7}}, None),
        ({"method": "tools/call"}, None),
    ],
)
def test_the_scope_each_request_needs(message: dict[str, object], expected: object) -> None:
    assert POLICY.needed_for(message) == expected


def test_lists_keep_only_what_the_token_covers_and_leave_errors_alone() -> None:
    tools = {"jsonrpc": "2.0", "id": 1, "result": {"tools": [{"name": "list_notes"}, {"name": "create_note"}]}}
    templates = {
        "jsonrpc": "2.0",
        "id": 2,
        "result": {"resourceTemplates": [{"uriTemplate": "notes://{id}"}, {"uriTemplate": "admin://secrets/{k}"}]},
    }
    read = frozenset({"notes:read"})

    filtered = POLICY.filter_list("tools/list", json.dumps(tools).encode(), read)
    kept = POLICY.filter_list("resources/templates/list", json.dumps(templates).encode(), read)

    assert filtered is not None
    assert json.loads(filtered)["result"]["tools"] == [{"name": "list_notes"}]
    assert kept is not None
    assert json.loads(kept)["result"]["resourceTemplates"] == [{"uriTemplate": "notes://{id}"}]
    assert POLICY.filter_list("tools/list", json.dumps(tools).encode(), frozenset(POLICY.supported)) is None
    error = {"jsonrpc": "2.0", "id": 1, "error": {"code": -32601, "message": "x"}}
    assert POLICY.filter_list("tools/list", json.dumps(error).encode(), read) is None


def _server(tmp_path: Path, toml: str) -> Path:
    folder = tmp_path / "svc"
    folder.mkdir()
    (folder / "server.py").write_text("mcp = None\n")
    (folder / "mcpkit.toml").write_text(toml)
    return folder


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            'auth = "oauth"\n[permissions]\ndefault_scope = "x"\n[permissions.scopes.y]\ndescription = "Y"\n',
            "default_scope 'x' must be one of the scopes: y",
        ),
        (
            'auth = "oauth"\n[permissions]\ndefault_scope = "a"\n[permissions.scopes.a]\ndescription = "A"\n'
            'tools = ["t"]\n[permissions.scopes.b]\ndescription = "B"\ntools = ["t"]\n',
            "tool 't' is listed under both 'a' and 'b'",
        ),
        (
            'auth = "oauth"\n[permissions]\ndefault_scope = "a b"\n[permissions.scopes."a b"]\ndescription = "A"\n',
            "must be 1-64 printable characters without spaces",
        ),
        ('[permissions]\ndefault_scope = "mcp:tools"\n', 'it needs auth = "oauth"'),
        (
            'auth = "oauth"\n[permissions]\ndefault_scope = "a"\n[permissions.scopes.a]\ndescription = "A"\n'
            f"tools = [{', '.join(f'"tool_{i:04d}"' for i in range(300))}]\n",
            "over 2560: Lambda's environment holds 4 KB in all",
        ),
        ('[oauth]\nrequired_group = "g"\n', 'needs auth = "oauth"'),
        ('auth = "oauth"\n[oauth]\nredirect_schemes = ["javascript"]\n', "cannot be a native app's redirect scheme"),
        ('auth = "oauth"\n[oauth]\nredirect_schemes = ["https"]\n', "cannot be a native app's redirect scheme"),
        ('auth = "oauth"\n[oauth]\nredirect_schemes = ["Bad Scheme"]\n', "redirect_schemes"),
    ],
)
def test_bad_permissions_fail_with_the_file_and_the_reason(tmp_path: Path, toml: str, message: str) -> None:
    with pytest.raises(ServerConfigError) as raised:
        load_server(_server(tmp_path, toml))
    assert message in str(raised.value)
    assert "mcpkit.toml" in str(raised.value)


def test_the_runtime_refuses_permissions_naming_tools_the_server_lacks() -> None:
    from handlers.app import create_runtime
    from handlers.settings import Settings

    settings = Settings(
        server="tests/auth/servers/whoami/server.py:mcp",
        auth_mode="oauth",
        kms_key_id="alias/unused",
        cognito_user_pool_id="us-east-1_unused",
        cognito_client_id="unused",
        dev_login=True,
        permissions=ScopePolicy(
            default_scope="read",
            scopes={"read": ScopeSpec(description="Read", tools=("whoami", "who_am_i_typo"))},
        ),
    )

    with pytest.raises(ServerLoadError, match=r"tool 'who_am_i_typo' \(scope 'read'\)"):
        create_runtime(settings)


def test_configured_redirect_schemes_reach_the_runtime(tmp_path: Path) -> None:
    folder = load_server(_server(tmp_path, 'auth = "oauth"\n[oauth]\nredirect_schemes = ["windsurf"]\n'))
    env = folder.runtime_environment(root=tmp_path, table_name="t")
    assert json.loads(env["MCPKIT_REDIRECT_SCHEMES"]) == ["windsurf"]
