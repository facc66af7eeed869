"""`SessionStore` on the real (emulated) table: ownership, the per-instance trust window, expiry.

Each store stands for one Lambda instance; two stores over one table are two instances.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

import handlers.sessions
from handlers.sessions import SessionStore
from handlers.store import Table
from tests.conftest import TEST_TABLE, recording_dynamodb_calls

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mcpkit.local_aws import EmbeddedAws

TTL = 3600


@dataclass
class Clock:
    """Wall and monotonic time for `handlers.sessions` only, moved by the test."""

    wall: float
    mono: float

    def time(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock(time.time(), time.monotonic())
    monkeypatch.setattr(handlers.sessions, "time", fake)
    return fake


@pytest.fixture(scope="module")
def table(aws: EmbeddedAws) -> Table:
    """One client for every store in a test, so that `calls` sees every instance's calls."""
    return Table(TEST_TABLE)


@pytest.fixture
def calls(table: Table) -> Iterator[list[str]]:
    """DynamoDB operations of every store built on `table`."""
    with recording_dynamodb_calls(table.client) as recorded:
        yield recorded


def test_a_session_is_only_ever_its_owners(table: Table, calls: list[str]) -> None:
    opener, other = SessionStore(table, TTL, cache_seconds=30), SessionStore(table, TTL, cache_seconds=30)
    session = opener.create("2025-11-25", owner="alice")

    # Someone else gets what an unknown id gets, on the instance that trusts the session and on one that reads it
    assert opener.touch(session.id, owner="bob") is None
    assert other.touch(session.id, owner="bob") is None
    # ... which neither ends nor forgets it for its owner
    assert not other.end(session.id, owner="bob")
    assert opener.touch(session.id, owner="alice") == session
    assert other.touch(session.id, owner="alice") == session
    assert other.end(session.id, owner="alice")
    assert other.touch(session.id, owner="alice") is None
    # The opener never read it; `other` read it for bob (refused, so not trusted), for alice, and once ended
    assert calls == ["PutItem", "GetItem", "DeleteItem", "GetItem", "DeleteItem", "GetItem"]


def test_a_trusted_session_is_read_again_when_its_expiry_runs_low(table: Table, calls: list[str], clock: Clock) -> None:
    store = SessionStore(table, 60, cache_seconds=300)
    session = store.create("2025-11-25")  # written to expire in 90 s
    calls.clear()

    clock.advance(20)
    assert store.touch(session.id) == session
    assert calls == []  # trusted: 70 s left, more than one idle lifetime

    clock.advance(20)  # 50 s left: the trust does not outlive what was seen
    assert store.touch(session.id) == session
    assert calls == ["GetItem", "UpdateItem"]  # read, then slid

    clock.advance(100)  # past the slid expiry, still inside the trust window
    assert store.touch(session.id) is None


def test_the_trust_window_holds_a_bounded_number_of_sessions(
    table: Table, calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(handlers.sessions, "_CACHE_ENTRIES", 2)
    store = SessionStore(table, TTL, cache_seconds=30)
    first, second, third = (store.create("2025-11-25") for _ in range(3))
    calls.clear()

    assert store.touch(third.id) == third
    assert store.touch(second.id) == second
    assert calls == []
    assert store.touch(first.id) == first  # the oldest made room for the third
    assert calls == ["GetItem"]


def test_without_a_trust_window_every_use_reads(table: Table, calls: list[str]) -> None:
    store = SessionStore(table, TTL, cache_seconds=0)
    session = store.create("2025-11-25")
    for _ in range(3):
        assert store.touch(session.id) == session
    assert calls == ["PutItem", "GetItem", "GetItem", "GetItem"]


KEY = b"k" * 32


def test_a_signed_id_is_trusted_by_every_instance_for_the_window_after_opening(
    table: Table, calls: list[str], clock: Clock
) -> None:
    opener = SessionStore(table, TTL, cache_seconds=30, key=KEY)
    fresh = SessionStore(table, TTL, cache_seconds=30, key=KEY)
    session = opener.create("2025-06-18", owner="alice")
    assert all(0x21 <= ord(c) <= 0x7E for c in session.id)  # visible ASCII only (basic/transports)
    calls.clear()

    # A fresh instance trusts what the id proves, as the opener trusts what it wrote: no read
    clock.advance(29)
    assert fresh.touch(session.id, owner="alice") == session
    assert calls == []

    # After the window it reads, and then trusts what it read
    clock.advance(2)
    assert fresh.touch(session.id, owner="alice") == session
    assert fresh.touch(session.id, owner="alice") == session
    assert calls == ["GetItem"]


def test_a_signed_id_proves_nothing_to_another_owner_key_or_after_tampering(table: Table, calls: list[str]) -> None:
    opener = SessionStore(table, TTL, cache_seconds=30, key=KEY)
    session = opener.create("2025-11-25", owner="alice")
    calls.clear()

    # Someone else's token: the MAC binds the owner, so the instance reads, and the read refuses
    assert SessionStore(table, TTL, cache_seconds=30, key=KEY).touch(session.id, owner="bob") is None
    # Another key (a redrawn one, another `mcpkit dev`): a read, which serves the owner
    assert SessionStore(table, TTL, cache_seconds=30, key=b"o" * 32).touch(session.id, owner="alice") == session
    assert SessionStore(table, TTL, cache_seconds=30).touch(session.id, owner="alice") == session
    assert calls == ["GetItem", "GetItem", "GetItem"]

    # A changed version or opening time no longer matches its MAC (and names no stored session)
    random_part, opened, _, mac = session.id.split(".")
    for forged in (f"{random_part}.{opened}.2025-03-26.{mac}", f"{random_part}.{int(opened) + 1}.2025-11-25.{mac}"):
        calls.clear()
        assert SessionStore(table, TTL, cache_seconds=30, key=KEY).touch(forged, owner="alice") is None
        assert calls == ["GetItem"]


def test_a_signed_id_ended_on_an_instance_is_404_there_at_once(table: Table, calls: list[str], clock: Clock) -> None:
    opener = SessionStore(table, TTL, cache_seconds=30, key=KEY)
    ender, bystander = SessionStore(table, TTL, cache_seconds=30, key=KEY), SessionStore(table, TTL, 30, key=KEY)
    session = opener.create("2025-11-25")

    assert ender.end(session.id)
    assert ender.touch(session.id) is None
    assert opener.touch(session.id) == session  # trusts what it wrote, as without a key
    # Another instance trusts the id until the window after opening runs out, then reads
    assert bystander.touch(session.id) == session
    clock.advance(30)
    assert bystander.touch(session.id) is None
    assert calls[-1] == "GetItem"


def test_a_signed_id_is_never_trusted_past_what_the_opening_expiry_allows(
    table: Table, calls: list[str], clock: Clock
) -> None:
    # Written to expire in 90 s with an idle lifetime of 60 s: past 30 s it would need sliding
    opener = SessionStore(table, 60, cache_seconds=300, key=KEY)
    fresh = SessionStore(table, 60, cache_seconds=300, key=KEY)
    session = opener.create("2025-11-25")
    calls.clear()
    clock.advance(29)
    assert fresh.touch(session.id) == session
    assert calls == []
    clock.advance(2)
    assert fresh.touch(session.id) == session
    assert calls == ["GetItem", "UpdateItem"]


def test_a_signed_id_from_a_clock_ahead_or_without_a_window_is_read(
    table: Table, calls: list[str], clock: Clock
) -> None:
    session = SessionStore(table, TTL, cache_seconds=30, key=KEY).create("2025-11-25")
    calls.clear()
    clock.advance(-5)  # this instance's clock is behind the opener's
    assert SessionStore(table, TTL, cache_seconds=30, key=KEY).touch(session.id) == session
    assert SessionStore(table, TTL, cache_seconds=0, key=KEY).touch(session.id) == session
    assert calls == ["GetItem", "GetItem"]


def test_unsigned_ids_of_a_store_without_a_key_still_work_with_one(table: Table, calls: list[str]) -> None:
    # Sessions opened before the key existed (or by `mcpkit dev` without one) are read as before
    session = SessionStore(table, TTL, cache_seconds=30).create("2025-11-25")
    assert "." not in session.id
    assert SessionStore(table, TTL, cache_seconds=30, key=KEY).touch(session.id) == session
    assert calls == ["PutItem", "GetItem"]
