"""A local Lambda Runtime API, one per `mcpkit dev` streaming instance, for `handlers.stream_runtime`.

Serves what a runtime client calls (API version 2018-06-01): `runtime/invocation/next`, a buffered
or streamed `runtime/invocation/<id>/response`, `runtime/invocation/<id>/error` and
`runtime/init/error`. A streamed response is read chunk by chunk: the JSON prelude up to its eight
NUL bytes, then every chunk is handed on the moment it arrives, then the trailers that say whether
the function failed mid-stream. The front (mcpkit/function_url.py) consumes the parts in its event
loop; this server's threads only parse and hand on.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import queue
import sys
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/2018-06-01/runtime"
PRELUDE_END = b"\0" * 8
HTTP_INTEGRATION_RESPONSE = "application/vnd.awslambda.http-integration-response"
EXIT_ERROR = "Runtime.ExitError"  # Lambda's errorType for a runtime whose process ended mid-invocation
FUNCTION_ARN = "arn:aws:lambda:us-east-1:000000000000:function:mcpkit-local"


@dataclass(frozen=True)
class Prelude:
    status: int
    headers: dict[str, str]
    cookies: list[str]


@dataclass(frozen=True)
class Chunk:
    data: bytes


@dataclass(frozen=True)
class End:
    """The stream's end; `error` is the decoded error trailer when the function failed mid-stream."""

    error: dict[str, Any] | None = None


@dataclass(frozen=True)
class Buffered:
    payload: bytes


@dataclass(frozen=True)
class Failed:
    """`invocation/<id>/error`, or a response the runtime could not get right."""

    error: dict[str, Any]


Part = Prelude | Chunk | End | Buffered | Failed


@dataclass
class Invocation:
    """One event on its way to the runtime, and the parts of its answer as they arrive."""

    event: bytes
    deadline_ms: int
    loop: asyncio.AbstractEventLoop
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    parts: asyncio.Queue[Part] = field(default_factory=asyncio.Queue)

    def hand_on(self, part: Part) -> None:
        """From a server thread: the part reaches the front's loop at once."""
        self.loop.call_soon_threadsafe(self.parts.put_nowait, part)


class RuntimeApi:
    """The emulator: a threaded HTTP server on a free loopback port."""

    def __init__(self) -> None:
        self._pending: queue.Queue[Invocation | None] = queue.Queue()
        self._invocations: dict[str, Invocation] = {}
        self._lock = threading.Lock()
        self.polled = threading.Event()  # the runtime asked for its first event: its init phase is over
        self.init_error: dict[str, Any] | None = None
        self._server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, name="runtime-api", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        """The `AWS_LAMBDA_RUNTIME_API` value (host:port)."""
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def invoke(self, event: bytes, deadline_ms: int, loop: asyncio.AbstractEventLoop) -> Invocation:
        invocation = Invocation(event, deadline_ms, loop)
        with self._lock:
            self._invocations[invocation.request_id] = invocation
        self._pending.put(invocation)
        return invocation

    def close(self) -> None:
        self._pending.put(None)
        self._server.shutdown()
        self._server.server_close()

    def _next(self) -> Invocation | None:
        self.polled.set()
        return self._pending.get()

    def _find(self, request_id: str) -> Invocation | None:
        with self._lock:
            return self._invocations.get(request_id)

    def _done(self, request_id: str) -> None:
        with self._lock:
            self._invocations.pop(request_id, None)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A runtime killed mid-request (a timeout, a reload) resets its connection: nothing to report."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _handler_for(api: RuntimeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(_RuntimeApiHandler):
        runtime = api

    return Handler


class _RuntimeApiHandler(BaseHTTPRequestHandler):
    runtime: RuntimeApi
    # Keep-alive, as the runtime client reuses one connection for next/response/next/...
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.taken: list[Invocation | None] = []

    def finish(self) -> None:
        """The runtime's connection ended: an invocation it took and never answered died with its process."""
        super().finish()
        for invocation in self.taken:
            if invocation is not None and self.runtime._find(invocation.request_id) is invocation:
                self.runtime._done(invocation.request_id)
                invocation.hand_on(Failed({"errorType": EXIT_ERROR, "errorMessage": "the runtime's process exited"}))

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the runtime's own log is what a developer reads."""

    def do_GET(self) -> None:
        if self.path != f"{PREFIX}/invocation/next":
            self._answer(404, {"errorType": "NotFound", "errorMessage": self.path})
            return
        invocation = self.runtime._next()
        self.taken.append(invocation)
        if invocation is None:
            self._answer(500, {"errorType": "ShuttingDown", "errorMessage": "the environment is stopping"})
            return
        self.send_response(200)
        for name, value in (
            ("Lambda-Runtime-Aws-Request-Id", invocation.request_id),
            ("Lambda-Runtime-Deadline-Ms", str(invocation.deadline_ms)),
            ("Lambda-Runtime-Invoked-Function-Arn", FUNCTION_ARN),
            ("Lambda-Runtime-Trace-Id", f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]};Sampled=0"),
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(invocation.event))),
        ):
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(invocation.event)

    def do_POST(self) -> None:
        path = self.path.removeprefix(PREFIX)
        if path == "/init/error":
            self.runtime.init_error = self._json_body() or {"errorType": "Unknown", "errorMessage": ""}
            self._answer(202, {"status": "OK"})
            return
        parts = path.strip("/").split("/")
        if len(parts) != 3 or parts[0] != "invocation" or parts[2] not in ("response", "error"):
            self._answer(404, {"errorType": "NotFound", "errorMessage": self.path})
            return
        invocation = self.runtime._find(parts[1])
        if invocation is None:
            self._body()
            self._answer(400, {"errorType": "InvalidRequestID", "errorMessage": "unknown or finished request id"})
            return
        if parts[2] == "error":
            error = self._json_body() or {"errorType": self.headers.get("Lambda-Runtime-Function-Error-Type", "")}
            invocation.hand_on(Failed(error))
        elif self.headers.get("Lambda-Runtime-Function-Response-Mode", "").lower() == "streaming":
            self._read_stream(invocation)
        else:
            invocation.hand_on(Buffered(self._body()))
        self.runtime._done(invocation.request_id)
        self._answer(202, {"status": "OK"})

    def _read_stream(self, invocation: Invocation) -> None:
        """Hand on each chunk as it arrives; the prelude first when the body is an HTTP integration response."""
        prelude = self.headers.get("Content-Type", "") == HTTP_INTEGRATION_RESPONSE
        head = b""
        if not prelude:
            invocation.hand_on(Prelude(200, {"content-type": self.headers.get("Content-Type", "")}, []))
        while True:
            size = self._chunk_size()
            if size is None:
                # The runtime's process ended mid-response (killed, crashed).
                invocation.hand_on(Failed({"errorType": EXIT_ERROR, "errorMessage": "the stream was cut"}))
                return
            if size == 0:
                break
            data = self.rfile.read(size)
            self.rfile.readline()
            if prelude:
                head += data
                if PRELUDE_END not in head:
                    continue
                document, _, data = head.partition(PRELUDE_END)
                prelude = False
                try:
                    fields = json.loads(document)
                    invocation.hand_on(
                        Prelude(
                            int(fields["statusCode"]),
                            dict(fields.get("headers") or {}),
                            list(fields.get("cookies") or []),
                        )
                    )
                except (ValueError, KeyError, TypeError):
                    invocation.hand_on(
                        Failed({"errorType": "Runtime.InvalidPrelude", "errorMessage": repr(document[:200])})
                    )
            if data and not prelude:
                invocation.hand_on(Chunk(data))
        invocation.hand_on(End(_trailer_error(self._trailers())))

    def _chunk_size(self) -> int | None:
        """The next chunk's size; None when the connection ended."""
        line = self.rfile.readline()
        return int(line.split(b";")[0].strip() or b"0", 16) if line else None

    def _trailers(self) -> dict[str, str]:
        trailers = {}
        while (line := self.rfile.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            trailers[name.strip().lower()] = value.strip()
        return trailers

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""
        chunks = []
        while size := self._chunk_size():
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        self._trailers()
        return b"".join(chunks)

    def _json_body(self) -> dict[str, Any] | None:
        try:
            document = json.loads(self._body() or b"null")
        except ValueError:
            return None
        return document if isinstance(document, dict) else None

    def _answer(self, status: int, document: dict[str, Any]) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _trailer_error(trailers: dict[str, str]) -> dict[str, Any] | None:
    kind = trailers.get("lambda-runtime-function-error-type")
    if not kind:
        return None
    error: dict[str, Any] = {"errorType": kind}
    try:
        decoded = json.loads(base64.b64decode(trailers.get("lambda-runtime-function-error-body", "")))
        if isinstance(decoded, dict):
            error.update(decoded)
    except (ValueError, binascii.Error):
        pass
    return error
