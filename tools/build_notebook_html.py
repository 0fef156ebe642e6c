"""Execute the notebooks and render them as offline HTML pages (figures included), recording time and memory.

    python tools/build_notebook_html.py                       # all notebooks -> build/notebooks_html/
    python tools/build_notebook_html.py notebooks/02_*.ipynb --out /tmp/html --timings timings.json

Each notebook runs top to bottom in a fresh kernel (in the notebooks folder, as a reader would run it) with
Bokeh and Panel resources inlined (``BOKEH_RESOURCES=inline``, ``PANEL_INLINE=1``), so every page opens without a network. While a notebook
runs, the resident memory of the kernel's process tree is sampled every 0.2 s; ``--timings`` writes the wall time
and peak memory per notebook as JSON (the table of ``00_start_here.ipynb`` comes from such a run).
An already executed notebook (``--executed``) is only rendered, not run again.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
TEMPLATE_DIR = Path(__file__).resolve().parent / "nbhtml"
EXTERNAL_SCRIPT = re.compile(r"<script[^>]*\ssrc=[\"']?(https?:)?//", re.I)


class PeakRSS(threading.Thread):
    """Samples the summed RSS of this process's children (the kernel and anything it starts)."""

    def __init__(self, interval: float = 0.2):
        super().__init__(daemon=True)
        self.interval, self.peak, self._stop_event = interval, 0, threading.Event()

    def run(self):
        import psutil

        me = psutil.Process()
        while not self._stop_event.is_set():
            total = 0
            for child in me.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            self._stop_event.wait(self.interval)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak


def execute(path: Path, timeout: int = 1800, env: dict | None = None) -> tuple[nbformat.NotebookNode, dict]:
    """Run a notebook in a fresh kernel; return it with outputs and {seconds, peak_rss_mb}."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    # JS in the page, not from a CDN: pn.extension reads PANEL_INLINE; hv.extension has no such variable,
    # so an IPython startup file of a private profile sets its default before the notebook runs
    ipython_dir = Path(tempfile.mkdtemp(prefix="rgbkit-ipython-"))
    (ipython_dir / "profile_default" / "startup").mkdir(parents=True)
    (ipython_dir / "profile_default" / "startup" / "00-inline.py").write_text(
        "import holoviews\nholoviews.extension.inline = True\n")
    env = {"BOKEH_RESOURCES": "inline", "PANEL_INLINE": "1", "IPYTHONDIR": str(ipython_dir), **(env or {})}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    sampler = PeakRSS()
    sampler.start()
    t0 = time.perf_counter()
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        seconds = time.perf_counter() - t0
        peak = sampler.stop()
        shutil.rmtree(ipython_dir, ignore_errors=True)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb, {"seconds": round(seconds, 1), "peak_rss_mb": round(peak / 2**20)}


def to_html(nb: nbformat.NotebookNode) -> str:
    """One self-contained HTML page (no script fetched from the network)."""
    from nbconvert import HTMLExporter

    nb = nbformat.from_dict(nb)  # a copy: the caller's notebook keeps its outputs
    for cell in nb.cells:  # empty displays (HoloViews/Panel comm handshakes) have nothing to show
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if o.output_type != "display_data" or o.get("data")]
    exporter = HTMLExporter(template_name="lab", extra_template_paths=[str(TEMPLATE_DIR)],
                            template_file="offline.html.j2", embed_images=True)
    html, _ = exporter.from_notebook_node(nb)
    return html


def check_html(html: str) -> dict:
    """Facts a reader relies on: how many Bokeh figures it embeds, and any script loaded from outside."""
    return {"bokeh_roots": len(re.findall(r"data-root-id=", html)),
            "external_scripts": [m.group(0) for m in EXTERNAL_SCRIPT.finditer(html)],
            "bokeh_inline": "Bokeh.version" in html and not re.search(r"js_urls = \[\"https?://", html)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/[0-9][0-9]_*.ipynb")
    ap.add_argument("--out", type=Path, default=REPO / "build" / "notebooks_html")
    ap.add_argument("--timings", type=Path, help="write seconds and peak memory per notebook (JSON)")
    ap.add_argument("--executed", action="store_true", help="the notebooks already hold outputs: render only")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    args = ap.parse_args(argv)
    paths = args.notebooks or sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    args.out.mkdir(parents=True, exist_ok=True)
    timings = {}
    for path in paths:
        if args.executed:
            nb, info = nbformat.read(path, as_version=4), {}
        else:
            nb, info = execute(path.resolve(), args.timeout)
        html = to_html(nb)
        facts = check_html(html)
        (args.out / f"{path.stem}.html").write_text(html)
        if not args.executed:
            nbformat.write(nb, args.out / f"{path.stem}.executed.ipynb")
        timings[path.stem] = {**info, "html_kb": round(len(html) / 1024), **facts}
        print(path.stem, timings[path.stem], flush=True)
        if args.timings:
            args.timings.write_text(json.dumps(timings, indent=1) + "\n")
    bad = {k: v["external_scripts"] for k, v in timings.items() if v["external_scripts"]}
    if bad:
        raise SystemExit(f"pages load scripts from the network: {bad}")


if __name__ == "__main__":
    main()
