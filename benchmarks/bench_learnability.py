"""Does the SIMULATED demo set carry mass/age information beyond Teff, logg, [Fe/H]?

Fits ridge regressions on the load_demo() training split and scores the
validation split (M1 = mean |pred - true|, M2 = mean |pred - true| / true):

* trivial: the training median;
* labels: Teff, logg, [Fe/H] (quadratic features) - the atmospheric parameters alone;
* spectrum: the paper's preprocessed, wavelet-denoised flux (4,096 px);
* spectrum + labels.

Targets are the catalog values (with asteroseismic-like errors), scored
against the noise-free truth and the catalog. Writes
benchmarks/results/learnability.md. Takes about 1-2 minutes on 2 cores
(first run also generates the demo set, about a minute).

Run:  .venv/bin/python benchmarks/bench_learnability.py
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

from rgbkit.datasets import load_demo
from rgbkit.preprocess import Preprocessor

OUT = Path(__file__).resolve().parent / "results" / "learnability.md"


def m1m2(pred, true):
    return float(np.mean(np.abs(pred - true))), float(100 * np.mean(np.abs(pred - true) / true))


def main():
    t0 = time.perf_counter()
    d = load_demo()
    t_load = time.perf_counter() - t0
    res = Preprocessor().run(d.wavelength, d.flux, z=d.labels.z.to_numpy())
    ok = np.asarray(res.ok)
    X_spec = np.asarray(res.X).reshape(len(d), -1)
    lab = d.labels
    X_lab = lab[["teff", "logg", "feh"]].to_numpy()
    tr = np.intersect1d(d.train_idx, np.flatnonzero(ok))
    va = np.intersect1d(d.val_idx, np.flatnonzero(ok))
    alphas = np.logspace(-3, 3, 13)
    models = {
        "labels (Teff, logg, [Fe/H])": (make_pipeline(PolynomialFeatures(2), StandardScaler(), RidgeCV(alphas)), X_lab),
        "spectrum (denoised flux)": (make_pipeline(StandardScaler(), RidgeCV(alphas * 100)), X_spec),
        "spectrum + labels": (make_pipeline(StandardScaler(), RidgeCV(alphas * 100)), np.hstack([X_spec, PolynomialFeatures(2).fit_transform(X_lab)])),
    }
    rows = []
    for target in ("age", "mass"):
        y = np.log(lab[target].to_numpy())
        truth = lab[f"{target}_true"].to_numpy()
        cat = lab[target].to_numpy()
        med = np.median(cat[tr])
        rows.append((target, "trivial (training median)", *m1m2(np.full(va.size, med), truth[va]), *m1m2(np.full(va.size, med), cat[va])))
        for name, (model, X) in models.items():
            model.fit(X[tr], y[tr])
            p = np.exp(model.predict(X[va]))
            rows.append((target, name, *m1m2(p, truth[va]), *m1m2(p, cat[va])))
    dt = time.perf_counter() - t0
    lines = [
        "# Learnability of the SIMULATED demo set (`benchmarks/bench_learnability.py`)",
        "",
        f"`load_demo()`: {len(d)} simulated spectra, {ok.sum()} pass the paper's quality cuts; "
        f"train {tr.size} / validation {va.size} (the fixed 8:2 split). Ridge regression on log(target), "
        "alpha by internal CV, features standardised.",
        "",
        "| target | features | M1 vs truth | M2 vs truth (%) | M1 vs catalog | M2 vs catalog (%) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for t, n, a, b, c, e in rows:
        lines.append(f"| {t} | {n} | {a:.3f} | {b:.1f} | {c:.3f} | {e:.1f} |")
    lines += [
        "",
        "Units: age Gyr, mass Msun. 'truth' = noise-free `age_true` / `mass_true`; 'catalog' = the values with",
        "asteroseismic-like errors that a model is trained on.",
        "",
        f"Wall time {dt:.0f} s (loading {t_load:.0f} s) on the shared 2-core dev machine.",
        "",
        "Reading: the spectrum beats the atmospheric parameters alone because the simulated spectra carry",
        "[C/N] (CN and CH bands, set by mass through first dredge-up) and [alpha/Fe] (older at high alpha),",
        "which Teff, logg and [Fe/H] do not fully encode. The data are simulated: these numbers say the",
        "signal is there to learn, not how well real LAMOST spectra determine ages.",
    ]
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
