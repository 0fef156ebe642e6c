"""Real LAMOST example spectra and recorded results shipped inside the package.

The spectra are REAL (unlike the simulated demo sets of :mod:`rgbkit.datasets`):
24 LAMOST low-resolution files from DR1 to DR13 in every layout, copied
unchanged from public repositories (MIT / Apache-2.0; sources and licence
notices in ``rgbkit/data/examples/SOURCES.md`` and ``licenses/``). They are
chosen to teach: DR1 giants with the LAMOST pipeline's (LASP) Teff, log g and
[Fe/H], dwarfs, hot stars, M stars, a white dwarf, a quasar, a Kepler target,
a file with a gap, and one star in two layouts. None has an asteroseismic
mass or age.

    >>> from rgbkit import examples
    >>> examples.example_files(release="DR13")          # paths
    >>> examples.example_path("quasar")                  # one file by a word of its description
    >>> examples.example_table()                         # what each file is
    >>> examples.lasp_labels()                           # LASP labels of the DR1 files
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from .config import DATA_DIR

EXAMPLES_DIR = DATA_DIR / "examples"
_ROW = re.compile(r"^\| `(?P<file>[^`]+)` \| (?P<what>[^|]+) \| (?P<source>[^|]+) \| `(?P<licence>[^`]+)` \|$")


def example_table() -> pd.DataFrame:
    """One row per shipped spectrum: ``file`` (path under the examples folder), ``release``,
    ``what`` (a description), ``source`` (repository), ``licence`` (notice file), ``path`` (absolute)."""
    rows = [m.groupdict() for line in (EXAMPLES_DIR / "SOURCES.md").read_text().splitlines()
            if (m := _ROW.match(line.strip()))]
    df = pd.DataFrame(rows)
    df["what"] = df["what"].str.strip()
    df["source"] = df["source"].str.strip()
    df.insert(1, "release", df["file"].str.split("/").str[0].str.upper())
    df["path"] = [str(EXAMPLES_DIR / f) for f in df["file"]]
    return df


def example_files(release: str | None = None) -> list[Path]:
    """Paths of the shipped real spectra, optionally of one release folder ("DR1", "DR5", ... "DR13")."""
    df = example_table()
    if release is not None:
        known = sorted(df["release"].unique(), key=lambda r: int(r[2:]))
        if release.upper() not in known:
            raise ValueError(f"no example files of release {release!r}; there are {known}")
        df = df[df["release"] == release.upper()]
    return [Path(p) for p in df["path"]]


def example_path(word: str) -> Path:
    """The one shipped file whose name or description contains ``word`` (case-insensitive)."""
    df = example_table()
    hit = df[df["file"].str.contains(word, case=False, regex=False)
             | df["what"].str.contains(word, case=False, regex=False)]
    if len(hit) != 1:
        raise ValueError(f"{len(hit)} example files match {word!r} (need exactly one); "
                         f"see rgbkit.examples.example_table()")
    return Path(hit["path"].iat[0])


def lasp_labels() -> pd.DataFrame:
    """LAMOST pipeline (LASP DR1) labels of the shipped DR1 files, with ``path`` and a ``giant`` column
    (log g < 3.6 and Teff < 5,300 K). Spectroscopic labels, not asteroseismic masses or ages."""
    df = pd.read_csv(EXAMPLES_DIR / "lasp_dr1_labels.csv")
    df["path"] = [str(EXAMPLES_DIR / "dr1" / f) for f in df["file"]]
    return df


def giant_files() -> list[Path]:
    """The shipped DR1 files that LASP calls giants."""
    df = lasp_labels()
    return [Path(p) for p in df.loc[df["giant"], "path"]]
