"""A test server whose tools report progress and log lines while they run, with pauses between them.

Served with `stream_responses` (tests/test_streaming.py): what the tools send must reach the client
while they run, and every stream must end with the answer or a JSON-RPC error.
"""

from __future__ import annotations

import asyncio

from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import ElicitRequest, ElicitRequestFormParams, ElicitResult, InputRequiredResult

mcp = MCPServer("chatty", version="1.0.0")

# Set when `hold` is cancelled: a client that went away must not leave its tool running.
cancelled = asyncio.Event()


@mcp.tool()
async def report(pause: float, ctx: Context) -> str:
    """Report progress twice, then log a line, pausing `pause` seconds after each."""
    for step in (1, 2):
        await ctx.report_progress(progress=step, total=2, message=f"step {step} of 2")
        await asyncio.sleep(pause)
    await ctx.info("report written")
    await asyncio.sleep(pause)
    return "report done"


@mcp.tool()
async def quiet() -> str:
    """Answer without sending anything first."""
    return "nothing to report"


@mcp.tool()
async def ponder(seconds: float) -> str:
    """Think quietly for `seconds`, then answer."""
    await asyncio.sleep(seconds)
    return f"pondered {seconds} s"


@mcp.tool()
async def overrun(ctx: Context) -> str:
    """Report progress, then wait far past any function timeout."""
    await ctx.report_progress(progress=1, total=2)
    await asyncio.sleep(3600)
    return "never"


@mcp.tool()
async def fail(ctx: Context) -> str:
    """Report progress, then fail as a tool (an error result)."""
    await ctx.report_progress(progress=1, total=2)
    raise RuntimeError("the report's data source is gone")


@mcp.tool()
async def refuse(ctx: Context) -> str:
    """Report progress, then fail with a JSON-RPC error."""
    await ctx.info("checking the request")
    raise MCPError(code=-32602, message="no such report")


@mcp.tool()
async def hold(ctx: Context) -> str:
    """Report progress, then wait until cancelled."""
    await ctx.report_progress(progress=1, total=2)
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        cancelled.set()
        raise
    return "never"


@mcp.tool()
async def confirm(ctx: Context) -> str | InputRequiredResult:
    """Report progress, then ask the person to confirm (2026-07-28: a result that asks, sealed state)."""
    await ctx.report_progress(progress=1, total=2)
    answer = (ctx.input_responses or {}).get("confirm")
    if ctx.request_state != "asked" or not isinstance(answer, ElicitResult) or answer.content is None:
        schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
        question = ElicitRequest(params=ElicitRequestFormParams(message="Write the report?", requested_schema=schema))
        return InputRequiredResult(
            result_type="input_required", input_requests={"confirm": question}, request_state="asked"
        )
    return f"confirmed={answer.content['ok']}"
