"""``rgbkit fetch``: download LAMOST spectra by obsid into the cache (rgbkit.io.fetch)."""
from __future__ import annotations

from .args import CliError, nonneg_int, positive_int


def cmd_fetch(args) -> int:
    from ..io.fetch import fetch, read_obsids

    obsids = list(args.obsid)
    if args.from_file:
        obsids += read_obsids(args.from_file)
    if not obsids:
        raise CliError("no obsids given (as arguments or with --from-file)")
    from ..io.fetch import OBSID_PATTERN

    bad = [o for o in obsids if not OBSID_PATTERN.fullmatch(str(o).strip())]
    if bad:
        raise CliError(f"invalid obsid(s) {', '.join(repr(b) for b in bad[:5])}{' ...' if len(bad) > 5 else ''}: "
                       "a LAMOST obsid is 1-20 digits; nothing was downloaded")
    res = fetch(obsids, args.url_template, args.cache, workers=args.workers, retries=args.retries)
    failed = [r for r in res if r.status == "failed"]
    for r in failed:
        print(f"failed {r.obsid}: {r.error}")
    print(f"{len(res) - len(failed)} of {len(res)} spectra in {res[0].path.parent if res and res[0].path else args.cache}")
    return 1 if failed else 0


def add_parser(sub) -> None:
    f = sub.add_parser("fetch", help="download LAMOST spectra by obsid into the cache")
    f.add_argument("obsid", nargs="*")
    f.add_argument("--from-file", help="text file of obsids, one a line")
    f.add_argument("--url-template", help="URL with {obsid}, e.g. https://www.lamost.org/dr9/v2.0/spectrum/fits/{obsid}")
    f.add_argument("--cache", help="folder (default $RGBKIT_CACHE/spectra)")
    f.add_argument("--workers", type=positive_int, default=4)
    f.add_argument("--retries", type=nonneg_int, default=4)
    f.set_defaults(func=cmd_fetch)
