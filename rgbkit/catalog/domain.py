"""Out-of-domain rules: which rows the age, mass and P(RGB) columns should not be trusted for."""
from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from ..emulator import load_emulator
from .schema import COLUMNS, fill_missing

__all__ = ["OOD", "DomainRules", "finish"]


class OOD(enum.IntFlag):
    """Why a row is out of the models' domain (bits combine; 0 = in domain)."""

    UNREADABLE = 1  # the file could not be read
    PREPROCESS = 2  # dropped by the preprocessing (gaps, flat flux, ...)
    NOT_STAR = 4  # header CLASS is not STAR (QSO, GALAXY, Unknown)
    LOW_SNR = 8  # g-band SNR below the limit
    HOT = 16  # hotter than red giants: H-alpha EW high, SUBCLASS O/B/A/WD or fitted Teff at the emulator's top
    COOL = 32  # M type (SUBCLASS M*, dM*, sdM*) or fitted Teff at the emulator's bottom
    DWARF = 64  # fitted logg too high for a giant
    LABEL_RANGE = 128  # predicted age or mass outside the training labels' range
    HIGH_SPREAD = 256  # members disagree (relative age spread above the limit)
    # rgbkit.ood's checks (each bit is rgbkit.ood.Domain's shifted by 9); these rows get no age or mass
    NOT_STELLAR = 512  # no stellar continuum: neighbouring pixels uncorrelated (noise)
    FIT_FAILED = 1024  # the emulator label fit failed (NaN)
    GRID_EDGE = 2048  # a fitted label at the emulator's grid edge
    POOR_FIT = 4096  # fit chi-square far above real giants'
    FAR_FROM_TRAINING = 8192  # network input far from the training spectra (shipped models only)


DOMAIN_SHIFT = 9
"""OOD bit = rgbkit.ood.Domain bit << DOMAIN_SHIFT."""
REFUSED = OOD.NOT_STELLAR | OOD.FIT_FAILED | OOD.GRID_EDGE | OOD.POOR_FIT | OOD.FAR_FROM_TRAINING
"""Rows with any of these bits get NaN age and mass: the networks' numbers for them mean nothing."""
_SCORE_COLUMNS = ("age", "age_std", "age_std_raw", "age_lo", "age_hi", "age_debiased", "age_debiased_lo",
                  "age_debiased_hi", "mass", "mass_std", "mass_std_raw", "mass_lo", "mass_hi", "mass_debiased",
                  "mass_debiased_lo", "mass_debiased_hi")


def domain_model(age_model):
    """The shipped out-of-domain reference when ``age_model`` is the shipped age ensemble, else None.

    A user's ensemble was trained on spectra this package has not seen, so
    FAR_FROM_TRAINING is not checked for it; the other checks are.
    """
    from ..ensemble import PRETRAINED_DIR

    folder = getattr(age_model, "folder", None)
    if folder is None or Path(folder).resolve() != (PRETRAINED_DIR / "age").resolve():
        return None
    return _shipped_domain()


@lru_cache(maxsize=1)
def _shipped_domain():
    from ..ood import load_domain

    return load_domain()


@dataclass
class DomainRules:
    """Thresholds of the out-of-domain checks.

    The dwarf limit applies to logg fitted together with Teff and [Fe/H]
    against the shipped emulator (:mod:`rgbkit.labelfit`); line strengths
    alone (Mg b > 4 A, the rule before) called most solar-metallicity giants
    dwarfs. 3.6 rather than the paper's 3.5 because the fit reads simulated
    giants ~0.15 dex high near the boundary; measured agreement with LASP on
    real DR1 stars and with the truth on simulated surveys is in
    ``docs/catalog_columns.md`` and ``benchmarks/results/catalog.md``.
    """

    min_snr_g: float = 15.0  # the paper's catalog cut (SNR > 15)
    hot_halpha_ew: float = 1.9  # A; EW(H-alpha) above this ~ Teff > 5,400 K
    dwarf_logg: float = 3.6  # fitted logg at or above this: DWARF
    max_rel_age_spread: float | None = None  # calibrated age std / age; None: not checked



def finish(df: pd.DataFrame, rules: DomainRules, age_range=None, mass_range=None) -> pd.DataFrame:
    """Fill absent columns, compute the giant flag and the out-of-domain bits and words."""
    n = len(df)
    fill_missing(df)
    sub = df["subclass"].fillna("").astype(str).str.strip().str.upper()
    cls = df["objclass"].fillna("").astype(str).str.strip().str.upper()
    ha, teff, logg, feh = (df[c].to_numpy(np.float64, na_value=np.nan) for c in ("ew_halpha", "teff_fit", "logg_fit", "feh_fit"))
    snr = df["snr_g"].to_numpy(np.float64, na_value=np.nan)
    t_lo, t_hi = (float(v[0]) for v in (load_emulator().label_min, load_emulator().label_max))
    with np.errstate(invalid="ignore"):
        hot_idx = ha > rules.hot_halpha_ew
        hot_fit = teff >= t_hi - 1.0  # pegged at the emulator's hot end: the fit is not a measurement
        cool_fit = teff <= t_lo + 1.0
        hot_sub = sub.str.match(r"^(O|B|A|W|D[ABOZCQX])").to_numpy()
        cool_sub = sub.str.match(r"^(M|DM|SDM|D?K?M\d)").to_numpy()
        hot, cool = hot_sub | hot_idx | hot_fit, cool_sub | cool_fit
        fitted = np.isfinite(logg) & ~hot_fit & ~cool_fit
        dwarf = fitted & (logg >= rules.dwarf_logg) & ~hot & ~cool
    bits = np.zeros(n, np.int32)
    reasons: list[list[str]] = [[] for _ in range(n)]

    def add(mask, flag, text):
        mask = np.asarray(mask, bool)
        bits[mask] |= int(flag)
        for i in np.flatnonzero(mask):
            reasons[i].append(text(i))

    read_ok, pre_ok = df["read_ok"].to_numpy(bool), df["pre_ok"].to_numpy(bool)
    add(~read_ok, OOD.UNREADABLE, lambda i: f"unreadable: {df['error'].iat[i]}")
    add(read_ok & ~pre_ok, OOD.PREPROCESS, lambda i: f"preprocessing: {df['pre_reason'].iat[i]}")
    add(read_ok & (cls != "STAR").to_numpy(), OOD.NOT_STAR, lambda i: f"not a star (CLASS {cls.iat[i] or 'missing'})")
    add(read_ok & ~(snr >= rules.min_snr_g), OOD.LOW_SNR, lambda i: f"low SNR (g {snr[i]:.1f} < {rules.min_snr_g:g})")
    add(read_ok & hot, OOD.HOT, lambda i: "hot star (" + ", ".join(
        ([f"SUBCLASS {sub.iat[i]}"] if hot_sub[i] else []) + ([f"EW(H-alpha) {ha[i]:.1f} A"] if hot_idx[i] else [])
        + ([f"fitted Teff {teff[i]:.0f} K at the emulator's limit"] if hot_fit[i] else [])) + ")")
    add(read_ok & cool, OOD.COOL, lambda i: ", ".join(
        ([f"M type (SUBCLASS {sub.iat[i]})"] if cool_sub[i] else [])
        + ([f"fitted Teff {teff[i]:.0f} K at the emulator's cool limit"] if cool_fit[i] else [])))
    add(read_ok & dwarf, OOD.DWARF, lambda i: f"dwarf (fitted logg {logg[i]:.2f} >= {rules.dwarf_logg:g} "
        f"at Teff {teff[i]:.0f} K, [Fe/H] {feh[i]:+.2f})")
    for name, rng in (("age", age_range), ("mass", mass_range)):
        if rng is not None:
            v = df[name].to_numpy(np.float64, na_value=np.nan)
            with np.errstate(invalid="ignore"):
                out = (v < rng[0]) | (v > rng[1])
            add(out, OOD.LABEL_RANGE, lambda i, v=v, rng=rng, name=name:
                f"{name} {v[i]:.3g} outside the training range {rng[0]:.3g}-{rng[1]:.3g}")
    if rules.max_rel_age_spread is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = df["age_std"].to_numpy(np.float64) / df["age"].to_numpy(np.float64)
        add(rel > rules.max_rel_age_spread, OOD.HIGH_SPREAD,
            lambda i: f"members disagree (age spread {100 * rel[i]:.0f}%)")
    if "domain_bits" in df:
        from ..ood import describe

        dom = df["domain_bits"].fillna(0).to_numpy(np.int64)
        words = describe(dom)
        add(dom != 0, 0, lambda i: words[i])
        bits |= (dom << DOMAIN_SHIFT).astype(np.int32)
        refused = (bits & int(REFUSED)) != 0
        for col in _SCORE_COLUMNS:
            if col in df:
                df.loc[refused, col] = np.nan
    with np.errstate(invalid="ignore"):
        df["giant"] = read_ok & (cls == "STAR").to_numpy() & ~hot & ~cool & fitted & (logg < rules.dwarf_logg)
    df["ood_flags"] = bits
    df["ood"] = bits != 0
    df["ood_reason"] = ["; ".join(r) for r in reasons]
    return df[list(COLUMNS)]
