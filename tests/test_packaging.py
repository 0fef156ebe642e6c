"""pyproject.toml, environment.yml and binder/environment.yml list the same packages."""
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
# conda-forge names that differ from PyPI's
CONDA_TO_PYPI = {"pytorch-cpu": "torch", "pywavelets": "pywavelets", "py-xgboost-cpu": "xgboost-cpu"}


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req.strip(), maxsplit=1)[0].lower()


def pypi_deps():
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    return {_name(r) for r in data["project"]["dependencies"]}


def conda_deps(path):
    env = yaml.safe_load(path.read_text())
    names = set()
    for dep in env["dependencies"]:
        if isinstance(dep, str):
            n = _name(dep)
            if n not in ("python", "pip"):
                names.add(CONDA_TO_PYPI.get(n, n))
    return names, env


@pytest.mark.parametrize("envfile", ["environment.yml", "binder/environment.yml"])
def test_conda_env_matches_pyproject(envfile):
    path = REPO / envfile
    if not path.exists():
        pytest.skip(f"{envfile} not written yet")
    names, env = conda_deps(path)
    assert names == pypi_deps(), names ^ pypi_deps()
    assert env["channels"] == ["conda-forge"]
    # a CUDA torch build would be several GB on Binder
    assert any(str(d).startswith("pytorch-cpu") for d in env["dependencies"])


def test_user_stack_is_declared():
    need = {"jupyterlab", "ipywidgets", "panel", "holoviews", "torch", "pywavelets", "astropy", "pandas"}
    assert need <= pypi_deps()


def test_readme_quick_start_is_two_commands_and_ci_runs_the_test_one():
    readme = (REPO / "README.md").read_text()
    block = readme.split("## Quick start", 1)[1].split("```", 2)[1]
    cmds = [ln.split("#")[0].strip() for ln in block.splitlines()[1:]]
    cmds = [c for c in cmds if c]
    assert len(cmds) == 2, cmds
    ci = [ln for ln in (REPO / ".ci/run").read_text().splitlines() if ln.strip() and not ln.startswith(("#", "set ", "cd "))]
    assert ci == [cmds[1].strip()]


def test_cli_summary_runs_on_real_files(shared_data):
    out = subprocess.run([sys.executable, "-m", "rgbkit.cli", "summary", str(shared_data / "lamost/dr13")],
                         capture_output=True, text=True, check=True).stdout
    assert "3 spectra read, 0 refused" in out
    assert "QSO" in out and "dM5" in out


def test_readme_lists_every_catalog_column():
    from rgbkit.catalog import column_docs_markdown

    assert column_docs_markdown().strip() in (REPO / "README.md").read_text()


def test_readme_python_example_runs_on_real_files(shared_data, monkeypatch):
    readme = (REPO / "README.md").read_text()
    code = readme.split("## Ages and masses from Python", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(shared_data / "lamost")
    ns: dict = {}
    exec(compile(code.replace('"my_spectra/"', '"dr13"'), "README", "exec"), ns)
    assert len(ns["spectra"]) == 3 and ns["res"].ok.sum() == ns["pred"].mean.size >= 1
    assert (ns["pred"].std > 0).all()



def test_binder_pins_exact_versions_of_the_tested_environment():
    """Binder builds what the tests ran with: every package pinned to one version, that of this environment."""
    from importlib.metadata import PackageNotFoundError, version

    _, env = conda_deps(REPO / "binder/environment.yml")
    pins = {}
    for dep in env["dependencies"]:
        if isinstance(dep, str) and dep != "pip":
            m = re.fullmatch(r"([A-Za-z0-9_.-]+)=([0-9][0-9A-Za-z.]*)", dep.strip())
            assert m, f"binder/environment.yml: {dep!r} is not an exact pin (name=version)"
            pins[m.group(1)] = m.group(2)
    assert pins.pop("python") == "{}.{}".format(*sys.version_info[:2])
    for conda_name, pinned in pins.items():
        try:
            installed = version(CONDA_TO_PYPI.get(conda_name, conda_name)).split("+")[0]  # 2.13.0+cpu
        except PackageNotFoundError:
            continue
        assert installed == pinned, f"binder pins {conda_name}={pinned}, the tested environment has {installed}"


def test_binder_start_uses_one_thread_and_postbuild_prepares_every_demo_set():
    start = (REPO / "binder/start").read_text()
    assert "export RGBKIT_THREADS=1" in start and start.rstrip().endswith('exec "$@"')
    post = (REPO / "binder/postBuild").read_text()
    assert "|| echo" not in post  # a failed preparation fails the build
    for loader in ("load_demo", "load_rgb_rc", "load_clusters"):
        assert loader in post, loader
