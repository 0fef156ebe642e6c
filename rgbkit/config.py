"""Every ``RGBKIT_*`` environment variable and cache path, read in one place.

==========================  ===================================================
``RGBKIT_CACHE``            root of the cache (default ``~/.cache/rgbkit``):
                            demo data, downloaded spectra (``spectra/``)
``RGBKIT_MODELS_DIR``       where the dashboard saves ensembles (``<cache>/models``)
``RGBKIT_SHARED_DATA``      optional folder of real LAMOST files and catalogs
``RGBKIT_THREADS``          torch CPU threads (default: the CPUs this process may use)
``RGBKIT_FETCH_URL``        archive URL template with ``{obsid}`` for downloads
``RGBKIT_FETCH_TOKEN``      fills ``{token}`` in that template
``RGBKIT_MAX_TRAININGS``    trainings one dashboard server runs at once (default 2)
``RGBKIT_NOTEBOOK_TEST``    set by the test suite; read by the notebooks themselves (quick settings)
``RGBKIT_DASHBOARD_REMOTE`` 1: the dashboard serves sessions to other machines too
                            (default: this machine only; ``rgbkit app --address`` other
                            than a loopback address sets it)
``RGBKIT_FULL_BASELINES``   ``1``: notebook 07 runs the full baseline search (about 14 min), not the quick one
==========================  ===================================================

Each is read when asked for (not at import), so a test or a session can
change it with ``os.environ`` and be heard.
"""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
DATA_DIR = PACKAGE_DIR / "data"
PRETRAINED_DIR = PACKAGE_DIR / "pretrained"
DEFAULT_EPOCHS = {"age": 450, "mass": 350}
"""The paper's training length per target (maximum epochs per member)."""
REPO_ROOT = PACKAGE_DIR.parent
"""The source checkout's root, when running from one (tools and benchmarks only; never needed at run time)."""


def _env(name: str) -> str | None:
    return os.environ.get(name) or None


def cache_dir() -> Path:
    """``$RGBKIT_CACHE`` or ``~/.cache/rgbkit``."""
    return Path(_env("RGBKIT_CACHE") or Path.home() / ".cache" / "rgbkit")


def spectra_cache_dir() -> Path:
    """Downloaded spectra: ``<cache>/spectra``."""
    return cache_dir() / "spectra"


def models_dir() -> Path:
    """Where the dashboard saves trained ensembles: ``$RGBKIT_MODELS_DIR`` or ``<cache>/models``."""
    return Path(_env("RGBKIT_MODELS_DIR") or cache_dir() / "models")


def shared_data_candidates() -> list[Path]:
    """``$RGBKIT_SHARED_DATA`` first, then ``../shared/data`` beside a source checkout."""
    return [Path(p) for p in (_env("RGBKIT_SHARED_DATA"), REPO_ROOT.parent / "shared" / "data") if p]


def threads() -> int | None:
    """``$RGBKIT_THREADS`` as a count (at least 1), or None when unset."""
    want = _env("RGBKIT_THREADS")
    return max(1, int(want)) if want else None


def max_trainings() -> int:
    """``$RGBKIT_MAX_TRAININGS``: concurrent dashboard trainings per server (default 2, at least 1)."""
    want = _env("RGBKIT_MAX_TRAININGS")
    return max(1, int(want)) if want else 2


def dashboard_remote() -> bool:
    """``$RGBKIT_DASHBOARD_REMOTE`` set to 1/true/yes: serve dashboard sessions to other machines."""
    return (_env("RGBKIT_DASHBOARD_REMOTE") or "").strip().lower() in ("1", "true", "yes")


def fetch_url() -> str | None:
    """``$RGBKIT_FETCH_URL``: the archive URL template with ``{obsid}``, or None."""
    return _env("RGBKIT_FETCH_URL")


def fetch_token() -> str | None:
    """``$RGBKIT_FETCH_TOKEN``, or None."""
    return _env("RGBKIT_FETCH_TOKEN")

