"""Seal 2026-07-28 `requestState` under a key every instance of the function shares.

A tool that asks the person something (elicitation), the model (sampling) or the client's roots
returns an `InputRequiredResult`; the client calls again with the answers and the sealed
`requestState` (SEP-2322, "multi round-trip requests"). The second call may reach any Lambda
instance. `MCPServer` seals with a key drawn in its constructor, which only the instance that
drew it can open, so the kit puts its own policy in place of that one when it loads the server:

- the key is derived with HKDF from the one secret the stack draws at deploy
  (`MCPKIT_SESSION_KEY`; `mcpkit dev` draws one per run), under a label of its own, so it is
  unrelated to the key that signs session ids though both come from one secret: nothing more to
  draw, store or rotate, and neither use can be turned against the other;
- the state is bound to the caller (the token's client, issuer and subject) when OAuth is on, to
  the request it answers (method, tool and arguments) and to this server's name, and expires
  after `MCPKIT_REQUEST_STATE_TTL_SECONDS`.

The SDK's `RequestStateBoundary` does the sealing and the refusing: a tampered, expired,
foreign or unknown state is answered with `-32602 "Invalid or expired requestState"` and the
reason goes to the log only. A `request_state_security=` given to `MCPServer(...)` in a server
module is replaced too: the kit cannot tell it from the SDK's default.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer
    from mcp.server.request_state import RequestStateSecurity

    from handlers.settings import Settings

# HKDF `info`: names what the derived key is for, so the same root secret yields an unrelated key per use.
_PURPOSE = b"mcpkit/request-state/v1"


def request_state_key(root: bytes) -> bytes:
    """The 32-byte request-state key derived from the deploy-drawn secret."""
    from cryptography.hazmat.primitives.hashes import SHA256
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=SHA256(), length=32, salt=None, info=_PURPOSE).derive(root)


def shared_security(settings: Settings) -> RequestStateSecurity | None:
    """The policy every instance builds alike from `settings`; None without a deploy-drawn secret."""
    from mcp.server.request_state import RequestStateSecurity

    if settings.session_key is None:
        return None
    key = request_state_key(settings.session_key.get_secret_value().encode())
    return RequestStateSecurity(keys=[key], ttl=settings.request_state_ttl_seconds)


def install(server: MCPServer, settings: Settings) -> None:
    """Replace the request-state boundary `MCPServer` built with one under the shared key.

    Without a secret (a bare `Settings()` in a test) the SDK's per-instance key stays: state
    then only opens on the instance that sealed it.
    """
    from mcp.server.request_state import RequestStateBoundary

    security = shared_security(settings)
    if security is None:
        return
    chain = server.middleware
    position = next((i for i, layer in enumerate(chain) if isinstance(layer, RequestStateBoundary)), None)
    if position is None:
        raise RuntimeError("MCPServer no longer installs a RequestStateBoundary; the kit cannot seal requestState")
    chain[position] = RequestStateBoundary(security, default_audience=server.name)
