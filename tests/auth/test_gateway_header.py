"""The 401 a client sees through API Gateway (as the local gateway reproduces it), over real HTTP.

API Gateway renames a Lambda-returned WWW-Authenticate to x-amzn-remapped-www-authenticate
(claude-ai-mcp #748). The function also returns the challenge as x-mcpkit-www-authenticate and
the integration's response parameter mapping puts it back (mcpkit.gateway_contract).
"""

from __future__ import annotations

import re
import shutil
import sys
from typing import TYPE_CHECKING

import httpx
import pytest

from handlers.auth.config import CHALLENGE_HEADER
from mcpkit import gateway_contract
from mcpkit.local_aws import EmbeddedAws
from tests.auth.harness import SERVER, SERVERS_DIR, start_oauth_dev_server
from tests.conftest import ROOT, stop_dev_server

if TYPE_CHECKING:
    from pathlib import Path

    from tests.auth.harness import Harness

pytestmark = pytest.mark.slow
INIT = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


def test_client_sees_a_literal_www_authenticate_with_resource_metadata_and_scope(harness: Harness) -> None:
    response = httpx.post(harness.server.url, json=INIT, headers=HEADERS)
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    expected = f"{harness.base}/.well-known/oauth-protected-resource/mcp"
    assert re.fullmatch(rf'Bearer resource_metadata="{re.escape(expected)}", scope="mcp:tools"', challenge)
    # Where the function's own header ended up: renamed, exactly as API Gateway does.
    assert response.headers["x-amzn-remapped-www-authenticate"] == challenge


def test_invalid_token_challenge_names_the_error(harness: Harness) -> None:
    response = httpx.post(harness.server.url, json=INIT, headers={**HEADERS, "authorization": "Bearer nonsense"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert "resource_metadata=" in response.headers["www-authenticate"]


def test_a_design_relying_on_the_raw_header_loses_it(tmp_path: Path) -> None:
    runner = [sys.executable, "-m", "tests.auth.unmapped_gateway"]
    # A copy under its own name: moto's state is one per process, whatever the emulator, and a dev
    # server for `whoami` would re-key the dev user's password that the session's harness signs in with.
    shutil.copytree(ROOT / SERVERS_DIR / SERVER, tmp_path / "unmapped", ignore=shutil.ignore_patterns("__pycache__"))
    with EmbeddedAws() as emulator:
        server = start_oauth_dev_server(emulator.endpoint, runner=runner, servers_dir=str(tmp_path), server="unmapped")
        try:
            response = httpx.post(server.url, json=INIT, headers=HEADERS)
        finally:
            stop_dev_server(server)
    assert response.status_code == 401
    assert "www-authenticate" not in response.headers
    assert response.headers["x-amzn-remapped-www-authenticate"].startswith("Bearer resource_metadata=")


def test_the_runtime_and_the_gateway_agree_on_the_challenge_header() -> None:
    assert CHALLENGE_HEADER == gateway_contract.CHALLENGE_HEADER
    for status in (401, 403):
        mapping = gateway_contract.RESPONSE_PARAMETER_MAPPINGS[status]
        assert mapping["overwrite:header.WWW-Authenticate"] == f"$response.header.{CHALLENGE_HEADER}"
