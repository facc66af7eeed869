"""Fixtures: the server loaded by file path, DynamoDB in an embedded moto server, signed-in users.

The kit's runtime puts the verified OAuth token into the SDK's auth context for each request;
`signed_in(sub)` does the same for the in-process client, so the tests exercise exactly the
code path that decides whose notes a request may touch.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from mcp.server.auth.middleware.auth_context import auth_context_var
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken

from handlers.server_loader import load_server
from mcpkit.local_aws import EmbeddedAws, endpoint_environment, ensure_table

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from mcp.server.mcpserver import MCPServer

SERVER_DIR = Path(__file__).resolve().parent.parent
TABLE = "notes-test"


@pytest.fixture(scope="session")
def local_aws() -> Iterator[str]:
    with EmbeddedAws() as aws:
        ensure_table(TABLE, aws.endpoint)
        saved = dict(os.environ)
        os.environ.update({**endpoint_environment(aws.endpoint), "MCPKIT_TABLE_NAME": TABLE})
        yield aws.endpoint
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session")
def server(local_aws: str) -> MCPServer:
    return load_server(f"{SERVER_DIR / 'server.py'}:mcp")


@contextlib.contextmanager
def _signed_in(sub: str | None) -> Iterator[None]:
    """Run the block as the user `sub` (None: no signed-in user), as the kit's auth layer would."""
    user = None
    if sub is not None:
        user = AuthenticatedUser(AccessToken(token=f"token-{sub}", client_id="test-client", scopes=[], subject=sub))
    reset = auth_context_var.set(user)
    try:
        yield
    finally:
        auth_context_var.reset(reset)


@pytest.fixture
def signed_in() -> Callable[[str | None], contextlib.AbstractContextManager[None]]:
    """`with signed_in("alice"):` runs the block as that user; `signed_in(None)` as nobody."""
    return _signed_in


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
