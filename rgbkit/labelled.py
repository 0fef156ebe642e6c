"""A labelled set from your own files: LAMOST spectra plus a label table, matched star by star.

Why ~430 lines in one module: the four match keys, the label checks and the
match report are one procedure whose report counts every step.

:func:`load_labelled` reads the spectra (a folder, a glob or a list of
paths), reads the label table (CSV, FITS, VOTable, Parquet, a CDS ``.dat``
with its ReadMe, an AAS ``.mrt``; see :func:`rgbkit.io.labels.read_labels`),
checks the labels, matches the two by OBSID, designation, Kepler id (the
``TCOMMENT = 'kplrNNNNNNNNN'`` header of LAMOST-Kepler targets) or sky
position, and returns a :class:`LabelledSet` with a :class:`MatchReport`.
Train on it with :meth:`LabelledSet.train` (see :mod:`rgbkit.train_labelled`).

Bad input raises :class:`LabelError`, whose message says what was found and
what to pass; files the reader refuses are listed in the report, not fatal.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .io.files import sha256_file as _sha256_file
from .io.labels import LabelFormatError, canonicalise, crossmatch, read_labels, spectra_table

__all__ = ["LabelError", "LabelledSet", "MatchReport", "load_labelled", "check_labels", "MATCH_KEYS"]

MATCH_KEYS = ("obsid", "designation", "kic", "position")
TARGETS = {"age": "Gyr", "mass": "Msun"}
PLAUSIBLE = {"age": (0.0, 20.0), "mass": (0.0, 20.0)}  # open at 0: > 0 and <= the upper value
OPTION = {"obsid": "--obsid-col", "designation": "--designation-col", "kic": "--kic-col",
          "ra": "--ra-col", "dec": "--dec-col", "age": "--age-col", "mass": "--mass-col",
          "evstate": "--evstate-col"}


class LabelError(LabelFormatError):
    """A label table or a match that cannot give training labels; the message says what to pass."""


def files_digest(paths) -> str:
    """One sha256 over the sorted (file name, content sha256) pairs: identifies a set of spectra."""
    h = hashlib.sha256()
    for p in sorted(Path(q) for q in paths):
        h.update(f"{p.name}:{_sha256_file(p)}\n".encode())
    return h.hexdigest()


def _hint(col: str) -> str:
    return f"columns={{'{col}': 'NAME'}} (command line: {OPTION.get(col, '--' + col + '-col')} NAME)"


# ------------------------------------------------------------------ label checks
def _age_unit_guess(age: pd.Series) -> str | None:
    """What a positive-looking age column probably holds, when it is not Gyr."""
    a = age[np.isfinite(age) & ~age.isin([0.0, -1.0, -99.0, -999.0, -9999.0])]  # fill values say nothing
    if len(a) < 3 or a.nunique() < 2:
        return None
    med = float(a.median())
    if med > 1e6:
        return "yr"
    if 100 < med <= 1e5:
        return "Myr"
    if a.min() >= 6.0 and a.max() <= 10.4:  # log10(age / yr): 1 Myr - 25 Gyr
        return "log_yr"
    if a.max() < 1.3 and med < 1.0:  # log10(age / Gyr): giants all younger than 1.3 Gyr are unlikely
        return "log_Gyr"
    return None


def check_labels(labels: pd.DataFrame, target: str | None, source="label table",
                 states=None, age_unit: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Drop label rows that cannot train ``target``; raise :class:`LabelError` when none can.

    Returns ``(kept, dropped)``: ``dropped`` has the table's row number
    (``row``, 0-based) and a ``reason`` per dropped row. Ages that look like
    years, Myr or log years are an error that names the ``age_unit`` to pass
    (unless ``age_unit`` was given: then the caller said what the column holds).
    """
    reasons = pd.Series("", index=labels.index, dtype=object)
    if target is not None:
        if target not in TARGETS:
            raise ValueError(f"target must be 'age' or 'mass', not {target!r}")
        y = pd.to_numeric(labels[target], errors="coerce")
        cols = labels.attrs.get("source_columns") or [c for c in labels.columns]
        if y.notna().sum() == 0:
            raise LabelError(source, f"no usable {target} column: none of the table's columns is recognised "
                             f"as {target} or the column holds no numbers (table columns: {cols[:30]}); "
                             f"pass {_hint(target)}")
        if target == "age" and age_unit is None:
            unit = _age_unit_guess(y)
            if unit is not None:
                src = labels.attrs.get("columns", {}).get("age", "age")
                raise LabelError(source, f"ages in column {src!r} look like {unit} (median {y.median():.4g}, "
                                 f"range {y.min():.4g} to {y.max():.4g}); rgbkit wants Gyr: pass "
                                 f"age_unit='{unit}' (command line: --age-unit {unit})")
        lo, hi = PLAUSIBLE[target]
        reasons[y.isna()] = f"{target} missing or NaN"
        reasons[(reasons == "") & (y <= lo)] = f"{target} <= 0"
        reasons[(reasons == "") & (y > hi)] = f"{target} > {hi:g} {TARGETS[target]}"
    if states is not None:
        keep = {s.upper() for s in ([states] if isinstance(states, str) else states)}
        ev = labels["evstate"].astype(str).str.upper()
        reasons[(reasons == "") & ~ev.isin(keep)] = [f"evolutionary state {e} not in {sorted(keep)}"
                                                     for e in ev[(reasons == "") & ~ev.isin(keep)]]
    bad = reasons != ""
    dropped = pd.DataFrame({"row": np.flatnonzero(bad.to_numpy()), "reason": reasons[bad].to_numpy()})
    if bad.all():
        counts = dropped["reason"].value_counts().to_dict()
        raise LabelError(source, f"no usable rows: all {len(labels)} rows were dropped ({counts}); "
                         f"check the {target or 'label'} column ({_hint(target or 'age')})"
                         + ("" if states is None else " and the evolutionary states asked for"))
    return labels[~bad], dropped


def _pick_key(spec: pd.DataFrame, labels: pd.DataFrame, match: str, source) -> str:
    """The match key: ``match`` itself, or for "auto" the first id both sides carry (position last)."""
    def has(df, k):
        return k in df and df[k].notna().any()

    def summary():
        n = len(spec)
        s = ", ".join(f"{k} {int(spec[k].notna().sum())}/{n}" for k in ("obsid", "designation", "kic"))
        s += f", ra/dec {int((spec['ra'].notna() & spec['dec'].notna()).sum())}/{n}"
        t = ", ".join(f"{k} {int(labels[k].notna().sum())}" for k in ("obsid", "designation", "kic", "ra"))
        return (f"the spectra carry {s}; the table's rows carry {t} (table columns: "
                f"{labels.attrs.get('source_columns', list(labels.columns))[:30]})")

    if match not in ("auto", *MATCH_KEYS):
        raise ValueError(f"match must be 'auto' or one of {MATCH_KEYS}, not {match!r}")
    if match == "auto":
        for k in ("obsid", "designation", "kic"):
            if has(spec, k) and has(labels, k):
                return k
        if has(spec, "ra") and has(labels, "ra") and has(labels, "dec"):
            return "position"
        raise LabelError(source, f"nothing to match on: {summary()}; name the id column with "
                         f"{_hint('kic')} (or obsid/designation), or ra/dec for a position match")
    need = ("ra", "dec") if match == "position" else (match,)
    for k in need:
        if not has(labels, k):
            raise LabelError(source, f"match={match!r} but the table has no {k} column: {summary()}; pass {_hint(k)}")
        if not has(spec, k):
            raise LabelError(source, f"match={match!r} but no spectrum header carries {k}: {summary()}; "
                             "choose another --match")
    return match


def _duplicate_ids(labels: pd.DataFrame, key: str, source, label_duplicates: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Several rows with one id: identical labels are merged; differing ones are an error (or keep the first)."""
    if label_duplicates not in ("error", "first"):
        raise ValueError(f"label_duplicates must be 'error' or 'first', not {label_duplicates!r}")
    if key == "position":
        return labels, labels.iloc[:0]
    ids = labels[key]
    dup = ids.notna() & ids.duplicated(keep="first")
    if not dup.any():
        return labels, labels.iloc[:0]
    same = labels[["mass", "age", "evstate"]].astype(str).assign(_id=ids.astype(str))
    conflict = ids.notna() & ~same.duplicated(keep=False) & ids.duplicated(keep=False)
    if conflict.any() and label_duplicates == "error":
        ex = ids[conflict].astype(str).unique()[:5].tolist()
        raise LabelError(source, f"{int(ids[conflict].nunique())} {key} value(s) appear on several rows with "
                         f"different labels (e.g. {ex}): one star, several label rows; remove them, or pass "
                         "label_duplicates='first' (command line: --label-duplicates first) to keep the first row of each")
    return labels[~dup], labels[dup]


# ------------------------------------------------------------------ report and set
@dataclass
class MatchReport:
    """What happened between the files, the table and the labelled set (all counts are real)."""

    spectra_source: str
    label_source: str
    matched_by: str
    radius_arcsec: float | None
    duplicates: str
    n_files: int
    n_read: int
    refused: list[tuple[str, str]]
    n_label_rows: int
    dropped_rows: pd.DataFrame  # row (0-based in the table), reason
    n_usable_rows: int
    n_matched_spectra: int
    n_matched_stars: int
    n_stars_with_several: int
    n_duplicate_spectra: int
    n_kept: int
    unmatched_spectra: list[str]
    n_unmatched_labels: int
    columns: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    states: list[str] | None = None

    @property
    def dropped(self) -> dict[str, int]:
        """Label rows dropped before matching, counted by reason."""
        return {str(k): int(v) for k, v in self.dropped_rows["reason"].value_counts().items()}

    def to_dict(self) -> dict:
        return {"spectra": self.spectra_source, "labels": self.label_source, "matched_by": self.matched_by,
                "radius_arcsec": self.radius_arcsec, "duplicates": self.duplicates, "n_files": self.n_files,
                "n_read": self.n_read, "refused": [[str(p), str(r)] for p, r in self.refused],
                "n_label_rows": self.n_label_rows, "dropped": self.dropped, "n_usable_rows": self.n_usable_rows,
                "n_matched_spectra": self.n_matched_spectra, "n_matched_stars": self.n_matched_stars,
                "n_stars_with_several_spectra": self.n_stars_with_several,
                "n_duplicate_spectra": self.n_duplicate_spectra, "n_kept": self.n_kept,
                "n_unmatched_spectra": len(self.unmatched_spectra), "n_unmatched_labels": self.n_unmatched_labels,
                "columns": dict(self.columns), "target": self.target, "states": self.states}

    def __str__(self) -> str:
        by = self.matched_by + (f" within {self.radius_arcsec:g} arcsec" if self.matched_by == "position" else "")
        cols = ", ".join(f"{k} <- {v}" for k, v in self.columns.items()) or "none recognised"
        lines = [
            f"match report ({by})",
            f"  spectra: {self.n_files} files, {self.n_read} read, {len(self.refused)} refused by the reader",
            f"  label table: {self.n_label_rows} rows, {self.n_usable_rows} usable"
            + (f" ({', '.join(f'{v} {k}' for k, v in self.dropped.items())} dropped)" if self.dropped else ""),
            f"  columns used: {cols}",
            f"  matched: {self.n_matched_spectra} spectra of {self.n_matched_stars} stars",
            f"  several spectra of one star: {self.n_stars_with_several} stars, "
            f"{self.n_duplicate_spectra} extra spectra ({'all kept' if self.duplicates == 'all' else 'kept the best S/N'})",
            f"  unmatched: {len(self.unmatched_spectra)} spectra without a label, "
            f"{self.n_unmatched_labels} usable label rows without a spectrum",
            f"  labelled set: {self.n_kept} spectra",
        ]
        for p, r in self.refused[:5]:
            lines.append(f"  refused {Path(p).name}: {r}")
        if len(self.refused) > 5:
            lines.append(f"  ... and {len(self.refused) - 5} more refused files")
        return "\n".join(lines)


@dataclass
class LabelledSet:
    """Spectra with their labels, one row of ``labels`` per spectrum (same order).

    ``labels`` holds the canonical label columns (age, mass, evstate, ...),
    the spectrum's ids (``spec_obsid``, ``spec_designation``, ``spec_kic``,
    ``spec_ra``, ``spec_dec``, ``snr_g``, ``file``), ``star`` (the label
    table's row: spectra of one star share it, so splits keep them together)
    and ``sep_arcsec`` for position matches.
    """

    spectra: list
    labels: pd.DataFrame
    report: MatchReport
    provenance: dict

    def __len__(self) -> int:
        return len(self.spectra)

    def __repr__(self) -> str:
        return (f"LabelledSet({len(self)} spectra of {self.labels['star'].nunique()} stars, "
                f"matched by {self.report.matched_by}, labels from {Path(self.report.label_source).name})")

    def y(self, target: str) -> np.ndarray:
        """The labels of ``target`` ("age" in Gyr or "mass" in Msun), one per spectrum."""
        if target not in TARGETS:
            raise ValueError(f"target must be 'age' or 'mass', not {target!r}")
        return pd.to_numeric(self.labels[target], errors="coerce").to_numpy(np.float64)

    def subset(self, idx) -> "LabelledSet":
        idx = np.asarray(idx)
        return LabelledSet([self.spectra[i] for i in idx], self.labels.iloc[idx].reset_index(drop=True),
                           self.report, dict(self.provenance))

    def train(self, target: str, out, **kwargs):
        """Train an ensemble on this set and write it to ``out``; see :func:`rgbkit.train_labelled.train_labelled`."""
        from .train_labelled import train_labelled

        return train_labelled(self, target, out, **kwargs)


def _read_spectra(spectra, workers: int, progress: bool):
    from .io.lamost import expand_paths, read_many

    if isinstance(spectra, (list, tuple)) and spectra and not isinstance(spectra[0], (str, os.PathLike)):
        return list(spectra), [], [], f"{len(spectra)} Spectrum objects"
    paths = expand_paths(spectra)
    if not paths:
        raise LabelError(str(spectra), "no spectra found (a folder is searched for *.fits / *.fits.gz; "
                         "a glob such as 'spectra/*.fits.gz' is expanded)")
    got, refused = read_many(paths, workers=workers, progress=progress)
    source = str(spectra) if isinstance(spectra, (str, os.PathLike)) else f"{len(paths)} paths"
    return got, refused, paths, source


def load_labelled(spectra, labels, *, target: str | None = None, match: str = "auto",
                  radius: float = 3.0, columns: dict[str, str] | None = None, readme=None,
                  age_unit: str | None = None, duplicates: str = "best_snr", label_duplicates: str = "error",
                  states=None, workers: int = 1, progress: bool = True) -> LabelledSet:
    """Match LAMOST spectra to a label table and return a :class:`LabelledSet`.

    Args:
        spectra: a folder, a glob, a list of paths, or a list of Spectrum objects.
        labels: a table file or a DataFrame (any column names; see ``columns``).
        target: "age" or "mass": rows without a usable value of it are dropped
            (missing, NaN, <= 0, > 20) and counted in the report.
        match: "auto" (the first of obsid, designation, kic both sides carry;
            then position), "obsid", "designation", "kic" or "position".
        radius: position-match radius in arcsec.
        columns: canonical name -> the table's column, e.g. ``{"age": "Age_Y2"}``;
            others are recognised by name (APOKASC-2, Yu et al. 2018, the paper's catalog).
        readme: the CDS ReadMe of a ``.dat`` table (default: the one beside it).
        age_unit: what the age column holds ("Gyr", "Myr", "yr", "log_yr", "log_Gyr");
            None (default): Gyr, and ages that look like another unit are an error saying which to pass.
        duplicates: several spectra of one star: "best_snr" keeps the highest
            g-band S/N, "all" keeps every one (splits keep a star's spectra together).
        label_duplicates: several table rows with one id: "error" or "first".
        states: keep only these evolutionary states, e.g. ``["RGB"]`` (the paper's choice).
    """
    if duplicates not in ("best_snr", "all"):
        raise ValueError(f"duplicates must be 'best_snr' or 'all', not {duplicates!r}")
    if isinstance(labels, pd.DataFrame):
        source, label_sha = "DataFrame", hashlib.sha256(pd.util.hash_pandas_object(labels).to_numpy().tobytes()).hexdigest()
        lab = canonicalise(labels, columns, source="label DataFrame", age_unit=age_unit)
    else:
        source = str(labels)
        lab = read_labels(labels, columns, readme=readme, age_unit=age_unit)
        label_sha = _sha256_file(Path(labels))
    n_rows = len(lab)
    lab = lab.assign(star=np.arange(n_rows))  # the table's row number identifies the star
    kept_lab, dropped = check_labels(lab, target, source, states, age_unit)
    specs, refused, paths, spec_source = _read_spectra(spectra, workers, progress)
    if not specs:
        raise LabelError(spec_source, f"no spectrum could be read ({len(refused)} refused; first: "
                         f"{refused[0][1] if refused else 'none'})")
    st = spectra_table(specs)
    key = _pick_key(st, kept_lab, match, source)
    kept_lab, extra = _duplicate_ids(kept_lab, key, source, label_duplicates)
    if len(extra):
        dropped = pd.concat([dropped, pd.DataFrame({"row": extra["star"].to_numpy(),
                                                    "reason": f"repeated {key}"})], ignore_index=True)
    matched, unmatched_spec, _ = crossmatch(st, kept_lab, by=key, max_sep_arcsec=radius)
    if len(matched) == 0:
        def ex(df, k):
            return df[k].dropna().astype(str).head(3).tolist() if k in df else []
        ids = ("ra", "dec") if key == "position" else (key,)
        raise LabelError(source, f"no spectrum matched by {key}"
                         + (f" within {radius:g} arcsec" if key == "position" else "")
                         + f": spectra carry e.g. {[ex(st, k) for k in ids]}, the table e.g. "
                         f"{[ex(kept_lab, k) for k in ids]}; check the id column ({_hint(ids[0])}), "
                         "another --match, or a larger --radius")
    spec_rows = matched["_spec_row"].to_numpy()
    star = kept_lab["star"].to_numpy()[matched["_label_row"].to_numpy()]
    snr = st["snr_g"].to_numpy(np.float64)[spec_rows]
    order = pd.DataFrame({"spec": spec_rows, "star": star, "snr": np.nan_to_num(snr, nan=-np.inf)})
    counts = order.groupby("star").size()
    if duplicates == "best_snr":
        order = order.sort_values(["star", "snr", "spec"], ascending=[True, False, True]).drop_duplicates("star")
    order = order.sort_values("spec")
    out = lab.iloc[order["star"].to_numpy()].reset_index(drop=True)
    ids = st.iloc[order["spec"].to_numpy()].reset_index(drop=True)
    for c in ("obsid", "designation", "kic", "ra", "dec"):
        out[f"spec_{c}"] = ids[c].to_numpy()
    out["snr_g"] = ids["snr_g"].to_numpy()
    out["file"] = [Path(p).name if p else "" for p in ids["path"]]
    if "sep_arcsec" in matched:
        sep = pd.Series(matched["sep_arcsec"].to_numpy(), index=spec_rows)
        out["sep_arcsec"] = sep.loc[order["spec"].to_numpy()].to_numpy()
    out.attrs = dict(lab.attrs)
    report = MatchReport(
        spectra_source=spec_source, label_source=source, matched_by=key,
        radius_arcsec=float(radius) if key == "position" else None, duplicates=duplicates,
        n_files=len(paths) or len(specs), n_read=len(specs), refused=list(refused),
        n_label_rows=n_rows, dropped_rows=dropped, n_usable_rows=len(kept_lab),
        n_matched_spectra=len(matched), n_matched_stars=int(len(counts)),
        n_stars_with_several=int((counts > 1).sum()), n_duplicate_spectra=int((counts - 1).sum()),
        n_kept=len(order), unmatched_spectra=[Path(p).name if p else str(o) for p, o in
                                              zip(unmatched_spec["path"], unmatched_spec["obsid"])],
        n_unmatched_labels=int(len(kept_lab) - len(counts)), columns=dict(lab.attrs.get("columns", {})),
        target=target, states=None if states is None else sorted({s.upper() for s in np.atleast_1d(states)}))
    provenance = {
        "spectra": {"source": spec_source, "n_files": report.n_files, "n_read": report.n_read,
                    "n_refused": len(refused),
                    "files_sha256": files_digest(paths) if paths else None},
        "labels": {"path": source if source == "DataFrame" else str(Path(source).resolve()),
                   "sha256": label_sha, "n_rows": n_rows, "columns": report.columns, "age_unit": age_unit or "Gyr",
                   "states": report.states},
        "match": {"by": key, "radius_arcsec": report.radius_arcsec, "duplicates": duplicates,
                  "label_duplicates": label_duplicates},
        "report": report.to_dict(),
    }
    kept_specs = [specs[i] for i in order["spec"].to_numpy()]
    return LabelledSet(kept_specs, out, report, provenance)


def plan_fetch(catalog, labels, *, target: str | None = None, match: str = "auto", radius: float = 3.0,
               columns: dict[str, str] | None = None, catalog_columns: dict[str, str] | None = None,
               readme=None, age_unit: str | None = None, states=None, min_snr: float | None = None) -> pd.DataFrame:
    """Which spectra to download: a LAMOST catalog (e.g. the DR7 LRS catalog) matched to a label table.

    The catalog's ``tcomment`` ('kplr008098300' for LAMOST-Kepler targets) is
    read as the Kepler id, ``ra_obs``/``dec_obs`` as the position. Returns the
    matched catalog rows (``obsid`` first) with the labels; write
    ``obsid`` one per line and give the file to ``rgbkit fetch --from-file``.
    ``min_snr`` keeps rows whose ``snrg`` (g-band S/N) is at least this.
    """
    cat = catalog if isinstance(catalog, pd.DataFrame) else None
    if cat is None:
        cat = read_labels(catalog, catalog_columns)
    else:
        cat = canonicalise(cat, catalog_columns, source="catalog DataFrame")
    lab = labels if isinstance(labels, pd.DataFrame) and "star" in labels else None
    if lab is None:
        lab = (canonicalise(labels, columns, source="label DataFrame", age_unit=age_unit)
               if isinstance(labels, pd.DataFrame) else read_labels(labels, columns, readme=readme, age_unit=age_unit))
        lab = lab.assign(star=np.arange(len(lab)))
    source = "label DataFrame" if isinstance(labels, pd.DataFrame) else str(labels)
    lab, _ = check_labels(lab, target, source, states, age_unit)
    if min_snr is not None:
        snr = next((c for c in cat.columns if str(c).lower() in ("snrg", "snr_g")), None)
        if snr is None:
            raise LabelError(str(catalog), "min_snr given but the catalog has no snrg column")
        cat = cat[pd.to_numeric(cat[snr], errors="coerce") >= min_snr]
    ids = cat[["obsid", "designation", "kic", "ra", "dec"]]
    key = _pick_key(ids, lab, match, source)
    lab, _ = _duplicate_ids(lab, key, source, "first")
    m, _, _ = crossmatch(ids, lab, by=key, max_sep_arcsec=radius)
    if len(m) == 0:
        raise LabelError(source, f"no catalog row matched by {key}; check the id columns or --radius")
    rows = cat.iloc[m["_spec_row"].to_numpy()].reset_index(drop=True)
    got = lab.iloc[m["_label_row"].to_numpy()].reset_index(drop=True)
    keep = [c for c in ("kic", "mass", "mass_err", "age", "age_err", "evstate", "star") if c in got]
    out = pd.concat([rows[["obsid", "designation", "ra", "dec"]], got[keep]], axis=1)
    out.attrs["matched_by"] = key
    return out
