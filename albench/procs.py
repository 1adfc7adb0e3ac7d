"""Worker processes that end with the process that started them."""

from __future__ import annotations

import os


def exit_with_parent(parent: int) -> None:
    """Worker initializer: end this worker when ``parent`` (the process that started it) is
    gone, killed or interrupted, so that no orphan keeps training, holds a run's lock or
    writes into its folder. A daemon thread polls the parent id once a second."""
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()
