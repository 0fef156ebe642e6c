"""N DenseNet-BC members run as one network ("packed" ensemble).

A :class:`PackedDenseNet1D` holds N :class:`~rgbkit.models.densenet.DenseNet1D`
members side by side: every convolution is one grouped convolution
(``groups=N``), every batch norm one BatchNorm over N x C channels (the
statistics stay per member and per channel, exactly as in the members), and
the fully connected head one batched matrix product. One kernel call then
serves all members, which on a CPU is what matters for a network this small:
a member's convolutions are too narrow to keep the cores busy, and the Python
and dispatch overhead of ten separate forward passes dominates.

Layout: activations live in memory as ``(batch, L, N, C)`` (channels last,
member-major channels: member 0's C channels, then member 1's, ...), seen by
the layers as 2-D images ``(batch, N*C, 1, L)`` in ``channels_last`` format.
oneDNN's grouped and 1x1 convolutions are 1.5-3x faster in that format than
in ``(batch, C, L)`` on this kind of CPU, and a dense block's per-member
concatenation is then a plain concatenation on the last axis.

The state dict has the members' key names; each tensor is the members'
tensors stacked along the first axis, so conversion both ways
(:meth:`PackedDenseNet1D.from_members`, :meth:`PackedDenseNet1D.member_state_dicts`)
is a reshape, and a saved ensemble stays one safetensors file per member.

The input is either one batch for all members ``(batch, 64, 64)`` (inference,
or training on one data order) or one batch per member ``(batch, N, 64, 64)``
(training with each member's own data order). The output is
``(N, batch)`` for regression and ``(N, batch, classes)`` for classification,
i.e. ``torch.stack([member(x) for member in members])``.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from .densenet import DenseNet1D, DenseNetConfig

__all__ = ["PackedDenseNet1D"]


def _nlc(x: torch.Tensor, n: int) -> torch.Tensor:
    """A channels-last ``(batch, N*C, 1, L)`` tensor as its memory ``(batch, L, N, C)`` (a view)."""
    b, nc, _, length = x.shape
    return x.permute(0, 2, 3, 1).reshape(b, length, n, nc // n)


def _image(x: torch.Tensor) -> torch.Tensor:
    """``(batch, L, N, C)`` memory as a channels-last ``(batch, N*C, 1, L)`` tensor (a view)."""
    b, length, n, c = x.shape
    return x.reshape(b, 1, length, n * c).permute(0, 3, 1, 2)


def _conv(n: int, c_in: int, c_out: int, k: int, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(n * c_in, n * c_out, (1, k), padding=(0, k // 2), groups=n, bias=bias)


class _PackedLinear(nn.Module):
    """N linear layers as one batched product: ``(N, batch, in) -> (N, batch, out)``."""

    def __init__(self, n: int, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n, out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(n, out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight.transpose(1, 2))


class _PackedDenseLayer(nn.Module):
    """BN-ReLU-1x1 conv, BN-ReLU, parallel convs (3, 7, 15) for N members at once."""

    def __init__(self, n: int, in_features: int, growth_rate: int, bn_size: int,
                 kernel_sizes: tuple[int, ...], dropout: float):
        super().__init__()
        width = bn_size * growth_rate
        self.n = n
        self.norm1 = nn.BatchNorm2d(n * in_features)
        self.conv1 = _conv(n, in_features, width, 1)
        self.norm2 = nn.BatchNorm2d(n * width)
        k = len(kernel_sizes)
        outs = [growth_rate // k + (i < growth_rate % k) for i in range(k)]
        self.branches = nn.ModuleList(_conv(n, width, o, ks) for o, ks in zip(outs, kernel_sizes))
        self.dropout = dropout
        self.merged: nn.Conv2d | None = None  # set by fuse(): inference only

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Channels-last image in, new maps out as ``(batch, L, N, k)`` memory."""
        if self.merged is not None:
            return _nlc(self.merged(F.relu(self.conv1(F.relu(self.norm1(x))))), self.n)
        x = F.relu(self.norm2(self.conv1(F.relu(self.norm1(x)))))
        # each branch's output is member-major; interleave them per member
        x = torch.cat([_nlc(br(x), self.n) for br in self.branches], 3)
        if self.dropout > 0:
            x = F.dropout(x, p=self.dropout, training=self.training)
        return x

    @torch.no_grad()
    def fuse(self) -> None:
        """Fold norm2 into conv1 and merge the parallel kernels into one (eval only)."""
        n, bn, c1 = self.n, self.norm2, self.conv1
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        conv1 = nn.Conv2d(c1.in_channels, c1.out_channels, 1, groups=n, bias=True).to(c1.weight)
        conv1.weight.copy_(c1.weight * scale[:, None, None, None])
        conv1.bias.copy_(bn.bias - bn.running_mean * scale)
        k = max(br.kernel_size[1] for br in self.branches)
        width = c1.out_channels // n
        per = [br.out_channels // n for br in self.branches]
        w = c1.weight.new_zeros(n, sum(per), width, k)
        o = 0
        for br, p in zip(self.branches, per):
            kb = br.kernel_size[1]
            off = (k - kb) // 2
            w[:, o:o + p, :, off:off + kb] = br.weight.view(n, p, width, kb)
            o += p
        merged = _conv(n, width, sum(per), k).to(w)
        merged.weight.copy_(w.view_as(merged.weight))
        self.conv1 = conv1.to(memory_format=torch.channels_last)
        self.merged = merged.to(memory_format=torch.channels_last)
        del self.norm2, self.branches


class _PackedDenseBlock(nn.ModuleDict):
    def __init__(self, n: int, num_layers: int, in_features: int, growth_rate: int, bn_size: int,
                 kernel_sizes: tuple[int, ...], dropout: float):
        super().__init__()
        self.n = n
        for i in range(num_layers):
            self[f"denselayer{i + 1}"] = _PackedDenseLayer(
                n, in_features + i * growth_rate, growth_rate, bn_size, kernel_sizes, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [_nlc(x, self.n)]
        for layer in self.values():
            features.append(layer(x))
            x = _image(torch.cat(features, 3))
        return x


class _PackedTransition(nn.Sequential):
    def __init__(self, n: int, in_features: int, out_features: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(n * in_features)
        self.relu = nn.ReLU()
        self.conv = _conv(n, in_features, out_features, 1)
        self.pool = nn.AvgPool2d(kernel_size=(1, 2), stride=(1, 2))


class PackedDenseNet1D(nn.Module):
    """``n_members`` :class:`DenseNet1D` networks of one ``config`` as one network.

    Build it with :meth:`from_members` (or construct and :meth:`load_members`);
    get the members back with :meth:`member_state_dicts` / :meth:`to_members`.
    """

    def __init__(self, config: DenseNetConfig, n_members: int):
        super().__init__()
        if n_members < 1:
            raise ValueError(f"n_members must be >= 1, got {n_members}")
        c, n = config, n_members
        self.config, self.n_members = c, n
        layers: OrderedDict[str, nn.Module] = OrderedDict(
            conv0=_conv(n, c.in_channels, c.init_features, 3))
        feats, length = c.init_features, c.length
        for i, num_layers in enumerate(c.block_layers):
            layers[f"denseblock{i + 1}"] = _PackedDenseBlock(
                n, num_layers, feats, c.growth_rate, c.bn_size, c.kernel_sizes, c.dropout)
            feats += num_layers * c.growth_rate
            if i != len(c.block_layers) - 1:
                out = max(1, int(feats * c.compression))
                layers[f"transition{i + 1}"] = _PackedTransition(n, feats, out)
                feats, length = out, length // 2
        layers["norm_final"] = nn.BatchNorm2d(n * feats)
        layers["relu_final"] = nn.ReLU()
        layers["integration"] = _conv(n, feats, c.integration_channels, 1)
        layers["norm_int"] = nn.BatchNorm2d(n * c.integration_channels)
        layers["relu_int"] = nn.ReLU()
        self.features = nn.Sequential(layers)
        if c.standardize_input:
            self.register_buffer("input_mean", torch.zeros(n, c.in_channels, c.length))
            self.register_buffer("input_scale", torch.ones(n, c.in_channels, c.length))
        flat = c.integration_channels * (1 if c.global_pool else length)
        # same indices as DenseNet1D.head (Flatten, Dropout, Linear, ReLU, Linear) so the keys match
        head: list[nn.Module] = [nn.Flatten(), nn.Dropout(c.dropout)]
        if c.head_width > 0:
            head += [_PackedLinear(n, flat, c.head_width), nn.ReLU(), _PackedLinear(n, c.head_width, c.n_outputs)]
        else:
            head += [_PackedLinear(n, flat, c.n_outputs)]
        self.head = nn.Sequential(*head)
        self._shapes = {k: tuple(v.shape) for k, v in DenseNet1D(c).to("meta").state_dict().items()}
        self.fused = False
        self.shared_input = False  # set by fuse()
        self.to(memory_format=torch.channels_last)

    # ------------------------------------------------------------ conversion
    @classmethod
    def from_members(cls, members) -> "PackedDenseNet1D":
        """Pack :class:`DenseNet1D` members (same config) into one network (on their device)."""
        members = list(members)
        if not members:
            raise ValueError("no members to pack")
        config = members[0].config
        if any(m.config != config for m in members):
            raise ValueError("members differ in architecture; they cannot be packed")
        packed = cls(config, len(members))
        packed.load_members([m.state_dict() for m in members])
        return packed.to(next(members[0].parameters()).device)

    @torch.no_grad()
    def load_members(self, states) -> None:
        """Copy N member state dicts (DenseNet1D keys) into the packed tensors."""
        states = list(states)
        if len(states) != self.n_members:
            raise ValueError(f"expected {self.n_members} member states, got {len(states)}")
        if self.fused:
            raise RuntimeError("a fused (inference) network cannot load member weights")
        own = self.state_dict()
        if set(states[0]) != set(own):
            diff = sorted(set(states[0]) ^ set(own))[:4]
            raise ValueError(f"member weights do not fit a packed {type(self).__name__}: keys {diff}")
        for k, t in own.items():
            if k.endswith("num_batches_tracked"):
                t.copy_(states[0][k])
            else:
                t.copy_(torch.stack([s[k].to(t) for s in states]).view_as(t))

    def member_state_dicts(self) -> list[dict[str, torch.Tensor]]:
        """The members' state dicts (DenseNet1D keys, CPU copies)."""
        if self.fused:
            raise RuntimeError("a fused (inference) network no longer holds the members' weights")
        own = {k: v.detach().cpu() for k, v in self.state_dict().items()}
        out = []
        for i in range(self.n_members):
            out.append({k: (v.clone() if k.endswith("num_batches_tracked")
                            else v.reshape(self.n_members, *self._shapes[k])[i].clone())
                        for k, v in own.items()})
        return out

    def to_members(self) -> list[DenseNet1D]:
        """Separate :class:`DenseNet1D` members (CPU, eval mode)."""
        members = []
        for state in self.member_state_dicts():
            m = DenseNet1D(self.config)
            m.load_state_dict(state)
            members.append(m.eval())
        return members

    @torch.no_grad()
    def fuse(self) -> "PackedDenseNet1D":
        """Fold batch norms that follow a convolution into it and merge the parallel kernels;
        when the members standardise their input alike, read one batch for all through a dense
        first convolution (``shared_input``) instead of a copy of the input per member.

        Inference only (the network is put in eval mode and can no longer
        train or give back member weights); outputs equal to float32 rounding.
        """
        self.eval()
        for m in list(self.modules()):
            if isinstance(m, _PackedDenseLayer) and m.merged is None:
                m.fuse()
        f = self.features
        bn, conv = f.norm_int, f.integration
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        fused = nn.Conv2d(conv.in_channels, conv.out_channels, 1, groups=self.n_members, bias=True).to(conv.weight)
        fused.weight.copy_(conv.weight * scale[:, None, None, None])
        fused.bias.copy_(bn.bias - bn.running_mean * scale)
        f.integration, f.norm_int = fused.to(memory_format=torch.channels_last), nn.Identity()
        self.shared_input = self._members_share_input()
        if self.shared_input:
            # every member reads the same standardised input: one dense convolution with the
            # grouped weights (same shape) instead of N copies of the input
            g = f.conv0
            dense = nn.Conv2d(g.in_channels // self.n_members, g.out_channels, g.kernel_size,
                              padding=g.padding, bias=False).to(g.weight)
            dense.weight.copy_(g.weight)
            self.conv0_shared = dense.to(memory_format=torch.channels_last)
            self._after_conv0 = tuple(f)[1:]  # a plain tuple: the modules stay registered once
        self.fused = True
        return self

    def _members_share_input(self) -> bool:
        """True when all members standardise their input alike (they were fitted on one training set)."""
        if not self.config.standardize_input:
            return True
        return all(bool((t == t[:1]).all()) for t in (self.input_mean, self.input_scale))

    def train(self, mode: bool = True):
        if mode and self.fused:
            raise RuntimeError("a fused (inference) network cannot be trained")
        return super().train(mode)

    # ------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, C, L)`` (one batch for all) or ``(batch, N, C, L)`` (one per member)."""
        c, n = self.config, self.n_members
        shared = x.ndim == 3
        if not (x.shape[-2:] == (c.in_channels, c.length) and (shared or (x.ndim == 4 and x.shape[1] == n))):
            raise ValueError(f"expected input (batch, {c.in_channels}, {c.length}) or "
                             f"(batch, {n}, {c.in_channels}, {c.length}), got {tuple(x.shape)}")
        b = x.shape[0]
        if shared and self.shared_input:
            x = self.conv0_shared(self._standardised_once(x))
            for layer in self._after_conv0:
                x = layer(x)
            return self._head(x, b)
        # (batch, L, N, C) memory; standardising per member writes it (one copy, needed anyway)
        x = x.transpose(-1, -2).unsqueeze(2) if shared else x.permute(0, 3, 1, 2)
        if c.standardize_input:
            x = (x - self.input_mean.permute(2, 0, 1)) / self.input_scale.permute(2, 0, 1)
        x = x.expand(b, c.length, n, c.in_channels).contiguous()
        return self._head(self.features(_image(x)), b)

    def _standardised_once(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, C, L)`` standardised by the members' common scaling, as a channels-last image."""
        c = self.config
        out = torch.empty(x.shape[0], c.length, 1, c.in_channels, dtype=x.dtype, device=x.device)
        xt = x.transpose(1, 2).unsqueeze(2)
        if c.standardize_input:
            torch.sub(xt, self.input_mean[0].T.unsqueeze(1), out=out)
            out.div_(self.input_scale[0].T.unsqueeze(1))
        else:
            out.copy_(xt)
        return out.permute(0, 3, 2, 1)

    def _head(self, x: torch.Tensor, b: int) -> torch.Tensor:
        c, n = self.config, self.n_members
        x = _nlc(x, n)  # (batch, L', N, C_int)
        x = x.mean(1) if c.global_pool else x.permute(0, 2, 3, 1).reshape(b, n, -1)
        x = x.transpose(0, 1)  # (N, batch, flat), flat in the members' (C, L) order
        head = self.head
        x = head[1](x)
        for layer in list(head)[2:]:
            x = layer(x)
        return x.squeeze(2) if c.head == "regression" else x
