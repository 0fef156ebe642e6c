"""Where the dashboard's spectra come from: the SIMULATED demo set, real files, uploads.

A spectrum is named by a key: ``demo:<obsid>``, ``file:<path>`` or
``upload:<name>`` (the last lives in the session's state only). Heavy
immutable results are cached per process with :func:`functools.lru_cache`:
sessions share read-only results, never mutable state.
"""
from __future__ import annotations

import json
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

from rgbkit.io.lamost import LamostFormatError, read_lamost, read_lamost_bytes
from rgbkit.io.paths import real_spectra_files
from rgbkit.preprocess import Preprocessor
from rgbkit.spectra import Spectrum

SIMULATED_NOTE = "The demo data are SIMULATED spectra and labels (rgbkit.simulate), not observations."
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
"""LAMOST LRS files are 0.1-0.4 MB (gzipped or not); anything past 10 MB is not one."""
DEMO_PREFIX, FILE_PREFIX, UPLOAD_PREFIX = "demo:", "file:", "upload:"


class UploadError(ValueError):
    """An uploaded file that the dashboard refuses, with a reason for the page."""


_load_lock = threading.RLock()  # sessions and the warm-up thread wait for one load instead of racing


@lru_cache(maxsize=1)
def _demo():
    from rgbkit.datasets import load_demo

    return load_demo(progress=False)


def demo():
    """The SIMULATED demo set (:func:`rgbkit.datasets.load_demo`), loaded once per process."""
    with _load_lock:
        return _demo()


@lru_cache(maxsize=4)
def _demo_inputs(config_json: str | None):
    d = demo()
    prep = Preprocessor() if config_json is None else Preprocessor.from_config(json.loads(config_json))
    return prep.run(d.wavelength, d.flux)


def demo_inputs(config: dict | str | None = None):
    """Preprocessed network inputs of every demo star (a PreprocessResult), per preprocessing config
    (a ``Preprocessor.config`` dict or its JSON; None: the paper's settings)."""
    if config is not None:  # one cache entry per distinct setting, whatever its spelling
        cfg = Preprocessor.from_config(json.loads(config) if isinstance(config, str) else config).config
        config = None if cfg == Preprocessor().config else json.dumps(cfg, sort_keys=True)
    with _load_lock:
        return _demo_inputs(config)


def demo_star_options(split: str = "validation") -> dict[str, str]:
    """``{label: key}`` of demo stars, e.g. ``"J1907...+3940 · RGB · 8.0 Gyr" -> "demo:900000000"``."""
    lab = demo().labels
    lab = lab[lab["split"] == split] if split else lab
    return {f"{r.designation} · {r.stage} · {r.age:.1f} Gyr · {r.mass:.2f} Msun": f"{DEMO_PREFIX}{r.obsid}"
            for r in lab.itertuples()}


def real_file_options() -> dict[str, str]:
    """``{label: key}`` of the real LAMOST example spectra shipped in the package (:mod:`rgbkit.examples`),
    labelled by release, name and what each is; keys name files under the examples folder, never a server path."""
    from rgbkit.examples import example_table

    return {f"{r.file} · {r.what}": f"{FILE_PREFIX}{r.file}" for r in example_table().itertuples()}


def is_demo_key(key: str) -> bool:
    return str(key).startswith(DEMO_PREFIX)


@lru_cache(maxsize=64)
def load_star(key: str) -> Spectrum:
    """The spectrum behind a key from :func:`demo_star_options` / :func:`real_file_options`."""
    if key.startswith(DEMO_PREFIX):
        lab = demo().labels
        rows = np.flatnonzero(lab["obsid"].to_numpy() == int(key[len(DEMO_PREFIX):]))
        if not rows.size:
            raise KeyError(f"no demo star with obsid {key[len(DEMO_PREFIX):]}")
        return demo().spectra(rows[0])[0]
    if key.startswith(FILE_PREFIX):
        from rgbkit.examples import EXAMPLES_DIR

        rel = key[len(FILE_PREFIX):]
        path = (EXAMPLES_DIR / rel).resolve()
        if EXAMPLES_DIR.resolve() not in path.parents:  # only the shipped examples, nothing else on the server
            raise KeyError(f"no shipped example {rel!r}")
        return read_lamost(path)
    raise KeyError(f"unknown spectrum key {key!r}")


def demo_labels_for(key: str) -> dict | None:
    """The demo catalog row (labels and truth) of a demo key, else None."""
    if not is_demo_key(key):
        return None
    lab = demo().labels
    row = lab[lab["obsid"] == int(key[len(DEMO_PREFIX):])]
    return None if row.empty else row.iloc[0].to_dict()


def read_upload(data: bytes | None, filename: str | None, max_bytes: int = MAX_UPLOAD_BYTES) -> Spectrum:
    """Read an uploaded LAMOST file; :class:`UploadError` with a readable reason if refused.

    Checked here on the server, whatever the browser enforced: the size, then
    the bounded reader (:func:`rgbkit.io.lamost.read_lamost_bytes`: what a
    gzip stream inflates to and what headers declare are capped). The bytes
    are read in memory, so no temporary file is left behind; the spectrum
    keeps the uploaded name. Any failure is an UploadError.
    """
    name = Path(str(filename or "upload")).name or "upload"
    if not data:
        raise UploadError(f"{name}: empty upload")
    if len(data) > max_bytes:
        raise UploadError(f"{name}: {len(data) / 1e6:.1f} MB is larger than the {max_bytes / 1e6:.0f} MB limit "
                          "(a LAMOST low-resolution spectrum is well under 1 MB)")
    try:
        return read_lamost_bytes(data, name)
    except LamostFormatError as e:
        raise UploadError(f"{name}: {e.reason}") from None
    except Exception as e:  # noqa: BLE001 - the page must say something, whatever went wrong
        raise UploadError(f"{name}: could not be read ({type(e).__name__}: {e})") from None


def session_allowed(remote_ip: str | None) -> bool:
    """Serve this session? Only to this machine unless ``$RGBKIT_DASHBOARD_REMOTE`` says otherwise.

    ``panel serve apps/dashboard.py`` listens on every interface by default;
    this keeps the dashboard (which reads files and runs training) to the
    machine it runs on unless the user asked for more.
    """
    import ipaddress

    from rgbkit.config import dashboard_remote

    if dashboard_remote() or remote_ip is None:
        return True
    try:
        return ipaddress.ip_address(remote_ip.split("%")[0]).is_loopback
    except ValueError:
        return False


def demo_split_index(split: str, n: int | None = None, seed: int = 0) -> np.ndarray:
    """Rows of a demo split that survive preprocessing; a seeded random ``n`` of them if given."""
    lab = demo().labels
    idx = np.flatnonzero((lab["split"] == split).to_numpy() & demo_inputs().ok)
    if n is not None and n < idx.size:
        idx = np.sort(np.random.default_rng(seed).choice(idx, n, replace=False))
    return idx
