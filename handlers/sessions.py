"""`Mcp-Session-Id` for the handshake revisions (2025-03-26 … 2025-11-25), kept in DynamoDB.

Any Lambda instance may receive any request, so a session lives in the table, never in memory.
Each use is one conditional UpdateItem that both proves the session is alive and slides its
expiry: one DynamoDB call per request, and an ended or expired session fails the condition even
before DynamoDB's lazy TTL sweep has removed the item.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass

from handlers.store import ConditionFailedError, Table

_SESSION_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    protocol_version: str
    owner: str | None


def _key(session_id: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"SESSION#{session_id}"}, "sk": {"S": "META"}}


class SessionStore:
    def __init__(self, table: Table, ttl_seconds: int) -> None:
        self._table = table
        self._ttl = ttl_seconds

    def create(self, protocol_version: str, owner: str | None = None) -> Session:
        session_id = secrets.token_hex(16)
        now = int(time.time())
        item = {
            **_key(session_id),
            "protocolVersion": {"S": protocol_version},
            "createdAt": {"N": str(now)},
            "ttl": {"N": str(now + self._ttl)},
        }
        if owner is not None:
            item["owner"] = {"S": owner}
        # A retried put whose first attempt was applied must not turn a created session into an error.
        self._table.create(item)
        return Session(session_id, protocol_version, owner)

    def touch(self, session_id: str, owner: str | None = None) -> Session | None:
        """The live session with this id, its expiry pushed out; None if it never existed, ended or expired.

        With `owner`, also None when the session belongs to someone else (checked in the same
        conditional write, so a foreign session's expiry is not extended either).
        """
        if not _SESSION_ID.fullmatch(session_id):
            return None  # not one of ours: no need to ask DynamoDB
        now = int(time.time())
        condition, names, values = _owned("attribute_exists(pk) AND #ttl > :now", owner)
        try:
            result = self._table.call(
                "update_item",
                Key=_key(session_id),
                UpdateExpression="SET #ttl = :ttl",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#ttl": "ttl", **names},
                ExpressionAttributeValues={":ttl": {"N": str(now + self._ttl)}, ":now": {"N": str(now)}, **values},
                ReturnValues="ALL_NEW",
            )
        except ConditionFailedError:
            return None
        item = result["Attributes"]
        owner = item.get("owner", {}).get("S")
        return Session(session_id, item["protocolVersion"]["S"], owner)

    def end(self, session_id: str, owner: str | None = None) -> bool:
        """End the session; False if there was no live session to end (or, with `owner`, none of theirs)."""
        if not _SESSION_ID.fullmatch(session_id):
            return False
        condition, names, values = _owned("attribute_exists(pk) AND #ttl > :now", owner)
        try:
            self._table.call(
                "delete_item",
                Key=_key(session_id),
                ConditionExpression=condition,
                ExpressionAttributeNames={"#ttl": "ttl", **names},
                ExpressionAttributeValues={":now": {"N": str(int(time.time()))}, **values},
            )
        except ConditionFailedError:
            return False
        return True


def _owned(condition: str, owner: str | None) -> tuple[str, dict[str, str], dict[str, dict[str, str]]]:
    """`condition`, narrowed to sessions of `owner` when there is one."""
    if owner is None:
        return condition, {}, {}
    return f"{condition} AND #owner = :owner", {"#owner": "owner"}, {":owner": {"S": owner}}
