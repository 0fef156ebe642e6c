"""Small view helpers shared by the tabs."""
from __future__ import annotations

import panel as pn

from .sources import SIMULATED_NOTE


def simulated_text(extra: str = "") -> str:
    """The words of the notice every view of demo data carries."""
    return f"**SIMULATED data.** {SIMULATED_NOTE} {extra}".strip()


def simulated_banner(extra: str = "") -> pn.pane.Alert:
    """The notice every view of demo data carries."""
    return pn.pane.Alert(simulated_text(extra), alert_type="warning", css_classes=["simulated-note"], margin=(5, 10))


def table(df, name: str, height: int | None = None, **kw) -> pn.widgets.Tabulator:
    """A read-only Tabulator with a stable CSS class (tests find it by ``name``)."""
    kw.setdefault("show_index", False)
    kw.setdefault("disabled", True)
    kw.setdefault("layout", "fit_data_table")
    kw.setdefault("sizing_mode", "stretch_width")  # wide tables scroll inside their tab, never past it
    kw.setdefault("max_width", 1400)
    kw["formatters"] = {**default_formatters(df), **kw.get("formatters", {})}
    return pn.widgets.Tabulator(df, height=height, css_classes=[name], **kw)


def default_formatters(df, precision: int = 3) -> dict:
    """Floats to ``precision`` decimals without thousands separators; ids as plain text."""
    out = {}
    for c in getattr(df, "columns", ()):
        if c == "obsid":  # an id, not a quantity: no 900,000,000
            out[c] = {"type": "plaintext"}
        elif df[c].dtype.kind == "f":
            out[c] = {"type": "money", "precision": precision, "thousand": False}
    return out


def notify(kind: str, message: str, duration: int = 6000) -> None:
    """A toast in this session (``kind``: success, info, warning, error); errors stay until closed."""
    notes = pn.state.notifications
    if notes is None:  # no page (warm-up run, a script): nothing to show it on
        return
    getattr(notes, kind)(message, duration=0 if kind == "error" else duration)


def wrap(*objs, **kw) -> pn.FlexBox:
    """Side by side while they fit, one under the other when the window is narrow."""
    kw.setdefault("sizing_mode", "stretch_width")
    kw.setdefault("gap", "12px")
    return pn.FlexBox(*objs, flex_wrap="wrap", **kw)


def on_session_end(callback) -> None:
    """Run ``callback()`` when this browser session ends (its page closed); no-op outside a session."""
    try:
        pn.state.on_session_destroyed(lambda _ctx: callback())
    except Exception:  # no session (the --warm run, tests building tabs in Python)
        pass


def with_help(widget, text: str) -> pn.Row:
    """A widget with a (?) tooltip beside it, for widgets without a ``description`` of their own."""
    return pn.Row(widget, pn.widgets.TooltipIcon(value=text, margin=(25, 0, 0, 0)), sizing_mode="stretch_width")


class BuiltTab(pn.viewable.Viewer):
    """A tab whose layout one ``build(state)`` function makes, once per session."""

    build = None  # set by each tab: a function of the session state

    def __init__(self, state, **params):
        super().__init__(**params)
        self._layout = type(self).build(state)

    def __panel__(self):
        return self._layout
