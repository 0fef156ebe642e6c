"""Argument checks shared by the subcommands: numbers in range, inputs that exist and hold files."""
from __future__ import annotations

import argparse
import glob
from pathlib import Path

from ..errors import RgbkitError


class CliError(RgbkitError, ValueError):
    """A user error on the command line: printed as one line, exit status 2."""


def _int(lo: int, what: str):
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"{v} is not {what}")
        return v
    return parse


positive_int = _int(1, "positive (1 or more)")
nonneg_int = _int(0, "0 or more")


def positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"{v:g} is not positive")
    return v


def input_files(items) -> list[Path]:
    """The LAMOST files named by files, folders and globs; :class:`CliError` if one names nothing."""
    from ..io.lamost import expand_paths

    out = []
    for item in ([items] if isinstance(items, (str, Path)) else items):
        text = str(item)
        if any(c in text for c in "*?["):
            found = expand_paths(text)
            if not found:
                raise CliError(f"{text}: no files match this pattern")
        else:
            p = Path(text)
            if not p.exists() and not p.is_symlink():
                raise CliError(f"{text}: no such file or folder")
            found = expand_paths(p)
            if p.is_dir() and not found:
                raise CliError(f"{text}: no LAMOST files (*.fits, *.fits.gz, *.fit) in this folder")
        out += found
    if not out:
        raise CliError("no input files given")
    return list(dict.fromkeys(out))


def output_file(text: str, suffixes: tuple[str, ...]) -> Path:
    """An output file path: not a folder, its folder creatable, a known suffix."""
    p = Path(text)
    if p.is_dir():
        raise CliError(f"{text}: is a folder; give a file name ending {', '.join(suffixes)}")
    if p.suffix.lower() not in suffixes:
        raise CliError(f"{text}: unknown table format {p.suffix!r} (use {', '.join(suffixes)})")
    if p.parent.exists() and not p.parent.is_dir():
        raise CliError(f"{text}: {p.parent} is a file, not a folder")
    return p


def output_folder(text: str) -> Path:
    p = Path(text)
    if p.exists() and not p.is_dir():
        raise CliError(f"{text}: is a file; give a folder")
    return p
