"""The rgbkit dashboard: views over rgbkit library calls (served by ``rgbkit app``)."""
from __future__ import annotations

import panel as pn

from .state import TABS, AppState


TABS_CSS = ":host .bk-headers-wrapper { flex-wrap: wrap; } :host .bk-header { max-width: 100%; }"  # phone: titles wrap
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
NO_FONT_URL = "data:text/css,"
PHONE_CSS = "@media (max-width: 600px) { .title { font-size: 0.8em !important; white-space: normal !important; line-height: 1.2; } }"


# The Fast design without its Google-hosted Open Sans, so the page makes no request off its server.
# Named "Fast" because Panel finds a design's bundled files under its lower-cased class name.
OfflineFast = type("Fast", (pn.theme.Fast,), {"_resources": {**pn.theme.Fast._resources, "font": {}},
                                              "__module__": __name__})


def build(state: AppState | None = None) -> pn.template.FastListTemplate:
    """A fresh dashboard for one session."""
    from . import clusters_tab, ensembles_tab, hrmap_tab, predictions_tab, spectra_tab

    state = state or AppState()
    builders = [m.build for m in (spectra_tab, ensembles_tab, predictions_tab, hrmap_tab, clusters_tab)]
    tabs = pn.Tabs(*[(name, b(state)) for name, b in zip(TABS, builders)], dynamic=True,
                   sizing_mode="stretch_width", css_classes=["main-tabs"], stylesheets=[TABS_CSS])
    tabs.link(state, active="active_tab", bidirectional=True)
    tmpl = pn.template.FastListTemplate(
        title="rgbkit: masses and ages of red giants from LAMOST spectra",
        main=[tabs], header_background="#2f4f6f", accent_base_color="#2f4f6f",
        theme_toggle=False, raw_css=[PHONE_CSS], font=FONT, font_url=NO_FONT_URL, design=OfflineFast)
    return tmpl


def canvas_not_webgl() -> None:
    """Draw plots on a 2D canvas, not WebGL (HoloViews' default).

    Without a GPU (Binder, headless, many classroom laptops) the browser emulates WebGL and copies each
    frame into the page: measured 4.2 s of a 7.4 s profile of three slider steps went to that copy.
    A few thousand points per plot draw in milliseconds on a canvas.
    """
    import holoviews as hv

    hv.renderer("bokeh").webgl = False


def _local_stylesheets() -> None:
    """Point the stylesheets of models built for this session at this server, not Panel's CDN.

    Panel learns the local address only when it renders the page; models built
    before then (this whole session's page) default to cdn.holoviz.org, which an
    offline classroom cannot reach.
    """
    from panel.io.resources import LOCAL_DIST

    doc = pn.state.curdoc
    if doc is not None and doc.session_context is not None:
        rel = pn.state.rel_path
        doc._template_variables.setdefault("dist_url", f"{rel}/{LOCAL_DIST}" if rel else LOCAL_DIST)


def serve(title: str = "rgbkit dashboard") -> None:
    """Mark a fresh dashboard servable (what ``panel serve`` runs once per session)."""
    from .models import warm_up_in_background

    from .sources import session_allowed

    pn.extension("tabulator", "filedropper", notifications=True, sizing_mode="fixed")
    canvas_not_webgl()
    request = getattr(getattr(pn.state.curdoc, "session_context", None), "request", None)
    remote = getattr(request, "remote_ip", None)
    if not session_allowed(remote):
        pn.pane.Markdown(f"This rgbkit dashboard serves only the machine it runs on (you are {remote}). "
                         "Start it with `rgbkit app --address 0.0.0.0` or set RGBKIT_DASHBOARD_REMOTE=1 "
                         "to serve other machines.").servable(title=title)
        return
    _local_stylesheets()
    warm_up_in_background()  # once per server process: demo inputs, shipped predictions
    build().servable(title=title)
