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

import copy
import math
import time
from typing import Callable

import numpy as np
import torch

from .models.densenet import DenseNet1D, DenseNetConfig
from .models.packed import PackedDenseNet1D
from .precision import autocast, resolve_precision
from .train import RegressionTask, TrainConfig, TrainResult, check_training_data, resolve_device

__all__ = ["train_members_packed"]


@torch.inference_mode()
def _predict_packed(net: PackedDenseNet1D, X: torch.Tensor, batch_size: int, device) -> torch.Tensor:
    """(N, n[, classes]) outputs of all members for one shared input."""
    net.eval()
    out = [net(X[i:i + batch_size].to(device, non_blocking=True)).float().cpu()
           for i in range(0, len(X), batch_size)]
    return torch.cat(out, 1)


def _task(mc: DenseNetConfig, y_train, y_val, tc: TrainConfig):
    """The unified learner's task object (:mod:`rgbkit.train`), targets and the result maker."""
    if mc.head == "regression":
        y_train = np.asarray(y_train, dtype=np.float64).ravel()
        y_val = np.asarray(y_val, dtype=np.float64).ravel()
        task = RegressionTask(y_train, y_val, tc)

        def result(fields, best):
            return TrainResult(**fields, scaler=task.scaler, best_val_m1=best.get("val_m1", math.nan),
                               best_val_m2=best.get("val_m2", math.inf))
        return task, task.targets(y_train), task.targets(y_val), result
    from .classify import ClassificationTask, ClassTrainResult

    yt, yv = ClassificationTask.targets(y_train), ClassificationTask.targets(y_val)
    task = ClassificationTask(yv.numpy())

    def result(fields, best):
        return ClassTrainResult(**fields, best_val_loss=best.get("val_loss", math.inf),
                                best_val_accuracy=best.get("val_accuracy", math.nan))
    return task, yt, yv, result


def train_members_packed(
    X_train: np.ndarray,
    y_train,
    X_val: np.ndarray,
    y_val,
    seeds,
    model_config: DenseNetConfig,
    train_config: TrainConfig,
    own_order: bool = True,
    callback: Callable[[int, int, dict], bool | None] | None = None,
    progress: bool = True,
    desc: str = "members",
) -> list:
    """Train one member per seed together; return their results in seed order.

    Args:
        X_train, X_val: preprocessed spectra ``(n, 64, 64)``.
        y_train, y_val: targets in physical units (a regression head) or
            class labels (a classification head, anything
            :func:`rgbkit.classify.as_labels` reads).
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
    if tc.lr_schedule not in ("constant", "cosine"):
        raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {tc.lr_schedule!r}")
    task, tt, tv, make_result = _task(mc, y_train, y_val, tc)
    Xt, Xv = check_training_data(X_train, tt, X_val, tv, mc)
    per_loss = copy.copy(task.loss_fn)
    per_loss.reduction = "none"  # one loss per member: their sum's gradient is each member's own

    device = resolve_device(tc.device)
    members = []
    for s in seeds:  # each member initialised exactly as the member-by-member learner would
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
    Xt_d, tt_d = Xt.to(device), tt.to(device)
    prec = resolve_precision(tc.precision, device)

    keys = ("epoch", "train_loss", *task.train_keys, "val_loss", *task.val_keys, "seconds")
    histories = [{k: [] for k in keys} for _ in range(n)]
    best_score, best_epoch, since_best = [math.inf] * n, [0] * n, [0] * n
    best_rows: list[dict] = [{} for _ in range(n)]
    best_states: list[dict | None] = [None] * n
    running, stop_reason = [True] * n, ["max_epochs"] * n
    t0 = time.perf_counter()
    bar = tqdm(range(1, tc.epochs + 1), desc=desc, disable=not progress, leave=False)
    for epoch in bar:
        te = time.perf_counter()
        net.train()
        if own_order:  # (n_train, N): column j is member j's permutation
            perm = torch.stack([torch.randperm(len(Xt), generator=g) for g in gens], 1).to(device)
        else:
            perm = torch.randperm(len(Xt), generator=gens[0]).to(device)
        total = torch.zeros(n, device=device)
        sums = [{k: 0.0 for k in task.train_keys} for _ in range(n)]
        count = 0
        for i in range(0, len(perm), tc.batch_size):
            idx = perm[i:i + tc.batch_size]
            if len(idx) < 2:  # BatchNorm needs 2+ samples in training mode
                continue
            with autocast(prec, device):
                out = net(Xt_d[idx]).float()  # (N, b[, classes])
            target = tt_d[idx.T if own_order else idx.expand(n, -1)]  # (N, b)
            loss = per_loss(out.flatten(0, 1), target.flatten()).view(n, -1).mean(1)
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()
            opt.step()
            total += loss.detach() * len(idx)
            count += len(idx)
            for j in range(n if task.train_keys else 0):
                for k, v in task.batch_sums(out[j].detach(), target[j]).items():
                    sums[j][k] += v
        if sched is not None:
            sched.step()
        with autocast(prec, device):
            out_v = _predict_packed(net, Xv, tc.eval_batch_size, device)
        seconds = time.perf_counter() - te
        improved = []
        for j in range(n):
            if not running[j]:
                continue
            row = {"epoch": epoch, "train_loss": float(total[j]) / max(count, 1),
                   **{k: v / max(count, 1) for k, v in sums[j].items()},
                   "val_loss": float(task.loss_fn(out_v[j], tv)), **task.val_metrics(out_v[j]), "seconds": seconds}
            for k in keys:
                histories[j][k].append(int(row[k]) if k == "epoch" else float(row[k]))
            score = histories[j][task.score_key][-1]
            if score < best_score[j]:
                best_score[j], best_epoch[j], since_best[j] = score, epoch, 0
                best_rows[j] = {k: histories[j][k][-1] for k in keys}
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
            elif running[j] and stop_all:
                running[j], stop_reason[j] = False, "callback"
        bar.set_postfix(best=f"{min(best_score):.4g}", running=sum(running))
        if not any(running):
            break
    bar.close()
    wall = time.perf_counter() - t0
    last = net.member_state_dicts()
    results = []
    for j, s in enumerate(seeds):
        m = DenseNet1D(mc)
        m.load_state_dict(best_states[j] if best_states[j] is not None else last[j])
        fields = dict(model=m.eval(), history=histories[j], best_epoch=best_epoch[j],
                      epochs_run=len(histories[j]["epoch"]), stop_reason=stop_reason[j], seed=s, seconds=wall / n)
        results.append(make_result(fields, best_rows[j]))
    return results
