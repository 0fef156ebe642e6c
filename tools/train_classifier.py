"""Train the shipped RGB/RC classifier on the SIMULATED load_rgb_rc() data.

    .venv/bin/python tools/train_classifier.py                # writes rgbkit/pretrained/classifier
    .venv/bin/python tools/train_classifier.py --measure      # time one epoch and exit

The shipped classifier (2026-12-02) came from

    .venv/bin/python tools/train_classifier.py --scale 1.0 --members 10 --packed --precision auto \
        --epochs 60 --patience 15 --threads 2 --budget-min 25 --out /tmp/clf10s1

(12.6 min on 2 cores with bfloat16), of which the first 5 members were kept: the smallest
ensemble within 0.5% of the best validation log-loss among 2, 3, 5 and 10 members (the card's
``training.protocol_note`` says so; see benchmarks/results/trust.md).

The paper's protocol is 10 members x 150 epochs (Adam 5e-4, lowest validation
loss). The shipped model is smaller to fit a ~15-20 minute CPU budget on 2
shared cores: ``small_config`` networks, fewer members, fewer epochs with
patience and a cosine learning-rate schedule; the card records exactly what was done.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from rgbkit.classify import Classifier, default_train_config
from rgbkit.datasets import load_rgb_rc
from rgbkit.ensemble import PRETRAINED_DIR
from rgbkit.models.densenet import paper_config, small_config
from rgbkit.preprocess import Preprocessor


def prepared(scale: float):
    data = load_rgb_rc(scale=scale)
    prep = Preprocessor()
    res = prep.run(data.wavelength, data.flux, n_jobs=2)
    lab = data.labels
    keep = res.ok
    print(f"load_rgb_rc(scale={scale}): {len(lab)} spectra, {int((~keep).sum())} dropped by preprocessing")
    out = {}
    for split in ("train", "validation", "test"):
        idx = np.flatnonzero((lab["split"].to_numpy() == split) & keep)
        out[split] = (res.X[idx], lab["evstate"].to_numpy()[idx])
    return out, prep.config


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=0.5)
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--patience", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--budget-min", type=float, default=18.0, help="stop starting/continuing members after this")
    ap.add_argument("--lr-schedule", default="cosine", choices=("constant", "cosine"),
                    help="cosine (default here): steadier short runs; the paper's is constant")
    ap.add_argument("--threads", type=int, default=1, help="1: on a busy 2-core machine 2 threads were 7x slower")
    ap.add_argument("--packed", action="store_true", help="train all members at once as one network")
    ap.add_argument("--precision", choices=("auto", "float32", "bfloat16"), default="auto",
                    help="forward passes in bfloat16 where the CPU has it (auto) or float32")
    ap.add_argument("--arch", choices=("small", "paper"), default="small")
    ap.add_argument("--out", type=Path, default=PRETRAINED_DIR / "classifier")
    ap.add_argument("--measure", action="store_true", help="time one epoch of one member and exit")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    sets, pconf = prepared(a.scale)
    (Xt, yt), (Xv, yv), (Xs, ys) = sets["train"], sets["validation"], sets["test"]
    mc = {"small": small_config, "paper": paper_config}[a.arch]()
    tc = default_train_config(epochs=1 if a.measure else a.epochs, patience=a.patience,
                              batch_size=a.batch_size, lr_schedule=a.lr_schedule, device="cpu",
                              precision=a.precision)
    t0 = time.perf_counter()

    def budget(member, epoch, history):
        return time.perf_counter() - t0 > a.budget_min * 60

    clf = Classifier.fit(Xt, yt, X_val=Xv, y_val=yv, n_members=a.members, model_config=mc, train_config=tc,
                         preprocessing=pconf, data_name=f"load_rgb_rc(scale={a.scale}) SIMULATED",
                         callback=None if a.measure else budget, packed=a.packed)
    print(f"{len(clf)} member(s) in {time.perf_counter() - t0:.0f} s")
    if a.measure:
        return
    test = clf.evaluate(Xs, ys, name="test")
    val = clf.card["metrics"]["val"]
    clf.card["training"]["protocol_note"] = (
        f"shipped size: {len(clf)} x {a.arch}_config members{' (packed)' if a.packed else ''}, up to {a.epochs} "
        f"epochs with patience {a.patience}, {a.budget_min} min CPU budget, precision {a.precision}, "
        f"load_rgb_rc(scale={a.scale}) (paper: 10 members x 150 epochs)")
    clf.save(a.out, overwrite=True)
    for name, m in (("validation", val), ("test", test)):
        print(f"{name}: contamination {100 * m['contamination']:.1f}%, completeness {100 * m['completeness']:.1f}%, "
              f"accuracy {100 * m['accuracy']:.1f}% (n={m['n']})")
    print(f"saved to {a.out}")


if __name__ == "__main__":
    main()
