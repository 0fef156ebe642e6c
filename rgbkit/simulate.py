"""LAMOST-like spectra of red giants with known masses and ages (SIMULATED data).

Why ~580 lines in one module: labels, spectral features and instrument effects
are one argued recipe whose constants refer to each other (the docstring below
is its specification); the emulator itself is :mod:`rgbkit.emulator`.

Everything here is a physically argued simulation, not observed data. It
exists so that rgbkit runs out of the box (training, classifier, clusters,
dashboard, notebooks) without labelled LAMOST spectra, which cannot be
downloaded in every environment. Use real spectra and asteroseismic labels
(e.g. the Wu et al. 2018 LAMOST-Kepler catalog) for science.

Labels (:func:`draw_labels`)
    * (mass, logg) of RGB and red-clump (RC) stars: Gaussian mixtures fitted to
      APOKASC-2 (Pinsonneault et al. 2018) by ``tools/fit_labels.py``.
    * [M/H], [alpha/M]: two-population mixture fitted to APOGEE giants; the
      high-alpha population is drawn preferentially for old stars.
    * Age from mass and metallicity through a main-sequence-lifetime relation,
      t = 10**a * M**b * 10**(c [M/H]) Gyr: the classical t_MS ~ 10 Gyr M^-2.5
      (e.g. Kippenhahn, Weigert & Weiss 2012, ch. 30), with a and b refitted to
      APOKASC-2 RGB ages (b = -3.1, the ages include the subgiant and RGB
      phases) and c from Hall et al. (2019) clump stars; [M/H] = [Fe/H] +
      log10(0.638 * 10**[alpha/Fe] + 0.362) (Salaris, Chieffi & Straniero 1993).
      Stars older than 13.8 Gyr are redrawn.
    * RGB Teff = 4680 + 424 (logg - 2.5) + 150 (M - 1.2) - 250 [Fe/H] K: the
      logg slope and zero point fitted to APOGEE giants; the mass and
      metallicity terms are the sense and size of PARSEC isochrones (more
      massive and more metal-poor giants are hotter at fixed logg).
    * [C/N] after first dredge-up falls with mass (Martig et al. 2016; Ness et
      al. 2016): [C/N] = -0.25 - 0.55 ln M + 0.1 [Fe/H], reached over logg
      3.9 -> 3.4, plus a little extra mixing above the bump for low-mass stars.
      [C/Fe] falls by 0.3 x the [C/N] drop (C falls less than N rises).
    * RC: clump (mass, logg) from APOKASC-2, Teff from Hall et al. (2019)
      (~90 K hotter than RGB stars of the same mass and logg), RGB mass loss
      of up to 0.1 Msun (Miglio et al. 2012) so the age follows the initial
      mass, [C/N] 0.08 dex lower (extra mixing).
    * Catalog errors like asteroseismic ones (median 7 % mass, 20 % age; RC
      10 % / 25 %) are added; ``mass_true`` and ``age_true`` keep the truth.

Spectra (:func:`simulate_spectra`)
    * Emulator: the Cannon-style cool-star model of ``thedoppler`` (MIT, David
      Nidever), convolved to R = 1,800 on the LAMOST vacuum grid by
      ``tools/build_emulator.py`` (``rgbkit/data/lamost_emulator.npz``).
    * Added on top: CN bands (3,883 and 4,215 A heads) scaling with
      [C/Fe] + [N/Fe], the CH G band (4,300 A) with [C/Fe], and alpha-element
      lines (Mg b, Mg I, Ca H&K, Ca I 4,227, Ca triplet) with [alpha/Fe].
    * Continuum model x instrument response (blue/red arm join near 5,900 A),
      low-order flux-calibration wobble, radial velocity (header ``Z``),
      photon-like noise from a per-star SNR, masked pixels, and a few percent
      of spectra with a missing window (zero flux) for the quality cuts.
    * Deterministic from a seed; vectorised in chunks.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from .emulator import DATA_DIR, Emulator, lamost_grid, load_emulator  # noqa: F401  (re-exported)
from .spectra import Spectrum, SpectrumMeta

C_KMS = 299792.458
AGE_UNIVERSE = 13.8
CHUNK = 500  # spectra per noise stream; fixed so results do not depend on batch sizes
SIM_VERSION = "2"  # bump when the simulation changes (invalidates caches)

# --- fitted by tools/fit_labels.py (APOKASC-2, Hall+2019, APOGEE DR12 giants) ---
GMM_RGB = {"weights": [0.28758, 0.26741, 0.44502], "means": [[0.21248, 2.14716], [0.23112, 3.04562], [0.18188, 2.63043]], "covariances": [[[0.070717, 0.04431], [0.04431, 0.154155]], [[0.020953, -0.001797], [-0.001797, 0.018698]], [[0.021094, 0.005], [0.005, 0.025532]]]}
GMM_RC = {"weights": [0.33167, 0.24214, 0.42619], "means": [[0.0621, 2.38085], [0.76567, 2.70304], [0.29906, 2.47257]], "covariances": [[[0.032994, 0.005361], [0.005361, 0.002701]], [[0.025119, 0.011073], [0.011073, 0.023642]], [[0.032164, 0.010798], [0.010798, 0.004011]]]}
AGE_RELATION = {"a": 0.988, "b": -3.1055, "c_mh": 0.1543, "rms_resid_dex": 0.0674}
# zero point raised by 0.04 dex so that the simulated RGB ages (after the 13.8 Gyr limit and with the
# simulated metallicities) match APOKASC-2's (two-sample KS 0.14 -> ~0.09; tests/test_simulate.py)
AGE_RELATION["a"] = 0.988 + 0.04
RC_TEFF = {"t0": 4749.1, "tM": 150.0, "tZ": -344.6, "scatter": 73.7}
RGB_TEFF_FIT = {"t0": 4680.4, "tg": 424.0, "tZ": 1.1, "scatter": 101.4}  # APOGEE fit: no mass term, [M/H] term ~0
GMM_MH_ALPHA = {"weights": [0.80102, 0.19898], "means": [[-0.04918, 0.05747], [-0.3416, 0.19736]], "covariances": [[[0.048847, -0.003927], [-0.003927, 0.000796]], [[0.065534, -0.008556], [-0.008556, 0.002064]]]}
# --- assumed (literature, see module docstring) ---
RGB_TEFF = {"t0": 4680.4, "tg": 424.0, "tM": 150.0, "tZ": -250.0, "scatter": 40.0}
AGE_INTRINSIC_DEX = 0.02
REL_ERR = {"RGB": (0.07, 0.20), "RC": (0.10, 0.25)}  # median relative (mass, age) catalog errors
PAPER_TRAINING = {"RGB": 3352, "subgiant": 188}


# ============================================================== labels
def _gmm_draw(rng, g, n):
    w = np.asarray(g["weights"])
    comp = rng.choice(len(w), size=n, p=w / w.sum())
    out = np.empty((n, len(g["means"][0])))
    for k in range(len(w)):
        m = comp == k
        out[m] = rng.multivariate_normal(g["means"][k], g["covariances"][k], size=m.sum())
    return out


def metallicity_mh(feh, alpha_fe):
    """[M/H] from [Fe/H] and [alpha/Fe] (Salaris, Chieffi & Straniero 1993)."""
    return np.asarray(feh) + np.log10(0.638 * 10.0 ** np.asarray(alpha_fe) + 0.362)


def age_from_mass(mass, mh):
    """Age (Gyr) of a giant of initial mass ``mass`` (Msun) and [M/H] ``mh``.

    t = 10**a M**b 10**(c [M/H]): main-sequence-lifetime scaling (t ~ 10 Gyr
    M^-2.5) refitted to APOKASC-2 RGB ages (a, b) and Hall et al. 2019 (c).
    """
    r = AGE_RELATION
    return 10.0 ** (r["a"] + r["b"] * np.log10(mass) + r["c_mh"] * np.asarray(mh))


def rgb_teff(logg, mass, feh):
    """Mean RGB Teff (K) at given logg, mass (Msun), [Fe/H]."""
    r = RGB_TEFF
    return r["t0"] + r["tg"] * (np.asarray(logg) - 2.5) + r["tM"] * (np.asarray(mass) - 1.2) + r["tZ"] * np.asarray(feh)


def cn_after_dredge_up(mass, feh):
    """[C/N] after the first dredge-up: lower for more massive stars (Martig+2016, Ness+2016)."""
    return -0.25 - 0.55 * np.log(np.asarray(mass)) + 0.1 * np.asarray(feh)


def _draw_chemistry(rng, mass_init, n):
    """[Fe/H], [alpha/Fe], age for stars of given initial mass; high-alpha preferred when old."""
    feh = np.empty(n)
    alpha = np.empty(n)
    age = np.empty(n)
    todo = np.arange(n)
    for _ in range(200):
        if todo.size == 0:
            break
        m = mass_init[todo]
        t_solar = age_from_mass(m, 0.0)
        # old stars are more often thick-disc (high alpha); overall ~20 %
        p_high = 0.9 / (1.0 + np.exp(-(t_solar - 8.0) / 1.5))
        high = rng.random(todo.size) < p_high
        x = np.where(high[:, None], _gmm_draw(rng, _one(GMM_MH_ALPHA, 1), todo.size),
                     _gmm_draw(rng, _one(GMM_MH_ALPHA, 0), todo.size))
        f = x[:, 0]
        a = x[:, 1]
        t = age_from_mass(m, metallicity_mh(f, a)) * 10.0 ** (AGE_INTRINSIC_DEX * rng.standard_normal(todo.size))
        ok = (f >= -1.0) & (f <= 0.5) & (t <= AGE_UNIVERSE) & (t >= 0.3)
        feh[todo[ok]], alpha[todo[ok]], age[todo[ok]] = f[ok], a[ok], t[ok]
        todo = todo[~ok]
    if todo.size:
        raise RuntimeError(f"{todo.size} stars could not get an age below {AGE_UNIVERSE} Gyr")
    return feh, alpha, age


def _one(g, k):
    return {"weights": [1.0], "means": [g["means"][k]], "covariances": [g["covariances"][k]]}


def _draw_mass_logg(rng, g, n, logg_lo, logg_hi, m_lo=0.75, m_hi=2.6):
    out = np.empty((0, 2))
    while len(out) < n:
        x = _gmm_draw(rng, g, 2 * (n - len(out)) + 16)
        x[:, 0] = np.exp(x[:, 0])
        ok = (x[:, 1] >= logg_lo) & (x[:, 1] <= logg_hi) & (x[:, 0] >= m_lo) & (x[:, 0] <= m_hi)
        # low-mass stars too young to have left the main sequence are impossible: drop them here
        ok &= age_from_mass(x[:, 0], 0.3) <= AGE_UNIVERSE
        out = np.vstack([out, x[ok]])
    return out[:n, 0], out[:n, 1]


def _catalog_errors(rng, truth, median_rel, n):
    rel = median_rel * np.exp(0.3 * rng.standard_normal(n))
    obs = truth * (1.0 + rel * rng.standard_normal(n))
    return np.maximum(obs, 0.05 * truth), rel * truth


def draw_labels(n_rgb: int = 3352, n_subgiant: int = 188, n_rc: int = 0, seed: int = 0,
                logg_range=(1.75, 3.92)) -> pd.DataFrame:
    """Draw labels of simulated giants (see the module docstring for the physics).

    Returns one row per star with canonical columns (teff, logg, feh, alpha_fe,
    mass, mass_err, age, age_err, evstate) plus c_n, c_fe, mass_true,
    age_true, mass_init and ``stage`` ("RGB", "subgiant", "RC").
    """
    rng = np.random.default_rng([int(seed), 101])
    parts = []
    lo, hi = logg_range
    if n_rgb:
        m, g = _draw_mass_logg(rng, GMM_RGB, n_rgb, lo, min(hi, 3.5))
        parts.append(pd.DataFrame({"stage": "RGB", "mass_true": m, "logg": g, "mass_init": m}))
    if n_subgiant:
        m, _ = _draw_mass_logg(rng, GMM_RGB, n_subgiant, 1.0, 4.0, m_lo=0.85, m_hi=2.2)
        g = rng.uniform(3.5, hi, n_subgiant)
        parts.append(pd.DataFrame({"stage": "subgiant", "mass_true": m, "logg": g, "mass_init": m}))
    if n_rc:
        m, g = _draw_mass_logg(rng, GMM_RC, n_rc, 2.2, 3.0, m_lo=0.7)
        # RGB mass loss (Miglio+2012: ~0.1 Msun near 1.2 Msun; negligible above 2 Msun)
        dm = 0.1 * np.clip((2.0 - m) / 0.8, 0.0, 1.0) * rng.uniform(0.5, 1.5, n_rc)
        parts.append(pd.DataFrame({"stage": "RC", "mass_true": m, "logg": g, "mass_init": m + dm}))
    df = pd.concat(parts, ignore_index=True)
    n = len(df)
    feh, alpha, age = _draw_chemistry(rng, df.mass_init.to_numpy(), n)
    rc = (df.stage == "RC").to_numpy()
    sg = (df.stage == "subgiant").to_numpy()
    age = np.where(rc, age * 1.03 + 0.1, age)  # + core-helium-burning time
    df["feh"], df["alpha_fe"], df["age_true"] = feh, alpha, age
    m, g = df.mass_true.to_numpy(), df.logg.to_numpy()
    teff = rgb_teff(g, m, feh) + RGB_TEFF["scatter"] * rng.standard_normal(n)
    teff_rc = RC_TEFF["t0"] + RC_TEFF["tM"] * (m - 1.2) + RC_TEFF["tZ"] * feh + 50.0 * rng.standard_normal(n)
    # subgiants / turn-off: between the RGB base and a mass-dependent turn-off temperature
    t_to = np.minimum(5900.0 * m ** 0.55 - 250.0 * feh, 8000.0)
    u = rng.random(n) ** 0.7
    teff_sg = rgb_teff(g, m, feh) + u * np.clip(t_to - rgb_teff(g, m, feh), 0, None) * np.clip((g - 3.35) / 0.5, 0, 1)
    df["teff"] = np.where(rc, teff_rc, np.where(sg, teff_sg, teff))
    dredge = np.clip((3.9 - g) / 0.5, 0.0, 1.0)
    cn0 = 0.05 * alpha
    cn = cn0 + dredge * (cn_after_dredge_up(df.mass_init.to_numpy(), feh) - cn0)
    extra = 0.1 * np.clip((2.3 - g) / 0.5, 0, 1) * np.clip((1.8 - m) / 0.6, 0, 1)
    cn = cn - np.where(rc, 0.08, extra) + 0.04 * rng.standard_normal(n)
    df["c_n"] = cn
    df["c_fe"] = 0.3 * alpha + 0.45 * (cn - cn0)
    df["evstate"] = np.where(rc, "RC", "RGB")
    me, ae = np.where(rc, REL_ERR["RC"][0], REL_ERR["RGB"][0]), np.where(rc, REL_ERR["RC"][1], REL_ERR["RGB"][1])
    df["mass"], df["mass_err"] = _catalog_errors(rng, m, me, n)
    df["age"], df["age_err"] = _catalog_errors(rng, age, ae, n)
    order = rng.permutation(n)  # mix stages
    df = df.iloc[order].reset_index(drop=True)
    cols = ["teff", "logg", "feh", "alpha_fe", "c_n", "c_fe", "mass", "mass_err", "age", "age_err",
            "evstate", "stage", "mass_true", "age_true", "mass_init"]
    return df[cols]


def draw_snr(rng, n):
    """Survey-like g-band SNR: log-normal, median 60 (most 20-150), tail to ~300."""
    return np.clip(10.0 ** (1.78 + 0.28 * rng.standard_normal(n)), 10.0, 350.0)


# ============================================================== features the emulator lacks
def _band_profile(wave, head, scale, blue_limit):
    """Molecular band degrading to the blue from a head: exp(-(head - lambda)/scale)."""
    x = head - wave
    p = np.where((x >= 0) & (wave >= blue_limit), np.exp(-x / scale), 0.0)
    return _smooth_lsf(p)


def _gauss(wave, centre, sigma):
    return np.exp(-0.5 * ((wave - centre) / sigma) ** 2)


def _smooth_lsf(p):
    from scipy.ndimage import gaussian_filter1d

    return gaussian_filter1d(p, 1.025, mode="nearest")  # R = 1,800 is ~1 px sigma on this grid


@lru_cache(maxsize=1)
def feature_profiles():
    """Unit optical-depth profiles on the LAMOST grid (vacuum Angstrom)."""
    w = lamost_grid()
    cn1 = _band_profile(w, 3884.3, 22.0, 3830.0)
    cn2 = _band_profile(w, 4216.4, 35.0, 4120.0)
    ch = _smooth_lsf(_gauss(w, 4312.0, 9.0) + 0.4 * _gauss(w, 4290.0, 15.0))
    # alpha-element line windows (vacuum): Ca II K/H, Ca I 4227, Mg b, Mg I 5530, Ca II triplet
    alpha = np.zeros_like(w)
    for c, s in ((3934.8, 6), (3969.6, 6), (4227.9, 3), (5174.0, 12), (5529.9, 3), (8500.4, 4), (8544.4, 4), (8664.5, 4)):
        alpha = np.maximum(alpha, _gauss(w, c, s))
    return {"cn3883": cn1, "cn4215": cn2, "ch4300": ch, "alpha": _smooth_lsf(alpha)}


def add_abundance_features(flux, teff, logg, feh, alpha_fe, c_fe, n_fe):
    """Apply CN, CH and alpha-element strength changes to normalised flux (n, npix).

    Molecular bands add optical depth relative to the emulator's solar-scaled
    composition: tau = tau_ref(Teff, logg, [Fe/H]) x (abundance factor - 1),
    CN factor 10**([C/Fe] + [N/Fe]) (CN ~ n_C n_N), CH factor 10**[C/Fe].
    Alpha lines are scaled in optical depth: f -> f**(10**[alpha/Fe]).
    """
    p = feature_profiles()
    t = np.asarray(teff, np.float64)[:, None]
    g = np.asarray(logg, np.float64)[:, None]
    z = np.asarray(feh, np.float64)[:, None]
    cool = np.exp(-(t - 4500.0) / 450.0)
    giant = 10.0 ** (-0.15 * (g - 2.5))
    cn_fac = 10.0 ** (np.asarray(c_fe) + np.asarray(n_fe))[:, None] - 1.0
    ch_fac = 10.0 ** np.asarray(c_fe)[:, None] - 1.0
    metal = 10.0 ** (0.5 * z)
    tau = (0.25 * p["cn3883"] + 0.15 * p["cn4215"]) * (cool * giant * metal * cn_fac)
    tau = tau + 0.40 * p["ch4300"] * (np.exp(-(t - 4500.0) / 1200.0) * metal * ch_fac)
    f = np.clip(flux, 1e-3, None)
    f = f ** (1.0 + p["alpha"] * (10.0 ** np.asarray(alpha_fe)[:, None] - 1.0))
    out = f * np.exp(-tau)
    # weakening a band cannot lift the flux above the continuum
    return np.minimum(out, np.maximum(f, 1.0)).astype(np.float32)


# ============================================================== instrument
def throughput(wave):
    """Relative LAMOST-like throughput (blue and red arms joined by a dichroic near 5,900 A)."""
    w = np.asarray(wave)
    blue = np.exp(-0.5 * ((w - 4900.0) / 900.0) ** 2)
    red = np.exp(-0.5 * ((w - 7200.0) / 1500.0) ** 2)
    join = 1.0 / (1.0 + np.exp(-(w - 5900.0) / 25.0))
    return 0.08 + (1 - join) * blue + join * 0.9 * red


def instrument_response(wave):
    """Residual relative flux calibration common to all stars (1 = perfect).

    Measured on the real B6212 DR1 giants and subgiants (observed / model
    continuum, median of 21 stars): within 3 % of 1 from 4,000 to 9,000 A,
    but about 25 % high below 3,900 A (blue-end calibration).
    """
    w = np.asarray(wave, dtype=np.float64)
    return 1.0 + 0.25 / (1.0 + np.exp((w - 3900.0) / 30.0))


def ccm_extinction(wave, rv: float = 3.1):
    """A_lambda / A_V of Cardelli, Clayton & Mathis (1989), optical and near-IR branches."""
    x = 1e4 / np.asarray(wave, dtype=np.float64)  # inverse microns
    y = x - 1.82
    a = np.where(x >= 1.1, 1 + 0.17699 * y - 0.50447 * y ** 2 - 0.02427 * y ** 3 + 0.72085 * y ** 4
                 + 0.01979 * y ** 5 - 0.77530 * y ** 6 + 0.32999 * y ** 7, 0.574 * x ** 1.61)
    b = np.where(x >= 1.1, 1.41338 * y + 2.28305 * y ** 2 + 1.07233 * y ** 3 - 5.38434 * y ** 4
                 - 0.62251 * y ** 5 + 5.30260 * y ** 6 - 2.09002 * y ** 7, -0.527 * x ** 1.61)
    return a + b / rv


# ============================================================== spectra
@dataclass
class SimulatedSpectra:
    """Simulated spectra on one wavelength grid with their labels (all SIMULATED)."""

    wavelength: np.ndarray
    flux: np.ndarray  # (n, npix) float32, observed frame, noisy
    ivar: np.ndarray
    and_mask: np.ndarray
    or_mask: np.ndarray
    labels: pd.DataFrame
    model: np.ndarray | None = field(default=None, repr=False)  # noise-free normalised rest-frame flux

    def __len__(self):
        return len(self.labels)

    def spectrum(self, i: int) -> Spectrum:
        row = self.labels.iloc[i]
        snr = {b: float(row[f"snr_{b}"]) for b in "ugriz"}
        meta = SpectrumMeta(obsid=int(row.obsid), designation=str(row.designation), ra=float(row.ra), dec=float(row.dec),
                            objclass="STAR", subclass=str(row.get("subclass", "K0")), z=float(row.z), z_err=float(row.z_err),
                            snr=snr, data_release="DR7", header={"TSOURCE": "rgbkit.simulate", "OBJTYPE": "SIMULATED"})
        return Spectrum(self.wavelength, self.flux[i], self.ivar[i], self.and_mask[i], self.or_mask[i], meta)

    def spectra(self):
        return [self.spectrum(i) for i in range(len(self))]

    def write_fits(self, folder, layout: str = "dr7", progress: bool = True, gzip: bool = False) -> list[Path]:
        """Write each spectrum as a LAMOST FITS file (``layout`` 'dr7' image or 'dr9' table)."""
        from tqdm.auto import tqdm

        from .io.lamost import write_lamost

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for i in tqdm(range(len(self)), desc="writing FITS", disable=not progress):
            name = f"spec-sim-{int(self.labels.obsid.iat[i])}.fits" + (".gz" if gzip else "")
            paths.append(write_lamost(self.spectrum(i), folder / name, layout=layout))
        return paths


def designation(ra, dec) -> list[str]:
    """LAMOST-style designations Jhhmmss.ss+ddmmss.s."""
    out = []
    for r, d in zip(np.atleast_1d(ra), np.atleast_1d(dec)):
        h = r / 15.0
        hh, mm = int(h), int((h % 1) * 60)
        ss = ((h * 60) % 1) * 60
        sgn = "+" if d >= 0 else "-"
        ad = abs(d)
        dd, dm = int(ad), int((ad % 1) * 60)
        ds = ((ad * 60) % 1) * 60
        out.append(f"J{hh:02d}{mm:02d}{min(ss, 59.99):05.2f}{sgn}{dd:02d}{dm:02d}{min(ds, 59.9):04.1f}")
    return out


BAND_EDGES = {"u": (3700, 4000), "g": (4000, 5500), "r": (5500, 6900), "i": (6900, 8500), "z": (8500, 9100)}


def _shift(flux, z, dlog):
    """Shift rest-frame spectra on a log grid to the observed frame (linear interpolation)."""
    n, npix = flux.shape
    pos = np.arange(npix)[None, :] - (np.log10(1.0 + z) / dlog)[:, None]
    i0 = np.clip(np.floor(pos).astype(np.int64), 0, npix - 2)
    fr = np.clip(pos - i0, 0.0, 1.0).astype(np.float32)
    a = np.take_along_axis(flux, i0, axis=1)
    b = np.take_along_axis(flux, i0 + 1, axis=1)
    return a * (1 - fr) + b * fr


def model_flux(labels: pd.DataFrame) -> np.ndarray:
    """Noise-free continuum-normalised rest-frame flux for label rows (n, 3909)."""
    em = load_emulator()
    t, g, z = (labels[k].to_numpy(np.float64) for k in ("teff", "logg", "feh"))
    f = em.normalised_flux(t, g, z)
    a = labels["alpha_fe"].to_numpy(np.float64) if "alpha_fe" in labels else np.zeros(len(labels))
    cfe = labels["c_fe"].to_numpy(np.float64) if "c_fe" in labels else np.zeros(len(labels))
    cn = labels["c_n"].to_numpy(np.float64) if "c_n" in labels else np.zeros(len(labels))
    return add_abundance_features(f, t, g, z, a, cfe, cfe - cn)


def _simulate_chunk(lab: pd.DataFrame, rng, options) -> dict:
    em = load_emulator()
    w = em.wavelength
    n, npix = len(lab), w.size
    norm = model_flux(lab)
    cont = em.continuum(lab.teff.to_numpy(), lab.logg.to_numpy(), lab.feh.to_numpy())
    x = (np.log10(w) - np.log10(w).mean()) / np.ptp(np.log10(w)) * 2.0
    coeffs = options["wobble"] * rng.standard_normal((n, 3))
    wobble = np.exp(coeffs[:, :1] * x + coeffs[:, 1:2] * (1.5 * x ** 2 - 0.5) + coeffs[:, 2:3] * (2.5 * x ** 3 - 1.5 * x))
    # the two arms are calibrated separately: a small per-star step at the join
    step = 1.0 + options["arm_step"] * rng.standard_normal((n, 1))
    join = 1.0 / (1.0 + np.exp(-(w - 5900.0) / 25.0))
    arm = 1.0 + (step - 1.0) * join
    scale = 10.0 ** rng.uniform(1.5, 3.0, (n, 1))
    # interstellar reddening (Kepler-field-like E(B-V)), CCM89 with R_V = 3.1
    ebv = lab["ebv"].to_numpy()[:, None]
    redden = 10.0 ** (-0.4 * 3.1 * ebv * ccm_extinction(w)[None, :])
    true_rest = norm * cont * instrument_response(w)[None, :]
    true_rest = true_rest * redden / np.median(redden, axis=1, keepdims=True)
    z = lab.z.to_numpy()
    true_obs = _shift(true_rest.astype(np.float32), z, 1e-4) * (wobble * arm * scale).astype(np.float32)
    # photon-like noise: per-pixel SNR ~ sqrt(counts), counts ~ flux x throughput
    counts = np.clip(true_obs / scale, 1e-4, None) * throughput(w)[None, :]
    g = (w > BAND_EDGES["g"][0]) & (w < BAND_EDGES["g"][1])
    k = lab.snr.to_numpy()[:, None] / np.median(np.sqrt(counts[:, g]), axis=1, keepdims=True)
    snr_pix = (k * np.sqrt(counts)).astype(np.float32)
    sigma = true_obs / snr_pix
    flux = (true_obs + sigma * rng.standard_normal((n, npix)).astype(np.float32)).astype(np.float32)
    ivar = (1.0 / sigma ** 2).astype(np.float32)
    and_mask = np.zeros((n, npix), np.int32)
    or_mask = np.zeros((n, npix), np.int32)
    # first pixels often have zero ivar in real files
    nfirst = rng.integers(0, 8, n)
    bad_first = np.arange(npix)[None, :] < nfirst[:, None]
    # occasional bad pixels (cosmics, bad columns)
    bad = bad_first | (rng.random((n, npix)) < options["bad_pixel_rate"])
    ivar[bad] = 0.0
    and_mask[bad] |= 1 << 22  # a "bad pixel" style bit
    or_mask[bad] |= 1 << 22
    # a few percent of spectra miss a window (zero flux), e.g. a dead CCD region
    gap = rng.random(n) < options["gap_fraction"]
    for i in np.flatnonzero(gap):
        if rng.random() < 0.6:
            lo, hi = 6300.0, 6850.0
        else:
            lo = rng.uniform(4300, 8200)
            hi = lo + rng.uniform(250, 600)
        m = (w >= lo) & (w <= hi)
        flux[i, m] = 0.0
        ivar[i, m] = 0.0
        or_mask[i, m] |= 1 << 23
        and_mask[i, m] |= 1 << 23
    meas = flux * np.sqrt(ivar)
    snr_cols = {}
    for b, (lo, hi) in BAND_EDGES.items():
        m = (w >= lo) & (w < hi)
        v = np.where(ivar[:, m] > 0, meas[:, m], np.nan)
        snr_cols[f"snr_{b}"] = np.nan_to_num(np.nanmedian(v, axis=1), nan=0.0)
    return dict(flux=flux, ivar=ivar, and_mask=and_mask, or_mask=or_mask, model=norm, gap=gap, **snr_cols)


DEFAULT_OPTIONS = {"wobble": 0.03, "arm_step": 0.02, "bad_pixel_rate": 5e-4, "gap_fraction": 0.03, "rv_sigma": 35.0,
                   "ebv_mean": 0.1}


def simulate_spectra(labels: pd.DataFrame, seed: int = 0, keep_model: bool = False, progress: bool = False,
                     obsid_start: int = 900_000_000, **options) -> SimulatedSpectra:
    """Simulate LAMOST-like spectra for label rows (teff, logg, feh; alpha_fe, c_n, c_fe optional).

    Adds observation columns to a copy of ``labels``: obsid, designation, ra,
    dec, z, z_err, rv, snr (requested g-band SNR; kept if given), snr_u..snr_z
    (measured), has_gap. Deterministic for a given ``seed``.
    """
    from tqdm.auto import tqdm

    opts = {**DEFAULT_OPTIONS, **options}
    unknown = set(opts) - set(DEFAULT_OPTIONS)
    if unknown:
        raise TypeError(f"unknown simulation options {sorted(unknown)}; known: {sorted(DEFAULT_OPTIONS)}")
    missing = [c for c in ("teff", "logg", "feh") if c not in labels]
    if missing:
        raise ValueError(f"labels lack column(s) {missing}")
    lab = labels.reset_index(drop=True).copy()
    n = len(lab)
    rng = np.random.default_rng([int(seed), 202])
    if "snr" not in lab:
        lab["snr"] = draw_snr(rng, n)
    if "obsid" not in lab:
        lab["obsid"] = obsid_start + np.arange(n)
    if "ra" not in lab or "dec" not in lab:
        lab["ra"] = rng.uniform(280.0, 300.0, n)  # Kepler-field-like coordinates
        lab["dec"] = rng.uniform(36.5, 52.0, n)
    if "designation" not in lab:
        lab["designation"] = designation(lab.ra.to_numpy(), lab.dec.to_numpy())
    if "rv" not in lab:
        lab["rv"] = -5.0 + opts["rv_sigma"] * rng.standard_normal(n)
    if "ebv" not in lab:
        lab["ebv"] = np.clip(rng.exponential(opts["ebv_mean"], n), 0.0, 0.6)
    lab["z"] = lab.rv / C_KMS
    lab["z_err"] = (2.0 + 200.0 / lab.snr) / C_KMS
    w = load_emulator().wavelength
    out = {k: [] for k in ("flux", "ivar", "and_mask", "or_mask", "model", "gap", *[f"snr_{b}" for b in "ugriz"])}
    starts = range(0, n, CHUNK)
    for c, s in enumerate(tqdm(starts, desc="simulating", disable=not progress, unit="chunk")):
        part = _simulate_chunk(lab.iloc[s:s + CHUNK], np.random.default_rng([int(seed), 303, c]), opts)
        for k in out:
            out[k].append(part[k])
    cat = {k: np.concatenate(v) if v else np.zeros((0, w.size), np.float32) for k, v in out.items()}
    for b in "ugriz":
        lab[f"snr_{b}"] = cat[f"snr_{b}"]
    lab["has_gap"] = cat["gap"].astype(bool)
    return SimulatedSpectra(w, cat["flux"], cat["ivar"], cat["and_mask"], cat["or_mask"], lab,
                            cat["model"] if keep_model else None)


def simulate_training_set(n_rgb: int = 3352, n_subgiant: int = 188, seed: int = 0, **kw) -> SimulatedSpectra:
    """The paper's training-set look: 3,352 RGB + 188 subgiant/turn-off stars (3,540)."""
    return simulate_spectra(draw_labels(n_rgb, n_subgiant, 0, seed=seed), seed=seed, **kw)


# ============================================================== realism check against observed spectra
def smooth_normalise(wavelength, flux, ivar, width: int = 151):
    """Divide by a smooth pseudo-continuum: running median (``width`` px) then Gaussian smoothing.

    Applied identically to observed and simulated spectra so they compare
    like with like; returns (normalised flux, normalised ivar).
    """
    from scipy.ndimage import gaussian_filter1d, median_filter

    f = np.asarray(flux, np.float64)
    good = (np.asarray(ivar) > 0) & (f > 0)
    filled = np.interp(np.arange(f.size), np.flatnonzero(good), f[good]) if good.any() else f
    cont = gaussian_filter1d(median_filter(filled, width, mode="nearest"), width / 5, mode="nearest")
    cont = np.where(cont > 0, cont, np.nan)
    return f / cont, np.asarray(ivar, np.float64) * cont ** 2


TELLURIC = ((6860.0, 6960.0), (7160.0, 7340.0), (7590.0, 7700.0), (8130.0, 8350.0))  # vacuum-ish, Angstrom


def compare_with_observed(spectrum: Spectrum, teff: float, logg: float, feh: float, alpha_fe: float = 0.0,
                          c_n: float | None = None, c_fe: float | None = None, seed: int = 0,
                          wave_range=(3900.0, 8900.0), mask_telluric: bool = True) -> dict:
    """Simulate one observed star at its labels and SNR and compare after the same normalisation.

    Returns a dict with wavelength, observed / simulated (noisy) / model
    (noise-free) normalised flux, the pixel mask used and ``chi2``: the reduced
    chi-square of observed against the noise-free model with the observed
    inverse variance. [C/N] and [C/Fe] default to the dredged-up values for a
    1.2 Msun giant.
    """
    if c_n is None:
        c_n = float(cn_after_dredge_up(1.2, feh)) if logg < 3.5 else 0.0
    if c_fe is None:
        c_fe = 0.3 * alpha_fe + 0.45 * c_n
    z = spectrum.meta.z if np.isfinite(spectrum.meta.z) else 0.0
    snr = spectrum.snr_g if np.isfinite(spectrum.snr_g) and spectrum.snr_g > 0 else 50.0
    lab = pd.DataFrame({"teff": [teff], "logg": [logg], "feh": [feh], "alpha_fe": [alpha_fe], "c_n": [c_n],
                        "c_fe": [c_fe], "snr": [snr], "rv": [z * C_KMS]})
    s = simulate_spectra(lab, seed=seed, keep_model=True, wobble=0.0, arm_step=0.0, bad_pixel_rate=0.0, gap_fraction=0.0,
                         ebv_mean=0.0)
    em = load_emulator()
    model_obs = _shift(s.model, np.array([z]), 1e-4)[0] * em.continuum([teff], [logg], [feh])[0] * instrument_response(em.wavelength)
    w = spectrum.wavelength
    sim_f = np.interp(w, s.wavelength, s.flux[0])
    sim_iv = np.interp(w, s.wavelength, s.ivar[0])
    mod_f = np.interp(w, s.wavelength, model_obs)
    obs_n, obs_iv = smooth_normalise(w, spectrum.flux, spectrum.ivar)
    sim_n, _ = smooth_normalise(w, sim_f, sim_iv)
    mod_n, _ = smooth_normalise(w, mod_f, np.ones_like(mod_f))
    mask = (w >= wave_range[0]) & (w <= wave_range[1]) & (spectrum.ivar > 0) & (spectrum.flux > 0) & np.isfinite(obs_n)
    if mask_telluric:
        for lo, hi in TELLURIC:
            mask &= ~((w >= lo) & (w <= hi))
    r = (obs_n - mod_n) * np.sqrt(obs_iv)
    chi2 = float(np.sum(r[mask] ** 2) / max(mask.sum() - 3, 1))
    return {"wavelength": w, "observed": obs_n, "simulated": sim_n, "model": mod_n, "mask": mask, "chi2": chi2,
            "name": spectrum.meta.designation or str(spectrum.meta.obsid), "teff": teff, "logg": logg, "feh": feh, "snr": snr}
