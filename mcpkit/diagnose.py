"""A mistake in a user's server folder as one or two lines (file:line, what, how to fix), never a traceback.

Used where a server is loaded on the user's behalf: `mcpkit dev` at start-up and on every reload,
and `mcpkit validate` (run by `make synth`). Errors in the kit itself keep their traceback: they
are ours to fix, not the user's.
"""

from __future__ import annotations

import re
import traceback
from pathlib import Path
from typing import Any

from mcpkit.server_config import CONFIG_FILE, SERVER_ATTRIBUTE, SERVER_FILE, ServerConfigError, load_server

# handlers/app.py: "mcpkit.toml [permissions] lists what <spec> does not define: tool 'x' (scope 'y'), …"
_UNKNOWN = re.compile(r"\[permissions\] lists what .* does not define: (?P<names>.*)$")
_UNKNOWN_NAME = re.compile(r"(?P<kind>tool|prompt) '(?P<name>[^']*)' \(scope '(?P<scope>[^']*)'\)")


class ServerProblemError(Exception):
    """A user's server folder that cannot be served; str() is the short message."""


def toml_line(path: Path, needle: str) -> int | None:
    """The first line of `path` that mentions `needle` (a key or a quoted value), 1-based."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for number, line in enumerate(lines, 1):
        if needle in line.split("#", 1)[0]:
            return number
    return None


def describe(exc: BaseException, folder: Path) -> str:
    """The short form of an exception raised while loading the server in `folder`."""
    from handlers.server_loader import ServerLoadError

    folder = folder.resolve()
    if isinstance(exc, SyntaxError):
        where = f"{exc.filename}:{exc.lineno}" if exc.filename else str(folder / SERVER_FILE)
        text = (exc.text or "").strip()
        return f"{where}: {type(exc).__name__}: {exc.msg}" + (f"\n    {text}" if text else "")
    if isinstance(exc, ServerLoadError):
        return _describe_load_error(str(exc), folder)
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _inside(Path(f.filename), folder)]
    if frames:
        frame = frames[-1]
        return (
            f"{frame.filename}:{frame.lineno}: {type(exc).__name__}: {exc}\n"
            f"    {(frame.line or '').strip()}  (raised while importing the server, as Lambda's init phase would)"
        )
    return f"{folder / SERVER_FILE}: {type(exc).__name__}: {exc}"


def _describe_load_error(message: str, folder: Path) -> str:
    config = folder / CONFIG_FILE
    unknown = _UNKNOWN.search(message)
    if unknown is not None:
        lines = []
        for found in _UNKNOWN_NAME.finditer(unknown.group("names")):
            kind, name, scope = found.group("kind", "name", "scope")
            line = toml_line(config, f'"{name}"') or toml_line(config, f"'{name}'")
            where = f"{config}:{line}" if line else str(config)
            lines.append(
                f"{where}: [permissions] scope {scope!r} lists the {kind} {name!r}, which {folder / SERVER_FILE} "
                f"does not define; fix the name or remove it"
            )
        if lines:
            return "\n".join(lines)
    if "must define" in message:
        return (
            f'{folder / SERVER_FILE}: defines no `{SERVER_ATTRIBUTE}`; add `{SERVER_ATTRIBUTE} = MCPServer("...")` '
            f"(from mcp.server.mcpserver import MCPServer): the kit serves the server named `{SERVER_ATTRIBUTE}`"
        )
    return message


def _inside(path: Path, folder: Path) -> bool:
    try:
        return path.resolve().is_relative_to(folder)
    except OSError:
        return False


def check_server(folder: Path, *, auth: str | None = None) -> None:
    """Load the folder as the Lambda's init phase would (config, server.py, `[permissions]` names).

    Raises `ServerProblemError` with the short message. Runs the user's module in this process.
    """
    try:
        server_folder = load_server(folder)
    except ServerConfigError as exc:
        raise ServerProblemError(str(exc)) from None
    from handlers.auth.scopes import ScopePolicy
    from handlers.server_loader import ServerLoadError
    from handlers.server_loader import load_server as load_module

    spec = f"{(folder / SERVER_FILE).resolve()}:{SERVER_ATTRIBUTE}"
    try:
        server = load_module(spec)
        if (auth or server_folder.config.auth) == "oauth":
            policy = ScopePolicy.model_validate_json(server_folder.config.permissions.model_dump_json())
            import asyncio

            # The public listing (as the consent page's catalog reads it), not the SDK's registries.
            tools = {t.name for t in asyncio.run(server.list_tools())}
            prompts = {p.name for p in asyncio.run(server.list_prompts())}
            unknown = policy.unknown_names(tools, prompts)
            if unknown:
                raise ServerLoadError(
                    f"mcpkit.toml [permissions] lists what {spec} does not define: {', '.join(unknown)}"
                )
    except Exception as exc:  # noqa: BLE001 - whatever the user's module raises is reported, shortly
        raise ServerProblemError(describe(exc, folder)) from None


_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+), in [^\n]*\n?(?:\s*(?P<code>[^\n]*))?')


def describe_reported(error: dict[str, Any], folder: Path) -> str:
    """`describe` for an init failure a Runtime API client reported (errorType, errorMessage, stackTrace)."""
    folder = folder.resolve()
    kind, message = str(error.get("errorType", "Error")), str(error.get("errorMessage", ""))
    if kind == "ServerLoadError":
        return _describe_load_error(message, folder)
    for frame in reversed([str(f) for f in error.get("stackTrace") or []]):
        found = _FRAME.search(frame)
        if found is not None and _inside(Path(found["file"]), folder):
            code = (found["code"] or "").strip()
            if kind.endswith(("SyntaxError", "IndentationError", "TabError")):
                return f"{found['file']}:{found['line']}: {kind}: {message}" + (f"\n    {code}" if code else "")
            return (
                f"{found['file']}:{found['line']}: {kind}: {message}\n"
                f"    {code}  (raised while importing the server, as Lambda's init phase would)"
            )
    return f"{folder / SERVER_FILE}: {kind}: {message}"
