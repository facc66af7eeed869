"""One `mcpkit dev --auth oauth` per test worker, on an emulator this process can reach (to forge tokens)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from mcpkit.local_aws import EmbeddedAws
from tests.auth.harness import Harness, dev_credentials, start_oauth_dev_server
from tests.conftest import stop_dev_server

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(scope="session")
def oauth_emulator() -> Iterator[EmbeddedAws]:
    with EmbeddedAws() as emulator:
        yield emulator


@pytest.fixture(scope="session")
def harness(oauth_emulator: EmbeddedAws) -> Iterator[Harness]:
    server = start_oauth_dev_server(oauth_emulator.endpoint)
    username, password = dev_credentials(server.output())
    harness = Harness(server, oauth_emulator.endpoint, username, password)
    yield harness
    harness.http.close()
    stop_dev_server(server)
