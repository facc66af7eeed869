"""API Gateway HTTP API (payload 2.0) events for each MCP protocol revision, built from a captured event."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Final

from mcpkit.messages import MODERN, modern_meta, rpc

ROOT: Final = Path(__file__).resolve().parent.parent
# A real HTTP API event (the kit's test fixture), so every subject parses what API Gateway really sends.
BASE_EVENT: Final = ROOT / "tests" / "events" / "http_api_post_mcp.json"

HANDSHAKE_REVISIONS: Final = ("2025-03-26", "2025-06-18", "2025-11-25")
REVISIONS: Final = (*HANDSHAKE_REVISIONS, MODERN)
CLIENT_INFO: Final = {"name": "mcpkit-bench", "version": "1"}
# Stands in for the id `initialize` returns; the probe swaps in the real one.
SESSION_PLACEHOLDER: Final = "0" * 32


def _event(message: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(BASE_EVENT.read_text())
    event = copy.deepcopy(event)
    body = json.dumps(message)
    event["body"] = body
    event["headers"]["content-length"] = str(len(body.encode()))
    event["headers"].update(headers)
    return event


def initialize(version: str) -> dict[str, Any]:
    params = {"protocolVersion": version, "capabilities": {}, "clientInfo": CLIENT_INFO}
    return _event(rpc("initialize", params), {})


def initialized(version: str, session_id: str | None) -> dict[str, Any]:
    return _event(rpc("notifications/initialized", id_=None), session_headers(version, session_id))


def session_headers(version: str, session_id: str | None) -> dict[str, str]:
    """What a client of a handshake revision sends after `initialize`.

    2025-03-26 predates the `MCP-Protocol-Version` header. `session_id=None` is a client that
    does not echo the session id (stateless servers never issue one).
    """
    headers: dict[str, str] = {}
    if session_id is not None:
        headers["mcp-session-id"] = session_id
    if version != "2025-03-26":
        headers["mcp-protocol-version"] = version
    return headers


def tools_call(version: str, tool: str, arguments: dict[str, Any], session_id: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"name": tool, "arguments": arguments}
    if version != MODERN:
        return _event(rpc("tools/call", params), session_headers(version, session_id))
    # 2026-07-28: each request carries what `initialize` used to negotiate, in `_meta` and headers.
    params["_meta"] = modern_meta(CLIENT_INFO["name"])
    headers = {"mcp-protocol-version": MODERN, "mcp-method": "tools/call", "mcp-name": tool}
    return _event(rpc("tools/call", params), headers)


def legacy_tools_call(tool: str, arguments: dict[str, Any], session_id: str | None = None) -> dict[str, Any]:
    """A plain JSON-RPC `tools/call` with no protocol headers, for peers that predate them."""
    return _event(rpc("tools/call", {"name": tool, "arguments": arguments}), session_headers("2025-03-26", session_id))
