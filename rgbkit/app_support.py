"""Library calls behind the dashboard (``apps/``), kept here so the app holds views only.

Everything heavy and immutable (the demo data, their preprocessed inputs,
predictions of a saved ensemble) is cached per process with
:func:`functools.lru_cache`, keyed by its inputs: sessions share read-only
results, never mutable state.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from .io.lamost import LamostFormatError, read_lamost
from .io.paths import shared_data_dir
from .preprocess import Flag, Preprocessor, flag_names
from .spectra import BANDS, Spectrum

SIMULATED_NOTE = "The demo data are SIMULATED spectra and labels (rgbkit.simulate), not observations."
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
"""LAMOST LRS files are 0.1-0.4 MB (gzipped or not); anything past 10 MB is not one."""
DEMO_PREFIX, FILE_PREFIX = "demo:", "file:"


class UploadError(ValueError):
    """An uploaded file that the dashboard refuses, with a reason for the page."""


# ------------------------------------------------------------------ sources
def real_spectra_files() -> list[Path]:
    """The real LAMOST files under the optional shared data folder (empty list when absent)."""
    root = shared_data_dir()
    if root is None:
        return []
    return sorted(p for p in (root / "lamost").rglob("*") if p.is_file() and ".fits" in p.name.lower())


@lru_cache(maxsize=1)
def demo():
    """The SIMULATED demo set (:func:`rgbkit.datasets.load_demo`), loaded once per process."""
    from .datasets import load_demo

    return load_demo(progress=False)


@lru_cache(maxsize=4)
def demo_inputs(config_json: str | None = None):
    """Preprocessed network inputs of every demo star (a PreprocessResult), per preprocessing config."""
    d = demo()
    prep = Preprocessor() if config_json is None else Preprocessor.from_config(json.loads(config_json))
    return prep.run(d.wavelength, d.flux)


def demo_star_options(split: str = "validation") -> dict[str, str]:
    """``{label: key}`` of demo stars, e.g. ``"J1907...+3940 · RGB · 8.0 Gyr" -> "demo:900000000"``."""
    lab = demo().labels
    lab = lab[lab["split"] == split] if split else lab
    return {f"{r.designation} · {r.stage} · {r.age:.1f} Gyr · {r.mass:.2f} Msun": f"{DEMO_PREFIX}{r.obsid}"
            for r in lab.itertuples()}


def real_file_options() -> dict[str, str]:
    """``{label: key}`` of the real LAMOST files, labelled by release folder and name."""
    out = {}
    for p in real_spectra_files():
        out[f"{p.parent.name}/{p.name}"] = f"{FILE_PREFIX}{p}"
    return out


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
        return read_lamost(key[len(FILE_PREFIX):])
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

    The bytes go to a temporary file (the reader and astropy work on paths)
    that is deleted afterwards; the spectrum keeps the uploaded name.
    """
    name = Path(filename or "upload").name
    if not data:
        raise UploadError(f"{name}: empty upload")
    if len(data) > max_bytes:
        raise UploadError(f"{name}: {len(data) / 1e6:.1f} MB is larger than the {max_bytes / 1e6:.0f} MB limit "
                          "(a LAMOST low-resolution spectrum is well under 1 MB)")
    suffix = ".fits.gz" if data[:2] == b"\x1f\x8b" else ".fits"
    fd, tmp = tempfile.mkstemp(prefix="rgbkit-upload-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        try:
            spec = read_lamost(tmp)
        except LamostFormatError as e:
            raise UploadError(f"{name}: {e.reason}") from None
    finally:
        os.unlink(tmp)
    spec.meta.path = name
    return spec


# ------------------------------------------------------------------ one spectrum
@dataclass
class StarView:
    """One spectrum through the paper's preprocessing, for display."""

    wavelength: np.ndarray
    raw: np.ndarray  # min-max normalised flux before denoising (NaN if dropped early)
    denoised: np.ndarray
    ok: bool
    flags: list[str]
    reason: str
    stats: dict = field(default_factory=dict)

    @property
    def residual(self) -> np.ndarray:
        return self.raw - self.denoised


def star_view(spec: Spectrum, threshold_factor: float = 0.05, threshold: str = "max_level") -> StarView:
    """Resample, normalise and denoise one spectrum with a chosen wavelet threshold."""
    prep = Preprocessor(threshold_factor=threshold_factor, threshold=threshold)
    res = prep.run_spectra([spec], keep_stages=True)
    raw, den = res.stages["normalised"][0], res.stages["denoised"][0]
    resid = raw - den
    # Noise of the normalised flux from the pipeline's inverse variance, to compare with the residual.
    rs = res.stages["resampled"][0]
    span = float(np.nanmax(rs) - np.nanmin(rs)) if np.isfinite(rs).any() else np.nan
    iv = np.interp(res.wavelength, spec.wavelength, spec.ivar, left=0, right=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        sig = np.where(iv > 0, 1 / np.sqrt(iv), np.nan) / span
    finite = np.isfinite(resid)
    stats = {
        "residual_rms": float(np.sqrt(np.mean(resid[finite] ** 2))) if finite.any() else float("nan"),
        "residual_max": float(np.max(np.abs(resid[finite]))) if finite.any() else float("nan"),
        "noise_median": float(np.nanmedian(sig)) if np.isfinite(sig).any() else float("nan"),
        "n_zero": int(res.n_zero[0]),
        "std": float(res.std[0]),
        "levels": prep.n_levels,
    }
    return StarView(res.wavelength, raw, den, bool(res.ok[0]), flag_names(int(res.flags[0])), res.reasons[0], stats)


def header_table(spec: Spectrum) -> pd.DataFrame:
    """Header facts as a two-column table (field, value)."""
    m = spec.meta
    rows = [("file", Path(m.path).name if m.path else ""), ("designation", m.designation), ("obsid", m.obsid),
            ("data release", m.data_release), ("layout", m.layout), ("class", m.objclass),
            ("subclass", m.subclass), ("RA (deg)", _fmt(m.ra, ".5f")), ("Dec (deg)", _fmt(m.dec, ".5f")),
            ("z", _fmt(m.z, ".6f")), ("z error", _fmt(m.z_err, ".2g")),
            ("S/N u g r i z", " ".join(_fmt(m.snr.get(b), ".1f") for b in BANDS)),
            ("pixels", f"{len(spec)} ({spec.wavelength[0]:.0f}-{spec.wavelength[-1]:.0f} Å)")]
    if m.kic:
        rows.append(("KIC", m.kic))
    return pd.DataFrame([(k, "" if v is None else str(v)) for k, v in rows], columns=["field", "value"])


def quality_table(spec: Spectrum, view: StarView) -> pd.DataFrame:
    """Quality flags: pipeline masks, S/N, preprocessing verdict, domain of the model."""
    good = spec.ivar > 0
    snr_g = spec.meta.snr.get("g", float("nan"))
    cls = (spec.meta.objclass or "").upper()
    rows = [
        ("pixels with ivar > 0", f"{good.mean():.1%}", "ok" if good.mean() > 0.9 else "check"),
        ("pixels with and-mask set", f"{(spec.and_mask != 0).mean():.1%}",
         "ok" if (spec.and_mask != 0).mean() < 0.1 else "check"),
        ("S/N in g", _fmt(snr_g, ".1f"), "ok" if snr_g > 15 else "low (paper: S/N > 15)"),
        ("zero-flux pixels on 4000-8096 Å", str(view.stats["n_zero"]),
         "ok" if view.stats["n_zero"] < 100 else "dropped (limit 100)"),
        ("std of normalised flux", f"{view.stats['std']:.4f}", "ok" if view.stats["std"] >= 0.005 else "dropped (< 0.005)"),
        ("preprocessing", "usable" if view.ok else "dropped", ", ".join(view.flags) or "no flags"),
        ("object class", spec.meta.objclass or "?", "ok" if cls in ("STAR", "") else "outside the model's domain"),
    ]
    if view.reason:
        rows.append(("reason", view.reason, ""))
    return pd.DataFrame(rows, columns=["check", "value", "verdict"])


def _fmt(v, spec: str) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return "?"
    return format(v, spec) if np.isfinite(v) else "?"


__all__ = ["SIMULATED_NOTE", "MAX_UPLOAD_BYTES", "UploadError", "StarView", "real_spectra_files", "demo",
           "demo_inputs", "demo_star_options", "real_file_options", "load_star", "demo_labels_for",
           "read_upload", "star_view", "header_table", "quality_table", "Flag"]
