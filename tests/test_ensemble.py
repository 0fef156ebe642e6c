import json
import shutil

import numpy as np
import pytest
import torch

import rgbkit
from rgbkit import metrics
from rgbkit.ensemble import MODEL_FORMAT_VERSION, Ensemble, ModelFormatError
from rgbkit.models.densenet import tiny_config
from rgbkit.train import TrainConfig


def synthetic(n, seed=0):
    rng = np.random.default_rng(seed)
    lam = np.linspace(0, 1, 4096)
    d = rng.uniform(0, 1, (n, 3))
    flux = np.repeat((1 - 0.1 * lam)[None], n, 0)
    for j, c in enumerate((0.2, 0.5, 0.8)):
        flux -= 0.5 * d[:, j:j + 1] * np.exp(-0.5 * ((lam - c) / 0.003) ** 2)[None]
    flux += rng.normal(0, 0.01, flux.shape)
    y = np.exp(0.3 + 1.5 * d[:, 0] + 0.8 * d[:, 1] ** 2)
    return flux.reshape(n, 64, 64).astype(np.float32), y


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # see tests/test_train.py
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def trained(_one_thread):
    X, y = synthetic(150, seed=5)
    ens = Ensemble.fit(X, y, "age", n_members=3, model_config=tiny_config(dropout=0.1),
                       train_config=TrainConfig(epochs=4, batch_size=16, lr=2e-3, device="cpu"),
                       data_name="synthetic", progress=False)
    return ens, X, y


@pytest.fixture
def saved(trained, tmp_path):
    ens, X, y = trained
    return ens.save(tmp_path / "age"), ens, X


def test_fit_card_and_metrics(trained):
    ens, X, y = trained
    assert len(ens) == 3 and ens.units == "Gyr"
    card = ens.card
    assert card["data"]["n_train"] == 120 and card["data"]["n_val"] == 30
    assert [m["seed"] for m in card["members"]] == [0, 1, 2]
    v = card["metrics"]["val"]
    assert v["member_m2_range"][0] <= v["member_m2_range"][1]
    # The ensemble mean is never worse than the average member (convexity of |.|).
    assert v["m1"] <= np.mean(v["member_m1"]) + 1e-9
    assert v["coverage_68_calibrated"] == pytest.approx(metrics.ONE_SIGMA, abs=1 / 30 + 1e-9)
    assert ens.spread_scale == pytest.approx(v["spread_scale_fit"])
    p = ens.predict(X[:10])
    assert p.mean.shape == (10,) and p.members.shape == (3, 10)
    np.testing.assert_allclose(p.mean, p.members.mean(0))
    np.testing.assert_allclose(p.std, p.members.std(0, ddof=1) * ens.spread_scale)
    assert np.all(p.std_raw > 0)  # members differ


def test_vmap_equals_loop(trained):
    ens, X, _ = trained
    a = ens.predict(X[:50], batch_size=16)
    b = ens.predict(X[:50], batch_size=16, method="vmap")
    np.testing.assert_allclose(a.members, b.members, rtol=1e-5)


def test_save_load_round_trip(saved):
    folder, ens, X = saved
    card = json.loads((folder / "card.json").read_text())
    assert card["format_version"] == MODEL_FORMAT_VERSION
    assert card["library_version"] == rgbkit.__version__
    assert card["target"] == "age" and card["units"] == "Gyr"
    assert len(card["data"]["sha256"]) == 64 and card["created"]
    assert all(len(m["sha256"]) == 64 and m["best_epoch"] >= 1 for m in card["members"])
    assert sorted(p.name for p in folder.iterdir()) == [
        "card.json", "history.json", "member_00.safetensors", "member_01.safetensors", "member_02.safetensors"]
    back = Ensemble.load(folder, target="age")
    np.testing.assert_array_equal(back.predict(X).members, ens.predict(X).members)
    assert back.spread_scale == ens.spread_scale
    assert len(back.histories) == 3 and back.histories[0]["epoch"] == [1, 2, 3, 4]
    with pytest.raises(FileExistsError):
        ens.save(folder)


def test_tampered_weights_refused(saved):
    folder = saved[0]
    f = folder / "member_01.safetensors"
    data = bytearray(f.read_bytes())
    data[-5] ^= 0x01
    f.write_bytes(bytes(data))
    with pytest.raises(ModelFormatError, match=r"member_01.safetensors sha256 .* differs") as e:
        Ensemble.load(folder)
    assert str(folder) in str(e.value)


def test_missing_file_refused(saved):
    folder = saved[0]
    (folder / "member_02.safetensors").unlink()
    with pytest.raises(ModelFormatError, match="missing weights file member_02.safetensors"):
        Ensemble.load(folder)
    (folder / "card.json").unlink()
    with pytest.raises(ModelFormatError, match="missing card.json"):
        Ensemble.load(folder)
    with pytest.raises(ModelFormatError, match="not found"):
        Ensemble.load(folder / "nope")


def _edit_card(folder, rehash=False, **changes):
    """Edit the card; ``rehash``: also rewrite its hash, as someone who knows the format would."""
    from rgbkit.ensemble import card_digest

    card = json.loads((folder / "card.json").read_text())
    card.update(changes)
    if rehash:
        card["card_sha256"] = card_digest(card)
    (folder / "card.json").write_text(json.dumps(card))


def test_wrong_version_refused(saved):
    folder = saved[0]
    _edit_card(folder, format_version=MODEL_FORMAT_VERSION + 1)
    with pytest.raises(ModelFormatError, match="incompatible.*upgrade rgbkit"):
        Ensemble.load(folder)
    _edit_card(folder, format_version=0)
    with pytest.raises(ModelFormatError, match="incompatible.*retrain"):
        Ensemble.load(folder)


def test_wrong_target_and_bad_card_refused(saved):
    folder = saved[0]
    with pytest.raises(ModelFormatError, match="target 'age', not 'mass'"):
        Ensemble.load(folder, target="mass")
    arch = json.loads((folder / "card.json").read_text())["architecture"]
    _edit_card(folder, rehash=True, architecture={**arch, "growth_rate": arch["growth_rate"] + 3})
    with pytest.raises(ModelFormatError, match="does not fit the card's architecture"):
        Ensemble.load(folder)
    (folder / "card.json").write_text("{not json")
    with pytest.raises(ModelFormatError, match="not valid JSON"):
        Ensemble.load(folder)


def test_save_records_the_card_hash(saved):
    from rgbkit.ensemble import card_digest

    folder = saved[0]
    card = json.loads((folder / "card.json").read_text())
    assert card["card_sha256"] == card_digest(card) and len(card["history_sha256"]) == 64


@pytest.mark.parametrize("edit", [
    lambda c: c["target_scaler"].update(mean=c["target_scaler"]["mean"] + 0.1),
    lambda c: c["target_scaler"].update(kind="linear"),
    lambda c: c.update(spread_scale=c.get("spread_scale", 1.0) * 2),
    lambda c: c.update(preprocessing={"npix": 4096, "threshold_factor": 0.5}),
    lambda c: c.update(target="mass", units="Msun"),
    lambda c: c["members"].pop(),
    lambda c: c["members"][0].update(best_epoch=99),
    lambda c: c.update(notes="edited"),
    lambda c: c.pop("card_sha256"),
    lambda c: c.update(card_sha256="0" * 64),
], ids=["scaler-mean", "scaler-kind", "spread", "preprocessing", "target", "member-dropped", "member-info",
        "notes", "hash-removed", "hash-zeroed"])
def test_any_card_edit_is_refused(saved, edit):
    folder = saved[0]
    card = json.loads((folder / "card.json").read_text())
    edit(card)
    (folder / "card.json").write_text(json.dumps(card, indent=1))
    with pytest.raises(ModelFormatError, match="card_sha256|changed after it was saved") as e:
        Ensemble.load(folder)
    assert str(folder) in str(e.value)


def test_history_edit_is_refused(saved):
    folder = saved[0]
    (folder / "history.json").write_text("[]")
    with pytest.raises(ModelFormatError, match="history.json"):
        Ensemble.load(folder)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("arch, fragment", [
    ({"growth_rate": 10**6}, "growth_rate"),
    ({"in_channels": 2**40}, "in_channels"),
    ({"block_layers": [10**5, 4, 4]}, "block_layers"),
    ({"kernel_sizes": [3, 7, 10**6 + 1]}, "kernel_sizes"),
    ({"head_width": 8192, "integration_channels": 1024, "length": 8192}, "parameters"),
    ({"growth_rate": "many"}, "growth_rate"),
    ({"dropout": 5.0}, "dropout"),
])
def test_absurd_architecture_refused_before_building(saved, arch, fragment):
    """Even a card rewritten with a valid hash cannot make load() build a huge network."""
    import tracemalloc

    folder = saved[0]
    card = json.loads((folder / "card.json").read_text())
    _edit_card(folder, rehash=True, architecture={**card["architecture"], **arch})
    tracemalloc.start()
    try:
        with pytest.raises(ModelFormatError, match=fragment):
            Ensemble.load(folder)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50e6


@pytest.mark.parametrize("changes, fragment", [
    ({"spread_scale": float("nan")}, "spread_scale"),
    ({"spread_scale": -1}, "spread_scale"),
    ({"target_scaler": {"kind": "log", "mean": 0.0, "std": 0.0}}, "std"),
    ({"members": [{"file": "../x.safetensors", "sha256": "0"}]}, "no valid file name"),
])
def test_absurd_scales_and_names_refused(saved, changes, fragment):
    _edit_card(saved[0], rehash=True, **changes)
    with pytest.raises(ModelFormatError, match=fragment):
        Ensemble.load(saved[0])


def test_ensemble_callback_stops_after_member():
    X, y = synthetic(40, seed=9)
    calls = []

    def cb(member, epoch, history):
        calls.append((member, epoch))
        return member == 1 and epoch == 2

    ens = Ensemble.fit(X, y, "mass", n_members=4, model_config=tiny_config(),
                       train_config=TrainConfig(epochs=3, batch_size=8, device="cpu"),
                       callback=cb, progress=False)
    assert len(ens) == 2 and ens.units == "Msun"
    assert calls == [(0, 1), (0, 2), (0, 3), (1, 1), (1, 2)]
    assert ens.card["members"][1]["stop_reason"] == "callback"


def test_predict_rejects_bad_shape(trained):
    ens = trained[0]
    with pytest.raises(ValueError, match=r"expected preprocessed spectra \(n, 64, 64\)"):
        ens.predict(np.zeros((3, 32, 64), np.float32))


def test_predict_spectra_runs_card_preprocessing(saved):
    from rgbkit.preprocess import Preprocessor
    from rgbkit.spectra import Spectrum

    folder, ens, _ = saved
    ens = Ensemble.load(folder)
    ens.card["preprocessing"] = Preprocessor().config
    rng = np.random.default_rng(0)
    wl = np.arange(3700.0, 9100.0, 1.3)
    spectra = []
    for i in range(3):
        flux = (1000 + 200 * np.sin(wl / 300) - 300 * np.exp(-0.5 * ((wl - 5175) / 5) ** 2)
                + rng.normal(0, 5, wl.size)).astype(np.float32)
        if i == 1:
            flux[(wl > 6300) & (wl < 6850)] = 0  # the paper's missing window: dropped
        spectra.append(Spectrum(wl, flux, np.ones_like(flux), np.zeros(wl.size, np.int32), np.zeros(wl.size, np.int32)))
    p, prep = ens.predict_spectra(spectra)
    assert prep.ok.tolist() == [True, False, True]
    assert "zero-flux pixels" in prep.reasons[1]
    assert np.isnan(p.mean[1]) and np.isnan(p.members[:, 1]).all()
    direct = ens.predict(Preprocessor().run([s.wavelength for s in spectra], [s.flux for s in spectra]).X[[0, 2]])
    np.testing.assert_allclose(p.mean[[0, 2]], direct.mean)
    np.testing.assert_allclose(p.std[[0, 2]], direct.std)


def test_plots_of_training_and_predictions(trained):
    import holoviews as hv

    from rgbkit import plots

    ens, X, y = trained
    curves = plots.training_curves(ens.histories)
    assert len(curves) == 3 * 2 + 1  # train + validation per member, best-epoch marks
    marks = [e for e in curves if isinstance(e, hv.Scatter)][0]
    assert list(marks.dimension_values("epoch")) == [m["best_epoch"] for m in ens.card["members"]]
    p = ens.predict(X[:40])
    fig = plots.pred_vs_true(y[:40], p.mean, p.std, target="age")
    assert f"M2 = {metrics.m2(y[:40], p.mean):.1f}%" in fig.opts.get().kwargs["title"]
    hv.render(fig, backend="bokeh")
    assert fig.get(0).kdims[0].label == "true age (Gyr)"
    cat = plots.pred_vs_true(y[:40], p.mean, target="age", reference="catalog")
    assert cat.get(0).kdims[0].label == "catalog age (Gyr)"
    hv.render(plots.training_curves(ens.histories[0], "m2"), backend="bokeh")
    with pytest.raises(ValueError, match="metric"):
        plots.training_curves(ens.histories, "r2")


def test_cli_train_writes_a_loadable_folder(tmp_path, capsys):
    from rgbkit.cli import main

    out = tmp_path / "mass"
    assert main(["train", "--target", "mass", "--arch", "tiny", "--members", "1", "--epochs", "1",
                 "--threads", "1", "--out", str(out)]) == 0
    ens = Ensemble.load(out, target="mass")
    assert len(ens) == 1 and ens.card["data"]["name"].startswith("demo")
    assert ens.preprocessing["npix"] == 4096 and ens.card["data"]["n_train"] > 2000
    assert "validation: ensemble M1" in capsys.readouterr().out
    assert main(["train", "--target", "mass", "--arch", "tiny", "--out", str(out)]) == 2
    assert "is not empty (use --overwrite)" in capsys.readouterr().err


def test_shipped_pretrained_load_and_reproduce_frozen_predictions():
    from rgbkit.ensemble import PRETRAINED_DIR, load_pretrained

    size = sum(f.stat().st_size for f in PRETRAINED_DIR.rglob("*") if f.is_file())
    assert size < 6e6, f"shipped models take {size / 1e6:.1f} MB"
    frozen = np.load(PRETRAINED_DIR / "frozen_check.npz")
    for target, units in (("age", "Gyr"), ("mass", "Msun")):
        ens = load_pretrained(target, device="cpu")
        assert ens.units == units and ens.card["preprocessing"]["npix"] == 4096
        assert "SIMULATED" in ens.card["notes"]
        p = ens.predict(frozen["X"])
        np.testing.assert_allclose(p.mean, frozen[f"{target}_mean"], rtol=1e-4)
        np.testing.assert_allclose(p.std, frozen[f"{target}_std"], rtol=1e-3, atol=1e-6)
        # the de-biasing calibration travels in the card and is applied by predict
        for k in ("debiased", "debiased_lo", "debiased_hi"):
            np.testing.assert_allclose(getattr(p, k), frozen[f"{target}_{k}"], rtol=1e-4)
        assert np.all(p.debiased_lo < p.debiased) and np.all(p.debiased < p.debiased_hi)
        # fitted on the calibration set (own seed), never on test; the card says so
        assert ens.card["debias"]["fitted_on"].startswith("calibration set") and ens.card["debias"]["n"] > 4000
        assert set(ens.card["metrics"]) == {"val", "test"}
        assert {"test", "calibration"} <= set(ens.card["data"]["split"])
    with pytest.raises(ValueError, match="no pretrained model for target 'teff'"):
        load_pretrained("teff")


def test_cli_predict_real_lamost_files(tmp_path, shared_data, capsys):
    import pandas as pd

    from rgbkit.cli import main

    out = tmp_path / "pred.csv"
    assert main(["predict", str(shared_data / "lamost" / "dr5"), "--out", str(out)]) == 0
    df = pd.read_csv(out)
    assert len(df) == 20
    ok = df[df["ok"] & ~df["ood"]]
    assert len(ok) >= 2  # the DR5 files are mostly M dwarfs (CoolStarsCU/PHEW): refused, as they should be
    for col in ("age", "age_err", "mass", "mass_err", "age_debiased", "age_debiased_lo", "mass_debiased"):
        assert np.all(np.isfinite(ok[col])) and np.all(ok[col] > 0), col
    refused = df[df["ood"]]
    assert refused["age"].isna().all() and (refused["ood_reason"].str.len() > 0).all()
    assert df.loc[~df["ok"], "reason"].fillna("").astype(str).str.len().gt(0).all()  # a reason per dropped row
    assert "predicted" in capsys.readouterr().out
    fits = tmp_path / "pred.fits"
    assert main(["predict", str(shared_data / "lamost" / "dr5"), "--models", "mass", "--out", str(fits)]) == 0
    from astropy.table import Table

    t = Table.read(fits)
    assert "mass" in t.colnames and "age" not in t.colnames and len(t) == 20


def test_packed_equals_loop(trained):
    ens, X, _ = trained
    a = ens.predict(X[:50], batch_size=16, method="loop")
    b = ens.predict(X[:50], batch_size=16)  # packed, the default
    assert ens.packed_network() is not None
    np.testing.assert_allclose(b.members, a.members, rtol=1e-5, atol=1e-6)
    # the packed copy follows changes to a member's weights
    with torch.no_grad():
        ens.members[1].head[-1].bias += 0.5
    c = ens.predict(X[:50], batch_size=16)
    np.testing.assert_allclose(c.members, ens.predict(X[:50], batch_size=16, method="loop").members,
                               rtol=1e-5, atol=1e-6)
    assert not np.allclose(c.members[1], b.members[1])
    with torch.no_grad():
        ens.members[1].head[-1].bias -= 0.5
