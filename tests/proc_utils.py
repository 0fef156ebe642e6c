"""Waiting for processes to go (tests of clean-up after a killed parent)."""
from __future__ import annotations

import time
from pathlib import Path


def running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z"
    except OSError:
        return False


def still_running(pids, seconds: float) -> list[int]:
    """Wait up to ``seconds`` for every pid to go; the ones still running."""
    end = time.monotonic() + seconds
    while any(running(p) for p in pids) and time.monotonic() < end:
        time.sleep(0.1)
    return [p for p in pids if running(p)]
