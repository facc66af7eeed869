"""A local stand-in for API Gateway (HTTP API, payload format 2.0) in front of the real handler.

`mcpkit dev` serves through this, so a request takes the same path as in AWS: HTTP → event →
`handlers.lambda_handler.handler` → proxy response → HTTP. API Gateway's behaviour that a
server can trip over is reproduced on purpose: only configured routes exist, CORS preflights are
answered before the function is invoked, a `WWW-Authenticate` returned by the function is renamed
(and then mapped back only through the configured response parameter mappings), payload limits,
the function's timeout and the 29 s integration timeout apply.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib
import re
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, urlsplit

from handlers.asgi import read_body
from mcpkit import gateway_contract as contract

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable
    from multiprocessing.connection import Connection
    from pathlib import Path

    from starlette.types import Message, Receive, Scope, Send


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that handlers and powertools read."""

    function_name: str = "mcpkit-local"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/mcpkit-local"
    log_stream_name: str = "local"
    deadline: float = field(default_factory=lambda: time.monotonic() + contract.INTEGRATION_TIMEOUT_SECONDS)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def _load_handler(entry_point: str) -> Any:
    module_name, _, attribute = entry_point.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def plain_root_logging() -> None:
    """One plain line per log record, as Lambda's runtime writes them.

    Lambda's runtime puts a handler on the root logger before the init phase, so the SDK's
    `logging.basicConfig(RichHandler)` does nothing there; without one here, rich would wrap every
    log line at 80 columns with the source file pushed to the right edge.
    """
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def _sandbox_main(conn: Connection, entry_point: str, server_dir: str | None) -> None:
    """One execution environment: run the init phase, then serve one event at a time until killed."""
    import os
    import traceback

    from mcpkit.parent_watch import exit_with_parent

    exit_with_parent()
    plain_root_logging()
    try:
        handler = _load_handler(entry_point)
    except BaseException as exc:  # noqa: BLE001 - reported to the gateway, which refuses to start
        conn.send(("init-error", _describe(exc, server_dir)))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            event, context = conn.recv()
        except EOFError:
            return
        try:
            conn.send(("ok", handler(event, context)))
        except Exception as exc:  # noqa: BLE001 - like Lambda: the traceback goes to the log, the caller gets an error
            traceback.print_exc()
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


def _describe(exc: BaseException, server_dir: str | None) -> str:
    """The init failure in one or two lines: the user's file and line when the mistake is theirs."""
    if server_dir is None:
        return f"{type(exc).__name__}: {exc}"
    import pathlib

    from mcpkit.diagnose import describe

    return describe(exc, pathlib.Path(server_dir))


class InstanceInitError(RuntimeError):
    """The handler's init phase failed; str() is the short description of what went wrong."""


class InvocationTimeoutError(TimeoutError):
    """The invocation ran past the function's timeout; its execution environment was replaced."""


class NoFreeInstanceError(RuntimeError):
    """Every instance stayed busy (or none could start) for as long as the caller would wait."""


class HandlerError(RuntimeError):
    """The handler raised; like Lambda, the environment that ran it stays warm for the next event."""


class _Sandbox:
    """A spawned process that ran the init phase, so that an overrunning invocation can be killed."""

    def __init__(self, entry_point: str, server_dir: str | None = None) -> None:
        import multiprocessing

        # spawn, not fork: every instance runs its own init phase from a clean interpreter.
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_sandbox_main, args=(child, entry_point, server_dir), name="lambda-instance", daemon=True
        )
        self._process.start()
        child.close()
        try:
            status, detail = self._conn.recv() if self._conn.poll(120) else ("init-error", "init took over 120 s")
        except EOFError:
            status, detail = "init-error", "the instance's process exited during its init phase (see the output above)"
        if status != "ready":
            self.kill()
            raise InstanceInitError(str(detail))
        self.pid = int(detail)

    def call(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        self._conn.send((event, context))
        try:
            status, result = self._conn.recv()
        except EOFError:
            raise RuntimeError("the execution environment exited during the invocation") from None
        if status != "ok":
            raise HandlerError(result)
        response: dict[str, Any] = result
        return response

    def kill(self) -> None:
        self._process.kill()
        self._process.join(timeout=5)
        self._conn.close()


class ExecutionEnvironment(Protocol):
    """One instance's process: what the pool starts, hands out one invocation at a time, and kills."""

    pid: int

    def kill(self) -> None: ...


class LambdaPool[EnvironmentT: ExecutionEnvironment]:
    """N warm execution environments, each a process running one event at a time: Lambda's scale-out.

    Requests run side by side on separate instances that share nothing but the table. An
    invocation that outlives the function's timeout is ended the way Lambda ends it: its process
    is killed and a fresh one runs the init phase in its place (a cold start for the next request),
    so no request can wedge the server. `start` makes one environment (it raises InstanceInitError).
    """

    def __init__(self, start: Callable[[], EnvironmentT], instances: int = 1, *, timeout_seconds: float) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._start = start
        self.timeout_seconds = timeout_seconds
        # Instances start side by side, like a burst of cold starts; one failed init fails them all.
        with ThreadPoolExecutor(max_workers=instances) as starter:
            started = [starter.submit(start) for _ in range(instances)]
        errors = [error for future in started if (error := future.exception()) is not None]
        if errors:
            for future in started:
                if future.exception() is None:
                    future.result().kill()
            raise errors[0]
        environments = [f.result() for f in started]
        self.pids = sorted(e.pid for e in environments)
        self._idle: asyncio.Queue[EnvironmentT] | None = None
        self._environments = environments
        self._replacements: set[asyncio.Task[None]] = set()
        self._closed = False

    def pool(self) -> LambdaPool[EnvironmentT]:
        return self

    def _queue(self) -> asyncio.Queue[EnvironmentT]:
        # Made on first use: the queue belongs to the server's event loop, which starts later.
        if self._idle is None:
            self._idle = asyncio.Queue()
            for environment in self._environments:
                self._idle.put_nowait(environment)
        return self._idle

    @contextlib.asynccontextmanager
    async def environment(self, wait: float | None = None) -> AsyncIterator[EnvironmentT]:
        """A free environment for one invocation; one that fails under it (timeout, crash, given up on) is replaced.

        `wait`: at most that many seconds for one to be free, then NoFreeInstanceError.
        """
        try:
            async with asyncio.timeout(wait):
                environment = await self._queue().get()
        except TimeoutError:
            raise NoFreeInstanceError from None
        try:
            yield environment
        except HandlerError:
            self._release(environment)
            raise
        except BaseException:
            # Timed out, crashed, or given up on by the gateway while still running: the environment
            # is not reused (Lambda discards one whose invocation timed out), a fresh one replaces it.
            self._discard(environment, asyncio.get_running_loop())
            raise
        self._release(environment)

    async def invoke(self: LambdaPool[_Sandbox], event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        try:
            async with self.environment() as sandbox:
                # The function's timeout runs from the start of its invocation, not from the request's arrival.
                context.deadline = time.monotonic() + self.timeout_seconds
                return await asyncio.wait_for(
                    loop.run_in_executor(None, sandbox.call, event, context), timeout=self.timeout_seconds
                )
        except TimeoutError as exc:
            raise InvocationTimeoutError from exc

    def _release(self, environment: EnvironmentT) -> None:
        if self._closed:
            # Retired by a reload while this request ran: it finished, now the environment goes.
            environment.kill()
        else:
            self._queue().put_nowait(environment)

    def _discard(self, environment: EnvironmentT, loop: asyncio.AbstractEventLoop) -> None:
        environment.kill()
        if environment in self._environments:
            self._environments.remove(environment)
        if self._closed:
            return
        task = loop.create_task(self._replace())
        self._replacements.add(task)
        task.add_done_callback(self._replacements.discard)

    async def _replace(self) -> None:
        try:
            fresh = await asyncio.get_running_loop().run_in_executor(None, self._start)
        except InstanceInitError as exc:
            # Lambda would retry the init on the next request; here the next requests get the 503.
            print(f"mcpkit dev: a replacement instance failed its init phase: {exc}", file=sys.stderr)
            return
        if self._closed:
            fresh.kill()
            return
        self._environments.append(fresh)
        self._queue().put_nowait(fresh)

    def close(self) -> None:
        """Stop the environments; one still running a request (a reload retired it) goes when that ends."""
        self._closed = True
        idle = list(self._environments)
        if self._idle is not None:
            idle = []
            while not self._idle.empty():
                idle.append(self._idle.get_nowait())
        for environment in idle:
            environment.kill()


def buffered_pool(
    instances: int = 1,
    *,
    timeout_seconds: float = contract.INTEGRATION_TIMEOUT_SECONDS - 1,
    server_dir: Path | None = None,
    entry_point: str = "handlers.lambda_handler:handler",
) -> LambdaPool[_Sandbox]:
    """Instances that run the buffered handler (`handlers.lambda_handler.handler`), as the managed runtime does."""
    folder = None if server_dir is None else str(server_dir)
    return LambdaPool(lambda: _Sandbox(entry_point, folder), instances, timeout_seconds=timeout_seconds)


class Lambda(Protocol):
    """What the gateway invokes: one instance, a pool of them, or `mcpkit dev`'s reloading generations."""

    async def invoke(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]: ...

    def pool(self) -> LambdaPool[Any]:
        """The instances a request is served by (a streamed response takes one for its whole length)."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class _Route:
    method: str
    path: str
    pattern: re.Pattern[str]

    @classmethod
    def parse(cls, method: str, path: str) -> _Route:
        regex = ""
        for part in path.strip("/").split("/"):
            if part.endswith("+}"):
                regex += rf"/(?P<{part[1:-2]}>.+)"
            elif part.startswith("{"):
                regex += rf"/(?P<{part[1:-1]}>[^/]+)"
            else:
                regex += "/" + re.escape(part)
        return cls(method, path, re.compile(f"^{regex}$"))

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"


def with_request_id(send: Send, name: bytes, value: str) -> Send:
    """`send` that adds the front's request-id header to the response (how `mcpkit check` tells fronts apart)."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), (name, value.encode())]}
        await send(message)

    return sending


def _json_message(status: int, message: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    body = (f'{{"message":"{message}"}}').encode()
    return status, [(b"content-type", b"application/json")], body


class LocalGateway:
    """ASGI app that plays API Gateway for a `LambdaPool` of instances."""

    def __init__(
        self,
        instance: Lambda,
        *,
        routes: Iterable[tuple[str, str]],
        allowed_origins: Iterable[str],
        domain_name: str,
        served_names: Iterable[str] = (),
        response_mappings: dict[int, dict[str, str]] | None = None,
        on_startup: Callable[[], None] | None = None,
    ) -> None:
        self._instance = instance
        self._routes = [_Route.parse(m, p) for m, p in routes]
        self._origins = {o.lower() for o in allowed_origins}
        self._domain = domain_name
        # Host names this gateway answers to; API Gateway's domainName is the one the request used.
        self._served = {n.lower().strip("[]") for n in served_names}
        self._mappings = contract.RESPONSE_PARAMETER_MAPPINGS if response_mappings is None else response_mappings
        self._on_startup = on_startup

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        status, headers, body = await self._handle(scope, receive)
        send = with_request_id(send, b"apigw-requestid", base64.b64encode(uuid.uuid4().bytes[:12]).decode())
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self._on_startup is not None:
                    self._on_startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self._instance.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _handle(self, scope: Scope, receive: Receive) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        method: str = scope["method"]
        path: str = scope["path"]
        request_headers = _merge_headers(scope["headers"])
        origin = request_headers.get("origin")

        if method == "OPTIONS" and origin is not None and "access-control-request-method" in request_headers:
            return self._preflight(origin)

        body = await read_body(receive, contract.MAX_REQUEST_BYTES)
        if body is None:
            return _json_message(413, "Request Entity Too Large")

        match = self._match(method, path)
        if match is None:
            return _json_message(404, "Not Found")
        route, path_parameters = match

        event = self._event(scope, request_headers, body, route.key, path_parameters)
        context = LambdaContext(aws_request_id=event["requestContext"]["requestId"])
        try:
            result = await asyncio.wait_for(
                self._instance.invoke(event, context), timeout=contract.INTEGRATION_TIMEOUT_SECONDS
            )
            status, headers, response_body = self._response(result)
        except InvocationTimeoutError:
            # HTTP API answers a function that timed out like any failed invocation (denoland/deno_registry2#87).
            return _json_message(500, "Internal Server Error")
        except TimeoutError:
            # The integration timeout (waiting for a free instance included): HTTP API's 503, not
            # REST's 504 (serverless/serverless#11222, anomalyco/sst#2232).
            return _json_message(503, "Service Unavailable")
        except Exception:  # noqa: BLE001 - like API Gateway: a crashed or malformed invocation is a 500
            return _json_message(500, "Internal Server Error")
        if origin is not None and origin.lower() in self._origins:
            headers.extend(self._cors(origin))
        return status, headers, response_body

    def _match(self, method: str, path: str) -> tuple[_Route, dict[str, str]] | None:
        for route in self._routes:
            found = route.pattern.match(path)
            if found and route.method == method:
                return route, {k: unquote(v) for k, v in found.groupdict().items()}
        return None

    def _preflight(self, origin: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        headers: list[tuple[bytes, bytes]] = []
        if origin.lower() in self._origins:
            headers = [
                *self._cors(origin),
                (b"access-control-allow-methods", ",".join(contract.CORS_ALLOW_METHODS).encode()),
                (b"access-control-allow-headers", ",".join(contract.CORS_ALLOW_HEADERS).lower().encode()),
                (b"access-control-max-age", str(contract.CORS_MAX_AGE_SECONDS).encode()),
            ]
        return 204, headers, b""

    @staticmethod
    def _cors(origin: str) -> list[tuple[bytes, bytes]]:
        return [
            (b"access-control-allow-origin", origin.encode()),
            (b"access-control-expose-headers", ",".join(contract.CORS_EXPOSE_HEADERS).lower().encode()),
            (b"vary", b"origin"),
        ]

    def _event(
        self,
        scope: Scope,
        headers: dict[str, str],
        body: bytes,
        route_key: str,
        path_parameters: dict[str, str],
    ) -> dict[str, Any]:
        client_ip = (scope.get("client") or ("127.0.0.1", 0))[0]
        cookies = [c.strip() for c in headers.pop("cookie", "").split(";") if c.strip()]
        # As API Gateway does: the caller's address is appended to whatever X-Forwarded-For it sent,
        # proto and port are overwritten with the connection's own (a client must not choose them).
        sent_for = headers.get("x-forwarded-for", "").strip()
        headers["x-forwarded-for"] = f"{sent_for}, {client_ip}" if sent_for else client_ip
        headers["x-forwarded-proto"] = scope.get("scheme", "http")
        headers["x-forwarded-port"] = str((scope.get("server") or ("", 80))[1])
        query = scope.get("query_string", b"").decode("latin-1")
        domain = self._domain_for(headers.get("host", ""))
        now = datetime.now(UTC)
        try:
            text_body, is_base64 = body.decode("utf-8"), False
        except UnicodeDecodeError:
            text_body, is_base64 = base64.b64encode(body).decode(), True
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route_key,
            "rawPath": scope["path"],
            "rawQueryString": query,
            "headers": headers,
            "requestContext": {
                "accountId": "000000000000",
                "apiId": "local",
                "domainName": domain,
                "domainPrefix": domain.split(".", 1)[0],
                "http": {
                    "method": scope["method"],
                    "path": scope["path"],
                    "protocol": f"HTTP/{scope.get('http_version', '1.1')}",
                    "sourceIp": client_ip,
                    "userAgent": headers.get("user-agent", ""),
                },
                "requestId": base64.b64encode(uuid.uuid4().bytes[:12]).decode(),
                "routeKey": route_key,
                "stage": "$default",
                "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "timeEpoch": int(now.timestamp() * 1000),
            },
            "isBase64Encoded": is_base64,
        }
        if text_body:
            event["body"] = text_body
        if cookies:
            event["cookies"] = cookies
        if query:
            params: dict[str, list[str]] = {}
            for pair in query.split("&"):
                name, _, value = pair.partition("=")
                params.setdefault(unquote(name), []).append(unquote(value))
            event["queryStringParameters"] = {k: ",".join(v) for k, v in params.items()}
        if path_parameters:
            event["pathParameters"] = path_parameters
        return event

    def _domain_for(self, host: str) -> str:
        """The Host's name when this gateway serves it (as API Gateway reports the domain a request used);
        otherwise the configured domain, so the handler's Host check refuses the stranger (DNS rebinding)."""
        try:
            name = (urlsplit(f"//{host}").hostname or "").lower()
        except ValueError:
            return self._domain
        if name in self._served:
            return f"[{name}]" if ":" in name else name
        return self._domain

    def _response(self, result: dict[str, Any]) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        status = int(result["statusCode"])
        raw_body = result.get("body") or ""
        body = base64.b64decode(raw_body) if result.get("isBase64Encoded") else raw_body.encode()
        if len(body) > contract.MAX_RESPONSE_BYTES:
            raise ValueError("response exceeds Lambda's synchronous payload limit")
        lambda_headers = {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}
        for name, values in (result.get("multiValueHeaders") or {}).items():
            lambda_headers[name.lower()] = ",".join(str(v) for v in values)
        headers: dict[str, str] = {}
        for name, value in lambda_headers.items():
            headers[f"x-amzn-remapped-{name}" if name in contract.REMAPPED_HEADERS else name] = value
        for destination, source in self._mappings.get(status, {}).items():
            action, _, target = destination.partition(":header.")
            mapped = lambda_headers.get(source.removeprefix("$response.header.").lower())
            if action == "overwrite" and mapped is not None:
                headers[target.lower()] = mapped
            elif action == "remove":
                headers.pop(target.lower(), None)
        encoded = [(k.encode(), v.encode()) for k, v in headers.items()]
        encoded += [(b"set-cookie", c.encode()) for c in result.get("cookies") or []]
        return status, encoded, body


def _merge_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    # HTTP API joins repeated request headers with commas and lower-cases the names.
    merged: dict[str, str] = {}
    for name, value in raw:
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        merged[key] = f"{merged[key]},{text}" if key in merged else text
    return merged
