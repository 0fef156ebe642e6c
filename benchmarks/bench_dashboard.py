"""Dashboard speed in a real browser: server start, first render, tab switches, slider latency.

    .venv/bin/python benchmarks/bench_dashboard.py            # writes benchmarks/results/dashboard.md
    .venv/bin/python benchmarks/bench_dashboard.py --out /tmp/dashboard.md --sessions 3

Serves apps/dashboard.py with ``panel serve`` (as ``rgbkit app`` does) and
drives Debian's Chromium with Playwright. Times are wall-clock seconds from
the browser's side: "first render" = navigation start until the Spectra tab
shows its residual numbers (the page is usable); each tab switch = click
until the tab's key element is visible. The first session of a fresh server
pays for loading the demo data and models; later sessions hit the caches.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "apps"))

from browser_utils import free_port, launch, serve, wait_http  # noqa: E402

TABS = [("Ensembles", ".start-button button"), ("Predictions", ".pred-count div, .no-age div"),
        ("HR maps", ".hr-plot canvas"), ("Clusters & baselines", ".paper-baseline-table .tabulator-row"),
        ("Spectra", ".resid-numbers div")]


def session(ctx, url: str) -> dict:
    page = ctx.new_page()
    out = {}
    t0 = time.perf_counter()
    page.goto(url)
    page.locator(".resid-numbers div").first.wait_for()
    out["first render"] = time.perf_counter() - t0
    for name, sel in TABS:  # first visit of each tab, then a second round (already rendered)
        t = time.perf_counter()
        page.locator(".main-tabs .bk-tab", has_text=name).first.click()
        page.locator(sel).first.wait_for(state="visible")
        out[f"open {name}"] = time.perf_counter() - t
    for name, sel in TABS:
        t = time.perf_counter()
        page.locator(".main-tabs .bk-tab", has_text=name).first.click()
        page.locator(sel).first.wait_for(state="visible")
        out[f"back to {name}"] = time.perf_counter() - t
    # slider: one step and wait for the residual numbers to say the new threshold
    handle = page.locator(".threshold-slider .noUi-handle").first
    handle.focus()
    lat = []
    for i in range(5):
        t = time.perf_counter()
        handle.press("ArrowRight")
        want = f"threshold {0.05 + 0.01 * (i + 1):.2f} "
        while want not in page.locator(".resid-numbers div").first.inner_text():
            time.sleep(0.01)
        lat.append(time.perf_counter() - t)
    out["slider step (median of 5)"] = statistics.median(lat)
    # star change: pick the next demo star in the searchable list until its header and the models' age show
    from rgbkit_app import support as sup

    opts = list(sup.demo_star_options().items())
    lat = []
    for label, key in opts[1:4]:
        name = label.split(" · ")[0]
        t = time.perf_counter()
        box = page.locator(".demo-search input").first
        box.fill("")
        box.press_sequentially(name[:10], delay=30)
        page.locator(".bk-menu div", has_text=name).first.click()
        page.locator(".header-table table", has_text=name).first.wait_for()
        lat.append(time.perf_counter() - t)
    out["star change (median of 3)"] = statistics.median(lat)
    page.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=3)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "dashboard.md"))
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright

    port = free_port()
    url = f"http://127.0.0.1:{port}/dashboard"
    t0 = time.perf_counter()
    load0 = os.getloadavg()
    proc = serve(port)
    try:
        start = wait_http(url, proc, timeout=300)
        print(f"server answers after {time.perf_counter() - t0:.1f} s (first HTTP page {start:.1f} s)")
        runs = []
        with sync_playwright() as p, tempfile.TemporaryDirectory() as tmp:
            ctx = launch(p, tmp)
            ctx.set_default_timeout(120_000)
            for i in range(a.sessions):
                r = session(ctx, url)
                runs.append(r)
                print(f"session {i + 1}: " + ", ".join(f"{k} {v:.2f}s" for k, v in r.items()))
            ctx.close()
    finally:
        proc.terminate()
        proc.wait(10)
    keys = list(runs[0])
    lines = [
        "# Dashboard speed (browser-side wall clock)", "",
        f"`benchmarks/bench_dashboard.py`, {time.strftime('%Y-%m-%d')}: `panel serve apps/dashboard.py` on "
        f"127.0.0.1, Debian Chromium (headless, Playwright), {os.cpu_count()} CPU cores "
        f"({platform.processor() or platform.machine()}) shared with other work (load average "
        f"{load0[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end). Server started and answered HTTP after {start:.1f} s.", "",
        "Session 1 is the first browser session of a fresh server (with `--warm`, the demo data, their network inputs and the "
        "shipped models' predictions load in a warm-up thread started with the server); later sessions hit the "
        "per-process caches. 'open X' = first switch to a tab; 'back to X' = a later switch (the tabs are dynamic: only "
        "the open tab is in the page, so a switch renders the tab it opens). Slider step = one arrow-key step of the wavelet threshold until the page shows the new "
        "residual numbers (denoise + re-plot of 4,096 pixels). Star change = type part of a name in the searchable "
        "picker, click the match, until the header shows the new star (read + denoise + score with the "
        "shipped models + re-plot).", "",
        "| step | " + " | ".join(f"session {i + 1}" for i in range(len(runs))) + " |",
        "|---|" + "---|" * len(runs)]
    for k in keys:
        lines.append(f"| {k} | " + " | ".join(f"{r[k]:.2f} s" for r in runs) + " |")
    Path(a.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
