"""Training all ensemble members at once, as one packed network.

The members are the ones :func:`rgbkit.train.train_member` (regression) and
:func:`rgbkit.classify.train_classifier_member` (RGB/RC) would build: the
same architecture, each initialised from its own seed, the same loss,
optimiser and learning-rate schedule. What changes is how they run: all N
members are one :class:`~rgbkit.models.packed.PackedDenseNet1D`, so one
forward/backward pass and one Adam step serve them all (Adam works element by
element, so one optimiser over the packed weights is N independent ones).

Kept per member, as in member-by-member training:

* its own data order: each member draws its own permutation of the training
  set from a generator seeded with its seed; a mini-batch is a
  ``(batch, N, 64, 64)`` gather, member i seeing its own spectra (BatchNorm
  statistics are per member and channel, so members never mix);
* its own best epoch: after every epoch all members are scored on the
  validation split and each keeps the weights of its own best epoch (lowest
  M2, or lowest cross-entropy for classifiers);
* its own early stopping: a member whose patience runs out stops being
  selected (its best weights are frozen); training ends when all have stopped.

Dropout masks come from one generator, so the weights differ from
member-by-member training with the same seeds (the statistics do not).
"""
from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np
import torch
from torch import nn

from . import metrics
from .models.densenet import DenseNet1D, DenseNetConfig
from .models.packed import PackedDenseNet1D
from .train import TargetScaler, TrainConfig, TrainResult, _as_input, resolve_device

__all__ = ["train_members_packed"]


@torch.inference_mode()
def _predict_packed(net: PackedDenseNet1D, X: torch.Tensor, batch_size: int, device) -> torch.Tensor:
    """(N, n[, classes]) outputs of all members for one shared input."""
    net.eval()
    out = [net(X[i:i + batch_size].to(device, non_blocking=True)).float().cpu()
           for i in range(0, len(X), batch_size)]
    return torch.cat(out, 1)


def train_members_packed(
    X_train: np.ndarray,
    y_train,
    X_val: np.ndarray,
    y_val,
    seeds,
    model_config: DenseNetConfig,
    train_config: TrainConfig,
    task: str = "regression",
    own_order: bool = True,
    callback: Callable[[int, int, dict], bool | None] | None = None,
    progress: bool = True,
    desc: str = "members",
) -> list:
    """Train one member per seed together; return their results in seed order.

    Args:
        X_train, X_val: preprocessed spectra ``(n, 64, 64)``.
        y_train, y_val: targets in physical units (``task="regression"``) or
            class indices 0/1 (``task="classification"``).
        seeds: one seed per member (initialisation and data order).
        model_config, train_config: as for :func:`rgbkit.train.train_member`
            (``train_config.seed`` is not used; ``seeds`` are).
        own_order: each member its own batch order (True) or all the first
            member's order (False: a cheaper gather).
        callback: ``callback(member, epoch, history)`` for every running
            member after every epoch; True stops all members (their best
            weights so far are kept).

    Returns:
        :class:`~rgbkit.train.TrainResult` (regression) or
        :class:`~rgbkit.classify.ClassTrainResult` (classification) per member;
        ``seconds`` is each member's share of the wall time.
    """
    from tqdm.auto import tqdm

    seeds = [int(s) for s in seeds]
    n, mc, tc = len(seeds), model_config, train_config
    if n < 1:
        raise ValueError("need at least one seed")
    if task not in ("regression", "classification"):
        raise ValueError(f"task must be 'regression' or 'classification', got {task!r}")
    if mc.head != task:
        raise ValueError(f"model_config.head is {mc.head!r} but task is {task!r}")
    if tc.lr_schedule not in ("constant", "cosine"):
        raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {tc.lr_schedule!r}")
    Xt, Xv = _as_input(X_train, "X_train", mc), _as_input(X_val, "X_val", mc)
    if task == "regression":
        y_train = np.asarray(y_train, dtype=np.float64).ravel()
        y_val = np.asarray(y_val, dtype=np.float64).ravel()
        scaler = TargetScaler.fit(y_train, tc.target_transform)
        yt, yv = torch.from_numpy(scaler.transform(y_train)), torch.from_numpy(scaler.transform(y_val))
        loss_fn = nn.HuberLoss(delta=tc.huber_delta)
    else:
        scaler = None
        yt, yv = torch.as_tensor(np.asarray(y_train), dtype=torch.int64), torch.as_tensor(np.asarray(y_val), dtype=torch.int64)
        loss_fn = nn.CrossEntropyLoss()
    if len(yt) != len(Xt) or len(yv) != len(Xv):
        raise ValueError(f"X/y lengths differ: train {len(Xt)}/{len(yt)}, val {len(Xv)}/{len(yv)}")
    if len(Xt) == 0 or len(Xv) == 0:
        raise ValueError("empty training or validation set")

    device = resolve_device(tc.device)
    members = []
    for s in seeds:  # each member initialised exactly as train_member would
        torch.manual_seed(s)
        m = DenseNet1D(mc)
        if mc.standardize_input:
            m.set_input_scaling(Xt)
        members.append(m)
    net = PackedDenseNet1D.from_members(members).to(device)
    del members
    torch.manual_seed(seeds[0])  # dropout
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    opt = torch.optim.Adam(net.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=tc.epochs, eta_min=tc.lr / 20)
             if tc.lr_schedule == "cosine" else None)
    Xt_d, yt_d = Xt.to(device), yt.to(device)

    if task == "regression":
        keys = ("epoch", "train_loss", "val_loss", "val_m1", "val_m2", "seconds")
    else:
        keys = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
                "val_contamination", "val_completeness", "seconds")
    histories = [{k: [] for k in keys} for _ in range(n)]
    best = [math.inf] * n
    best_other = [math.nan] * n
    best_epoch, since_best = [0] * n, [0] * n
    running = [True] * n
    stop_reason = ["max_epochs"] * n
    best_states: list[dict | None] = [None] * n
    t0 = time.perf_counter()
    bar = tqdm(range(1, tc.epochs + 1), desc=desc, disable=not progress, leave=False)
    for epoch in bar:
        te = time.perf_counter()
        net.train()
        if own_order:
            perm = torch.stack([torch.randperm(len(Xt), generator=g) for g in gens], 1).to(device)  # (n_train, N)
        else:
            perm = torch.randperm(len(Xt), generator=gens[0]).to(device)
        total = torch.zeros(n, device=device)
        correct = torch.zeros(n, device=device)
        count = 0
        for i in range(0, len(perm), tc.batch_size):
            idx = perm[i:i + tc.batch_size]
            if len(idx) < 2:  # BatchNorm needs 2+ samples in training mode
                continue
            out = net(Xt_d[idx])  # (N, b[, classes])
            target = idx.T if own_order else idx.expand(n, -1)
            target = yt_d[target]
            if task == "regression":
                per = nn.functional.huber_loss(out, target, delta=tc.huber_delta, reduction="none").mean(1)
            else:
                per = nn.functional.cross_entropy(out.flatten(0, 1), target.flatten(), reduction="none")
                per = per.view(n, -1).mean(1)
                correct += (out.argmax(2) == target).sum(1).detach()
            opt.zero_grad(set_to_none=True)
            per.sum().backward()  # each member's gradient is that of its own mean loss
            opt.step()
            total += per.detach() * len(idx)
            count += len(idx)
        if sched is not None:
            sched.step()
        outv = _predict_packed(net, Xv, tc.eval_batch_size, device)
        seconds = time.perf_counter() - te
        improved = []
        for j in range(n):
            if not running[j]:
                continue
            val_loss = float(loss_fn(outv[j], yv))
            if task == "regression":
                pred = scaler.inverse(outv[j].double().numpy())
                m1, m2 = metrics.m1(y_val, pred), metrics.m2(y_val, pred)
                row = (epoch, float(total[j]) / max(count, 1), val_loss, m1, m2, seconds)
                score, other = m2, m1
            else:
                pred = outv[j].argmax(1).numpy()
                acc = float(np.mean(pred == yv.numpy()))
                row = (epoch, float(total[j]) / max(count, 1), float(correct[j]) / max(count, 1), val_loss, acc,
                       metrics.contamination(yv.numpy(), pred, positive=0),
                       metrics.completeness(yv.numpy(), pred, positive=0), seconds)
                score, other = val_loss, acc
            for k, v in zip(keys, row):
                histories[j][k].append(int(v) if k == "epoch" else float(v))
            if score < best[j]:
                best[j], best_other[j], best_epoch[j], since_best[j] = score, other, epoch, 0
                improved.append(j)
            else:
                since_best[j] += 1
        if improved:
            states = net.member_state_dicts()
            for j in improved:
                best_states[j] = states[j]
        stop_all = False
        if callback is not None:
            for j in range(n):
                if running[j] and callback(j, epoch, histories[j]):
                    stop_all = True
        for j in range(n):
            if running[j] and tc.patience is not None and since_best[j] >= tc.patience:
                running[j], stop_reason[j] = False, "early_stopping"
        bar.set_postfix(best=f"{min(best):.4g}", running=sum(running))
        if stop_all:
            for j in range(n):
                if running[j]:
                    running[j], stop_reason[j] = False, "callback"
        if not any(running):
            break
    bar.close()
    wall = time.perf_counter() - t0
    results = []
    for j, s in enumerate(seeds):
        m = DenseNet1D(mc)
        m.load_state_dict(best_states[j] if best_states[j] is not None else net.member_state_dicts()[j])
        m.eval()
        common = dict(model=m, history=histories[j], best_epoch=best_epoch[j],
                      epochs_run=len(histories[j]["epoch"]), stop_reason=stop_reason[j], seed=s,
                      seconds=wall / n)
        if task == "regression":
            results.append(TrainResult(scaler=scaler, best_val_m1=best_other[j], best_val_m2=best[j],
                                       extra={"packed_members": n, "packed_seconds": wall}, **common))
        else:
            from .classify import ClassTrainResult
            results.append(ClassTrainResult(best_val_loss=best[j], best_val_accuracy=best_other[j], **common))
    return results
