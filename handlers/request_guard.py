"""DNS-rebinding and cross-origin checks that know where a request really arrived.

The SDK's own guard compares `Host` with a fixed list, which cannot know an `execute-api`
domain before deploy. Here the accepted host is the one API Gateway reports in the event's
request context (it routes only requests for its own domains), plus configured custom domains;
a browser `Origin` must be allow-listed or be the server's own origin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from handlers.errors import INVALID_REQUEST, jsonrpc_error

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from starlette.responses import Response


def _hostname(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):  # IPv6 literal, maybe with a port
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class RequestGuard:
    def __init__(self, allowed_hosts: Iterable[str], allowed_origins: Iterable[str]) -> None:
        self._hosts = {_hostname(h) for h in allowed_hosts}
        self._origins = set(allowed_origins)

    def check(self, headers: Mapping[str, str], event: Mapping[str, Any] | None) -> Response | None:
        """None when the request may proceed, otherwise the error response to send."""
        host = _hostname(headers.get("host", ""))
        arrived_on = _hostname(str((event or {}).get("requestContext", {}).get("domainName", "")))
        if not host or (host != arrived_on and host not in self._hosts):
            return jsonrpc_error(421, INVALID_REQUEST, f"Host {host!r} is not a name this server is deployed on.")
        origin = headers.get("origin")
        if origin is not None and origin.lower().rstrip("/") not in self._origins | {f"https://{host}"}:
            return jsonrpc_error(
                403,
                INVALID_REQUEST,
                f"Origin {origin!r} is not allowed; add it to allowed_origins in the server's mcpkit.toml.",
            )
        return None
