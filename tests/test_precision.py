"""bfloat16 fast paths: chosen only where the CPU has it, and giving the float32 numbers to within rounding."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from rgbkit import precision as P


def test_precision_is_resolved_from_the_request_the_cpu_and_the_environment(monkeypatch):
    monkeypatch.delenv("RGBKIT_PRECISION", raising=False)
    assert P.resolve_precision("float32") == "float32"
    assert P.resolve_precision("bfloat16") == "bfloat16"
    with pytest.raises(ValueError, match="precision must be one of"):
        P.resolve_precision("fp8")
    monkeypatch.setattr(P, "native_bf16", lambda: False)
    assert P.resolve_precision("auto") == "float32"  # emulated bfloat16 would be slower
    monkeypatch.setattr(P, "native_bf16", lambda: True)
    assert P.resolve_precision("auto") == "bfloat16"
    assert P.resolve_precision(None) == "bfloat16"
    assert P.resolve_precision("auto", device="cuda:0") == "float32"  # the GPU path is unchanged
    monkeypatch.setenv("RGBKIT_PRECISION", "float32")
    assert P.resolve_precision("auto") == "float32"
    assert P.resolve_precision("bfloat16") == "bfloat16"  # an explicit request wins
    monkeypatch.setenv("RGBKIT_PRECISION", "half")
    with pytest.raises(ValueError, match="RGBKIT_PRECISION"):
        P.resolve_precision("auto")


def test_deciding_auto_from_cpu_flags_does_not_import_torch():
    code = ("import sys; from rgbkit.precision import resolve_precision; "
            "print(resolve_precision('auto', check_torch=False)); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] in ("float32", "bfloat16") and out[1] == "False"


@pytest.fixture(scope="module")
def example_X():
    from rgbkit.examples import example_table
    from rgbkit.io.lamost import read_lamost
    from rgbkit.preprocess import Preprocessor

    spectra = [read_lamost(p) for p in example_table()["path"]]
    res = Preprocessor().run_spectra(spectra)
    assert res.ok.sum() >= 3
    return res.X[res.ok]


def test_bfloat16_ages_masses_and_classes_agree_with_float32(example_X):
    from rgbkit.classify import load_pretrained_classifier
    from rgbkit.ensemble import load_pretrained

    for target in ("age", "mass"):
        ens = load_pretrained(target, device="cpu")
        assert ens.precision == "float32"  # the plain default
        ref = ens.predict(example_X)
        ens.precision = "bfloat16"
        got = ens.predict(example_X)
        rel = np.abs(np.log(got.mean / ref.mean))
        # really computed in bfloat16 (not bit-identical), and within rounding: far inside the spread
        assert 0 < np.median(rel) < 0.005 and rel.max() < 0.03, (target, rel)
        assert np.all(rel < 0.2 * ref.std / ref.mean)
    clf = load_pretrained_classifier(device="cpu")
    ref = clf.predict(example_X).p_rgb
    clf.precision = "bfloat16"
    got = clf.predict(example_X).p_rgb
    d = np.abs(got - ref)
    assert 0 < np.median(d) < 0.005 and d.max() < 0.05, d


def test_catalog_records_its_precision_and_bfloat16_rows_match_float32(tmp_path):
    from rgbkit.catalog import build_catalog, read_catalog
    from rgbkit.catalog.run import CatalogRunError
    from rgbkit.examples import example_table

    files = list(example_table()["path"])
    a = read_catalog(build_catalog(files, tmp_path / "f32", workers=0, progress=False, precision="float32"))
    b = read_catalog(build_catalog(files, tmp_path / "bf16", workers=0, progress=False, precision="bfloat16"))
    assert json.loads((tmp_path / "bf16" / "run.json").read_text())["precision"]["asked"] == "bfloat16"
    assert (a["file"] == b["file"]).all() and (a["ood"] == b["ood"]).all()
    ok = a["age"].notna()
    assert ok.sum() >= 3
    np.testing.assert_allclose(b.loc[ok, "age"], a.loc[ok, "age"], rtol=0.03)
    np.testing.assert_allclose(b.loc[ok, "mass"], a.loc[ok, "mass"], rtol=0.03)
    assert not np.array_equal(b.loc[ok, "age"], a.loc[ok, "age"])
    with pytest.raises(CatalogRunError, match="precision must be one of"):
        build_catalog(files, tmp_path / "bad", workers=0, progress=False, precision="int4")


def test_training_in_bfloat16_learns_like_float32():
    from rgbkit import metrics
    from rgbkit.models.densenet import tiny_config
    from rgbkit.packed_train import train_members_packed
    from rgbkit.train import TrainConfig
    from test_train import synthetic

    X, y = synthetic(96, seed=5)
    best = {}
    for prec in ("float32", "bfloat16"):  # fit 96 stars (train = validation): the optimisation itself
        tc = TrainConfig(epochs=25, batch_size=16, lr=3e-3, device="cpu", precision=prec)
        res = train_members_packed(X, y, X, y, [1, 2], tiny_config(dropout=0.0), tc, progress=False)
        best[prec] = np.mean([r.best_val_m2 for r in res])
    constant = metrics.m2(y, np.full(len(y), np.median(y)))  # the best constant guess, ~41%
    assert best["float32"] < 0.25 * constant and best["bfloat16"] < 0.25 * constant, (best, constant)
    assert best["bfloat16"] < 1.5 * best["float32"], best


def test_a_trained_ensemble_card_says_which_precision_was_used():
    from rgbkit.ensemble import Ensemble
    from rgbkit.models.densenet import tiny_config
    from rgbkit.train import TrainConfig
    from test_train import synthetic

    X, y = synthetic(40, seed=2)
    for prec in ("float32", "bfloat16"):
        ens = Ensemble.fit(X[:30], y[:30], "age", X_val=X[30:], y_val=y[30:], n_members=2, packed=True,
                           model_config=tiny_config(), progress=False, calibrate=False,
                           train_config=TrainConfig(epochs=1, batch_size=8, device="cpu", precision=prec))
        assert ens.card["training"]["precision"] == prec and ens.card["training"]["precision_used"] == prec
