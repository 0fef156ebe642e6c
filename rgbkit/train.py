"""Training: one learner for every network (regression members and classifier members).

A small *task* object says what differs between a regressor and a classifier:
the loss, the target transform, the per-epoch metrics and the score that picks
the epoch to keep (:class:`RegressionTask` here, ``ClassificationTask`` in
:mod:`rgbkit.classify`). :func:`fit_network` is the epoch loop,
:func:`train_members` the member loop of an ensemble.

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
from dataclasses import asdict, dataclass, field, replace
from typing import Callable

import numpy as np
import torch
from torch import nn

from . import metrics
from .models.densenet import DenseNet1D, DenseNetConfig
from .precision import autocast, resolve_precision

__all__ = ["TargetScaler", "TrainConfig", "TrainResult", "train_member", "resolve_device", "predict_member",
           "RegressionTask", "FitOutcome", "MemberResult", "fit_network", "train_members", "split_train_val"]

from .config import DEFAULT_EPOCHS  # noqa: E402  (kept importable from here)


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
    precision: str = "float32"
    """Number format of forward passes: "float32", "bfloat16" (autocast: ~1.8x faster on CPUs
    with native bfloat16, weights and optimiser stay float32) or "auto" (:mod:`rgbkit.precision`)."""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(kw_only=True)
class MemberResult:
    """A trained member: ``model`` holds the kept epoch's weights (on CPU)."""

    model: DenseNet1D
    history: dict[str, list]
    best_epoch: int
    """1-based epoch whose weights were kept."""
    epochs_run: int
    stop_reason: str
    """"max_epochs", "early_stopping" or "callback"."""
    seed: int
    seconds: float = 0.0


@dataclass(kw_only=True)
class TrainResult(MemberResult):
    """A trained regression member (kept: the lowest validation M2) and its target scaler."""

    scaler: TargetScaler
    best_val_m1: float = math.nan
    best_val_m2: float = math.nan
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


class RegressionTask:
    """Huber loss on the scaled target (:class:`TargetScaler`); keep the epoch with the lowest validation M2."""

    train_keys: tuple = ()
    val_keys = ("val_m1", "val_m2")
    score_key = "val_m2"
    loss_name, selection = "huber", "lowest validation M2"

    def __init__(self, y_train: np.ndarray, y_val: np.ndarray, config: "TrainConfig"):
        self.scaler = TargetScaler.fit(y_train, config.target_transform)
        self.loss_fn = nn.HuberLoss(delta=config.huber_delta)
        self.y_val = y_val

    def targets(self, y: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(self.scaler.transform(y))

    def batch_sums(self, out: torch.Tensor, t: torch.Tensor) -> dict:
        return {}

    def val_metrics(self, out: torch.Tensor) -> dict:
        pred = self.scaler.inverse(out.double().numpy())
        return {"val_m1": metrics.m1(self.y_val, pred), "val_m2": metrics.m2(self.y_val, pred)}


@dataclass
class FitOutcome:
    """What :func:`fit_network` returns: the network with the kept epoch's weights (on CPU) and its history."""

    model: DenseNet1D
    history: dict[str, list]
    best_epoch: int
    best: dict
    """The history row of the kept epoch ({} when no epoch scored)."""
    stop_reason: str
    seconds: float

    def member_fields(self, seed: int) -> dict:
        """The :class:`MemberResult` fields of this outcome."""
        return dict(model=self.model, history=self.history, best_epoch=self.best_epoch,
                    epochs_run=len(self.history["epoch"]), stop_reason=self.stop_reason, seed=seed,
                    seconds=self.seconds)


def fit_network(Xt: torch.Tensor, tt: torch.Tensor, Xv: torch.Tensor, tv: torch.Tensor, task,
                mc: DenseNetConfig, tc: "TrainConfig", callback=None, progress: bool = True,
                desc: str = "train") -> FitOutcome:
    """The epoch loop: Adam (optionally cosine-annealed), shuffled mini-batches, keep the best-scoring epoch.

    ``Xt``/``Xv`` checked input tensors, ``tt``/``tv`` the task's targets;
    ``task`` supplies the loss, the epoch metrics and the score (lower is better).
    """
    from tqdm.auto import tqdm

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
    loss_fn = task.loss_fn
    Xt_d, tt_d = Xt.to(device), tt.to(device)  # small data: keep it all on the device once

    keys = ("epoch", "train_loss", *task.train_keys, "val_loss", *task.val_keys, "seconds")
    history: dict[str, list] = {k: [] for k in keys}
    best_score, best_epoch, best_state, best = math.inf, 0, None, {}
    stop_reason, since_best = "max_epochs", 0
    prec = resolve_precision(tc.precision, device)
    t0 = time.perf_counter()
    bar = tqdm(range(1, tc.epochs + 1), desc=desc, disable=not progress, leave=False)
    for epoch in bar:
        te = time.perf_counter()
        model.train()
        perm = torch.randperm(len(Xt), generator=gen).to(device)
        total, count, sums = 0.0, 0, {k: 0.0 for k in task.train_keys}
        for i in range(0, len(perm), tc.batch_size):
            idx = perm[i:i + tc.batch_size]
            if len(idx) < 2:  # BatchNorm needs 2+ samples in training mode
                continue
            with autocast(prec, device):
                out = model(Xt_d[idx]).float()
            loss = loss_fn(out, tt_d[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            for k, v in task.batch_sums(out, tt_d[idx]).items():
                sums[k] += v
            count += len(idx)
        if sched is not None:
            sched.step()
        with autocast(prec, device):
            out_v = _predict_z(model, Xv, tc.eval_batch_size, device)
        row = {"epoch": epoch, "train_loss": total / max(count, 1), **{k: v / max(count, 1) for k, v in sums.items()},
               "val_loss": float(loss_fn(out_v, tv)), **task.val_metrics(out_v), "seconds": time.perf_counter() - te}
        for k in keys:
            history[k].append(int(row[k]) if k == "epoch" else float(row[k]))
        score = history[task.score_key][-1]
        if score < best_score:
            best_score, best_epoch, since_best = score, epoch, 0
            best = {k: history[k][-1] for k in keys}
            best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
        else:
            since_best += 1
        bar.set_postfix(loss=f"{history['train_loss'][-1]:.4f}", score=f"{score:.4g}", best=best_epoch)
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
    return FitOutcome(model, history, best_epoch, best, stop_reason, time.perf_counter() - t0)


def check_training_data(X_train, t_train, X_val, t_val, mc: DenseNetConfig):
    """Input tensors (shape and finiteness checked) and matching lengths; returns ``(Xt, Xv)``."""
    Xt, Xv = _as_input(X_train, "X_train", mc), _as_input(X_val, "X_val", mc)
    if len(t_train) != len(Xt) or len(t_val) != len(Xv):
        raise ValueError(f"X/y lengths differ: train {len(Xt)}/{len(t_train)}, val {len(Xv)}/{len(t_val)}")
    if len(Xt) == 0 or len(Xv) == 0:
        raise ValueError("empty training or validation set")
    return Xt, Xv


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
    from .models.densenet import small_config

    mc = model_config if model_config is not None else small_config()
    tc = train_config if train_config is not None else TrainConfig()
    if mc.head != "regression":
        raise ValueError("train_member trains regression heads; use rgbkit.classify for classifiers")
    y_train = np.asarray(y_train, dtype=np.float64).ravel()
    y_val = np.asarray(y_val, dtype=np.float64).ravel()
    Xt, Xv = check_training_data(X_train, y_train, X_val, y_val, mc)
    task = RegressionTask(y_train, y_val, tc)
    r = fit_network(Xt, task.targets(y_train), Xv, task.targets(y_val), task, mc, tc, callback, progress, desc)
    return TrainResult(**r.member_fields(tc.seed), scaler=task.scaler, best_val_m1=r.best.get("val_m1", math.nan),
                       best_val_m2=r.best.get("val_m2", math.inf))


def train_members(train_one: Callable, n_members: int, tc: "TrainConfig", seed: int, callback=None,
                  progress: bool = True, desc: str = "ensemble", postfix: Callable | None = None) -> list:
    """The member loop: ``train_one(config, callback, desc)`` with seeds ``seed, seed+1, ...``.

    ``callback(member, epoch, history)`` after every epoch; True stops: the
    current member keeps its best weights and no further members are trained.
    """
    from tqdm.auto import tqdm

    if n_members < 1:
        raise ValueError(f"n_members must be >= 1, got {n_members}")
    results, stop = [], False
    outer = tqdm(range(n_members), desc=desc, disable=not progress or n_members == 1)
    for i in outer:
        cb = None
        if callback is not None:
            def cb(epoch, history, _i=i):
                nonlocal stop
                stop = bool(callback(_i, epoch, history))
                return stop
        r = train_one(replace(tc, seed=seed + i), cb, f"member {i}")
        results.append(r)
        if postfix is not None:
            outer.set_postfix(**postfix(r))
        if stop:
            break
    outer.close()
    return results


def split_train_val(X, y, X_val, y_val, val_fraction: float, split_seed: int, labels: Callable):
    """``(Xt, yt, Xv, yv, split)``: the given validation set, or a random ``val_fraction`` split (the paper's 8:2).

    ``labels`` turns targets into arrays (floats for regression, class indices for a classifier).
    """
    import hashlib

    X = np.asarray(X, dtype=np.float32)
    y = labels(y)
    if len(X) != len(y):
        raise ValueError(f"X and y lengths differ: {len(X)} vs {len(y)}")
    if (X_val is None) != (y_val is None):
        raise ValueError("give both X_val and y_val, or neither")
    if X_val is None:
        itr, iva = _split(len(X), val_fraction, split_seed)
        split = {"method": "random", "val_fraction": val_fraction, "seed": split_seed,
                 "val_index_sha256": hashlib.sha256(iva.astype(np.int64).tobytes()).hexdigest()}
        return X[itr], y[itr], X[iva], y[iva], split
    return X, y, np.asarray(X_val, dtype=np.float32), labels(y_val), {"method": "given"}


def _split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    perm = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(n * val_fraction)))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])
