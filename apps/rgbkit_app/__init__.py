"""The rgbkit dashboard: views over rgbkit library calls (see apps/dashboard.py)."""
from __future__ import annotations

import panel as pn

from .state import TABS, AppState


def build(state: AppState | None = None) -> pn.template.FastListTemplate:
    """A fresh dashboard for one session."""
    from . import spectra_tab

    state = state or AppState()
    builders = [spectra_tab.build]
    for modname in ("ensembles_tab", "predictions_tab", "hrmap_tab", "clusters_tab"):
        try:
            mod = __import__(f"{__name__}.{modname}", fromlist=["build"])
            builders.append(mod.build)
        except ModuleNotFoundError:  # tab not written yet
            builders.append(lambda state: pn.pane.Markdown("This tab is being built."))
    tabs = pn.Tabs(*[(name, b(state)) for name, b in zip(TABS, builders)], dynamic=False,
                   sizing_mode="stretch_width", css_classes=["main-tabs"])
    tabs.link(state, active="active_tab", bidirectional=True)
    tmpl = pn.template.FastListTemplate(
        title="rgbkit: masses and ages of red giants from LAMOST spectra",
        main=[tabs], header_background="#2f4f6f", accent_base_color="#2f4f6f",
        theme_toggle=False)
    return tmpl
