"""A test server for the streaming front (`stream_responses = true`).

Besides its tools it adds plain HTTP routes to the kit's app, which only a test fixture may do
(the kit serves `/mcp` and OAuth alone): `/ticks` writes body chunks with pauses between them, so
a test can see each chunk reach the client before the next is written, whatever the MCP
transport streams; `/fail-midway` fails after its first chunk. `handle_event` takes the non-HTTP
events: it reports the time left before the invocation's deadline, or fails.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

from mcp.server.mcpserver import MCPServer
from starlette.applications import Starlette
from starlette.responses import StreamingResponse
from starlette.routing import Route

import handlers.app

mcp = MCPServer("streaming", version="1.0.0")


@mcp.tool()
def add(a: float, b: float) -> float:
    """Add two numbers."""
    return a + b


@mcp.tool()
def block(seconds: float) -> str:
    """Hold the instance (a blocking call), then answer."""
    time.sleep(seconds)
    return f"blocked {seconds} s"


@mcp.tool()
def crash() -> str:
    """End the execution environment's process mid-invocation (as an out-of-memory kill would)."""
    os._exit(1)


async def ticks(request: Any) -> StreamingResponse:
    count = int(request.query_params.get("count", "3"))
    pause = float(request.query_params.get("pause", "0.5"))

    async def body() -> Any:
        for i in range(count):
            if i:
                await asyncio.sleep(pause)
            yield f"tick {i} {time.time():.3f}\n".encode()

    response = StreamingResponse(body(), status_code=207, media_type="text/plain")
    response.headers["x-ticks"] = str(count)
    response.set_cookie("first", "1")
    response.set_cookie("second", "2")
    return response


async def fail_midway(_request: Any) -> StreamingResponse:
    async def body() -> Any:
        yield b"first part\n"
        await asyncio.sleep(0.05)
        raise RuntimeError("failed after the first chunk")

    return StreamingResponse(body(), media_type="text/plain")


class _WithTestRoutes(Starlette):
    def __init__(self, *, routes: list[Route], **kwargs: Any) -> None:
        extra = [Route("/ticks", ticks), Route("/fail-midway", fail_midway)]
        super().__init__(routes=[*routes, *extra], **kwargs)


# The server module is imported before handlers.app builds its Starlette app (create_runtime).
handlers.app.Starlette = _WithTestRoutes  # type: ignore[attr-defined,assignment]


def handle_event(event: dict[str, Any], context: Any) -> Any:
    if event.get("fail"):
        raise ValueError("asked to fail")
    if "log" in event:
        # A library's record through the root logger's handler (the one Lambda's runtime installs).
        logging.getLogger("fixture.library").warning(event["log"])
    return {"remaining_ms": context.get_remaining_time_in_millis(), "request_id": context.aws_request_id}
