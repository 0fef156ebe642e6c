"""Tables the dashboard shows: a spectrum's quality verdicts, a model card, the classifier, HR-map stars."""
from __future__ import annotations

import numpy as np
import pandas as pd

from rgbkit.inspection import StarView, format_number
from rgbkit.spectra import Spectrum

from .models import merged_predictions
from .sources import demo


def quality_table(spec: Spectrum, view: StarView) -> pd.DataFrame:
    """Quality flags: pipeline masks, S/N, preprocessing verdict, domain of the model."""
    good = spec.ivar > 0
    snr_g = spec.meta.snr.get("g", float("nan"))
    cls = (spec.meta.objclass or "").upper()
    rows = [
        ("pixels with ivar > 0", f"{good.mean():.1%}", "ok" if good.mean() > 0.9 else "check"),
        ("pixels with and-mask set", f"{(spec.and_mask != 0).mean():.1%}",
         "ok" if (spec.and_mask != 0).mean() < 0.1 else "check"),
        ("S/N in g", format_number(snr_g, ".1f"), "ok" if snr_g > 15 else "low (paper: S/N > 15)"),
        ("zero-flux pixels on 4000-8096 Å", str(view.stats["n_zero"]),
         "ok" if view.stats["n_zero"] < 100 else "dropped (limit 100)"),
        ("std of normalised flux", f"{view.stats['std']:.4f}", "ok" if view.stats["std"] >= 0.005 else "dropped (< 0.005)"),
        ("preprocessing", "usable" if view.ok else "dropped", ", ".join(view.flags) or "no flags"),
        ("object class", spec.meta.objclass or "?", "ok" if cls in ("STAR", "") else "outside the model's domain"),
    ]
    if view.reason:
        rows.append(("reason", view.reason, ""))
    return pd.DataFrame(rows, columns=["check", "value", "verdict"])


def _test_rows(test: dict, units: str) -> list:
    """Card rows for the test split's numbers (present in cards made since issue 12)."""
    if "m2" not in test:
        return []
    rows = [("test M2 (chose nothing)", f"{test['m2']:.1f}%"),
            ("test 68% coverage", f"{test['coverage_68']:.0%}" if "coverage_68" in test else "?")]
    if "debiased_m2" in test:
        rows += [("de-biased test M2", f"{test['debiased_m2']:.1f}%"),
                 ("log-log slope vs truth (mean / de-biased)",
                  f"{test.get('log_slope_vs_truth', float('nan')):.2f} / "
                  f"{test.get('debiased_log_slope_vs_truth', float('nan')):.2f}")]
    return rows


def card_table(card: dict) -> pd.DataFrame:
    """The facts of a model card as a two-column table."""
    val = card.get("metrics", {}).get("val", {})
    data = card.get("data", {})
    arch = card.get("architecture", {})
    train = card.get("training", {})
    members = card.get("members", [])
    units = card.get("units", "")
    rows = [
        ("target", f"{card.get('target')} ({units})"),
        ("members", len(members)),
        ("architecture", f"DenseNet-BC k={arch.get('growth_rate')}, blocks {arch.get('block_layers')}, "
                         f"kernels {arch.get('kernel_sizes')}"),
        ("training", f"{train.get('epochs')} epochs max, lr {train.get('lr')}, batch {train.get('batch_size')}, "
                     f"{train.get('loss', '')}/{train.get('optimizer', '')}, keep {train.get('selection', '')}"),
        ("data", f"{data.get('name')}: {data.get('n_train')} train / {data.get('n_val')} validation"),
        ("best epochs", ", ".join(str(m.get("best_epoch")) for m in members)),
        ("validation M1", f"{val['m1']:.3g} {units}" if "m1" in val else "?"),
        ("validation M2", f"{val['m2']:.1f}%" if "m2" in val else "?"),
        ("member M2 range", "{:.1f}-{:.1f}%".format(*val["member_m2_range"]) if "member_m2_range" in val else "?"),
        ("68% coverage", "n/a (one member has no spread)" if len(members) == 1
         else f"{val['coverage_68']:.0%}" if "coverage_68" in val else "?"),
        *_test_rows(card.get("metrics", {}).get("test", {}), units),
        ("spread scale", f"{card.get('spread_scale', 1.0):.2f}"),
    ]
    rows += [(k, card[c]) for k, c in (("rgbkit version", "library_version"), ("created", "created")) if c in card]
    return pd.DataFrame([(k, str(v)) for k, v in rows], columns=["field", "value"])


HR_COLUMNS = ["obsid", "designation", "teff", "logg", "feh", "stage", "split", "age", "mass"]


def hr_stars(prediction_frames: list[pd.DataFrame] | None = None) -> pd.DataFrame:
    """Stars for the Teff-logg map: every demo star with its labels, or (given the frames of
    :func:`predict_demo`) the test stars with their predictions as well."""
    lab = demo().labels[HR_COLUMNS]
    if not prediction_frames:
        return lab.reset_index(drop=True)
    pred = merged_predictions(prediction_frames)
    keep = ["obsid"] + [c for c in pred.columns if c.endswith(("_pred", "_std"))]
    return lab.merge(pred[keep], on="obsid", how="inner").reset_index(drop=True)


def stars_in_box(stars: pd.DataFrame, teff_range, logg_range) -> pd.DataFrame:
    """Stars with teff and logg inside the (inclusive) ranges; the ends may come in either order."""
    t0, t1 = sorted(float(v) for v in teff_range)
    g0, g1 = sorted(float(v) for v in logg_range)
    t, g = stars["teff"].to_numpy(), stars["logg"].to_numpy()
    return stars[(t >= t0) & (t <= t1) & (g >= g0) & (g <= g1)].reset_index(drop=True)


def classifier_table(classifier) -> pd.DataFrame:
    """The classifier card's contamination/completeness per split next to the paper's."""
    from rgbkit.classify import PAPER

    rows = []
    for split, m in classifier.card.get("metrics", {}).items():
        if not isinstance(m, dict) or "contamination" not in m:
            continue
        paper = PAPER.get("val" if split.startswith("val") else split, {})
        rows.append({"split": split, "n": m.get("n"), "threshold": m.get("threshold"),
                     "contamination (%)": 100 * m["contamination"], "completeness (%)": 100 * m["completeness"],
                     "accuracy (%)": 100 * m["accuracy"] if "accuracy" in m else np.nan,
                     "paper contamination (%)": 100 * paper["contamination"] if paper else np.nan,
                     "paper completeness (%)": 100 * paper["completeness"] if paper else np.nan})
    return pd.DataFrame(rows)
