"""Load the user's `MCPServer` from `MCPKIT_SERVER` (`<path>:<attribute>`).

Server folders are named like stacks (`my-notes`), which is not a valid Python package name,
so the module is loaded from its file; the folder goes on `sys.path` so that a server can
import its own helper modules the ordinary way.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType

    from mcp.server.mcpserver import MCPServer

# The code root: in the Lambda zip `handlers/` and `servers/` sit side by side, as in the repository.
CODE_ROOT = Path(__file__).resolve().parent.parent


class ServerLoadError(RuntimeError):
    """The configured server cannot be loaded; the message says what to fix."""


def load_server(spec: str, root: Path = CODE_ROOT) -> MCPServer:
    from mcp.server.mcpserver import MCPServer

    module, path, attribute = _load_module(spec, root)
    server = getattr(module, attribute, None)
    if not isinstance(server, MCPServer):
        raise ServerLoadError(f"{path} must define `{attribute} = MCPServer(...)`; found {type(server).__name__}")
    return server


def load_event_handler(spec: str, root: Path = CODE_ROOT) -> Callable[[dict[str, Any], Any], Any] | None:
    """The server module's optional `handle_event(event, context)`, for invocations that are not HTTP.

    A server that outlives API Gateway's 29 s (the long-task template) invokes its own function
    asynchronously; such events carry no API Gateway request context and go here instead of to
    the HTTP app.
    """
    module, _, _ = _load_module(spec, root)
    handle: Callable[[dict[str, Any], Any], Any] | None = getattr(module, "handle_event", None)
    return handle if callable(handle) else None


def _load_module(spec: str, root: Path) -> tuple[ModuleType, Path, str]:
    path_text, _, attribute = spec.rpartition(":")
    if not path_text or not attribute:
        raise ServerLoadError(f"MCPKIT_SERVER={spec!r} must look like 'servers/<name>/server.py:mcp'")
    path = Path(path_text)
    if not path.is_absolute():
        path = root / path
    if not path.is_file():
        raise ServerLoadError(f"MCPKIT_SERVER points at {path}, which does not exist")

    module_name = f"mcpkit_server_{path.parent.name.replace('-', '_')}_{path.stem}"
    module = sys.modules.get(module_name)
    if module is None:
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        if module_spec is None or module_spec.loader is None:
            raise ServerLoadError(f"cannot import {path}")
        module = importlib.util.module_from_spec(module_spec)
        sys.path.insert(0, str(path.parent))
        sys.modules[module_name] = module
        try:
            module_spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[module_name]
            raise
    return module, path, attribute
