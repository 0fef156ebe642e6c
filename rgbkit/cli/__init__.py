"""The ``rgbkit`` command: a thin dispatcher over library functions.

One module per subcommand, each with ``add_parser(sub)`` and the function it
runs; :data:`COMMANDS` lists them in the order ``rgbkit --help`` shows.
"""
from __future__ import annotations

import argparse
import sys

from . import app, catalog, fetch, predict, summary, train

COMMANDS = (summary, app, train, predict, catalog, fetch)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rgbkit", description="The ``rgbkit`` command: a thin dispatcher over library functions.")
    sub = p.add_subparsers(dest="command", required=True)
    for mod in COMMANDS:
        mod.add_parser(sub)
    return p


def main(argv=None) -> int:
    """Run one subcommand; a user error (bad file, folder, model, argument) is one line on stderr and exit 2."""
    import os

    from ..errors import RgbkitError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        print(f"rgbkit {args.command}: interrupted", file=sys.stderr)
        return 130
    except (RgbkitError, OSError) as exc:
        if os.environ.get("RGBKIT_DEBUG"):
            raise
        print(f"rgbkit {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
