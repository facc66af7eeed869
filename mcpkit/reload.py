"""`mcpkit dev --reload`: a change under the server's folder replaces the Lambda instances, as a deploy would.

Each generation of instances is a set of fresh processes (spawned, not forked) that run the init
phase from a clean interpreter, so nothing of the old code survives. The emulated AWS lives in the
`mcpkit dev` process and outlives every generation: table, user pool, keys and sessions stay, and
a connected client keeps its sign-in. A generation that fails its init (a syntax error, a typo in
`[permissions]`) is reported in one or two lines and discarded; the last good one keeps serving.
The watcher polls modification times: no dependency, and a server folder is a handful of files.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from mcpkit.local_gateway import LambdaContext

POLL_SECONDS = 0.4
# Editors write a file in steps; wait until the folder has been quiet this long.
SETTLE_SECONDS = 0.3
_IGNORED_PARTS = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".git", ".venv"})

_handler: Any = None
_init_error: str | None = None


class InstanceInitError(Exception):
    """A new generation's init phase failed; str() is the short description of the user's mistake."""


def plain_root_logging() -> None:
    """One plain line per log record, as Lambda's runtime writes them.

    Lambda's runtime puts a handler on the root logger before the init phase, so the SDK's
    `logging.basicConfig(RichHandler)` does nothing there; without one here, rich would wrap every
    log line at 80 columns with the source file pushed to the right edge.
    """
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def _init(entry_point: str, server_dir: str) -> None:
    """A new execution environment's init phase; a failure is kept to be reported, not raised."""
    global _handler, _init_error
    from mcpkit.local_gateway import LambdaInstance, _exit_with_parent

    _exit_with_parent()
    plain_root_logging()
    try:
        _handler = LambdaInstance._init(entry_point)
    except Exception as exc:  # noqa: BLE001 - the user's module may raise anything
        from mcpkit.diagnose import describe

        _init_error = describe(exc, Path(server_dir))


def _status() -> tuple[int, str | None]:
    time.sleep(0.2)  # keep this worker busy so the next warm-up call starts (and initializes) another
    return os.getpid(), _init_error


def _invoke(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result: dict[str, Any] = _handler(event, context)
    return result


class FreshInstances:
    """`count` new execution environments, each its own process; raises `InstanceInitError` if init fails."""

    def __init__(self, count: int, server_dir: Path, entry_point: str = "handlers.lambda_handler:handler") -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self._executor = ProcessPoolExecutor(
            max_workers=count,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init,
            initargs=(entry_point, str(server_dir)),
        )
        statuses = [f.result() for f in [self._executor.submit(_status) for _ in range(count)]]
        errors = [error for _, error in statuses if error]
        if errors:
            self._executor.shutdown(wait=False, cancel_futures=True)
            raise InstanceInitError(errors[0])
        self.pids = sorted({pid for pid, _ in statuses})

    async def invoke(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        result: dict[str, Any] = await asyncio.wrap_future(self._executor.submit(_invoke, event, context))
        return result

    def close(self) -> None:
        # Requests already running finish; their processes exit after.
        self._executor.shutdown(wait=False, cancel_futures=False)


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

    def __init__(self, build: Callable[[], FreshInstances], folder: Path, report: Callable[[str], None]) -> None:
        self._build = build
        self._folder = folder
        self._report = report
        self._current = build()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="dev-reload", daemon=True)
        self._thread.start()

    async def invoke(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        return await self._current.invoke(event, context)

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
