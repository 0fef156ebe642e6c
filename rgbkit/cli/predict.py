"""``rgbkit predict``: ages and masses for LAMOST FITS files into a table."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import ood
from .args import CliError, input_files, output_file, positive_int

TABLE_SUFFIXES = (".parquet", ".csv", ".fits", ".fit")


def add_parser(sub) -> None:
    p = sub.add_parser("predict", help="predict ages and masses for LAMOST FITS files",
                       description="Read LAMOST spectra, preprocess them as the models' cards say, "
                                   "and write mean and spread per model to a table, with the de-biased "
                                   "value (for populations) when the card has one. Spectra out of the "
                                   "networks' domain (rgbkit.ood) get ood True, a reason, and no values.")
    p.add_argument("paths", nargs="+", help="files, folders or globs")
    p.add_argument("--models", nargs="+", default=["age", "mass"],
                   help="model folders, or 'age'/'mass' for the shipped ones [age mass]")
    p.add_argument("--out", default="predictions.parquet", help=".parquet, .csv or .fits [predictions.parquet]")
    p.add_argument("--device", default="auto")
    p.add_argument("--workers", type=positive_int, default=1, help="reader processes")
    p.set_defaults(func=cli_predict)


def _load_model(spec: str, device: str):
    from ..ensemble import UNITS, Ensemble, load_pretrained

    if spec in UNITS and not Path(spec).exists():
        return load_pretrained(spec, device=device)
    if not Path(spec).is_dir():
        raise CliError(f"--models {spec}: no such model folder (give a folder, or 'age' / 'mass')")
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


def _domain_bits(spectra, prep, ok, models) -> np.ndarray:
    """rgbkit.ood bits of the preprocessed rows (the shipped domain reference for the shipped age model)."""
    from ..catalog.domain import domain_model
    from ..labelfit import fit_labels

    age = next((m for m in models if m.target == "age"), None)
    z = np.nan_to_num(np.array([s.meta.z for s in spectra], dtype=np.float64))
    res = prep.stages["resampled"]
    fit = {k: np.full(len(spectra), np.nan) for k in ("teff", "logg", "feh", "chi2")}
    if ok.any():
        for k, v in fit_labels(res[ok], prep.wavelength, z[ok]).items():
            fit[k][ok] = v
    return ood.check(res, prep.X, fit, domain_model(age), rows=ok)


def cli_predict(args) -> int:
    import pandas as pd

    from ..ensemble import predict_rows
    from ..io.lamost import read_many
    from ..preprocess import Preprocessor

    output_file(args.out, TABLE_SUFFIXES)
    paths = input_files(args.paths)
    models = [_load_model(m, args.device) for m in args.models]
    spectra, refused = read_many(paths, workers=args.workers)
    print(f"{len(spectra)} spectra read, {len(refused)} files refused")
    if not spectra:
        for path, reason in refused[:20]:
            print(f"  refused {path}: {reason}")
        raise CliError(f"none of the {len(refused)} input files could be read; nothing to predict")
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
            raise CliError(f"{ens.folder}: its card has no preprocessing settings; cannot predict from files")
        key = repr(sorted(ens.preprocessing.items()))
        if key not in cache:  # models sharing settings share one preprocessing pass
            cache[key] = Preprocessor.from_config(ens.preprocessing).run_spectra(spectra, progress=True,
                                                                                 keep_stages=True)
        prep = cache[key]
        p = predict_rows(ens, prep.X, prep.ok, progress=True)
        df[ens.target] = p.mean
        df[f"{ens.target}_err"] = p.std
        if p.debiased is not None:
            df[f"{ens.target}_debiased"] = p.debiased
            df[f"{ens.target}_debiased_lo"], df[f"{ens.target}_debiased_hi"] = p.debiased_lo, p.debiased_hi
        ok_all &= prep.ok
        reasons = [a or b for a, b in zip(reasons, prep.reasons)]
    bits = _domain_bits(spectra, next(iter(cache.values())), ok_all, models) if cache else np.zeros(len(df), int)
    out_of_domain = bits != 0
    df["ood"] = out_of_domain
    df["ood_reason"] = ood.describe(bits) if len(bits) else []
    for ens in models:  # the networks' numbers mean nothing for these rows
        for col in [c for c in df.columns if c == ens.target or c.startswith(f"{ens.target}_")]:
            df.loc[out_of_domain, col] = np.nan
    df["ok"] = ok_all
    df["reason"] = reasons
    if refused:
        bad = pd.DataFrame({"file": [Path(str(p)).name for p, _ in refused], "ok": False,
                            "reason": [str(r) for _, r in refused]})
        df = pd.concat([df, bad], ignore_index=True)
    out = write_table(df, args.out)
    print(f"{int((ok_all & ~out_of_domain).sum())} predicted, {int((~ok_all).sum())} dropped by preprocessing, "
          f"{int((ok_all & out_of_domain).sum())} refused as out of domain -> {out}")
    for ens in models:
        col = df[ens.target].dropna()
        if len(col):
            print(f"  {ens.target}: median {col.median():.3g} {ens.units}, "
                  f"median uncertainty {df[f'{ens.target}_err'].dropna().median():.3g} {ens.units}")
    return 0
