"""Real giants of /work/shared/data and nonsense variants built from them (for bench_trust and its tests).

Dev-time only: the package never reads ../shared. ``real_giants()`` returns
the DR1 files that LAMOST's pipeline (LASP, catalogs/B6212_lasp_dr1_labels.csv,
rows from the same observation) calls giants: log g < 3.8 and Teff < 5,600 K.
``nonsense(spectra)`` makes, from each real spectrum, variants no network
should score.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
if not SHARED.exists():
    SHARED = Path("/work/shared/data")
LABELS = SHARED / "catalogs" / "B6212_lasp_dr1_labels.csv"
GIANT_LOGG, GIANT_TEFF = 3.8, 5600.0


def real_giants():
    """(spectra, labels) of the real DR1 giants (LASP labels of the same observation)."""
    from rgbkit.io.lamost import read_lamost

    lab = pd.read_csv(LABELS)
    lab = lab[lab["same_obs"] & (lab["logg"] < GIANT_LOGG) & (lab["teff"] < GIANT_TEFF) & (lab["logg"] > 0)]
    rows, spectra = [], []
    for _, r in lab.iterrows():
        path = SHARED / "lamost" / "dr1" / r["file"]
        if path.exists():
            spectra.append(read_lamost(path))
            rows.append(r)
    return spectra, pd.DataFrame(rows).reset_index(drop=True)


def real_files():
    """Every readable real LAMOST file in /work/shared/data (all types: dwarfs, hot stars, a QSO)."""
    from rgbkit.io.lamost import read_lamost

    out = []
    for p in sorted((SHARED / "lamost").rglob("*.fits*")):
        try:
            out.append(read_lamost(p))
        except Exception:  # noqa: BLE001 - unreadable files are the reader tests' business
            pass
    return out


VARIANTS = ("pure_noise", "shuffled_pixels", "reversed", "emission", "shifted_600A", "sine_wave",
            "flat_plus_noise", "featureless_continuum")


def nonsense(spectra, seed: int = 0):
    """(spectra, kinds): for each real spectrum, one of each :data:`VARIANTS` in its file's arrays."""
    rng = np.random.default_rng(seed)
    out, kinds = [], []
    for s in spectra:
        f = np.asarray(s.flux, dtype=np.float64)
        good = f > 0
        med, sd = np.median(f[good]), np.std(f[good])
        lam = s.wavelength
        x = (lam - lam.min()) / np.ptp(lam)
        cont = np.polyval(np.polyfit(x[good], f[good], 3), x)
        variants = {
            "pure_noise": np.abs(med + sd * rng.standard_normal(f.size)),
            "shuffled_pixels": rng.permutation(f),
            "reversed": f[::-1].copy(),
            "emission": np.where(good, 2 * cont - f, 0.0),
            "shifted_600A": np.roll(f, int(np.searchsorted(lam, lam[0] * 10 ** (600 / lam[0] / np.log(10) * 0.0) + 600))),
            "sine_wave": med * (1 + 0.5 * np.sin(2 * np.pi * x * 7)) + 0.02 * med * rng.standard_normal(f.size),
            "flat_plus_noise": med + 0.05 * med * rng.standard_normal(f.size),
            "featureless_continuum": np.maximum(cont, 1e-3 * med) * (1 + 0.01 * rng.standard_normal(f.size)),
        }
        for k in VARIANTS:
            out.append(dataclasses.replace(s, flux=variants[k].astype(np.float32),
                                           meta=dataclasses.replace(s.meta, path=f"{s.meta.path}#{k}")))
            kinds.append(k)
    return out, kinds
