"""{{ title }}: each signed-in user's private notes.

Tools create, list, read, update and delete notes; every note is also a resource
(`notes://{note_id}`), and the `summarise_notes` prompt hands the user's notes to the model.
`delete_note` asks the person to confirm first when their client can show a question
(elicitation); with a client that cannot, it deletes only when called with `confirm=true`.
The user is the `sub` of the OAuth access token the kit verified for this request; without a
signed-in user every capability refuses with a message saying so.

Storage is the kit's single DynamoDB table (`MCPKIT_TABLE_NAME`): pk `USER#<sub>`, sk
`NOTE#<id>`. Every read and write is keyed by the caller's `sub`, so no request can name another
user's item: no code path takes a partition key from the request.
"""

from __future__ import annotations

import os
import re
import uuid
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import AcceptedElicitation, Context, Elicit, ElicitationResult, MCPServer, Resolve
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp_types import ToolAnnotations
from mcp_types.version import is_version_at_least
from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

MAX_TITLE = 200
# DynamoDB items stop at 400 KB; a note is text for a model to read, so stay far below.
MAX_BODY = 20_000
NOTE_PREFIX = "NOTE#"


# ---- storage -------------------------------------------------------------------------------


class Note(BaseModel):
    id: str
    title: str
    body: str
    created_at: str
    updated_at: str


class NoteSummary(BaseModel):
    id: str
    title: str
    updated_at: str


class NoteInput(BaseModel):
    title: str = Field(min_length=1, max_length=MAX_TITLE)
    body: str = Field(default="", max_length=MAX_BODY)


class NoteNotFoundError(LookupError):
    pass


@cache
def _client() -> DynamoDBClient:
    import boto3  # off the cold path of servers that never touch notes

    return boto3.client("dynamodb")


def _table() -> str:
    return os.environ["MCPKIT_TABLE_NAME"]


def _key(sub: str, note_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"USER#{sub}"}, "sk": {"S": f"{NOTE_PREFIX}{note_id}"}}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _note(item: dict[str, Any]) -> Note:
    return Note(
        id=item["sk"]["S"].removeprefix(NOTE_PREFIX),
        title=item["title"]["S"],
        body=item["body"]["S"],
        created_at=item["created_at"]["S"],
        updated_at=item["updated_at"]["S"],
    )


def db_create(sub: str, data: NoteInput) -> Note:
    now = _now()
    note = Note(id=uuid.uuid4().hex, title=data.title, body=data.body, created_at=now, updated_at=now)
    _client().put_item(
        TableName=_table(),
        Item={
            **_key(sub, note.id),
            "title": {"S": note.title},
            "body": {"S": note.body},
            "created_at": {"S": now},
            "updated_at": {"S": now},
        },
        ConditionExpression="attribute_not_exists(pk)",
    )
    return note


def db_get(sub: str, note_id: str) -> Note:
    item = _client().get_item(TableName=_table(), Key=_key(sub, note_id), ConsistentRead=True).get("Item")
    if item is None:
        raise NoteNotFoundError(note_id)
    return _note(item)


def _query(sub: str, limit: int, projection: str | None) -> list[dict[str, Any]]:
    """The user's note items (only `projection`'s attributes when given), newest change first."""
    options: dict[str, Any] = {"ProjectionExpression": projection} if projection else {}
    pages = (
        _client()
        .get_paginator("query")
        .paginate(
            TableName=_table(),
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": {"S": f"USER#{sub}"}, ":prefix": {"S": NOTE_PREFIX}},
            PaginationConfig={"MaxItems": limit},
            **options,
        )
    )
    items = [item for page in pages for item in page.get("Items", [])]
    return sorted(items, key=lambda i: str(i["updated_at"]["S"]), reverse=True)


def db_list(sub: str, limit: int = 100) -> list[NoteSummary]:
    return [
        NoteSummary(id=i["sk"]["S"].removeprefix(NOTE_PREFIX), title=i["title"]["S"], updated_at=i["updated_at"]["S"])
        for i in _query(sub, limit, "sk, title, updated_at")
    ]


def db_notes(sub: str, limit: int = 100) -> list[Note]:
    return [_note(i) for i in _query(sub, limit, None)]


def db_update(sub: str, note_id: str, title: str | None, body: str | None) -> Note:
    from botocore.exceptions import ClientError

    current = db_get(sub, note_id)
    data = NoteInput(title=current.title if title is None else title, body=current.body if body is None else body)
    try:
        item = _client().update_item(
            TableName=_table(),
            Key=_key(sub, note_id),
            UpdateExpression="SET title = :t, body = :b, updated_at = :u",
            ConditionExpression="attribute_exists(pk)",  # never resurrect a note deleted meanwhile
            ExpressionAttributeValues={":t": {"S": data.title}, ":b": {"S": data.body}, ":u": {"S": _now()}},
            ReturnValues="ALL_NEW",
        )["Attributes"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            raise NoteNotFoundError(note_id) from exc
        raise
    return _note(item)


def db_delete(sub: str, note_id: str) -> None:
    from botocore.exceptions import ClientError

    try:
        _client().delete_item(TableName=_table(), Key=_key(sub, note_id), ConditionExpression="attribute_exists(pk)")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            raise NoteNotFoundError(note_id) from exc
        raise


# ---- MCP capabilities ----------------------------------------------------------------------

mcp = MCPServer(
    Path(__file__).resolve().parent.name,
    version="0.1.0",
    instructions="Private notes of the signed-in user: create, list, read, update, delete and summarise them.",
)

NoteId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$", description="A note id as returned by create_note.")]
_NOTE_ID = re.compile(r"^[0-9a-f]{32}$")


def current_user() -> str:
    """The signed-in user's `sub`; refuses when the request carries no verified token."""
    token = get_access_token()
    sub = None
    if token is not None:
        sub = token.subject or (token.claims or {}).get("sub")
    if not isinstance(sub, str) or not sub:
        raise ToolError(
            "No signed-in user: notes are private to each user. Connect with OAuth "
            '(auth = "oauth" in mcpkit.toml) and sign in.'
        )
    return sub


def _not_found(note_id: str) -> ToolError:
    return ToolError(f"No note {note_id} among your notes (it may have been deleted); list_notes shows what exists.")


@mcp.tool()
def create_note(title: Annotated[str, Field(min_length=1, max_length=MAX_TITLE)], body: str = "") -> Note:
    """Create a note and return it with its id."""
    return db_create(current_user(), NoteInput(title=title, body=body))


@mcp.tool()
def list_notes() -> list[NoteSummary]:
    """List your notes, most recently updated first (id, title, updated_at)."""
    return db_list(current_user())


@mcp.tool()
def get_note(note_id: NoteId) -> Note:
    """Read one of your notes."""
    try:
        return db_get(current_user(), note_id)
    except NoteNotFoundError as exc:
        raise _not_found(note_id) from exc


@mcp.tool()
def update_note(note_id: NoteId, title: str | None = None, body: str | None = None) -> Note:
    """Change the title and/or body of one of your notes."""
    if title is None and body is None:
        raise ToolError("Nothing to change: give a new title, a new body, or both.")
    try:
        return db_update(current_user(), note_id, title, body)
    except NoteNotFoundError as exc:
        raise _not_found(note_id) from exc


class DeleteAnswer(BaseModel):
    delete: bool = Field(title="Delete it?", description="Yes deletes the note for good; it cannot be undone.")


def can_ask(ctx: Context) -> bool:
    """Whether this client can put a question to the person and send the answer back.

    It must declare form elicitation, and have a way to carry the question: on 2026-07-28 the
    result itself (`InputRequiredResult`), on older revisions a server-to-client request, which
    the kit's buffered HTTP transport (API Gateway + Lambda) cannot send.
    """
    declared = ctx.client_capabilities
    elicitation = declared.elicitation if declared is not None else None
    if elicitation is None or (elicitation.form is None and elicitation.url is not None):
        return False
    version = ctx.protocol_version
    return (version is not None and is_version_at_least(version, "2026-07-28")) or ctx.session.can_send_request


def confirm_deletion(note_id: str, confirm: bool, ctx: Context) -> Elicit[DeleteAnswer] | DeleteAnswer:
    """Asks the person "Delete <title>?"; a client that cannot ask must pass `confirm=true` instead."""
    if not can_ask(ctx):
        if not confirm:
            raise ToolError(
                "This client cannot ask the person to confirm a deletion. Ask them in the chat, and if they "
                f"say yes, call delete_note again with note_id={note_id} and confirm=true."
            )
        return DeleteAnswer(delete=True)
    try:
        note = db_get(current_user(), note_id)
    except NoteNotFoundError as exc:
        raise _not_found(note_id) from exc
    return Elicit(f'Delete the note "{note.title}"? This cannot be undone.', DeleteAnswer)


@mcp.tool(annotations=ToolAnnotations(destructive_hint=True, idempotent_hint=True))
def delete_note(
    note_id: NoteId,
    answer: Annotated[ElicitationResult[DeleteAnswer], Resolve(confirm_deletion)],
    confirm: Annotated[
        bool,
        Field(description="Only for clients that cannot ask the person: true once the person said yes in the chat."),
    ] = False,
) -> str:
    """Delete one of your notes for good, once the person confirms."""
    if not isinstance(answer, AcceptedElicitation):
        return f"Kept note {note_id}: the deletion was {answer.action}d."
    if not answer.data.delete:
        return f"Kept note {note_id}: you chose not to delete it."
    try:
        db_delete(current_user(), note_id)
    except NoteNotFoundError as exc:
        raise _not_found(note_id) from exc
    return f"Deleted note {note_id}."


@mcp.resource("notes://{note_id}", mime_type="text/markdown")
def note_resource(note_id: str) -> str:
    """One of your notes as Markdown."""
    if not _NOTE_ID.fullmatch(note_id):
        raise ResourceError(f"{note_id!r} is not a note id")
    try:
        note = db_get(current_user(), note_id)
    except ToolError as exc:
        raise ResourceError(str(exc)) from exc
    except NoteNotFoundError as exc:
        raise ResourceError(str(_not_found(note_id))) from exc
    return f"# {note.title}\n\n{note.body}\n"


@mcp.prompt()
def summarise_notes(focus: str = "") -> str:
    """Summarise all of your notes, optionally focusing on a topic."""
    notes = db_notes(current_user())
    if not notes:
        return "I have no notes yet. Suggest three useful notes I could start with."
    listing = "\n\n".join(f"## {n.title}\n{n.body}" for n in notes)
    topic = f" Focus on: {focus}." if focus else ""
    return f"Summarise my notes below in a short list of key points, grouping related notes.{topic}\n\n{listing}"
