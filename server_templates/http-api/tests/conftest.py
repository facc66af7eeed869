"""Fixtures: the server loaded by file path, a scripted fake upstream on loopback, moto for the key.

The fake upstream is a real HTTP server, so timeouts, retries and error mapping are exercised
through httpx exactly as against the real API.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from handlers.server_loader import load_server
from mcpkit.local_aws import EmbeddedAws, endpoint_environment

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mcp.server.mcpserver import MCPServer

SERVER_DIR = Path(__file__).resolve().parent.parent
API_KEY = "test-key-123"


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False  # block until the test releases the upstream, to provoke a client timeout


@dataclass
class FakeUpstream:
    url: str
    release: threading.Event
    script: dict[str, list[Reply]] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def respond(
        self, path: str, status: int, body: Any = None, *, headers: dict[str, str] | None = None, hang: bool = False
    ) -> None:
        """Queue a reply for `path` (path and query); the last one queued repeats."""
        self.script.setdefault(path, []).append(Reply(status, body, headers or {}, hang))

    def next_reply(self, path: str) -> Reply:
        queue = self.script.get(path) or [Reply(404, {"message": "no such route in the fake"})]
        return queue.pop(0) if len(queue) > 1 else queue[0]


@pytest.fixture(scope="session")
def upstream() -> Iterator[FakeUpstream]:
    release = threading.Event()
    state = FakeUpstream(url="", release=release)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            reply = state.next_reply(self.path)
            if reply.hang:
                release.wait(30)
            payload = json.dumps(reply.body).encode() if reply.body is not None else b""
            try:
                self.send_response(reply.status)
                for name, value in {"content-type": "application/json", **reply.headers}.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield state
    release.set()
    httpd.shutdown()


@pytest.fixture(scope="session")
def aws() -> Iterator[str]:
    import boto3

    with EmbeddedAws() as emulator:
        saved = dict(os.environ)
        os.environ.update(endpoint_environment(emulator.endpoint))
        boto3.client("secretsmanager").create_secret(Name="test/api-key", SecretString=json.dumps({"api_key": API_KEY}))
        boto3.client("ssm").put_parameter(Name="/test/api-key", Value=API_KEY, Type="SecureString")
        yield emulator.endpoint
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session")
def server(aws: str) -> MCPServer:
    return load_server(f"{SERVER_DIR / 'server.py'}:mcp")


@pytest.fixture
def configured(upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch) -> FakeUpstream:
    """The server's environment as mcpkit.toml sets it, pointing at the fake upstream."""
    monkeypatch.setenv("API_BASE_URL", upstream.url)
    monkeypatch.setenv("API_KEY_SECRET_NAME", "test/api-key")
    monkeypatch.delenv("API_KEY_SSM_PARAMETER", raising=False)
    monkeypatch.setenv("API_TIMEOUT_SECONDS", "0.5")
    monkeypatch.setenv("API_MAX_ATTEMPTS", "3")
    upstream.requests.clear()
    upstream.script.clear()
    return upstream


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
