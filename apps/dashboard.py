"""The rgbkit dashboard, served with ``rgbkit app`` (``panel serve apps/dashboard.py``).

Each browser session gets its own :class:`rgbkit_app.state.AppState`; heavy
immutable results are cached per process in :mod:`rgbkit.app_support`.
"""
import sys
from pathlib import Path

import panel as pn

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the rgbkit_app package beside this file

from rgbkit_app import build  # noqa: E402

from rgbkit.app_support import warm_up_in_background  # noqa: E402

pn.extension("tabulator", "filedropper", notifications=True, sizing_mode="fixed")

warm_up_in_background()  # once per server process: demo inputs, shipped predictions
build().servable(title="rgbkit dashboard")
