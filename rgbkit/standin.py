"""A stand-in for "LAMOST DR7 spectra of Kepler giants + asteroseismic label tables".

The pairing of real LAMOST spectra with asteroseismic labels cannot be
downloaded in every environment, so tests, notebooks and new users get a
stand-in that looks like it: SIMULATED LAMOST files (DR7 image layout,
gzipped, LAMOST-style names, OBSID, DESIG, RA/DEC, SNR, and the Kepler id in
``TCOMMENT = 'kplrNNNNNNNNN'`` as LAMOST-Kepler headers carry it) for REAL
APOKASC-2 stars (Pinsonneault et al. 2018: Kepler id, evolutionary state,
mass, age, numax from ``rgbkit/data/apokasc2_subset.csv``), plus label tables
in the published layouts.

The spectra are simulated at labels consistent with each star's catalog
values: mass and age as published; log g from numax and Teff (scaling
relation); Teff from rgbkit.simulate's giant-branch and clump relations;
[M/H] from inverting the simulator's age-mass-metallicity relation
(clipped to -1.0..+0.4); [C/N] after first dredge-up from the mass. The
sky positions, OBSIDs and designations are synthetic (Kepler-field-like).

Only the labels are real; numbers obtained on the stand-in say nothing about
real stars.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import simulate as sim
from .config import DATA_DIR
from .seismo import scaling_logg

__all__ = ["StandIn", "write_kepler_standin", "apokasc2_subset", "standin_labels"]

SUBSET = DATA_DIR / "apokasc2_subset.csv"
OBSID_START = 600_000_000  # DR7 OBSIDs run to about 7e8


def apokasc2_subset() -> pd.DataFrame:
    """1,500 real APOKASC-2 rows (1,000 RGB, 500 RC) shipped with rgbkit (see APOKASC2_SUBSET_LICENSE.txt)."""
    return pd.read_csv(SUBSET)


def standin_labels(rows: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Simulator labels (teff, logg, feh, alpha_fe, c_n, c_fe) consistent with APOKASC-2 rows."""
    rng = np.random.default_rng([int(seed), 515])
    n = len(rows)
    mass = rows["Mass"].to_numpy(float)
    age = rows["Age"].to_numpy(float)
    rc = rows["ES"].to_numpy() == 2
    m_init = np.where(rc, mass + 0.1 * np.clip((2.0 - mass) / 0.8, 0, 1), mass)  # RGB mass loss before the clump
    r = sim.AGE_RELATION
    age_rgb = np.where(rc, (age - 0.1) / 1.03, age)
    mh = np.clip((np.log10(age_rgb) - r["a"] - r["b"] * np.log10(m_init)) / r["c_mh"], -1.0, 0.4)
    alpha = np.clip(0.03 - 0.2 * mh + 0.02 * rng.standard_normal(n), -0.05, 0.3)
    feh = mh - np.log10(0.638 * 10 ** alpha + 0.362)
    teff = np.full(n, 4700.0)
    for _ in range(4):  # log g from numax depends weakly on Teff, Teff on log g
        logg = scaling_logg(rows["Numax"].to_numpy(float), teff)
        teff = np.where(rc, sim.RC_TEFF["t0"] + sim.RC_TEFF["tM"] * (mass - 1.2) + sim.RC_TEFF["tZ"] * feh,
                        sim.rgb_teff(logg, mass, feh))
    teff = teff + 40.0 * rng.standard_normal(n)
    dredge = np.clip((3.9 - logg) / 0.5, 0.0, 1.0)
    cn0 = 0.05 * alpha
    cn = cn0 + dredge * (sim.cn_after_dredge_up(m_init, feh) - cn0)
    cn = cn - np.where(rc, 0.08, 0.0) + 0.04 * rng.standard_normal(n)
    return pd.DataFrame({"kic": rows["KIC"].to_numpy(), "teff": teff, "logg": logg, "feh": feh,
                         "alpha_fe": alpha, "c_n": cn, "c_fe": 0.3 * alpha + 0.45 * (cn - cn0),
                         "mass": mass, "age": age, "evstate": np.where(rc, "RC", "RGB")})


@dataclass
class StandIn:
    """Where :func:`write_kepler_standin` put things. ``truth`` has one row per spectrum file."""

    folder: Path
    spectra: Path
    tables: dict[str, Path]
    truth: pd.DataFrame
    broken: list[Path]

    def __repr__(self) -> str:
        return (f"StandIn({self.folder}, SIMULATED spectra of {self.truth['kic'].nunique()} real APOKASC-2 stars: "
                f"{len(self.truth)} files + {len(self.broken)} broken; tables {sorted(self.tables)})")


def _yu_cds(df: pd.DataFrame, folder: Path) -> Path:
    """A CDS table (table1.dat + ReadMe) laid out like J/ApJS/236/42 (Yu et al. 2018)."""
    from astropy.table import Table

    t = Table.from_pandas(df)
    units = {"numax": "uHz", "e_numax": "uHz", "Dnu": "uHz", "e_Dnu": "uHz", "Teff": "K", "e_Teff": "K",
             "logg": "[cm/s2]", "M": "solMass", "e_M": "solMass", "R": "solRad", "e_R": "solRad"}
    words = {"KIC": "Kepler Input Catalog identifier", "numax": "Frequency of maximum power",
             "Dnu": "Large frequency separation", "Teff": "Effective temperature", "logg": "Surface gravity",
             "[Fe/H]": "Metallicity", "M": "Mass (APOKASC-2)", "R": "Radius (APOKASC-2)",
             "Phase": "Evolutionary phase (1)"}
    for c in t.colnames:
        t[c].description = words.get(c, f"Uncertainty in {c[2:]}" if c.startswith("e_") else c)
    for c, u in units.items():
        t[c].unit = u
    for c in ("numax", "e_numax", "Dnu", "e_Dnu", "M", "e_M", "R", "e_R"):
        t[c].info.format = ".3f"
    for c in ("logg", "[Fe/H]"):
        t[c].info.format = ".2f"
    for c in ("Teff", "e_Teff"):
        t[c].info.format = ".0f"
    folder.mkdir(parents=True, exist_ok=True)
    mrt = folder / "table1.mrt"
    t.write(mrt, format="ascii.mrt", overwrite=True)
    text = mrt.read_text().splitlines()
    mrt.unlink()
    # the MRT header (Byte-by-byte description) goes into the ReadMe, the rows into table1.dat
    start = next(i for i, s in enumerate(text) if s.startswith("Byte-by-byte Description"))
    last_rule = max(i for i, s in enumerate(text) if s.startswith("-----"))
    desc = [s.replace("table.dat", "table1.dat") for s in text[start:last_rule + 1]]
    desc = [s for s in desc if not s.startswith("Notes:")]
    desc = [s for i, s in enumerate(desc) if not (i and s.startswith("---") and desc[i - 1].startswith("---"))]
    rows = text[last_rule + 1:]
    lrecl = max(len(s) for s in rows)
    rule = "=" * 80
    readme = [
        "J/ApJS/236/42-like   Kepler red giants: stand-in table   (rgbkit, SIMULATED spectra)",
        rule,
        "A stand-in laid out like Yu et al. (2018, ApJS 236, 42): real APOKASC-2 masses and",
        "evolutionary states; numax as published; Teff, log g, [Fe/H] from the stand-in.",
        rule,
        "",
        "File Summary:",
        "-" * 80,
        " FileName      Lrecl  Records   Explanations",
        "-" * 80,
        "ReadMe            80        .   This file",
        f"table1.dat     {lrecl:5d}  {len(rows):7d}   Kepler red giants",
        "-" * 80,
        "",
        *desc,
        "Note (1): Phase: 0 unclassified, 1 RGB, 2 helium-core burning.",
        "-" * 80,
        "",
        rule,
        "(End)",
    ]
    (folder / "ReadMe").write_text("\n".join(readme) + "\n")
    (folder / "table1.dat").write_text("\n".join(rows) + "\n")
    return folder / "table1.dat"


def write_kepler_standin(folder, n: int = 200, seed: int = 0, rgb_fraction: float = 0.8,
                         duplicate_fraction: float = 0.1, extra_label_fraction: float = 0.2,
                         n_broken: int = 1, gzip: bool = True, progress: bool = False) -> StandIn:
    """Write SIMULATED LAMOST DR7-like files of ``n`` real APOKASC-2 stars and their label tables.

    Layout under ``folder``::

        spectra/spec-LMJD-KPSIMnn_spSS-FFF.fits.gz   one per observation (TCOMMENT kplr id)
        spectra/spec-broken-N.fits                    files the reader refuses (``n_broken``)
        apokasc2.csv, apokasc2.fits                   APOKASC-2 columns (KIC, ES, Mass, Age, LogAge, ...)
        yu2018/table1.dat + yu2018/ReadMe             a CDS table (KIC, numax, Dnu, Teff, logg, [Fe/H], M, Phase)
        lamost_kepler.vot                             per-spectrum VOTable (obsid, designation, ra, dec, age, mass)
        truth.csv                                     what was simulated, one row per spectrum file

    ``duplicate_fraction`` of the stars get a second, lower-S/N spectrum;
    the APOKASC-2 tables also list ``extra_label_fraction`` x n stars that
    have no spectrum. Deterministic for a given ``seed``.
    """
    from astropy.table import Table

    from .io.lamost import write_lamost

    folder = Path(folder)
    spec_dir = folder / "spectra"
    spec_dir.mkdir(parents=True, exist_ok=True)
    sub = apokasc2_subset()
    rng = np.random.default_rng([int(seed), 616])
    n_extra = int(round(extra_label_fraction * n))
    rgb, rc = np.flatnonzero(sub["ES"].to_numpy() == 1), np.flatnonzero(sub["ES"].to_numpy() == 2)
    n_rgb = min(len(rgb), int(round(rgb_fraction * (n + n_extra))))
    n_rc = min(len(rc), n + n_extra - n_rgb)
    pick = np.concatenate([rng.choice(rgb, n_rgb, replace=False), rng.choice(rc, n_rc, replace=False)])
    pick = rng.permutation(pick)
    rows = sub.iloc[pick].reset_index(drop=True)
    observed = rows.iloc[:n].reset_index(drop=True)
    lab = standin_labels(observed, seed)
    lab["ra"] = rng.uniform(280.5, 299.5, n)  # the Kepler field
    lab["dec"] = rng.uniform(37.0, 51.5, n)
    lab["designation"] = sim.designation(lab["ra"].to_numpy(), lab["dec"].to_numpy())
    lab["snr"] = sim.draw_snr(rng, n)
    dup = np.flatnonzero(rng.random(n) < duplicate_fraction)
    again = lab.iloc[dup].copy()
    again["snr"] = np.clip(again["snr"] * rng.uniform(0.3, 0.8, len(dup)), 10, None)
    again["ra"] += 0.2 / 3600 * rng.standard_normal(len(dup))  # another visit, another fibre
    again["dec"] += 0.2 / 3600 * rng.standard_normal(len(dup))
    lab = pd.concat([lab, again], ignore_index=True)
    lab["obsid"] = OBSID_START + np.sort(rng.choice(90_000_000, len(lab), replace=False))
    s = sim.simulate_spectra(lab, seed=seed, progress=progress)
    truth = []
    for i in range(len(s)):
        sp = s.spectrum(i)
        row = s.labels.iloc[i]
        plate, spid, fiber = 1 + i // 4000, 1 + (i // 250) % 16, 1 + i % 250
        lmjd = 57000 + 3 * plate
        name = f"spec-{lmjd}-KPSIM{plate:02d}_sp{spid:02d}-{fiber:03d}.fits" + (".gz" if gzip else "")
        sp.meta.kic = int(row["kic"])
        sp.meta.header = {**sp.meta.header, "LMJD": lmjd, "PLANID": f"KPSIM{plate:02d}", "SPID": spid,
                          "FIBERID": fiber, "OBJSOURC": "LAMOST-Kepler (stand-in)"}
        write_lamost(sp, spec_dir / name, layout="dr7")
        truth.append({"file": name, "obsid": int(row["obsid"]), "designation": row["designation"],
                      "kic": int(row["kic"]), "ra": float(row["ra"]), "dec": float(row["dec"]),
                      "snr_g": float(row["snr_g"]), "has_gap": bool(row["has_gap"]),
                      **{k: row[k] for k in ("mass", "age", "evstate", "teff", "logg", "feh", "alpha_fe", "c_n")}})
    truth = pd.DataFrame(truth)
    broken = []
    for k in range(n_broken):
        p = spec_dir / f"spec-broken-{k}.fits"
        p.write_bytes(b"this is not a FITS file\n" * 10)
        broken.append(p)
    tables = {}
    # APOKASC-2 as published (CSV and FITS), observed stars plus stars without a spectrum
    tables["apokasc2_csv"] = folder / "apokasc2.csv"
    rows.sort_values("KIC").to_csv(tables["apokasc2_csv"], index=False)
    tables["apokasc2_fits"] = folder / "apokasc2.fits"
    Table.from_pandas(rows.sort_values("KIC")).write(tables["apokasc2_fits"], overwrite=True)
    # Yu et al. 2018 layout (CDS .dat + ReadMe): masses and phases, no ages
    lab_all = pd.concat([lab.iloc[:n], standin_labels(rows.iloc[n:].reset_index(drop=True), seed + 1)],
                        ignore_index=True)
    yu = pd.DataFrame({"KIC": rows["KIC"].to_numpy(), "numax": rows["Numax"].to_numpy(),
                       "e_numax": rows["Numax"].to_numpy() * rows["Numax_err"].to_numpy(),
                       "Dnu": rows["Deltanu"].to_numpy(),
                       "e_Dnu": rows["Deltanu"].to_numpy() * rows["Deltanu_err"].to_numpy(),
                       "Teff": lab_all["teff"].to_numpy(), "e_Teff": np.full(len(rows), 80.0),
                       "logg": lab_all["logg"].to_numpy(), "[Fe/H]": lab_all["feh"].to_numpy(),
                       "M": rows["Mass"].to_numpy(), "e_M": rows["Mass_err"].to_numpy(),
                       "R": rows["R"].to_numpy(), "e_R": rows["R_err"].to_numpy(),
                       "Phase": np.where(rows["ES"].to_numpy() == 2, 2, 1)}).sort_values("KIC")
    tables["yu2018_cds"] = _yu_cds(yu, folder / "yu2018")
    # one row per spectrum with LAMOST ids and positions, as catalogs of LAMOST spectra have
    vo = truth[["obsid", "designation", "ra", "dec", "kic", "age", "mass", "evstate"]].copy()
    vo["age_err"] = vo["age"] * 0.2
    vo["mass_err"] = vo["mass"] * 0.07
    tables["lamost_votable"] = folder / "lamost_kepler.vot"
    Table.from_pandas(vo).write(tables["lamost_votable"], format="votable", overwrite=True)
    truth.to_csv(folder / "truth.csv", index=False)
    (folder / "README.txt").write_text(
        "Kepler stand-in written by rgbkit.datasets.write_kepler_standin.\n"
        "SIMULATED LAMOST spectra of real APOKASC-2 stars (Pinsonneault et al. 2018): the labels are real,\n"
        "the spectra, OBSIDs, designations and sky positions are not. Safe to delete.\n")
    return StandIn(folder, spec_dir, tables, truth, broken)
