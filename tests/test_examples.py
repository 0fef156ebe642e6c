"""The real example spectra shipped in the package: present, licensed, identical to their sources, readable."""
import hashlib
import tomllib
from pathlib import Path

import numpy as np
import pytest

from rgbkit import examples, read_lamost
from rgbkit.preprocess import Preprocessor

REPO = Path(__file__).resolve().parents[1]


def test_every_layout_and_kind_is_shipped_with_its_licence():
    t = examples.example_table()
    assert set(t["release"]) == {"DR1", "DR5", "DR6", "DR7", "DR9", "DR13"}
    size = sum(Path(p).stat().st_size for p in t["path"])
    assert 0.5e6 < size < 5e6, size  # "a few MB"
    for lic in t["licence"]:
        assert (examples.EXAMPLES_DIR / lic).is_file(), lic
    layouts = {read_lamost(p).meta.layout for p in t["path"]}
    assert {"dr1-image", "dr2-image", "dr8-table"} <= layouts, layouts
    assert read_lamost(examples.example_path("quasar")).meta.objclass == "QSO"
    assert read_lamost(examples.example_path("dM5")).meta.subclass == "dM5"
    with pytest.raises(ValueError, match="match 'giant'"):
        examples.example_path("giant")  # many giants: ambiguous
    with pytest.raises(ValueError, match="DR2"):
        examples.example_files("DR2")


def test_files_are_unchanged_copies_of_the_shared_data(shared_data):
    for f in examples.example_table()["file"]:
        ours = (examples.EXAMPLES_DIR / f).read_bytes()
        assert hashlib.sha256(ours).digest() == hashlib.sha256((shared_data / "lamost" / f).read_bytes()).digest(), f


def test_lasp_giants_are_read_and_preprocessed():
    lab = examples.lasp_labels()
    giants = examples.giant_files()
    assert len(giants) >= 5 and lab.loc[lab.giant, "logg"].max() < 3.6
    spectra = [read_lamost(p) for p in giants]
    assert [s.meta.designation.removeprefix("LAMOST ") for s in spectra] == list(lab.loc[lab.giant, "designation"])
    res = Preprocessor().run_spectra(spectra)
    assert res.ok.all() and np.isfinite(res.X).all()
    # the gap file is there to be refused
    gap = Preprocessor().run_spectra([read_lamost(examples.example_path("gap"))])
    assert not gap.ok[0] and "zero-flux" in gap.reasons[0]


def test_package_data_includes_the_examples():
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["rgbkit"]
    packaged = {f for pat in patterns for f in (REPO / "rgbkit").glob(pat)}  # setuptools globs the same way
    wanted = examples.example_files() + [examples.EXAMPLES_DIR / "lasp_dr1_labels.csv", examples.EXAMPLES_DIR / "SOURCES.md"]
    wanted += list((examples.EXAMPLES_DIR / "licenses").iterdir())
    assert not set(wanted) - packaged, set(wanted) - packaged


def test_readme_reading_example_runs_on_the_shipped_files():
    readme = (REPO / "README.md").read_text()
    code = readme.split("## Reading LAMOST spectra", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    ns: dict = {}
    exec(compile(code, "README", "exec"), ns)
    assert ns["s"].meta.data_release == "DR6" and len(ns["spectra"]) == 24 and not ns["refused"]
