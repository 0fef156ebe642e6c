"""The ``rgbkit`` command: a thin dispatcher over library functions."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .io.paths import REPO_ROOT, shared_data_dir

DEFAULT_REAL_DATA = (shared_data_dir() or REPO_ROOT.parent / "shared" / "data") / "lamost"


def summary_table(paths_or_glob, workers: int = 1):
    """Read LAMOST files and return (DataFrame of metadata, refused list)."""
    import pandas as pd

    from .io.lamost import read_many

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

    df, refused = summary_table(args.paths, workers=args.workers)
    cols = ["file", "data_release", "designation", "objclass", "subclass", "snr_g", "z", "npix", "wmin", "wmax"]
    with pd.option_context("display.max_rows", args.max_rows, "display.width", 200):
        print(df[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}") if len(df) else "(no spectra)")
    print(f"\n{len(df)} spectra read, {len(refused)} refused")
    for path, reason in refused:
        print(f"  refused {path}: {reason}")
    return 0 if len(df) else 1


def cmd_app(args) -> int:
    app = REPO_ROOT / "apps" / "dashboard.py"
    if not app.exists():
        print("dashboard not built yet; showing the real spectra summary instead")
        args.paths = str(DEFAULT_REAL_DATA)
        args.workers, args.max_rows = 1, 20
        return cmd_summary(args)
    cmd = [sys.executable, "-m", "panel", "serve", str(app), "--address", args.address,
           "--port", str(args.port), "--allow-websocket-origin", f"{args.address}:{args.port}",
           "--allow-websocket-origin", f"localhost:{args.port}",
           "--warm"]  # run the app once at start-up: caches fill before the first visitor
    if args.show:
        cmd.append("--show")
    print("starting the rgbkit dashboard: http://%s:%d/dashboard" % (args.address, args.port))
    os.execv(sys.executable, cmd)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rgbkit", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("summary", help="read LAMOST files and print a metadata table")
    s.add_argument("paths", nargs="?", default=str(DEFAULT_REAL_DATA), help="folder, glob or file")
    s.add_argument("--workers", type=int, default=1)
    s.add_argument("--max-rows", type=int, default=60)
    s.set_defaults(func=cmd_summary)

    a = sub.add_parser("app", help="serve the dashboard on the bundled demo data")
    a.add_argument("--address", default="127.0.0.1")
    a.add_argument("--port", type=int, default=5006)
    a.add_argument("--show", action="store_true", help="open a browser tab")
    a.set_defaults(func=cmd_app)

    for modname in ("rgbkit._cli_models", "rgbkit.catalog"):
        try:
            mod = __import__(modname, fromlist=["add_parsers"])
        except ImportError:
            continue
        if hasattr(mod, "add_parsers"):
            mod.add_parsers(sub)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
