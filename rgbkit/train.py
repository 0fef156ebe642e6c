"""Training of one network (one ensemble member).

The paper's protocol (Section 3.2 and 4.2): Huber loss, Adam with learning
rate 1.5e-4, mini-batches, 450 epochs for age and 350 for mass, keeping the
weights of the epoch with the lowest M2 on the validation split.

Targets: the network learns ``z = (log(y) - mu) / sigma`` (natural log,
mu/sigma from the training targets), not ``y`` itself. Why: M2 is a
*relative* error and ages span 1-14 Gyr, so an absolute loss on ``y`` would
spend the network on the oldest stars; a difference in ``log y`` is a
relative error, and standardising keeps the Huber loss's delta = 1 at about
one standard deviation of the targets. Predictions are always converted back
to physical units (Gyr, Msun) before any metric or output.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from . import metrics
from .models.densenet import DenseNet1D, DenseNetConfig

__all__ = ["TargetScaler", "TrainConfig", "TrainResult", "train_member", "resolve_device", "predict_member"]

DEFAULT_EPOCHS = {"age": 450, "mass": 350}


@dataclass
class TargetScaler:
    """Maps physical targets to what the network learns and back.

    ``kind="log"``: z = (ln y - mean) / std. ``kind="linear"``: z = (y - mean) / std.
    """

    kind: str = "log"
    mean: float = 0.0
    std: float = 1.0

    @classmethod
    def fit(cls, y: np.ndarray, kind: str = "log") -> "TargetScaler":
        y = np.asarray(y, dtype=np.float64)
        if kind not in ("log", "linear"):
            raise ValueError(f"target transform must be 'log' or 'linear', got {kind!r}")
        if kind == "log" and np.any(y <= 0):
            raise ValueError(f"log target transform needs positive targets; min is {y.min():g}")
        t = np.log(y) if kind == "log" else y
        std = float(t.std())
        return cls(kind, float(t.mean()), std if std > 0 else 1.0)

    def transform(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        t = np.log(y) if self.kind == "log" else y
        return ((t - self.mean) / self.std).astype(np.float32)

    def inverse(self, z):
        """Network outputs (array or tensor) to physical units."""
        t = z * self.std + self.mean
        if self.kind == "log":
            return torch.exp(t) if isinstance(t, torch.Tensor) else np.exp(t)
        return t

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainConfig:
    """Settings of one member's training."""

    epochs: int = 450
    """Maximum epochs (paper: 450 age, 350 mass)."""
    batch_size: int = 64
    """Mini-batch size (not stated in the paper)."""
    lr: float = 1.5e-4
    """Adam learning rate (paper: 1.5e-4)."""
    huber_delta: float = 1.0
    """Huber delta, in standard deviations of the transformed target."""
    weight_decay: float = 0.0
    lr_schedule: str = "constant"
    """"constant" (paper) or "cosine" (anneal to lr/20 over ``epochs``: steadier short runs)."""
    patience: int | None = None
    """Stop after this many epochs without a lower validation M2 (None: off, as in the paper)."""
    target_transform: str = "log"
    """"log" (default, see module docstring) or "linear"."""
    seed: int = 0
    """Seeds initialisation, dropout and batch order: same seed, same weights on CPU."""
    device: str = "auto"
    """"auto" (cuda when available), "cpu", "cuda", ..."""
    eval_batch_size: int = 1024

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    """A trained member: the network holds the best epoch's weights (on CPU)."""

    model: DenseNet1D
    scaler: TargetScaler
    history: dict[str, list]
    best_epoch: int
    """1-based epoch whose weights were kept (lowest validation M2)."""
    epochs_run: int
    stop_reason: str
    """"max_epochs", "early_stopping" or "callback"."""
    seed: int
    best_val_m1: float = math.nan
    best_val_m2: float = math.nan
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _as_input(X: np.ndarray, name: str, config: DenseNetConfig) -> torch.Tensor:
    X = np.asarray(X)
    want = (config.in_channels, config.length)
    if X.ndim != 3 or X.shape[1:] != want:
        raise ValueError(f"{name} must have shape (n, {want[0]}, {want[1]}), got {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} holds non-finite values")
    return torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))


@torch.inference_mode()
def _predict_z(model: nn.Module, X: torch.Tensor, batch_size: int, device: torch.device) -> torch.Tensor:
    model.eval()
    out = [model(X[i:i + batch_size].to(device, non_blocking=True)).float().cpu()
           for i in range(0, len(X), batch_size)]
    return torch.cat(out) if out else torch.empty(0)


def predict_member(model: nn.Module, scaler: TargetScaler, X: np.ndarray, batch_size: int = 1024,
                   device: str | torch.device | None = "auto") -> np.ndarray:
    """One member's predictions in physical units (float64)."""
    dev = resolve_device(device)
    model.to(dev)
    z = _predict_z(model, _as_input(X, "X", model.config), batch_size, dev)
    return scaler.inverse(z.double().numpy())


def train_member(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    model_config: DenseNetConfig | None = None,
    train_config: TrainConfig | None = None,
    callback: Callable[[int, dict], bool | None] | None = None,
    progress: bool = True,
    desc: str = "train",
) -> TrainResult:
    """Train one regression network and keep the epoch with the lowest validation M2.

    Args:
        X_train, X_val: preprocessed spectra, float32 ``(n, 64, 64)``.
        y_train, y_val: targets in physical units (Gyr or Msun), positive.
        model_config: architecture (default :func:`~rgbkit.models.densenet.small_config`).
        train_config: epochs, batch size, learning rate, seed, device, patience.
        callback: called after every epoch as ``callback(epoch, history)``
            (1-based epoch; ``history`` the dict of per-epoch lists). Return
            True to stop now; the best weights so far are kept.
        progress: show a tqdm bar over epochs.

    Returns:
        a :class:`TrainResult` whose ``model`` holds the best epoch's weights.
    """
    from tqdm.auto import tqdm

    from .models.densenet import small_config

    mc = model_config if model_config is not None else small_config()
    tc = train_config if train_config is not None else TrainConfig()
    if mc.head != "regression":
        raise ValueError("train_member trains regression heads; use rgbkit.classify for classifiers")
    Xt, Xv = _as_input(X_train, "X_train", mc), _as_input(X_val, "X_val", mc)
    y_train = np.asarray(y_train, dtype=np.float64).ravel()
    y_val = np.asarray(y_val, dtype=np.float64).ravel()
    if len(y_train) != len(Xt) or len(y_val) != len(Xv):
        raise ValueError(f"X/y lengths differ: train {len(Xt)}/{len(y_train)}, val {len(Xv)}/{len(y_val)}")
    if len(Xt) == 0 or len(Xv) == 0:
        raise ValueError("empty training or validation set")
    scaler = TargetScaler.fit(y_train, tc.target_transform)
    zt = torch.from_numpy(scaler.transform(y_train))
    zv = torch.from_numpy(scaler.transform(y_val))

    device = resolve_device(tc.device)
    torch.manual_seed(tc.seed)
    model = DenseNet1D(mc)
    if mc.standardize_input:
        model.set_input_scaling(Xt)
    model = model.to(device)
    gen = torch.Generator().manual_seed(tc.seed)
    opt = torch.optim.Adam(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    if tc.lr_schedule not in ("constant", "cosine"):
        raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {tc.lr_schedule!r}")
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=tc.epochs, eta_min=tc.lr / 20)
             if tc.lr_schedule == "cosine" else None)
    loss_fn = nn.HuberLoss(delta=tc.huber_delta)
    # Small data: keep it all on the device once.
    Xt_d, zt_d = Xt.to(device), zt.to(device)

    history: dict[str, list] = {k: [] for k in ("epoch", "train_loss", "val_loss", "val_m1", "val_m2", "seconds")}
    best_m2, best_epoch, best_state = math.inf, 0, None
    best_m1 = math.nan
    stop_reason = "max_epochs"
    since_best = 0
    t0 = time.perf_counter()
    bar = tqdm(range(1, tc.epochs + 1), desc=desc, disable=not progress, leave=False)
    for epoch in bar:
        te = time.perf_counter()
        model.train()
        perm = torch.randperm(len(Xt), generator=gen).to(device)
        total, count = 0.0, 0
        for i in range(0, len(perm), tc.batch_size):
            idx = perm[i:i + tc.batch_size]
            if len(idx) < 2:  # BatchNorm needs 2+ samples in training mode
                continue
            loss = loss_fn(model(Xt_d[idx]), zt_d[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            count += len(idx)
        if sched is not None:
            sched.step()
        pz = _predict_z(model, Xv, tc.eval_batch_size, device)
        val_loss = float(loss_fn(pz, zv))
        pred = scaler.inverse(pz.double().numpy())
        m1, m2 = metrics.m1(y_val, pred), metrics.m2(y_val, pred)
        for k, v in zip(history, (epoch, total / max(count, 1), val_loss, m1, m2, time.perf_counter() - te)):
            history[k].append(float(v) if k != "epoch" else int(v))
        if m2 < best_m2:
            best_m2, best_m1, best_epoch, since_best = m2, m1, epoch, 0
            best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
        else:
            since_best += 1
        bar.set_postfix(loss=f"{history['train_loss'][-1]:.4f}", M2=f"{m2:.2f}%", best=f"{best_m2:.2f}%@{best_epoch}")
        if callback is not None and callback(epoch, history):
            stop_reason = "callback"
            break
        if tc.patience is not None and since_best >= tc.patience:
            stop_reason = "early_stopping"
            break
    bar.close()
    model = model.cpu()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return TrainResult(model=model, scaler=scaler, history=history, best_epoch=best_epoch,
                       epochs_run=len(history["epoch"]), stop_reason=stop_reason, seed=tc.seed,
                       best_val_m1=best_m1, best_val_m2=best_m2, seconds=time.perf_counter() - t0)
