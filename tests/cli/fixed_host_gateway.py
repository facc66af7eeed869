"""`mcpkit …` with a local gateway that reports one fixed domain whatever Host a request used.

That is what `mcpkit dev` did before it followed the Host header, and what a proxy that rewrites
Host does: the server then names itself under another host than the one the client used. Used by
test_token.py to show that `mcpkit check` names that cause; not a tool for anything else.
"""

from __future__ import annotations

from typing import Any

from mcpkit import local_gateway
from mcpkit.cli import main

_original = local_gateway.LocalGateway.__init__


def _fixed_domain(self: local_gateway.LocalGateway, *args: Any, **kwargs: Any) -> None:
    kwargs["served_names"] = ()
    _original(self, *args, **kwargs)


if __name__ == "__main__":
    local_gateway.LocalGateway.__init__ = _fixed_domain  # type: ignore[method-assign]
    main()
