"""Tab 3: predicted against labelled age and mass on the demo test split (it chose nothing)."""
from __future__ import annotations

import numpy as np
import panel as pn

from . import support as sup
from rgbkit import plots

from .common import BuiltTab, simulated_banner, table, wrap
from .state import AppState

TARGETS = ("age", "mass")
UNITS = {"teff": "Teff (K)", "logg": "log g (dex)", "feh": "[Fe/H] (dex)", "age": "age (Gyr)", "mass": "mass (Msun)"}


def with_units(df):
    """Column names with their units for the page: age -> "age (Gyr)", age_pred -> "age_pred (Gyr)"..."""
    out = {}
    for c in df.columns:
        base = c.split("_")[0]
        if c in UNITS:
            out[c] = UNITS[c]
        elif base in ("age", "mass") and c.endswith(("_pred", "_std", "_err", "_true")):
            out[c] = f"{c} ({'Gyr' if base == 'age' else 'Msun'})"
    return df.rename(columns=out)


def csv_download(frame_fn, filename: str, label: str, css: str) -> pn.widgets.FileDownload:
    """A button that downloads ``frame_fn()`` (a DataFrame) as CSV, built when clicked."""
    import io

    return pn.widgets.FileDownload(callback=lambda: io.StringIO(frame_fn().to_csv(index=False)), filename=filename,
                                   label=label, button_type="default", width=230, css_classes=[css],
                                   description="The table's rows as a CSV file (SIMULATED demo stars).")


def current_ensemble(state: AppState, target: str):
    """(ensemble, origin) for a target: this session's (trained/loaded) first, else the shipped one."""
    ens = state.ensembles.get(target)
    if ens is not None:
        from pathlib import Path

        from rgbkit.config import PRETRAINED_DIR

        if not ens.folder:
            origin = "trained in this session"
        elif Path(ens.folder).resolve().parent == PRETRAINED_DIR.resolve():
            origin = "shipped with rgbkit"
        else:
            origin = f"saved as {Path(ens.folder).name}"  # the name, never the server's path
        return ens, origin
    ens = sup.shipped_ensemble(target)
    return ens, "shipped with rgbkit"


def _summary_md(s: dict, origin: str) -> str:
    t, u = s["target"], s["units"]
    paper = sup.paper_numbers(t)
    cov = "n/a (one member)" if np.isnan(s["coverage_68"]) else f"{s['coverage_68']:.0%}"
    mem = ", ".join(f"{m:.1f}" for m in s["member_m2"])
    return (f"**{t.capitalize()}** ({s['members']}-member ensemble {origin}), {s['n']} test stars:  \n"
            f"M1 = <span class='{t}-m1'>{s['m1']:.3g}</span> {u}, M2 = <span class='{t}-m2'>{s['m2']:.1f}</span>% "
            f"(paper: {paper['m1']} {u}, {paper['m2']}%); 68% coverage of the +-1 sigma spread: "
            f"<span class='{t}-cov'>{cov}</span>; members' M2: {mem}%.")


class PredictionsTab(BuiltTab):
    """Predicted against labelled age and mass on the demo test split, with a CSV download."""

    build = staticmethod(lambda state: _build(state))  # _build is defined below


def build(state: AppState) -> pn.viewable.Viewable:
    return PredictionsTab(state)


def _build(state: AppState) -> pn.viewable.Viewable:
    @pn.depends(state.param.ensembles)
    def view(ensembles):
        cols, frames = [], []
        for t in TARGETS:
            ens, origin = current_ensemble(state, t)
            if ens is None:
                cols.append(pn.pane.Alert(
                    f"No {t} ensemble yet: none is shipped in rgbkit/pretrained/ and none was trained or loaded "
                    "in this session (Ensembles tab).", alert_type="info", css_classes=[f"no-{t}"],
                    min_width=260, styles={"flex": "1 1 420px"}))
                continue
            df, s = sup.predict_demo(ens)
            frames.append(df)
            fig = plots.pred_vs_true(df[t], df[f"{t}_pred"], df[f"{t}_std"], target=t,
                                     reference="catalog").opts(width=None, responsive=True, height=420,
                                                               min_width=260)
            cols.append(pn.Column(pn.pane.Markdown(_summary_md(s, origin), sizing_mode="stretch_width",
                                                   css_classes=[f"{t}-summary"]),
                                  pn.pane.HoloViews(fig, css_classes=[f"{t}-pred-plot"], sizing_mode="stretch_width",
                                                    linked_axes=False),
                                  min_width=260, sizing_mode="stretch_width", styles={"flex": "1 1 420px"}))
        body = [wrap(*cols)]
        if frames:
            df = sup.merged_predictions(frames)
            show = [c for c in df.columns if not c.endswith("_within_1sigma")]
            shown = with_units(df[show])
            body += [pn.pane.Markdown(f"### Per-star predictions ({len(df)} test stars)",
                                      css_classes=["pred-count"]),
                     csv_download(lambda: df, "rgbkit-demo-predictions.csv", "Download predictions (CSV)",
                                  "pred-download"),
                     table(shown, "pred-table", pagination="local", page_size=12,
                           formatters={UNITS["teff"]: {"type": "money", "precision": 0, "thousand": False}})]
        return pn.Column(*body, sizing_mode="stretch_width")

    return pn.Column(simulated_banner("Predictions are for the demo test split (nothing was fitted or chosen on it); labels play the role of "
                                      "asteroseismic values, the hidden truth is in the *_true columns."),
                     pn.panel(view, loading_indicator=True), name="Predictions", sizing_mode="stretch_width")
