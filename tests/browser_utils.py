"""Helpers for the dashboard's browser tests: serve the app, drive Debian's Chromium."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "apps" / "dashboard.py"
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = REPO / "artifacts" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]


def free_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(port: int, env: dict | None = None, log_path: Path | None = None) -> subprocess.Popen:
    """Start ``panel serve apps/dashboard.py`` on 127.0.0.1:port (as ``rgbkit app`` does)."""
    cmd = [sys.executable, "-m", "panel", "serve", str(APP), "--address", "127.0.0.1", "--port", str(port),
           "--allow-websocket-origin", f"127.0.0.1:{port}", "--warm"]  # the flags of `rgbkit app`
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL
    return subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT)


def wait_http(url: str, proc: subprocess.Popen | None = None, timeout: float = 90.0) -> float:
    """Seconds until ``url`` answers 200; raises if the server died or time ran out."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"panel serve exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                if r.status == 200:
                    return time.perf_counter() - t0
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


def launch(playwright, user_data_dir: str, width: int = 1500, height: int = 1000):
    """A browser context of Debian's Chromium with the project's flags and a fresh profile.

    Playwright refuses ``--user-data-dir`` in ``launch`` args; a persistent
    context on a fresh temporary folder is the same thing. Never a downloaded browser.
    """
    return playwright.chromium.launch_persistent_context(
        user_data_dir, executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True,
        viewport={"width": width, "height": height})


def shot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@contextlib.contextmanager
def browser_context(profile_dir: str, timeout_ms: int = 60_000):
    """A Playwright context on Debian's Chromium with a fresh profile, closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        ctx = launch(p, profile_dir)
        ctx.set_default_timeout(timeout_ms)
        try:
            yield ctx
        finally:
            ctx.close()
