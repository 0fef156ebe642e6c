"""Train the pretrained age and mass ensembles shipped in rgbkit/pretrained/.

They are trained on the SIMULATED demo set (``rgbkit.datasets.load_demo``,
its fixed 8:2 split) and sized for a shared 2-core CPU: ``small_config``
(86 k parameters, ~0.35 MB per member), 3 members per target, one torch
thread per process and the two targets in two processes at once (one
thread each is much faster than two on a busy machine). The learning rate
is raised from the paper's 1.5e-4 to 1e-3, annealed (cosine) to 5e-5, so
that tens of epochs suffice (the machine is shared: ~10-20 s per epoch);
the epoch with the lowest validation M2 is kept, as in the paper, and early
stopping ends a member after ``--patience`` epochs without improvement.

Usage::

    python tools/train_pretrained.py                # both targets, 2 processes
    python tools/train_pretrained.py --target age   # one target in this process

The shipped models were made with (16.5 min on 2 shared cores, early stopping
ended every member between 67 and 87 epochs)::

    python tools/train_pretrained.py --members 3 --epochs-age 150 --epochs-mass 150 --patience 30 --out /tmp/retrain

and the three files/folders then copied into rgbkit/pretrained/ (so nothing
reads a half-written model while training runs).

It also writes ``rgbkit/pretrained/frozen_check.npz``: a few validation
inputs with the shipped ensembles' predictions, which
``tests/test_ensemble.py`` checks the shipped models still reproduce.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's rgbkit, whatever an installed copy says
OUT = REPO / "rgbkit" / "pretrained"  # --out writes elsewhere (e.g. to swap in when done)
N_CHECK = 6


def _log(target: str):
    t0 = time.perf_counter()

    def cb(member, epoch, history):
        print(f"[{target}] member {member} epoch {epoch}: train loss {history['train_loss'][-1]:.4f}, "
              f"val M2 {history['val_m2'][-1]:.2f}%, {time.perf_counter() - t0:.0f} s", flush=True)
    return cb


def train_one(args) -> None:
    import torch

    from rgbkit.datasets import demo_training_arrays
    from rgbkit.ensemble import Ensemble
    from rgbkit.models.densenet import small_config
    from rgbkit.train import TrainConfig

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    d = demo_training_arrays(progress=False)
    target = args.target
    epochs = args.epochs or {"age": args.epochs_age, "mass": args.epochs_mass}[target]
    tc = TrainConfig(epochs=epochs, batch_size=args.batch_size, lr=args.lr, patience=args.patience,
                     lr_schedule="cosine", device="cpu")
    ens = Ensemble.fit(d["X_train"], d["labels_train"][target].to_numpy(np.float64), target,
                       n_members=args.members, model_config=small_config(), train_config=tc,
                       X_val=d["X_val"], y_val=d["labels_val"][target].to_numpy(np.float64),
                       preprocessing=d["preprocessing"], data_name="rgbkit.datasets.load_demo() (SIMULATED)",
                       progress=not args.quiet, callback=_log(target))
    wall = time.perf_counter() - t0
    ens.card["data"]["split"] = {"method": "load_demo split column (fixed 8:2)",
                                 "dropped_by_preprocessing": d["dropped"], "n_total": d["n_total"]}
    ens.card["notes"] = (
        f"Shipped demo model. Trained on SIMULATED spectra: its numbers say nothing about real stars. "
        f"Sized for a shared 2-core CPU: small_config, {len(ens)} members (paper: 10 of a larger network), "
        f"lr {args.lr:g} with cosine decay (paper: constant 1.5e-4) for at most {epochs} epochs (paper: 450 age / 350 mass) with early "
        f"stopping patience {args.patience}; {wall / 60:.1f} min wall time with {args.threads} torch thread(s). "
        f"Made by tools/train_pretrained.py.")
    ens.card["train_wall_seconds"] = round(wall, 1)
    ens.save(OUT / target, overwrite=True)
    v = ens.card["metrics"]["val"]
    print(json.dumps({"target": target, "minutes": round(wall / 60, 1), "m1": v["m1"], "m2": v["m2"],
                      "member_m2_range": v["member_m2_range"], "coverage_raw": v.get("coverage_68_raw"),
                      "coverage": v["coverage_68"], "spread_scale": ens.spread_scale,
                      "best_epochs": [m["best_epoch"] for m in ens.card["members"]],
                      "epochs_run": [m["epochs_run"] for m in ens.card["members"]]}))


def write_check() -> None:
    """Freeze a few validation inputs and the shipped ensembles' predictions for them."""
    import torch

    from rgbkit.datasets import demo_training_arrays
    from rgbkit.ensemble import Ensemble

    torch.set_num_threads(1)
    d = demo_training_arrays(progress=False)
    idx = np.linspace(0, len(d["X_val"]) - 1, N_CHECK).astype(int)
    X = d["X_val"][idx]
    out = {"X": X}
    for target in ("age", "mass"):
        p = Ensemble.load(OUT / target, device="cpu").predict(X)
        out[f"{target}_mean"], out[f"{target}_std"] = p.mean, p.std
        out[f"{target}_true"] = d["labels_val"][target].to_numpy()[idx]
    np.savez_compressed(OUT / "frozen_check.npz", **out)
    print("wrote", OUT / "frozen_check.npz")


def main() -> None:
    global OUT
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", choices=["age", "mass", "both"], default="both")
    p.add_argument("--members", type=int, default=3)
    p.add_argument("--epochs", type=int, default=None, help="max epochs for any target")
    p.add_argument("--epochs-age", type=int, default=24)
    p.add_argument("--epochs-mass", type=int, default=24)
    p.add_argument("--patience", type=int, default=10)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--check-only", action="store_true", help="only rewrite frozen_check.npz")
    p.add_argument("--out", default=None, help=f"folder for age/, mass/ and frozen_check.npz [{OUT}]")
    args = p.parse_args()
    if args.out:
        OUT = Path(args.out).resolve()
    if args.check_only:
        write_check()
        return
    if args.target != "both":
        train_one(args)
        return
    # Both targets at once, one process each.
    argv = [a for a in sys.argv[1:]]
    procs = [subprocess.Popen([sys.executable, __file__, "--target", t, "--quiet", *argv]) for t in ("age", "mass")]
    codes = [pr.wait() for pr in procs]
    if any(codes):
        raise SystemExit(f"training failed: exit codes {codes}")
    write_check()


if __name__ == "__main__":
    main()
