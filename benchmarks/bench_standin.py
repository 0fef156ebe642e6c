"""Train on "your own" labelled spectra, end to end, on the Kepler stand-in.

    .venv/bin/python benchmarks/bench_standin.py [--n 1200] [--members 3] [--epochs 80] [--patience 20]

Writes the stand-in (SIMULATED LAMOST DR7-like files of real APOKASC-2
stars, rgbkit.datasets.write_kepler_standin) to a temporary folder, matches
it to the APOKASC-2 table by Kepler id (TCOMMENT), trains an age and a mass
ensemble with rgbkit.train_labelled (by-star 70/15/15 split), and prints the
match report, test-split accuracy (with a ridge-regression baseline and the
training median on the same split) and the time of each step, as recorded in
benchmarks/results/standin.md.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rgbkit import metrics  # noqa: E402
from rgbkit.datasets import write_kepler_standin  # noqa: E402
from rgbkit.labelled import load_labelled  # noqa: E402
from rgbkit.train import TrainConfig  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1200)
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=80)
    ap.add_argument("--patience", type=int, default=20)
    ap.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate, annealed (cosine) [1e-3, as shipped]")
    ap.add_argument("--arch", default="small")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--folder", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    folder = Path(args.folder or tempfile.mkdtemp(prefix="standin-"))
    t0 = time.perf_counter()
    s = write_kepler_standin(folder, n=args.n, seed=0)
    t_write = time.perf_counter() - t0
    print(s, f"written in {t_write:.0f} s", flush=True)
    for target in ("age", "mass"):
        t0 = time.perf_counter()
        ls = load_labelled(s.spectra, s.tables["apokasc2_csv"], target=target, progress=False)
        t_match = time.perf_counter() - t0
        print(f"\n[{target}] matched in {t_match:.1f} s\n{ls.report}", flush=True)
        tc = TrainConfig(epochs=args.epochs, patience=args.patience, lr=args.lr, lr_schedule="cosine", device="cpu")
        t0 = time.perf_counter()
        ens = ls.train(target, folder / f"model-{target}", members=args.members, arch=args.arch,
                       train_config=tc, progress=False, overwrite=True)
        t_train = time.perf_counter() - t0
        card = ens.card
        te, va, sp = card["metrics"]["test"], card["metrics"]["val"], card["data"]["split"]
        # a linear baseline on the same split (ridge regression of ln y on the 4,096 pixels), for scale:
        # fast, where XGBoost takes many minutes on this shared CPU (rgbkit.train_labelled.compare_baselines runs it)
        from sklearn.linear_model import RidgeCV

        from rgbkit.train_labelled import split_arrays

        parts = split_arrays(ls, ens.folder)
        (Xt, rt), (Xs, rs) = parts["train"], parts["test"]
        ridge = RidgeCV(alphas=np.logspace(-2, 3, 8)).fit(Xt.reshape(len(Xt), -1), np.log(rt[target]))
        px = np.exp(ridge.predict(Xs.reshape(len(Xs), -1)))
        y_train, y_test = rt[target].to_numpy(), rs[target].to_numpy()
        print(f"[{target}] {sp['n_train']}/{sp['n_validation']}/{sp['n_test']} spectra train/val/test; "
              f"trained in {t_train:.0f} s ({args.members} x {args.arch}, epochs run "
              f"{[m['epochs_run'] for m in card['members']]})\n"
              f"[{target}] test: M1 {te['m1']:.3f} {ens.units}, M2 {te['m2']:.1f}%, coverage {te.get('coverage_68', float('nan')):.2f} "
              f"(raw {te.get('coverage_68_raw', float('nan')):.2f}); validation M2 {va['m2']:.1f}%; "
              f"ridge test M2 {metrics.m2(y_test, px):.1f}%; predicting the training median: "
              f"{metrics.m2(y_test, np.full(len(y_test), np.median(y_train))):.1f}%", flush=True)
    print(f"\nfolder {folder}; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
