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
