"""Bundled demo datasets. THE DEMO DATA ARE SIMULATED, not observed.

Why ~410 lines in one module: every loader (demo, RGB/RC, clusters, survey,
Kepler stand-in) shares one cache-and-materialise path and one split rule.

They come from :mod:`rgbkit.simulate` (a physically argued LAMOST-like
simulator) so that training, the RGB/RC classifier, cluster checks, the
dashboard and the notebooks run with no download. Numbers obtained on them
say nothing about real stars. For science, use real LAMOST spectra with
asteroseismic labels: e.g. download the LAMOST DR spectra of the Wu et al.
(2018) LAMOST-Kepler red giants and cross-match them to the catalog with
:func:`rgbkit.io.labels.read_labels` and :func:`rgbkit.io.labels.crossmatch`.

Each labelled set is generated once: written as real LAMOST-layout FITS
files plus a label CSV into the cache directory (``$RGBKIT_CACHE`` or
``~/.cache/rgbkit``), read back once through :func:`rgbkit.io.lamost.read_many`
(the same reader as real data), and the arrays are cached as ``.npz``
(keyed by a hash of the simulator version, seed and sizes) so later calls
take about a second.

Splits of :func:`load_demo`, stored in the ``split`` column and fixed:

* "train" and "validation": the paper's 8:2 random split of the 3,540-star
  set (seeded permutation, independent of the simulation seed's noise).
  Training uses "train"; early stopping and the spread calibration use
  "validation" only.
* "test": an independent set of 30% as many stars again (1,062 by default),
  drawn and simulated with its own seed (``TEST_SEED_OFFSET + seed``) and
  appended after the other rows. Nothing is fitted or chosen on it; every
  metric rgbkit reports (model cards, benchmarks) is measured on it.

``train_idx`` / ``val_idx`` / ``test_idx`` (or ``index(split)``) give the row
indices. The first 3,540 rows, and their split, are the same as before the
test set was added.

:func:`load_calibration` is a fourth set, split "calibration": 4,995 stars in
the demo's mix (4,730 RGB + 265 subgiants), drawn and simulated with their own
seed (``CALIBRATION_SEED_OFFSET + seed``). It fits the shipped ensembles'
de-biasing relation (:mod:`rgbkit.debias`) and nothing else; no metric is
quoted on it. Why a set of its own: the relation is a median per label bin,
and fitted on the 692 validation stars it sat 0.045 rms off in log age per
true-age bin on independent stars (0.052 even with the true labels), enough
to move a 13-star cluster's age by ~10%; ~4,800 stars bring that to 0.030
(benchmarks/results/debias_calibration.md).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from . import simulate as sim
from .config import cache_dir  # noqa: F401  (rgbkit.datasets.cache_dir, as before)

LABEL_COLUMNS = ["obsid", "designation", "teff", "logg", "feh", "alpha_fe", "c_n", "mass", "mass_err",
                 "age", "age_err", "evstate", "snr", "mass_true", "age_true"]
SPLIT_SEED = 2022
TEST_SEED_OFFSET = 7001
"""The test stars of ``load_demo(seed)`` are drawn and simulated with seed ``TEST_SEED_OFFSET + seed``."""
CALIBRATION_SEED_OFFSET = 9001
"""The calibration stars of ``load_calibration(seed)`` are drawn and simulated with this + ``seed``."""
TEST_FRACTION = 0.3
"""Size of the test set relative to the train + validation set."""
PAPER_RGB_RC = {"train": (1467, 3599), "validation": (878, 856), "test": (2575, 807)}
CLUSTERS = {  # name: (stand-in for, age Gyr, [Fe/H], RV km/s, ra, dec, n_rgb, n_rc, n_field)
    # RGB member counts are the paper's (Table 1: 36, 15, 22)
    "M67-like": ("M67", 4.0, 0.0, 34.0, 132.846, 11.814, 36, 10, 20),
    "Berkeley32-like": ("Berkeley 32", 6.0, -0.3, 106.0, 104.53, 6.43, 15, 8, 15),
    "NGC2420-like": ("NGC 2420", 3.3, -0.2, 74.0, 114.60, 21.57, 22, 8, 15),
}


@dataclass
class DemoData:
    """A simulated labelled dataset (SIMULATED spectra, see module docstring).

    wavelength : (npix,) vacuum Angstrom, the LAMOST grid (observed frame).
    flux, ivar : (n, npix) float32 as read from the FITS files.
    labels : one row per spectrum: ``LABEL_COLUMNS`` plus extras (split,
        stage, c_fe, mass_init, ra, dec, z, snr_u..snr_z, has_gap, path, ...).
    """

    name: str
    wavelength: np.ndarray
    flux: np.ndarray
    ivar: np.ndarray
    labels: pd.DataFrame
    folder: Path | None = None
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        return (f"DemoData({self.name!r}, SIMULATED, {len(self)} spectra x {self.wavelength.size} px, "
                f"splits={self.labels['split'].value_counts().to_dict() if 'split' in self.labels else None})")

    @property
    def z(self) -> np.ndarray:
        return self.labels["z"].to_numpy()

    def index(self, split: str) -> np.ndarray:
        """Row indices of a split ("train", "validation", "test")."""
        if "split" not in self.labels:
            raise KeyError(f"{self.name} has no split column")
        known = set(self.labels["split"].unique())
        if split not in known:
            raise KeyError(f"unknown split {split!r}; this set has {sorted(known)}")
        return np.flatnonzero(self.labels["split"].to_numpy() == split)

    @property
    def train_idx(self) -> np.ndarray:
        return self.index("train")

    @property
    def val_idx(self) -> np.ndarray:
        return self.index("validation")

    @property
    def test_idx(self) -> np.ndarray:
        return self.index("test")

    def subset(self, idx) -> "DemoData":
        idx = np.asarray(idx)
        return DemoData(self.name, self.wavelength, self.flux[idx], self.ivar[idx],
                        self.labels.iloc[idx].reset_index(drop=True), self.folder, dict(self.info))

    @property
    def paths(self) -> list[Path]:
        """The FITS files these spectra were read from (in the cache)."""
        return [Path(p) for p in self.labels["path"]]

    def spectra(self, idx=None):
        """Spectrum objects read from the FITS files (lazily: only the rows asked for)."""
        from .io.lamost import read_lamost

        rows = range(len(self)) if idx is None else np.atleast_1d(idx)
        return [read_lamost(self.labels["path"].iat[int(i)]) for i in rows]


# ------------------------------------------------------------------ caching
def _key(kind: str, params: dict) -> str:
    # the emulator and the simulator's source are part of the key: any change regenerates
    emu = (sim.DATA_DIR / "lamost_emulator.npz").read_bytes()
    src = Path(sim.__file__).read_bytes()
    blob = json.dumps({"kind": kind, "sim": sim.SIM_VERSION, "emu": hashlib.sha256(emu).hexdigest()[:16],
                       "src": hashlib.sha256(src).hexdigest()[:16], **params},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _materialise(kind: str, params: dict, make, layout: str = "dr7", progress: bool = True,
                 refresh: bool = False) -> DemoData:
    """Generate (once) FITS + labels in the cache, read them back, cache arrays as npz."""
    from .io.lamost import read_many

    folder = cache_dir() / f"{kind}-{_key(kind, params)}"
    arrays, labels_csv = folder / "arrays.npz", folder / "labels.csv"
    if refresh and folder.exists():
        shutil.rmtree(folder)
    if arrays.exists() and labels_csv.exists():
        with np.load(arrays, allow_pickle=False) as d:
            wave, flux, ivar = d["wavelength"], d["flux"], d["ivar"]
        labels = pd.read_csv(labels_csv, dtype={"designation": str})
        labels["path"] = [str(folder / "fits" / p) for p in labels["file"]]
        return DemoData(kind, wave, flux, ivar, labels, folder, params)

    s = make()
    tmp = folder.with_name(folder.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    paths = s.write_fits(tmp / "fits", layout=layout, progress=progress)
    spectra, refused = read_many(paths, progress=progress)
    if refused:
        raise RuntimeError(f"simulated files refused by the reader: {refused[:3]}")
    by_obsid = {sp.meta.obsid: sp for sp in spectra}
    order = [by_obsid[int(o)] for o in s.labels["obsid"]]
    wave = order[0].wavelength
    if not np.allclose(wave, s.wavelength, rtol=1e-6):
        raise RuntimeError("wavelength grid changed on the FITS round trip")
    flux = np.stack([sp.flux for sp in order]).astype(np.float32)
    ivar = np.stack([sp.ivar for sp in order]).astype(np.float32)
    labels = s.labels.copy()
    labels["file"] = [p.name for p in paths]
    np.savez_compressed(tmp / "arrays.npz", wavelength=s.wavelength, flux=flux, ivar=ivar)
    labels.to_csv(tmp / "labels.csv", index=False)
    (tmp / "README.txt").write_text(
        f"SIMULATED LAMOST-like spectra made by rgbkit.simulate ({kind}, params {json.dumps(params, default=str)}).\n"
        "Not observed data. Safe to delete: regenerated on demand.\n")
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)
    return _materialise(kind, params, make, layout, progress=False)


def _ordered(labels: pd.DataFrame) -> pd.DataFrame:
    first = [c for c in LABEL_COLUMNS if c in labels]
    return labels[first + [c for c in labels.columns if c not in first]]


def _split_8_2(n: int) -> np.ndarray:
    rng = np.random.default_rng(SPLIT_SEED)
    split = np.full(n, "train", dtype=object)
    split[rng.permutation(n)[: int(round(0.2 * n))]] = "validation"
    return split


# ------------------------------------------------------------------ public loaders
def load_demo(seed: int = 0, n_rgb: int = 3352, n_subgiant: int = 188, layout: str = "dr7",
              progress: bool = True, refresh: bool = False, test: bool = True) -> DemoData:
    """The SIMULATED labelled set: 3,540 stars (3,352 RGB + 188 subgiant/turn-off) split 8:2
    into train/validation, plus an independent test set (1,062 stars, own seed).

    Returns :class:`DemoData`; ``labels['split']`` is "train", "validation"
    or "test" (``.train_idx``, ``.val_idx``, ``.test_idx``); see the module
    docstring for what each split is used for. ``test=False`` leaves the
    test stars out. First call writes FITS files to the cache and takes a
    few tens of seconds; later calls load the cached arrays.
    """
    params = {"seed": seed, "n_rgb": n_rgb, "n_subgiant": n_subgiant, "layout": layout}

    def make():
        s = sim.simulate_spectra(sim.draw_labels(n_rgb, n_subgiant, 0, seed=seed), seed=seed, progress=progress)
        s.labels["split"] = _split_8_2(len(s.labels))
        s.labels = _ordered(s.labels)
        return s

    base = _materialise("demo", params, make, layout, progress, refresh)
    if not test:
        return base
    t_seed = TEST_SEED_OFFSET + seed
    t_rgb, t_sub = round(TEST_FRACTION * n_rgb), round(TEST_FRACTION * n_subgiant)
    t_params = {"seed": t_seed, "n_rgb": t_rgb, "n_subgiant": t_sub, "layout": layout}

    def make_test():
        s = sim.simulate_spectra(sim.draw_labels(t_rgb, t_sub, 0, seed=t_seed), seed=t_seed, progress=progress,
                                 obsid_start=940_000_000)
        s.labels["split"] = "test"
        s.labels = _ordered(s.labels)
        return s

    tst = _materialise("demotest", t_params, make_test, layout, progress, refresh)
    labels = pd.concat([base.labels, tst.labels], ignore_index=True)
    return DemoData("demo", base.wavelength, np.concatenate([base.flux, tst.flux]),
                    np.concatenate([base.ivar, tst.ivar]), labels, base.folder,
                    {**params, "test": t_params})


def load_calibration(seed: int = 0, n_rgb: int = 4730, n_subgiant: int = 265, layout: str = "dr7",
                     progress: bool = True, refresh: bool = False) -> DemoData:
    """The SIMULATED calibration set of the shipped ensembles' de-biasing (split "calibration", own seed).

    The demo's mix of stars (RGB and subgiants, 17.8 : 1) and label noise,
    4,995 stars by default; see the module docstring for why it exists.
    """
    c_seed = CALIBRATION_SEED_OFFSET + seed
    params = {"seed": c_seed, "n_rgb": n_rgb, "n_subgiant": n_subgiant, "layout": layout}

    def make():
        s = sim.simulate_spectra(sim.draw_labels(n_rgb, n_subgiant, 0, seed=c_seed), seed=c_seed,
                                 progress=progress, obsid_start=950_000_000)
        s.labels["split"] = "calibration"
        s.labels = _ordered(s.labels)
        return s

    return _materialise("democal", params, make, layout, progress, refresh)


def load_rgb_rc(scale: float = 0.5, seed: int = 1, layout: str = "dr7", progress: bool = True,
                refresh: bool = False) -> DemoData:
    """SIMULATED RGB/RC set with the paper's proportions, ``scale`` x its sizes.

    Paper (scale=1): train 1,467 RGB / 3,599 RC, validation 878 / 856,
    independent test 2,575 / 807. Default scale 0.5 (5,091 spectra) keeps
    first-time generation to about a minute; ratios are kept exactly up to
    rounding. ``labels['split']`` is "train", "validation" or "test";
    ``labels['evstate']`` is "RGB" or "RC".
    """
    if not 0 < scale <= 1:
        raise ValueError(f"scale must be in (0, 1], not {scale}")
    sizes = {k: (max(1, round(a * scale)), max(1, round(b * scale))) for k, (a, b) in PAPER_RGB_RC.items()}
    params = {"seed": seed, "sizes": sizes, "layout": layout}

    def make():
        parts = []
        for i, (split, (n_rgb, n_rc)) in enumerate(sizes.items()):
            lab = sim.draw_labels(n_rgb, 0, n_rc, seed=seed * 1000 + i, logg_range=(1.75, 3.5))
            lab["split"] = split
            parts.append(lab)
        lab = pd.concat(parts, ignore_index=True)
        s = sim.simulate_spectra(lab, seed=seed, progress=progress, obsid_start=910_000_000)
        s.labels = _ordered(s.labels)
        return s

    return _materialise("rgbrc", params, make, layout, progress, refresh)


def _cluster_labels(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng([seed, 7])
    r = sim.AGE_RELATION
    parts = []
    for name, (real, age, feh, rv, ra, dec, n_rgb, n_rc, n_field) in CLUSTERS.items():
        f = feh + 0.03 * rng.standard_normal(n_rgb + n_rc)
        a = np.clip(0.02 - 0.1 * f + 0.02 * rng.standard_normal(f.size), -0.05, 0.3)
        mh = sim.metallicity_mh(f, a)
        # giants of one age share the initial mass that the age relation inverts to
        m_init = 10.0 ** ((np.log10(age) - r["a"] - r["c_mh"] * mh) / r["b"])
        stage = np.array(["RGB"] * n_rgb + ["RC"] * n_rc)
        rc = stage == "RC"
        logg = np.where(rc, rng.normal(2.45, 0.06, f.size), 1.8 + 1.7 * rng.random(f.size) ** 0.7)
        mass = np.where(rc, m_init - 0.1 * np.clip((2.0 - m_init) / 0.8, 0, 1), m_init)
        teff = np.where(rc, sim.RC_TEFF["t0"] + sim.RC_TEFF["tM"] * (mass - 1.2) + sim.RC_TEFF["tZ"] * f,
                        sim.rgb_teff(logg, mass, f)) + 40.0 * rng.standard_normal(f.size)
        # the same mixing physics as the field giants of simulate.draw_labels (an earlier
        # version used c_fe = 0.3 a + 0.3 cn: ~0.05 dex richer in carbon than any field giant
        # of the same age, which the networks read as ~20% older)
        extra = 0.1 * np.clip((2.3 - logg) / 0.5, 0, 1) * np.clip((1.8 - mass) / 0.6, 0, 1)
        cn0 = 0.05 * a
        cn = sim.cn_after_dredge_up(m_init, f) - np.where(rc, 0.08, extra) + 0.04 * rng.standard_normal(f.size)
        mem = pd.DataFrame({"teff": teff, "logg": logg, "feh": f, "alpha_fe": a, "c_n": cn,
                            "c_fe": 0.3 * a + 0.45 * (cn - cn0),
                            "evstate": np.where(rc, "RC", "RGB"), "stage": stage, "mass_true": mass,
                            "age_true": np.where(rc, age + 0.1, age), "mass_init": m_init, "member": True,
                            "rv": rv + 1.0 * rng.standard_normal(f.size)})
        field_ = sim.draw_labels(int(n_field * 0.7), 0, n_field - int(n_field * 0.7), seed=seed * 100 + len(parts) + 50,
                                 logg_range=(1.75, 3.5))
        field_ = field_.drop(columns=["mass", "mass_err", "age", "age_err"])
        field_["member"] = False
        field_["rv"] = rv + 40.0 * rng.standard_normal(len(field_))
        both = pd.concat([mem, field_], ignore_index=True)
        both["cluster"], both["stands_for"] = name, real
        both["cluster_age"], both["cluster_feh"] = age, feh
        both["ra"] = ra + 0.15 * rng.standard_normal(len(both))
        both["dec"] = dec + 0.15 * rng.standard_normal(len(both))
        parts.append(both)
    return pd.concat(parts, ignore_index=True)


def load_clusters(seed: int = 3, layout: str = "dr7", progress: bool = True, refresh: bool = False) -> DemoData:
    """Three SIMULATED open clusters with field contaminants.

    Stand-ins for M67 (4.0 Gyr, [Fe/H] 0.0), Berkeley 32 (6.0 Gyr, -0.3) and
    NGC 2420 (3.3 Gyr, -0.2): members on the giant branch and in the clump
    (``member`` True, ``age_true`` the cluster age) plus field giants at
    other ages and radial velocities (``member`` False). Columns ``cluster``,
    ``stands_for``, ``cluster_age``, ``cluster_feh`` say which is which.
    """
    params = {"seed": seed, "clusters": CLUSTERS, "layout": layout, "members": 2}

    def make():
        lab = _cluster_labels(seed)
        s = sim.simulate_spectra(lab, seed=seed, progress=progress, obsid_start=920_000_000)
        s.labels = _ordered(s.labels)
        return s

    return _materialise("clusters", params, make, layout, progress, refresh)


def write_kepler_standin(folder, n: int = 200, seed: int = 0, **kwargs):
    """SIMULATED LAMOST files of real APOKASC-2 Kepler giants plus label tables; see :mod:`rgbkit.standin`."""
    from .standin import write_kepler_standin as write

    return write(folder, n=n, seed=seed, **kwargs)


def survey_labels(n: int, seed: int = 0) -> pd.DataFrame:
    """Hidden truth of a SIMULATED survey: ~55 % RGB, 25 % RC, 8 % subgiants, 12 % dwarfs."""
    rng = np.random.default_rng([seed, 11])
    k = rng.multinomial(n, [0.55, 0.25, 0.08, 0.12])
    lab = sim.draw_labels(int(k[0]), int(k[2]), int(k[1]), seed=seed, logg_range=(1.75, 3.92))
    if k[3]:
        nd = int(k[3])
        dw = pd.DataFrame({"teff": rng.uniform(4300, 6800, nd), "logg": rng.uniform(4.1, 4.7, nd),
                           "feh": np.clip(rng.normal(-0.1, 0.25, nd), -1, 0.5), "alpha_fe": rng.normal(0.05, 0.04, nd),
                           "c_n": 0.0, "c_fe": 0.0, "evstate": "dwarf", "stage": "dwarf"})
        lab = pd.concat([lab, dw], ignore_index=True)
    return lab.iloc[rng.permutation(len(lab))].reset_index(drop=True)


def load_survey(n: int = 10_000, chunk_size: int = 2000, seed: int = 0, progress: bool = False) -> Iterator[sim.SimulatedSpectra]:
    """An unlabelled SIMULATED survey of ``n`` spectra, generated lazily in chunks.

    Yields :class:`rgbkit.simulate.SimulatedSpectra` chunks; the observation
    columns (obsid, designation, ra, dec, z, snr_*) are in ``.labels`` and the
    hidden truth in ``.labels`` columns prefixed ``true_``. Chunks are
    deterministic for (n, chunk_size, seed).
    """
    if n < 1 or chunk_size < 1:
        raise ValueError("n and chunk_size must be positive")
    obs_cols = ["obsid", "designation", "ra", "dec", "z", "z_err", "snr", "snr_u", "snr_g", "snr_r", "snr_i", "snr_z", "has_gap"]
    for c, start in enumerate(range(0, n, chunk_size)):
        m = min(chunk_size, n - start)
        lab = survey_labels(m, seed=seed * 100_000 + c)
        s = sim.simulate_spectra(lab, seed=seed * 100_000 + c, obsid_start=930_000_000 + start, progress=progress)
        truth = s.labels.drop(columns=[x for x in obs_cols if x in s.labels])
        s.labels = pd.concat([s.labels[obs_cols], truth.add_prefix("true_")], axis=1)
        yield s


def write_survey(folder, n: int = 1000, layout: str = "dr7", chunk_size: int = 2000, seed: int = 0,
                 gzip: bool = False, progress: bool = True) -> list[Path]:
    """Write a SIMULATED survey as LAMOST FITS files into ``folder`` (for catalog runs)."""
    paths = []
    for s in load_survey(n, chunk_size, seed):
        paths += s.write_fits(folder, layout=layout, progress=progress, gzip=gzip)
    return paths


def demo_arrays(splits=("train", "validation", "test"), progress: bool = False) -> dict:
    """The demo set preprocessed with the paper's settings, per split (SIMULATED data).

    Returns ``{split: (X, labels)}`` with ``X`` float32 ``(n, 64, 64)`` and
    ``labels`` the matching rows; spectra the preprocessing drops (e.g. the
    6300-6850 A gap) are left out. Also ``"preprocessing"``: the config used,
    ``"dropped"`` (spectra of these splits the preprocessing refused) and
    ``"n_total"`` (spectra of these splits). ``"calibration"`` among ``splits``
    adds :func:`load_calibration`'s stars.
    """
    from .preprocess import Preprocessor

    pre = Preprocessor()
    out: dict = {"preprocessing": pre.config, "dropped": 0, "n_total": 0}
    sets = [load_demo(progress=progress)] if set(splits) - {"calibration"} else []
    if "calibration" in splits:
        sets.append(load_calibration(progress=progress))
    for d in sets:
        want = np.flatnonzero(d.labels["split"].isin(list(splits)).to_numpy())
        res = pre.run(d.wavelength, d.flux[want], z=d.z[want] if pre.rest_frame else None, progress=progress)
        split = d.labels["split"].to_numpy()[want]
        for s in set(split):
            keep = (split == s) & res.ok
            out[s] = (res.X[keep], d.labels.iloc[want[keep]].reset_index(drop=True))
        out["dropped"] += int((~res.ok).sum())
        out["n_total"] += int(len(want))
    return out


def demo_training_arrays(progress: bool = True) -> dict:
    """:func:`demo_arrays` of the train and validation splits, in the older dict form.

    Returns a dict: ``X_train``, ``X_val`` (float32 (n, 64, 64)), ``labels_train``,
    ``labels_val`` (DataFrames, rows matching X), ``preprocessing`` (the
    Preprocessor config), ``dropped`` (spectra refused by preprocessing), ``n_total``.
    """
    a = demo_arrays(("train", "validation"), progress=progress)
    (Xt, lt), (Xv, lv) = a["train"], a["validation"]
    return {"X_train": Xt, "X_val": Xv, "labels_train": lt, "labels_val": lv,
            "preprocessing": a["preprocessing"], "dropped": a["dropped"], "n_total": a["n_total"]}
