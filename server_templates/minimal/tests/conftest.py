"""Fixtures for this server's tests: the server loaded by file path, as the Lambda handler loads it.

Server folders are named like stacks (`my-server`), which is not a Python package name, so
tests never `import servers.<name>`; they go through the same loader as the runtime.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from handlers.server_loader import load_server

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

SERVER_DIR = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def server() -> MCPServer:
    return load_server(f"{SERVER_DIR / 'server.py'}:mcp")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
