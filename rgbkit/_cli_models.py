"""``rgbkit train`` and ``rgbkit predict``: thin command-line wrappers over rgbkit.ensemble."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

__all__ = ["add_parsers", "add_train_parser", "add_predict_parser", "cli_train", "cli_predict", "write_table"]


def add_parsers(sub) -> None:
    add_train_parser(sub)
    add_predict_parser(sub)


def add_train_parser(sub) -> argparse.ArgumentParser:
    from .train import DEFAULT_EPOCHS

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
    return p


def add_predict_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("predict", help="predict ages and masses for LAMOST FITS files",
                       description="Read LAMOST spectra, preprocess them as the models' cards say, "
                                   "and write mean and spread per model to a table.")
    p.add_argument("paths", nargs="+", help="files, folders or globs")
    p.add_argument("--models", nargs="+", default=["age", "mass"],
                   help="model folders, or 'age'/'mass' for the shipped ones [age mass]")
    p.add_argument("--out", default="predictions.parquet", help=".parquet, .csv or .fits [predictions.parquet]")
    p.add_argument("--device", default="auto")
    p.add_argument("--workers", type=int, default=1, help="reader processes")
    p.set_defaults(func=cli_predict)
    return p


def demo_training_arrays(progress: bool = True) -> dict:
    """The demo set preprocessed with the paper's settings and split as ``load_demo`` says.

    Returns a dict: ``X_train``, ``X_val`` (float32 (n, 64, 64)), ``labels_train``,
    ``labels_val`` (DataFrames, rows matching X), ``preprocessing`` (the
    Preprocessor config), ``dropped`` (spectra refused by preprocessing).
    Spectra the preprocessing drops (e.g. the 6300-6850 A gap) are left out.
    """
    from .datasets import load_demo
    from .preprocess import Preprocessor

    d = load_demo(progress=progress)
    pre = Preprocessor()
    res = pre.run(d.wavelength, d.flux, z=d.z if pre.rest_frame else None, progress=progress)
    tr = np.intersect1d(d.train_idx, np.flatnonzero(res.ok))
    va = np.intersect1d(d.val_idx, np.flatnonzero(res.ok))
    return {"X_train": res.X[tr], "X_val": res.X[va],
            "labels_train": d.labels.iloc[tr].reset_index(drop=True),
            "labels_val": d.labels.iloc[va].reset_index(drop=True),
            "preprocessing": pre.config, "dropped": int((~res.ok).sum()), "n_total": len(d)}


def _training_data(name: str, target: str):
    """(X_train, y_train, X_val, y_val, preprocessing config, data name)."""
    if name != "demo":
        raise SystemExit(f"--data {name!r}: only 'demo' is supported by the command line for now; "
                         "use rgbkit.ensemble.Ensemble.fit from Python for your own arrays")
    d = demo_training_arrays()
    return (d["X_train"], d["labels_train"][target].to_numpy(np.float64), d["X_val"],
            d["labels_val"][target].to_numpy(np.float64), d["preprocessing"], "demo (simulated)")


def cli_train(args) -> int:
    import torch

    from .ensemble import Ensemble
    from .models.densenet import paper_config, small_config, tiny_config
    from .train import DEFAULT_EPOCHS, TrainConfig

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


def _load_model(spec: str, device: str):
    from .ensemble import UNITS, Ensemble, load_pretrained

    if spec in UNITS and not Path(spec).exists():
        return load_pretrained(spec, device=device)
    return Ensemble.load(spec, device=device)


def write_table(df, path: str | Path) -> Path:
    """Write a DataFrame as Parquet, CSV or FITS, chosen by the file suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".parquet":
        df.to_parquet(path, index=False)
    elif suffix == ".csv":
        df.to_csv(path, index=False)
    elif suffix in (".fits", ".fit"):
        from astropy.table import Table

        Table.from_pandas(df).write(path, overwrite=True)
    else:
        raise SystemExit(f"--out {path}: unknown table format {suffix!r} (use .parquet, .csv or .fits)")
    return path


def cli_predict(args) -> int:
    import pandas as pd

    from .io.lamost import read_many
    from .preprocess import Preprocessor

    models = [_load_model(m, args.device) for m in args.models]
    paths = args.paths[0] if len(args.paths) == 1 else args.paths
    spectra, refused = read_many(paths, workers=args.workers)
    print(f"{len(spectra)} spectra read, {len(refused)} files refused")
    rows = []
    for s in spectra:
        r = s.meta.as_row()
        rows.append({"file": Path(r["path"]).name if r.get("path") else "", "obsid": r["obsid"],
                     "designation": r["designation"], "ra": r["ra"], "dec": r["dec"], "snr_g": r["snr_g"]})
    df = pd.DataFrame(rows, columns=["file", "obsid", "designation", "ra", "dec", "snr_g"])
    ok_all = np.ones(len(spectra), bool)
    reasons = [""] * len(spectra)
    cache = {}
    for ens in models:
        if ens.preprocessing is None:
            raise SystemExit(f"{ens.folder}: its card has no preprocessing settings; cannot predict from files")
        key = repr(sorted(ens.preprocessing.items()))
        if key not in cache:  # models sharing settings share one preprocessing pass
            cache[key] = Preprocessor.from_config(ens.preprocessing).run_spectra(spectra, progress=True)
        prep = cache[key]
        p = ens._scatter(ens.predict(prep.X[prep.ok], progress=True), prep.ok)
        df[ens.target] = p.mean
        df[f"{ens.target}_err"] = p.std
        ok_all &= prep.ok
        reasons = [a or b for a, b in zip(reasons, prep.reasons)]
    df["ok"] = ok_all
    df["reason"] = reasons
    if refused:
        bad = pd.DataFrame({"file": [Path(str(p)).name for p, _ in refused], "ok": False,
                            "reason": [str(r) for _, r in refused]})
        df = pd.concat([df, bad], ignore_index=True)
    out = write_table(df, args.out)
    print(f"{int(ok_all.sum())} predicted, {int((~ok_all).sum())} dropped by preprocessing -> {out}")
    for ens in models:
        col = df[ens.target].dropna()
        if len(col):
            print(f"  {ens.target}: median {col.median():.3g} {ens.units}, "
                  f"median uncertainty {df[f'{ens.target}_err'].dropna().median():.3g} {ens.units}")
    return 0
