"""``rgbkit catalog``: score LAMOST files into an age/mass catalog (rgbkit.catalog.build_catalog)."""
from __future__ import annotations

from pathlib import Path

from ..catalog.run import POOL_MIN_FILES
from .args import CliError, input_files, nonneg_int, output_folder, positive_int


def _model_arg(value, cls):
    from ..catalog import ModelRef

    if value in (None, "default"):
        return "default"
    if value == "none":
        return None
    return ModelRef(cls, value)


def cmd_catalog(args) -> int:
    import pandas as pd

    from ..catalog import DomainRules, build_catalog, read_catalog

    inputs = args.inputs
    fetcher = None
    if args.obsids:
        from ..io.fetch import read_obsids

        inputs = read_obsids(args.obsids)
        fetcher = {"url_template": args.url_template, "cache": args.cache}
        if not inputs:
            raise CliError(f"--obsids {args.obsids}: no obsids in this file")
    elif not inputs:
        raise CliError("give input files/folders/globs or --obsids FILE")
    else:
        inputs = input_files(inputs)
    output_folder(args.out)
    rules = DomainRules(min_snr_g=args.min_snr)
    for flag, folder in (("--age-model", args.age_model), ("--mass-model", args.mass_model),
                         ("--classifier", args.classifier)):
        if folder not in (None, "default", "none") and not (Path(folder) / "card.json").is_file():
            raise CliError(f"{flag} {folder}: not a model folder (no card.json in it)")
    path = build_catalog(inputs, args.out, age=_model_arg(args.age_model, "rgbkit.ensemble.Ensemble"),
                         mass=_model_arg(args.mass_model, "rgbkit.ensemble.Ensemble"),
                         classifier=_model_arg(args.classifier, "rgbkit.classify.Classifier"),
                         rules=rules, fmt=args.format, chunk_size=args.chunk_size, workers=args.workers,
                         threads=args.threads, dask=args.dask, resume=not args.restart,
                         progress=not args.quiet, precision=args.precision)
    df = read_catalog(path)
    n_err = len(pd.read_csv(Path(args.out) / "errors.csv"))
    print(f"{len(df)} rows -> {path} ({int((~df['ood']).sum())} in domain, {n_err} files with errors: "
          f"{Path(args.out) / 'errors.csv'})")
    return 0


def add_parser(sub) -> None:
    c = sub.add_parser("catalog", help="score LAMOST files into an age/mass catalog (resumable)")
    c.add_argument("inputs", nargs="*", help="folders, globs or FITS files")
    c.add_argument("-o", "--out", required=True, help="output folder (parts, manifests, merged catalog)")
    c.add_argument("--format", choices=("parquet", "fits", "csv"), default="parquet")
    c.add_argument("--obsids", help="text file of obsids (one a line) to download first")
    c.add_argument("--url-template", help="archive URL with {obsid} (default $RGBKIT_FETCH_URL or LAMOST DR9)")
    c.add_argument("--cache", help="download cache folder (default $RGBKIT_CACHE/spectra)")
    c.add_argument("--age-model", help="age ensemble folder ('none' to skip; default: shipped)")
    c.add_argument("--mass-model", help="mass ensemble folder ('none' to skip; default: shipped)")
    c.add_argument("--classifier", help="RGB/RC classifier folder ('none' to skip; default: shipped)")
    c.add_argument("--min-snr", type=float, default=15.0, help="g-band SNR below this is out of domain")
    c.add_argument("--chunk-size", type=positive_int, default=512, help="files per part (the unit of resumption)")
    c.add_argument("--workers", type=nonneg_int, default=None, help="local processes (0: this process; default: one per core, up to 8, "
                   f"when there are >= {POOL_MIN_FILES} files per process, else 0)")
    c.add_argument("--threads", type=positive_int, default=None,
                   help="torch threads per worker process (default 1), or of this process when it scores "
                        "alone (default: every CPU it may use)")
    c.add_argument("--precision", choices=("auto", "float32", "bfloat16"), default="auto",
                   help="networks' number format (auto: bfloat16 on CPUs with native support, ~2x faster, "
                        "ages within ~0.1%% of float32; float32 elsewhere)")
    c.add_argument("--dask", metavar="SCHEDULER", help="Dask scheduler address, e.g. tcp://host:8786")
    c.add_argument("--restart", action="store_true",
                   help="discard earlier parts and settings instead of resuming (needed to change models or cuts)")
    c.add_argument("--quiet", action="store_true")
    c.set_defaults(func=cmd_catalog)
