"""Shared fixtures: a real moto server per test worker, real API Gateway events, the real handler."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import httpx
import pytest

from mcpkit.local_aws import EmbeddedAws, endpoint_environment, ensure_table
from mcpkit.local_gateway import LambdaContext

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.hostile.documents import DocumentServer

ROOT = Path(__file__).resolve().parent.parent
EVENTS = Path(__file__).parent / "events"
TEST_TABLE = "mcpkit-test"


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return event


@pytest.fixture(scope="session")
def aws() -> Iterator[EmbeddedAws]:
    """One embedded moto server per worker, with the kit's table; the process env points boto3 at it."""
    with EmbeddedAws() as emulator:
        ensure_table(TEST_TABLE, emulator.endpoint)
        saved = dict(os.environ)
        os.environ.update(endpoint_environment(emulator.endpoint))
        yield emulator
        os.environ.clear()
        os.environ.update(saved)


@dataclass
class Invoker:
    """Calls the real Lambda handler with an API Gateway HTTP API event built from a real fixture."""

    handler: Any
    base_event: dict[str, Any]

    def __call__(
        self,
        body: Any = None,
        *,
        method: str = "POST",
        headers: dict[str, str] | None = None,
        path: str = "/mcp",
        raw_body: str | None = None,
    ) -> dict[str, Any]:
        event = copy.deepcopy(self.base_event)
        event["rawPath"] = event["requestContext"]["http"]["path"] = path
        event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} {path}"
        event["requestContext"]["http"]["method"] = method
        text = raw_body if raw_body is not None else ("" if body is None else json.dumps(body))
        event["body"] = text
        event["headers"]["content-length"] = str(len(text.encode()))
        event["headers"].update({k.lower(): v for k, v in (headers or {}).items()})
        response: dict[str, Any] = self.handler(event, LambdaContext())
        return response


LAMBDA_ENV = {
    "MCPKIT_TABLE_NAME": TEST_TABLE,
    "MCPKIT_SERVER": "servers/example/server.py:mcp",
    "MCPKIT_ALLOWED_ORIGINS": '["http://localhost:6274"]',
    "MCPKIT_ALLOWED_HOSTS": '["mcp.example.com"]',
    # As the stack sets it (drawn at deploy; stacks/constructs/mcp_server.py).
    "MCPKIT_SESSION_KEY": "test-session-key-of-at-least-32-characters",
    "POWERTOOLS_SERVICE_NAME": "example",
    "POWERTOOLS_METRICS_NAMESPACE": "McpKit",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    # As the stack sets it unless `xray = true`.
    "POWERTOOLS_TRACE_DISABLED": "true",
}


@pytest.fixture(scope="session")
def lambda_module(aws: EmbeddedAws) -> Any:
    """`handlers.lambda_handler`, imported once as Lambda's init phase would, with the deployed env shape."""
    os.environ.update(LAMBDA_ENV)
    import handlers.lambda_handler as module

    return module


@pytest.fixture
def invoke(lambda_module: Any) -> Invoker:
    return Invoker(lambda_module.handler, load_event("http_api_post_mcp"))


@contextlib.contextmanager
def recording_dynamodb_calls(client: Any) -> Iterator[list[str]]:
    """Names of the DynamoDB operations `client` makes inside the block (a botocore event hook)."""
    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        calls.append(model.name)

    client.meta.events.register("before-call.dynamodb", record)
    try:
        yield calls
    finally:
        client.meta.events.unregister("before-call.dynamodb", record)


@pytest.fixture
def dynamodb_calls(lambda_module: Any) -> Iterator[list[str]]:
    """Names of the DynamoDB operations the handler makes while the test runs."""
    with recording_dynamodb_calls(lambda_module.lambda_app.runtime.table.client) as calls:
        yield calls


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class DevServer:
    url: str
    process: subprocess.Popen[str]
    log: IO[str]

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()


def start_dev_server(
    *args: str,
    timeout: float = 120,
    runner: list[str] | None = None,
    ready_when: str | None = None,
    env: dict[str, str] | None = None,
    port: int | None = None,
) -> DevServer:
    """`mcpkit dev …` as a subprocess, returned once it answers on its port.

    `runner` replaces `python -m mcpkit` (e.g. the same CLI behind a differently configured
    gateway); `ready_when` is a line the server must have printed first (e.g. the dev sign-in).
    """
    port = port or free_port()
    if "--state-dir" not in args and "--aws-endpoint" not in args:
        # Each server its own dev state, never the checkout's .mcpkit/dev/ (tests run side by side).
        args = (*args, "--state-dir", tempfile.mkdtemp(prefix="mcpkit-dev-state-"))
    child_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    for key in [k for k in child_env if k.startswith(("MCPKIT_", "AWS_ENDPOINT_URL"))]:
        del child_env[key]
    # A file, not a pipe: nobody reads the server's output while it runs, and a full pipe would block it.
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed by stop_dev_server
    process = subprocess.Popen(
        [*(runner or [sys.executable, "-m", "mcpkit"]), "dev", "--port", str(port), *args],
        cwd=ROOT,
        env=child_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = DevServer(f"http://127.0.0.1:{port}/mcp", process, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mcpkit dev exited with {process.returncode}:\n{server.output()}")
        if ready_when is None or ready_when in server.output():
            try:
                httpx.get(server.url, timeout=1)
                return server
            except httpx.TransportError:
                pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"mcpkit dev did not start in time:\n{server.output()}")


def stop_dev_server(server: DevServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
    server.log.close()


@pytest.fixture(scope="session")
def dev_server() -> Iterator[DevServer]:
    """`mcpkit dev` serving servers/example without sign-in, shared by the tests that only talk to it."""
    server = start_dev_server()
    yield server
    stop_dev_server(server)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def documents() -> Iterator[DocumentServer]:
    """A loopback web server for client ID metadata documents and key sets, counting every fetch."""
    from tests.hostile.documents import DocumentServer

    server = DocumentServer()
    yield server
    server.close()
