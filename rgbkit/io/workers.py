"""Process pools whose workers never outlive the process that started them.

A parent killed with SIGKILL runs no clean-up, and the workers of a
``ProcessPoolExecutor`` would otherwise wait on their queue forever. Each
worker here watches its parent id and exits when it changes (the parent
died and the worker was handed to init).
"""
from __future__ import annotations

import os
import shutil
import threading
import time
from concurrent.futures import ProcessPoolExecutor

POLL_SECONDS = 0.5


def _watch(parent: int, scratch: str | None) -> None:
    while True:
        time.sleep(POLL_SECONDS)
        if os.getppid() != parent:
            if scratch:  # the parent's scratch folder: nobody else will remove it
                shutil.rmtree(scratch, ignore_errors=True)
            os._exit(1)  # the parent is gone: nobody will read our results


def die_with_parent(scratch=None, initializer=None, *args) -> None:
    """Worker initializer: start the watchdog, then run ``initializer(*args)`` if given."""
    threading.Thread(target=_watch, args=(os.getppid(), scratch), daemon=True, name="rgbkit-parent-watch").start()
    if initializer is not None:
        initializer(*args)


def process_pool(workers: int, initializer=None, initargs=(), mp_context=None,
                 scratch: str | None = None) -> ProcessPoolExecutor:
    """A ``ProcessPoolExecutor`` of ``workers`` processes that exit when this process dies.

    ``initializer`` must be importable by name when ``mp_context`` is "spawn".
    ``scratch``: a folder the workers write into for the parent; removed by them if it dies.
    """
    return ProcessPoolExecutor(workers, mp_context=mp_context, initializer=die_with_parent,
                               initargs=(scratch, initializer, *initargs))
