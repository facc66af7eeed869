"""`Mcp-Session-Id` for the handshake revisions (2025-03-26 … 2025-11-25), kept in DynamoDB.

Any Lambda instance may receive any request, so a session lives in the table, never only in
memory. A read is strongly consistent, and an expired item is refused by its `ttl` even before
DynamoDB's lazy TTL sweep removes it. The expiry is not pushed out on every use: the item is
written with `session_ttl_seconds` plus half of it to spare, and a use that finds less than
`session_ttl_seconds` left slides it with one conditional UpdateItem. So a session stays alive at
least `session_ttl_seconds` after its last use (at most 1.5 times that).

An instance that has created or read a session trusts what it saw for `cache_seconds` (never past
the expiry it saw), so a burst of calls costs at most one read, not one each. The price: a `DELETE`
served by another instance reaches this one only when its trust runs out (the instance that served
it answers 404 at once). The spec lets a server refuse client-initiated termination outright
(405; basic/transports, "Session Management"), so a termination that takes seconds to reach every
instance is within it, and the id grants nothing: the bearer token is checked on every request, and
a request without an id is served too (claude-ai-mcp #975). `cache_seconds = 0` reads on every
request.

With a key (`MCPKIT_SESSION_KEY`, which the stack generates), an id also carries its opening time
and protocol version under an HMAC bound to the owner, and every instance trusts a valid id for
`cache_seconds` after it was opened, as the opening instance does: the first requests after
`initialize` often reach a fresh instance, which then answers without DynamoDB (botocore's import
and client are most of a cold start's extra cost). The bound on a `DELETE` reaching the others is
the same window. A key that does not match (rotated, or another `mcpkit dev`) only means a read.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

from handlers.store import ConditionFailedError, Table

# `<random>` alone, or `<random>.<opened, epoch s>.<protocol version>.<HMAC>` when the store has a key.
_SESSION_ID = re.compile(r"^[0-9a-f]{32}(?:\.[0-9]{10}\.[0-9]{4}-[0-9]{2}-[0-9]{2}\.[0-9a-f]{32})?$")
_VERSION = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
# Enough for every session a busy instance sees in a trust window (reads, and ids ended here); the oldest goes first.
_CACHE_ENTRIES = 4096


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    protocol_version: str
    owner: str | None


@dataclass(frozen=True, slots=True)
class _Read:
    session: Session
    expires: int  # the item's `ttl` (epoch seconds)
    trusted_until: float  # time.monotonic()


def _key(session_id: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"SESSION#{session_id}"}, "sk": {"S": "META"}}


class SessionStore:
    def __init__(self, table: Table, ttl_seconds: int, cache_seconds: int = 0, key: bytes | None = None) -> None:
        self._table = table
        self._ttl = ttl_seconds
        # Writes slide the expiry this far past the promised idle lifetime, so most uses only read.
        self._lifetime = ttl_seconds + ttl_seconds // 2
        self._cache_seconds = cache_seconds
        self._reads: dict[str, _Read] = {}
        self._key = key
        # Never so long that the expiry written at opening would have needed sliding.
        self._signed_trust = min(cache_seconds, self._lifetime - ttl_seconds) if key else 0
        # Ended here: a signed id must not be trusted again on this instance.
        self._ended: dict[str, None] = {}

    def create(self, protocol_version: str, owner: str | None = None) -> Session:
        session_id = secrets.token_hex(16)
        now = int(time.time())
        if self._key is not None and _VERSION.fullmatch(protocol_version):
            opened = f"{session_id}.{now}.{protocol_version}"
            session_id = f"{opened}.{_mac(self._key, opened, owner)}"
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
        session = Session(session_id, protocol_version, owner)
        self._remember(session, now + self._lifetime)
        return session

    def touch(self, session_id: str, owner: str | None = None) -> Session | None:
        """The live session with this id; None if it never existed, ended or expired.

        With `owner`, also None when the session belongs to someone else (and a foreign session's
        expiry is never extended). One GetItem; one conditional UpdateItem more when the session
        has less than `ttl_seconds` left. Neither while this instance still trusts its last read,
        nor within the trust window after the opening that a signed id proves.
        """
        if not _SESSION_ID.fullmatch(session_id):
            return None  # not one of ours: no need to ask DynamoDB
        now = int(time.time())
        read = self._reads.get(session_id)
        if read is None or read.trusted_until <= time.monotonic() or read.expires - now < self._ttl:
            vouched = self._vouched(session_id, owner, now)
            if vouched is not None:
                return vouched
            read = self._read(session_id, owner, now)
        if read is None or (owner is not None and read.session.owner != owner):
            return None
        return read.session

    def _vouched(self, session_id: str, owner: str | None, now: int) -> Session | None:
        """The session a signed id proves was opened by `owner` less than the trust window ago."""
        if self._key is None or session_id.count(".") != 3 or session_id in self._ended:
            return None
        opened, mac = session_id.rsplit(".", 1)
        _, at, version = opened.split(".")
        if not 0 <= now - int(at) < self._signed_trust or not hmac.compare_digest(mac, _mac(self._key, opened, owner)):
            return None
        return Session(session_id, version, owner)

    def _read(self, session_id: str, owner: str | None, now: int) -> _Read | None:
        self._reads.pop(session_id, None)
        item = self._table.call("get_item", Key=_key(session_id), ConsistentRead=True).get("Item")
        if item is None:
            return None
        expires = int(item.get("ttl", {}).get("N", "0"))
        session = Session(session_id, item["protocolVersion"]["S"], item.get("owner", {}).get("S"))
        if expires <= now or (owner is not None and session.owner != owner):
            return None
        if expires - now < self._ttl:
            if not self._slide(session_id, owner, now):
                return None  # ended (or expired) between the read and the write
            expires = now + self._lifetime
        return self._remember(session, expires)

    def _remember(self, session: Session, expires: int) -> _Read:
        read = _Read(session, expires, time.monotonic() + self._cache_seconds)
        if self._cache_seconds > 0:
            _put_bounded(self._reads, session.id, read)
        return read

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
        self._reads.pop(session_id, None)
        if self._signed_trust > 0:
            _put_bounded(self._ended, session_id, None)
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


def _put_bounded[V](entries: dict[str, V], key: str, value: V) -> None:
    """Insert, first dropping the oldest entry when `_CACHE_ENTRIES` are held."""
    if len(entries) >= _CACHE_ENTRIES:
        del entries[next(iter(entries))]
    entries[key] = value


def _mac(key: bytes, opened: str, owner: str | None) -> str:
    return hmac.new(key, f"{opened}.{owner or ''}".encode(), hashlib.sha256).hexdigest()[:32]


def _owned(condition: str, owner: str | None) -> tuple[str, dict[str, str], dict[str, dict[str, str]]]:
    """`condition`, narrowed to sessions of `owner` when there is one."""
    if owner is None:
        return condition, {}, {}
    return f"{condition} AND #owner = :owner", {"#owner": "owner"}, {":owner": {"S": owner}}
