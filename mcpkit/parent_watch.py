"""End a `mcpkit dev` instance's process when the `mcpkit dev` process is gone, however it ended.

An instance blocks on its pipe or its Runtime API and may never notice a dead parent; without
this every killed `mcpkit dev` (even SIGKILL) would leave its interpreters behind. Standard library
only: a streaming instance imports it before the real `handlers.stream_runtime` and nothing else.
"""

from __future__ import annotations

import os
import threading
import time


def exit_with_parent() -> None:
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
