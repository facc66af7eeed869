"""A test server for requests that overrun the function's timeout, and for `Mcp-Param` headers.

`nap` waits on the event loop, so the handler itself can stop it before the deadline; `block`
holds the loop (a plain `def` tool runs inline), so only the execution environment's end stops it.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from pydantic import Field

mcp = MCPServer("slow", version="1.0.0")


@mcp.tool()
async def nap(seconds: float) -> str:
    """Wait without blocking, then answer."""
    await asyncio.sleep(seconds)
    return f"slept {seconds} s"


@mcp.tool()
def block(seconds: float) -> str:
    """Hold the instance (a blocking call), then answer."""
    time.sleep(seconds)
    return f"blocked {seconds} s"


@mcp.tool()
def crash() -> str:
    """End the execution environment's process mid-invocation (as an out-of-memory kill would)."""
    os._exit(1)


@mcp.tool()
def add(a: float, b: float) -> float:
    """Add two numbers (the known-good call)."""
    return a + b


@mcp.tool()
def weather(region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})]) -> str:
    """A tool whose argument is mirrored into the `Mcp-Param-Region` header (SEP-2243)."""
    return f"sunny in {region}"
