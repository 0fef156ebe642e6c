"""Demo datasets: generated once through real FITS files, cached, split, loaded fast (SIMULATED data)."""
import time

import numpy as np
import pytest

from rgbkit import datasets
from rgbkit.io.lamost import read_lamost


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RGBKIT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_small_demo_round_trip_and_cache(cache):
    d = datasets.load_demo(n_rgb=40, n_subgiant=5, progress=False)
    # 45 train + validation stars, then 12 + 2 test stars of their own seed
    assert len(d) == 59 and d.flux.shape == (59, 3909) and d.flux.dtype == np.float32
    for col in datasets.LABEL_COLUMNS + ["split"]:
        assert col in d.labels, col
    assert list(d.labels.columns[: len(datasets.LABEL_COLUMNS)]) == datasets.LABEL_COLUMNS
    # fixed 8:2 split of the first 45, the test stars after them
    assert d.val_idx.size == 9 and d.train_idx.size == 36 and list(d.test_idx) == list(range(45, 59))
    assert not set(d.train_idx) & set(d.val_idx)
    assert not set(d.labels.obsid[d.test_idx]) & set(d.labels.obsid[:45])
    base = datasets.load_demo(n_rgb=40, n_subgiant=5, progress=False, test=False)
    assert len(base) == 45 and base.labels.split.tolist() == d.labels.split[:45].tolist()
    np.testing.assert_array_equal(base.flux, d.flux[:45])
    assert not np.allclose(d.labels.teff[45:47], base.labels.teff[:2])  # other stars, not copies
    # the arrays are what the LAMOST reader returns for the cached files
    files = sorted((d.folder / "fits").glob("*.fits"))
    assert len(files) == 45 and all(p.exists() for p in d.paths)
    s = d.spectra([3])[0]
    np.testing.assert_array_equal(s.flux, d.flux[3])
    assert s.meta.obsid == d.labels.obsid[3] and s.meta.layout.startswith("dr2")
    np.testing.assert_allclose(d.wavelength, s.wavelength, rtol=1e-6)
    # second call: from the npz cache, same data, no files rewritten
    mtime = files[0].stat().st_mtime_ns
    t = time.perf_counter()
    d2 = datasets.load_demo(n_rgb=40, n_subgiant=5, progress=False)
    assert time.perf_counter() - t < 5
    np.testing.assert_array_equal(d2.flux, d.flux)
    assert d2.labels.equals(d.labels)
    assert files[0].stat().st_mtime_ns == mtime
    # a different seed is a different cache entry with different stars
    d3 = datasets.load_demo(seed=1, n_rgb=40, n_subgiant=5, progress=False)
    assert d3.folder != d.folder and not np.allclose(d3.labels.teff, d.labels.teff)
    assert "SIMULATED" in repr(d)


def test_calibration_set_is_its_own_stars(cache):
    d = datasets.load_demo(n_rgb=40, n_subgiant=5, progress=False)
    c = datasets.load_calibration(n_rgb=40, n_subgiant=5, progress=False)
    assert len(c) == 45 and set(c.labels.split) == {"calibration"}
    assert (c.labels.stage == "RGB").sum() == 40
    assert not set(c.labels.obsid) & set(d.labels.obsid)
    assert not np.allclose(c.labels.age_true.to_numpy()[:10], d.labels.age_true.to_numpy()[:10])
    assert c.folder != d.folder and c.info["seed"] == datasets.CALIBRATION_SEED_OFFSET


def test_dr9_layout_goes_through_the_table_reader(cache):
    d = datasets.load_demo(n_rgb=6, n_subgiant=1, layout="dr9", progress=False)
    s = read_lamost(d.paths[0])
    assert s.meta.layout == "dr8-table"
    np.testing.assert_array_equal(s.flux, d.flux[0])


def test_rgb_rc_keeps_paper_ratios(cache):
    d = datasets.load_rgb_rc(scale=0.01, progress=False)
    counts = d.labels.groupby(["split", "evstate"]).size()
    for split, (n_rgb, n_rc) in datasets.PAPER_RGB_RC.items():
        assert counts[(split, "RGB")] == max(1, round(n_rgb * 0.01))
        assert counts[(split, "RC")] == max(1, round(n_rc * 0.01))
    assert d.labels.logg.max() <= 3.5
    with pytest.raises(ValueError, match="scale"):
        datasets.load_rgb_rc(scale=2.0)


def test_cluster_members_share_age_and_metallicity():
    lab = datasets._cluster_labels(3)
    assert set(lab.cluster) == set(datasets.CLUSTERS)
    for name, (real, age, feh, rv, *_rest) in datasets.CLUSTERS.items():
        mem = lab[(lab.cluster == name) & lab.member]
        rgb = mem[mem.evstate == "RGB"]
        assert np.allclose(rgb.age_true, age) and abs(mem.feh.mean() - feh) < 0.03
        assert set(mem.evstate) == {"RGB", "RC"}
        # giants of one age share one initial mass; clump stars lost a little
        assert np.ptp(rgb.mass_init) < 0.1
        assert (mem[mem.evstate == "RC"].mass_true < rgb.mass_true.mean()).all()
        field = lab[(lab.cluster == name) & ~lab.member]
        assert len(field) > 0 and field.age_true.std() > 1.0
        assert abs(np.median(mem.rv) - rv) < 2


def test_survey_chunks_are_lazy_and_deterministic(tmp_path):
    it = datasets.load_survey(n=250, chunk_size=100, seed=2)
    first = next(it)
    assert len(first) == 100 and "true_teff" in first.labels and "teff" not in first.labels
    rest = list(it)
    assert [len(c) for c in rest] == [100, 50]
    again = next(datasets.load_survey(n=250, chunk_size=100, seed=2))
    np.testing.assert_array_equal(again.flux, first.flux)
    stages = set(first.labels.true_stage)
    assert {"RGB", "RC", "dwarf"} <= stages
    paths = datasets.write_survey(tmp_path / "survey", n=5, chunk_size=5, progress=False)
    assert len(paths) == 5 and read_lamost(paths[0]).flux.shape == (3909,)
    with pytest.raises(ValueError):
        next(datasets.load_survey(n=0))
