"""The Binder set-up in a real browser: JupyterLab + jupyter-panel-proxy serving the dashboard.

Binder starts ``jupyter lab`` in the repository root; jupyter-panel-proxy
(configured by ``jupyter-panel-proxy.yml``) then serves ``apps/dashboard.py``
at ``<jupyter>/panel/dashboard`` through jupyter-server-proxy, starting
``panel serve`` on the first request. Here: one ``jupyter lab`` from the
project's environment on a free 127.0.0.1 port, no token, nothing fetched
from the network, and Debian's Chromium (Playwright) opening the proxied
dashboard and /lab. The server and the ``panel serve`` it spawns are killed
at the end (their own process group).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from browser_utils import CHROMIUM, REPO, browser_context, free_port, shot, wait_http

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent (apt-get install chromium)"),
]
playwright_api = pytest.importorskip("playwright.sync_api")
pytest.importorskip("panel_server", reason="jupyter-panel-proxy is not installed")
pytest.importorskip("jupyter_server_proxy", reason="jupyter-server-proxy is not installed")

VENV_BIN = REPO / ".venv" / "bin" if (REPO / ".venv" / "bin" / "jupyter").exists() else Path(sys.executable).parent
JUPYTER = VENV_BIN / "jupyter"
TIMEOUT_MS = 60_000


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group (jupyter and the panel serve it spawned), SIGKILL if needed."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            break
        except subprocess.TimeoutExpired:
            continue
    try:  # the group outlives its leader if a child lingers
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def jupyter(tmp_path_factory):
    if not JUPYTER.exists():
        pytest.skip(f"{JUPYTER} is absent")
    home = tmp_path_factory.mktemp("jupyter")
    port = free_port()
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # the proxy runs `panel` from PATH
        "JUPYTER_CONFIG_DIR": str(home / "config"),  # no user configuration leaks in or out
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "RGBKIT_MODELS_DIR": str(home / "models"),  # models saved from the dashboard
    }
    cmd = [str(JUPYTER), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
           "--IdentityProvider.token=", "--ServerApp.password=", f"--ServerApp.root_dir={REPO}",
           # nothing from the network: no news feed, no update check, no PyPI extension manager
           "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--LabApp.extension_manager=readonly"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers and CI runners often run as root
    log_path = home / "jupyter.log"
    log = open(log_path, "wb")
    # cwd = repository root: jupyter-panel-proxy reads ./jupyter-panel-proxy.yml and serves apps/ from there
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_http(f"{base}/api/status", proc, timeout=60)
        except Exception as exc:
            raise AssertionError(f"jupyter lab did not start: {exc}\n{log_path.read_text()[-3000:]}") from exc
        yield {"base": base, "proc": proc, "log": log_path}
    finally:
        _stop(proc)
        log.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with browser_context(str(tmp_path_factory.mktemp("chromium-profile")), TIMEOUT_MS) as ctx:
        yield ctx


def test_proxy_config_serves_exactly_the_dashboard(monkeypatch):
    """What jupyter-panel-proxy will launch from this repository's root."""
    import panel_server

    launch_command = getattr(panel_server, "_launch_command", None)  # jupyter-panel-proxy 0.2's builder
    if launch_command is None:
        pytest.skip("this jupyter-panel-proxy has no _launch_command")
    monkeypatch.chdir(REPO)
    cmd = launch_command(12345)
    apps = [a for a in cmd[2:] if a.endswith(".py")]
    assert apps == ["apps/dashboard.py"]
    assert cmd[:2] == ["panel", "serve"] and "{base_url}panel" in cmd
    # the yml is read with YAML's BaseLoader (strings only): 'false' would be true
    assert "--warm" in cmd and "--dev" not in cmd and "--autoreload" not in cmd


def test_dashboard_renders_through_the_jupyter_proxy(jupyter, browser):
    page = browser.new_page()
    try:
        # the first request starts `panel serve` behind the proxy (the proxy waits for it)
        resp = page.goto(f"{jupyter['base']}/panel/dashboard", timeout=120_000)
        assert resp is not None and resp.status == 200, resp and resp.status
        tabs = page.locator(".main-tabs .bk-tab")
        tabs.filter(has_text="Spectra").first.wait_for(timeout=90_000)
        names = [t.strip() for t in tabs.all_inner_texts()]
        assert "Spectra" in names and "Ensembles" in names, names
        note = page.locator(".simulated-note div").first
        note.wait_for()
        assert "SIMULATED" in note.inner_text()
        # the first demo star is drawn: its header table is filled in over the proxied websocket
        page.locator(".header-table table tbody tr").first.wait_for()
        page.locator(".main-tabs .bk-tab", has_text="Ensembles").first.click()
        page.locator(".card-table, .ensemble-select").first.wait_for()
        shot(page, "binder_proxy_dashboard")
    finally:
        page.close()


def test_lab_opens_and_lists_the_notebooks(jupyter, browser):
    expected = sorted(p.name for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert expected, "no notebooks in notebooks/"
    page = browser.new_page()
    try:
        resp = page.goto(f"{jupyter['base']}/lab/tree/notebooks")
        assert resp is not None and resp.status == 200
        items = page.locator(".jp-DirListing-content .jp-DirListing-itemText")
        items.filter(has_text=expected[0]).first.wait_for()
        shown = {t.strip() for t in items.all_inner_texts()}
        assert set(expected) <= shown, sorted(set(expected) - shown)
        # jupyter-panel-proxy's launcher card is in the Lab launcher
        page.locator(".jp-LauncherCard", has_text="Panel").first.wait_for()
        shot(page, "binder_proxy_lab")
    finally:
        page.close()
