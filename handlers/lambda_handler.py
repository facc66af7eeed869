"""Lambda entry point: `handlers.lambda_handler.handler`.

Everything expensive happens at import, in the init phase: loading the server, building the
app, starting the SDK's session manager. Under SnapStart that work lands in the snapshot, and
the after-restore hook renews what must not be shared between restored instances.
"""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from mangum import Mangum

from handlers.app import Runtime, create_runtime
from handlers.server_loader import load_event_handler
from handlers.settings import Settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
metrics = Metrics()


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

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        # Anything that ran `asyncio.run()` on this thread since (a test, a tool) leaves no loop set.
        asyncio.set_event_loop(self.loop)
        response: dict[str, Any] = self.adapter(event, context)
        return response

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
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    if "requestContext" not in event:
        return lambda_app.handle_event(event, context)
    response = lambda_app(event, context)
    status = int(response.get("statusCode", 500))
    metrics.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
    if status >= 500:
        metrics.add_metric(name="ServerErrors", unit=MetricUnit.Count, value=1)
    elif status >= 400:
        metrics.add_metric(name="ClientErrors", unit=MetricUnit.Count, value=1)
    logger.info(
        "request",
        extra={
            "http_method": event.get("requestContext", {}).get("http", {}).get("method"),
            "path": event.get("rawPath"),
            "status": status,
        },
    )
    return response


try:  # present in Lambda's managed Python runtimes (3.12+) and in the dev requirements
    from snapshot_restore_py import register_after_restore
except ImportError:  # pragma: no cover - only outside Lambda without the dev requirements
    pass
else:
    register_after_restore(lambda_app.after_restore)
