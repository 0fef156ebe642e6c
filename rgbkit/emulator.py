"""The spectral emulator: model flux of a cool star from (Teff, logg, [Fe/H]).

A Cannon-style cubic model on the LAMOST low-resolution grid, shipped in
``rgbkit/data/lamost_emulator.npz`` (built by ``tools/build_emulator.py``;
source and licence in ``rgbkit/data/EMULATOR_LICENSE.txt``). The simulator behind
the demo data and the label fit of the catalog both use it; neither needs the other.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
import numpy as np

from .config import DATA_DIR
from .preprocess import interp_plan

__all__ = ["Emulator", "load_emulator", "lamost_grid", "DATA_DIR"]



@dataclass(frozen=True)
class Emulator:
    """The convolved cool-star emulator on the LAMOST grid (see tools/build_emulator.py)."""

    wavelength: np.ndarray
    theta: np.ndarray
    powers: np.ndarray
    fiducials: np.ndarray
    scales: np.ndarray
    cont_wavelength: np.ndarray
    cont_theta: np.ndarray
    label_min: np.ndarray
    label_max: np.ndarray

    def design(self, teff, logg, feh) -> np.ndarray:
        lab = np.column_stack([np.atleast_1d(teff), np.atleast_1d(logg), np.atleast_1d(feh)]).astype(np.float64)
        lab = np.clip(lab, self.label_min, self.label_max)  # a cubic model must not extrapolate
        s = (lab - self.fiducials) / self.scales
        return np.prod(s[:, None, :] ** self.powers[None], axis=2)

    def normalised_flux(self, teff, logg, feh) -> np.ndarray:
        """Continuum-normalised model flux, shape (n, 3909), float32."""
        return (self.design(teff, logg, feh) @ self.theta.T).astype(np.float32)

    def continuum(self, teff, logg, feh) -> np.ndarray:
        """Smooth continuum (relative F_lambda shape, taken as 10**model), median 1 over 4,000-5,500 A."""
        logc = self.design(teff, logg, feh) @ self.cont_theta.T
        idx, frac, _ = interp_plan(self.cont_wavelength, self.wavelength, np.float64)
        frac = np.clip(frac, 0.0, 1.0)  # constant beyond the continuum model's ends
        logc = logc[:, idx] * (1 - frac) + logc[:, idx + 1] * frac
        c = 10.0 ** logc
        g = (self.wavelength > 4000) & (self.wavelength < 5500)
        return (c / np.median(c[:, g], axis=1, keepdims=True)).astype(np.float32)


@lru_cache(maxsize=1)
def load_emulator() -> Emulator:
    """Load the emulator shipped in ``rgbkit/data`` (no external files needed)."""
    with np.load(DATA_DIR / "lamost_emulator.npz", allow_pickle=False) as d:
        d = {k: d[k] for k in d.files}
    wave = 10.0 ** (float(d["log10_wave0"]) + float(d["dlog10_wave"]) * np.arange(int(d["npix"])))
    tl = d["training_set_labels"].astype(np.float64)
    return Emulator(wave, d["theta"].astype(np.float32), d["powers"].astype(np.float64), d["fiducials"], d["scales"],
                    d["cont_wavelength_vac"], d["cont_theta"].astype(np.float64), tl.min(0), tl.max(0))


def lamost_grid() -> np.ndarray:
    """The LAMOST low-resolution vacuum wavelength grid (3,909 px, log10 step 1e-4 from 3.5682)."""
    return load_emulator().wavelength.copy()
