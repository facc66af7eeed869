"""MCP requests as a client writes them, for the kit's own clients: `mcpkit check`, the bench,
the load generator and the tests. Imports nothing heavy."""

from __future__ import annotations

from typing import Any, Final

MODERN: Final = "2026-07-28"


def rpc(method: str, params: dict[str, Any] | None = None, id_: int | str | None = 1) -> dict[str, Any]:
    """A JSON-RPC message; `id_=None` makes it a notification."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    if id_ is not None:
        message["id"] = id_
    return message


def modern_meta(client: str, version: str = "1") -> dict[str, Any]:
    """The `_meta` envelope a 2026-07-28 request carries instead of an `initialize` handshake."""
    return {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": {"name": client, "version": version},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
