"""Tab 4: Teff-logg maps of age and mass; box-select a region, click a star to open its spectrum."""
from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
from holoviews import streams

from . import support as sup
from rgbkit import plots

from .common import BuiltTab, simulated_banner, table, wrap
from .predictions_tab import csv_download, current_ensemble, with_units
from .state import AppState

PAGE = 10
BINS = (np.arange(4200, 5801, 100), np.arange(1.7, 3.96, 0.1))  # covers the demo giants and subgiants


class HRMapTab(BuiltTab):
    """Teff-log g maps; box-select to list stars, click a star (dot or row) to open its spectrum."""

    build = staticmethod(lambda state: _build(state))  # _build is defined below


def build(state: AppState) -> pn.viewable.Viewable:
    return HRMapTab(state)


def _build(state: AppState) -> pn.viewable.Viewable:
    quantity = pn.widgets.RadioButtonGroup(name="Quantity", options=["age", "mass"], value="age",
                                           description="Colour the map by age (Gyr) or mass (Msun).",
                                           css_classes=["hr-quantity"])
    source = pn.widgets.RadioButtonGroup(name="Values", options=["labels", "predictions"], value="labels",
                                         description="labels: the demo catalog's values for every star; predictions: "
                                                     "the current ensembles' estimates for the validation stars.",
                                         css_classes=["hr-source"])
    note = pn.pane.Markdown("", css_classes=["hr-note"], sizing_mode="stretch_width")
    selection_text = pn.pane.Markdown("Box-select a region of the map (the box tool is active) to list its stars.",
                                      css_classes=["hr-selection"], sizing_mode="stretch_width")
    fmt = {c: {"type": "money", "precision": p, "thousand": False} for c, p in
           (("teff", 0), ("logg", 3), ("feh", 2), ("age", 2), ("mass", 3), ("age_pred", 2), ("age_std", 2),
            ("mass_pred", 3), ("mass_std", 3))}
    fmt = {**fmt, **{with_units(pd.DataFrame(columns=[c])).columns[0]: f for c, f in fmt.items()}}
    selected = table(with_units(sup.hr_stars().iloc[:0]), "hr-table", pagination="local", page_size=PAGE,
                     selectable=1, formatters=fmt)
    plot_pane = pn.pane.HoloViews(css_classes=["hr-plot"], sizing_mode="stretch_width", min_width=280,
                                  linked_axes=False)
    current = {"stars": None, "streams": None, "bounds": None, "sel": None}  # this session's map data
    download = csv_download(lambda: current["sel"] if current["sel"] is not None else sup.hr_stars().iloc[:0],
                            "rgbkit-hr-selection.csv", "Download selection (CSV)", "hr-download")

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
        current["bounds"] = bounds
        x0, y0, x1, y1 = bounds
        sel = sup.stars_in_box(current["stars"], (x0, x1), (y0, y1))
        current["sel"] = sel
        what = f"{quantity.value} {'labels' if source.value == 'labels' else 'predictions'}"
        t0, t1 = sorted((x0, x1))
        g0, g1 = sorted((y0, y1))
        selection_text.object = (f"<span class='hr-count' data-bounds='{t0!r},{t1!r},{g0!r},{g1!r}'>{len(sel)}</span> "
                                 f"stars in Teff "
                                 f"<span class='hr-teff'>{t0:.2f}-{t1:.2f}</span> K, log g "
                                 f"<span class='hr-logg'>{g0:.4f}-{g1:.4f}</span> (map of <span class='hr-what'>"
                                 f"{what}</span>). Click a row or a dot to open its spectrum in the Spectra tab.")
        selected.value = with_units(sel)

    def on_tap(x, y):
        stars = current["stars"]
        if x is None or y is None or stars is None or not len(stars):
            return
        # nearest star in units of the axes' spans (K and dex differ by ~1000x)
        d = ((stars["teff"] - x) / 1000.0) ** 2 + (stars["logg"] - y) ** 2
        i = int(np.argmin(d.to_numpy()))
        if d.iloc[i] < 0.05 ** 2:
            state.open_star(f"{sup.DEMO_PREFIX}{int(stars['obsid'].iloc[i])}")

    def redraw(*_):
        q, src = quantity.value, source.value
        stars, what = stars_for(src)
        current["stars"] = stars
        if stars is None:
            note.object = f"**{what}**"
            plot_pane.object = None
            return
        col = q if src == "labels" else f"{q}_pred"
        if col not in stars:
            note.object = f"**No {q} ensemble yet**: showing nothing for predicted {q}."
            plot_pane.object = None
            return
        xlim, ylim = (BINS[0][0], BINS[0][-1]), (BINS[1][0], BINS[1][-1])
        outside = int((~stars["teff"].between(*xlim) | ~stars["logg"].between(*ylim)).sum())
        note.object = (f"Colour: median {q} per bin (100 K x 0.1 dex, at least 3 stars) from the {what}; "
                       f"dots: the individual stars (n = {len(stars)}). Axes show {xlim[0]}-{xlim[1]} K and log g "
                       f"{ylim[0]:.1f}-{ylim[1]:.1f}: <span class='hr-outside'>{outside}</span> stars lie outside "
                       "them and are not drawn.")
        mesh = plots.hr_map(stars["teff"], stars["logg"], stars[col], quantity=q, bins=BINS,
                            title=f"{'Predicted' if src != 'labels' else 'Labelled'} {q}, n = {len(stars)}")
        pts = hv.Points(stars, ["teff", "logg"], ["designation", "stage", col]).opts(
            color="black", size=2, alpha=0.25, tools=["box_select", "hover", "tap"], active_tools=["box_select"],
            nonselection_alpha=0.15, selection_color="red")
        bounds_stream = streams.BoundsXY(source=pts)
        bounds_stream.add_subscriber(lambda bounds: on_bounds(bounds))
        tap = streams.Tap(source=pts)
        tap.add_subscriber(lambda x, y: on_tap(x, y))
        current["streams"] = (bounds_stream, tap)
        plot_pane.object = (mesh * pts).opts(width=None, responsive=True, height=500, min_width=280,
                                             invert_xaxis=True, invert_yaxis=True, xlim=xlim, ylim=ylim)
        if current["bounds"] is not None:  # the selection text follows the map it describes
            on_bounds(current["bounds"])
        else:
            selected.value = with_units(sup.hr_stars().iloc[:0])

    quantity.param.watch(redraw, "value")
    source.param.watch(redraw, "value")
    state.param.watch(lambda e: source.value == "predictions" and redraw(), "ensembles")

    def on_click(event):
        df = current["sel"]
        if df is None or event.row is None or event.row >= len(df):
            return
        state.open_star(f"{sup.DEMO_PREFIX}{int(df['obsid'].iloc[event.row])}")

    selected.on_click(on_click)
    redraw()
    left = pn.Column("### Teff-log g map", quantity, source, note, sizing_mode="stretch_width", min_width=240,
                     max_width=320, styles={"flex": "0 1 320px"})
    right = pn.Column(plot_pane, sizing_mode="stretch_width", min_width=280, styles={"flex": "1 1 560px"})
    return pn.Column(simulated_banner(), wrap(left, right), selection_text, download, selected,
                     name="HR maps", sizing_mode="stretch_width")
