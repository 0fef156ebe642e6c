"""The catalog's columns: names, units, descriptions, types and an empty frame.

One row per input file. The same text goes into every output file's metadata
and into ``docs/catalog_columns.md`` (:func:`column_docs_markdown`).
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from ..spectra import BANDS

__all__ = ["COLUMNS", "column_docs_markdown", "fill_missing", "empty_frame", "schema_metadata", "to_arrow"]

COLUMNS: dict[str, tuple[str, str]] = {
    "file": ("", "path of the input FITS file (the row's unique key)"),
    "obsid": ("", "LAMOST OBSID (header; missing in DR1)"),
    "designation": ("", "LAMOST designation (header DESIG)"),
    "ra": ("deg", "right ascension (header RA)"),
    "dec": ("deg", "declination (header DEC)"),
    "objclass": ("", "LAMOST pipeline class (header CLASS: STAR, GALAXY, QSO, Unknown)"),
    "subclass": ("", "LAMOST pipeline spectral subclass (header SUBCLASS)"),
    "data_release": ("", "data release from DATA_V, e.g. DR7"),
    "kic": ("", "Kepler input catalog id from TCOMMENT, when present"),
    "z": ("", "LAMOST pipeline redshift (header Z)"),
    **{f"snr_{b}": ("", f"signal-to-noise ratio in the {b} band (header)") for b in BANDS},
    "read_ok": ("", "True when the file was read"),
    "error": ("", "why the file could not be read or scored ('' when fine)"),
    "pre_ok": ("", "True when the preprocessing kept the spectrum"),
    "pre_flags": ("", "preprocessing flag bits (rgbkit.preprocess.Flag)"),
    "pre_reason": ("", "preprocessing flags in words"),
    "ew_halpha": ("Angstrom", "equivalent width of H-alpha (6564.6 A vacuum); grows with Teff"),
    "ew_hbeta": ("Angstrom", "equivalent width of H-beta (4862.7 A)"),
    "ew_mgb": ("Angstrom", "equivalent width of the Mg b triplet (5167-5185 A); gravity sensitive"),
    "ew_ca4227": ("Angstrom", "equivalent width of Ca I 4227 A; strong in cool dwarfs"),
    "ew_nad": ("Angstrom", "equivalent width of Na D (5891/5897 A)"),
    "teff_fit": ("K", "effective temperature fitted with the shipped emulator (rgbkit.labelfit, 4,050-5,650 A); NaN when not fitted"),
    "logg_fit": ("dex", "surface gravity log10(g / cm s^-2) from the same fit; decides DWARF"),
    "feh_fit": ("dex", "[Fe/H] from the same fit (real giants: ~0.4 dex below LAMOST LASP)"),
    "fit_chi2": ("", "chi-square of the same fit (mean squared residual of the normalised flux); far above real giants' (> 0.02): POOR_FIT"),
    "giant": ("", "spectral giant flag: CLASS STAR, not hot, not M type, fitted logg below the dwarf limit"),
    "p_rgb": ("", "probability of being on the red giant branch (1 - P(red clump)), classifier ensemble mean; NaN without a classifier"),
    "p_rgb_std": ("", "spread of P(RGB) over classifier members"),
    "age": ("Gyr", "age, mean over the age ensemble's members"),
    "age_std": ("Gyr", "age uncertainty: member spread times the ensemble's calibration factor"),
    "age_std_raw": ("Gyr", "plain standard deviation of the members' ages"),
    "age_lo": ("Gyr", "lower end of the calibrated 68% interval, age - age_std (>= 0)"),
    "age_hi": ("Gyr", "upper end of the calibrated 68% interval, age + age_std"),
    "age_debiased": ("Gyr", "age not pulled toward the training mean (rgbkit.debias): use for maps, "
                     "distributions and trends; 'age' has the smaller error for one star"),
    "age_debiased_lo": ("Gyr", "lower end of age_debiased's 68% interval"),
    "age_debiased_hi": ("Gyr", "upper end of age_debiased's 68% interval"),
    "mass": ("Msun", "mass, mean over the mass ensemble's members"),
    "mass_std": ("Msun", "mass uncertainty: member spread times the calibration factor"),
    "mass_std_raw": ("Msun", "plain standard deviation of the members' masses"),
    "mass_lo": ("Msun", "lower end of the calibrated 68% interval (>= 0)"),
    "mass_hi": ("Msun", "upper end of the calibrated 68% interval"),
    "mass_debiased": ("Msun", "mass not pulled toward the training mean (rgbkit.debias): for populations"),
    "mass_debiased_lo": ("Msun", "lower end of mass_debiased's 68% interval"),
    "mass_debiased_hi": ("Msun", "upper end of mass_debiased's 68% interval"),
    "ood": ("", "True when the spectrum is outside the models' domain: do not trust age/mass/p_rgb "
            "(NOT_STELLAR, FIT_FAILED, GRID_EDGE, POOR_FIT, FAR_FROM_TRAINING rows have no age or mass at all)"),
    "ood_flags": ("", "out-of-domain bits (rgbkit.catalog.OOD)"),
    "ood_reason": ("", "out-of-domain reasons in words ('' when in domain)"),
}


def column_docs_markdown() -> str:
    """The column table as Markdown (what docs/catalog_columns.md holds)."""
    from .domain import OOD

    lines = ["| column | unit | meaning |", "| --- | --- | --- |"]
    lines += [f"| `{k}` | {u or '-'} | {m} |" for k, (u, m) in COLUMNS.items()]
    lines += ["", "Out-of-domain bits (`ood_flags`):", ""]
    lines += [f"* `{f.value}` {f.name}" for f in OOD]
    return "\n".join(lines)


def fill_missing(df: pd.DataFrame) -> pd.DataFrame:
    """Add every absent column of :data:`COLUMNS` with its empty value (in place; returns ``df``)."""
    n = len(df)
    for col in COLUMNS:
        if col not in df:
            if col in _BOOLS:
                df[col] = np.zeros(n, bool)
            elif col in ("pre_flags", "ood_flags"):
                df[col] = np.zeros(n, np.int32)
            elif col in ("error", "pre_reason", "ood_reason"):
                df[col] = [""] * n
            elif col in ("obsid", "kic"):
                df[col] = pd.array([None] * n, dtype="Int64")
            elif col in _STRINGS:
                df[col] = pd.Series([None] * n, dtype=object)
            else:
                df[col] = np.full(n, np.nan, np.float32)
    return df


def empty_frame() -> pd.DataFrame:
    """A catalog with no rows and every column."""
    return fill_missing(pd.DataFrame({"file": pd.Series([], dtype=object)}))[list(COLUMNS)]


def schema_metadata(extra: dict | None = None) -> dict:
    """What every output file carries: library version, column units and texts, OOD bits."""
    from .. import __version__
    from .domain import OOD

    return {"rgbkit_version": __version__,
            "columns": {k: {"unit": u, "description": d} for k, (u, d) in COLUMNS.items()},
            "ood_flags": {f.name: int(f.value) for f in OOD}, **(extra or {})}


_STRINGS = ("file", "designation", "objclass", "subclass", "data_release", "error", "pre_reason", "ood_reason")
_BOOLS = ("read_ok", "pre_ok", "giant", "ood")
_FLOAT64 = ("ra", "dec", "z")


def _arrow_type(name: str):
    import pyarrow as pa

    if name in _STRINGS:
        return pa.string()
    if name in _BOOLS:
        return pa.bool_()
    if name in ("obsid", "kic"):
        return pa.int64()
    if name in ("pre_flags", "ood_flags"):
        return pa.int32()
    return pa.float64() if name in _FLOAT64 else pa.float32()


def to_arrow(df: pd.DataFrame, meta: dict):
    """One fixed schema for every part (types, units, descriptions), so parts always merge."""
    import pyarrow as pa

    fields = [pa.field(k, _arrow_type(k), metadata={"unit": u, "description": d}) for k, (u, d) in COLUMNS.items()]
    schema = pa.schema(fields, metadata={"rgbkit": json.dumps(meta)})
    return pa.Table.from_pandas(df[list(COLUMNS)], schema=schema, preserve_index=False)
