"""`Mcp-Session-Id` for the handshake revisions (2025-03-26 … 2025-11-25), kept in DynamoDB.

Any Lambda instance may receive any request, so a session lives in the table, never in memory.
Each use is one strongly consistent GetItem (a session ended on another instance is 404 on the
very next request anywhere; an expired one is refused by its `ttl` even before DynamoDB's lazy TTL
sweep has removed the item). The expiry is not pushed out on every use: the item is written with
`session_ttl_seconds` plus half of it to spare, and a use that finds less than
`session_ttl_seconds` left slides it with one conditional UpdateItem. So a session stays alive at
least `session_ttl_seconds` after its last use (at most 1.5 times that), and an active session
costs one write per half-lifetime instead of one per request: a read is a quarter of a write's
price (1 RRU against 1 WRU) and faster, on DynamoDB as on moto (bench/README.md).
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
        # Writes slide the expiry this far past the promised idle lifetime, so most uses only read.
        self._lifetime = ttl_seconds + ttl_seconds // 2

    def create(self, protocol_version: str, owner: str | None = None) -> Session:
        session_id = secrets.token_hex(16)
        now = int(time.time())
        item = {
            **_key(session_id),
            "protocolVersion": {"S": protocol_version},
            "createdAt": {"N": str(now)},
            "ttl": {"N": str(now + self._lifetime)},
        }
        if owner is not None:
            item["owner"] = {"S": owner}
        # A retried put whose first attempt was applied must not turn a created session into an error.
        self._table.create(item)
        return Session(session_id, protocol_version, owner)

    def touch(self, session_id: str, owner: str | None = None) -> Session | None:
        """The live session with this id; None if it never existed, ended or expired.

        With `owner`, also None when the session belongs to someone else (and a foreign session's
        expiry is never extended). One GetItem; one conditional UpdateItem more when the session
        has less than `ttl_seconds` left.
        """
        if not _SESSION_ID.fullmatch(session_id):
            return None  # not one of ours: no need to ask DynamoDB
        now = int(time.time())
        item = self._table.call("get_item", Key=_key(session_id), ConsistentRead=True).get("Item")
        if item is None:
            return None
        expires = int(item.get("ttl", {}).get("N", "0"))
        stored_owner = item.get("owner", {}).get("S")
        if expires <= now or (owner is not None and stored_owner != owner):
            return None
        if expires - now < self._ttl and not self._slide(session_id, owner, now):
            return None  # ended (or expired) between the read and the write
        return Session(session_id, item["protocolVersion"]["S"], stored_owner)

    def _slide(self, session_id: str, owner: str | None, now: int) -> bool:
        condition, names, values = _owned("attribute_exists(pk) AND #ttl > :now", owner)
        try:
            self._table.call(
                "update_item",
                Key=_key(session_id),
                UpdateExpression="SET #ttl = :ttl",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#ttl": "ttl", **names},
                ExpressionAttributeValues={":ttl": {"N": str(now + self._lifetime)}, ":now": {"N": str(now)}, **values},
            )
        except ConditionFailedError:
            return False
        return True

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
