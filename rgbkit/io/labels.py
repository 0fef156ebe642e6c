"""Label catalogs: read any table into rgbkit's canonical columns, cross-match to spectra.

Canonical columns (units):

=========== ===================================================================
obsid       LAMOST observation id (int)
designation LAMOST designation, normalised to ``Jhhmmss.ss+ddmmss.s`` (no "LAMOST " prefix)
kic         Kepler Input Catalog id (int)
ra, dec     degrees (ICRS/J2000)
teff        effective temperature, K
logg        surface gravity, log10(cm s^-2)
feh         [Fe/H], dex
alpha_fe    [alpha/Fe], dex
mass        stellar mass, Msun;  mass_err its 1-sigma error
age         age, Gyr;            age_err its 1-sigma error
evstate     evolutionary state: "RGB", "RC" or "unknown"
=========== ===================================================================

Other columns of the input are kept unchanged after the canonical ones.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import FileFormatError

CANONICAL = ["obsid", "designation", "kic", "ra", "dec", "teff", "logg", "feh",
             "alpha_fe", "mass", "mass_err", "age", "age_err", "evstate"]

# Lower-cased source names recognised without a mapping (first match wins).
ALIASES = {
    "obsid": ["obsid", "obs_id"],
    "designation": ["designation", "desig", "lamost_designation"],
    "kic": ["kic", "kicid", "kic_id", "kepid", "tcomment"],  # LAMOST catalogs: tcomment 'kplr008098300'
    "ra": ["ra", "ra_deg", "raj2000", "_raj2000", "ra_obs"],
    "dec": ["dec", "dec_deg", "dej2000", "_dej2000", "dec_obs"],
    "teff": ["teff", "t_eff", "teff_k"],
    "logg": ["logg", "log_g"],
    "feh": ["feh", "[fe/h]", "fe_h", "m_h", "param_m_h", "[m/h]"],
    "alpha_fe": ["alpha_fe", "[alpha/fe]", "alpha_m", "param_alpha_m", "[alpha/m]"],
    # APOKASC-2 (csv: Mass; CDS J/ApJS/239/32: M), Yu+2018 (J/ApJS/236/42: M-noCorr,
    # M-RGB, M-Clump), the paper's Zenodo 4640118 catalog (mass/age with _err or sigma)
    "mass": ["mass", "m", "mass_msun", "m_cor", "mcor", "m(cor)", "m-nocorr", "m_nocorr",
             "m-rgb", "m_rgb", "mass_rgb", "m_seis", "mass_seis", "mass_pred", "dn_mass"],
    "mass_err": ["mass_err", "e_mass", "mass_error", "e_m", "e_m_cor", "e_m-nocorr", "e_m_nocorr",
                 "e_m-rgb", "e_m_rgb", "sigma_mass", "mass_sigma", "mass_std", "dn_mass_err"],
    "age": ["age", "age_gyr", "age_pred", "dn_age"],
    "age_err": ["age_err", "e_age", "age_error", "sigma_age", "age_sigma", "age_std", "dn_age_err"],
    "evstate": ["evstate", "es", "evol_state", "stage", "phase", "evstage", "cons_evstate"],
}
AGE_UNITS = {"gyr": 1.0, "myr": 1e-3, "yr": 1e-9}  # factor to Gyr; "log_yr"/"log_gyr" are logs
EVSTATE_CODES = {1: "RGB", 2: "RC", -1: "unknown", 0: "unknown"}


class LabelFormatError(FileFormatError):
    """A label catalog that cannot be read or has unusable columns."""


def normalise_designation(value) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    s = str(value).strip().upper().replace("LAMOST", "").strip()
    return s or None


def _is_mrt(path: Path) -> bool:
    """An AAS/CDS machine-readable table: its header says 'Byte-by-byte Description'."""
    with open(path, "rb") as fh:
        return b"Byte-by-byte Description" in fh.read(20000)


def find_readme(path: Path) -> Path | None:
    """The CDS ReadMe beside a ``.dat`` table (ReadMe, ReadMe.txt, README, any case)."""
    for q in sorted(path.parent.iterdir()):
        if q.is_file() and q.name.lower() in ("readme", "readme.txt"):
            return q
    return None


def _read_table(path: Path, readme=None) -> pd.DataFrame:
    name = path.name.lower()
    if name.endswith((".dat", ".dat.gz")) or readme is not None:
        readme = Path(readme) if readme is not None else find_readme(path)
        if readme is None:
            raise LabelFormatError(path, "a CDS .dat table is described by its ReadMe; none found beside it "
                                   "(download the catalog's ReadMe too, or pass readme=PATH / --readme PATH)")
        from astropy.table import Table

        return _astropy_to_pandas(Table.read(path, format="ascii.cds", readme=str(readme)))
    if name.endswith((".mrt", ".txt")) and _is_mrt(path):
        from astropy.table import Table

        return _astropy_to_pandas(Table.read(path, format="ascii.mrt"))
    if name.endswith((".csv", ".csv.gz", ".txt")):
        return pd.read_csv(path)
    if name.endswith((".parquet", ".pq")):
        return pd.read_parquet(path)
    if name.endswith((".fits", ".fit", ".fits.gz", ".vot", ".votable", ".xml")):
        from astropy.table import Table

        fmt = "votable" if name.endswith((".vot", ".votable", ".xml")) else "fits"
        return _astropy_to_pandas(Table.read(path, format=fmt))
    raise LabelFormatError(path, "unknown catalog format (use .csv, .parquet, .fits, .vot, "
                           "a CDS .dat with its ReadMe, or an AAS .mrt)")


def _astropy_to_pandas(t) -> pd.DataFrame:
    multi = [c for c in t.colnames if len(t[c].shape) > 1]
    t.remove_columns(multi)  # array columns do not fit a flat table
    df = t.to_pandas()
    for c in df.columns:  # FITS strings arrive as bytes in some astropy versions
        if df[c].dtype == object and len(df) and isinstance(df[c].iloc[0], bytes):
            df[c] = df[c].str.decode("utf-8").str.strip()
    return df


def read_labels(path, mapping: dict[str, str] | None = None, readme=None,
                age_unit: str | None = "Gyr") -> pd.DataFrame:
    """Read a label catalog (CSV, FITS, VOTable, Parquet, CDS .dat + ReadMe, AAS .mrt) into canonical columns.

    ``mapping`` maps canonical names to the file's column names, e.g.
    ``{"mass": "M_Clump", "feh": "[Fe/H]"}``; unmapped canonical columns are
    looked up by common aliases (case-insensitive) and are NaN/None if absent.
    Ages given only as log10(age/yr) (``LogAge``) are converted to Gyr.
    ``age_unit`` says what the age column holds: "Gyr" (default), "Myr",
    "yr", "log_yr" (log10 of years) or "log_Gyr"; ages are returned in Gyr.
    ``readme``: the CDS ReadMe of a ``.dat`` table (default: the one beside it).
    """
    path = Path(path)
    if not path.is_file():
        raise LabelFormatError(path, "no such file")
    try:
        raw = _read_table(path, readme)
    except LabelFormatError:
        raise
    except Exception as exc:  # a corrupt file of a known type
        raise LabelFormatError(path, f"cannot read ({type(exc).__name__}: {exc})") from None
    return canonicalise(raw, mapping, source=path, age_unit=age_unit)


def _age_to_gyr(age: pd.Series, unit: str, source) -> pd.Series:
    u = unit.lower().replace(" ", "").replace("(", "_").replace(")", "")
    if u in AGE_UNITS:
        return age * AGE_UNITS[u]
    if u in ("log_yr", "logyr", "log10_yr"):
        return 10 ** (age - 9.0)
    if u in ("log_gyr", "loggyr", "log10_gyr"):
        return 10 ** age
    raise LabelFormatError(source, f"age_unit {unit!r} unknown: use Gyr, Myr, yr, log_yr or log_Gyr")


def canonicalise(raw: pd.DataFrame, mapping=None, source="table", age_unit: str | None = "Gyr") -> pd.DataFrame:
    age_unit = age_unit or "Gyr"
    mapping = dict(mapping or {})
    unknown = set(mapping) - set(CANONICAL)
    if unknown:
        raise LabelFormatError(source, f"mapping names unknown canonical column(s) {sorted(unknown)}")
    lower = {c.lower().strip(): c for c in raw.columns}
    used, out, found = set(), {}, {}
    for col in CANONICAL:
        src = mapping.get(col)
        if src is not None and src not in raw.columns:
            raise LabelFormatError(source, f"mapped column {src!r} for {col!r} is not in the file")
        if src is None:
            src = next((lower[a] for a in ALIASES[col] if a in lower and lower[a] not in used), None)
        if src is not None:
            used.add(src)
            out[col] = raw[src].to_numpy()
            found[col] = str(src)
    df = pd.DataFrame(index=raw.index)
    for col in CANONICAL:
        df[col] = out.get(col, np.nan)
    if "age" not in out and "logage" in lower:
        la = pd.to_numeric(raw[lower["logage"]], errors="coerce")
        # APOKASC-2 LogAge is log10(age/Gyr) (0.8 -> 6.3 Gyr); others use log10(age/yr)
        df["age"] = 10 ** la if la.median() < 3 else 10 ** (la - 9)
        found["age"] = f"10**{lower['logage']}"
    for col in ("ra", "dec", "teff", "logg", "feh", "alpha_fe", "mass", "mass_err", "age", "age_err"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
        df.loc[df[col] <= -999, col] = np.nan  # LAMOST/APOGEE fill values
    if "age" in out:
        for col in ("age", "age_err"):
            if age_unit.lower().startswith("log") and col == "age_err":
                df[col] = df[col] * np.log(10) * df["age"]  # a log error -> Gyr (first order)
            elif age_unit.lower() != "gyr":
                df[col] = _age_to_gyr(df[col], age_unit, source)
    df["kic"] = _kepler_ids(df["kic"])
    df["obsid"] = pd.to_numeric(df["obsid"], errors="coerce").astype("Int64")
    df["designation"] = [normalise_designation(v) for v in df["designation"]]
    df["evstate"] = [_evstate(v) for v in df["evstate"]]
    rest = raw[[c for c in raw.columns if c not in used]]
    df = pd.concat([df, rest.set_axis(df.index)], axis=1)
    df.attrs["columns"] = found  # canonical name -> the input's column, for reports and model cards
    df.attrs["source_columns"] = [str(c) for c in raw.columns]
    return df


def _kepler_ids(col: pd.Series) -> pd.Series:
    """Kepler ids as integers: 8098300, '8098300', 'KIC 8098300' or LAMOST's 'kplr008098300'."""
    if not pd.api.types.is_numeric_dtype(col):
        col = col.astype(str).str.extract(r"^\s*(?:kplr|kic)?[\s_-]*0*(\d+)\s*$", flags=re.I)[0]
    return pd.to_numeric(col, errors="coerce").astype("Int64")


def _evstate(v) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "unknown"
    if isinstance(v, (int, np.integer, float, np.floating)):
        return EVSTATE_CODES.get(int(v), "unknown")
    s = str(v).strip().upper()
    return {"RGB": "RGB", "RC": "RC", "CLUMP": "RC", "HEB": "RC", "RGB/AGB": "RGB"}.get(s, "unknown")


def spectra_table(spectra) -> pd.DataFrame:
    """Metadata of Spectrum objects as a DataFrame in canonical id columns."""
    rows = [s.meta.as_row() for s in spectra]
    df = pd.DataFrame(rows)
    if len(df):
        df["designation"] = [normalise_designation(v) for v in df["designation"]]
        df["obsid"] = pd.to_numeric(df["obsid"]).astype("Int64")
        df["kic"] = pd.to_numeric(df["kic"]).astype("Int64")
    return df


def crossmatch(spectra, labels: pd.DataFrame, by: str = "auto", max_sep_arcsec: float = 3.0):
    """Match spectra (Spectrum list or metadata DataFrame) to a canonical label table.

    ``by`` is ``"obsid"``, ``"designation"``, ``"kic"``, ``"position"`` or
    ``"auto"`` (the first id that both sides carry, position last).
    Returns ``(matched, unmatched_spectra, unmatched_labels)``: ``matched`` has
    one row per matched spectrum with spectrum metadata (prefixed ``spec_``
    where names clash) and the label columns; ``sep_arcsec`` for position matches.
    """
    spec = spectra if isinstance(spectra, pd.DataFrame) else spectra_table(spectra)
    spec = spec.reset_index(drop=True).assign(_spec_row=lambda d: np.arange(len(d)))
    lab = labels.reset_index(drop=True).assign(_label_row=lambda d: np.arange(len(d)))
    if by == "auto":
        by = next((k for k in ("obsid", "designation", "kic")
                   if k in spec and spec[k].notna().any() and lab[k].notna().any()), "position")
    if by in ("obsid", "designation", "kic"):
        left = spec[spec[by].notna()]
        right = lab[lab[by].notna()].drop_duplicates(subset=by)
        matched = left.merge(right, on=by, how="inner", suffixes=("_spec", ""))
    elif by == "position":
        from astropy import units as u
        from astropy.coordinates import SkyCoord

        ok_s = spec["ra"].notna() & spec["dec"].notna()
        ok_l = lab["ra"].notna() & lab["dec"].notna()
        s, lb = spec[ok_s], lab[ok_l]
        if len(s) == 0 or len(lb) == 0:
            matched = spec.iloc[:0].merge(lab.iloc[:0], how="cross", suffixes=("_spec", ""))
        else:
            cs = SkyCoord(s["ra"].to_numpy() * u.deg, s["dec"].to_numpy() * u.deg)
            cl = SkyCoord(lb["ra"].to_numpy() * u.deg, lb["dec"].to_numpy() * u.deg)
            idx, sep, _ = cs.match_to_catalog_sky(cl)
            keep = sep.arcsec <= max_sep_arcsec
            left = s[keep].reset_index(drop=True)
            right = lb.iloc[idx[keep]].reset_index(drop=True)
            matched = pd.concat([left.add_suffix("_spec").rename(columns={"_spec_row_spec": "_spec_row"}), right], axis=1)
            matched["sep_arcsec"] = sep.arcsec[keep]
    else:
        raise ValueError(f"by must be obsid, designation, kic, position or auto, not {by!r}")
    unmatched_spec = spec[~spec["_spec_row"].isin(matched["_spec_row"])].drop(columns="_spec_row")
    unmatched_lab = lab[~lab["_label_row"].isin(matched["_label_row"])].drop(columns="_label_row")
    matched.attrs["matched_by"] = by
    return matched.reset_index(drop=True), unmatched_spec, unmatched_lab
