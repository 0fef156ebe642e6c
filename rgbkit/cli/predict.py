"""``rgbkit predict``: ages and masses for LAMOST FITS files into a table."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def add_parser(sub) -> None:
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


def _load_model(spec: str, device: str):
    from ..ensemble import UNITS, Ensemble, load_pretrained

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

    from ..ensemble import predict_rows
    from ..io.lamost import read_many
    from ..preprocess import Preprocessor

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
        p = predict_rows(ens, prep.X, prep.ok, progress=True)
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
