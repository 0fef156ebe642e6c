"""Survey-scale catalogs: score folders of LAMOST files, resumably, locally or on Dask.

One row per input file: header metadata, preprocessing flags, spectral line
indices, Teff/logg/[Fe/H] fitted with the shipped emulator, a giant flag, P(RGB) from the classifier, age and mass (ensemble
mean, calibrated spread and 68% interval) and an out-of-domain flag with its
reason. Columns are documented in :data:`COLUMNS` (and ``docs/catalog_columns.md``);
the same text goes into every output file's metadata.

How a run is laid out on disk (``out`` is a folder)::

    parts/part-000001.parquet   rows of one chunk of input files
    parts/part-000001.json      its manifest: the input files it covers, errors
    catalog.parquet|fits|csv    all parts merged at the end
    errors.csv                  one line per file that could not be scored
    run.json                    settings, models, library version

A part is written to a temporary name and moved into place with
``os.replace``; its manifest is written the same way *after* it. On restart a
part without a manifest is discarded and the files listed in the manifests
are skipped, so a run killed at any moment resumes with no lost or
duplicated rows.

Chunks run in a local process pool (default), in this process
(``workers=0``) or on a Dask cluster (``dask="tcp://host:8786"`` or a
``distributed.Client``); each worker reads its own files and loads the
models once from their folders (safetensors, never pickles).
"""
from __future__ import annotations

import datetime as _dt
import enum
import json
import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["build_catalog", "score_spectra", "score_files", "line_indices", "DomainRules", "OOD",
           "COLUMNS", "read_catalog", "add_parsers"]

BANDS = ("u", "g", "r", "i", "z")


class OOD(enum.IntFlag):
    """Why a row is out of the models' domain (bits combine; 0 = in domain)."""

    UNREADABLE = 1  # the file could not be read
    PREPROCESS = 2  # dropped by the preprocessing (gaps, flat flux, ...)
    NOT_STAR = 4  # header CLASS is not STAR (QSO, GALAXY, Unknown)
    LOW_SNR = 8  # g-band SNR below the limit
    HOT = 16  # hotter than red giants: H-alpha EW high, SUBCLASS O/B/A/WD or fitted Teff at the emulator's top
    COOL = 32  # M type (SUBCLASS M*, dM*, sdM*) or fitted Teff at the emulator's bottom
    DWARF = 64  # fitted logg too high for a giant
    LABEL_RANGE = 128  # predicted age or mass outside the training labels' range
    HIGH_SPREAD = 256  # members disagree (relative age spread above the limit)


@dataclass
class DomainRules:
    """Thresholds of the out-of-domain checks.

    The dwarf limit applies to logg fitted together with Teff and [Fe/H]
    against the shipped emulator (:mod:`rgbkit.labelfit`); line strengths
    alone (Mg b > 4 A, the rule before) called most solar-metallicity giants
    dwarfs. 3.6 rather than the paper's 3.5 because the fit reads simulated
    giants ~0.15 dex high near the boundary; measured agreement with LASP on
    real DR1 stars and with the truth on simulated surveys is in
    ``docs/catalog_columns.md`` and ``benchmarks/results/catalog.md``.
    """

    min_snr_g: float = 15.0  # the paper's catalog cut (SNR > 15)
    hot_halpha_ew: float = 1.9  # A; EW(H-alpha) above this ~ Teff > 5,400 K
    dwarf_logg: float = 3.6  # fitted logg at or above this: DWARF
    max_rel_age_spread: float | None = None  # calibrated age std / age; None: not checked


# (line window, blue continuum, red continuum), vacuum Angstrom; Lick-style
# definitions (Worthey 1994 for Mg b, Ca4227, Na D) moved to vacuum.
INDICES = {
    "halpha": ((6557.0, 6572.0), (6535.0, 6550.0), (6580.0, 6595.0)),
    "hbeta": ((4855.0, 4870.0), (4830.0, 4848.0), (4877.0, 4892.0)),
    "mgb": ((5161.6, 5194.1), (5144.1, 5162.9), (5192.9, 5207.9)),
    "ca4227": ((4223.4, 4235.9), (4212.2, 4221.0), (4242.2, 4252.2)),
    "nad": ((5878.5, 5911.0), (5862.2, 5877.2), (5923.7, 5949.7)),
}


def line_indices(flux: np.ndarray, grid: np.ndarray) -> dict[str, np.ndarray]:
    """Equivalent widths (Angstrom, absorption positive) of :data:`INDICES`.

    ``flux`` (n, m) on the linear ``grid`` (m,); the pseudo-continuum is the
    line through the two side-band means. Vectorised over spectra.
    """
    flux = np.asarray(flux, dtype=np.float32)
    step = float(grid[1] - grid[0])
    out = {}
    with np.errstate(all="ignore"):
        for name, (line, blue, red) in INDICES.items():
            kb = (grid >= blue[0]) & (grid < blue[1])
            kr = (grid >= red[0]) & (grid < red[1])
            kl = (grid >= line[0]) & (grid < line[1])
            fb, fr = flux[:, kb].mean(1), flux[:, kr].mean(1)
            xb, xr = sum(blue) / 2, sum(red) / 2
            t = ((grid[kl] - xb) / (xr - xb)).astype(np.float32)
            cont = fb[:, None] + (fr - fb)[:, None] * t[None, :]
            ew = np.sum(1.0 - flux[:, kl] / cont, axis=1) * step
            ew[~np.isfinite(ew) | (fb <= 0) | (fr <= 0)] = np.nan
            out[name] = ew.astype(np.float32)
    return out


# ------------------------------------------------------------------ columns
COLUMNS: dict[str, tuple[str, str]] = {
    "file": ("", "path of the input FITS file (the row's unique key)"),
    "obsid": ("", "LAMOST OBSID (header; missing in DR1)"),
    "designation": ("", "LAMOST designation (header DESIG)"),
    "ra": ("deg", "right ascension (header RA)"),
    "dec": ("deg", "declination (header DEC)"),
    "objclass": ("", "LAMOST pipeline class (header CLASS: STAR, GALAXY, QSO, Unknown)"),
    "subclass": ("", "LAMOST pipeline spectral subclass (header SUBCLASS)"),
    "data_release": ("", "data release from DATA_V, e.g. DR7"),
    "kic": ("", "Kepler input catalog id from TCOMMENT, when present"),
    "z": ("", "LAMOST pipeline redshift (header Z)"),
    **{f"snr_{b}": ("", f"signal-to-noise ratio in the {b} band (header)") for b in BANDS},
    "read_ok": ("", "True when the file was read"),
    "error": ("", "why the file could not be read or scored ('' when fine)"),
    "pre_ok": ("", "True when the preprocessing kept the spectrum"),
    "pre_flags": ("", "preprocessing flag bits (rgbkit.preprocess.Flag)"),
    "pre_reason": ("", "preprocessing flags in words"),
    "ew_halpha": ("Angstrom", "equivalent width of H-alpha (6564.6 A vacuum); grows with Teff"),
    "ew_hbeta": ("Angstrom", "equivalent width of H-beta (4862.7 A)"),
    "ew_mgb": ("Angstrom", "equivalent width of the Mg b triplet (5167-5185 A); gravity sensitive"),
    "ew_ca4227": ("Angstrom", "equivalent width of Ca I 4227 A; strong in cool dwarfs"),
    "ew_nad": ("Angstrom", "equivalent width of Na D (5891/5897 A)"),
    "teff_fit": ("K", "effective temperature fitted with the shipped emulator (rgbkit.labelfit, 4,050-5,650 A); NaN when not fitted"),
    "logg_fit": ("dex", "surface gravity log10(g / cm s^-2) from the same fit; decides DWARF"),
    "feh_fit": ("dex", "[Fe/H] from the same fit (real giants: ~0.4 dex below LAMOST LASP)"),
    "giant": ("", "spectral giant flag: CLASS STAR, not hot, not M type, fitted logg below the dwarf limit"),
    "p_rgb": ("", "probability of being on the red giant branch (1 - P(red clump)), classifier ensemble mean; NaN without a classifier"),
    "p_rgb_std": ("", "spread of P(RGB) over classifier members"),
    "age": ("Gyr", "age, mean over the age ensemble's members"),
    "age_std": ("Gyr", "age uncertainty: member spread times the ensemble's calibration factor"),
    "age_std_raw": ("Gyr", "plain standard deviation of the members' ages"),
    "age_lo": ("Gyr", "lower end of the calibrated 68% interval, age - age_std (>= 0)"),
    "age_hi": ("Gyr", "upper end of the calibrated 68% interval, age + age_std"),
    "mass": ("Msun", "mass, mean over the mass ensemble's members"),
    "mass_std": ("Msun", "mass uncertainty: member spread times the calibration factor"),
    "mass_std_raw": ("Msun", "plain standard deviation of the members' masses"),
    "mass_lo": ("Msun", "lower end of the calibrated 68% interval (>= 0)"),
    "mass_hi": ("Msun", "upper end of the calibrated 68% interval"),
    "ood": ("", "True when the spectrum is outside the models' domain: do not trust age/mass/p_rgb"),
    "ood_flags": ("", "out-of-domain bits (rgbkit.catalog.OOD)"),
    "ood_reason": ("", "out-of-domain reasons in words ('' when in domain)"),
}


def column_docs_markdown() -> str:
    """The column table as Markdown (what docs/catalog_columns.md holds)."""
    lines = ["| column | unit | meaning |", "| --- | --- | --- |"]
    lines += [f"| `{k}` | {u or '-'} | {m} |" for k, (u, m) in COLUMNS.items()]
    lines += ["", "Out-of-domain bits (`ood_flags`):", ""]
    lines += [f"* `{f.value}` {f.name}" for f in OOD]
    return "\n".join(lines)


# ---------------------------------------------------------------- models
@dataclass
class ModelRef:
    """How a worker finds a model: a class with ``load(folder)`` and a folder."""

    cls: str
    folder: str

    def load(self):
        import importlib

        mod, _, name = self.cls.rpartition(".")
        return getattr(importlib.import_module(mod), name).load(self.folder)


_LOADED: dict = {}


def _resolve(model):
    """A model object from an object, a ModelRef or None (cached per process)."""
    if model is None or not isinstance(model, ModelRef):
        return model
    key = (model.cls, model.folder)
    if key not in _LOADED:
        _LOADED[key] = model.load()
    return _LOADED[key]


def _ref(model, spare: Path, name: str):
    """A ModelRef for a loaded model so other processes can load it too (None: not possible)."""
    if model is None or isinstance(model, ModelRef):
        return model
    cls = f"{type(model).__module__}.{type(model).__qualname__}"
    if not hasattr(type(model), "load"):
        return None
    folder = getattr(model, "folder", None)
    if folder is None and hasattr(model, "save"):
        folder = spare / name
        if not (folder / "card.json").exists():
            model.save(folder, overwrite=True)
    return None if folder is None else ModelRef(cls, str(folder))


def default_models() -> dict:
    """The shipped age and mass ensembles and RGB/RC classifier, as references (absent ones None)."""
    out = {"age": None, "mass": None, "classifier": None}
    try:
        from .ensemble import PRETRAINED_DIR
    except ImportError:
        return out
    for target in ("age", "mass"):
        if (PRETRAINED_DIR / target / "card.json").exists():
            out[target] = ModelRef("rgbkit.ensemble.Ensemble", str(PRETRAINED_DIR / target))
    for name in ("classifier", "rgbrc"):
        if (PRETRAINED_DIR / name / "card.json").exists():
            out["classifier"] = ModelRef("rgbkit.classify.Classifier", str(PRETRAINED_DIR / name))
    return out


def _label_range(model) -> tuple[float, float] | None:
    card = getattr(model, "card", None) or {}
    for where in (card.get("data") or {}, card):
        for key in ("label_range", "y_range"):
            r = where.get(key)
            if r is not None and len(r) == 2:
                return float(r[0]), float(r[1])
    # No stored range: the target scaler's mean +- 3 std (in log space for
    # log targets) stands for the training labels' support.
    sc = getattr(model, "scaler", None)
    if sc is None or getattr(model, "target", None) not in ("age", "mass"):
        return None
    lo, hi = sc.mean - 3 * sc.std, sc.mean + 3 * sc.std
    return (float(np.exp(lo)), float(np.exp(hi))) if sc.kind == "log" else (float(lo), float(hi))


POOL_MIN_FILES = 5000  # files per local worker before a process pool is the default


# ------------------------------------------------------- fast inference
def _fused_layer(layer):
    """An inference-only dense layer: norm2 folded into conv1 and the parallel
    kernels (3, 7, 15) merged into one convolution of the largest kernel.

    Same numbers (to float rounding); about 2x faster on CPU because the
    three 4-map convolutions were the slowest calls of the whole network.
    """
    import torch
    from torch import nn
    import torch.nn.functional as F

    class Fused(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm1 = layer.norm1
            bn = layer.norm2
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            c1 = layer.conv1
            self.conv1 = nn.Conv1d(c1.in_channels, c1.out_channels, 1, bias=True)
            self.conv1.weight.data = c1.weight.data * scale[:, None, None]
            self.conv1.bias.data = (bn.bias - bn.running_mean * scale).detach().clone()
            k = max(b.kernel_size[0] for b in layer.branches)
            outs = sum(b.out_channels for b in layer.branches)
            w = torch.zeros(outs, c1.out_channels, k)
            o = 0
            for b in layer.branches:
                kb = b.kernel_size[0]
                off = (k - kb) // 2
                w[o:o + b.out_channels, :, off:off + kb] = b.weight.data
                o += b.out_channels
            self.conv2 = nn.Conv1d(c1.out_channels, outs, k, padding=k // 2, bias=False)
            self.conv2.weight.data = w

        def forward(self, features):
            x = torch.cat(features, 1)
            x = F.relu(self.conv1(F.relu(self.norm1(x))))
            return self.conv2(x)

    return Fused().eval()


def fuse_network(net):
    """An inference copy of a :class:`~rgbkit.models.densenet.DenseNet1D` with fused dense layers."""
    import copy

    import torch

    net = copy.deepcopy(net).eval()
    with torch.no_grad():
        for block in [m for m in net.modules() if type(m).__name__ == "_DenseBlock"]:
            for name in list(block.keys()):
                layer = block[name]
                if all(hasattr(layer, a) for a in ("norm1", "conv1", "norm2", "branches")):
                    block[name] = _fused_layer(layer)
    return net


_FAST: dict = {}


def fast_model(model):
    """The same ensemble with fused members (cached), or ``model`` itself when it has none."""
    members = getattr(model, "members", None)
    if not members or not all(hasattr(m, "features") for m in members):
        return model
    key = id(model)
    if key not in _FAST or _FAST[key][0] is not model:
        import copy

        fast = copy.copy(model)
        fast.members = [fuse_network(m) for m in members]
        fast._stacked = None
        _FAST[key] = (model, fast)
    return _FAST[key][1]


# --------------------------------------------------------------- scoring
def _meta_frame(spectra) -> pd.DataFrame:
    metas = [s.meta for s in spectra]
    d = {
        "file": [m.path for m in metas],
        "obsid": pd.array([m.obsid for m in metas], dtype="Int64"),
        "designation": [m.designation for m in metas],
        "ra": np.array([m.ra for m in metas], dtype=np.float64),
        "dec": np.array([m.dec for m in metas], dtype=np.float64),
        "objclass": [m.objclass for m in metas],
        "subclass": [m.subclass for m in metas],
        "data_release": [m.data_release for m in metas],
        "kic": pd.array([m.kic for m in metas], dtype="Int64"),
        "z": np.array([m.z for m in metas], dtype=np.float64),
    }
    for b in BANDS:
        d[f"snr_{b}"] = np.array([m.snr.get(b, np.nan) for m in metas], dtype=np.float32)
    return pd.DataFrame(d)


def _regress(model, X, n: int, ok: np.ndarray, batch_size: int) -> dict[str, np.ndarray]:
    nan = np.full(n, np.nan, dtype=np.float32)
    out = {"": nan.copy(), "_std": nan.copy(), "_std_raw": nan.copy()}
    if model is not None and ok.any():
        p = model.predict(X[ok], batch_size=batch_size)
        out[""][ok] = p.mean
        out["_std"][ok] = p.std
        out["_std_raw"][ok] = getattr(p, "std_raw", p.std)
    out["_lo"] = np.maximum(out[""] - out["_std"], 0).astype(np.float32)
    out["_hi"] = (out[""] + out["_std"]).astype(np.float32)
    return out


def _classify(clf, X, n: int, ok: np.ndarray, batch_size: int):
    p, s = np.full(n, np.nan, np.float32), np.full(n, np.nan, np.float32)
    if clf is not None and ok.any():
        pred = clf.predict(X[ok], batch_size=batch_size)
        if hasattr(pred, "p_rgb"):
            p[ok], s[ok] = pred.p_rgb, getattr(pred, "p_rgb_std", np.nan)
        else:
            p[ok] = np.asarray(pred, dtype=np.float32).reshape(-1)
    return p, s


def score_spectra(spectra, *, age=None, mass=None, classifier=None, preprocessor=None,
                  rules: DomainRules | None = None, batch_size: int = 128, fast: bool = True) -> pd.DataFrame:
    """Catalog rows for a list of :class:`~rgbkit.spectra.Spectrum` (one row each, same order).

    ``age``, ``mass``: objects with ``predict(X) -> .mean, .std[, .std_raw]``
    (an :class:`~rgbkit.ensemble.Ensemble`); ``classifier``: ``predict(X) ->
    .p_rgb`` (a :class:`~rgbkit.classify.Classifier`). Any may be None (its
    columns are NaN). ``preprocessor`` defaults to the age model card's settings.
    ``fast``: run DenseNet ensembles through :func:`fast_model` (same numbers,
    ~2x faster); ``batch_size`` 128 keeps a batch's activations in the CPU cache.
    """
    from .preprocess import Preprocessor

    age, mass, classifier = _resolve(age), _resolve(mass), _resolve(classifier)
    rules = rules or DomainRules()
    if preprocessor is None:
        cfg = next((m.preprocessing for m in (age, mass, classifier)
                    if m is not None and getattr(m, "preprocessing", None)), None)
        preprocessor = Preprocessor.from_config(cfg) if cfg else Preprocessor()
    n = len(spectra)
    df = _meta_frame(spectra)
    df["read_ok"] = np.ones(n, bool)
    df["error"] = [""] * n
    if n == 0:
        return _finish(df, rules, None, None)
    pre = preprocessor.run_spectra(spectra, keep_stages=True)
    df["pre_ok"], df["pre_flags"], df["pre_reason"] = pre.ok, pre.flags.astype(np.int32), pre.reasons
    idx = line_indices(pre.stages["resampled"], pre.wavelength)
    for k, v in idx.items():
        df[f"ew_{k}"] = v
    star = (df["objclass"].fillna("").str.upper() == "STAR").to_numpy()
    fit = _fit_labels(pre.stages["resampled"], pre.wavelength,
                      np.zeros(n) if getattr(preprocessor, "rest_frame", False) else df["z"].to_numpy(), star)
    for k in ("teff", "logg", "feh"):
        df[f"{k}_fit"] = fit[k]
    ok = pre.ok & star
    X = pre.X
    if fast:
        age, mass, classifier = (None if m is None else fast_model(m) for m in (age, mass, classifier))
    p, s = _classify(classifier, X, n, ok, batch_size)
    df["p_rgb"], df["p_rgb_std"] = p, s
    for name, model in (("age", age), ("mass", mass)):
        for suffix, v in _regress(model, X, n, ok, batch_size).items():
            df[name + suffix] = v
    return _finish(df, rules, _label_range(age), _label_range(mass))


def _fit_labels(flux, grid, z, rows) -> dict[str, np.ndarray]:
    """Emulator fit of the rows marked in ``rows`` (NaN elsewhere)."""
    from .labelfit import fit_labels

    out = {k: np.full(len(flux), np.nan, np.float32) for k in ("teff", "logg", "feh")}
    if rows.any():
        res = fit_labels(flux[rows], grid, np.asarray(z, np.float64)[rows])
        for k in out:
            out[k][rows] = res[k]
    return out


def _finish(df: pd.DataFrame, rules: DomainRules, age_range=None, mass_range=None) -> pd.DataFrame:
    """Fill absent columns, compute the giant flag and the out-of-domain bits and words."""
    n = len(df)
    for col in COLUMNS:
        if col not in df:
            if col in ("read_ok", "pre_ok", "giant", "ood"):
                df[col] = np.zeros(n, bool)
            elif col in ("pre_flags", "ood_flags"):
                df[col] = np.zeros(n, np.int32)
            elif col in ("error", "pre_reason", "ood_reason"):
                df[col] = [""] * n
            elif col in ("obsid", "kic"):
                df[col] = pd.array([None] * n, dtype="Int64")
            elif col in ("file", "designation", "objclass", "subclass", "data_release"):
                df[col] = pd.Series([None] * n, dtype=object)
            else:
                df[col] = np.full(n, np.nan, np.float32)
    sub = df["subclass"].fillna("").astype(str).str.strip().str.upper()
    cls = df["objclass"].fillna("").astype(str).str.strip().str.upper()
    ha, teff, logg, feh = (df[c].to_numpy(np.float64, na_value=np.nan) for c in ("ew_halpha", "teff_fit", "logg_fit", "feh_fit"))
    snr = df["snr_g"].to_numpy(np.float64, na_value=np.nan)
    from .simulate import load_emulator

    t_lo, t_hi = (float(v[0]) for v in (load_emulator().label_min, load_emulator().label_max))
    with np.errstate(invalid="ignore"):
        hot_idx = ha > rules.hot_halpha_ew
        hot_fit = teff >= t_hi - 1.0  # pegged at the emulator's hot end: the fit is not a measurement
        cool_fit = teff <= t_lo + 1.0
        hot_sub = sub.str.match(r"^(O|B|A|W|D[ABOZCQX])").to_numpy()
        cool_sub = sub.str.match(r"^(M|DM|SDM|D?K?M\d)").to_numpy()
        hot, cool = hot_sub | hot_idx | hot_fit, cool_sub | cool_fit
        fitted = np.isfinite(logg) & ~hot_fit & ~cool_fit
        dwarf = fitted & (logg >= rules.dwarf_logg) & ~hot & ~cool
    bits = np.zeros(n, np.int32)
    reasons: list[list[str]] = [[] for _ in range(n)]

    def add(mask, flag, text):
        mask = np.asarray(mask, bool)
        bits[mask] |= int(flag)
        for i in np.flatnonzero(mask):
            reasons[i].append(text(i))

    read_ok, pre_ok = df["read_ok"].to_numpy(bool), df["pre_ok"].to_numpy(bool)
    add(~read_ok, OOD.UNREADABLE, lambda i: f"unreadable: {df['error'].iat[i]}")
    add(read_ok & ~pre_ok, OOD.PREPROCESS, lambda i: f"preprocessing: {df['pre_reason'].iat[i]}")
    add(read_ok & (cls != "STAR").to_numpy(), OOD.NOT_STAR, lambda i: f"not a star (CLASS {cls.iat[i] or 'missing'})")
    add(read_ok & ~(snr >= rules.min_snr_g), OOD.LOW_SNR, lambda i: f"low SNR (g {snr[i]:.1f} < {rules.min_snr_g:g})")
    add(read_ok & hot, OOD.HOT, lambda i: "hot star (" + ", ".join(
        ([f"SUBCLASS {sub.iat[i]}"] if hot_sub[i] else []) + ([f"EW(H-alpha) {ha[i]:.1f} A"] if hot_idx[i] else [])
        + ([f"fitted Teff {teff[i]:.0f} K at the emulator's limit"] if hot_fit[i] else [])) + ")")
    add(read_ok & cool, OOD.COOL, lambda i: ", ".join(
        ([f"M type (SUBCLASS {sub.iat[i]})"] if cool_sub[i] else [])
        + ([f"fitted Teff {teff[i]:.0f} K at the emulator's cool limit"] if cool_fit[i] else [])))
    add(read_ok & dwarf, OOD.DWARF, lambda i: f"dwarf (fitted logg {logg[i]:.2f} >= {rules.dwarf_logg:g} "
        f"at Teff {teff[i]:.0f} K, [Fe/H] {feh[i]:+.2f})")
    for name, rng in (("age", age_range), ("mass", mass_range)):
        if rng is not None:
            v = df[name].to_numpy(np.float64, na_value=np.nan)
            with np.errstate(invalid="ignore"):
                out = (v < rng[0]) | (v > rng[1])
            add(out, OOD.LABEL_RANGE, lambda i, v=v, rng=rng, name=name:
                f"{name} {v[i]:.3g} outside the training range {rng[0]:.3g}-{rng[1]:.3g}")
    if rules.max_rel_age_spread is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = df["age_std"].to_numpy(np.float64) / df["age"].to_numpy(np.float64)
        add(rel > rules.max_rel_age_spread, OOD.HIGH_SPREAD,
            lambda i: f"members disagree (age spread {100 * rel[i]:.0f}%)")
    with np.errstate(invalid="ignore"):
        df["giant"] = read_ok & (cls == "STAR").to_numpy() & ~hot & ~cool & fitted & (logg < rules.dwarf_logg)
    df["ood_flags"] = bits
    df["ood"] = bits != 0
    df["ood_reason"] = ["; ".join(r) for r in reasons]
    return df[list(COLUMNS)]


def score_files(paths, *, age=None, mass=None, classifier=None, preprocessor=None,
                rules: DomainRules | None = None, batch_size: int = 128, threads: int | None = None):
    """Read and score files; returns ``(rows, errors)``, one row per path (unreadable ones flagged).

    This is what a worker runs on one chunk; models may be :class:`ModelRef`.
    """
    from .io.lamost import LamostFormatError, read_lamost

    if threads:
        import torch

        torch.set_num_threads(threads)
    spectra, bad, errors = [], [], []
    for p in paths:
        try:
            spectra.append(read_lamost(p))
        except LamostFormatError as exc:
            bad.append(str(p))
            errors.append({"file": str(p), "stage": "read", "reason": exc.reason})
        except Exception as exc:  # noqa: BLE001 - a bulk run records and goes on
            bad.append(str(p))
            errors.append({"file": str(p), "stage": "read", "reason": f"{type(exc).__name__}: {exc}"})
    for s, p in zip(spectra, [p for p in map(str, paths) if p not in set(bad)]):
        s.meta.path = p  # the key: exactly the input path
    rows = score_spectra(spectra, age=age, mass=mass, classifier=classifier, preprocessor=preprocessor,
                         rules=rules, batch_size=batch_size)
    if bad:
        failed = pd.DataFrame({"file": bad, "read_ok": False,
                               "error": [e["reason"] for e in errors]})
        failed = _finish(failed, rules or DomainRules())
        rows = pd.concat([rows, failed], ignore_index=True) if len(rows) else failed
        order = {str(p): i for i, p in enumerate(paths)}
        rows = rows.iloc[np.argsort([order[f] for f in rows["file"]], kind="stable")].reset_index(drop=True)
    return rows, errors


# ------------------------------------------------------------- output files
def _schema_metadata(extra: dict | None = None) -> dict:
    from . import __version__

    return {"rgbkit_version": __version__,
            "columns": {k: {"unit": u, "description": d} for k, (u, d) in COLUMNS.items()},
            "ood_flags": {f.name: int(f.value) for f in OOD}, **(extra or {})}


_STRINGS = ("file", "designation", "objclass", "subclass", "data_release", "error", "pre_reason", "ood_reason")
_BOOLS = ("read_ok", "pre_ok", "giant", "ood")
_FLOAT64 = ("ra", "dec", "z")


def _arrow_type(name: str):
    import pyarrow as pa

    if name in _STRINGS:
        return pa.string()
    if name in _BOOLS:
        return pa.bool_()
    if name in ("obsid", "kic"):
        return pa.int64()
    if name in ("pre_flags", "ood_flags"):
        return pa.int32()
    return pa.float64() if name in _FLOAT64 else pa.float32()


def _to_arrow(df: pd.DataFrame, meta: dict):
    """One fixed schema for every part (types, units, descriptions), so parts always merge."""
    import pyarrow as pa

    fields = [pa.field(k, _arrow_type(k), metadata={"unit": u, "description": d}) for k, (u, d) in COLUMNS.items()]
    schema = pa.schema(fields, metadata={"rgbkit": json.dumps(meta)})
    return pa.Table.from_pandas(df[list(COLUMNS)], schema=schema, preserve_index=False)


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


def _write_part(df: pd.DataFrame, path: Path) -> None:
    import pyarrow.parquet as pq

    _atomic_write(path, lambda t: pq.write_table(_to_arrow(df, _schema_metadata()), t))


def read_catalog(path) -> pd.DataFrame:
    """Read a catalog written by :func:`build_catalog` (a run folder or the merged file)."""
    path = Path(path)
    if path.is_dir():
        merged = [p for p in (path / f"catalog.{e}" for e in ("parquet", "fits", "csv")) if p.exists()]
        if merged:
            path = merged[0]
        else:
            parts = sorted(path.glob("parts/part-*.parquet"))
            return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True) if parts else pd.DataFrame()
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        return pd.read_csv(path, comment="#", keep_default_na=False, na_values=[""])
    from astropy.table import Table

    df = Table.read(path).to_pandas()
    for c in df.columns:
        if df[c].dtype == object and len(df) and isinstance(df[c].iat[0], bytes):
            df[c] = [v.decode() for v in df[c]]
    for c in ("obsid", "kic"):
        if c in df:
            df[c] = pd.array(np.where(np.isfinite(df[c]), df[c], np.nan)).astype("Int64")
    return df


def _merge(out: Path, fmt: str, meta: dict) -> Path:
    parts = [p for p in sorted((out / "parts").glob("part-*.parquet")) if p.with_suffix(".json").exists()]
    dest = out / f"catalog.{fmt}"
    if fmt == "parquet":
        import pyarrow.parquet as pq

        def write(tmp):
            writer = None
            for p in parts:
                t = _to_arrow(pd.read_parquet(p), meta)
                writer = writer or pq.ParquetWriter(tmp, t.schema)
                writer.write_table(t)
            if writer is None:
                pq.write_table(_to_arrow(_finish(pd.DataFrame({"file": []}), DomainRules()), meta), tmp)
            else:
                writer.close()
    elif fmt == "csv":
        def write(tmp):
            with open(tmp, "w") as fh:
                fh.write(f"# rgbkit catalog, rgbkit {meta['rgbkit_version']}\n")
                for k, (u, d) in COLUMNS.items():
                    fh.write(f"# {k} [{u or '-'}]: {d}\n")
                header = True
                for p in parts:
                    pd.read_parquet(p).to_csv(fh, index=False, header=header)
                    header = False
                if header:
                    fh.write(",".join(COLUMNS) + "\n")
    elif fmt == "fits":
        from astropy.table import Table

        def write(tmp):
            df = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True) if parts else \
                _finish(pd.DataFrame({"file": []}), DomainRules())
            for c in ("obsid", "kic"):
                df[c] = df[c].astype("float64")  # FITS has no nullable integers: NaN when missing
            for c in df.columns:
                if df[c].dtype == object:
                    df[c] = df[c].fillna("").astype(str)
            t = Table.from_pandas(df)
            for k, (u, d) in COLUMNS.items():
                if u and u != "dex":  # dex is no FITS unit: it stays in the description
                    t[k].unit = {"Msun": "solMass", "Gyr": "Gyr", "deg": "deg", "K": "K", "Angstrom": "Angstrom"}[u]
                t[k].description = d
            t.meta["RGBKITV"] = meta["rgbkit_version"]
            t.meta["COMMENTS"] = [f"{k} [{u or '-'}]: {d}" for k, (u, d) in COLUMNS.items()]
            t.write(tmp, format="fits", overwrite=True)
    else:
        raise ValueError(f"format must be parquet, fits or csv, not {fmt!r}")
    _atomic_write(dest, write)
    return dest


# --------------------------------------------------------------- the run
def _done_files(out: Path) -> tuple[set[str], int, list[dict]]:
    """Files already scored (from the manifests), the last chunk id, and their errors.

    Deletes parts without a manifest and temporary files of a killed run.
    """
    parts = out / "parts"
    parts.mkdir(parents=True, exist_ok=True)
    for tmp in parts.glob("*.tmp*"):
        tmp.unlink()
    done, errors, last = set(), [], 0
    for pq_ in parts.glob("part-*.parquet"):
        if not pq_.with_suffix(".json").exists():
            pq_.unlink()  # killed between the part and its manifest: redo those files
    for man in sorted(parts.glob("part-*.json")):
        if not man.with_suffix(".parquet").exists():
            man.unlink()
            continue
        m = json.loads(man.read_text())
        done.update(m["files"])
        errors += m.get("errors", [])
        last = max(last, int(man.stem.split("-")[1]))
    return done, last, errors


def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def build_catalog(inputs, out, *, age="default", mass="default", classifier="default", preprocessor=None,
                  rules: DomainRules | None = None, fmt: str = "parquet", chunk_size: int = 512,
                  workers: int | None = None, threads: int = 1, dask=None, batch_size: int = 128,
                  resume: bool = True, progress: bool = True, fetcher: dict | None = None) -> Path:
    """Score every LAMOST file in ``inputs`` into a catalog under the folder ``out``.

    ``inputs``: a folder (searched recursively), a glob, a list of paths, or,
    with ``fetcher=dict(url_template=..., cache=...)``, a list of obsids that
    :func:`rgbkit.io.fetch.fetch` downloads first. ``age``/``mass``/``classifier``:
    ``"default"`` (the shipped models), None (columns NaN), a model object or
    a :class:`ModelRef`. ``workers``: processes of the local pool (0 runs in
    this process; default: one per core, up to 8, once there are
    ``POOL_MIN_FILES`` files per process, else 0). ``dask``: a scheduler address or a
    ``distributed.Client``. ``fmt``: parquet, fits or csv for the merged file.
    Returns the merged catalog's path.

    The local pool starts its workers with "spawn", so a script that calls
    this with ``workers > 0`` needs the usual ``if __name__ == "__main__":``
    guard (notebooks and the ``rgbkit catalog`` command do not).
    """
    from tqdm.auto import tqdm

    from .io.lamost import expand_paths

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    errors_extra = []
    if fetcher is not None:
        from .io.fetch import fetch

        res = fetch(list(inputs), progress=progress, **fetcher)
        paths = [str(r.path) for r in res if r.path is not None]
        errors_extra = [{"file": r.obsid, "stage": "fetch", "reason": r.error} for r in res if r.path is None]
    else:
        paths = [str(p) for p in expand_paths(inputs)]
    if len(set(paths)) != len(paths):
        paths = list(dict.fromkeys(paths))
    defaults = default_models() if "default" in (age, mass, classifier) else {}
    models = {k: defaults.get(k) if v == "default" else v
              for k, v in (("age", age), ("mass", mass), ("classifier", classifier))}
    missing = [k for k, v in (("age", age), ("mass", mass), ("classifier", classifier))
               if v == "default" and models[k] is None]
    if missing:
        import warnings

        warnings.warn(f"no shipped {', '.join(missing)} model in rgbkit/pretrained: "
                      "those columns will be NaN", stacklevel=2)
    if not resume and (out / "parts").exists():
        for p in (out / "parts").iterdir():
            p.unlink()
    done, last, old_errors = _done_files(out)
    todo = [p for p in paths if p not in done]
    spare = out / "models"
    refs = {k: _ref(v, spare, k) for k, v in models.items()}
    local_only = any(v is not None and refs[k] is None for k, v in models.items())
    if workers is None:
        # A pool worker spends ~2-3 CPU s importing torch and loading models (about 2,000
        # spectra of work), so small runs are faster in this process.
        workers = min(os.cpu_count() or 1, 8, len(todo) // POOL_MIN_FILES)
        workers = workers if workers >= 2 else 0
    if local_only and (dask is not None or workers > 0):
        workers, dask = 0, None  # objects that cannot be reloaded elsewhere: score here
    run_info = {"started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "n_inputs": len(paths), "already_done": len(paths) - len(todo), "chunk_size": chunk_size,
                "models": {k: asdict(v) if isinstance(v, ModelRef) else (None if v is None else repr(v))
                           for k, v in refs.items()},
                "rules": asdict(rules or DomainRules()), "format": fmt,
                "workers": "dask" if dask is not None else workers}
    (out / "run.json").write_text(json.dumps(run_info, indent=2))
    kw = dict(preprocessor=preprocessor, rules=rules, batch_size=batch_size)
    chunks = list(_chunks(todo, chunk_size))
    bar = tqdm(total=len(todo), desc="catalog", unit="spec", disable=not progress)
    next_id = [last]

    def record(files, result):
        rows, errs = result
        next_id[0] += 1
        stem = out / "parts" / f"part-{next_id[0]:06d}"
        _write_part(rows, stem.with_suffix(".parquet"))
        man = {"files": list(files), "n_rows": len(rows), "errors": errs}
        _atomic_write(stem.with_suffix(".json"), lambda t: t.write_text(json.dumps(man)))
        bar.update(len(files))

    t0 = time.perf_counter()
    if dask is not None:
        _run_dask(dask, chunks, refs, kw, threads, record)
    elif workers == 0 or len(chunks) <= 1:
        m = {k: (models[k] if local_only else refs[k]) for k in models}
        for files in chunks:
            record(files, score_files(files, age=m["age"], mass=m["mass"], classifier=m["classifier"],
                                      threads=threads if not local_only else None, **kw))
    else:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")  # no fork after torch has started threads
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init, initargs=(threads,)) as pool:
            pending, it = {}, iter(chunks)
            while True:
                while len(pending) < 2 * workers:
                    files = next(it, None)
                    if files is None:
                        break
                    fut = pool.submit(score_files, files, age=refs["age"], mass=refs["mass"],
                                      classifier=refs["classifier"], **kw)
                    pending[fut] = files
                if not pending:
                    break
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    record(pending.pop(fut), fut.result())
    bar.close()
    elapsed = time.perf_counter() - t0
    done, _, errors = _done_files(out)
    errors = errors + errors_extra
    _atomic_write(out / "errors.csv", lambda t: pd.DataFrame(errors, columns=["file", "stage", "reason"]).to_csv(t, index=False))
    run_info.update(finished=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                    seconds=round(elapsed, 2), scored_now=len(todo),
                    spectra_per_second=round(len(todo) / elapsed, 1) if elapsed > 0 and todo else None)
    (out / "run.json").write_text(json.dumps(run_info, indent=2))
    return _merge(out, fmt, _schema_metadata({"run": run_info}))


def _run_dask(dask, chunks, refs, kw, threads, record) -> None:
    from distributed import Client, as_completed

    client = dask if isinstance(dask, Client) else Client(dask)
    try:
        futures = {}
        for files in chunks:
            fut = client.submit(score_files, files, age=refs["age"], mass=refs["mass"],
                                classifier=refs["classifier"], threads=threads, pure=False, **kw)
            futures[fut] = files
        for fut in as_completed(futures):
            record(futures[fut], fut.result())
    finally:
        if not isinstance(dask, Client):
            client.close()


# ----------------------------------------------------------------- the CLI
def _model_arg(value, cls):
    if value in (None, "default"):
        return "default"
    if value == "none":
        return None
    return ModelRef(cls, value)


def cmd_catalog(args) -> int:
    inputs = args.inputs
    fetcher = None
    if args.obsids:
        inputs = [line.split(",")[0].strip() for line in Path(args.obsids).read_text().splitlines()
                  if line.strip() and not line.startswith("#")]
        fetcher = {"url_template": args.url_template, "cache": args.cache}
    elif not inputs:
        print("give input files/folders/globs or --obsids FILE")
        return 2
    if isinstance(inputs, list) and len(inputs) == 1:
        inputs = inputs[0]
    elif isinstance(inputs, list) and fetcher is None:
        from .io.lamost import expand_paths

        inputs = [p for i in inputs for p in expand_paths(i)]
    rules = DomainRules(min_snr_g=args.min_snr)
    path = build_catalog(inputs, args.out, age=_model_arg(args.age_model, "rgbkit.ensemble.Ensemble"),
                         mass=_model_arg(args.mass_model, "rgbkit.ensemble.Ensemble"),
                         classifier=_model_arg(args.classifier, "rgbkit.classify.Classifier"),
                         rules=rules, fmt=args.format, chunk_size=args.chunk_size, workers=args.workers,
                         threads=args.threads, dask=args.dask, resume=not args.restart,
                         progress=not args.quiet)
    df = read_catalog(path)
    n_err = len(pd.read_csv(Path(args.out) / "errors.csv"))
    print(f"{len(df)} rows -> {path} ({int((~df['ood']).sum())} in domain, {n_err} files with errors: "
          f"{Path(args.out) / 'errors.csv'})")
    return 0


def cmd_fetch(args) -> int:
    from .io.fetch import fetch

    obsids = list(args.obsid)
    if args.from_file:
        obsids += [l.split(",")[0].strip() for l in Path(args.from_file).read_text().splitlines()
                   if l.strip() and not l.startswith("#")]
    res = fetch(obsids, args.url_template, args.cache, workers=args.workers, retries=args.retries)
    failed = [r for r in res if r.status == "failed"]
    for r in failed:
        print(f"failed {r.obsid}: {r.error}")
    print(f"{len(res) - len(failed)} of {len(res)} spectra in {res[0].path.parent if res and res[0].path else args.cache}")
    return 1 if failed else 0


def add_parsers(sub) -> None:
    """Add the ``catalog`` and ``fetch`` subcommands to the ``rgbkit`` command."""
    c = sub.add_parser("catalog", help="score LAMOST files into an age/mass catalog (resumable)")
    c.add_argument("inputs", nargs="*", help="folders, globs or FITS files")
    c.add_argument("-o", "--out", required=True, help="output folder (parts, manifests, merged catalog)")
    c.add_argument("--format", choices=("parquet", "fits", "csv"), default="parquet")
    c.add_argument("--obsids", help="text file of obsids (one a line) to download first")
    c.add_argument("--url-template", help="archive URL with {obsid} (default $RGBKIT_FETCH_URL or LAMOST DR9)")
    c.add_argument("--cache", help="download cache folder (default $RGBKIT_CACHE/spectra)")
    c.add_argument("--age-model", help="age ensemble folder ('none' to skip; default: shipped)")
    c.add_argument("--mass-model", help="mass ensemble folder ('none' to skip; default: shipped)")
    c.add_argument("--classifier", help="RGB/RC classifier folder ('none' to skip; default: shipped)")
    c.add_argument("--min-snr", type=float, default=15.0, help="g-band SNR below this is out of domain")
    c.add_argument("--chunk-size", type=int, default=512, help="files per part (the unit of resumption)")
    c.add_argument("--workers", type=int, default=None, help="local processes (0: this process; default: one per core, up to 8, "
                   f"when there are >= {POOL_MIN_FILES} files per process, else 0)")
    c.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    c.add_argument("--dask", metavar="SCHEDULER", help="Dask scheduler address, e.g. tcp://host:8786")
    c.add_argument("--restart", action="store_true", help="discard earlier parts instead of resuming")
    c.add_argument("--quiet", action="store_true")
    c.set_defaults(func=cmd_catalog)

    f = sub.add_parser("fetch", help="download LAMOST spectra by obsid into the cache")
    f.add_argument("obsid", nargs="*")
    f.add_argument("--from-file", help="text file of obsids, one a line")
    f.add_argument("--url-template", help="URL with {obsid}, e.g. https://www.lamost.org/dr9/v2.0/spectrum/fits/{obsid}")
    f.add_argument("--cache", help="folder (default $RGBKIT_CACHE/spectra)")
    f.add_argument("--workers", type=int, default=4)
    f.add_argument("--retries", type=int, default=4)
    f.set_defaults(func=cmd_fetch)
