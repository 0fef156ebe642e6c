"""The rgbkit dashboard: views over rgbkit library calls (served by ``rgbkit app``)."""
from __future__ import annotations

import panel as pn

from .state import TABS, AppState


def build(state: AppState | None = None) -> pn.template.FastListTemplate:
    """A fresh dashboard for one session."""
    from . import clusters_tab, ensembles_tab, hrmap_tab, predictions_tab, spectra_tab

    state = state or AppState()
    builders = [m.build for m in (spectra_tab, ensembles_tab, predictions_tab, hrmap_tab, clusters_tab)]
    tabs = pn.Tabs(*[(name, b(state)) for name, b in zip(TABS, builders)], dynamic=False,
                   sizing_mode="stretch_width", css_classes=["main-tabs"])
    tabs.link(state, active="active_tab", bidirectional=True)
    tmpl = pn.template.FastListTemplate(
        title="rgbkit: masses and ages of red giants from LAMOST spectra",
        main=[tabs], header_background="#2f4f6f", accent_base_color="#2f4f6f",
        theme_toggle=False)
    return tmpl


def serve(title: str = "rgbkit dashboard") -> None:
    """Mark a fresh dashboard servable (what ``panel serve`` runs once per session)."""
    from .models import warm_up_in_background

    from .sources import session_allowed

    pn.extension("tabulator", "filedropper", notifications=True, sizing_mode="fixed")
    request = getattr(getattr(pn.state.curdoc, "session_context", None), "request", None)
    remote = getattr(request, "remote_ip", None)
    if not session_allowed(remote):
        pn.pane.Markdown(f"This rgbkit dashboard serves only the machine it runs on (you are {remote}). "
                         "Start it with `rgbkit app --address 0.0.0.0` or set RGBKIT_DASHBOARD_REMOTE=1 "
                         "to serve other machines.").servable(title=title)
        return
    warm_up_in_background()  # once per server process: demo inputs, shipped predictions
    build().servable(title=title)
