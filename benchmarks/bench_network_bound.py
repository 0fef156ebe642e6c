"""How fast the catalog's networks alone can go: the ceiling of `rgbkit catalog`.

    .venv/bin/python benchmarks/bench_network_bound.py [--seconds 15] [--rounds 2]

Runs only the forward passes the catalog runs on each spectrum (classifier,
age, mass; packed, fused, in the catalog's precision and batches) on real
preprocessed inputs (the first 2,048 cached simulated DR7 files of
``bench_catalog.survey_files``), with nothing else: no reading,
preprocessing, label fit or writing. One process of one thread alone, then
one per core side by side (as the catalog's workers run). Model sets: the
shipped ones, and 10-member age and mass ensembles (shipped weights cycled,
``bench_speed.ten_member_models``) with the shipped or a 10-member
classifier. Prints a Markdown table; the end-to-end command is measured by
``bench_speed.py --only catalog``.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))


def inputs(path: Path, n: int = 2048) -> None:
    """Preprocessed rows of the first ``n`` cached survey files, saved as .npy."""
    import numpy as np

    from bench_catalog import survey_files
    from rgbkit.io.lamost import read_many
    from rgbkit.preprocess import Preprocessor

    spectra, _ = read_many(survey_files(4000)[:n], progress=False)
    pre = Preprocessor().run_spectra(spectra)
    np.save(path, pre.X[pre.ok])


def worker(x_path: str, seconds: float, age: str, mass: str, clf: str) -> None:
    """Forward passes only, one thread, until ``seconds`` pass; prints spectra/s."""
    import numpy as np
    import torch

    from rgbkit.catalog.models import fast_model
    from rgbkit.classify import Classifier
    from rgbkit.ensemble import Ensemble, predict_rows
    from rgbkit.precision import resolve_precision

    torch.set_num_threads(1)
    prec = resolve_precision("auto")
    models = [fast_model(cls.load(p), prec) for cls, p in ((Classifier, clf), (Ensemble, age), (Ensemble, mass))]
    X = np.load(x_path)[:512]
    ok = np.ones(len(X), bool)
    for m in models:
        predict_rows(m, X[:64], ok[:64], 128)
    t, n = time.perf_counter(), 0
    while time.perf_counter() - t < seconds:
        for m in models:
            predict_rows(m, X, ok, 128)  # the catalog's batch_size
        n += len(X)
    print(f"{n / (time.perf_counter() - t):.1f}")


def side_by_side(k: int, args: list[str]) -> float:
    """``k`` worker processes at once; their summed spectra/s."""
    cmd = [sys.executable, __file__, "--worker", *args]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(k)]
    return sum(float(p.communicate()[0].split()[-1]) for p in procs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        x, s, age, mass, clf = a.worker
        return worker(x, float(s), age, mass, clf)
    import statistics

    from bench_speed import load, ten_member_models
    from rgbkit.ensemble import PRETRAINED_DIR
    from rgbkit.precision import resolve_precision

    tmp = Path(tempfile.mkdtemp(prefix="rgbkit_bound_"))
    x_path = tmp / "X.npy"
    inputs(x_path)
    ten = {k: str(v) for k, v in ten_member_models(tmp / "models").items()}
    ship = {k: str(PRETRAINED_DIR / k) for k in ("age", "mass", "classifier")}
    sets = {"shipped (age 3, mass 3, classifier 5)": ship,
            "10-member age and mass, shipped classifier": {**ten, "classifier": ship["classifier"]},
            "10 members each": ten}
    cores = os.cpu_count() or 1
    start = load()
    rates: dict = {}
    for _ in range(a.rounds):
        for name, m in sets.items():
            args = [str(x_path), str(a.seconds), m["age"], m["mass"], m["classifier"]]
            for k in (1, cores):
                rates.setdefault((name, k), []).append(side_by_side(k, args))
                print(f"  {name}, {k} process(es): {rates[(name, k)][-1]:,.0f} spectra/s", flush=True)
    print(f"\nNetworks only ({resolve_precision('auto')}, batches of 128, one thread a process), "
          f"{a.rounds} interleaved rounds of {a.seconds:g} s, median; load average at start {start}, "
          f"at end {load()}.\n")
    print(f"| models | 1 process | {cores} processes side by side |\n| --- | ---: | ---: |")
    for name in sets:
        print(f"| {name} | {statistics.median(rates[(name, 1)]):,.0f} | "
              f"{statistics.median(rates[(name, cores)]):,.0f} |")


if __name__ == "__main__":
    main()
