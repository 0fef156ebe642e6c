"""Tab 4: Teff-logg maps of age and mass; box-select a region, click a star to open its spectrum."""
from __future__ import annotations

import holoviews as hv
import numpy as np
import panel as pn
from holoviews import streams

from . import support as sup
from rgbkit import plots

from .common import simulated_banner, table
from .predictions_tab import current_ensemble
from .state import AppState

PAGE = 10
BINS = (np.arange(4200, 5801, 100), np.arange(1.7, 3.96, 0.1))  # covers the demo giants and subgiants


def build(state: AppState) -> pn.viewable.Viewable:
    quantity = pn.widgets.RadioButtonGroup(name="Quantity", options=["age", "mass"], value="age",
                                           css_classes=["hr-quantity"])
    source = pn.widgets.RadioButtonGroup(name="Values", options=["labels", "predictions"], value="labels",
                                         css_classes=["hr-source"])
    note = pn.pane.Markdown("", css_classes=["hr-note"], width=300)
    selection_text = pn.pane.Markdown("Box-select a region of the map (the box tool is active) to list its stars.",
                                      css_classes=["hr-selection"], sizing_mode="stretch_width")
    fmt = {c: {"type": "money", "precision": p, "thousand": False} for c, p in
           (("teff", 0), ("logg", 3), ("feh", 2), ("age", 2), ("mass", 3), ("age_pred", 2), ("age_std", 2),
            ("mass_pred", 3), ("mass_std", 3))}
    selected = table(sup.hr_stars().iloc[:0], "hr-table", pagination="local", page_size=PAGE, selectable=1,
                     formatters=fmt)
    plot_pane = pn.pane.HoloViews(css_classes=["hr-plot"])
    current = {"stars": None, "stream": None}  # this session's map data

    def stars_for(src):
        if src == "labels":
            return sup.hr_stars(), "labels of all demo stars"
        frames = []
        for t in ("age", "mass"):
            ens, origin = current_ensemble(state, t)
            if ens is not None:
                frames.append(sup.predict_demo(ens)[0])
        if not frames:
            return None, "no ensemble yet: predictions need a shipped, loaded or trained ensemble"
        return sup.hr_stars(frames), "predictions for the test stars"

    def on_bounds(bounds):
        if bounds is None or current["stars"] is None:
            return
        x0, y0, x1, y1 = bounds
        sel = sup.stars_in_box(current["stars"], (x0, x1), (y0, y1))
        t0, t1 = sorted((x0, x1))
        g0, g1 = sorted((y0, y1))
        selection_text.object = (f"<span class='hr-count' data-bounds='{t0!r},{t1!r},{g0!r},{g1!r}'>{len(sel)}</span> "
                                 f"stars in Teff "
                                 f"<span class='hr-teff'>{t0:.2f}-{t1:.2f}</span> K, log g "
                                 f"<span class='hr-logg'>{g0:.4f}-{g1:.4f}</span>. Click a row to open its "
                                 "spectrum in the Spectra tab.")
        selected.value = sel

    def redraw(*_):
        q, src = quantity.value, source.value
        stars, what = stars_for(src)
        current["stars"] = stars
        selected.value = sup.hr_stars().iloc[:0]
        if stars is None:
            note.object = f"**{what}**"
            plot_pane.object = None
            return
        col = q if src == "labels" else f"{q}_pred"
        if col not in stars:
            note.object = f"**No {q} ensemble yet**: showing nothing for predicted {q}."
            plot_pane.object = None
            return
        note.object = (f"Colour: median {q} per bin (100 K x 0.1 dex, at least 3 stars) from the {what}; "
                       f"dots: the individual stars. Axes show {BINS[0][0]}-{BINS[0][-1]} K.")
        mesh = plots.hr_map(stars["teff"], stars["logg"], stars[col], quantity=q, bins=BINS,
                            title=f"{'Predicted' if src != 'labels' else 'Labelled'} {q}, n = {len(stars)}")
        pts = hv.Points(stars, ["teff", "logg"], ["designation", "stage", col]).opts(
            color="black", size=2, alpha=0.25, tools=["box_select", "hover"], active_tools=["box_select"],
            nonselection_alpha=0.15, selection_color="red")
        stream = streams.BoundsXY(source=pts)
        stream.add_subscriber(lambda bounds: on_bounds(bounds))
        current["stream"] = stream
        plot_pane.object = (mesh * pts).opts(width=620, height=500, invert_xaxis=True, invert_yaxis=True,
                                             xlim=(BINS[0][0], BINS[0][-1]), ylim=(BINS[1][0], BINS[1][-1]))

    quantity.param.watch(redraw, "value")
    source.param.watch(redraw, "value")
    state.param.watch(lambda e: source.value == "predictions" and redraw(), "ensembles")

    def on_click(event):
        df = selected.value
        if df is None or event.row is None or event.row >= len(df):
            return
        state.open_star(f"{sup.DEMO_PREFIX}{int(df['obsid'].iloc[event.row])}")

    selected.on_click(on_click)
    redraw()
    left = pn.Column("### Teff-log g map", quantity, source, note, width=320)
    return pn.Column(simulated_banner(), pn.Row(left, plot_pane),
                     selection_text, selected, name="HR maps", sizing_mode="stretch_width")
