"""`mcpkit dev --reload`: a change under the server's folder replaces the Lambda instances, as a deploy would.

Each generation of instances is a set of fresh processes (spawned, not forked) that run the init
phase from a clean interpreter, so nothing of the old code survives. The emulated AWS lives in the
`mcpkit dev` process and outlives every generation: table, user pool, keys and sessions stay, and
a connected client keeps its sign-in. A generation that fails its init (a syntax error, a typo in
`[permissions]`) is reported in one or two lines and discarded; the last good one keeps serving.
The watcher polls modification times: no dependency, and a server folder is a handful of files.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcpkit.local_gateway import InstanceInitError

if TYPE_CHECKING:
    from collections.abc import Callable

    from mcpkit.local_gateway import LambdaContext, LambdaPool

POLL_SECONDS = 0.4
# Editors write a file in steps; wait until the folder has been quiet this long.
SETTLE_SECONDS = 0.3
_IGNORED_PARTS = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".git", ".venv"})


def snapshot(folder: Path) -> dict[str, float]:
    """Modification times of the files under `folder` that a deploy would ship."""
    found: dict[str, float] = {}
    for path in folder.rglob("*"):
        if _IGNORED_PARTS.intersection(path.relative_to(folder).parts) or path.name.startswith("."):
            continue
        try:
            if path.is_file():
                found[str(path)] = path.stat().st_mtime_ns
        except OSError:
            continue
    return found


class ReloadingInstance:
    """The gateway's Lambda: the current generation of instances, replaced when the server folder changes."""

    def __init__(self, build: Callable[[], LambdaPool[Any]], folder: Path, report: Callable[[str], None]) -> None:
        self._build = build
        self._folder = folder
        self._report = report
        self._current = build()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="dev-reload", daemon=True)
        self._thread.start()

    async def invoke(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        result: dict[str, Any] = await self._current.invoke(event, context)
        return result

    def pool(self) -> LambdaPool[Any]:
        """The current generation: a request is served whole by the generation it started on."""
        return self._current

    def close(self) -> None:
        self._stop.set()
        self._current.close()

    def _watch(self) -> None:
        seen = snapshot(self._folder)
        while not self._stop.wait(POLL_SECONDS):
            now = snapshot(self._folder)
            if now == seen:
                continue
            # Let a multi-file save finish before building from it.
            while not self._stop.wait(SETTLE_SECONDS):
                settled = snapshot(self._folder)
                if settled == now:
                    break
                now = settled
            changed = sorted({*now, *seen} - {k for k in now if now.get(k) == seen.get(k)})
            seen = now
            self._reload(changed)

    def _reload(self, changed: list[str]) -> None:
        names = ", ".join(Path(c).name for c in changed[:3]) + (" …" if len(changed) > 3 else "")
        started = time.monotonic()
        try:
            fresh = self._build()
        except InstanceInitError as exc:
            self._report(f"reload failed ({names} changed); still serving the last good version:\n{exc}")
            return
        old, self._current = self._current, fresh
        old.close()
        self._report(f"reloaded ({names} changed): new Lambda instance ready in {time.monotonic() - started:.1f} s")
