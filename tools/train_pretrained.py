"""Train the pretrained age and mass ensembles shipped in rgbkit/pretrained/: ONE command.

They are trained on the SIMULATED demo set (``rgbkit.datasets.load_demo``)
with its fixed splits: weights on "train"; each member's best epoch, the
spread scale and the de-biasing (:mod:`rgbkit.debias`) on "validation";
every number in the card's ``metrics.test`` on "test", which chose nothing.
Sized for a shared 2-core CPU: ``small_config`` (86 k parameters, ~0.35 MB
per member), one torch thread per process and the two targets in two
processes at once (one thread each is much faster than two on a busy
machine). The learning rate is raised from the paper's 1.5e-4 to 1e-3,
annealed (cosine) to 5e-5, so that tens of epochs suffice; the epoch with
the lowest validation M2 is kept, as in the paper, and early stopping ends a
member after ``--patience`` epochs without improvement.

After training, the same command fits the de-biasing on validation, writes
the test metrics into the cards, fits the out-of-domain reference
(``domain.json`` / ``domain.npz``, :mod:`rgbkit.ood`) and rewrites
``frozen_check.npz`` (a few validation inputs with the ensembles' outputs,
which ``tests/test_ensemble.py`` checks the shipped models still reproduce).

Usage::

    python tools/train_pretrained.py --out /tmp/retrain   # both targets, 2 processes, then the steps above
    python tools/train_pretrained.py --target age         # one target in this process (no finishing steps)
    python tools/train_pretrained.py --finish-only        # only the steps after training

then copy ``age/``, ``mass/``, ``domain.*`` and ``frozen_check.npz`` from
``--out`` into rgbkit/pretrained/ (so nothing reads a half-written model
while training runs). Defaults: 10 members (the paper's count), at most 150
epochs, patience 30: about 50 min per target on a quiet 2-core machine
(~5 min per member).

The shipped models are 3 members per target, made with (16.5 min on 2
shared cores, early stopping ended every member between 67 and 87 epochs)::

    python tools/train_pretrained.py --members 3 --out /tmp/retrain

Measured on a quiet 2-core machine (2026-12-02, benchmarks/results/speed.md
section 7): ``--members 10 --packed`` trained both targets side by side in
22 min (one thread each, ``--epochs 60 --patience 20``), and age alone in
22 min with ``--threads 2`` and the default schedule. Those ensembles were
not shipped: on validation they are level with the three shipped members
(age 33.08% vs 33.2%, mass 9.37% vs 9.5%) and the catalog falls from ~480
to ~310 spectra/s with them.
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


def _log(target: str, stop_at: float | None = None):
    t0 = time.perf_counter()

    def cb(member, epoch, history):
        print(f"[{target}] member {member} epoch {epoch}: train loss {history['train_loss'][-1]:.4f}, "
              f"val M2 {history['val_m2'][-1]:.2f}%, {time.perf_counter() - t0:.0f} s", flush=True)
        # a shared machine can be slower than planned: stop (keeping the best weights so far
        # and the members done) rather than lose the run
        return stop_at is not None and time.time() > stop_at
    return cb


def _deadline(hhmm: str | None) -> float | None:
    """Today's (or tomorrow's) epoch seconds of a local HH:MM, or None."""
    if not hhmm:
        return None
    import datetime as dt

    now = dt.datetime.now()
    h, m = (int(v) for v in hhmm.split(":"))
    t = now.replace(hour=h, minute=m, second=0, microsecond=0)
    return (t if t > now else t + dt.timedelta(days=1)).timestamp()


def train_one(args) -> None:
    import torch

    from rgbkit import datasets
    from rgbkit.ensemble import Ensemble
    from rgbkit.models.densenet import paper_config, small_config
    from rgbkit.train import TrainConfig

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    a = datasets.demo_arrays(("train", "validation"))
    (Xtr, ltr), (Xv, lv) = a["train"], a["validation"]
    target = args.target
    epochs = args.epochs or {"age": args.epochs_age, "mass": args.epochs_mass}[target]
    tc = TrainConfig(epochs=epochs, batch_size=args.batch_size, lr=args.lr, patience=args.patience,
                     lr_schedule="cosine", device="cpu", precision=args.precision)
    config = {"small": small_config, "paper": paper_config}[args.arch]()
    ens = Ensemble.fit(Xtr, ltr[target].to_numpy(np.float64), target,
                       n_members=args.members, model_config=config, train_config=tc,
                       X_val=Xv, y_val=lv[target].to_numpy(np.float64),
                       preprocessing=a["preprocessing"], data_name="rgbkit.datasets.load_demo() (SIMULATED)",
                       progress=not args.quiet, callback=_log(target, _deadline(args.deadline)),
                       packed=args.packed)
    wall = time.perf_counter() - t0
    ens.card["notes"] = (
        f"Shipped demo model. Trained on SIMULATED spectra: its numbers say nothing about real stars. "
        f"Sized for a shared 2-core CPU: {args.arch}_config, {len(ens)} members (paper: 10 of a larger network), "
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


def _architecture_note() -> str:
    """Why small_config ships, with the numbers of tools/compare_architectures.py when present."""
    path = REPO / "benchmarks" / "results" / "arch_compare.json"
    measured = ""
    if path.exists():
        r = json.loads(path.read_text())
        s, p = r["nets"]["small_config"], r["nets"]["paper_config"]
        measured = (f"Same splits, same seeds, {r['members']} member(s) x {r['epochs']} epochs ({r['target']}): test M2 "
                    f"{p['test_m2']:.1f}% (paper_config) vs {s['test_m2']:.1f}% (small_config): the bigger network "
                    f"learns faster per epoch. ")
    return (measured + "Trained in full (2026-12-02, benchmarks/results/speed.md section 9, same splits): 10 paper_config "
            "members, packed, bfloat16, lr 1e-3 cosine over 60 epochs, patience 20, reached validation M2 33.1% and test "
            "M2 34.5% (M1 1.65 Gyr) in 22 min on 2 cores; 10 small_config members (150 epochs) 33.1% / 34.8%; these 3 "
            "small_config members 33.2% / 33.8% (M1 1.66 Gyr). The paired bootstrap of the test M2 difference, paper-size "
            "10 minus these 3, is +0.7 points (95%: -0.1 to +1.5): no gain at ~2,800 simulated training stars with 17% "
            "label noise for age, at ~15x the inference cost (10 members x ~5x per member: 247 vs 3,436 test spectra/s, float32, "
            "2 threads). Mass, the same way: test M2 10.1% against 10.3% (bootstrap -0.2, 95% -0.4 to -0.0) in 23 min. "
            "small_config x 3 ships; `rgbkit train --arch paper --members 10 --packed` trains the paper's "
            "system (10 members: 17.6 MB of weights).")


def finish(folder: Path) -> None:
    """The steps after training, on the splits as documented in rgbkit.datasets:

    de-biasing fitted on the CALIBRATION set (rgbkit.datasets.load_calibration:
    4,995 stars, own seed; rgbkit.debias), metrics on TEST
    (written to each card under metrics.test, with which split each number
    comes from), the out-of-domain reference (rgbkit.ood, domain.json/.npz:
    principal components of TRAIN, limits at 99.8% of VALIDATION), and the
    frozen check.
    """
    import pandas as pd
    import torch

    from rgbkit import datasets, ood
    from rgbkit.ensemble import Ensemble

    torch.set_num_threads(1)
    a = datasets.demo_arrays(("train", "validation", "test", "calibration"))
    (Xtr, _), (Xv, lv), (Xte, lte), (Xc, lc) = a["train"], a["validation"], a["test"], a["calibration"]
    for target in ("age", "mass"):
        ens = Ensemble.load(folder / target, device="cpu")
        kinds = (pd.qcut(lc["feh"], 3, labels=False).astype(str) + pd.qcut(lc["logg"], 3, labels=False).astype(str))
        ens.calibrate_debias(Xc, lc[target].to_numpy(), lc[f"{target}_err"].to_numpy(), groups=kinds.to_numpy(),
                             fitted_on=f"calibration set: rgbkit.datasets.load_calibration(), {len(Xc)} stars "
                                       "simulated with their own seed")
        ens.evaluate(Xv, lv[target].to_numpy(), split="val")
        ens.evaluate(Xte, lte[target].to_numpy(), split="test", y_true=lte[f"{target}_true"].to_numpy())
        ens.card["data"]["split"] = {
            "method": "rgbkit.datasets.load_demo split column: train / validation (fixed 8:2 of 3,540 stars) "
                      "and test (1,062 stars simulated with their own seed)",
            "train": "fits the weights",
            "validation": "chooses each member's epoch and fits the spread scale",
            "calibration": "rgbkit.datasets.load_calibration(): 4,995 stars simulated with their own seed "
                           "(after preprocessing " + str(len(Xc)) + "); fits the de-biasing relation only",
            "test": "chooses nothing; every number under metrics.test",
            "n_test": int(len(Xte)), **{k: v for k, v in ens.card["data"].get("split", {}).items()
                                         if k in ("dropped_by_preprocessing", "n_total")}}
        ens.card["metrics_note"] = ("metrics.val is the validation split that chose the epochs and the spread scale "
                                    "(its coverage is 0.68 by construction); the de-biasing was fitted on the "
                                    "calibration set; metrics.test is "
                                    "independent. Labels: the simulator's noisy catalog values; *_vs_truth: the "
                                    "noise-free truth.")
        ens.card["architecture_choice"] = _architecture_note()
        ens.card["which_estimate"] = (
            f"mean ({target}, {target}_std): lowest error for one star, but pulled toward the training mean. "
            f"debiased ({target}_debiased, _lo, _hi): median right at every true value, larger scatter: use it "
            f"for populations (maps, distributions, trends). Clusters: rgbkit.clusters.combine_ages.")
        # the weights are unchanged: rewrite the card only, with its own sha256 recomputed
        from rgbkit.ensemble import CARD_HASH, card_digest

        card = {k: v for k, v in ens.card.items() if k != CARD_HASH}
        card[CARD_HASH] = card_digest(card)
        (folder / target / "card.json").write_text(json.dumps(card, indent=2, allow_nan=True))
        Ensemble.load(folder / target, target=target)  # and check it reads back
        t = ens.card["metrics"]["test"]
        print(json.dumps({"target": target, "test_m2": t["m2"], "test_debiased_m2": t["debiased_m2"],
                          "slope_vs_truth": t.get("log_slope_vs_truth"),
                          "debiased_slope_vs_truth": t.get("debiased_log_slope_vs_truth"),
                          "coverage": t["coverage_68"], "debiased_coverage": t["debiased_coverage_68"]}))
    dom = ood.fit_domain(Xtr, Xv, chi2_max=ood.CHI2_MAX, corr_min=ood.CORR_MIN,
                         info={"made_by": "tools/train_pretrained.py", "data": "load_demo train/validation"})
    dom.save(folder)
    write_check(folder)


def write_check(folder: Path | None = None) -> None:
    """Freeze a few validation inputs and the shipped ensembles' predictions for them."""
    import torch

    from rgbkit import datasets
    from rgbkit.ensemble import Ensemble

    folder = folder or OUT
    torch.set_num_threads(1)
    Xv, lv = datasets.demo_arrays(("validation",))["validation"]
    idx = np.linspace(0, len(Xv) - 1, N_CHECK).astype(int)
    X = Xv[idx]
    out = {"X": X}
    for target in ("age", "mass"):
        p = Ensemble.load(folder / target, device="cpu").predict(X)
        out[f"{target}_mean"], out[f"{target}_std"] = p.mean, p.std
        out[f"{target}_debiased"], out[f"{target}_debiased_lo"], out[f"{target}_debiased_hi"] = (
            p.debiased, p.debiased_lo, p.debiased_hi)
        out[f"{target}_true"] = lv[target].to_numpy()[idx]
    np.savez_compressed(folder / "frozen_check.npz", **out)
    print("wrote", folder / "frozen_check.npz")


def main() -> None:
    global OUT
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", choices=["age", "mass", "both"], default="both")
    p.add_argument("--members", type=int, default=10)
    p.add_argument("--arch", choices=["small", "paper"], default="small", help="network size [small]")
    p.add_argument("--epochs", type=int, default=None, help="max epochs for any target")
    p.add_argument("--epochs-age", type=int, default=150)
    p.add_argument("--epochs-mass", type=int, default=150)
    p.add_argument("--patience", type=int, default=30)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--precision", choices=["auto", "float32", "bfloat16"], default="auto",
                   help="forward passes in bfloat16 where the CPU has it (auto) or float32")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--packed", action="store_true",
                   help="train all members at once as one packed network (rgbkit.packed_train)")
    p.add_argument("--deadline", default=None, help="local HH:MM: stop the current member there and keep the members done")
    p.add_argument("--check-only", action="store_true", help="only rewrite frozen_check.npz")
    p.add_argument("--finish-only", action="store_true",
                   help="only the steps after training (de-biasing, test metrics, domain model, frozen check)")
    p.add_argument("--out", default=None, help=f"folder for age/, mass/ and frozen_check.npz [{OUT}]")
    args = p.parse_args()
    if args.out:
        OUT = Path(args.out).resolve()
    if args.check_only:
        write_check()
        return
    if args.finish_only:
        finish(OUT)
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
    finish(OUT)


if __name__ == "__main__":
    main()
