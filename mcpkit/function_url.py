"""`mcpkit dev` for `stream_responses = true`: a local Lambda function URL in RESPONSE_STREAM mode.

Each instance is a process running the real `python -m handlers.stream_runtime` against its own
Runtime API (mcpkit/runtime_api.py), so the deployed code path is the one served here. The front
behaves as a function URL does, where that differs from the HTTP API stand-in it extends:
- every path and method reaches the function (no route table, no 404 of its own); the event is
  payload format 2.0 with routeKey and stage `$default`;
- CORS preflights are answered from the URL's CORS configuration without invoking the function,
  and the configured headers are added to the function's responses (oneuptime.com "How to Fix
  Lambda Function URL CORS Issues", 2026-02: "Lambda Function URLs have a built-in CORS
  configuration that handles preflight (OPTIONS) requests automatically"; fields per the Lambda
  API `Cors` type: AllowOrigins/AllowMethods/AllowHeaders/ExposeHeaders/MaxAge);
- requests up to Lambda's 6 MB invocation payload (413 past it); the streamed response up to
  200 MB, the first 6 MB uncapped and the rest at 2 MB/s (docs.aws.amazon.com/lambda/latest/dg/
  configuration-response-streaming.html);
- each chunk the function writes goes to the client at once;
- `WWW-Authenticate` from the function is reported remapped to `x-amzn-Remapped-WWW-Authenticate`
  (field reports; unconfirmed, so pessimistic) and there is no response parameter mapping;
- the function's own timeout ends the invocation: its process is killed and replaced; before the
  first byte the client gets the 502 a function URL gives for a failed or timed-out function
  (awslabs/route53-dynamic-dns-with-lambda#56: a 3 s timeout, "every request failed with a 502"),
  after it the connection is cut, as Lambda cuts a stream it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from handlers.asgi import read_body
from mcpkit import gateway_contract as contract
from mcpkit.local_gateway import (
    InstanceInitError,
    LambdaPool,
    LocalGateway,
    NoFreeInstanceError,
    _merge_headers,
    with_request_id,
)
from mcpkit.runtime_api import EXIT_ERROR, Buffered, Chunk, End, Failed, Invocation, Prelude, RuntimeApi

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from starlette.types import Receive, Scope, Send

    from mcpkit.local_gateway import Lambda

ROOT = Path(__file__).resolve().parent.parent
MAX_REQUEST_BYTES = 6 * 1024 * 1024
MAX_STREAMED_BYTES = 200 * 1024 * 1024
UNCAPPED_BYTES = 6 * 1024 * 1024
CAPPED_BYTES_PER_SECOND = 2 * 1024 * 1024
INIT_TIMEOUT_SECONDS = 120
# `python -m handlers.stream_runtime`, after the watch that ends the process with `mcpkit dev`.
_LAUNCH = (
    "from mcpkit.parent_watch import exit_with_parent; exit_with_parent(); import runpy; "
    "runpy.run_module('handlers.stream_runtime', run_name='__main__', alter_sys=True)"
)
# What Lambda sets for every runtime; the context object of handlers.stream_runtime reads them.
_LAMBDA_ENVIRONMENT = {
    "AWS_LAMBDA_FUNCTION_NAME": "mcpkit-local",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
    "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/mcpkit-local",
    "AWS_LAMBDA_LOG_STREAM_NAME": "local",
}


class StreamingEnvironment:
    """One execution environment: the runtime's process and the Runtime API it polls."""

    def __init__(self, server_dir: Path | None = None) -> None:
        self._api = RuntimeApi()
        environment = {**os.environ, **_LAMBDA_ENVIRONMENT, "AWS_LAMBDA_RUNTIME_API": self._api.address}
        self._process = subprocess.Popen([sys.executable, "-c", _LAUNCH], cwd=ROOT, env=environment)
        self.pid = self._process.pid
        deadline = time.monotonic() + INIT_TIMEOUT_SECONDS
        while not self._api.polled.wait(0.05):
            if self._api.init_error is not None or self._process.poll() is not None or time.monotonic() > deadline:
                break
        if not self._api.polled.is_set():
            problem = self._init_problem(server_dir)
            self.kill()
            raise InstanceInitError(problem)

    def _init_problem(self, server_dir: Path | None) -> str:
        error = self._api.init_error
        if error is not None:
            if server_dir is None:
                return f"{error.get('errorType')}: {error.get('errorMessage')}"
            from mcpkit.diagnose import describe_reported

            return describe_reported(error, server_dir)
        if self._process.poll() is not None:
            return "the instance's process exited during its init phase (see the output above)"
        return f"init took over {INIT_TIMEOUT_SECONDS} s"

    def invoke(self, event: dict[str, Any], timeout_seconds: float) -> Invocation:
        deadline_ms = int((time.time() + timeout_seconds) * 1000)
        return self._api.invoke(json.dumps(event).encode(), deadline_ms, asyncio.get_running_loop())

    def kill(self) -> None:
        self._process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=5)
        self._api.close()


def streaming_pool(
    instances: int = 1, *, timeout_seconds: float, server_dir: Path | None = None
) -> LambdaPool[StreamingEnvironment]:
    return LambdaPool(lambda: StreamingEnvironment(server_dir), instances, timeout_seconds=timeout_seconds)


class ConnectionCutError(ConnectionError):
    """Raised after the response started: uvicorn then closes the connection without the last chunk."""


class _ResponseTooLargeError(Exception):
    pass


class _InstanceExitedError(Exception):
    """The runtime's process ended mid-invocation (a crash, an out-of-memory kill): it is replaced."""


def _hide_cuts(record: logging.LogRecord) -> bool:
    # A cut is reported in one line below; uvicorn would print a traceback for it.
    return not (record.exc_info and isinstance(record.exc_info[1], ConnectionCutError))


def _message(status: int, message: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return status, [(b"content-type", b"application/json")], json.dumps({"Message": message}).encode()


async def _answer(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class FunctionUrl(LocalGateway):
    """ASGI app that plays a RESPONSE_STREAM function URL for a pool of streaming instances."""

    def __init__(
        self,
        instance: Lambda,
        *,
        allowed_origins: Iterable[str],
        domain_name: str,
        served_names: Iterable[str] = (),
        on_startup: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(
            instance,
            routes=(),
            allowed_origins=allowed_origins,
            domain_name=domain_name,
            served_names=served_names,
            response_mappings={},
            on_startup=on_startup,
        )
        logging.getLogger("uvicorn.error").addFilter(_hide_cuts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        send = with_request_id(send, b"x-amzn-requestid", str(uuid.uuid4()))
        headers = _merge_headers(scope["headers"])
        origin = headers.get("origin")
        if scope["method"] == "OPTIONS" and origin is not None and "access-control-request-method" in headers:
            await _answer(send, *self._preflight(origin))
            return
        body = await read_body(receive, MAX_REQUEST_BYTES)
        if body is None:
            await _answer(send, *_message(413, "Request Entity Too Large"))
            return
        event = self._event(scope, headers, body, "$default", {})
        event["requestContext"]["accountId"] = "anonymous"  # auth type NONE
        cors = self._cors(origin) if origin is not None and origin.lower() in self._origins else []
        await _Response(send, cors, self._response).run(self._instance.pool(), event)


class _Response:
    """One invocation's answer, relayed part by part as the runtime sends it."""

    def __init__(
        self,
        send: Send,
        cors: list[tuple[bytes, bytes]],
        buffered: Callable[[dict[str, Any]], tuple[int, list[tuple[bytes, bytes]], bytes]],
    ) -> None:
        self._send = send
        self._cors = cors
        self._buffered = buffered
        self.started = False
        self._size = 0

    async def run(self, pool: LambdaPool[StreamingEnvironment], event: dict[str, Any]) -> None:
        cut: str | None = None
        try:
            # Lambda would start another instance; here a request waits for a busy one to finish or a
            # replacement to end its init, and is throttled only if neither happens in that time.
            async with pool.environment(wait=pool.timeout_seconds + INIT_TIMEOUT_SECONDS) as environment:
                invocation = environment.invoke(event, pool.timeout_seconds)
                async with asyncio.timeout(pool.timeout_seconds):
                    cut = await self._relay(invocation)
        except TimeoutError:
            cut = f"the function ran past its timeout ({pool.timeout_seconds:g} s); its instance was replaced"
        except _ResponseTooLargeError:
            cut = f"the streamed response passed Lambda's {MAX_STREAMED_BYTES // 2**20} MB limit"
        except _InstanceExitedError:
            cut = "the instance's process exited during the invocation; it was replaced"
        except NoFreeInstanceError:
            # As a function URL answers a throttled invocation (every instance busy, reserved concurrency).
            await _answer(self._send, *_message(429, "Rate Exceeded."))
            return
        if cut is None:
            return
        if not self.started:
            print(f"mcpkit dev: {cut}: answered 502", file=sys.stderr)
            await _answer(self._send, *_message(502, "Internal Server Error"))
            return
        print(f"mcpkit dev: {cut}: the connection was cut, as Lambda cuts it", file=sys.stderr)
        raise ConnectionCutError(cut)

    async def _relay(self, invocation: Invocation) -> str | None:
        """Hand every part on as it comes; the reason to cut the connection, or None when the answer is whole."""
        while True:
            part = await invocation.parts.get()
            if isinstance(part, Prelude):
                await self._send({"type": "http.response.start", "status": part.status, "headers": self._headers(part)})
                self.started = True
            elif isinstance(part, Chunk):
                await self._chunk(part.data)
            elif isinstance(part, End):
                if part.error is not None:
                    return f"the function failed mid-stream ({part.error.get('errorType')})"
                await self._send({"type": "http.response.body", "body": b"", "more_body": False})
                return None
            elif isinstance(part, Buffered) and not self.started:
                try:
                    status, headers, body = self._buffered(json.loads(part.payload))
                except (ValueError, KeyError, TypeError):
                    return "the function's response is not a valid function URL response"
                await _answer(self._send, status, headers + self._cors, body)
                return None
            elif isinstance(part, Failed) and part.error.get("errorType") == EXIT_ERROR:
                raise _InstanceExitedError
            else:
                detail = part.error.get("errorType") if isinstance(part, Failed) else "a second response"
                return f"the invocation failed ({detail})"

    async def _chunk(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > MAX_STREAMED_BYTES:
            raise _ResponseTooLargeError
        if self._size > UNCAPPED_BYTES:
            await asyncio.sleep(min(len(data), self._size - UNCAPPED_BYTES) / CAPPED_BYTES_PER_SECOND)
        await self._send({"type": "http.response.body", "body": data, "more_body": True})

    def _headers(self, prelude: Prelude) -> list[tuple[bytes, bytes]]:
        headers: list[tuple[bytes, bytes]] = []
        for raw_name, value in prelude.headers.items():
            name = raw_name.lower()
            if name in ("content-length", "transfer-encoding", "connection"):
                continue  # the front frames the stream itself
            if name in contract.REMAPPED_HEADERS:
                name = f"x-amzn-remapped-{name}"
            headers.append((name.encode(), str(value).encode()))
        headers += [(b"set-cookie", cookie.encode()) for cookie in prelude.cookies]
        return headers + self._cors
