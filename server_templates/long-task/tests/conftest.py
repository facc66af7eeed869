"""Fixtures: the server loaded by file path and the kit's table in an embedded moto server."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from handlers.server_loader import load_server
from mcpkit.local_aws import EmbeddedAws, endpoint_environment, ensure_table

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import ModuleType

    from mcp.server.mcpserver import MCPServer

SERVER_DIR = Path(__file__).resolve().parent.parent
TABLE = "long-task-test"


@pytest.fixture(scope="session")
def local_aws() -> Iterator[str]:
    with EmbeddedAws() as aws:
        ensure_table(TABLE, aws.endpoint)
        saved = dict(os.environ)
        # Small chunks, so a short job still reports progress several times.
        os.environ.update({**endpoint_environment(aws.endpoint), "MCPKIT_TABLE_NAME": TABLE, "LONG_TASK_CHUNK": "5000"})
        os.environ.pop("AWS_LAMBDA_FUNCTION_NAME", None)
        yield aws.endpoint
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session")
def server(local_aws: str) -> MCPServer:
    return load_server(f"{SERVER_DIR / 'server.py'}:mcp")


@pytest.fixture(scope="session")
def module(server: MCPServer) -> ModuleType:
    """The server module itself, for the worker entry points that are not MCP capabilities."""
    import sys

    return next(m for m in list(sys.modules.values()) if getattr(m, "mcp", None) is server)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
