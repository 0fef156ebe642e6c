"""``rgbkit summary``: read LAMOST files and print a metadata table."""
from __future__ import annotations

from pathlib import Path

from ..io.paths import REPO_ROOT, shared_data_dir
from .args import input_files, positive_int

DEFAULT_REAL_DATA = (shared_data_dir() or REPO_ROOT.parent / "shared" / "data") / "lamost"


def summary_table(paths_or_glob, workers: int = 1):
    """Read LAMOST files and return (DataFrame of metadata, refused list)."""
    import pandas as pd

    from ..io.lamost import read_many

    spectra, refused = read_many(paths_or_glob, workers=workers)
    rows = []
    for s in spectra:
        r = s.meta.as_row()
        r.update(npix=len(s), wmin=float(s.wavelength[0]), wmax=float(s.wavelength[-1]),
                 good_frac=float((s.ivar > 0).mean()), file=Path(r.pop("path")).name)
        rows.append(r)
    return pd.DataFrame(rows), refused


def cmd_summary(args) -> int:
    import pandas as pd

    df, refused = summary_table(input_files(args.paths), workers=args.workers)
    cols = ["file", "data_release", "designation", "objclass", "subclass", "snr_g", "z", "npix", "wmin", "wmax"]
    with pd.option_context("display.max_rows", args.max_rows, "display.width", 200):
        print(df[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}") if len(df) else "(no spectra)")
    print(f"\n{len(df)} spectra read, {len(refused)} refused")
    for path, reason in refused:
        print(f"  refused {path}: {reason}")
    return 0 if len(df) else 1


def add_parser(sub) -> None:
    s = sub.add_parser("summary", help="read LAMOST files and print a metadata table")
    s.add_argument("paths", nargs="?", default=str(DEFAULT_REAL_DATA), help="folder, glob or file")
    s.add_argument("--workers", type=positive_int, default=1)
    s.add_argument("--max-rows", type=positive_int, default=60)
    s.set_defaults(func=cmd_summary)
