"""The page ``panel serve`` runs for ``rgbkit app`` (the script is this file in the installed package).

A checkout serves it through ``apps/dashboard.py``, which does the same.
"""
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script by `panel serve`: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rgbkit_app import serve  # noqa: E402

serve()
