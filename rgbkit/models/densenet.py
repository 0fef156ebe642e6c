"""The 1D DenseNet-BC of Li, Bu et al. (2022), Section 3.1.2 and Figure 7.

The layout follows torchvision's ``models/densenet.py``: three private
building blocks (``_DenseLayer``, ``_DenseBlock``, ``_Transition``) and one
public class, :class:`DenseNet1D`, whose configuration is a
:class:`DenseNetConfig`. Named configurations are the factory functions
:func:`paper_config` and :func:`small_config`.

Input: preprocessed spectra reshaped to 64 bands x 64 pixels, i.e. a tensor
``(batch, 64 channels, 64 positions)``.

Data flow (the paper's Figure 7, sizes for ``paper_config``)::

    (64 ch x 64)  --per-pixel standardisation, stem conv k=3--> (2k ch x 64)
    dense block 1 (L1 layers, growth k)  -->  (2k + L1 k ch x 64)
    transition 1 (BN-ReLU-1x1 conv x0.4, avg pool /2) --> (.. x 32)
    dense block 2, transition 2                           (.. x 16)
    dense block 3, BN-ReLU
    integration 1x1 conv (few channels) + BN-ReLU         (C_int x 16)
    flatten (or global average pool) -> dropout -> FC -> ReLU -> FC -> output

Each dense layer is BN-ReLU-1x1 conv to 4k maps (the "B" bottleneck), BN-ReLU,
then the paper's "convolution block": three parallel convolutions with kernel
sizes 3, 7 and 15 whose outputs are concatenated to k new maps, then dropout.

Choosing the sizes Figure 7 shows but the text does not state
-------------------------------------------------------------
* Training set: ~3,500 labelled spectra (the paper's 3,540 stars, 8:2 split),
  so the network must be small to avoid memorising; DenseNet-BC's feature
  re-use is what makes a few tens of thousands of parameters enough.
* Sequence length is only 64, so two transitions (64 -> 32 -> 16) leave 16
  positions for the integration layer; kernel 15 at the last block already
  sees the whole sequence. Three blocks of 4 layers give receptive fields
  beyond 64 pixels (= one band) while the 64 input channels already mix all
  64 bands at the first convolution; 6 layers per block cost 1.7x the FLOPs
  (46 vs 28 MFLOP per spectrum) for a data set this small.
* Growth rate k = 24 (8 maps per kernel size) for ``paper_config``: enough
  maps per kernel size to see both narrow lines (3 px) and wide features
  such as the Mg b triplet or molecular bands (15 px): 0.44 M parameters,
  28 MFLOP per spectrum. ``small_config`` (k = 12, 3 layers per block,
  86 k parameters, 5.3 MFLOP) is the shipped size: ~2.5x faster to train,
  so a few members x 2 targets fit in well under an hour on 2 CPU cores;
  ``tiny_config`` is for unit tests.
* Not in the paper: the input is standardised per pixel (training-set mean
  spectrum and spread, stored as buffers with the weights), because
  min-max normalised giant spectra differ by a few per cent and the stem
  convolution otherwise spends itself on the shared continuum shape.
* The integration layer exists "to minimise the complexity of the fully
  connected layer" (paper): it squeezes to a few channels, whose 16
  positions are flattened (keeping where in a band a feature lies), then one
  hidden layer of 64-128 units.
* Dropout 0.2 in dense layers and before the head: the paper uses dropout and
  relies on its randomness together with initialisation for ensemble
  diversity; 0.2 is the DenseNet paper's value for small data.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DenseNetConfig", "DenseNet1D", "paper_config", "small_config", "tiny_config", "count_parameters", "count_flops",
           "layer_table"]


@dataclass
class DenseNetConfig:
    """All sizes of a :class:`DenseNet1D`; JSON-serialisable (see :meth:`to_dict`)."""

    in_channels: int = 64
    """Channels of the input (64 bands of the reshaped 4096-pixel spectrum)."""
    length: int = 64
    """Positions per channel (64 pixels per band)."""
    growth_rate: int = 24
    """k: maps each dense layer adds; split evenly over the kernel sizes."""
    block_layers: tuple[int, ...] = (4, 4, 4)
    """Dense layers in each of the three dense blocks."""
    init_features: int = 48
    """Maps out of the stem convolution (2k, as in DenseNet-BC)."""
    bn_size: int = 4
    """Bottleneck width factor: the 1x1 conv gives bn_size * k maps (paper: 4k)."""
    kernel_sizes: tuple[int, ...] = (3, 7, 15)
    """Parallel kernels of the "convolution block" (paper: 3, 7, 15)."""
    compression: float = 0.4
    """theta of the transition blocks (paper: 0.4)."""
    dropout: float = 0.2
    """Dropout after each dense layer and before the head."""
    integration_channels: int = 32
    """Maps out of the 1x1 integration conv after the last dense block."""
    global_pool: bool = False
    """True: global average pool before the head; False: flatten all positions."""
    head_width: int = 128
    """Hidden units of the fully connected head (0: a single linear layer)."""
    standardize_input: bool = True
    """Subtract a per-pixel mean spectrum and divide by a per-pixel spread before the stem.

    Not in the paper. Min-max normalised spectra of giants look alike to
    within a few per cent, and the labels live in those few per cent; the
    mean/spread are fitted on the training set (:meth:`DenseNet1D.set_input_scaling`)
    and stored with the weights as buffers.
    """
    head: str = "regression"
    """"regression" (one output) or "classification" (``num_classes`` logits)."""
    num_classes: int = 2
    """Number of classes for the classification head."""

    def __post_init__(self):
        self.block_layers = tuple(int(b) for b in self.block_layers)
        self.kernel_sizes = tuple(int(k) for k in self.kernel_sizes)
        if self.head not in ("regression", "classification"):
            raise ValueError(f"head must be 'regression' or 'classification', got {self.head!r}")
        if len(self.block_layers) < 1 or min(self.block_layers) < 1:
            raise ValueError(f"block_layers must be positive, got {self.block_layers}")
        if self.growth_rate < len(self.kernel_sizes):
            raise ValueError(f"growth_rate {self.growth_rate} < number of kernels {len(self.kernel_sizes)}")
        if any(k % 2 == 0 for k in self.kernel_sizes):
            raise ValueError(f"kernel sizes must be odd (same padding), got {self.kernel_sizes}")
        if not 0 < self.compression <= 1:
            raise ValueError(f"compression must be in (0, 1], got {self.compression}")
        if self.length % 2 ** (len(self.block_layers) - 1):
            raise ValueError(f"length {self.length} not divisible by the transitions' pooling")

    @property
    def n_outputs(self) -> int:
        return 1 if self.head == "regression" else self.num_classes

    def to_dict(self) -> dict:
        d = asdict(self)
        d["block_layers"] = list(self.block_layers)
        d["kernel_sizes"] = list(self.kernel_sizes)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "DenseNetConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown DenseNetConfig keys: {sorted(unknown)}")
        return cls(**d)


def paper_config(**overrides) -> DenseNetConfig:
    """Our reading of the paper's Figure 7 (k = 24, 4-4-4 layers, 0.44 M parameters)."""
    return DenseNetConfig(**overrides)


def small_config(**overrides) -> DenseNetConfig:
    """The shipped and test size (k = 12, 3-3-3 layers): fast on 2 CPU cores."""
    base = dict(growth_rate=12, block_layers=(3, 3, 3), init_features=24,
                integration_channels=16, head_width=64)
    base.update(overrides)
    return DenseNetConfig(**base)


def tiny_config(**overrides) -> DenseNetConfig:
    """A minimal network for unit tests (seconds per epoch on a few hundred spectra)."""
    base = dict(growth_rate=6, block_layers=(2, 2, 2), init_features=12,
                integration_channels=8, head_width=32, dropout=0.0)
    base.update(overrides)
    return DenseNetConfig(**base)


class _DenseLayer(nn.Module):
    """BN-ReLU-1x1 conv (bottleneck, bn_size*k maps), BN-ReLU, parallel convs -> k maps."""

    def __init__(self, in_features: int, growth_rate: int, bn_size: int,
                 kernel_sizes: tuple[int, ...], dropout: float):
        super().__init__()
        width = bn_size * growth_rate
        self.norm1 = nn.BatchNorm1d(in_features)
        self.conv1 = nn.Conv1d(in_features, width, kernel_size=1, bias=False)
        self.norm2 = nn.BatchNorm1d(width)
        # Split k over the kernels; the first ones take the remainder.
        n = len(kernel_sizes)
        outs = [growth_rate // n + (i < growth_rate % n) for i in range(n)]
        self.branches = nn.ModuleList(
            nn.Conv1d(width, o, kernel_size=ks, padding=ks // 2, bias=False)
            for o, ks in zip(outs, kernel_sizes)
        )
        self.dropout = dropout

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = torch.cat(features, 1)
        x = self.conv1(F.relu(self.norm1(x)))
        x = F.relu(self.norm2(x))
        x = torch.cat([b(x) for b in self.branches], 1)
        if self.dropout > 0:
            x = F.dropout(x, p=self.dropout, training=self.training)
        return x


class _DenseBlock(nn.ModuleDict):
    """Dense layers, each fed the concatenation of the block input and all earlier outputs."""

    def __init__(self, num_layers: int, in_features: int, growth_rate: int, bn_size: int,
                 kernel_sizes: tuple[int, ...], dropout: float):
        super().__init__()
        for i in range(num_layers):
            self[f"denselayer{i + 1}"] = _DenseLayer(
                in_features + i * growth_rate, growth_rate, bn_size, kernel_sizes, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class _Transition(nn.Sequential):
    """BN, ReLU, 1x1 conv to theta*m maps, average pooling by 2."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.norm = nn.BatchNorm1d(in_features)
        self.relu = nn.ReLU()
        self.conv = nn.Conv1d(in_features, out_features, kernel_size=1, bias=False)
        self.pool = nn.AvgPool1d(kernel_size=2, stride=2)


class DenseNet1D(nn.Module):
    """1D DenseNet-BC for spectra reshaped to (64 bands, 64 pixels).

    Args:
        config: a :class:`DenseNetConfig` (default :func:`paper_config`). Its
            fields are the whole architecture:

            * ``in_channels``, ``length``: input shape (64, 64).
            * ``growth_rate`` (k) and ``kernel_sizes``: each dense layer adds
              k maps, split over parallel convs with kernels 3, 7, 15.
            * ``block_layers``: layers per dense block (three blocks).
            * ``init_features``: maps of the stem conv.
            * ``bn_size``: bottleneck 1x1 conv gives bn_size*k maps (4k).
            * ``compression``: transitions keep theta*m maps (0.4).
            * ``dropout``: in dense layers and before the head.
            * ``integration_channels``: 1x1 integration conv after the last block.
            * ``global_pool``: average over positions instead of flattening.
            * ``head_width``: hidden units of the FC head (0 for none).
            * ``head``, ``num_classes``: "regression" gives ``(n,)`` outputs,
              "classification" gives ``(n, num_classes)`` logits.
    """

    def __init__(self, config: DenseNetConfig | None = None):
        super().__init__()
        c = config if config is not None else paper_config()
        self.config = c
        layers: OrderedDict[str, nn.Module] = OrderedDict({
            "conv0": nn.Conv1d(c.in_channels, c.init_features, kernel_size=3, padding=1, bias=False),
        })
        n = c.init_features
        length = c.length
        for i, num_layers in enumerate(c.block_layers):
            layers[f"denseblock{i + 1}"] = _DenseBlock(
                num_layers, n, c.growth_rate, c.bn_size, c.kernel_sizes, c.dropout)
            n += num_layers * c.growth_rate
            if i != len(c.block_layers) - 1:
                out = max(1, int(n * c.compression))
                layers[f"transition{i + 1}"] = _Transition(n, out)
                n = out
                length //= 2
        layers["norm_final"] = nn.BatchNorm1d(n)
        layers["relu_final"] = nn.ReLU()
        layers["integration"] = nn.Conv1d(n, c.integration_channels, kernel_size=1, bias=False)
        layers["norm_int"] = nn.BatchNorm1d(c.integration_channels)
        layers["relu_int"] = nn.ReLU()
        self.features = nn.Sequential(layers)
        if c.standardize_input:
            self.register_buffer("input_mean", torch.zeros(c.in_channels, c.length))
            self.register_buffer("input_scale", torch.ones(c.in_channels, c.length))
        flat = c.integration_channels * (1 if c.global_pool else length)
        head: list[nn.Module] = [nn.Flatten(), nn.Dropout(c.dropout)]
        if c.head_width > 0:
            head += [nn.Linear(flat, c.head_width), nn.ReLU(), nn.Linear(c.head_width, c.n_outputs)]
        else:
            head += [nn.Linear(flat, c.n_outputs)]
        self.head = nn.Sequential(*head)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He-uniform (Kaiming uniform, ReLU gain) weights, zero biases, unit BN."""
        for m in self.modules():
            if isinstance(m, (nn.Conv1d, nn.Linear)):
                nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm1d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @torch.no_grad()
    def set_input_scaling(self, X) -> None:
        """Fit the per-pixel input mean and spread on training spectra ``(n, 64, 64)``."""
        if not self.config.standardize_input:
            raise ValueError("this network was built with standardize_input=False")
        X = torch.as_tensor(X, dtype=torch.float32)
        self.input_mean.copy_(X.mean(0))
        # Floor the spread so near-constant pixels are not blown up into noise.
        std = X.std(0)
        self.input_scale.copy_(std.clamp_min(max(float(std.median()) * 0.1, 1e-6)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        if x.ndim != 3 or x.shape[1] != c.in_channels or x.shape[2] != c.length:
            raise ValueError(
                f"expected input (batch, {c.in_channels}, {c.length}), got {tuple(x.shape)}")
        if c.standardize_input:
            x = (x - self.input_mean) / self.input_scale
        x = self.features(x)
        if c.global_pool:
            x = x.mean(dim=2)
        out = self.head(x)
        return out.squeeze(1) if c.head == "regression" else out

    def fused(self) -> "DenseNet1D":
        """An inference-only copy with fused dense layers (:mod:`rgbkit.models.fused`): same numbers, ~2x faster on CPU."""
        import copy

        from .fused import FusedDenseLayer

        net = copy.deepcopy(self).eval()
        with torch.no_grad():
            for block in [m for m in net.modules() if isinstance(m, _DenseBlock)]:
                for name in list(block.keys()):
                    block[name] = FusedDenseLayer(block[name]).eval()
        return net


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_flops(model: nn.Module, batch: int = 1) -> int:
    """Forward FLOPs for ``batch`` spectra (multiply-add = 2 FLOPs; convs and matmuls only)."""
    from torch.utils.flop_counter import FlopCounterMode

    c = model.config
    x = torch.zeros(batch, c.in_channels, c.length)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def layer_table(model: DenseNet1D):
    """One row per stage of the network (stem, dense blocks, transitions, integration, head).

    Columns: ``stage``, ``kind``, ``in_channels``, ``out_channels``, ``in_length``,
    ``out_length`` (positions), ``parameters``. Shapes come from one forward pass
    of a zero spectrum, so the table is what the network really does.
    """
    import pandas as pd

    kinds = {"conv": "stem conv", "denseblock": "dense block", "transition": "transition",
             "integration": "integration 1x1 conv"}
    stages = [(n, m) for n, m in model.features.named_children() if not n.startswith(("norm", "relu"))]
    stages.append(("head", model.head))
    shapes: dict[str, tuple] = {}
    hooks = [m.register_forward_hook(lambda mod, inp, out, name=n: shapes.__setitem__(
        name, ((inp[0] if isinstance(inp[0], torch.Tensor) else torch.cat(inp[0], 1)).shape, out.shape)))
        for n, m in stages]
    c = model.config
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, c.in_channels, c.length))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    rows = []
    for name, mod in stages:
        (i, o) = shapes[name]
        kind = next((v for k, v in kinds.items() if name.startswith(k)), "fully connected head")
        rows.append({"stage": name, "kind": kind, "in_channels": int(i[1]),
                     "out_channels": int(o[1]) if len(o) > 1 else 1,
                     "in_length": int(i[2]) if len(i) > 2 else 1, "out_length": int(o[2]) if len(o) > 2 else 1,
                     "parameters": sum(p.numel() for p in mod.parameters())})
    # the BN layers around the integration conv belong to that stage
    extra = sum(p.numel() for n, m in model.features.named_children() if n.startswith("norm") for p in m.parameters())
    rows[[r["stage"] for r in rows].index("integration")]["parameters"] += extra
    return pd.DataFrame(rows)
