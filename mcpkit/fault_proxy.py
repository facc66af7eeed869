"""A fault-injecting HTTP proxy in front of the AWS emulator, for DynamoDB's bad days.

botocore stubs replace the client's HTTP layer, so they cannot show what the real client does
with a throttled, failing or slow table: its retry mode, its backoff, its timeouts. This proxy
sits where DynamoDB's endpoint would be (`AWS_ENDPOINT_URL_DYNAMODB`) and, for DynamoDB requests
only (`X-Amz-Target: DynamoDB_20120810.*`), answers some of them the way DynamoDB does when it
is in trouble; everything else (KMS, Cognito, other services) passes through untouched.

Faults (chosen per request by a seeded RNG at the configured rates, or scripted in order):
- `throttle`:    400 ProvisionedThroughputExceededException (the request is not applied)
- `throttling`:  400 ThrottlingException (the request is not applied)
- `internal`:    500 InternalServerError (the request is not applied)
- `unavailable`: 503 ServiceUnavailable (the request is not applied)
- `timeout`:     the request IS applied, then the response is held past the client's read
  timeout: the client sees a timeout and retries a write that already happened, which is the
  case conditional writes must get right.

    python -m mcpkit.fault_proxy --upstream http://127.0.0.1:5000 --port 5001 --throttle 0.02 --seed 7
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, fields
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import TracebackType

DYNAMODB_TARGET_PREFIX = "DynamoDB_20120810."
# Longer than the kit's DynamoDB read timeout (handlers/store.py: 3 s).
DEFAULT_HOLD_SECONDS = 4.0
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer", "content-length"}
)


class Fault(StrEnum):
    THROTTLE = "throttle"
    THROTTLING = "throttling"
    INTERNAL = "internal"
    UNAVAILABLE = "unavailable"
    TIMEOUT = "timeout"


# Status and JSON body as DynamoDB's JSON 1.0 protocol sends them (botocore reads `__type`).
_ERRORS: dict[Fault, tuple[int, str, str]] = {
    Fault.THROTTLE: (
        400,
        "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded. "
        "Consider increasing your provisioning level with the UpdateTable API.",
    ),
    Fault.THROTTLING: (400, "com.amazon.coral.availability#ThrottlingException", "Rate exceeded for table."),
    Fault.INTERNAL: (500, "com.amazonaws.dynamodb.v20120810#InternalServerError", "Internal server error"),
    Fault.UNAVAILABLE: (503, "com.amazon.coral.availability#ServiceUnavailableException", "Service Unavailable"),
}


@dataclass(frozen=True)
class FaultRates:
    """The share of DynamoDB requests that get each fault (the rest pass through)."""

    throttle: float = 0.0
    throttling: float = 0.0
    internal: float = 0.0
    unavailable: float = 0.0
    timeout: float = 0.0

    def __post_init__(self) -> None:
        if any(getattr(self, f.name) < 0 for f in fields(self)) or self.total > 1:
            raise ValueError("fault rates must be ≥ 0 and add up to at most 1")

    @property
    def total(self) -> float:
        return float(sum(getattr(self, f.name) for f in fields(self)))

    def pick(self, roll: float) -> Fault | None:
        """The fault for a uniform `roll` in [0, 1), or None to pass the request through."""
        edge = 0.0
        for f in fields(self):
            edge += getattr(self, f.name)
            if roll < edge:
                return Fault(f.name)
        return None


@dataclass(frozen=True)
class Seen:
    """One DynamoDB request as the proxy saw it."""

    operation: str
    fault: Fault | None
    at: float  # time.monotonic()


class FaultProxy:
    """Serves on a loopback port; `endpoint` is what to give the client instead of the emulator's."""

    def __init__(
        self,
        upstream: str,
        *,
        rates: FaultRates | None = None,
        seed: int = 0,
        hold_seconds: float = DEFAULT_HOLD_SECONDS,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        target = urlsplit(upstream)
        if target.scheme != "http" or not target.hostname:
            raise ValueError(f"upstream must be an http:// URL, not {upstream!r}")
        self._upstream = (target.hostname, target.port or 80)
        self._rates = rates or FaultRates()
        self._random = random.Random(seed)  # noqa: S311 - reproducible fault choice, not security
        self._script: list[Fault | None] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.hold_seconds = hold_seconds
        self.seen: list[Seen] = []
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- control -----------------------------------------------------------------------------
    def set_rates(self, rates: FaultRates) -> None:
        with self._lock:
            self._rates = rates

    def script(self, faults: Iterable[Fault | None]) -> None:
        """The next DynamoDB requests get exactly these faults, in order (None passes one through)."""
        with self._lock:
            self._script = list(faults)

    def reset(self) -> None:
        with self._lock:
            self._script = []
            self._rates = FaultRates()
            self.seen = []

    def counts(self) -> Counter[str]:
        """How many DynamoDB requests got each fault ("pass" for none)."""
        with self._lock:
            return Counter(str(s.fault or "pass") for s in self.seen)

    def _choose(self, operation: str) -> Fault | None:
        with self._lock:
            if self._script:
                fault = self._script.pop(0)
            else:
                fault = self._rates.pick(self._random.random()) if self._rates.total else None
            self.seen.append(Seen(operation, fault, time.monotonic()))
            return fault

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- the HTTP side -----------------------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self
        local = threading.local()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, like DynamoDB's endpoint
            # Headers and body go out in separate writes; without TCP_NODELAY, Nagle's algorithm and
            # the client's delayed ACK add ~40 ms to every response.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: object) -> None:  # stdlib signature
                return

            def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
                connection: http.client.HTTPConnection | None = getattr(local, "connection", None)
                for attempt in range(2):
                    if connection is None:
                        connection = http.client.HTTPConnection(*proxy._upstream, timeout=30)
                        local.connection = connection
                    try:
                        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                        connection.request(self.command, self.path, body=body, headers=headers)
                        response = connection.getresponse()
                        data = response.read()
                        return response.status, response.getheaders(), data
                    except (http.client.HTTPException, OSError):
                        # A kept-alive upstream connection the emulator closed: reconnect once.
                        connection.close()
                        connection = local.connection = None
                        if attempt:
                            raise
                raise AssertionError("unreachable")

            def _send(self, status: int, headers: Iterable[tuple[str, str]], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in _HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                target = self.headers.get("X-Amz-Target", "")
                fault = None
                if target.startswith(DYNAMODB_TARGET_PREFIX):
                    fault = proxy._choose(target.removeprefix(DYNAMODB_TARGET_PREFIX))
                if fault is not None and fault is not Fault.TIMEOUT:
                    status, kind, message = _ERRORS[fault]
                    payload = json.dumps({"__type": kind, "message": message}).encode()
                    headers = [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-RequestId", str(uuid.uuid4()))]
                    self._send(status, headers, payload)
                    return
                try:
                    status, headers, data = self._forward(body)
                except (http.client.HTTPException, OSError):
                    self._send(502, [("Content-Type", "text/plain")], b"upstream unreachable")
                    return
                if fault is Fault.TIMEOUT:
                    # Applied upstream; the client gives up waiting and retries. Then drop the connection.
                    proxy._stopping.wait(proxy.hold_seconds)
                    self.close_connection = True
                    return
                self._send(status, headers, data)

            def do_POST(self) -> None:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self._handle()

            do_GET = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_POST

        return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--upstream", required=True, help="the emulator, e.g. http://127.0.0.1:5000")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hold-seconds", type=float, default=DEFAULT_HOLD_SECONDS)
    for f in fields(FaultRates):
        parser.add_argument(f"--{f.name}", type=float, default=0.0, help=f"share of DynamoDB requests ({f.name})")
    args = parser.parse_args(argv)
    rates = FaultRates(**{f.name: getattr(args, f.name) for f in fields(FaultRates)})
    with FaultProxy(args.upstream, rates=rates, seed=args.seed, hold_seconds=args.hold_seconds, port=args.port) as p:
        print(f"fault proxy {p.endpoint} → {args.upstream}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
