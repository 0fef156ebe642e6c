"""The rgbkit dashboard, served with ``rgbkit app`` (``panel serve apps/dashboard.py``).

Thin entry point for a source checkout: the app is the ``rgbkit_app``
package beside this file (shipped in the same wheel as ``rgbkit``). Each
browser session gets its own :class:`rgbkit_app.state.AppState`.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the rgbkit_app package beside this file

from rgbkit_app import serve  # noqa: E402

serve()
