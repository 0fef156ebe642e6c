"""The built wheel works on its own: `rgbkit app` serves the dashboard from an installed (non-editable) package."""
from __future__ import annotations

import os
import site
import subprocess
import sys
import sysconfig
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from browser_utils import free_port

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh venv with the wheel installed (--no-deps); the test venv's packages reached through a .pth file."""
    root = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(root / "dist"), str(REPO)], check=True, capture_output=True)
    wheel = next((root / "dist").glob("rgbkit-*.whl"))
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    purelib = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  check=True, capture_output=True, text=True).stdout.strip())
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--force-reinstall",
                    "-q", str(wheel)], check=True, capture_output=True, env=clean, cwd=root)
    # Then the dependencies (torch, panel, ...) of the running venv, after the new venv's own site-packages
    # (a .pth adds them to the end of sys.path; their own .pth files, e.g. an editable rgbkit, stay inactive).
    deps = [p for p in {sysconfig.get_paths()["purelib"], *site.getsitepackages()} if Path(p).is_dir()]
    (purelib / "_rgbkit_test_deps.pth").write_text("\n".join(deps) + "\n")
    return {"python": py, "bin": venv / "bin", "root": root, "wheel": wheel}


def _clean_env(installed) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "RGBKIT_SHARED_DATA")}
    env["PATH"] = f"{installed['bin']}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_wheel_holds_the_app_the_data_and_the_licences(installed):
    import zipfile

    names = zipfile.ZipFile(installed["wheel"]).namelist()
    for want in ("rgbkit_app/dashboard.py", "rgbkit_app/__init__.py", "rgbkit/cli/__init__.py",
                 "rgbkit/data/lamost_emulator.npz", "rgbkit/data/results/baselines.json",
                 "rgbkit/pretrained/age/card.json"):
        assert want in names, want
    assert any(n.endswith("licenses/LICENSE") for n in names)
    assert any(n.endswith("licenses/rgbkit/data/EMULATOR_LICENSE.txt") for n in names)


def test_installed_wheel_reads_its_real_example_spectra(installed, tmp_path):
    """The example spectra and their licence notices ship inside the wheel and read with no source checkout."""
    out = subprocess.run([str(installed["python"]), "-c", textwrap.dedent("""
        import rgbkit
        from rgbkit import examples
        spectra, refused = rgbkit.read_many(examples.example_files(), progress=False)
        lab = examples.lasp_labels()
        print(len(spectra), len(refused), int(lab.giant.sum()), examples.EXAMPLES_DIR)
        """)], cwd=tmp_path, env=_clean_env(installed), check=True, capture_output=True, text=True).stdout.split()
    assert out[:3] == ["24", "0", "8"], out
    where = Path(out[3])
    assert str(REPO) not in str(where) and (where / "SOURCES.md").is_file()
    assert len(list((where / "licenses").glob("*.txt"))) == 4


def test_installed_rgbkit_app_serves_the_dashboard(installed, tmp_path):
    env = _clean_env(installed)
    where = subprocess.run([str(installed["python"]), "-c", textwrap.dedent("""
        import rgbkit, rgbkit_app, rgbkit.cli.app as a
        print(rgbkit.__file__); print(rgbkit_app.__file__); print(a.dashboard_script())
        """)], cwd=tmp_path, env=env, check=True, capture_output=True, text=True).stdout.split()
    venv = str(installed["root"] / "venv")
    assert all(p.startswith(venv) for p in where), where  # the installed copy, not the checkout
    assert not any(p.startswith(str(REPO)) for p in where), where
    port = free_port()
    log = open(tmp_path / "app.log", "wb")
    proc = subprocess.Popen([str(installed["bin"] / "rgbkit"), "app", "--port", str(port)], cwd=tmp_path,
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        url, status, t0 = f"http://127.0.0.1:{port}/dashboard", None, time.perf_counter()
        while time.perf_counter() - t0 < 180 and status is None:
            assert proc.poll() is None, (tmp_path / "app.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(url, timeout=60) as r:
                    status, body = r.status, r.read().decode()
            except OSError:
                time.sleep(0.5)
        assert status == 200, (tmp_path / "app.log").read_text()[-3000:]
        assert "rgbkit" in body
        text = (tmp_path / "app.log").read_text()
        assert "dashboard not built yet" not in text
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
