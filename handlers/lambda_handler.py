"""Lambda entry point: `handlers.lambda_handler.handler`.

Everything expensive happens at import, in the init phase: loading the server, building the
app, starting the SDK's session manager. Under SnapStart that work lands in the snapshot, and
the after-restore hook renews what must not be shared between restored instances.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import random
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from mangum import Mangum
from mangum.handlers import HTTPGateway

from handlers.app import Runtime, create_runtime
from handlers.server_loader import load_event_handler
from handlers.settings import Settings
from handlers.store import StoreUnavailableError

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from starlette.types import Message


class ResponseStream(Protocol):
    """Where a streamed response goes (handlers/stream_runtime.py writes it to the Runtime API)."""

    def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None: ...

    def write(self, chunk: bytes) -> None: ...


logger = Logger()
metrics = Metrics()
# The kit's own modules log through `logging.getLogger("handlers…")`; give that tree the same JSON
# format, so every line carries the Lambda request id and the API Gateway correlation id.
logging.getLogger("handlers")
copy_config_to_registered_loggers(source_logger=logger, include={"handlers"})


class LambdaApp:
    """One instance's app, its event loop and the Mangum adapter, built once."""

    def __init__(self, settings: Settings) -> None:
        # Mangum drives each invocation with `run_until_complete` on the thread's loop; the SDK's
        # session manager task lives on that same loop between invocations.
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.runtime: Runtime = create_runtime(settings)
        self.loop.run_until_complete(self.runtime.transport.start())
        self.adapter = Mangum(self.runtime.app, lifespan="off")
        self.on_event = load_event_handler(settings.server)
        if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start":
            # Under SnapStart init runs once, before the snapshot: importing botocore and building the
            # client here (~0.3 s) takes it off every restored instance's first session request. The
            # after-restore hook drops the client for fresh credentials and connections; rebuilding it
            # reuses the parsed models (handlers/store.py `aws_client`), ~25 ms here instead of ~100.
            # Without SnapStart it stays lazy, so a 2026-07-28 cold start never pays for it.
            _ = self.runtime.table.client
            if self.runtime.oauth is not None:
                # It verifies every bearer token; fetched now, no restored copy asks KMS for it.
                with contextlib.suppress(StoreUnavailableError):  # logged; fetched on first use instead
                    self.runtime.oauth.signer.public_key()

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        # Anything that ran `asyncio.run()` on this thread since (a test, a tool) leaves no loop set.
        asyncio.set_event_loop(self.loop)
        response: dict[str, Any] = self.adapter(event, context)
        return response

    def stream(self, event: dict[str, Any], context: Any, out: ResponseStream) -> int:
        """Run one HTTP event through the app, handing each body message to `out` as the app sends it.

        Returns the status. Raises what the app raised, unless the response was already complete
        (Starlette's error middleware sends its 500 and then re-raises; Mangum drops that too).
        """
        asyncio.set_event_loop(self.loop)
        return self.loop.run_until_complete(self._stream(event, context, out))

    async def _stream(self, event: dict[str, Any], context: Any, out: ResponseStream) -> int:
        request = HTTPGateway(event, context, self.adapter.config)
        body = request.body
        finished = asyncio.Event()
        status = 0
        read = False

        async def receive() -> Message:
            nonlocal read
            if not read:
                read = True
                return {"type": "http.request", "body": body, "more_body": False}
            # Not `http.disconnect` while the response runs: the SDK's SSE writer takes a disconnect as
            # the client leaving and cancels the handler.
            await finished.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                out.start(status, [(bytes(k), bytes(v)) for k, v in message.get("headers", [])])
            elif message["type"] == "http.response.body":
                chunk = bytes(message.get("body", b""))
                if chunk:
                    out.write(chunk)
                if not message.get("more_body", False):
                    finished.set()

        try:
            await self.runtime.app(request.scope, receive, send)
        except Exception:
            if not finished.is_set():
                raise
            logging.getLogger("handlers.lambda_handler").exception("the app raised after its response ended")
        finally:
            finished.set()
        if status == 0:
            raise RuntimeError("the app ended without sending a response")
        return status

    def handle_event(self, event: dict[str, Any], context: Any) -> Any:
        """A non-HTTP invocation (the server's own asynchronous work) goes to its `handle_event`."""
        if self.on_event is None:
            raise ValueError(
                "not an API Gateway HTTP event, and the server module defines no handle_event(event, context)"
            )
        asyncio.set_event_loop(self.loop)
        return self.on_event(event, context)

    def after_restore(self) -> None:
        """SnapStart: every restored copy must not share random state or AWS connections."""
        random.seed()
        self.runtime.table.reset()
        if self.runtime.oauth is not None:
            self.runtime.oauth.reset()


lambda_app = LambdaApp(Settings())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    if "requestContext" not in event:
        return lambda_app.handle_event(event, context)
    response = lambda_app(event, context)
    record_failure(event, int(response.get("statusCode", 500)))
    return response


def record_failure(event: dict[str, Any], status: int) -> None:
    """A 5xx answer: a metric and a log line, which neither Lambda nor the front records by itself."""
    # Successful requests are already counted and logged by Lambda (REPORT lines, Invocations) and
    # API Gateway (access log, Count, 4xx); repeating that here cost ~0.3 ms and 400 bytes of
    # billed log ingestion per request (bench/README.md). Only what neither can see is recorded.
    if status >= 500:
        metrics.add_metric(name="ServerErrors", unit=MetricUnit.Count, value=1)
        metrics.flush_metrics()
        logger.error(
            "request failed",
            extra={"path": event.get("rawPath"), "status": status, "route": event.get("routeKey")},
        )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def stream_handler(event: dict[str, Any], context: LambdaContext, out: ResponseStream) -> Any:
    """handlers/stream_runtime.py's entry: an HTTP event streams into `out`; any other is answered whole."""
    if "requestContext" not in event:
        return lambda_app.handle_event(event, context)
    record_failure(event, lambda_app.stream(event, context, out))
    return None


# `xray = true` turns on Lambda's active tracing, which traces each invocation by itself; the
# Powertools Tracer adds subsegments when the server ships aws-xray-sdk (its requirements.txt).
if os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() != "true" and importlib.util.find_spec("aws_xray_sdk"):
    from aws_lambda_powertools import Tracer

    tracer = Tracer()
    handler = tracer.capture_lambda_handler(handler)
    # Called with `out=` by keyword: the Tracer's wrapper passes only keywords beyond (event, context).
    stream_handler = tracer.capture_lambda_handler(stream_handler)


try:  # present in Lambda's managed Python runtimes (3.12+) and in the dev requirements
    from snapshot_restore_py import register_after_restore
except ImportError:  # pragma: no cover - only outside Lambda without the dev requirements
    pass
else:
    register_after_restore(lambda_app.after_restore)
