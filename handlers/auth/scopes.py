"""Which OAuth scope each tool, resource and prompt needs, and what a token may see and call.

The policy comes from the server's `mcpkit.toml` (`[permissions]`, validated by
`mcpkit.server_config`) through `MCPKIT_PERMISSIONS`. Anything not listed needs the default
scope, so a server without a `[permissions]` table has exactly one scope, `mcp:tools`.
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_SCOPE: Final = "mcp:tools"
Kind = Literal["tool", "resource", "prompt"]
# The request that names one item, and where its name is.
_CALLS: Final[dict[str, tuple[Kind, str]]] = {
    "tools/call": ("tool", "name"),
    "prompts/get": ("prompt", "name"),
    "resources/read": ("resource", "uri"),
    "resources/subscribe": ("resource", "uri"),
    "resources/unsubscribe": ("resource", "uri"),
}
# The list results a token only sees its own part of: result key, item kind, field with the item's name.
LISTS: Final[dict[str, tuple[str, Kind, str]]] = {
    "tools/list": ("tools", "tool", "name"),
    "prompts/list": ("prompts", "prompt", "name"),
    "resources/list": ("resources", "resource", "uri"),
    "resources/templates/list": ("resourceTemplates", "resource", "uriTemplate"),
}


class ScopeSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    description: str
    tools: tuple[str, ...] = ()
    prompts: tuple[str, ...] = ()
    # URIs or shell-style patterns (`notes://*`), matched against resource URIs and URI templates.
    resources: tuple[str, ...] = ()


def _default_scopes() -> dict[str, ScopeSpec]:
    return {DEFAULT_SCOPE: ScopeSpec(description="Use this server's tools, resources and prompts")}


class ScopePolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    default_scope: str = DEFAULT_SCOPE
    scopes: dict[str, ScopeSpec] = Field(default_factory=_default_scopes)

    @property
    def supported(self) -> tuple[str, ...]:
        return tuple(self.scopes)

    def scope_for(self, kind: Kind, name: str) -> str:
        for scope, spec in self.scopes.items():
            if kind == "tool" and name in spec.tools:
                return scope
            if kind == "prompt" and name in spec.prompts:
                return scope
            if kind == "resource" and any(fnmatch.fnmatchcase(name, pattern) for pattern in spec.resources):
                return scope
        return self.default_scope

    def needed_for(self, message: dict[str, Any]) -> tuple[Kind, str, str] | None:
        """(kind, name, scope) for a request that uses one item; None for everything else."""
        call = _CALLS.get(str(message.get("method")))
        params = message.get("params")
        if call is None or not isinstance(params, dict):
            return None
        kind, field = call
        name = params.get(field)
        if not isinstance(name, str):
            return None  # the SDK answers the malformed request itself
        return kind, name, self.scope_for(kind, name)

    def filter_list(self, method: str, body: bytes, granted: frozenset[str]) -> bytes | None:
        """The list response without the items `granted` does not cover; None when nothing changes."""
        listed = LISTS.get(method)
        if listed is None:
            return None
        key, kind, field = listed
        try:
            message = json.loads(body)
            items = message["result"][key]
        except (ValueError, KeyError, TypeError):
            return None  # an error answer, not a list
        if not isinstance(items, list):
            return None
        kept = [i for i in items if isinstance(i, dict) and self.scope_for(kind, str(i.get(field))) in granted]
        if len(kept) == len(items):
            return None
        message["result"][key] = kept
        return json.dumps(message, separators=(",", ":")).encode()

    def unknown_names(self, tools: set[str], prompts: set[str]) -> list[str]:
        """Listed tools and prompts the server does not have: a typo would leave the real one
        under the default scope, so the runtime refuses to start with any."""
        return [
            f"{kind} {name!r} (scope {scope!r})"
            for scope, spec in self.scopes.items()
            for kind, names, known in (("tool", spec.tools, tools), ("prompt", spec.prompts, prompts))
            for name in names
            if name not in known
        ]

    def unlocks(self, scope: str, catalog: dict[Kind, list[str]]) -> list[str]:
        """What a person gets by granting `scope`, for the consent page: names from the server's catalog."""
        return [name for kind, names in catalog.items() for name in names if self.scope_for(kind, name) == scope]
