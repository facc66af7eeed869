"""`mcpkit …` with the local API Gateway's response parameter mappings switched off.

Shows what a deployed API without the WWW-Authenticate mapping would send: API Gateway's
remapped header only. Used by test_gateway_header.py; not a tool for anything else.
"""

from __future__ import annotations

from typing import Any

from mcpkit import local_gateway
from mcpkit.cli import main

_original = local_gateway.LocalGateway.__init__


def _without_mappings(self: local_gateway.LocalGateway, *args: Any, **kwargs: Any) -> None:
    kwargs["response_mappings"] = {}
    _original(self, *args, **kwargs)


if __name__ == "__main__":
    local_gateway.LocalGateway.__init__ = _without_mappings  # type: ignore[method-assign]
    main()
