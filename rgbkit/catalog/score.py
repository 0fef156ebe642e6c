"""Scoring: spectra (or files) in, catalog rows out.

Reads, preprocesses once, measures line indices, fits Teff/logg/[Fe/H] with
the emulator, runs the classifier and the age and mass ensembles, then the
out-of-domain rules (:mod:`.domain`). What a worker runs on one chunk.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..lines import line_indices
from ..spectra import BANDS
from ..ood import check as domain_check
from .domain import DomainRules, domain_model, finish
from .models import fast_model, label_range, resolve

__all__ = ["score_spectra", "score_files"]


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
        from ..ensemble import predict_rows

        p = predict_rows(model, X, ok, batch_size)
        out[""][:] = p.mean
        out["_std"][:] = p.std
        out["_std_raw"][:] = getattr(p, "std_raw", p.std)  # stand-in models may give no raw spread
        if getattr(p, "debiased", None) is not None:
            for k in ("debiased", "debiased_lo", "debiased_hi"):
                out["_" + k] = getattr(p, k).astype(np.float32)
    out["_lo"] = np.maximum(out[""] - out["_std"], 0).astype(np.float32)
    out["_hi"] = (out[""] + out["_std"]).astype(np.float32)
    return out


def _classify(clf, X, n: int, ok: np.ndarray, batch_size: int):
    p, s = np.full(n, np.nan, np.float32), np.full(n, np.nan, np.float32)
    if clf is not None and ok.any():
        from ..ensemble import predict_rows

        pred = predict_rows(clf, X, ok, batch_size)
        p[:], s[:] = pred.p_rgb, pred.p_rgb_std
    return p, s


def score_spectra(spectra, *, age=None, mass=None, classifier=None, preprocessor=None,
                  rules: DomainRules | None = None, batch_size: int = 128, fast: bool = True,
                  precision: str = "auto") -> pd.DataFrame:
    """Catalog rows for a list of :class:`~rgbkit.spectra.Spectrum` (one row each, same order).

    ``age``, ``mass``: objects with ``predict(X) -> .mean, .std[, .std_raw]``
    (an :class:`~rgbkit.ensemble.Ensemble`); ``classifier``: ``predict(X) ->
    .p_rgb`` (a :class:`~rgbkit.classify.Classifier`). Any may be None (its
    columns are NaN). ``preprocessor`` defaults to the age model card's settings.
    ``fast``: run DenseNet ensembles through :func:`fast_model` (same numbers,
    ~2x faster); ``batch_size`` 128 keeps a batch's activations in the CPU cache.
    ``precision``: "auto" (bfloat16 on a CPU that computes it natively, ~2x
    faster networks, ages within ~0.1% of float32; else float32), "float32"
    or "bfloat16"; see :mod:`rgbkit.precision`. Needs ``fast``.
    """
    from ..preprocess import Preprocessor

    age, mass, classifier = resolve(age), resolve(mass), resolve(classifier)
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
        return finish(df, rules, None, None)
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
    df["fit_chi2"] = fit["chi2"]
    ok = pre.ok & star
    X = pre.X
    df["domain_bits"] = domain_check(pre.stages["resampled"], X, fit, domain_model(age), rows=ok)
    if fast:
        from ..precision import resolve_precision

        first = next((m for m in (age, mass, classifier) if m is not None), None)
        prec = resolve_precision(precision, getattr(first, "device", "cpu"))
        age, mass, classifier = (None if m is None else fast_model(m, prec) for m in (age, mass, classifier))
    p, s = _classify(classifier, X, n, ok, batch_size)
    df["p_rgb"], df["p_rgb_std"] = p, s
    for name, model in (("age", age), ("mass", mass)):
        for suffix, v in _regress(model, X, n, ok, batch_size).items():
            df[name + suffix] = v
    return finish(df, rules, label_range(age), label_range(mass))


def _fit_labels(flux, grid, z, rows) -> dict[str, np.ndarray]:
    """Emulator fit of the rows marked in ``rows`` (NaN elsewhere)."""
    from ..labelfit import fit_labels

    out = {k: np.full(len(flux), np.nan, np.float32) for k in ("teff", "logg", "feh", "chi2")}
    if rows.any():
        res = fit_labels(flux[rows], grid, np.asarray(z, np.float64)[rows])
        for k in out:
            out[k][rows] = res[k]
    return out


def score_files(paths, *, age=None, mass=None, classifier=None, preprocessor=None,
                rules: DomainRules | None = None, batch_size: int = 128, threads: int | None = None,
                precision: str = "auto"):
    """Read and score files; returns ``(rows, errors)``, one row per path (unreadable ones flagged).

    This is what a worker runs on one chunk; models may be :class:`ModelRef`.
    """
    from ..io.lamost import LamostFormatError, read_lamost

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
                         rules=rules, batch_size=batch_size, precision=precision)
    if bad:
        failed = pd.DataFrame({"file": bad, "read_ok": False,
                               "error": [e["reason"] for e in errors]})
        failed = finish(failed, rules or DomainRules())
        rows = pd.concat([rows, failed], ignore_index=True) if len(rows) else failed
        order = {str(p): i for i, p in enumerate(paths)}
        rows = rows.iloc[np.argsort([order[f] for f in rows["file"]], kind="stable")].reset_index(drop=True)
    return rows, errors

