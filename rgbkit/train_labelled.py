"""Train an ensemble on a :class:`~rgbkit.labelled.LabelledSet` and write its model folder.

The recipe: preprocess with the paper's settings (or the given
:class:`~rgbkit.preprocess.Preprocessor`), split the stars (not the spectra:
several spectra of one star stay in one split) into fixed train /
validation / test parts, fit the members on train with epoch selection on
validation, fit the spread scale on validation, and report M1/M2/coverage
on test, the part that chose nothing. The card's ``data.provenance`` records
the files (count, sha256), the label table (path, sha256, columns used), the
match settings and report, and the split.

The folder is written under a temporary name next to ``out`` and renamed
when complete, so a failed or interrupted run leaves no half-written model.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from . import metrics
from .labelled import LabelError, LabelledSet

__all__ = ["train_labelled", "save_trained", "split_stars", "split_arrays", "compare_baselines", "ARCHS", "DEFAULT_FRACTIONS"]

DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)
"""train, validation, test fractions of the stars."""
SPLITS = ("train", "validation", "test")


def _arch(arch):
    from .models.densenet import DenseNetConfig, paper_config, small_config, tiny_config

    if isinstance(arch, DenseNetConfig):
        return arch
    table = {"small": small_config, "paper": paper_config, "tiny": tiny_config}
    if arch not in table:
        raise ValueError(f"arch must be one of {sorted(table)} or a DenseNetConfig, not {arch!r}")
    return table[arch]()


ARCHS = ("tiny", "small", "paper")


def split_stars(stars: np.ndarray, fractions=DEFAULT_FRACTIONS, seed: int = 0) -> np.ndarray:
    """"train" / "validation" / "test" per row; rows of one star share a split (seeded permutation of stars)."""
    f = np.asarray(fractions, dtype=float)
    if f.shape != (3,) or np.any(f <= 0) or not np.isclose(f.sum(), 1.0):
        raise ValueError(f"fractions must be three positive numbers (train, validation, test) summing to 1, got {fractions}")
    uniq = np.unique(stars)
    if len(uniq) < 3:
        raise LabelError("labelled set", f"{len(uniq)} star(s) after matching and preprocessing: "
                         "at least 3 are needed for train, validation and test")
    perm = np.random.default_rng(seed).permutation(uniq)
    n_val = max(1, int(round(f[1] * len(uniq))))
    n_test = max(1, int(round(f[2] * len(uniq))))
    n_test = min(n_test, len(uniq) - n_val - 1)
    part = {s: "test" for s in perm[:n_test]}
    part.update({s: "validation" for s in perm[n_test:n_test + n_val]})
    return np.array([part.get(s, "train") for s in stars], dtype=object)


def _test_metrics(ens, X, y) -> dict:
    p = ens.predict(X)
    res = {"n": int(len(y)), "m1": metrics.m1(y, p.mean), "m2": metrics.m2(y, p.mean),
           "member_m2": [metrics.m2(y, q) for q in p.members]}
    if len(ens) > 1:
        res["coverage_68_raw"] = metrics.coverage(y, p.mean, p.std_raw)
        res["coverage_68"] = metrics.coverage(y, p.mean, p.std)
    return res


def _write_atomically(ens, out: Path, extra: dict[str, str], overwrite: bool) -> Path:
    out = out.resolve()
    tmp = out.with_name(f".{out.name}.partial-{uuid.uuid4().hex[:8]}")
    try:
        ens.save(tmp)
        for name, text in extra.items():
            (tmp / name).write_text(text)
        old = None
        if out.exists():
            if any(out.iterdir()) and not overwrite:
                raise FileExistsError(f"{out} exists and is not empty (pass overwrite=True / --overwrite)")
            old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
            os.rename(out, old)
        os.rename(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ens.folder = out
    return out


def save_trained(ens, out, overwrite: bool = False) -> Path:
    """Write an ensemble from :func:`train_labelled` (``out=None``) with its training table and match report."""
    return _write_atomically(ens, Path(out), getattr(ens, "extra_files", {}), overwrite)


def train_labelled(ls: LabelledSet, target: str, out, *, members: int = 5, arch="small",
                   train_config=None, epochs: int | None = None, fractions=DEFAULT_FRACTIONS,
                   split_seed: int = 0, seed: int = 0, preprocessor=None, overwrite: bool = False,
                   callback: Callable[[int, int, dict], bool | None] | None = None,
                   progress: bool = True, device: str = "auto"):
    """Train an ensemble for ``target`` on a labelled set and write it to the folder ``out``.

    Args:
        ls: from :func:`rgbkit.labelled.load_labelled`.
        target: "age" (Gyr) or "mass" (Msun).
        out: the model folder to write (refused if it exists and is not empty,
            unless ``overwrite``); it loads with :meth:`rgbkit.ensemble.Ensemble.load`.
            None: write nothing (save later with :func:`save_trained`).
        members, arch: ensemble size and network ("tiny", "small", "paper" or a DenseNetConfig).
        train_config: a :class:`rgbkit.train.TrainConfig` (default: the paper's
            settings with ``epochs`` or 450/350 epochs).
        fractions, split_seed: train/validation/test fractions of the stars and the split's seed.
        preprocessor: default the paper's :class:`~rgbkit.preprocess.Preprocessor`.
        callback: as in :meth:`Ensemble.fit` (return True to stop early).

    Returns the trained :class:`~rgbkit.ensemble.Ensemble` (``.folder`` is ``out``);
    ``ens.card["metrics"]["test"]`` holds M1/M2/coverage on the test stars.
    """
    from .ensemble import UNITS, Ensemble
    from .preprocess import Preprocessor, flag_names
    from .train import DEFAULT_EPOCHS, TrainConfig

    if target not in UNITS:
        raise ValueError(f"target must be 'age' or 'mass', not {target!r}")
    out = None if out is None else Path(out)
    if out is not None and out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise FileExistsError(f"{out} exists and is not empty (pass overwrite=True / --overwrite)")
    t0 = time.perf_counter()
    y = ls.y(target)
    good_y = np.isfinite(y) & (y > 0)
    if not good_y.any():
        raise LabelError(ls.report.label_source, f"no spectrum in the set has a usable {target} label")
    pre = preprocessor if preprocessor is not None else Preprocessor()
    prep = pre.run_spectra(ls.spectra, progress=progress)
    ok = prep.ok & good_y
    dropped_prep = pd.Series(["+".join(flag_names(int(f))) for f, k in zip(prep.flags, prep.ok) if not k],
                             dtype=object).value_counts().to_dict()  # e.g. {"ZERO_PIXELS": 7}
    idx = np.flatnonzero(ok)
    stars = ls.labels["star"].to_numpy()[idx]
    split = split_stars(stars, fractions, split_seed)
    part = {s: idx[split == s] for s in SPLITS}
    mc = _arch(arch)
    tc = train_config if train_config is not None else TrainConfig(
        epochs=epochs or DEFAULT_EPOCHS[target], device=device)
    X = prep.X
    label_name = Path(ls.report.label_source).name
    ens = Ensemble.fit(X[part["train"]], y[part["train"]], target, n_members=members, model_config=mc,
                       train_config=tc, X_val=X[part["validation"]], y_val=y[part["validation"]],
                       seed=seed, preprocessing=pre.config, data_name=f"labelled: {label_name}",
                       calibrate=True, callback=callback, progress=progress)
    ens.card.setdefault("metrics", {})["test"] = _test_metrics(ens, X[part["test"]], y[part["test"]])
    test_ids = np.sort(ls.labels["star"].to_numpy()[part["test"]]).astype(np.int64)
    ens.card["data"]["split"] = {
        "method": "by star", "fractions": list(map(float, fractions)), "seed": split_seed,
        **{f"n_{s}": int(len(part[s])) for s in SPLITS},
        **{f"n_{s}_stars": int(len(np.unique(ls.labels['star'].to_numpy()[part[s]]))) for s in SPLITS},
        "test_stars_sha256": hashlib.sha256(test_ids.tobytes()).hexdigest()}
    ens.card["data"]["provenance"] = {**ls.provenance, "preprocessing_dropped": dropped_prep,
                                      "n_without_label": int((~good_y).sum()),
                                      "train_seconds": round(time.perf_counter() - t0, 1)}
    table = ls.labels.iloc[idx][["star", "file", "spec_obsid", "spec_designation", "spec_kic", "snr_g", target]]
    table = table.assign(split=split)
    p = ens.predict(X[idx])
    table = table.assign(**{f"{target}_pred": p.mean, f"{target}_pred_err": p.std})
    extra = {"training_set.csv": table.to_csv(index=False),
             "match_report.json": json.dumps(ls.report.to_dict(), indent=2)}
    ens.extra_files = extra  # what the folder holds beside the model (kept for a later save)
    if out is not None:
        _write_atomically(ens, out, extra, overwrite)
    return ens


def split_arrays(ls: LabelledSet, folder) -> dict:
    """Preprocessed spectra and labels of each split of a model trained by :func:`train_labelled`.

    Returns ``{"train": (X, rows), "validation": ..., "test": ...}`` with ``rows`` the
    folder's ``training_set.csv`` rows of that split (same order as ``X``).
    """
    from .preprocess import Preprocessor

    folder = Path(folder)
    card = json.loads((folder / "card.json").read_text())
    rows = pd.read_csv(folder / "training_set.csv")
    where = {f: i for i, f in enumerate(ls.labels["file"])}
    missing = sorted(set(rows["file"]) - set(where))
    if missing:
        raise LabelError(str(folder), f"{len(missing)} training files are not in this labelled set "
                         f"(e.g. {missing[:3]}): load the same spectra and table as for training")
    pre = Preprocessor.from_config(card["preprocessing"])
    prep = pre.run_spectra([ls.spectra[where[f]] for f in rows["file"]])
    return {s: (prep.X[(rows["split"] == s).to_numpy()], rows[rows["split"] == s].reset_index(drop=True))
            for s in SPLITS}


def compare_baselines(ls: LabelledSet, folders: dict, methods=("xgb", "rf", "ann"), search: bool = False,
                      progress: bool = True):
    """The paper's Table 2 on your data: the ensembles in ``folders`` ({"age": path, "mass": path})
    against XGBoost, random forest and the fully connected ANN, all on the ensembles' test split.

    Returns :func:`rgbkit.models.baselines.baseline_table`'s ``(table, details)``.
    """
    from .ensemble import Ensemble
    from .models.baselines import baseline_table

    Xtr, Xte, ytr, yte, dense, test_files = {}, {}, {}, {}, {}, None
    for target, folder in folders.items():
        parts = split_arrays(ls, folder)
        (Xt, rt), (Xs, rs) = parts["train"], parts["test"]
        if test_files is not None and list(rs["file"]) != test_files:
            raise LabelError(str(folder), "the models were trained on different splits; "
                             "train both with the same labelled set, fractions and split seed")
        test_files = list(rs["file"])
        Xtr[target], Xte[target], ytr[target], yte[target] = Xt, Xs, rt[target].to_numpy(), rs[target].to_numpy()
        dense[target] = Ensemble.load(folder, target=target).predict(Xs).mean
    first = next(iter(folders))
    if any(len(ytr[t]) != len(ytr[first]) for t in folders):
        raise LabelError("labelled set", "age and mass models have different training splits")
    return baseline_table(Xtr[first], ytr, Xte[first], yte, densenet=dense, methods=methods,
                          search=search, progress=progress)
