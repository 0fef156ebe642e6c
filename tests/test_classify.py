"""RGB/RC classifier: labels, metrics at a threshold, training on separable data,
model averaging, the folder format, and the shipped classifier."""
import numpy as np
import pytest
import torch

from rgbkit.classify import (RC, RGB, Classifier, as_labels, classification_metrics, default_train_config,
                             load_pretrained_classifier, threshold_curve, train_classifier_member)
from rgbkit.ensemble import Ensemble, ModelFormatError, PRETRAINED_DIR
from rgbkit.models.densenet import tiny_config
from rgbkit.train import TrainConfig


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convolutions: one thread is much faster on a busy 2-core machine
    yield
    torch.set_num_threads(n)


def separable(n, seed=0):
    """RC spectra carry a bump in band 5 that RGB spectra lack (plus noise)."""
    rng = np.random.default_rng(seed)
    y = np.array(["RGB", "RC"])[rng.integers(0, 2, n)]
    X = rng.normal(0.5, 0.05, (n, 64, 64)).astype(np.float32)
    X[y == "RC", 5:8, 20:40] += 0.3
    return X, y


def test_as_labels_forms_and_errors():
    assert as_labels(["RGB", " rc", "Rgb"]).tolist() == [RGB, RC, RGB]
    assert as_labels(np.array([True, False])).tolist() == [RGB, RC]
    assert as_labels([0, 1, 1]).tolist() == [0, 1, 1]
    with pytest.raises(ValueError, match="'RGB' or 'RC'"):
        as_labels(["RGB", "dwarf"])
    with pytest.raises(ValueError, match="0 \\(RGB\\) or 1 \\(RC\\)"):
        as_labels([0, 2, -1])


def test_classification_metrics_by_hand():
    y = ["RGB"] * 5 + ["RC"] * 5
    p = [0.9, 0.8, 0.7, 0.6, 0.2, 0.65, 0.3, 0.2, 0.1, 0.0]
    m = classification_metrics(y, p, threshold=0.5)
    # called RGB: four RGB + one RC -> contamination 1/5, completeness 4/5
    assert m["n_called_rgb"] == 5
    assert m["contamination"] == pytest.approx(0.2)
    assert m["completeness"] == pytest.approx(0.8)
    assert m["accuracy"] == pytest.approx(0.8)
    strict = classification_metrics(y, p, threshold=0.7)
    assert strict["contamination"] == 0.0 and strict["completeness"] == pytest.approx(0.6)
    with pytest.raises(ValueError, match="threshold"):
        classification_metrics(y, p, threshold=1.5)


def test_threshold_curve_trades_completeness_for_purity():
    rng = np.random.default_rng(1)
    y = np.where(rng.random(400) < 0.5, "RGB", "RC")
    p = np.clip(np.where(y == "RGB", 0.7, 0.3) + 0.25 * rng.standard_normal(400), 0, 1)
    c = threshold_curve(y, p)
    assert np.all(np.diff(c["completeness"]) <= 0)
    finite = c.dropna(subset=["contamination"])
    assert finite["contamination"].iloc[-1] < finite["contamination"].iloc[0]


@pytest.fixture(scope="module")
def trained():
    X, y = separable(160, seed=2)
    Xv, yv = separable(60, seed=3)
    clf = Classifier.fit(X, y, X_val=Xv, y_val=yv, n_members=2, model_config=tiny_config(),
                         train_config=default_train_config(epochs=8, batch_size=16, lr=2e-3, device="cpu"),
                         progress=False, data_name="separable")
    return clf, Xv, yv


def test_classifier_learns_and_averages_members(trained):
    clf, Xv, yv = trained
    p = clf.predict(Xv)
    assert p.members.shape == (2, 60)
    np.testing.assert_allclose(p.p_rgb, p.members.mean(0))
    assert np.all((p.p_rgb >= 0) & (p.p_rgb <= 1))
    m = clf.card["metrics"]["val"]
    assert m["accuracy"] > 0.9
    assert m["completeness"] > 0.85 and m["contamination"] < 0.15
    assert len(m["member_completeness"]) == 2
    # kept epoch = lowest validation loss
    for h, info in zip(clf.histories, clf.card["members"]):
        assert info["best_epoch"] == int(np.argmin(h["val_loss"])) + 1
    assert clf.is_rgb(Xv, threshold=0.5).sum() == m["n_called_rgb"]


def test_save_load_round_trip_and_checks(trained, tmp_path):
    clf, Xv, _ = trained
    folder = clf.save(tmp_path / "clf")
    back = Classifier.load(folder)
    assert isinstance(back, Classifier) and back.card["kind"] == "rgbkit.Classifier"
    np.testing.assert_allclose(back.predict(Xv).p_rgb, clf.predict(Xv).p_rgb, atol=1e-6)
    with pytest.raises(ModelFormatError, match="target 'rgb_rc', not 'age'"):
        Ensemble.load(folder, target="age")
    w = folder / "member_01.safetensors"
    w.write_bytes(w.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(ModelFormatError, match="sha256"):
        Classifier.load(folder)


def test_member_callback_stops_and_labels_checked():
    X, y = separable(40, seed=4)
    r = train_classifier_member(X[:30], y[:30], X[30:], y[30:], tiny_config(),
                                TrainConfig(epochs=5, batch_size=16, lr=1e-3, device="cpu"),
                                callback=lambda epoch, h: epoch >= 2, progress=False)
    assert r.epochs_run == 2 and r.stop_reason == "callback"
    with pytest.raises(ValueError, match="lengths differ"):
        train_classifier_member(X[:30], y[:29], X[30:], y[30:], tiny_config(), progress=False)


@pytest.mark.skipif(not (PRETRAINED_DIR / "classifier" / "card.json").exists(), reason="no shipped classifier")
def test_shipped_classifier_separates_simulated_rgb_and_rc():
    from rgbkit import simulate as sim
    from rgbkit.preprocess import Preprocessor

    clf = load_pretrained_classifier(device="cpu")
    assert clf.model_config.head == "classification"
    card = clf.card
    for split in ("val", "test"):
        assert 0 <= card["metrics"][split]["contamination"] <= 1
    lab = sim.draw_labels(30, 0, 30, seed=123, logg_range=(1.75, 3.5))
    s = sim.simulate_spectra(lab, seed=123)
    prep = Preprocessor.from_config(clf.preprocessing).run(s.wavelength, s.flux)
    truth = s.labels["evstate"].to_numpy()[prep.ok]
    p = clf.predict(prep.X[prep.ok]).p_rgb
    m = classification_metrics(truth, p)
    # well above chance on fresh simulated stars (the card's numbers are on ~840 validation stars)
    assert m["accuracy"] > 0.7, m
    # from Spectrum objects: same numbers; a spectrum the preprocessing drops gets NaN
    spec = s.spectra()[:4]
    spec[1].flux[:] = 0.0
    ps, pre = clf.predict_spectra(spec)
    assert not pre.ok[1] and np.isnan(ps.p_rgb[1]) and np.isnan(ps.members[:, 1]).all()
    first = np.flatnonzero(prep.ok[:4] & pre.ok)
    np.testing.assert_allclose(ps.p_rgb[first], p[np.searchsorted(np.flatnonzero(prep.ok), first)], atol=1e-6)
