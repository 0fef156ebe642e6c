"""Where optional real data live (never required at run time)."""
from __future__ import annotations

from pathlib import Path

from ..config import REPO_ROOT, shared_data_candidates

__all__ = ["REPO_ROOT", "shared_data_dir", "real_spectra_files"]


def shared_data_dir() -> Path | None:
    """The folder of real LAMOST files and catalogs, if present.

    ``$RGBKIT_SHARED_DATA`` first, then ``../shared/data`` beside a source
    checkout. None when neither exists: callers fall back to demo data.
    """
    for cand in shared_data_candidates():
        if (cand / "lamost").is_dir():
            return cand
    return None


def real_spectra_files() -> list[Path]:
    """The real LAMOST files under the optional shared data folder (empty list when absent)."""
    root = shared_data_dir()
    if root is None:
        return []
    return sorted(p for p in (root / "lamost").rglob("*") if p.is_file() and ".fits" in p.name.lower())
