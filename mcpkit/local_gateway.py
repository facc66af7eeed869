"""A local stand-in for API Gateway (HTTP API, payload format 2.0) in front of the real handler.

`mcpkit dev` serves through this, so a request takes the same path as in AWS: HTTP → event →
`handlers.lambda_handler.handler` → proxy response → HTTP. API Gateway's behaviour that a
server can trip over is reproduced on purpose: only configured routes exist, CORS preflights are
answered before the function is invoked, a `WWW-Authenticate` returned by the function is renamed
(and then mapped back only through the configured response parameter mappings), payload limits
and the 29 s integration timeout apply.
"""

from __future__ import annotations

import asyncio
import base64
import importlib
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, urlsplit

from handlers.asgi import read_body
from mcpkit import gateway_contract as contract

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from starlette.types import Receive, Scope, Send


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


class LambdaInstance:
    """One warm Lambda execution environment: a thread that ran the init phase and serves one event at a time."""

    def __init__(self, entry_point: str = "handlers.lambda_handler:handler") -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lambda-instance")
        self._handler: Any = self._executor.submit(self._init, entry_point).result()

    @staticmethod
    def _init(entry_point: str) -> Any:
        module_name, _, attribute = entry_point.partition(":")
        return getattr(importlib.import_module(module_name), attribute)

    async def invoke(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        future = self._executor.submit(self._handler, event, context)
        result: dict[str, Any] = await asyncio.wrap_future(future)
        return result

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


_worker_handler: Any = None


def _worker_init(entry_point: str) -> None:
    """A pool process's init phase: import the handler once, as a new Lambda execution environment does."""
    global _worker_handler
    _exit_with_parent()
    _worker_handler = LambdaInstance._init(entry_point)


def _exit_with_parent() -> None:
    """End this pool process when the gateway process is gone, however it ended (even SIGKILL).

    Pool workers block on their call queue and never notice a dead parent; without this every
    killed `mcpkit dev --instances N` would leave N orphaned interpreters behind.
    """
    import os
    import threading

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _worker_invoke(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result: dict[str, Any] = _worker_handler(event, context)
    return result


def _worker_pid() -> int:
    import os

    time.sleep(0.2)  # keep this worker busy so the next warm-up call starts (and initializes) another
    return os.getpid()


class LambdaPool:
    """N warm execution environments, each its own process running one event at a time: Lambda's scale-out.

    One `LambdaInstance` serializes every request behind one thread; under concurrent load (the
    load test, concurrent code redemption) requests must really run side by side, as they do on
    separate Lambda instances that share nothing but the table.
    """

    def __init__(self, instances: int, entry_point: str = "handlers.lambda_handler:handler") -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self._executor = ProcessPoolExecutor(
            max_workers=instances,
            # spawn, not fork: every instance runs its own init phase from a clean interpreter.
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_init,
            initargs=(entry_point,),
        )
        warm = [self._executor.submit(_worker_pid) for _ in range(instances)]
        self.pids = sorted({future.result() for future in warm})

    async def invoke(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        future = self._executor.submit(_worker_invoke, event, context)
        result: dict[str, Any] = await asyncio.wrap_future(future)
        return result

    def close(self) -> None:
        # wait=True: the workers get their stop signal before this process exits.
        self._executor.shutdown(wait=True, cancel_futures=True)


class Lambda(Protocol):
    """What the gateway invokes: one instance, a pool of them, or `mcpkit dev`'s reloading generations."""

    async def invoke(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]: ...

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


def _json_message(status: int, message: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    body = (f'{{"message":"{message}"}}').encode()
    return status, [(b"content-type", b"application/json")], body


class LocalGateway:
    """ASGI app that plays API Gateway for one `LambdaInstance` (or a `LambdaPool` of them)."""

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

        event = self._event(scope, request_headers, body, route, path_parameters)
        context = LambdaContext(aws_request_id=event["requestContext"]["requestId"])
        try:
            result = await asyncio.wait_for(
                self._instance.invoke(event, context), timeout=contract.INTEGRATION_TIMEOUT_SECONDS
            )
            status, headers, response_body = self._response(result)
        except TimeoutError:
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
        route: _Route,
        path_parameters: dict[str, str],
    ) -> dict[str, Any]:
        client_ip = (scope.get("client") or ("127.0.0.1", 0))[0]
        cookies = [c.strip() for c in headers.pop("cookie", "").split(";") if c.strip()]
        headers.setdefault("x-forwarded-for", client_ip)
        headers.setdefault("x-forwarded-proto", scope.get("scheme", "http"))
        headers.setdefault("x-forwarded-port", str((scope.get("server") or ("", 80))[1]))
        query = scope.get("query_string", b"").decode("latin-1")
        domain = self._domain_for(headers.get("host", ""))
        now = datetime.now(UTC)
        try:
            text_body, is_base64 = body.decode("utf-8"), False
        except UnicodeDecodeError:
            text_body, is_base64 = base64.b64encode(body).decode(), True
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route.key,
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
                "routeKey": route.key,
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
