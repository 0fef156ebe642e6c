"""Small view helpers shared by the tabs."""
from __future__ import annotations

import panel as pn

from .sources import SIMULATED_NOTE


def simulated_banner(extra: str = "") -> pn.pane.Alert:
    """The notice every view of demo data carries."""
    return pn.pane.Alert(f"**SIMULATED data.** {SIMULATED_NOTE} {extra}".strip(), alert_type="warning",
                         css_classes=["simulated-note"], margin=(5, 10))


def table(df, name: str, height: int | None = None, **kw) -> pn.widgets.Tabulator:
    """A read-only Tabulator with a stable CSS class (tests find it by ``name``)."""
    kw.setdefault("show_index", False)
    kw.setdefault("disabled", True)
    kw.setdefault("layout", "fit_data_table")
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
