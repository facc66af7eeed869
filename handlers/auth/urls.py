"""The server's own URLs, derived per request: the API URL is never configured.

The base is the domain API Gateway says the request arrived on (the execute-api domain or a
custom domain). In Lambda it is always https on 443; the local gateway serves plain http on a
port and says so in the `x-forwarded-*` headers it sets, like API Gateway does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from handlers.auth.config import running_in_lambda

if TYPE_CHECKING:
    from starlette.types import Scope


@dataclass(frozen=True)
class ServerUrls:
    base: str

    @property
    def issuer(self) -> str:
        return self.base

    @property
    def resource(self) -> str:
        return f"{self.base}/mcp"

    @property
    def resource_metadata(self) -> str:
        return f"{self.base}/.well-known/oauth-protected-resource/mcp"

    def path(self, path: str) -> str:
        return f"{self.base}{path}"


class UnknownOriginError(RuntimeError):
    """The request carries no API Gateway context to derive the server's URL from."""


def server_urls(scope: Scope) -> ServerUrls:
    event: dict[str, Any] = scope.get("aws.event") or {}
    domain = str(event.get("requestContext", {}).get("domainName", "")).strip().lower()
    if not domain:
        raise UnknownOriginError("no requestContext.domainName in the event")
    if running_in_lambda():
        return ServerUrls(f"https://{domain}")
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    scheme = headers.get("x-forwarded-proto", "https").split(",")[0].strip()
    scheme = scheme if scheme in {"http", "https"} else "https"
    port = headers.get("x-forwarded-port", "").split(",")[0].strip()
    default = "443" if scheme == "https" else "80"
    if ":" in domain and not domain.startswith("["):
        domain = f"[{domain}]"  # a bare IPv6 bind address
    suffix = f":{port}" if port.isdigit() and port != default else ""
    return ServerUrls(f"{scheme}://{domain}{suffix}")
