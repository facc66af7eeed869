"""Notes through the official client, in-process, against DynamoDB in moto."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest
from mcp import Client
from mcp_types import ElicitResult

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

pytestmark = pytest.mark.anyio


def _user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def call(server: MCPServer, signed_in: Any) -> Any:
    async def _call(sub: str | None, tool: str, args: dict[str, Any]) -> Any:
        # The client (and the in-process server task it starts) inherits this block's auth context.
        with signed_in(sub):
            async with Client(server) as client:
                return await client.call_tool(tool, args)

    return _call


async def test_create_get_update_list_delete(server: MCPServer, call: Any, signed_in: Any) -> None:
    alice = _user()
    created = await call(alice, "create_note", {"title": "Groceries", "body": "milk"})
    assert not created.is_error, created.content
    note_id = created.structured_content["id"]

    got = await call(alice, "get_note", {"note_id": note_id})
    assert got.structured_content["body"] == "milk"

    updated = await call(alice, "update_note", {"note_id": note_id, "body": "milk, eggs"})
    assert updated.structured_content["title"] == "Groceries"
    assert updated.structured_content["body"] == "milk, eggs"

    listed = await call(alice, "list_notes", {})
    assert [n["id"] for n in listed.structured_content["result"]] == [note_id]

    deleted = await call(alice, "delete_note", {"note_id": note_id, "confirm": True})
    assert not deleted.is_error
    gone = await call(alice, "get_note", {"note_id": note_id})
    assert gone.is_error
    assert "No note" in gone.content[0].text


async def test_user_b_cannot_read_change_or_delete_user_a_notes(server: MCPServer, call: Any, signed_in: Any) -> None:
    alice, bob = _user(), _user()
    created = await call(alice, "create_note", {"title": "Secret", "body": "alice only"})
    note_id = created.structured_content["id"]

    for tool, args in [
        ("get_note", {"note_id": note_id}),
        ("update_note", {"note_id": note_id, "body": "bob was here"}),
        ("delete_note", {"note_id": note_id, "confirm": True}),
    ]:
        result = await call(bob, tool, args)
        assert result.is_error, tool
        assert "No note" in result.content[0].text

    bobs = await call(bob, "list_notes", {})
    assert bobs.structured_content["result"] == []
    with signed_in(bob):
        async with Client(server) as client:
            with pytest.raises(Exception, match="No note"):
                await client.read_resource(f"notes://{note_id}")

    # Alice's note is untouched by Bob's attempts.
    still = await call(alice, "get_note", {"note_id": note_id})
    assert still.structured_content["body"] == "alice only"


async def test_note_resource_and_summarise_prompt(server: MCPServer, call: Any, signed_in: Any) -> None:
    alice = _user()
    created = await call(alice, "create_note", {"title": "Trip", "body": "Lisbon in May"})
    note_id = created.structured_content["id"]
    with signed_in(alice):
        async with Client(server) as client:
            templates = await client.list_resource_templates()
            resource = await client.read_resource(f"notes://{note_id}")
            prompt = await client.get_prompt("summarise_notes", {"focus": "travel"})
    assert [t.uri_template for t in templates.resource_templates] == ["notes://{note_id}"]
    assert resource.contents[0].text == "# Trip\n\nLisbon in May\n"  # type: ignore[union-attr]
    text = prompt.messages[0].content.text  # type: ignore[union-attr]
    assert "Lisbon in May" in text
    assert "Focus on: travel" in text


async def test_without_a_signed_in_user_every_tool_refuses(server: MCPServer, call: Any, signed_in: Any) -> None:
    for tool, args in [("list_notes", {}), ("create_note", {"title": "x"})]:
        result = await call(None, tool, args)
        assert result.is_error
        assert "No signed-in user" in result.content[0].text


async def test_bad_input_is_a_clear_tool_error(server: MCPServer, call: Any, signed_in: Any) -> None:
    alice = _user()
    bad_id = await call(alice, "get_note", {"note_id": "../USER#someone"})
    empty_title = await call(alice, "create_note", {"title": ""})
    nothing = await call(alice, "update_note", {"note_id": "0" * 32})
    assert bad_id.is_error
    assert empty_title.is_error
    assert nothing.is_error
    assert "Nothing to change" in nothing.content[0].text


def _text(result: Any) -> str:
    text: str = result.content[0].text
    return text


def answering(*answers: dict[str, Any]) -> tuple[list[str], Any]:
    """An elicitation callback that gives `answers` in turn, and the questions it was asked."""
    asked: list[str] = []
    remaining = list(answers)

    async def answer(context: Any, params: Any) -> ElicitResult:
        asked.append(params.message)
        reply = remaining.pop(0)
        return ElicitResult(action=reply.pop("action", "accept"), content=reply or None)

    return asked, answer


@pytest.mark.parametrize("mode", ["2026-07-28", "legacy"])
async def test_delete_asks_the_person_and_deletes_only_on_yes(
    server: MCPServer, call: Any, signed_in: Any, mode: str
) -> None:
    # GIVEN a note and a client that can show the person a question (both protocol generations in-process)
    alice = _user()
    note_id = (await call(alice, "create_note", {"title": "Old plans"})).structured_content["id"]
    asked, answer = answering({"delete": False}, {"action": "decline"}, {"delete": True})
    with signed_in(alice):
        async with Client(server, mode=mode, elicitation_callback=answer) as client:
            # WHEN the person says no, then declines to answer
            kept = await client.call_tool("delete_note", {"note_id": note_id})
            declined = await client.call_tool("delete_note", {"note_id": note_id})
            still = await client.call_tool("get_note", {"note_id": note_id})
            # AND then says yes
            deleted = await client.call_tool("delete_note", {"note_id": note_id})
            gone = await client.call_tool("get_note", {"note_id": note_id})
    # THEN the question named the note, and only the yes deleted it
    assert asked == ['Delete the note "Old plans"? This cannot be undone.'] * 3
    assert "you chose not to delete it" in _text(kept)
    assert "the deletion was declined" in _text(declined)
    assert not still.is_error
    assert _text(deleted) == f"Deleted note {note_id}."
    assert gone.is_error


async def test_a_client_that_cannot_ask_must_pass_confirm(server: MCPServer, call: Any, signed_in: Any) -> None:
    # GIVEN a client without elicitation
    alice = _user()
    note_id = (await call(alice, "create_note", {"title": "Keep?"})).structured_content["id"]
    # WHEN it deletes without confirm: refused with what to do next, and the note is still there
    refused = await call(alice, "delete_note", {"note_id": note_id})
    assert refused.is_error
    assert f"call delete_note again with note_id={note_id} and confirm=true" in _text(refused)
    assert not (await call(alice, "get_note", {"note_id": note_id})).is_error
    # THEN with confirm=true it deletes
    deleted = await call(alice, "delete_note", {"note_id": note_id, "confirm": True})
    assert _text(deleted) == f"Deleted note {note_id}."
