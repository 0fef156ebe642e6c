"""The dashboard in a real browser: Debian's Chromium driven by Playwright.

One ``panel serve apps/dashboard.py`` for the module (as ``rgbkit app`` runs
it), one browser, a fresh page per test. Every test interacts and then checks
what the page shows against numbers computed here with the library.
Screenshots go to artifacts/screenshots/.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest

from browser_utils import CHROMIUM, REPO, free_port, launch, serve, shot, wait_http

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent (apt-get install chromium)"),
]
playwright_api = pytest.importorskip("playwright.sync_api")

TIMEOUT_MS = 60_000


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The served dashboard; saved models go to a temporary folder."""
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "panel.log"
    models = tmp_path_factory.mktemp("models")
    proc = serve(port, env={"RGBKIT_MODELS_DIR": str(models)}, log_path=log)
    url = f"http://127.0.0.1:{port}/dashboard"
    try:
        wait_http(url, proc, timeout=120)
        yield {"url": url, "proc": proc, "log": log, "models": models}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except Exception:
            proc.kill()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with playwright_api.sync_playwright() as p:
        ctx = launch(p, str(tmp_path_factory.mktemp("chromium-profile")))
        ctx.set_default_timeout(TIMEOUT_MS)
        yield ctx
        ctx.close()


def open_dashboard(browser, server):
    page = browser.new_page()
    t0 = time.perf_counter()
    page.goto(server["url"])
    page.locator(".resid-numbers div").first.wait_for()
    return page, time.perf_counter() - t0


@pytest.fixture
def page(browser, server):
    pg, _ = open_dashboard(browser, server)
    yield pg
    pg.close()


def alive(server) -> bool:
    wait_http(server["url"], server["proc"], timeout=30)
    return server["proc"].poll() is None


def text(page, selector: str) -> str:
    return page.locator(selector).first.inner_text()


def wait_text(page, selector: str, pattern: str, timeout: float = 60) -> str:
    """Wait until the element's text matches ``pattern``; return the text."""
    t0 = time.perf_counter()
    last = ""
    while time.perf_counter() - t0 < timeout:
        loc = page.locator(selector)
        if loc.count():
            try:
                last = loc.first.inner_text(timeout=2000)
            except playwright_api.Error:
                last = ""
            if re.search(pattern, last):
                return last
        time.sleep(0.25)
    raise AssertionError(f"{selector!r} never matched {pattern!r}; last text: {last!r}")


def resid_numbers(page) -> tuple[float, float]:
    t = text(page, ".resid-numbers div")
    m = re.search(r"RMS ([0-9.]+), max \|r\| ([0-9.]+)", t)
    assert m, t
    return float(m.group(1)), float(m.group(2))


def header_value(page, field: str) -> str:
    rows = page.locator(".header-table table tbody tr").all_inner_texts()
    for r in rows:
        k, _, v = r.partition("\t")
        if k.strip() == field:
            return v.strip()
    raise AssertionError(f"no {field!r} row in the header table: {rows}")


def select_tab(page, name: str):
    page.locator(".main-tabs .bk-tab", has_text=name).first.click()


# ------------------------------------------------------------------ tab 1: spectra
def test_first_render_shows_a_simulated_demo_star(browser, server):
    from rgbkit import app_support as sup

    page, seconds = open_dashboard(browser, server)
    try:
        (REPO / "artifacts").mkdir(exist_ok=True)
        (REPO / "artifacts" / "first_render_seconds.txt").write_text(f"{seconds:.2f}\n")
        assert seconds < 30, f"first render took {seconds:.1f} s"
        assert "SIMULATED" in text(page, ".simulated-note div")
        # the default star is the first validation star of the demo set: its header and numbers
        key = next(iter(sup.demo_star_options().values()))
        spec = sup.load_star(key)
        assert header_value(page, "designation") == spec.meta.designation
        assert header_value(page, "obsid") == str(spec.meta.obsid)
        view = sup.star_view(spec, 0.05)
        rms, mx = resid_numbers(page)
        assert rms == pytest.approx(view.stats["residual_rms"], abs=6e-5)
        assert mx == pytest.approx(view.stats["residual_max"], abs=6e-5)
        quality = page.locator(".quality-table table tbody tr").all_inner_texts()
        assert any(r.startswith("preprocessing\tusable") for r in quality), quality
        shot(page, "1_spectra_demo")
    finally:
        page.close()


def test_threshold_slider_updates_denoised_curve(page):
    from rgbkit import app_support as sup

    rms0, max0 = resid_numbers(page)
    handle = page.locator(".threshold-slider .noUi-handle").first
    handle.focus()
    for _ in range(10):  # 0.05 -> 0.15 in steps of 0.01
        handle.press("ArrowRight")
    wait_text(page, ".resid-numbers div", r"threshold 0\.15 ")
    rms1, max1 = resid_numbers(page)
    assert rms1 > 1.5 * rms0  # a larger threshold removes more: the residual grows
    spec = sup.load_star(next(iter(sup.demo_star_options().values())))
    assert rms1 == pytest.approx(sup.star_view(spec, 0.15).stats["residual_rms"], abs=6e-5)
    shot(page, "1_spectra_threshold_0.15")


def test_pick_a_real_lamost_file(page, shared_data):
    from rgbkit import read_lamost

    path = sorted((shared_data / "lamost" / "dr13").glob("*.fits*"))[0]
    spec = read_lamost(path)
    page.locator(".file-select select").select_option(label=f"dr13/{path.name}")
    wait_text(page, ".header-table table", re.escape(spec.meta.designation))
    assert header_value(page, "data release") == spec.meta.data_release
    assert header_value(page, "class") == spec.meta.objclass
    assert "real LAMOST spectrum" in text(page, ".source-note div")
    shot(page, "1_spectra_real_file")


def _mrs_file(folder: Path) -> Path:
    from astropy.io import fits

    hdr = fits.Header()
    hdr["DATA_V"] = "LAMOST MRS"
    tab = fits.BinTableHDU.from_columns([fits.Column(name="FLUX", format="10E", array=np.ones((1, 10)))],
                                        name="COADD_B")
    path = folder / "med-58000-HIP000001_sp01-001.fits"
    fits.HDUList([fits.PrimaryHDU(header=hdr), tab]).writeto(path)
    return path


def test_bad_uploads_show_a_message_and_the_server_survives(page, server, tmp_path, shared_data):
    from rgbkit import read_lamost

    upload = page.locator(".upload input[type=file]").first
    not_fits = tmp_path / "notes.fits"
    not_fits.write_text("this is not a FITS file\n" * 20)
    upload.set_input_files(str(not_fits))
    wait_text(page, ".upload-msg div", r"notes\.fits: not a FITS file")
    shot(page, "1_upload_not_fits")

    upload.set_input_files(str(_mrs_file(tmp_path)))
    wait_text(page, ".upload-msg div", r"medium-resolution \(MRS\)")

    huge = tmp_path / "huge.fits"
    huge.write_bytes(b"SIMPLE  =                    T" + b"\0" * (12 * 1024 * 1024))
    upload.set_input_files(str(huge))
    wait_text(page, ".upload .filepond--file-status", r"File is too large\s+Maximum file size is 10 MB")
    shot(page, "1_upload_huge")
    assert alive(server)

    good = sorted((shared_data / "lamost" / "dr9").glob("*.fits*"))[0]
    upload.set_input_files(str(good))
    spec = read_lamost(good)
    wait_text(page, ".header-table table", re.escape(spec.meta.designation))
    assert not page.locator(".upload-msg div").first.is_visible() or "refused" not in text(page, ".upload-msg div")
    assert alive(server)
