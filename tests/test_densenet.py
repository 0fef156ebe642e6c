import math

import numpy as np
import pytest
import torch
from torch import nn

from rgbkit.models.densenet import (DenseNet1D, DenseNetConfig, count_flops, count_parameters,
                                    paper_config, small_config, tiny_config)


def test_regression_and_classification_heads():
    torch.manual_seed(0)
    x = torch.randn(5, 64, 64)
    reg = DenseNet1D(tiny_config()).eval()
    assert reg(x).shape == (5,)
    clf = DenseNet1D(tiny_config(head="classification", num_classes=3)).eval()
    out = clf(x)
    assert out.shape == (5, 3)
    # Same backbone: identical feature extractor layout, only the last layer differs.
    assert [n for n, _ in reg.features.named_parameters()] == [n for n, _ in clf.features.named_parameters()]
    gp = DenseNet1D(tiny_config(global_pool=True)).eval()
    assert gp(x).shape == (5,)


def test_dense_connectivity_and_parallel_kernels():
    c = tiny_config()
    m = DenseNet1D(c)
    block = m.features.denseblock1
    layer = block.denselayer2
    assert [b.kernel_size[0] for b in layer.branches] == [3, 7, 15]
    assert sum(b.out_channels for b in layer.branches) == c.growth_rate
    assert layer.conv1.in_channels == c.init_features + c.growth_rate  # sees block input + layer 1
    assert layer.conv1.out_channels == c.bn_size * c.growth_rate
    seen = {}
    block.register_forward_hook(lambda mod, i, o: seen.update(shape=o.shape))
    m.eval()(torch.zeros(2, 64, 64))
    assert seen["shape"] == (2, c.init_features + c.block_layers[0] * c.growth_rate, 64)
    # Transition compresses by 0.4 and halves the length.
    n1 = c.init_features + c.block_layers[0] * c.growth_rate
    assert m.features.transition1.conv.out_channels == int(n1 * 0.4)


def test_he_uniform_init():
    torch.manual_seed(1)
    m = DenseNet1D(small_config())
    w = m.features.denseblock2.denselayer1.conv1.weight
    fan_in = w.shape[1] * w.shape[2]
    bound = math.sqrt(6 / fan_in)
    assert w.abs().max() <= bound
    assert w.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)


def _analytic_flops(model, x):
    total = 0

    def hook(mod, inp, out):
        nonlocal total
        if isinstance(mod, nn.Conv1d):
            total += 2 * out.numel() * mod.in_channels * mod.kernel_size[0]
        elif isinstance(mod, nn.Linear):
            total += 2 * out.numel() * mod.in_features

    hs = [mm.register_forward_hook(hook) for mm in model.modules() if isinstance(mm, (nn.Conv1d, nn.Linear))]
    with torch.no_grad():
        model.eval()(x)
    for h in hs:
        h.remove()
    return total


@pytest.mark.parametrize("factory", [tiny_config, small_config, paper_config])
def test_flops_and_parameters(factory):
    m = DenseNet1D(factory())
    flops = count_flops(m)
    assert flops == _analytic_flops(m, torch.zeros(1, 64, 64))
    assert count_flops(m, batch=3) == 3 * flops
    n = count_parameters(m)
    assert n == sum(p.numel() for p in m.parameters())
    if factory is paper_config:
        assert 3e5 < n < 6e5 and 2e7 < flops < 4e7
    if factory is small_config:
        assert 5e4 < n < 1.5e5 and 3e6 < flops < 8e6


def test_bad_input_and_config():
    m = DenseNet1D(tiny_config())
    with pytest.raises(ValueError, match=r"expected input \(batch, 64, 64\)"):
        m(torch.zeros(2, 4096))
    with pytest.raises(ValueError, match="head"):
        DenseNetConfig(head="segmentation")
    with pytest.raises(ValueError, match="odd"):
        DenseNetConfig(kernel_sizes=(3, 6))
    with pytest.raises(ValueError, match="unknown"):
        DenseNetConfig.from_dict({"growth": 3})
    c = small_config(dropout=0.1)
    assert DenseNetConfig.from_dict(c.to_dict()) == c


def test_input_standardisation_buffers():
    rng = np.random.default_rng(0)
    X = (0.5 + 0.01 * rng.normal(size=(200, 64, 64))).astype(np.float32)
    m = DenseNet1D(tiny_config())
    assert {"input_mean", "input_scale"} <= set(m.state_dict())
    m.set_input_scaling(X)
    z = (torch.from_numpy(X) - m.input_mean) / m.input_scale
    assert abs(z.mean().item()) < 1e-4 and z.std().item() == pytest.approx(1, rel=0.02)
    off = DenseNet1D(tiny_config(standardize_input=False))
    assert "input_mean" not in off.state_dict()
    with pytest.raises(ValueError, match="standardize_input=False"):
        off.set_input_scaling(X)


def test_layer_table_follows_the_network():
    from rgbkit.models.densenet import layer_table

    m = DenseNet1D(small_config())
    t = layer_table(m)
    assert t["stage"].tolist() == ["conv0", "denseblock1", "transition1", "denseblock2", "transition2",
                                   "denseblock3", "integration", "head"]
    assert t["parameters"].sum() == count_parameters(m)
    assert t["out_length"].tolist()[:7] == [64, 64, 32, 32, 16, 16, 16]
    # each block adds layers x k maps; each transition keeps int(0.4 x m)
    c = m.config
    b1 = t.set_index("stage").loc["denseblock1"]
    assert b1.out_channels == b1.in_channels + c.block_layers[0] * c.growth_rate
    assert t.set_index("stage").loc["transition1", "out_channels"] == int(b1.out_channels * c.compression)
    assert t.iloc[-1].out_channels == 1 and t.iloc[-2].out_channels == c.integration_channels
    assert m.training  # left as it was
