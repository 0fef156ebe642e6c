"""How many CPU threads torch should use here.

torch sizes its thread pool from the cores it can see. In a container with a
CPU quota (Binder gives about 1 CPU on a many-core node) that oversubscribes
the quota and inference slows down many times over, so rgbkit caps the pool
at the CPUs this process may really use, unless the user set
``OMP_NUM_THREADS`` or ``RGBKIT_THREADS``.
"""
from __future__ import annotations

import math
import os
from pathlib import Path


def cpu_budget(cgroup_root: str | Path = "/sys/fs/cgroup") -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup CPU quota."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    root = Path(cgroup_root)
    try:  # cgroup v2: "max 100000" or "150000 100000"
        quota, period = (root / "cpu.max").read_text().split()[:2]
        if quota != "max":
            n = min(n, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        try:  # cgroup v1
            quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
            period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
            if quota > 0:
                n = min(n, math.ceil(quota / period))
        except (OSError, ValueError):
            pass
    return max(1, n)


def apply_default() -> int:
    """Cap torch's intra-op threads at :func:`cpu_budget` (or ``RGBKIT_THREADS``); return the count."""
    import torch

    from ..config import threads

    want = threads()
    if want:
        torch.set_num_threads(want)
    elif "OMP_NUM_THREADS" not in os.environ and torch.get_num_threads() > cpu_budget():
        torch.set_num_threads(cpu_budget())
    return torch.get_num_threads()
