"""Peak memory of a Binder session: JupyterLab + the dashboard (through jupyter-panel-proxy) + the heaviest notebook.

    python benchmarks/bench_binder_memory.py [--notebook notebooks/06_rgb_or_red_clump.ipynb] \
        [--out benchmarks/results/binder_memory.md]

What runs, as on Binder (binder/start sets RGBKIT_THREADS=1): ``jupyter lab`` in the repository root; Chromium
opens ``/panel/dashboard`` (the proxy starts ``panel serve --warm``) and clicks through every tab, and the page
stays open; then the notebook runs top to bottom with its default settings in a fresh kernel while the dashboard
session is still alive. Every 0.5 s the resident memory of each process tree is sampled: RSS, and PSS (shared
pages divided among the processes sharing them, close to what a container's memory limit counts). The browser
is not counted: on Binder it runs on the student's computer. Binder's limit is 2 GB (mybinder.org: 1-2 GB).
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from browser_utils import CHROMIUM, browser_context, free_port, wait_http  # noqa: E402

MB = 2**20


def _mem(proc: psutil.Process) -> tuple[int, int]:
    try:
        info = proc.memory_full_info()
        return info.rss, getattr(info, "pss", info.rss)
    except psutil.Error:
        return 0, 0


class Sampler(threading.Thread):
    """Peak RSS/PSS per component (jupyter server, panel serve, notebook kernel) and of their sum."""

    def __init__(self, lab: psutil.Process, interval: float = 0.5):
        super().__init__(daemon=True)
        self.lab, self.interval, self.stop_event = lab, interval, threading.Event()
        self.peak: dict[str, list[int]] = {}
        self.timeline: list[tuple[float, str, int]] = []
        self.phase = "start"

    def sample(self) -> dict[str, tuple[int, int]]:
        parts = {"jupyter server": [0, 0], "dashboard (panel serve)": [0, 0], "notebook kernel": [0, 0]}
        lab_tree = [self.lab] + self.lab.children(recursive=True)
        lab_pids = {p.pid for p in lab_tree}
        for p in lab_tree:
            try:
                is_panel = any("panel" in a for a in p.cmdline()[:3])
            except psutil.Error:
                continue
            r, s = _mem(p)
            key = "dashboard (panel serve)" if is_panel else "jupyter server"
            parts[key][0] += r
            parts[key][1] += s
        browser = [0, 0]  # Playwright's driver and Chromium: on Binder the browser is the student's
        for p in psutil.Process().children(recursive=True):
            if p.pid in lab_pids:
                continue
            try:
                cmd = " ".join(p.cmdline()[:3]).lower()
            except psutil.Error:
                continue
            r, s = _mem(p)
            bucket = browser if ("chrom" in cmd or "playwright" in cmd or "node" in cmd) else parts["notebook kernel"]
            bucket[0] += r
            bucket[1] += s
        parts["total"] = [sum(v[0] for v in parts.values()), sum(v[1] for v in parts.values())]
        parts["browser (not counted)"] = browser
        return parts

    def run(self):
        t0 = time.perf_counter()
        while not self.stop_event.is_set():
            for k, (r, s) in self.sample().items():
                old = self.peak.setdefault(k, [0, 0])
                self.peak[k] = [max(old[0], r), max(old[1], s)]
                if k == "total":
                    self.timeline.append((time.perf_counter() - t0, self.phase, s))
            self.stop_event.wait(self.interval)

    def stop(self):
        self.stop_event.set()
        self.join()


def start_lab(home: Path, port: int) -> subprocess.Popen:
    venv_bin = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}", "RGBKIT_THREADS": "1",
           "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
           "RGBKIT_MODELS_DIR": str(home / "models")}
    cmd = [str(venv_bin / "jupyter"), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--ServerApp.port_retries=0", "--IdentityProvider.token=", "--ServerApp.password=",
           f"--ServerApp.root_dir={REPO}", "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.extension_manager=readonly"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=open(home / "jupyter.log", "wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen):
    import signal

    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(15)
            return
        except (ProcessLookupError, subprocess.TimeoutExpired):
            continue


def use_dashboard(base: str, profile: str, sampler: Sampler):
    """Open the dashboard through the proxy and visit every tab; return the open context's page holder."""
    cm = browser_context(profile, 120_000)
    ctx = cm.__enter__()
    page = ctx.new_page()
    t0 = time.perf_counter()
    page.goto(f"{base}/panel/dashboard", timeout=240_000)
    page.locator(".header-table table tbody tr").first.wait_for(timeout=240_000)
    first = time.perf_counter() - t0
    tabs = page.locator(".main-tabs .bk-tab")
    for name in [t.strip() for t in tabs.all_inner_texts()]:
        sampler.phase = f"dashboard: {name}"
        tabs.filter(has_text=name).first.click()
        page.wait_for_timeout(8000)  # let the tab compute and draw
    return cm, page, first


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--notebook", type=Path, default=REPO / "notebooks" / "06_rgb_or_red_clump.ipynb")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "binder_memory.md")
    a = ap.parse_args(argv)
    a.notebook = a.notebook.resolve()
    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} is needed to open the dashboard")
    import nbformat
    from nbclient import NotebookClient

    home = Path(tempfile.mkdtemp(prefix="rgbkit-binder-mem-"))
    port = free_port()
    lab = start_lab(home, port)
    base = f"http://127.0.0.1:{port}"
    sampler = None
    try:
        wait_http(f"{base}/api/status", lab, timeout=120)
        sampler = Sampler(psutil.Process(lab.pid))
        sampler.start()
        time.sleep(3)
        sampler.phase = "jupyter lab idle"
        idle = {k: v[:] for k, v in sampler.peak.items()}
        sampler.phase = "dashboard: opening"
        cm, page, first_plot = use_dashboard(base, str(home / "chromium"), sampler)
        after_dash = {k: v[:] for k, v in sampler.peak.items()}
        sampler.phase = f"notebook {a.notebook.name}"
        nb = nbformat.read(a.notebook, as_version=4)
        os.environ["RGBKIT_THREADS"] = "1"
        os.environ.pop("RGBKIT_NOTEBOOK_TEST", None)  # the student's default run
        t0 = time.perf_counter()
        NotebookClient(nb, timeout=1800, kernel_name="python3",
                       resources={"metadata": {"path": str(a.notebook.parent)}}).execute()
        nb_seconds = time.perf_counter() - t0
        page.close()
        cm.__exit__(None, None, None)
    finally:
        if sampler is not None:
            sampler.stop()
        stop(lab)
    peak = sampler.peak
    total_pss = peak["total"][1] / MB
    verdict = "under" if total_pss < 2048 else "OVER"
    lines = [
        "# Binder memory: JupyterLab + dashboard + the heaviest notebook",
        "",
        f"`python benchmarks/bench_binder_memory.py --notebook {a.notebook.relative_to(REPO)}` on "
        f"{platform.machine()} with {psutil.cpu_count()} cores (shared with other work), "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}, RGBKIT_THREADS=1, "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.",
        "",
        "What ran: `jupyter lab` in the repository root; Chromium opened the dashboard at `/panel/dashboard` "
        f"(first demo star drawn after {first_plot:.0f} s) and clicked through every tab, the page staying open; then "
        f"`{a.notebook.name}` ran top to bottom with its default settings ({nb_seconds:.0f} s) in a fresh kernel. "
        "Memory sampled every 0.5 s per process tree; the browser is not counted (on Binder it runs on the "
        "student's computer). PSS divides shared pages among the processes sharing them (what a container's "
        "limit counts, nearly); RSS counts them in each process, so the RSS total overstates.",
        "",
        "| component | peak RSS (MB) | peak PSS (MB) | PSS after JupyterLab start | PSS after the dashboard |",
        "|---|---|---|---|---|",
    ]
    for k in ("jupyter server", "dashboard (panel serve)", "notebook kernel", "total", "browser (not counted)"):
        r, s = peak.get(k, [0, 0])
        lines.append(f"| {k} | {r / MB:.0f} | {s / MB:.0f} | {idle.get(k, [0, 0])[1] / MB:.0f} | "
                     f"{after_dash.get(k, [0, 0])[1] / MB:.0f} |")
    lines += ["", f"Peak of the sum (PSS, all three at once): **{total_pss:.0f} MB**, {verdict} Binder's 2 GB "
              f"(2,048 MB). Peak of the RSS sum: {peak['total'][0] / MB:.0f} MB.", ""]
    by_phase: dict[str, float] = {}
    for _, phase, s in sampler.timeline:
        by_phase[phase] = max(by_phase.get(phase, 0), s / MB)
    lines += ["Peak total PSS by phase:", "", "| phase | MB |", "|---|---|"]
    lines += [f"| {ph} | {mb:.0f} |" for ph, mb in by_phase.items()]
    a.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
