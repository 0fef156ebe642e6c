"""Tab 3: predicted against labelled age and mass on the demo test split (it chose nothing)."""
from __future__ import annotations

import numpy as np
import panel as pn

from . import support as sup
from rgbkit import plots

from .common import simulated_banner, table
from .state import AppState

TARGETS = ("age", "mass")


def current_ensemble(state: AppState, target: str):
    """(ensemble, origin) for a target: this session's (trained/loaded) first, else the shipped one."""
    ens = state.ensembles.get(target)
    if ens is not None:
        origin = f"from {ens.folder}" if ens.folder else "trained in this session"
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


def build(state: AppState) -> pn.viewable.Viewable:
    @pn.depends(state.param.ensembles)
    def view(ensembles):
        cols, frames = [], []
        for t in TARGETS:
            ens, origin = current_ensemble(state, t)
            if ens is None:
                cols.append(pn.pane.Alert(
                    f"No {t} ensemble yet: none is shipped in rgbkit/pretrained/ and none was trained or loaded "
                    "in this session (Ensembles tab).", alert_type="info", width=470, css_classes=[f"no-{t}"]))
                continue
            df, s = sup.predict_demo(ens)
            frames.append(df)
            fig = plots.pred_vs_true(df[t], df[f"{t}_pred"], df[f"{t}_std"], target=t,
                                     reference="catalog").opts(width=470, height=430)
            cols.append(pn.Column(pn.pane.Markdown(_summary_md(s, origin), width=470,
                                                   css_classes=[f"{t}-summary"]),
                                  pn.pane.HoloViews(fig, css_classes=[f"{t}-pred-plot"])))
        body = [pn.Row(*cols)]
        if frames:
            df = sup.merged_predictions(frames)
            show = [c for c in df.columns if not c.endswith("_within_1sigma")]
            body += [pn.pane.Markdown(f"### Per-star predictions ({len(df)} test stars)",
                                      css_classes=["pred-count"]),
                     table(df[show], "pred-table", pagination="local", page_size=12,
                           formatters={"teff": {"type": "money", "precision": 0, "thousand": False}})]
        return pn.Column(*body)

    return pn.Column(simulated_banner("Predictions are for the demo test split (nothing was fitted or chosen on it); labels play the role of "
                                      "asteroseismic values, the hidden truth is in the *_true columns."),
                     view, name="Predictions", sizing_mode="stretch_width")
