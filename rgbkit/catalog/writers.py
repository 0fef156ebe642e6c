"""Catalog files: one Parquet part per chunk, the merged Parquet/FITS/CSV file, and reading any of them back."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..io.files import atomic_write
from .schema import COLUMNS, empty_frame, schema_metadata, to_arrow

__all__ = ["write_part", "merge", "read_catalog"]


def write_part(df: pd.DataFrame, path: Path) -> None:
    import pyarrow.parquet as pq

    atomic_write(path, lambda t: pq.write_table(to_arrow(df, schema_metadata()), t))


def read_catalog(path) -> pd.DataFrame:
    """Read a catalog written by :func:`build_catalog` (a run folder or the merged file)."""
    path = Path(path)
    if path.is_dir():
        merged = [p for p in (path / f"catalog.{e}" for e in ("parquet", "fits", "csv")) if p.exists()]
        if merged:
            path = merged[0]
        else:
            parts = sorted(path.glob("parts/part-*.parquet"))
            return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True) if parts else pd.DataFrame()
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        return pd.read_csv(path, comment="#", keep_default_na=False, na_values=[""])
    from astropy.table import Table

    df = Table.read(path).to_pandas()
    for c in df.columns:
        if df[c].dtype == object and len(df) and isinstance(df[c].iat[0], bytes):
            df[c] = [v.decode() for v in df[c]]
    for c in ("obsid", "kic"):
        if c in df:
            df[c] = pd.array(np.where(np.isfinite(df[c]), df[c], np.nan)).astype("Int64")
    return df


def merge(out: Path, fmt: str, meta: dict) -> Path:
    """Merge the run's parts (those with a manifest) into ``out/catalog.<fmt>``, column texts included."""
    parts = [p for p in sorted((out / "parts").glob("part-*.parquet")) if p.with_suffix(".json").exists()]
    dest = out / f"catalog.{fmt}"
    if fmt == "parquet":
        import pyarrow.parquet as pq

        def write(tmp):
            writer = None
            for p in parts:
                t = to_arrow(pd.read_parquet(p), meta)
                writer = writer or pq.ParquetWriter(tmp, t.schema)
                writer.write_table(t)
            if writer is None:
                pq.write_table(to_arrow(empty_frame(), meta), tmp)
            else:
                writer.close()
    elif fmt == "csv":
        def write(tmp):
            with open(tmp, "w") as fh:
                fh.write(f"# rgbkit catalog, rgbkit {meta['rgbkit_version']}\n")
                for k, (u, d) in COLUMNS.items():
                    fh.write(f"# {k} [{u or '-'}]: {d}\n")
                header = True
                for p in parts:
                    pd.read_parquet(p).to_csv(fh, index=False, header=header)
                    header = False
                if header:
                    fh.write(",".join(COLUMNS) + "\n")
    elif fmt == "fits":
        from astropy.table import Table

        def write(tmp):
            df = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True) if parts else empty_frame()
            for c in ("obsid", "kic"):
                df[c] = df[c].astype("float64")  # FITS has no nullable integers: NaN when missing
            for c in df.columns:
                if df[c].dtype == object:
                    df[c] = df[c].fillna("").astype(str)
            t = Table.from_pandas(df)
            for k, (u, d) in COLUMNS.items():
                if u and u != "dex":  # dex is no FITS unit: it stays in the description
                    t[k].unit = {"Msun": "solMass", "Gyr": "Gyr", "deg": "deg", "K": "K", "Angstrom": "Angstrom"}[u]
                t[k].description = d
            t.meta["RGBKITV"] = meta["rgbkit_version"]
            t.meta["COMMENTS"] = [f"{k} [{u or '-'}]: {d}" for k, (u, d) in COLUMNS.items()]
            t.write(tmp, format="fits", overwrite=True)
    else:
        raise ValueError(f"format must be parquet, fits or csv, not {fmt!r}")
    atomic_write(dest, write)
    return dest

