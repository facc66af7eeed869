"""Per-tool scopes, consent, step-up, the required group and revocation, end to end.

Against `mcpkit dev --auth oauth` serving the `notes` template as `mcpkit new` renders it (the
`notes` fixture: its `[permissions]` are notes:read and notes:write; `oauth.required_group` is on).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from mcpkit.local_aws import endpoint_environment
from mcpkit.messages import modern_meta, rpc
from tests.auth.conftest import NOTES_GROUP as GROUP
from tests.auth.harness import pkce

if TYPE_CHECKING:
    import pytest

    from tests.auth.harness import Harness

READ_TOOLS = {"list_notes", "get_note"}
WRITE_TOOLS = {"create_note", "update_note", "delete_note"}
V2025 = {"mcp-protocol-version": "2025-11-25"}


def token_for(notes: Harness, client: dict[str, Any], scope: str) -> dict[str, Any]:
    return notes.tokens(client, scope=scope)


def modern_rpc(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """A 2026-07-28 request: no session, the envelope in `_meta`."""
    return rpc(method, {**(params or {}), "_meta": modern_meta("pytest")})


def tool_names(notes: Harness, token: str, *, modern: bool = False) -> set[str]:
    if modern:
        headers = {"mcp-protocol-version": "2026-07-28", "mcp-method": "tools/list"}
        response = notes.mcp(modern_rpc("tools/list"), token, **headers)
    else:
        response = notes.mcp(rpc("tools/list"), token, **V2025)
    assert response.status_code == 200, response.text
    return {t["name"] for t in response.json()["result"]["tools"]}


def test_metadata_and_the_first_challenge_name_the_servers_scopes(notes: Harness) -> None:
    prm = notes.http.get(f"{notes.base}/.well-known/oauth-protected-resource/mcp").json()
    metadata = notes.http.get(f"{notes.base}/.well-known/oauth-authorization-server").json()
    assert prm["scopes_supported"] == metadata["scopes_supported"] == ["notes:read", "notes:write"]

    unauthenticated = notes.mcp(rpc("tools/list"), **V2025)

    assert unauthenticated.status_code == 401
    assert 'scope="notes:read notes:write"' in unauthenticated.headers["www-authenticate"]


def test_a_read_token_sees_read_tools_and_steps_up_to_write_on_the_same_registration(notes: Harness) -> None:
    client = notes.register(client_name="Step-up client")
    read = token_for(notes, client, "notes:read")
    assert read["scope"] == "notes:read"
    assert tool_names(notes, read["access_token"]) == READ_TOOLS

    refused = notes.mcp(rpc("tools/call", {"name": "create_note", "arguments": {"title": "t"}}), read["access_token"])

    assert refused.status_code == 403
    challenge = refused.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="notes:read notes:write"' in challenge
    assert f'resource_metadata="{notes.base}/.well-known/oauth-protected-resource/mcp"' in challenge

    # Step-up: the same client asks for the scopes the challenge named; the scopes grew, so the
    # person is asked again, and the page says what was allowed before.
    verifier, code_challenge = pkce()
    consent_at = notes.sign_in(
        notes.authorize(client["client_id"], code_challenge, scope="notes:read notes:write"), decision=None
    )
    page = notes.http.get(consent_at)
    assert "Create, change and delete your notes" in page.text
    assert "You already allowed: <code>notes:read</code>" in page.text
    location = notes.answer_consent(consent_at, "approve")
    issued = notes.exchange(client, parse_qs(urlsplit(location).query)["code"][0], verifier)
    wider = issued.json()
    assert wider["scope"] == "notes:read notes:write"

    created = notes.mcp(
        rpc("tools/call", {"name": "create_note", "arguments": {"title": "stepped up"}}), wider["access_token"], **V2025
    )
    assert created.status_code == 200, created.text
    assert created.json()["result"]["structuredContent"]["title"] == "stepped up"
    assert tool_names(notes, wider["access_token"]) == READ_TOOLS | WRITE_TOOLS

    # Asking for no more than was allowed goes straight back to the client: no consent page.
    verifier, code_challenge = pkce()
    again = notes.sign_in(notes.authorize(client["client_id"], code_challenge, scope="notes:read"), decision=None)
    assert "code" in parse_qs(urlsplit(again).query)


def test_lists_and_calls_of_resources_and_prompts_follow_the_scopes_on_every_revision(notes: Harness) -> None:
    client = notes.register(client_name="Writer only")
    write = token_for(notes, client, "notes:write")["access_token"]

    assert tool_names(notes, write) == WRITE_TOOLS
    assert tool_names(notes, write, modern=True) == WRITE_TOOLS
    modern_call = notes.mcp(
        modern_rpc("tools/call", {"name": "get_note", "arguments": {"note_id": "x"}}),
        write,
        **{"mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "get_note"},
    )
    assert modern_call.status_code == 403
    assert 'error="insufficient_scope"' in modern_call.headers["www-authenticate"]
    prompts = notes.mcp(rpc("prompts/list"), write, **V2025).json()["result"]["prompts"]
    templates = notes.mcp(rpc("resources/templates/list"), write, **V2025).json()["result"]["resourceTemplates"]
    assert (prompts, templates) == ([], [])
    for method, params in (
        ("prompts/get", {"name": "summarise_notes"}),
        ("resources/read", {"uri": "notes://anything"}),
        ("tools/call", {"name": "list_notes", "arguments": {}}),
    ):
        refused = notes.mcp(rpc(method, params), write, **V2025)
        assert refused.status_code == 403, (method, refused.text)
        assert 'scope="notes:read notes:write"' in refused.headers["www-authenticate"]

    read = token_for(notes, notes.register(client_name="Reader"), "notes:read")["access_token"]
    templates = notes.mcp(rpc("resources/templates/list"), read, **V2025).json()["result"]["resourceTemplates"]
    assert [t["uriTemplate"] for t in templates] == ["notes://{note_id}"]


def test_deny_sends_access_denied_with_state_and_iss(notes: Harness) -> None:
    client = notes.register(client_name="Denied")
    _, challenge = pkce()

    location = notes.sign_in(notes.authorize(client["client_id"], challenge, scope="notes:read"), decision="deny")

    query = parse_qs(urlsplit(location).query)
    assert query["error"] == ["access_denied"]
    assert query["state"] == ["state-123"]
    assert query["iss"] == [notes.base]
    assert "code" not in query


def test_the_consent_page_names_the_client_unverified_with_its_redirect_host_and_the_tools(notes: Harness) -> None:
    client = notes.register(client_name="Shown <b>Name</b>")
    _, challenge = pkce()

    consent_at = notes.sign_in(notes.authorize(client["client_id"], challenge, scope="notes:read"), decision=None)
    page = notes.http.get(consent_at)

    assert "Shown &lt;b&gt;Name&lt;/b&gt;" in page.text
    assert "unverified" in page.text
    assert "localhost" in page.text  # the registered redirect's host
    assert "Read your notes" in page.text
    assert all(f"<code>{tool}</code>" in page.text for tool in READ_TOOLS)
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"


def test_a_consent_answer_needs_the_browsers_cookie_and_is_single_use(notes: Harness) -> None:
    client = notes.register(client_name="CSRF target")
    _, challenge = pkce()
    consent_at = notes.sign_in(notes.authorize(client["client_id"], challenge, scope="notes:read"), decision=None)
    request_id = parse_qs(urlsplit(consent_at).query)["request"][0]
    form = {"request": request_id, "decision": "approve"}

    import httpx

    with httpx.Client(follow_redirects=False) as stranger:
        forged = stranger.post(f"{notes.base}/oauth/consent", data=form)
        cross_site = notes.http.post(
            f"{notes.base}/oauth/consent", data=form, headers={"origin": "https://evil.example"}
        )
    assert forged.status_code == 400
    assert "browser that signed in" in forged.text
    assert cross_site.status_code == 400

    approved = notes.answer_consent(consent_at, "approve")
    assert "code" in parse_qs(urlsplit(approved).query)
    replayed = notes.http.post(f"{notes.base}/oauth/consent", data=form)
    assert replayed.status_code == 400
    assert re.search(r"unknown, answered already|answered already", replayed.text)


def test_a_revoked_grant_ends_its_refresh_tokens(notes: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    from handlers.auth.state import OAuthState
    from handlers.store import Table
    from mcpkit.dev import LOCAL_TABLE

    client = notes.register(client_name="To be revoked")
    issued = token_for(notes, client, "notes:read")
    for name, value in endpoint_environment(notes.aws_endpoint).items():
        monkeypatch.setenv(name, value)
    state = OAuthState(Table(LOCAL_TABLE))
    grant = next(g for g in state.list_grants() if g.client_id == client["client_id"])
    assert (grant.email, grant.client_name, grant.scopes) == (notes.username, "To be revoked", ("notes:read",))
    assert grant.first_used <= grant.last_used
    assert len(grant.families) == 1
    assert grant in state.list_grants(grant.subject)

    assert state.revoke_grant(grant.subject, client["client_id"]) is not None

    refreshed = notes.refresh(client, issued["refresh_token"])
    assert refreshed.status_code == 400
    assert refreshed.json()["error"] == "invalid_grant"
    assert all(g.client_id != client["client_id"] for g in state.list_grants())


def test_a_person_outside_the_required_group_gets_no_token(notes: Harness) -> None:
    notes.add_user("outsider@example.com", "Outsider-Passw0rd!")
    notes.add_user("member@example.com", "Member-Passw0rd!", group=GROUP)
    client = notes.register(client_name="Group check")
    _, challenge = pkce()

    refused = notes.sign_in(
        notes.authorize(client["client_id"], challenge, scope="notes:read"),
        "outsider@example.com",
        "Outsider-Passw0rd!",
    )
    admitted = notes.sign_in(
        notes.authorize(client["client_id"], challenge, scope="notes:read"), "member@example.com", "Member-Passw0rd!"
    )

    assert parse_qs(urlsplit(refused).query)["error"] == ["access_denied"]
    assert "code" in parse_qs(urlsplit(admitted).query)


def test_an_account_disabled_or_taken_out_of_the_group_stops_refreshing(notes: Harness) -> None:
    """Changes made in Cognito (console, API) reach live grants at their next refresh."""
    idp = notes.cognito()
    pool = notes.pool_id()
    issued = {}
    for email in ("leaver@example.com", "disabled@example.com"):
        notes.add_user(email, "Leaver-Passw0rd!", group=GROUP)
        client = notes.register(client_name=f"Client of {email}")
        verifier, challenge = pkce()
        location = notes.sign_in(
            notes.authorize(client["client_id"], challenge, scope="notes:read"), email, "Leaver-Passw0rd!"
        )
        code = parse_qs(urlsplit(location).query)["code"][0]
        issued[email] = (client, notes.exchange(client, code, verifier).json())
        first = notes.refresh(client, issued[email][1]["refresh_token"])
        assert first.status_code == 200, first.text
        issued[email] = (client, first.json())

    idp.admin_remove_user_from_group(UserPoolId=pool, Username="leaver@example.com", GroupName=GROUP)
    idp.admin_disable_user(UserPoolId=pool, Username="disabled@example.com")

    for client, tokens in issued.values():
        refused = notes.refresh(client, tokens["refresh_token"])
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"] == "invalid_grant"
