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
import threading
import weakref
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


_load_lock = threading.RLock()  # sessions and the warm-up thread wait for one load instead of racing


@lru_cache(maxsize=1)
def _demo():
    from .datasets import load_demo

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


# ------------------------------------------------------------------ ensembles
def models_dir() -> Path:
    """Where the dashboard saves trained ensembles: ``$RGBKIT_MODELS_DIR`` or ``<cache>/models``."""
    from .datasets import cache_dir

    return Path(os.environ.get("RGBKIT_MODELS_DIR") or cache_dir() / "models")


def list_ensembles() -> dict[str, str]:
    """``{label: folder}`` of the shipped ensembles (age, mass) and those saved in :func:`models_dir`."""
    from .ensemble import PRETRAINED_DIR

    out = {}
    for target in ("age", "mass"):
        if (PRETRAINED_DIR / target / "card.json").is_file():
            out[f"shipped: {target}"] = str(PRETRAINED_DIR / target)
    root = models_dir()
    if root.is_dir():
        for card in sorted(root.glob("*/card.json")):
            out[f"saved: {card.parent.name}"] = str(card.parent)
    return out


def _card_stamp(folder) -> tuple[str, float]:
    card = Path(folder) / "card.json"
    return str(Path(folder).resolve()), card.stat().st_mtime if card.exists() else 0.0


@lru_cache(maxsize=8)
def _load_ensemble(folder: str, _mtime: float):
    from .ensemble import Ensemble

    return Ensemble.load(folder, device="cpu")


def load_ensemble(folder):
    """A saved ensemble (checked by :meth:`rgbkit.ensemble.Ensemble.load`), cached until its card changes."""
    return _load_ensemble(*_card_stamp(folder))


def shipped_ensemble(target: str):
    """The shipped ensemble for ``target``, or None while none is bundled."""
    from .ensemble import PRETRAINED_DIR

    folder = PRETRAINED_DIR / target
    return load_ensemble(folder) if (folder / "card.json").is_file() else None


def card_table(card: dict) -> pd.DataFrame:
    """The facts of a model card as a two-column table."""
    val = card.get("metrics", {}).get("val", {})
    data = card.get("data", {})
    arch = card.get("architecture", {})
    train = card.get("training", {})
    members = card.get("members", [])
    units = card.get("units", "")
    rows = [
        ("target", f"{card.get('target')} ({units})"),
        ("members", len(members)),
        ("architecture", f"DenseNet-BC k={arch.get('growth_rate')}, blocks {arch.get('block_layers')}, "
                         f"kernels {arch.get('kernel_sizes')}"),
        ("training", f"{train.get('epochs')} epochs max, lr {train.get('lr')}, batch {train.get('batch_size')}, "
                     f"{train.get('loss', '')}/{train.get('optimizer', '')}, keep {train.get('selection', '')}"),
        ("data", f"{data.get('name')}: {data.get('n_train')} train / {data.get('n_val')} validation"),
        ("best epochs", ", ".join(str(m.get("best_epoch")) for m in members)),
        ("validation M1", f"{val['m1']:.3g} {units}" if "m1" in val else "?"),
        ("validation M2", f"{val['m2']:.1f}%" if "m2" in val else "?"),
        ("member M2 range", "{:.1f}-{:.1f}%".format(*val["member_m2_range"]) if "member_m2_range" in val else "?"),
        ("68% coverage", "n/a (one member has no spread)" if len(members) == 1
         else f"{val['coverage_68']:.0%}" if "coverage_68" in val else "?"),
        ("spread scale", f"{card.get('spread_scale', 1.0):.2f}"),
    ]
    rows += [(k, card[c]) for k, c in (("rgbkit version", "library_version"), ("created", "created")) if c in card]
    return pd.DataFrame([(k, str(v)) for k, v in rows], columns=["field", "value"])


def demo_split_index(split: str, n: int | None = None, seed: int = 0) -> np.ndarray:
    """Rows of a demo split that survive preprocessing; a seeded random ``n`` of them if given."""
    lab = demo().labels
    idx = np.flatnonzero((lab["split"] == split).to_numpy() & demo_inputs().ok)
    if n is not None and n < idx.size:
        idx = np.sort(np.random.default_rng(seed).choice(idx, n, replace=False))
    return idx


class TrainingRun:
    """:meth:`rgbkit.ensemble.Ensemble.fit` on the demo data in a background thread.

    The thread reports through :meth:`snapshot` (copies, safe to read from any
    thread); :meth:`stop` asks the current member to stop after its epoch,
    keeping its best weights so far, and trains no further members.
    """

    def __init__(self, target: str = "age", n_members: int = 2, epochs: int = 5, n_train: int = 300,
                 n_val: int = 150, size: str = "tiny", seed: int = 0, lr: float = 1e-3):
        import threading

        if target not in ("age", "mass"):
            raise ValueError(f"target must be 'age' or 'mass', not {target!r}")
        if size not in ("tiny", "small"):
            raise ValueError(f"size must be 'tiny' or 'small', not {size!r}")
        self.target, self.n_members, self.epochs = target, int(n_members), int(epochs)
        self.n_train, self.n_val, self.size, self.seed, self.lr = int(n_train), int(n_val), size, seed, float(lr)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rgbkit-training", daemon=True)
        self._histories: list[dict] = []
        self._state = {"member": 0, "epoch": 0, "done": False, "error": "", "stopped": False}
        self.ensemble = None
        self.started = None

    def start(self) -> "TrainingRun":
        import time

        self.started = time.perf_counter()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _callback(self, member: int, epoch: int, history: dict) -> bool:
        h = {k: list(v) for k, v in history.items()}
        with self._lock:
            while len(self._histories) <= member:
                self._histories.append({})
            self._histories[member] = h
            self._state.update(member=member, epoch=epoch)
        return self._stop.is_set()

    def _run(self) -> None:
        from .ensemble import Ensemble
        from .models.densenet import small_config, tiny_config
        from .train import TrainConfig

        try:
            prep = demo_inputs()
            y = demo().labels[self.target].to_numpy(dtype=np.float64)
            tr = demo_split_index("train", self.n_train, self.seed)
            va = demo_split_index("validation", self.n_val, self.seed)
            ens = Ensemble.fit(
                prep.X[tr], y[tr], self.target, n_members=self.n_members,
                model_config=tiny_config() if self.size == "tiny" else small_config(),
                # the shipped ensembles' recipe (tools/train_pretrained.py): lr 1e-3 annealed, for short runs
                train_config=TrainConfig(epochs=self.epochs, lr=self.lr, lr_schedule="cosine", device="cpu"),
                X_val=prep.X[va], y_val=y[va], seed=self.seed, preprocessing=prep.config,
                data_name="rgbkit.datasets.load_demo() subset (SIMULATED)",
                callback=self._callback, progress=False)
            predict_demo(ens)  # here, off the event loop, so the Predictions tab opens at once
            with self._lock:
                self.ensemble = ens
                self._state.update(done=True, stopped=self._stop.is_set())
        except Exception as e:  # reported in the page; the server goes on
            with self._lock:
                self._state.update(done=True, error=f"{type(e).__name__}: {e}")

    def snapshot(self) -> dict:
        """Histories so far (one dict per member), current member/epoch, progress fraction, done/error."""
        import time

        with self._lock:
            s = dict(self._state)
            s["histories"] = [{k: list(v) for k, v in h.items()} for h in self._histories if h]
        done_epochs = sum(len(h.get("epoch", [])) for h in s["histories"])
        total = self.n_members * self.epochs
        s["fraction"] = 1.0 if s["done"] else min(done_epochs / total, 1.0)
        s["elapsed"] = 0.0 if self.started is None else time.perf_counter() - self.started
        return s


_warm = {"started": False}


def warm_up_in_background() -> None:
    """Load the demo set, its network inputs and the shipped ensembles' predictions once per process.

    Runs in a daemon thread so the first page is served at once; the caches
    it fills are the lru caches above (immutable results).
    """
    import threading

    if _warm["started"]:
        return
    _warm["started"] = True

    def work():
        demo_inputs()
        for t in ("age", "mass"):
            ens = shipped_ensemble(t)
            if ens is not None:
                predict_demo(ens)

    threading.Thread(target=work, name="rgbkit-warm-up", daemon=True).start()


def save_ensemble(ens, name: str) -> Path:
    """Save a trained ensemble under :func:`models_dir` (a plain folder name, no paths)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip("._") or "ensemble"
    return ens.save(models_dir() / safe)


# ------------------------------------------------------------------ predictions
def paper_numbers(target: str) -> dict:
    """The paper's averaged-model validation M1/M2 for ``target`` (its Table 2, DenseNet-BC row)."""
    from .models.baselines import PAPER_TABLE2

    row = PAPER_TABLE2["DenseNet-BC"]
    return {"m1": row[f"{target}_m1"], "m2": row[f"{target}_m2"]}


def _predict_demo(ens, split: str):
    from . import metrics

    prep = demo_inputs(ens.preprocessing)
    lab = demo().labels
    idx = np.flatnonzero((lab["split"] == split).to_numpy() & prep.ok)
    p = ens.predict(prep.X[idx])
    t = ens.target
    cols = ["obsid", "designation", "teff", "logg", "feh", "stage", t, f"{t}_err", f"{t}_true"]
    df = lab.iloc[idx][[c for c in cols if c in lab]].reset_index(drop=True)
    df[f"{t}_pred"], df[f"{t}_std"] = p.mean, p.std
    y = df[t].to_numpy(dtype=np.float64)
    df[f"{t}_within_1sigma"] = np.abs(p.mean - y) <= p.std
    summary = {"target": t, "units": ens.units, "n": int(idx.size), "members": len(ens),
               "m1": metrics.m1(y, p.mean), "m2": metrics.m2(y, p.mean),
               "coverage_68": metrics.coverage(y, p.mean, p.std) if len(ens) > 1 else float("nan"),
               "member_m2": [metrics.m2(y, q) for q in p.members]}
    return df, summary


# Results for ensembles that live only in a session, dropped with the ensemble.
_session_results: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


@lru_cache(maxsize=8)
def _predict_saved(folder: str, mtime: float, split: str):
    return _predict_demo(_load_ensemble(folder, mtime), split)


def predict_demo(ens, split: str = "validation"):
    """Predictions of ``ens`` for the demo ``split``: (per-star DataFrame, summary dict).

    Columns: obsid, designation, teff, logg, feh, stage, the label, its error,
    the hidden truth (``<target>_true``), ``<target>_pred``, ``<target>_std``
    and ``<target>_within_1sigma``. The summary has n, M1, M2, the 68%
    coverage and each member's M2. Ensembles read from a folder are cached
    per process; others (trained in a session) once per ensemble object.
    """
    if ens.folder is not None and (Path(ens.folder) / "card.json").is_file():
        return _predict_saved(*_card_stamp(ens.folder), split)
    per_ens = _session_results.setdefault(ens, {})
    if ("predict", split) not in per_ens:
        per_ens[("predict", split)] = _predict_demo(ens, split)
    return per_ens[("predict", split)]


def merged_predictions(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Per-star predictions of several targets side by side (joined on obsid)."""
    if not frames:
        return pd.DataFrame()
    out = frames[0]
    for f in frames[1:]:
        new = [c for c in f.columns if c not in out.columns or c == "obsid"]
        out = out.merge(f[new], on="obsid", how="outer")
    return out


# ------------------------------------------------------------------ HR maps
HR_COLUMNS = ["obsid", "designation", "teff", "logg", "feh", "stage", "split", "age", "mass"]


def hr_stars(prediction_frames: list[pd.DataFrame] | None = None) -> pd.DataFrame:
    """Stars for the Teff-logg map: every demo star with its labels, or (given the frames of
    :func:`predict_demo`) the validation stars with their predictions as well."""
    lab = demo().labels[HR_COLUMNS]
    if not prediction_frames:
        return lab.reset_index(drop=True)
    pred = merged_predictions(prediction_frames)
    keep = ["obsid"] + [c for c in pred.columns if c.endswith(("_pred", "_std"))]
    return lab.merge(pred[keep], on="obsid", how="inner").reset_index(drop=True)


def stars_in_box(stars: pd.DataFrame, teff_range, logg_range) -> pd.DataFrame:
    """Stars with teff and logg inside the (inclusive) ranges; the ends may come in either order."""
    t0, t1 = sorted(float(v) for v in teff_range)
    g0, g1 = sorted(float(v) for v in logg_range)
    t, g = stars["teff"].to_numpy(), stars["logg"].to_numpy()
    return stars[(t >= t0) & (t <= t1) & (g >= g0) & (g <= g1)].reset_index(drop=True)


# ------------------------------------------------------------------ clusters, classifier, baselines
def shipped_classifier():
    """The shipped RGB/RC classifier, or None while none is bundled."""
    from .classify import Classifier
    from .ensemble import PRETRAINED_DIR

    folder = PRETRAINED_DIR / "classifier"
    if not (folder / "card.json").is_file():
        return None
    return _load_classifier(*_card_stamp(folder))


@lru_cache(maxsize=2)
def _load_classifier(folder: str, _mtime: float):
    from .classify import Classifier

    return Classifier.load(folder, device="cpu")


@lru_cache(maxsize=1)
def _clusters_data():
    from .datasets import load_clusters

    d = load_clusters(progress=False)
    return d, Preprocessor().run(d.wavelength, d.flux)


def _cluster_ages(age_model, classifier):
    from .clusters import cluster_ages

    d, prep = _clusters_data()
    lab = d.labels
    ok = prep.ok
    return cluster_ages(prep.X[ok], lab["teff"].to_numpy()[ok], lab["logg"].to_numpy()[ok],
                        lab["stands_for"].to_numpy()[ok], age_model, classifier,
                        truth_age=lab["age_true"].to_numpy()[ok])


@lru_cache(maxsize=4)
def _cluster_ages_saved(age_stamp, clf_stamp):
    clf = _load_classifier(*clf_stamp) if clf_stamp else None
    return _cluster_ages(_load_ensemble(*age_stamp), clf)


def cluster_results(age_model, classifier=None):
    """Ages of the three SIMULATED clusters (:func:`rgbkit.clusters.cluster_ages`) with the given models.

    The members are those of :func:`rgbkit.datasets.load_clusters` that pass
    the preprocessing; truth is the simulated cluster age. Cached per process
    when both models come from folders.
    """
    saved = age_model.folder is not None and (classifier is None or classifier.folder is not None)
    if saved:
        return _cluster_ages_saved(_card_stamp(age_model.folder),
                                   _card_stamp(classifier.folder) if classifier is not None else None)
    per_ens = _session_results.setdefault(age_model, {})
    key = ("clusters", None if classifier is None else id(classifier))
    if key not in per_ens:
        per_ens[key] = _cluster_ages(age_model, classifier)
    return per_ens[key]


def classifier_table(classifier) -> pd.DataFrame:
    """The classifier card's contamination/completeness per split next to the paper's."""
    from .classify import PAPER

    rows = []
    for split, m in classifier.card.get("metrics", {}).items():
        if not isinstance(m, dict) or "contamination" not in m:
            continue
        paper = PAPER.get("val" if split.startswith("val") else split, {})
        rows.append({"split": split, "n": m.get("n"), "threshold": m.get("threshold"),
                     "contamination (%)": 100 * m["contamination"], "completeness (%)": 100 * m["completeness"],
                     "accuracy (%)": 100 * m["accuracy"] if "accuracy" in m else np.nan,
                     "paper contamination (%)": 100 * paper["contamination"] if paper else np.nan,
                     "paper completeness (%)": 100 * paper["completeness"] if paper else np.nan})
    return pd.DataFrame(rows)


BASELINE_JSON = "benchmarks/results/baselines.json"
SCIENCE_MD = "benchmarks/results/science.md"


def _markdown_table(text: str, first_header: str) -> pd.DataFrame | None:
    """The first Markdown table whose header row starts with ``| first_header |``."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == first_header and i + 1 < len(lines) and lines[i + 1].startswith("|-"):
            rows = []
            for row in lines[i + 2:]:
                if not row.startswith("|"):
                    break
                rows.append([c.strip() for c in row.strip().strip("|").split("|")])
            df = pd.DataFrame(rows, columns=cells)
            for c in cells[1:]:
                df[c] = pd.to_numeric(df[c], errors="coerce")
            return df.set_index(first_header)
    return None


def baseline_results() -> tuple[pd.DataFrame | None, str]:
    """Our recorded baseline comparison and where it came from; (None, "") when none is recorded.

    ``benchmarks/results/baselines.json`` (``{"table": {model: {age_m1, ...}}}``)
    if present, else the table of ``benchmarks/results/science.md`` (written by
    ``benchmarks/bench_science.py``). Paths are relative to the source checkout.
    """
    from .io.paths import REPO_ROOT

    path = REPO_ROOT / BASELINE_JSON
    if path.is_file():
        data = json.loads(path.read_text())
        df = pd.DataFrame.from_dict(data.get("table", data), orient="index")
        df.index.name = "model"
        return df, BASELINE_JSON
    path = REPO_ROOT / SCIENCE_MD
    if path.is_file():
        df = _markdown_table(path.read_text(), "model")
        if df is not None and "age_m2" in df:
            return df, SCIENCE_MD
    return None, ""


def paper_baselines() -> pd.DataFrame:
    """The paper's Table 2 (validation M1/M2 of each model)."""
    from .models.baselines import PAPER_TABLE2

    df = pd.DataFrame.from_dict(PAPER_TABLE2, orient="index")
    df.index.name = "model"
    return df
