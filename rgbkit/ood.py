"""Out-of-domain checks: spectra the age and mass networks should not score.

A network returns a number for any input, noise included. These checks,
functions on arrays, say when that number means nothing. Each gives a bit of
:class:`Domain` (0 = in domain):

* ``NOT_STELLAR``: the flux has no stellar continuum: its neighbouring pixels
  hardly correlate (a star's continuum and lines span many 1 A pixels; white
  noise does not), measured on the resampled flux, see :func:`pixel_correlation`.
* ``FIT_FAILED``: the emulator fit of Teff, log g, [Fe/H] (:mod:`rgbkit.labelfit`)
  returned NaN (too few usable pixels) or non-finite chi-square.
* ``GRID_EDGE``: a fitted label sits at the emulator's label box edge: the fit
  was stopped by the box, so the star is not one the emulator describes.
* ``POOR_FIT``: the fit's chi-square (mean squared residual of the normalised
  flux, 4,050-5,650 A) is far above that of real giants: a spectrum that
  does not look like any cool star.
* ``FAR_FROM_TRAINING``: the network input lies far from the training
  spectra: its residual off their first principal components (Q) or its
  Mahalanobis distance inside them (T^2) is above the limit
  (:class:`DomainModel`).

Thresholds live in :class:`DomainModel` (``rgbkit/pretrained/domain.json``
and ``domain.npz`` for the shipped models), made by :func:`fit_domain`:
correlation and chi-square limits are set from the REAL giants in
``/work/shared/data`` and the simulated validation stars (see
``benchmarks/bench_trust.py``); the principal components and their
limits from the training and validation splits. Nothing here reads files
outside the package at run time.
"""
from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["Domain", "DomainModel", "pixel_correlation", "label_checks", "distance", "check",
           "describe", "fit_domain", "load_domain", "DOMAIN_FILES"]

DOMAIN_FILES = ("domain.json", "domain.npz")
CORR_MIN = 0.7
"""Neighbouring-pixel correlation limit. Real DR1 giants in /work/shared/data: 0.78-0.99
(lowest at SNR 8.6); simulated validation giants >= 0.87; white noise, shuffled
pixels or flat+noise put into a real giant's file: 0.44-0.51."""
CHI2_MAX = 0.02
"""Emulator-fit chi-square limit: about twice the worst of 19 real DR1 giants (0.011, at
SNR 10.5; median 0.0018) and 40x the simulated giants' median (0.0005)."""


class Domain(enum.IntFlag):
    """Why a spectrum is out of the networks' domain (bits combine; 0 = in domain)."""

    NOT_STELLAR = 1
    FIT_FAILED = 2
    GRID_EDGE = 4
    POOR_FIT = 8
    FAR_FROM_TRAINING = 16


_WORDS = {
    Domain.NOT_STELLAR: "flux not a star's (neighbouring pixels uncorrelated)",
    Domain.FIT_FAILED: "label fit failed",
    Domain.GRID_EDGE: "label fit at the emulator grid edge",
    Domain.POOR_FIT: "label fit chi-square far above real giants'",
    Domain.FAR_FROM_TRAINING: "far from the training spectra",
}


def describe(bits) -> list[str]:
    """Reasons in words for each value of ``bits`` ('' when 0)."""
    out = []
    for b in np.atleast_1d(np.asarray(bits, dtype=np.int64)):
        out.append("; ".join(w for f, w in _WORDS.items() if int(b) & int(f)))
    return out


def pixel_correlation(flux) -> np.ndarray:
    """Correlation of each spectrum's flux with itself shifted by one pixel, (n,).

    Pixels <= 0 or non-finite (gaps) are left out. Real spectra, even at
    SNR ~5, give > 0.8 (the continuum alone does); white noise gives ~0.
    """
    f = np.asarray(flux, dtype=np.float32)
    if f.ndim == 1:
        f = f[None]
    good = np.isfinite(f) & (f > 0)
    f = np.where(good, f, np.float32(0))
    w = good[:, :-1] & good[:, 1:]
    a, b = f[:, :-1] * w, f[:, 1:] * w
    n = w.sum(1).astype(np.float64)
    # one pass of sums (float64 accumulators) instead of masked means: the catalog runs this per spectrum
    sa, sb = a.sum(1, dtype=np.float64), b.sum(1, dtype=np.float64)
    saa = np.einsum("ij,ij->i", a, a, dtype=np.float64)
    sbb = np.einsum("ij,ij->i", b, b, dtype=np.float64)
    sab = np.einsum("ij,ij->i", a, b, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (sab - sa * sb / n) / np.sqrt((saa - sa * sa / n) * (sbb - sb * sb / n))
    return np.where(n >= 10, r, np.nan)


def label_checks(teff, logg, feh, chi2, chi2_max: float, box=None, tol: float = 1e-3) -> np.ndarray:
    """FIT_FAILED, GRID_EDGE and POOR_FIT bits from emulator fit results (arrays of one length).

    ``box``: ``(label_min, label_max)`` arrays for (Teff, logg, [Fe/H]); default
    the shipped emulator's. A label within ``tol`` x the box width of a side is at the edge.
    """
    if box is None:
        from .emulator import load_emulator

        em = load_emulator()
        box = (em.label_min, em.label_max)
    lab = np.stack([np.asarray(v, dtype=np.float64).ravel() for v in (teff, logg, feh)], 1)
    c2 = np.asarray(chi2, dtype=np.float64).ravel()
    lo, hi = (np.asarray(v, dtype=np.float64)[:3] for v in box)
    bits = np.zeros(len(lab), np.int64)
    failed = ~np.all(np.isfinite(lab), 1) | ~np.isfinite(c2)
    bits[failed] |= int(Domain.FIT_FAILED)
    with np.errstate(invalid="ignore"):
        edge = np.any((lab <= lo + tol * (hi - lo)) | (lab >= hi - tol * (hi - lo)), 1) & ~failed
        poor = (c2 > chi2_max) & ~failed
    bits[edge] |= int(Domain.GRID_EDGE)
    bits[poor] |= int(Domain.POOR_FIT)
    return bits


@dataclass
class DomainModel:
    """The training spectra's principal components and every check's limit."""

    mean: np.ndarray
    """(d,) mean network input (flattened 64 x 64)."""
    components: np.ndarray
    """(k, d) leading principal components of the training inputs."""
    pc_std: np.ndarray
    """(k,) standard deviation of the training inputs along each component."""
    q_max: float
    """Largest allowed squared residual off the components (per pixel)."""
    t2_max: float
    """Largest allowed Mahalanobis distance squared inside the components."""
    chi2_max: float
    """Largest allowed emulator-fit chi-square."""
    corr_min: float
    """Smallest allowed neighbouring-pixel correlation of the resampled flux."""
    info: dict = field(default_factory=dict)

    def save(self, folder) -> None:
        folder = Path(folder)
        np.savez_compressed(folder / DOMAIN_FILES[1], mean=self.mean.astype(np.float32),
                            components=self.components.astype(np.float32), pc_std=self.pc_std.astype(np.float32))
        meta = {"q_max": self.q_max, "t2_max": self.t2_max, "chi2_max": self.chi2_max,
                "corr_min": self.corr_min, "n_components": int(len(self.components)), "info": self.info}
        (folder / DOMAIN_FILES[0]).write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, folder) -> "DomainModel":
        folder = Path(folder)
        try:
            meta = json.loads((folder / DOMAIN_FILES[0]).read_text())
            with np.load(folder / DOMAIN_FILES[1], allow_pickle=False) as z:
                mean, comp, sd = z["mean"], z["components"], z["pc_std"]
        except (OSError, KeyError, ValueError) as e:
            raise ValueError(f"domain model in {folder}: cannot read {DOMAIN_FILES} ({e})") from None
        if comp.ndim != 2 or comp.shape != (meta.get("n_components"), mean.size) or sd.shape != (len(comp),):
            raise ValueError(f"domain model in {folder}: arrays do not match domain.json")
        return cls(mean, comp, sd, float(meta["q_max"]), float(meta["t2_max"]), float(meta["chi2_max"]),
                   float(meta["corr_min"]), meta.get("info", {}))


def load_domain() -> DomainModel:
    """The domain model shipped with the pretrained ensembles."""
    from .ensemble import PRETRAINED_DIR

    return DomainModel.load(PRETRAINED_DIR)


def distance(X, model: DomainModel, batch: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """(Q, T^2) of network inputs ``X`` (n, 64, 64): mean squared residual off the
    components per pixel, and the Mahalanobis distance squared along them."""
    X = np.asarray(X, dtype=np.float32).reshape(len(X), -1)
    q = np.empty(len(X))
    t2 = np.empty(len(X))
    for a in range(0, len(X), batch):
        d = X[a:a + batch] - model.mean
        s = d @ model.components.T
        # orthonormal components: |d - projection|^2 = |d|^2 - |s|^2 (no reconstruction needed)
        q[a:a + batch] = (np.einsum("ij,ij->i", d, d, dtype=np.float64)
                          - np.einsum("ij,ij->i", s, s, dtype=np.float64)) / d.shape[1]
        t2[a:a + batch] = ((s / model.pc_std) ** 2).sum(1)
    return q, t2


def check(flux_resampled, X, fit: dict, model: DomainModel | None = None, rows=None) -> np.ndarray:
    """All checks at once: the :class:`Domain` bits per spectrum.

    Args:
        flux_resampled: (n, npix) flux on the preprocessing grid before normalising.
        X: (n, 64, 64) network inputs of the same spectra.
        fit: the emulator fit, dict with ``teff``, ``logg``, ``feh``, ``chi2`` arrays.
        model: the :class:`DomainModel` of the networks that will score the
            spectra (:func:`load_domain` for the shipped ones). None: no
            FAR_FROM_TRAINING check, :data:`CORR_MIN` and :data:`CHI2_MAX` as limits
            (for networks trained elsewhere, whose training set is unknown here).
        rows: boolean mask of the rows to check (e.g. those the preprocessing
            kept); the others get 0. None: all.
    """
    n = len(flux_resampled)
    sel = np.ones(n, bool) if rows is None else np.asarray(rows, bool)
    bits = np.zeros(n, np.int64)
    if not sel.any():
        return bits
    corr_min = CORR_MIN if model is None else model.corr_min
    chi2_max = CHI2_MAX if model is None else model.chi2_max
    f = np.asarray(flux_resampled)[sel]
    b = label_checks(*(np.asarray(fit[k])[sel] for k in ("teff", "logg", "feh", "chi2")), chi2_max)
    r = pixel_correlation(f)
    with np.errstate(invalid="ignore"):
        b[~(r >= corr_min)] |= int(Domain.NOT_STELLAR)
    if model is not None:
        q, t2 = distance(np.asarray(X)[sel], model)
        with np.errstate(invalid="ignore"):
            b[~((q <= model.q_max) & (t2 <= model.t2_max))] |= int(Domain.FAR_FROM_TRAINING)
    bits[sel] = b
    return bits


def fit_domain(X_train, X_val, *, chi2_max: float, corr_min: float, n_components: int = 16,
               level: float = 0.998, info: dict | None = None) -> DomainModel:
    """Principal components of the training inputs; Q and T^2 limits at ``level`` of the validation inputs.

    ``chi2_max`` and ``corr_min`` are chosen by the caller (from real giants:
    see ``benchmarks/bench_trust.py``). With two limits at 99.8% each about
    0.4% of in-domain stars are flagged by this check.
    """
    Xt = np.asarray(X_train, dtype=np.float32).reshape(len(X_train), -1)
    mean = Xt.mean(0)
    _, sv, vt = np.linalg.svd((Xt - mean).astype(np.float64), full_matrices=False)
    comp = vt[:n_components].astype(np.float32)
    sd = (sv[:n_components] / np.sqrt(len(Xt) - 1)).astype(np.float32)
    m = DomainModel(mean, comp, sd, np.inf, np.inf, float(chi2_max), float(corr_min), dict(info or {}))
    q, t2 = distance(X_val, m)
    m.q_max, m.t2_max = float(np.quantile(q, level)), float(np.quantile(t2, level))
    m.info.update(level=level, n_train=int(len(Xt)), n_val=int(len(X_val)))
    return m
