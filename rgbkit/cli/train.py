"""``rgbkit train``: train a DenseNet-BC ensemble for age or mass (rgbkit.ensemble.Ensemble.fit)."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def add_parser(sub) -> None:
    from ..train import DEFAULT_EPOCHS

    p = sub.add_parser("train", help="train a DenseNet-BC ensemble for age or mass",
                       description="Train an ensemble (paper protocol: --members 10, 450/350 epochs, "
                                   "--arch paper) and write a model folder.")
    p.add_argument("--target", choices=["age", "mass"], required=True)
    p.add_argument("--data", default="demo", help="'demo' (the bundled simulated set) [default: demo]")
    p.add_argument("--members", type=int, default=5, help="ensemble size (paper: 10) [5]")
    p.add_argument("--epochs", type=int, default=None,
                   help=f"max epochs per member [paper: {DEFAULT_EPOCHS['age']} age, {DEFAULT_EPOCHS['mass']} mass]")
    p.add_argument("--arch", choices=["small", "paper", "tiny"], default="small", help="network size [small]")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1.5e-4)
    p.add_argument("--patience", type=int, default=None, help="early stopping patience (off by default)")
    p.add_argument("--lr-schedule", choices=["constant", "cosine"], default="constant",
                   help="constant (paper) or cosine decay to lr/20 [constant]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 is often fastest on a busy machine)")
    p.add_argument("--out", required=True, help="model folder to write")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=cli_train)


def _training_data(name: str, target: str):
    """(X_train, y_train, X_val, y_val, preprocessing config, data name)."""
    if name != "demo":
        raise SystemExit(f"--data {name!r}: only 'demo' is supported by the command line for now; "
                         "use rgbkit.ensemble.Ensemble.fit from Python for your own arrays")
    from ..datasets import demo_training_arrays

    d = demo_training_arrays()
    return (d["X_train"], d["labels_train"][target].to_numpy(np.float64), d["X_val"],
            d["labels_val"][target].to_numpy(np.float64), d["preprocessing"], "demo (simulated)")


def cli_train(args) -> int:
    import torch

    from ..ensemble import Ensemble
    from ..models.densenet import paper_config, small_config, tiny_config
    from ..train import DEFAULT_EPOCHS, TrainConfig

    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise SystemExit(f"{out} exists and is not empty (use --overwrite)")
    Xt, yt, Xv, yv, prep, data_name = _training_data(args.data, args.target)
    config = {"small": small_config, "paper": paper_config, "tiny": tiny_config}[args.arch]()
    tc = TrainConfig(epochs=args.epochs or DEFAULT_EPOCHS[args.target], batch_size=args.batch_size,
                     lr=args.lr, patience=args.patience, lr_schedule=args.lr_schedule, device=args.device)
    print(f"training {args.members} x {args.arch} DenseNet-BC for {args.target}: "
          f"{len(Xt)} training / {len(Xv)} validation spectra, up to {tc.epochs} epochs each")
    t0 = time.perf_counter()
    ens = Ensemble.fit(Xt, yt, args.target, n_members=args.members, model_config=config, train_config=tc,
                       X_val=Xv, y_val=yv, seed=args.seed, preprocessing=prep, data_name=data_name)
    ens.save(out, overwrite=args.overwrite)
    v = ens.card["metrics"]["val"]
    print(f"done in {time.perf_counter() - t0:.0f} s -> {out}")
    print(f"validation: ensemble M1 {v['m1']:.3f} {ens.units}, M2 {v['m2']:.1f}%; members M2 "
          f"{v['member_m2_range'][0]:.1f}-{v['member_m2_range'][1]:.1f}%; 68% coverage "
          f"{v.get('coverage_68_raw', float('nan')):.2f} raw -> {v['coverage_68']:.2f} (spread x{ens.spread_scale:.2f})")
    return 0


