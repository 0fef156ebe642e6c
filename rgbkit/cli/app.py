"""``rgbkit app``: serve the Panel dashboard (the ``rgbkit_app`` package) on the bundled demo data."""
from __future__ import annotations

import os
import sys
from pathlib import Path


def dashboard_script() -> Path | None:
    """The script ``panel serve`` runs: ``rgbkit_app/dashboard.py`` of the installed app (its URL: /dashboard).

    In a source checkout without an install, ``apps/rgbkit_app`` beside the package.
    """
    import importlib.util

    spec = importlib.util.find_spec("rgbkit_app")
    if spec is not None and spec.origin:
        return Path(spec.origin).resolve().parent / "dashboard.py"
    from ..config import REPO_ROOT

    script = REPO_ROOT / "apps" / "rgbkit_app" / "dashboard.py"
    return script if script.exists() else None


def cmd_app(args) -> int:
    app = dashboard_script()
    if app is None or not app.exists():
        from .summary import DEFAULT_REAL_DATA, cmd_summary

        print("dashboard not built yet; showing the real spectra summary instead")
        args.paths = str(DEFAULT_REAL_DATA)
        args.workers, args.max_rows = 1, 20
        return cmd_summary(args)
    cmd = [sys.executable, "-m", "panel", "serve", str(app), "--address", args.address,
           "--port", str(args.port), "--allow-websocket-origin", f"{args.address}:{args.port}",
           "--allow-websocket-origin", f"localhost:{args.port}",
           "--warm"]  # run the app once at start-up: caches fill before the first visitor
    if args.show:
        cmd.append("--show")
    import ipaddress

    try:
        local = ipaddress.ip_address(args.address).is_loopback
    except ValueError:
        local = args.address == "localhost"
    if not local:  # the user asked for other machines: let the app serve their sessions
        os.environ["RGBKIT_DASHBOARD_REMOTE"] = "1"
    print("starting the rgbkit dashboard: http://%s:%d/dashboard" % (args.address, args.port))
    os.execv(sys.executable, cmd)
    return 0


def add_parser(sub) -> None:
    a = sub.add_parser("app", help="serve the dashboard on the bundled demo data")
    a.add_argument("--address", default="127.0.0.1")
    a.add_argument("--port", type=int, default=5006)
    a.add_argument("--show", action="store_true", help="open a browser tab")
    a.set_defaults(func=cmd_app)
