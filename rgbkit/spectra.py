"""The spectrum container used everywhere in rgbkit."""
from __future__ import annotations

from dataclasses import dataclass, field, asdict
from typing import Any

import numpy as np

BANDS = ("u", "g", "r", "i", "z")


@dataclass
class SpectrumMeta:
    """Header facts of one LAMOST low-resolution spectrum.

    Missing values are None (floats: NaN) rather than absent, so every
    spectrum has the same fields whatever data release it came from.
    """

    obsid: int | None = None
    designation: str | None = None
    ra: float = float("nan")
    dec: float = float("nan")
    objclass: str | None = None  # header CLASS: STAR, GALAXY, QSO, Unknown
    subclass: str | None = None
    z: float = float("nan")
    z_err: float = float("nan")
    snr: dict[str, float] = field(default_factory=lambda: {b: float("nan") for b in BANDS})
    data_release: str | None = None  # e.g. "DR1", "DR7", "DR9"
    layout: str | None = None  # "dr1-image", "dr2-image", "dr8-table"
    path: str | None = None
    kic: int | None = None  # Kepler id from TCOMMENT 'kplrNNNNNNNNN', when present
    header: dict[str, Any] = field(default_factory=dict, repr=False)

    def as_row(self) -> dict[str, Any]:
        """Flat dict for tables (no header)."""
        d = asdict(self)
        d.pop("header")
        snr = d.pop("snr")
        for b in BANDS:
            d[f"snr_{b}"] = snr.get(b, float("nan"))
        return d


@dataclass
class Spectrum:
    """One spectrum: vacuum wavelength (Angstrom), flux, inverse variance, masks.

    Arrays share one length. ``flux`` and ``ivar`` are float32 (what LAMOST
    stores); ``wavelength`` is float64 so a log-linear grid stays exact.
    """

    wavelength: np.ndarray
    flux: np.ndarray
    ivar: np.ndarray
    and_mask: np.ndarray
    or_mask: np.ndarray
    meta: SpectrumMeta = field(default_factory=SpectrumMeta)

    def __post_init__(self):
        self.wavelength = np.asarray(self.wavelength, dtype=np.float64)
        self.flux = np.asarray(self.flux, dtype=np.float32)
        self.ivar = np.asarray(self.ivar, dtype=np.float32)
        self.and_mask = np.asarray(self.and_mask, dtype=np.int32)
        self.or_mask = np.asarray(self.or_mask, dtype=np.int32)
        n = self.wavelength.shape
        for name in ("flux", "ivar", "and_mask", "or_mask"):
            if getattr(self, name).shape != n:
                raise ValueError(
                    f"{name} has shape {getattr(self, name).shape}, wavelength has {n}"
                )

    def __len__(self) -> int:
        return self.wavelength.size

    @property
    def snr_g(self) -> float:
        return self.meta.snr.get("g", float("nan"))

    def __repr__(self) -> str:
        m = self.meta
        return (
            f"Spectrum({m.designation or m.obsid or '?'}, {m.data_release}, "
            f"{len(self)} px, {self.wavelength[0]:.1f}-{self.wavelength[-1]:.1f} A, "
            f"class={m.objclass} {m.subclass}, snr_g={self.snr_g:.1f})"
        )
