"""One spectrum through the preprocessing, stage by stage, with the numbers a reader checks.

Used by the dashboard's Spectra tab and handy in a notebook: the normalised
and denoised flux, the residual against the pipeline's noise, the flags.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .preprocess import Preprocessor, flag_names
from .spectra import BANDS, Spectrum

__all__ = ["StarView", "star_view", "header_table", "format_number"]


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
            ("subclass", m.subclass), ("RA (deg)", format_number(m.ra, ".5f")), ("Dec (deg)", format_number(m.dec, ".5f")),
            ("z", format_number(m.z, ".6f")), ("z error", format_number(m.z_err, ".2g")),
            ("S/N u g r i z", " ".join(format_number(m.snr.get(b), ".1f") for b in BANDS)),
            ("pixels", f"{len(spec)} ({spec.wavelength[0]:.0f}-{spec.wavelength[-1]:.0f} Å)")]
    if m.kic:
        rows.append(("KIC", m.kic))
    return pd.DataFrame([(k, "" if v is None else str(v)) for k, v in rows], columns=["field", "value"])


def format_number(v, spec: str) -> str:
    """``v`` formatted with ``spec``, or "?" when missing or not finite."""
    try:
        v = float(v)
    except (TypeError, ValueError):
        return "?"
    return format(v, spec) if np.isfinite(v) else "?"
