"""Models the dashboard shows: shipped and saved ensembles, the classifier, and their demo results.

Results of models read from folders are cached per process, keyed by the
folder and its card's modification time; results of ensembles trained in a
session are kept with that ensemble object and dropped with it.
"""
from __future__ import annotations

import weakref
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from rgbkit.config import PRETRAINED_DIR, models_dir
from rgbkit.preprocess import Preprocessor

from .sources import demo, demo_inputs


def list_ensembles() -> dict[str, str]:
    """``{label: folder}`` of the shipped ensembles (age, mass) and those saved in :func:`models_dir`."""
    out = {}
    for target in ("age", "mass"):
        if (PRETRAINED_DIR / target / "card.json").is_file():
            out[f"shipped: {target}"] = str(PRETRAINED_DIR / target)
    root = models_dir()
    if root.is_dir():
        for card in sorted(root.glob("*/card.json")):
            out[f"saved: {card.parent.name}"] = str(card.parent)
    return out


def card_stamp(folder) -> tuple[str, float]:
    card = Path(folder) / "card.json"
    return str(Path(folder).resolve()), card.stat().st_mtime if card.exists() else 0.0


@lru_cache(maxsize=8)
def _load_ensemble(folder: str, _mtime: float):
    from rgbkit.ensemble import Ensemble

    return Ensemble.load(folder, device="cpu")


def load_ensemble(folder):
    """A saved ensemble (checked by :meth:`rgbkit.ensemble.Ensemble.load`), cached until its card changes."""
    return _load_ensemble(*card_stamp(folder))


def shipped_ensemble(target: str):
    """The shipped ensemble for ``target``, or None while none is bundled."""
    folder = PRETRAINED_DIR / target
    return load_ensemble(folder) if (folder / "card.json").is_file() else None


MAX_NAME = 64
"""Longest folder name the dashboard saves under (file systems stop at 255 bytes; people read 64)."""


def safe_name(name: str) -> str:
    """The folder name a save would use: letters, digits, ``-_.`` kept, anything else ``_``."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name.strip()).strip("._")


def save_ensemble(ens, name: str) -> Path:
    """Save a trained ensemble under :func:`models_dir` as ``safe_name(name)`` (a plain folder, no paths).

    ValueError for an empty or too long name, FileExistsError for a taken one.
    """
    safe = safe_name(name)
    if not safe:
        raise ValueError(f"{name!r} has no letters or digits to name a folder with")
    if len(safe) > MAX_NAME:
        raise ValueError(f"the name is {len(safe)} characters long; at most {MAX_NAME} are allowed")
    if getattr(ens, "extra_files", None):  # trained on the user's own files: keep its training table
        from rgbkit.train_labelled import save_trained

        return save_trained(ens, models_dir() / safe)
    return ens.save(models_dir() / safe)


def ensemble_zip(ens) -> bytes:
    """A trained ensemble's folder (card, safetensors weights, histories) as zip bytes, for a download."""
    import io
    import tempfile
    import zipfile

    buf = io.BytesIO()
    with tempfile.TemporaryDirectory(prefix="rgbkit-zip-") as tmp:
        folder = ens.save(Path(tmp) / f"rgbkit-{ens.target}-ensemble")
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for f in sorted(folder.rglob("*")):
                z.write(f, f.relative_to(folder.parent))
    return buf.getvalue()


def _predict_demo(ens, split: str):
    from rgbkit import metrics

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


def predict_demo(ens, split: str = "test"):
    """Predictions of ``ens`` for the demo ``split``: (per-star DataFrame, summary dict).

    Columns: obsid, designation, teff, logg, feh, stage, the label, its error,
    the hidden truth (``<target>_true``), ``<target>_pred``, ``<target>_std``
    and ``<target>_within_1sigma``. The summary has n, M1, M2, the 68%
    coverage and each member's M2. Ensembles read from a folder are cached
    per process; others (trained in a session) once per ensemble object.
    """
    if ens.folder is not None and (Path(ens.folder) / "card.json").is_file():
        return _predict_saved(*card_stamp(ens.folder), split)
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


def shipped_classifier():
    """The shipped RGB/RC classifier, or None while none is bundled."""
    from rgbkit.classify import Classifier
    folder = PRETRAINED_DIR / "classifier"
    if not (folder / "card.json").is_file():
        return None
    return _load_classifier(*card_stamp(folder))


@lru_cache(maxsize=2)
def _load_classifier(folder: str, _mtime: float):
    from rgbkit.classify import Classifier

    return Classifier.load(folder, device="cpu")


@lru_cache(maxsize=1)
def _clusters_data():
    from rgbkit.datasets import load_clusters

    d = load_clusters(progress=False)
    return d, Preprocessor().run(d.wavelength, d.flux)


def _cluster_ages(age_model, classifier):
    from rgbkit.clusters import cluster_ages
    from rgbkit.simulate import C_KMS

    d, prep = _clusters_data()
    lab = d.labels
    ok = prep.ok
    # every star in each cluster's field; the radial-velocity cut and the classifier choose
    return cluster_ages(prep.X[ok], lab["teff"].to_numpy()[ok], lab["logg"].to_numpy()[ok],
                        lab["stands_for"].to_numpy()[ok], age_model, classifier,
                        truth_age=lab["cluster_age"].to_numpy()[ok], rv=d.z[ok] * C_KMS)


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
        return _cluster_ages_saved(card_stamp(age_model.folder),
                                   card_stamp(classifier.folder) if classifier is not None else None)
    per_ens = _session_results.setdefault(age_model, {})
    key = ("clusters", None if classifier is None else id(classifier))
    if key not in per_ens:
        per_ens[key] = _cluster_ages(age_model, classifier)
    return per_ens[key]


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


def star_estimate(spec, age=None, mass=None, classifier=None) -> dict:
    """What the models say about one spectrum: one row of :func:`rgbkit.catalog.score_spectra` as a dict.

    The catalog's one scoring path (preprocessing, label fit, P(RGB), age and
    mass with their spreads, the out-of-domain verdict and reasons).
    """
    from rgbkit.catalog import score_spectra

    return score_spectra([spec], age=age, mass=mass, classifier=classifier).iloc[0].to_dict()
