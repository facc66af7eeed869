"""One `mcpkit dev --auth oauth` per test worker, on an emulator this process can reach (to forge tokens)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from mcpkit.local_aws import EmbeddedAws
from mcpkit.templates import render
from tests.auth.harness import Harness, dev_credentials, start_oauth_dev_server
from tests.conftest import start_dev_server, stop_dev_server

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


NOTES_SERVER = "notebook"
NOTES_GROUP = "notes-users"


@pytest.fixture(scope="session")
def notes(oauth_emulator: EmbeddedAws, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    """The `notes` template as `mcpkit new` renders it, served with OAuth and a required group."""
    servers = tmp_path_factory.mktemp("servers")
    folder = render("notes", NOTES_SERVER, servers / NOTES_SERVER)
    config = folder / "mcpkit.toml"
    # windsurf: a native scheme not in reverse-domain form, allowed here only (test_endpoints.py)
    config.write_text(
        config.read_text() + f'\n[oauth]\nrequired_group = "{NOTES_GROUP}"\nredirect_schemes = ["windsurf"]\n'
    )
    server = start_dev_server(
        *("--servers-dir", str(servers), "--server", NOTES_SERVER, "--auth", "oauth"),
        *("--aws-endpoint", oauth_emulator.endpoint),
        ready_when="Dev sign-in:",
    )
    username, password = dev_credentials(server.output())
    harness = Harness(server, oauth_emulator.endpoint, username, password, server_name=NOTES_SERVER)
    yield harness
    harness.http.close()
    stop_dev_server(server)
