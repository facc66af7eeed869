"""The OAuth state in the single table (keys in ARCHITECTURE.md); secrets only as SHA-256 hashes.

moto and DynamoDB's own TTL sweep both leave expired items in place for a while, so every read
and every consuming write checks `ttl > now` itself. Single-use items (codes, transactions) are
consumed with one conditional DeleteItem that returns the old item: two concurrent redemptions
cannot both succeed.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict

from handlers.auth.tokens import sha256_hex
from handlers.store import ConditionFailedError

if TYPE_CHECKING:
    from collections.abc import Callable

    from handlers.store import Table

_ONE_DAY = 24 * 3600
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


def _plausible(identifier: str) -> bool:
    """Could this be an id the kit handed out? Anything else is not looked up: in a key, 700
    non-ASCII characters would be over DynamoDB's 2048-byte limit and fail the read itself."""
    return 0 < len(identifier) <= 256 and identifier.isascii()


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class ClientRecord(_Record):
    client_id: str
    # None for public clients (token_endpoint_auth_method "none").
    secret_hash: str | None
    registration_token_hash: str
    issued_at: int
    metadata: dict[str, Any]
    touched_at: int

    @property
    def redirect_uris(self) -> list[str]:
        return list(self.metadata.get("redirect_uris", []))

    @property
    def auth_method(self) -> str:
        return str(self.metadata.get("token_endpoint_auth_method", "none"))


class Transaction(_Record):
    """An authorization request waiting for the person to sign in upstream."""

    client_id: str
    redirect_uri: str
    code_challenge: str
    scopes: tuple[str, ...]
    resource: str
    client_state: str | None
    # The upstream PKCE verifier: only useful with Cognito's code, and the item lives 10 minutes.
    upstream_verifier: str


class Grant(_Record):
    """What an authorization code or a refresh-token family stands for."""

    client_id: str
    subject: str
    email: str | None
    scopes: tuple[str, ...]
    resource: str


class CodeRecord(Grant):
    redirect_uri: str
    code_challenge: str


class FamilyRecord(Grant):
    created_at: int


class ConsentRequest(_Record):
    """A signed-in person looking at the consent page; bound to their browser by a cookie's hash."""

    transaction: Transaction
    subject: str
    email: str | None
    browser_hash: str


class GrantRecord(_Record):
    """What a person allowed a client: the consent, its refresh-token families and when it was used."""

    subject: str
    email: str | None
    client_id: str
    client_name: str | None
    scopes: tuple[str, ...]
    first_used: int
    last_used: int
    families: tuple[str, ...]

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> GrantRecord:
        return cls(
            subject=item["subject"]["S"],
            email=item.get("email", {}).get("S"),
            client_id=item["client_id"]["S"],
            client_name=item.get("client_name", {}).get("S"),
            scopes=tuple(sorted(item.get("scopes", {}).get("SS", []))),
            first_used=int(item["first_used"]["N"]),
            last_used=int(item["last_used"]["N"]),
            families=tuple(sorted(item.get("families", {}).get("SS", []))),
        )


class GrantRevokedError(Exception):
    """The person's grant for this client was revoked (or lapsed) while a code or token was in flight."""


def _key(pk: str, sk: str = "META") -> dict[str, dict[str, str]]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


GRANT_PREFIX = "GRANT#"


def _grant_key(subject: str, client_id: str) -> dict[str, dict[str, str]]:
    return _key(f"{GRANT_PREFIX}{subject}", f"CLIENT#{client_id}")


def _grant_use(subject: str, client_id: str, family_id: str, now: int, lifetime: int) -> dict[str, Any]:
    """The transaction step that ties a family to its grant: fails once the grant is revoked."""
    return {
        "Update": {
            "Key": _grant_key(subject, client_id),
            "UpdateExpression": "ADD families :family SET last_used = :now, #ttl = :ttl",
            "ConditionExpression": "attribute_exists(pk) AND #ttl > :now",
            "ExpressionAttributeNames": {"#ttl": "ttl"},
            "ExpressionAttributeValues": {
                ":family": {"SS": [family_id]},
                ":now": {"N": str(now)},
                ":ttl": {"N": str(now + lifetime)},
            },
        }
    }


def _now() -> int:
    return int(time.time())


class OAuthState:
    def __init__(self, table: Table) -> None:
        self._table = table

    # -- generic helpers -------------------------------------------------------------------
    def _put(self, pk: str, record: BaseModel, ttl: int, sk: str = "META", *, new: bool = True) -> None:
        item = {**_key(pk, sk), "data": {"S": record.model_dump_json()}, "ttl": {"N": str(ttl)}}
        if new:
            self._table.create(item)
        else:
            self._table.call("put_item", Item=item)

    def _get(self, pk: str, model: type[M], sk: str = "META") -> tuple[M, int] | None:
        item = self._table.call("get_item", Key=_key(pk, sk), ConsistentRead=True).get("Item")
        if item is None or int(item["ttl"]["N"]) <= _now():
            return None
        return model.model_validate_json(item["data"]["S"]), int(item["ttl"]["N"])

    def _take(self, pk: str, model: type[M]) -> M | None:
        try:
            result = self._table.call(
                "delete_item",
                Key=_key(pk),
                ConditionExpression="attribute_exists(pk) AND #ttl > :now",
                ExpressionAttributeNames={"#ttl": "ttl"},
                ExpressionAttributeValues={":now": {"N": str(_now())}},
                ReturnValues="ALL_OLD",
            )
        except ConditionFailedError:
            return None
        return model.model_validate_json(result["Attributes"]["data"]["S"])

    # -- registered clients (DCR) ----------------------------------------------------------
    def put_client(self, record: ClientRecord, idle_seconds: int) -> None:
        self._put(f"CLIENT#{record.client_id}", record, record.touched_at + idle_seconds)

    def get_client(self, client_id: str) -> ClientRecord | None:
        if not _plausible(client_id):
            return None
        found = self._get(f"CLIENT#{client_id}", ClientRecord)
        return found[0] if found else None

    def touch_client(self, record: ClientRecord, idle_seconds: int) -> None:
        """Push the idle expiry out, at most once a day per client: keeps writes off the hot path."""
        now = _now()
        if now - record.touched_at < _ONE_DAY:
            return
        updated = record.model_copy(update={"touched_at": now})
        # A client deleted meanwhile fails the condition: nothing to keep alive then.
        with contextlib.suppress(ConditionFailedError):
            self._table.call(
                "update_item",
                Key=_key(f"CLIENT#{record.client_id}"),
                UpdateExpression="SET #data = :data, #ttl = :ttl",
                ConditionExpression="attribute_exists(pk) AND #ttl > :now",
                ExpressionAttributeNames={"#data": "data", "#ttl": "ttl"},
                ExpressionAttributeValues={
                    ":data": {"S": updated.model_dump_json()},
                    ":ttl": {"N": str(now + idle_seconds)},
                    ":now": {"N": str(now)},
                },
            )

    def delete_client(self, client_id: str) -> None:
        self._table.call("delete_item", Key=_key(f"CLIENT#{client_id}"))

    # -- client ID metadata documents ------------------------------------------------------
    def get_cimd(self, url: str) -> dict[str, Any] | None:
        item = self._table.call("get_item", Key=_key(f"CIMD#{sha256_hex(url)}", "DOC")).get("Item")
        if item is None or int(item["ttl"]["N"]) <= _now():
            return None
        import json

        document: dict[str, Any] = json.loads(item["data"]["S"])
        return document

    def put_cimd(self, url: str, document_json: str, lifetime: int) -> None:
        item = {
            **_key(f"CIMD#{sha256_hex(url)}", "DOC"),
            "data": {"S": document_json},
            "ttl": {"N": str(_now() + lifetime)},
        }
        self._table.call("put_item", Item=item)

    # -- private_key_jwt: client key sets and used assertion ids -----------------------------
    @staticmethod
    def _keys_key(client_id: str, jwks_uri: str) -> dict[str, dict[str, str]]:
        # Keyed by the URI too: a document that moves its keys elsewhere is fetched from there at once.
        return _key(f"JWKS#{sha256_hex(client_id + chr(10) + jwks_uri)}", "KEYS")

    def get_client_keys(self, client_id: str, jwks_uri: str) -> tuple[dict[str, Any], int] | None:
        """(cached key set or {"failure": …}, when it was fetched)."""
        item = self._table.call("get_item", Key=self._keys_key(client_id, jwks_uri)).get("Item")
        if item is None or int(item["ttl"]["N"]) <= _now():
            return None
        import json

        keys: dict[str, Any] = json.loads(item["data"]["S"])
        return keys, int(item["fetched_at"]["N"])

    def put_client_keys(self, client_id: str, jwks_uri: str, keys_json: str, lifetime: int) -> None:
        now = _now()
        item = {
            **self._keys_key(client_id, jwks_uri),
            "data": {"S": keys_json},
            "fetched_at": {"N": str(now)},
            "ttl": {"N": str(now + lifetime)},
        }
        self._table.call("put_item", Item=item)

    def use_assertion_id(self, client_id: str, jti: str, expires_at: int) -> bool:
        """Record a client assertion's `jti`; False if this client used it before and it has not expired."""
        item = {
            **_key(f"JTI#{sha256_hex(client_id + chr(10) + jti)}", "USED"),
            # Makes the item ours alone, so Table.create can tell its own retried write from a replay.
            "nonce": {"S": secrets.token_urlsafe(16)},
            "ttl": {"N": str(expires_at)},
        }
        try:
            self._table.create(item)
        except ConditionFailedError:
            return False
        return True

    # -- authorization transactions --------------------------------------------------------
    def put_transaction(self, transaction: Transaction, lifetime: int) -> str:
        state = secrets.token_urlsafe(32)
        self._put(f"TXN#{state}", transaction, _now() + lifetime)
        return state

    def get_transaction(self, state: str) -> Transaction | None:
        if not _plausible(state):
            return None
        found = self._get(f"TXN#{state}", Transaction)
        return found[0] if found else None

    def take_transaction(self, state: str) -> Transaction | None:
        if not _plausible(state):
            return None
        return self._take(f"TXN#{state}", Transaction)

    # -- authorization codes ---------------------------------------------------------------
    def put_code(self, record: CodeRecord, lifetime: int) -> str:
        code = secrets.token_urlsafe(32)
        self._put(f"CODE#{sha256_hex(code)}", record, _now() + lifetime)
        return code

    def take_code(self, code: str) -> CodeRecord | None:
        return self._take(f"CODE#{sha256_hex(code)}", CodeRecord)

    # -- refresh tokens: one family per sign-in, rotated on every use ----------------------
    def start_family(self, grant: Grant, lifetime: int, max_lifetime: int) -> str:
        """A new family and its first refresh token, recorded on the person's grant for this client.

        Raises GrantRevokedError when that grant no longer exists: revoking deletes the grant
        first, so a family can never be created behind a revocation's back.
        """
        family_id = secrets.token_urlsafe(16)
        token = secrets.token_urlsafe(32)
        now = _now()
        family = FamilyRecord(**grant.model_dump(), created_at=now)
        family_item = self._item(f"FAMILY#{family_id}", family, now + max_lifetime)
        family_item["current"] = {"S": sha256_hex(token)}
        try:
            self._table.transact(
                [
                    {"Put": {"Item": family_item, "ConditionExpression": "attribute_not_exists(pk)"}},
                    {"Put": {"Item": self._refresh_item(token, family_id, min(now + lifetime, now + max_lifetime))}},
                    _grant_use(grant.subject, grant.client_id, family_id, now, max_lifetime),
                ]
            )
        except ConditionFailedError:
            # The family id is random: if it exists, it is this very write, retried after a lost response.
            if self._current_of(family_id) != sha256_hex(token):
                raise GrantRevokedError from None
        return token

    def _current_of(self, family_id: str) -> str | None:
        item = self._table.call("get_item", Key=_key(f"FAMILY#{family_id}"), ConsistentRead=True).get("Item")
        return None if item is None else str(item["current"]["S"])

    def rotate(
        self,
        token: str,
        client_id: str,
        lifetime: int,
        grant_lifetime: int,
        prepare: Callable[[FamilyRecord], T],
    ) -> tuple[FamilyRecord, str, T] | None:
        """Exchange a refresh token for its successor; None if it is unknown, expired or not this client's.

        Presenting a token that was already rotated away is reuse (RFC 9700 §4.14.2): the whole
        family is revoked, so neither a thief nor the client can go on with it. `prepare` runs
        before anything is written and everything it refuses leaves the presented token good: it
        checks the request against the family and builds the answer (signs the access token), so a
        refused request or a failure there never costs the client its grant. Raising
        GrantRevokedError from it (the account may no longer sign in) revokes the grant.
        """
        now = _now()
        token_hash = sha256_hex(token)
        item = self._table.call("get_item", Key=_key(f"REFRESH#{token_hash}"), ConsistentRead=True).get("Item")
        if item is None or int(item["ttl"]["N"]) <= now:
            return None
        family_id = item["family"]["S"]
        family_item = self._table.call("get_item", Key=_key(f"FAMILY#{family_id}"), ConsistentRead=True).get("Item")
        if family_item is None or int(family_item["ttl"]["N"]) <= now:
            return None
        family = FamilyRecord.model_validate_json(family_item["data"]["S"])
        if family.client_id != client_id:
            return None
        if family_item["current"]["S"] != token_hash:
            self.revoke_family(family_id)
            return None
        try:
            prepared = prepare(family)
        except GrantRevokedError:
            self.revoke_grant(family.subject, family.client_id)
            raise
        successor = secrets.token_urlsafe(32)
        try:
            self._table.transact(
                [
                    {
                        "Update": {
                            "Key": _key(f"FAMILY#{family_id}"),
                            "UpdateExpression": "SET #current = :next",
                            # Two concurrent refreshes with one token: one wins, the other is reuse.
                            "ConditionExpression": "#current = :presented AND #ttl > :now",
                            "ExpressionAttributeNames": {"#current": "current", "#ttl": "ttl"},
                            "ExpressionAttributeValues": {
                                ":next": {"S": sha256_hex(successor)},
                                ":presented": {"S": token_hash},
                                ":now": {"N": str(now)},
                            },
                        }
                    },
                    {
                        "Put": {
                            "Item": self._refresh_item(
                                successor, family_id, min(now + lifetime, int(family_item["ttl"]["N"]))
                            )
                        }
                    },
                    # A revoked grant fails the rotation (and the family is ended below).
                    _grant_use(family.subject, family.client_id, family_id, now, grant_lifetime),
                ]
            )
        except ConditionFailedError:
            # Our own rotation, retried by botocore after its response was lost, finds `current` moved
            # on to the successor it wrote: that is success, not reuse.
            if self._current_of(family_id) == sha256_hex(successor):
                return family, successor, prepared
            self.revoke_family(family_id)
            return None
        return family, successor, prepared

    def family_of(self, token: str) -> tuple[str, FamilyRecord] | None:
        item = self._table.call("get_item", Key=_key(f"REFRESH#{sha256_hex(token)}")).get("Item")
        if item is None:
            return None
        found = self._get(f"FAMILY#{item['family']['S']}", FamilyRecord)
        return (item["family"]["S"], found[0]) if found else None

    def revoke_family(self, family_id: str) -> None:
        # Without the family item no refresh token of it can be rotated; the REFRESH# items age out.
        self._table.call("delete_item", Key=_key(f"FAMILY#{family_id}"))

    # -- consent and grants: GRANT#<sub> / CLIENT#<client_id> --------------------------------
    def put_consent_request(self, request: ConsentRequest, lifetime: int) -> str:
        request_id = secrets.token_urlsafe(32)
        self._put(f"CONSENT#{request_id}", request, _now() + lifetime)
        return request_id

    def get_consent_request(self, request_id: str) -> ConsentRequest | None:
        if not _plausible(request_id):
            return None
        found = self._get(f"CONSENT#{request_id}", ConsentRequest)
        return found[0] if found else None

    def take_consent_request(self, request_id: str) -> ConsentRequest | None:
        if not _plausible(request_id):
            return None
        return self._take(f"CONSENT#{request_id}", ConsentRequest)

    def get_grant(self, subject: str, client_id: str) -> GrantRecord | None:
        item = self._table.call("get_item", Key=_grant_key(subject, client_id), ConsistentRead=True).get("Item")
        if item is None or int(item["ttl"]["N"]) <= _now():
            return None
        return GrantRecord.from_item(item)

    def record_consent(
        self,
        *,
        subject: str,
        email: str | None,
        client_id: str,
        client_name: str | None,
        scopes: tuple[str, ...],
        lifetime: int,
    ) -> None:
        """Add `scopes` to what the person allowed this client (a consent only ever grows until revoked)."""
        now = _now()
        names = {"#ttl": "ttl", "#subject": "subject", "#client": "client_id"}
        values: dict[str, Any] = {
            ":subject": {"S": subject},
            ":client": {"S": client_id},
            ":scopes": {"SS": list(scopes)},
            ":now": {"N": str(now)},
            ":ttl": {"N": str(now + lifetime)},
        }
        update = (
            "SET #subject = :subject, #client = :client, first_used = if_not_exists(first_used, :now), "
            "last_used = :now, #ttl = :ttl"
        )
        for attribute, value in (("email", email), ("client_name", client_name)):
            if value:
                update += f", {attribute} = :{attribute}"
                values[f":{attribute}"] = {"S": value}
        self._table.call(
            "update_item",
            Key=_grant_key(subject, client_id),
            UpdateExpression=f"{update} ADD scopes :scopes",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def list_grants(self, subject: str | None = None) -> list[GrantRecord]:
        """Every live grant (or one person's), oldest first; an administrator's read, never on a request path."""
        values: dict[str, Any] = {":now": {"N": str(_now())}}
        if subject is None:
            operation, condition = "scan", {"FilterExpression": "begins_with(pk, :pk) AND #ttl > :now"}
            values[":pk"] = {"S": GRANT_PREFIX}
        else:
            operation, condition = "query", {"KeyConditionExpression": "pk = :pk", "FilterExpression": "#ttl > :now"}
            values[":pk"] = {"S": f"{GRANT_PREFIX}{subject}"}
        request = {**condition, "ExpressionAttributeNames": {"#ttl": "ttl"}, "ExpressionAttributeValues": values}
        grants: list[GrantRecord] = []
        while True:
            page = self._table.call(operation, **request)
            grants += [GrantRecord.from_item(item) for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return sorted(grants, key=lambda g: (g.first_used, g.subject, g.client_id))
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def revoke_grant(self, subject: str, client_id: str) -> GrantRecord | None:
        """End a grant: the consent goes, and with it every refresh-token family it issued."""
        result = self._table.call("delete_item", Key=_grant_key(subject, client_id), ReturnValues="ALL_OLD")
        item = result.get("Attributes")
        if item is None:
            return None
        grant = GrantRecord.from_item(item)
        for family_id in grant.families:
            self.revoke_family(family_id)
        return grant

    @staticmethod
    def _refresh_item(token: str, family_id: str, ttl: int) -> dict[str, Any]:
        return {**_key(f"REFRESH#{sha256_hex(token)}"), "family": {"S": family_id}, "ttl": {"N": str(ttl)}}

    @staticmethod
    def _item(pk: str, record: BaseModel, ttl: int) -> dict[str, Any]:
        return {**_key(pk), "data": {"S": record.model_dump_json()}, "ttl": {"N": str(ttl)}}
