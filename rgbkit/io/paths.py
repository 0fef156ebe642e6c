"""Where optional real data live (never required at run time)."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_data_dir() -> Path | None:
    """The folder of real LAMOST files and catalogs, if present.

    ``$RGBKIT_SHARED_DATA`` first, then ``../shared/data`` beside a source
    checkout. None when neither exists: callers fall back to demo data.
    """
    for cand in (os.environ.get("RGBKIT_SHARED_DATA"), REPO_ROOT.parent / "shared" / "data"):
        if cand and (Path(cand) / "lamost").is_dir():
            return Path(cand)
    return None
