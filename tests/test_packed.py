"""All ensemble members as one network: same numbers as the members, training per member."""
import numpy as np
import pytest
import torch
from torch import nn

from rgbkit.classify import Classifier, default_train_config
from rgbkit.ensemble import Ensemble
from rgbkit.models.densenet import DenseNet1D, small_config, tiny_config
from rgbkit.models.packed import PackedDenseNet1D
from rgbkit.packed_train import train_members_packed
from rgbkit.train import TrainConfig

from test_classify import separable
from test_ensemble import synthetic


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def members(config, n=3, data=None):
    """n members with their own seeds, input scaling and (after one training-mode pass) BN statistics."""
    out = []
    for i in range(n):
        torch.manual_seed(i)
        m = DenseNet1D(config)
        x = torch.rand(40, 64, 64) if data is None else data
        if config.standardize_input:
            m.set_input_scaling(x + 0.01 * i)
        with torch.no_grad():
            m.train()(x)
        out.append(m.eval())
    return out


CONFIGS = {"tiny": tiny_config(), "small": small_config(),
           "pool_no_hidden": tiny_config(global_pool=True, head_width=0, standardize_input=False),
           "classifier": tiny_config(head="classification", num_classes=2)}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_packed_and_fused_equal_members(name):
    ms = members(CONFIGS[name])
    x = torch.rand(9, 64, 64)
    with torch.no_grad():
        ref = torch.stack([m(x) for m in ms])
        net = PackedDenseNet1D.from_members(ms).eval()
        out = net(x)
        assert out.shape == ref.shape
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
        # one batch per member: member i sees x_i
        xs = torch.rand(9, 3, 64, 64)
        own = net(xs)
        for i, m in enumerate(ms):
            torch.testing.assert_close(own[i], m(xs[:, i]), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(net.fuse()(x), ref, rtol=1e-5, atol=1e-5)
    with pytest.raises(RuntimeError, match="fused"):
        net.train()


@pytest.mark.parametrize("same_scaling", [True, False])
def test_fused_network_reads_a_shared_input_once(same_scaling):
    """Members fitted on one training set standardise alike: the fused network then reads one copy
    of the input with a dense first convolution (no copy per member) and gives the same numbers."""
    ms = members(small_config(), n=4)
    if same_scaling:
        for m in ms[1:]:
            m.input_mean.copy_(ms[0].input_mean)
            m.input_scale.copy_(ms[0].input_scale)
    x = torch.rand(7, 64, 64)
    with torch.no_grad():
        ref = torch.stack([m(x) for m in ms])
        net = PackedDenseNet1D.from_members(ms).fuse()
        assert net.shared_input is same_scaling
        assert hasattr(net, "conv0_shared") is same_scaling
        torch.testing.assert_close(net(x), ref, rtol=1e-5, atol=1e-5)
        own = torch.rand(7, 4, 64, 64)  # one batch per member still works
        torch.testing.assert_close(net(own)[2], ms[2](own[:, 2]), rtol=1e-5, atol=1e-5)


def test_member_weights_round_trip_exactly():
    ms = members(tiny_config())
    back = PackedDenseNet1D.from_members(ms).to_members()
    for a, b in zip(ms, back):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    with pytest.raises(ValueError, match="differ in architecture"):
        PackedDenseNet1D.from_members([ms[0], DenseNet1D(small_config())])


def test_one_packed_step_is_each_members_own_step():
    """Gradients of the summed per-member losses are each member's own gradients (training-mode BN)."""
    cfg = tiny_config()  # dropout 0: deterministic
    ms = members(cfg)
    net = PackedDenseNet1D.from_members(ms).train()
    x, z = torch.rand(12, 3, 64, 64), torch.randn(3, 12)
    loss = nn.functional.huber_loss(net(x), z, reduction="none").mean(1).sum()
    loss.backward()
    grads = {k: p.grad for k, p in net.named_parameters()}
    for i, m in enumerate(ms):
        m.train().zero_grad()
        nn.functional.huber_loss(m(x[:, i]), z[i]).backward()
        for k, p in m.named_parameters():
            torch.testing.assert_close(grads[k].reshape(3, *p.shape)[i], p.grad, rtol=1e-4, atol=1e-5)


def test_packed_training_keeps_each_members_best_epoch():
    X, y = synthetic(120, seed=3)
    tc = TrainConfig(epochs=5, batch_size=16, lr=2e-3, device="cpu")
    res = train_members_packed(X[:90], y[:90], X[90:], y[90:], [4, 5, 6], tiny_config(dropout=0.1), tc,
                               progress=False)
    assert [r.seed for r in res] == [4, 5, 6]
    for r in res:
        h = r.history
        assert r.epochs_run == 5 and len(h["val_m2"]) == 5 and r.stop_reason == "max_epochs"
        assert r.best_epoch == int(np.argmin(h["val_m2"])) + 1
        assert r.best_val_m2 == pytest.approx(min(h["val_m2"]))
        # the returned network is that epoch's: it reproduces the recorded validation M2
        from rgbkit import metrics
        from rgbkit.train import predict_member
        pred = predict_member(r.model, r.scaler, X[90:], device="cpu")
        assert metrics.m2(y[90:], pred) == pytest.approx(r.best_val_m2, rel=1e-4)
    # own seeds, own data orders: the members differ
    assert len({round(r.best_val_m2, 6) for r in res}) == 3
    # same seeds, same result
    again = train_members_packed(X[:90], y[:90], X[90:], y[90:], [4, 5, 6], tiny_config(dropout=0.1), tc,
                                 progress=False)
    assert [r.history["val_m2"] for r in again] == [r.history["val_m2"] for r in res]


def test_packed_early_stopping_and_callback_per_member():
    X, y = synthetic(60, seed=4)
    calls = []

    def cb(member, epoch, history):
        calls.append((member, epoch))
        return epoch == 3

    tc = TrainConfig(epochs=8, batch_size=8, lr=1e-3, device="cpu")
    res = train_members_packed(X[:40], y[:40], X[40:], y[40:], [0, 1], tiny_config(), tc, callback=cb,
                               progress=False)
    assert calls == [(0, 1), (1, 1), (0, 2), (1, 2), (0, 3), (1, 3)]
    assert [r.stop_reason for r in res] == ["callback", "callback"]
    res = train_members_packed(X[:40], y[:40], X[40:], y[40:], [0, 1], tiny_config(),
                               TrainConfig(epochs=40, batch_size=8, lr=3e-2, patience=2, device="cpu"),
                               progress=False)
    for r in res:
        assert r.stop_reason == "early_stopping"
        assert r.epochs_run == r.best_epoch + 2  # stopped after 2 epochs without a lower M2


def test_ensemble_and_classifier_fit_packed(tmp_path):
    X, y = synthetic(120, seed=5)
    ens = Ensemble.fit(X, y, "age", n_members=3, model_config=tiny_config(dropout=0.1),
                       train_config=TrainConfig(epochs=4, batch_size=16, lr=2e-3, device="cpu"),
                       progress=False, packed=True)
    assert ens.card["training"]["members_packed"] is True
    assert [m["seed"] for m in ens.card["members"]] == [0, 1, 2]
    back = Ensemble.load(ens.save(tmp_path / "age"))  # one safetensors file per member, as before
    np.testing.assert_allclose(back.predict(X[:20]).members, ens.predict(X[:20], method="loop").members,
                               rtol=1e-5, atol=1e-6)

    Xc, yc = separable(160, seed=2)
    Xv, yv = separable(60, seed=3)
    clf = Classifier.fit(Xc, yc, X_val=Xv, y_val=yv, n_members=2, model_config=tiny_config(),
                         train_config=default_train_config(epochs=8, batch_size=16, lr=2e-3, device="cpu"),
                         progress=False, packed=True)
    m = clf.card["metrics"]["val"]
    assert m["accuracy"] > 0.9
    for h, info in zip(clf.histories, clf.card["members"]):
        assert info["best_epoch"] == int(np.argmin(h["val_loss"])) + 1
    np.testing.assert_allclose(clf.predict(Xv).members, clf.predict(Xv, method="loop").members,
                               rtol=1e-5, atol=1e-6)


def test_cli_train_packed(tmp_path):
    from rgbkit.cli import main

    out = tmp_path / "mass"
    assert main(["train", "--target", "mass", "--arch", "tiny", "--members", "2", "--epochs", "1",
                 "--threads", "1", "--device", "cpu", "--packed", "--out", str(out)]) == 0
    ens = Ensemble.load(out, target="mass")
    assert len(ens) == 2 and ens.card["training"]["members_packed"] is True
    assert [m["epochs_run"] for m in ens.card["members"]] == [1, 1]
