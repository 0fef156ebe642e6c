import numpy as np
import pytest
import torch

from rgbkit.models.densenet import tiny_config
from rgbkit.train import TargetScaler, TrainConfig, predict_member, train_member
from rgbkit import metrics


def synthetic(n, seed=0):
    """Spectra (n, 64, 64) with three absorption lines; target a smooth function of two depths."""
    rng = np.random.default_rng(seed)
    lam = np.linspace(0, 1, 4096)
    d = rng.uniform(0, 1, (n, 3))
    flux = np.repeat((1 - 0.1 * lam)[None], n, 0)
    for j, c in enumerate((0.2, 0.5, 0.8)):
        flux -= 0.5 * d[:, j:j + 1] * np.exp(-0.5 * ((lam - c) / 0.003) ** 2)[None]
    flux += rng.normal(0, 0.01, flux.shape)
    y = np.exp(0.3 + 1.5 * d[:, 0] + 0.8 * d[:, 1] ** 2)
    return flux.reshape(n, 64, 64).astype(np.float32), y


@pytest.fixture(autouse=True)
def _threads():
    # One thread: tiny convolutions on a shared, busy 2-core machine are far
    # slower with two threads waiting on each other.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_target_scaler_round_trip():
    y = np.array([1.0, 2.5, 13.0])
    s = TargetScaler.fit(y)
    z = s.transform(y)
    assert z.mean() == pytest.approx(0, abs=1e-6) and z.std() == pytest.approx(1, abs=1e-5)
    np.testing.assert_allclose(s.inverse(z.astype(np.float64)), y, rtol=1e-6)
    with pytest.raises(ValueError, match="positive"):
        TargetScaler.fit(np.array([1.0, 0.0]))


def test_tiny_network_overfits_64_examples():
    X, y = synthetic(64, seed=3)
    cfg = TrainConfig(epochs=60, batch_size=16, lr=2e-3, seed=0, device="cpu")
    r = train_member(X, y, X, y, tiny_config(), cfg, progress=False)
    h = r.history["train_loss"]
    assert h[-1] < h[0] / 20, (h[0], h[-1])
    # Keeps the epoch with the lowest validation M2, and the weights are that epoch's.
    assert r.best_epoch == int(np.argmin(r.history["val_m2"])) + 1
    pred = predict_member(r.model, r.scaler, X, device="cpu")
    assert metrics.m2(y, pred) == pytest.approx(min(r.history["val_m2"]), rel=1e-4)
    # Far better than the best constant guess on these (seen) stars.
    assert r.best_val_m2 < 0.3 * metrics.m2(y, np.full_like(y, np.median(y)))


def test_deterministic_with_seed():
    X, y = synthetic(48, seed=1)
    args = (X[:32], y[:32], X[32:], y[32:], tiny_config(dropout=0.2))
    a = train_member(*args, TrainConfig(epochs=2, batch_size=8, seed=7, device="cpu"), progress=False)
    b = train_member(*args, TrainConfig(epochs=2, batch_size=8, seed=7, device="cpu"), progress=False)
    c = train_member(*args, TrainConfig(epochs=2, batch_size=8, seed=8, device="cpu"), progress=False)
    assert a.history["train_loss"] == b.history["train_loss"]
    for (k, va), vb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(va, vb), k
    assert a.history["train_loss"] != c.history["train_loss"]


def test_callback_stops_and_patience():
    X, y = synthetic(40, seed=2)
    seen = []

    def cb(epoch, history):
        seen.append((epoch, len(history["val_m2"])))
        return epoch == 3

    r = train_member(X[:30], y[:30], X[30:], y[30:], tiny_config(),
                     TrainConfig(epochs=50, batch_size=10, device="cpu"), callback=cb, progress=False)
    assert r.epochs_run == 3 and r.stop_reason == "callback"
    assert seen == [(1, 1), (2, 2), (3, 3)]
    assert 1 <= r.best_epoch <= 3
    # A huge learning rate makes validation M2 erratic: patience 2 stops 2 epochs after the best.
    r = train_member(X[:30], y[:30], X[30:], y[30:], tiny_config(),
                     TrainConfig(epochs=200, batch_size=10, lr=0.05, patience=2, device="cpu"), progress=False)
    assert r.stop_reason == "early_stopping" and r.epochs_run == r.best_epoch + 2 < 200
    assert min(r.history["val_m2"][r.best_epoch:]) >= r.best_val_m2


def test_bad_shapes_refused():
    X, y = synthetic(10)
    with pytest.raises(ValueError, match=r"X_train must have shape \(n, 64, 64\)"):
        train_member(X.reshape(10, -1), y, X, y, tiny_config(), TrainConfig(epochs=1), progress=False)
    with pytest.raises(ValueError, match="lengths differ"):
        train_member(X, y[:5], X, y, tiny_config(), TrainConfig(epochs=1), progress=False)
