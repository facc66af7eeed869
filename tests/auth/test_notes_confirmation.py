"""The `notes` template asks before it deletes: the official MCP Python client against `mcpkit dev`.

The `notes` fixture serves the template as `mcpkit new` renders it, with OAuth, in a local
gateway (tests/auth/conftest.py). On 2026-07-28 the question travels in an `InputRequiredResult`
whose sealed `requestState` is bound to the signed-in caller; on the handshake revisions the
kit's buffered transport has no way to ask, so the tool wants `confirm=true` instead.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import ElicitResult

from mcpkit.messages import MODERN, rpc
from tests.auth.conftest import NOTES_GROUP
from tests.auth.harness import pkce

if TYPE_CHECKING:
    from tests.auth.harness import Harness

pytestmark = pytest.mark.slow

SCOPES = "notes:read notes:write"
V2025 = {"mcp-protocol-version": "2025-11-25"}


def token_of(notes: Harness, email: str | None = None) -> str:
    """An access token for the dev user, or for a new member of the notes group signed in as `email`."""
    client = notes.register(client_name="Confirmation test")
    username, password = notes.username, notes.password
    if email is not None:
        username, password = email, f"Pw-{secrets.token_urlsafe(12)}1!"
        notes.add_user(email, password, group=NOTES_GROUP)
    verifier, challenge = pkce()
    location = notes.sign_in(notes.authorize(client["client_id"], challenge, scope=SCOPES), username, password)
    issued = notes.exchange(client, parse_qs(urlsplit(location).query)["code"][0], verifier)
    assert issued.status_code == 200, issued.text
    token: str = issued.json()["access_token"]
    return token


def _text(result: Any) -> str:
    text: str = result.content[0].text
    return text


@pytest.mark.anyio
async def test_official_client_is_asked_before_a_note_is_deleted(notes: Harness) -> None:
    # GIVEN the person's client, speaking 2026-07-28, that shows questions (no, then yes)
    answers = iter([False, True])
    asked: list[str] = []

    async def person(context: Any, params: Any) -> ElicitResult:
        asked.append(params.message)
        return ElicitResult(action="accept", content={"delete": next(answers)})

    headers = {"Authorization": f"Bearer {token_of(notes)}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(notes.server.url, http_client=http), elicitation_callback=person) as client,
    ):
        assert client.session.protocol_version == MODERN
        note_id = (await client.call_tool("create_note", {"title": "Tax 2025"})).structured_content["id"]
        # WHEN the person says no
        kept = await client.call_tool("delete_note", {"note_id": note_id})
        still = await client.call_tool("get_note", {"note_id": note_id})
        # AND then yes
        deleted = await client.call_tool("delete_note", {"note_id": note_id})
        gone = await client.call_tool("get_note", {"note_id": note_id})

    # THEN they were asked about that note each time, and only the yes deleted it
    assert asked == ['Delete the note "Tax 2025"? This cannot be undone.'] * 2
    assert "you chose not to delete it" in _text(kept)
    assert not still.is_error
    assert _text(deleted) == f"Deleted note {note_id}."
    assert gone.is_error


@pytest.mark.anyio
async def test_official_client_on_a_handshake_revision_must_pass_confirm(notes: Harness) -> None:
    # GIVEN a client on the initialize handshake: the buffered transport cannot carry a question
    never: list[str] = []

    async def person(context: Any, params: Any) -> ElicitResult:
        never.append(params.message)
        return ElicitResult(action="accept", content={"delete": True})

    headers = {"Authorization": f"Bearer {token_of(notes)}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(
            streamable_http_client(notes.server.url, http_client=http), mode="legacy", elicitation_callback=person
        ) as client,
    ):
        note_id = (await client.call_tool("create_note", {"title": "Drafts"})).structured_content["id"]
        # WHEN it deletes without confirm: refused, with what to do instead, and nothing deleted
        refused = await client.call_tool("delete_note", {"note_id": note_id})
        still = await client.call_tool("get_note", {"note_id": note_id})
        # THEN with confirm=true (the person said yes in the chat) it deletes
        deleted = await client.call_tool("delete_note", {"note_id": note_id, "confirm": True})

    assert refused.is_error
    assert f"call delete_note again with note_id={note_id} and confirm=true" in _text(refused)
    assert not still.is_error
    assert _text(deleted) == f"Deleted note {note_id}."
    assert never == []


def _delete(notes: Harness, token: str, note_id: str, **params: Any) -> dict[str, Any]:
    """A raw 2026-07-28 delete_note call; the JSON-RPC message."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": {"name": "pytest", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {"elicitation": {"form": {}}},
    }
    body = rpc("tools/call", {"name": "delete_note", "arguments": {"note_id": note_id}, **params, "_meta": meta})
    headers = {"mcp-protocol-version": MODERN, "mcp-method": "tools/call", "mcp-name": "delete_note"}
    response = notes.mcp(body, token, **headers)
    message: dict[str, Any] = response.json()
    return message


def test_another_users_request_state_is_refused(notes: Harness) -> None:
    # GIVEN Ana asked to confirm deleting her note (round one)
    ana = token_of(notes)
    bob = token_of(notes, f"bob-{secrets.token_hex(4)}@example.com")
    created = notes.mcp(rpc("tools/call", {"name": "create_note", "arguments": {"title": "Ana's"}}), ana, **V2025)
    note_id = created.json()["result"]["structuredContent"]["id"]
    asked = _delete(notes, ana, note_id)["result"]
    assert asked["resultType"] == "input_required", asked
    yes = {key: {"action": "accept", "content": {"delete": True}} for key in asked["inputRequests"]}

    # WHEN Bob replays her round two with her sealed state
    replayed = _delete(notes, bob, note_id, inputResponses=yes, requestState=asked["requestState"])

    # THEN it is refused with the spec's error, and her note is still there
    assert replayed.get("error", {}).get("code") == -32602, replayed
    assert replayed["error"]["message"] == "Invalid or expired requestState"
    got = notes.mcp(rpc("tools/call", {"name": "get_note", "arguments": {"note_id": note_id}}), ana, **V2025)
    assert not got.json()["result"].get("isError"), got.text

    # AND Ana's own round two completes
    done = _delete(notes, ana, note_id, inputResponses=yes, requestState=asked["requestState"])
    assert done["result"]["content"][0]["text"] == f"Deleted note {note_id}.", done
