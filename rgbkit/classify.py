"""The RGB/RC classifier of Li, Bu et al. (2022), Section 5.1.

The same DenseNet-BC backbone as the regressors with a 2-class softmax head
(class 0 = RGB, class 1 = RC, as in the paper), cross-entropy loss, Adam with
learning rate 5e-4, up to 150 epochs keeping the epoch with the lowest
validation loss; N members with different seeds whose class probabilities
are averaged ("model averaging").

Reuse: the network is :class:`~rgbkit.models.densenet.DenseNet1D` with
``head="classification"``; the folder format (card.json + one safetensors
file per member + history.json) and its checks are those of
:class:`~rgbkit.ensemble.Ensemble`, which :class:`Classifier` subclasses.
The training loop is written here because :func:`rgbkit.train.train_member`
trains regression heads only; it reuses that module's input checks,
batched inference and :class:`~rgbkit.train.TrainConfig`.

Metrics (RGB is the class one wants to select):

* contamination = share of RC among the stars called RGB, FP / (TP + FP);
* completeness  = share of the true RGB stars called RGB, TP / (TP + FN).

Paper, averaged model: validation 0.4% / 98.0%, independent test 0.9% / 66.2%.
"""
from __future__ import annotations

import copy
import hashlib
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from . import metrics
from .ensemble import PACKED_BATCH, PRETRAINED_DIR, Ensemble, _split, data_hash
from .models.densenet import DenseNet1D, DenseNetConfig, small_config
from .train import TargetScaler, TrainConfig, _as_input, _predict_z, resolve_device

__all__ = ["RGB", "RC", "CLASS_NAMES", "TARGET", "PAPER", "as_labels", "ClassTrainResult", "ClassPrediction",
           "train_classifier_member", "Classifier", "classification_metrics", "threshold_curve",
           "load_pretrained_classifier", "default_train_config"]

RGB, RC = 0, 1
CLASS_NAMES = ("RGB", "RC")
TARGET = "rgb_rc"
PAPER = {"val": {"contamination": 0.004, "completeness": 0.980},
         "test": {"contamination": 0.009, "completeness": 0.662}}
"""The paper's averaged-model numbers (Section 5.1), as fractions."""


def default_train_config(**overrides) -> TrainConfig:
    """The paper's classifier settings: Adam 5e-4, 150 epochs."""
    base = dict(epochs=150, lr=5e-4, batch_size=64)
    base.update(overrides)
    return TrainConfig(**base)


def as_labels(y) -> np.ndarray:
    """Class indices (0 = RGB, 1 = RC) from strings ("RGB"/"RC"), booleans (True = RGB) or 0/1 ints.

    Raises ValueError for anything else (e.g. APOKASC's -1 "unknown" state).
    """
    a = np.asarray(y)
    if a.dtype.kind in "USO":
        s = np.char.upper(np.char.strip(a.astype(str)))
        bad = ~np.isin(s, CLASS_NAMES)
        if bad.any():
            raise ValueError(f"labels must be 'RGB' or 'RC'; got {sorted(set(s[bad].tolist()))[:5]}")
        return np.where(s == "RGB", RGB, RC).astype(np.int64)
    if a.dtype == bool:
        return np.where(a, RGB, RC).astype(np.int64)
    if a.dtype.kind in "iuf":
        if not np.all(np.isin(a, (RGB, RC))):
            raise ValueError(f"integer labels must be 0 (RGB) or 1 (RC); got values {np.unique(a)[:6].tolist()}")
        return a.astype(np.int64)
    raise ValueError(f"cannot read class labels of dtype {a.dtype}")


@dataclass
class ClassTrainResult:
    """A trained classifier member: ``model`` holds the best epoch's weights (on CPU)."""

    model: DenseNet1D
    history: dict[str, list]
    best_epoch: int
    epochs_run: int
    stop_reason: str
    seed: int
    best_val_loss: float = math.nan
    best_val_accuracy: float = math.nan
    seconds: float = 0.0


def train_classifier_member(
    X_train: np.ndarray,
    y_train,
    X_val: np.ndarray,
    y_val,
    model_config: DenseNetConfig | None = None,
    train_config: TrainConfig | None = None,
    callback: Callable[[int, dict], bool | None] | None = None,
    progress: bool = True,
    desc: str = "classifier",
) -> ClassTrainResult:
    """Train one 2-class network; keep the epoch with the lowest validation cross-entropy.

    Args:
        X_train, X_val: preprocessed spectra ``(n, 64, 64)`` float32.
        y_train, y_val: labels, anything :func:`as_labels` reads.
        model_config: architecture; its head is forced to a 2-class classifier
            (default :func:`~rgbkit.models.densenet.small_config`).
        train_config: :func:`default_train_config` (150 epochs, lr 5e-4) by default;
            ``patience`` stops after that many epochs without a lower validation loss.
        callback: ``callback(epoch, history)`` after every epoch; True stops.
    """
    from tqdm.auto import tqdm

    mc = replace(model_config if model_config is not None else small_config(),
                 head="classification", num_classes=2)
    tc = train_config if train_config is not None else default_train_config()
    Xt, Xv = _as_input(X_train, "X_train", mc), _as_input(X_val, "X_val", mc)
    yt, yv = torch.from_numpy(as_labels(y_train)), torch.from_numpy(as_labels(y_val))
    if len(yt) != len(Xt) or len(yv) != len(Xv):
        raise ValueError(f"X/y lengths differ: train {len(Xt)}/{len(yt)}, val {len(Xv)}/{len(yv)}")
    if len(Xt) == 0 or len(Xv) == 0:
        raise ValueError("empty training or validation set")

    device = resolve_device(tc.device)
    torch.manual_seed(tc.seed)
    model = DenseNet1D(mc)
    if getattr(mc, "standardize_input", False):
        model.set_input_scaling(Xt)  # per-pixel mean/spread of the training spectra, as rgbkit.train does
    model = model.to(device)
    gen = torch.Generator().manual_seed(tc.seed)
    opt = torch.optim.Adam(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    schedule = getattr(tc, "lr_schedule", "constant")
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {schedule!r}")
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=tc.epochs, eta_min=tc.lr / 20)
             if schedule == "cosine" else None)
    loss_fn = nn.CrossEntropyLoss()
    Xt_d, yt_d = Xt.to(device), yt.to(device)

    keys = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
            "val_contamination", "val_completeness", "seconds")
    history: dict[str, list] = {k: [] for k in keys}
    best_loss, best_acc, best_epoch, best_state = math.inf, math.nan, 0, None
    stop_reason, since_best = "max_epochs", 0
    t0 = time.perf_counter()
    bar = tqdm(range(1, tc.epochs + 1), desc=desc, disable=not progress, leave=False)
    for epoch in bar:
        te = time.perf_counter()
        model.train()
        perm = torch.randperm(len(Xt), generator=gen).to(device)
        total, correct, count = 0.0, 0, 0
        for i in range(0, len(perm), tc.batch_size):
            idx = perm[i:i + tc.batch_size]
            if len(idx) < 2:  # BatchNorm needs 2+ samples in training mode
                continue
            logits = model(Xt_d[idx])
            loss = loss_fn(logits, yt_d[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            correct += int((logits.argmax(1) == yt_d[idx]).sum())
            count += len(idx)
        if sched is not None:
            sched.step()
        logits_v = _predict_z(model, Xv, tc.eval_batch_size, device)
        val_loss = float(loss_fn(logits_v, yv))
        pred = logits_v.argmax(1).numpy()
        row = (epoch, total / max(count, 1), correct / max(count, 1), val_loss,
               float(np.mean(pred == yv.numpy())),
               metrics.contamination(yv.numpy(), pred, positive=RGB),
               metrics.completeness(yv.numpy(), pred, positive=RGB), time.perf_counter() - te)
        for k, v in zip(keys, row):
            history[k].append(int(v) if k == "epoch" else float(v))
        if val_loss < best_loss:
            best_loss, best_acc, best_epoch, since_best = val_loss, history["val_accuracy"][-1], epoch, 0
            best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
        else:
            since_best += 1
        bar.set_postfix(loss=f"{val_loss:.4f}", acc=f"{history['val_accuracy'][-1]:.3f}", best=best_epoch)
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
    return ClassTrainResult(model=model, history=history, best_epoch=best_epoch,
                            epochs_run=len(history["epoch"]), stop_reason=stop_reason, seed=tc.seed,
                            best_val_loss=best_loss, best_val_accuracy=best_acc,
                            seconds=time.perf_counter() - t0)


@dataclass
class ClassPrediction:
    """Averaged class probabilities."""

    p_rgb: np.ndarray
    """Mean over members of P(RGB), (n,)."""
    p_rgb_std: np.ndarray
    """Spread over members of P(RGB), (n,) (0 for one member)."""
    members: np.ndarray
    """Every member's P(RGB), (n_members, n)."""

    @property
    def p_rc(self) -> np.ndarray:
        return 1.0 - self.p_rgb

    def is_rgb(self, threshold: float = 0.5) -> np.ndarray:
        """True where the averaged P(RGB) >= ``threshold`` (False where NaN)."""
        with np.errstate(invalid="ignore"):
            return self.p_rgb >= threshold

    def labels(self, threshold: float = 0.5) -> np.ndarray:
        """Class indices (0 RGB, 1 RC) at ``threshold``."""
        return np.where(self.is_rgb(threshold), RGB, RC)


def classification_metrics(y_true, p_rgb, threshold: float = 0.5) -> dict:
    """Contamination, completeness, accuracy and counts for P(RGB) at ``threshold``."""
    t = as_labels(y_true)
    p = np.asarray(p_rgb, dtype=np.float64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"labels and probabilities differ in length: {t.size} vs {p.size}")
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    pred = np.where(p >= threshold, RGB, RC)
    eps = 1e-7
    logloss = float(-np.mean(np.where(t == RGB, np.log(np.clip(p, eps, 1)), np.log(np.clip(1 - p, eps, 1)))))
    return {"threshold": float(threshold), "n": int(t.size), "n_rgb": int(np.sum(t == RGB)),
            "n_rc": int(np.sum(t == RC)), "n_called_rgb": int(np.sum(pred == RGB)),
            "contamination": metrics.contamination(t, pred, positive=RGB),
            "completeness": metrics.completeness(t, pred, positive=RGB),
            "accuracy": float(np.mean(pred == t)), "log_loss": logloss}


def threshold_curve(y_true, p_rgb, thresholds=None):
    """Contamination and completeness against the P(RGB) threshold (a pandas DataFrame).

    Default thresholds: 0.02 ... 0.98 in steps of 0.02 plus 0.99, 0.995, 0.999.
    Raising the threshold trades completeness for a lower contamination.
    """
    import pandas as pd

    if thresholds is None:
        thresholds = np.concatenate([np.arange(0.02, 0.99, 0.02), [0.99, 0.995, 0.999]])
    rows = [classification_metrics(y_true, p_rgb, float(th)) for th in np.asarray(thresholds, dtype=np.float64)]
    return pd.DataFrame(rows)[["threshold", "contamination", "completeness", "accuracy", "n_called_rgb"]]


class Classifier(Ensemble):
    """An ensemble of DenseNet-BC RGB/RC classifiers; probabilities averaged over members.

    Saved and loaded like :class:`~rgbkit.ensemble.Ensemble` (same folder,
    card and checks), with ``target = "rgb_rc"``.
    """

    def __init__(self, members, scaler=None, target: str = TARGET, card=None, histories=None, device="auto"):
        # The regression folder format stores a target scaler; a classifier has none: identity.
        super().__init__(members, scaler or TargetScaler("linear", 0.0, 1.0), TARGET, card, histories, device)
        if self.model_config.head != "classification" or self.model_config.num_classes != 2:
            raise ValueError("Classifier members need a 2-class classification head")

    def __repr__(self) -> str:
        m = self.card.get("metrics", {}).get("val", {})
        extra = (f", val contamination={100 * m['contamination']:.1f}%, "
                 f"completeness={100 * m['completeness']:.1f}%") if "completeness" in m else ""
        return f"Classifier(members={len(self)}{extra})"

    @classmethod
    def fit(cls, X, y, *, n_members: int = 5, model_config: DenseNetConfig | None = None,
            train_config: TrainConfig | None = None, X_val=None, y_val=None, val_fraction: float = 0.2,
            split_seed: int = 0, seed: int = 0, preprocessing: dict | None = None,
            data_name: str | None = None, callback=None, progress: bool = True, packed: bool = False,
            **_ignored) -> "Classifier":
        """Train ``n_members`` classifiers with seeds ``seed, seed+1, ...``.

        Without ``X_val``/``y_val`` the data are split 8:2 at random (as in the
        paper). ``callback(member, epoch, history)``: True stops training.
        ``packed``: all members at once as one network (see :meth:`Ensemble.fit`).
        """
        from tqdm.auto import tqdm

        if n_members < 1:
            raise ValueError(f"n_members must be >= 1, got {n_members}")
        mc = replace(model_config if model_config is not None else small_config(),
                     head="classification", num_classes=2)
        tc = train_config if train_config is not None else default_train_config()
        X = np.asarray(X, dtype=np.float32)
        y = as_labels(y)
        if len(X) != len(y):
            raise ValueError(f"X and y lengths differ: {len(X)} vs {len(y)}")
        if (X_val is None) != (y_val is None):
            raise ValueError("give both X_val and y_val, or neither")
        if X_val is None:
            itr, iva = _split(len(X), val_fraction, split_seed)
            Xt, yt, Xv, yv = X[itr], y[itr], X[iva], y[iva]
            split = {"method": "random", "val_fraction": val_fraction, "seed": split_seed,
                     "val_index_sha256": hashlib.sha256(iva.astype(np.int64).tobytes()).hexdigest()}
        else:
            Xt, yt = X, y
            Xv, yv = np.asarray(X_val, dtype=np.float32), as_labels(y_val)
            split = {"method": "given"}
        results: list[ClassTrainResult] = []
        stop = False
        if packed:
            from .packed_train import train_members_packed

            results = train_members_packed(Xt, yt, Xv, yv, [seed + i for i in range(n_members)], mc, tc,
                                           task="classification", callback=callback, progress=progress,
                                           desc="classifier ensemble")
        outer = tqdm(range(0 if packed else n_members), desc="classifier ensemble",
                     disable=not progress or n_members == 1)
        for i in outer:
            cb = None
            if callback is not None:
                def cb(epoch, history, _i=i):
                    nonlocal stop
                    stop = bool(callback(_i, epoch, history))
                    return stop
            r = train_classifier_member(Xt, yt, Xv, yv, mc, replace(tc, seed=seed + i), callback=cb,
                                        progress=progress, desc=f"member {i}")
            results.append(r)
            outer.set_postfix(loss=f"{r.best_val_loss:.3f}")
            if stop:
                break
        outer.close()
        card = {
            "kind": "rgbkit.Classifier",
            "classes": list(CLASS_NAMES),
            "training": {**{k: v for k, v in tc.to_dict().items() if k not in ("seed", "device", "target_transform",
                                                                             "huber_delta")},
                         "loss": "cross_entropy", "optimizer": "adam", "selection": "lowest validation loss",
                         "members_packed": bool(packed)},
            "preprocessing": preprocessing,
            "data": {"name": data_name, "sha256": data_hash(Xt, yt), "n_train": int(len(Xt)),
                     "n_val": int(len(Xv)), "n_train_rgb": int(np.sum(yt == RGB)),
                     "n_val_rgb": int(np.sum(yv == RGB)), "val_sha256": data_hash(Xv, yv), "split": split},
            "members": [{"seed": r.seed, "best_epoch": r.best_epoch, "epochs_run": r.epochs_run,
                         "stop_reason": r.stop_reason, "val_loss": r.best_val_loss,
                         "val_accuracy": r.best_val_accuracy, "train_seconds": round(r.seconds, 1)}
                        for r in results],
        }
        clf = cls([r.model for r in results], card=card, histories=[r.history for r in results], device=tc.device)
        clf.evaluate(Xv, yv, name="val")
        return clf

    def predict(self, X, batch_size: int = 1024, method: str = "packed", progress: bool = False) -> ClassPrediction:
        """Averaged P(RGB) for preprocessed spectra ``(n, 64, 64)`` float32.

        ``method``: "packed" (all members as one fused network) or "loop"; same numbers.
        """
        from tqdm.auto import tqdm

        c = self.model_config
        X = np.asarray(X)
        if X.ndim == 2 and X.shape[1] == c.in_channels * c.length:
            X = X.reshape(len(X), c.in_channels, c.length)
        if X.ndim != 3 or X.shape[1:] != (c.in_channels, c.length):
            raise ValueError(f"expected preprocessed spectra (n, {c.in_channels}, {c.length}), got {X.shape}")
        Xt = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
        net = self.packed_network() if method == "packed" else None
        if net is not None:
            batch_size = min(batch_size, PACKED_BATCH)
        for m in self.members:
            m.to(self.device).eval()
        out = []
        with torch.inference_mode():
            for i in tqdm(range(0, len(Xt), batch_size), disable=not progress, desc="classify"):
                xb = Xt[i:i + batch_size].to(self.device)
                # members' softmax probabilities, averaged (the paper's model averaging)
                logits = net(xb) if net is not None else torch.stack([m(xb) for m in self.members])
                out.append(torch.softmax(logits.float(), 2)[:, :, RGB].cpu())
        members = torch.cat(out, 1).double().numpy() if out else np.empty((len(self), 0))
        std = members.std(0, ddof=1) if len(self) > 1 else np.zeros(members.shape[1])
        return ClassPrediction(p_rgb=members.mean(0), p_rgb_std=std, members=members)

    def predict_spectra(self, spectra, batch_size: int = 1024, progress: bool = False):
        """Preprocess spectra with the card's settings, then classify: ``(prediction, prep)``.

        Rows the preprocessing dropped get NaN probabilities (see ``prep.reasons``).
        """
        from .preprocess import Preprocessor

        if self.preprocessing is None:
            raise ValueError(f"{self!r} has no preprocessing settings in its card; "
                             "preprocess the spectra yourself and call predict()")
        prep = Preprocessor.from_config(self.preprocessing).run_spectra(list(spectra), progress=progress)
        p = self.predict(prep.X[prep.ok], batch_size=batch_size)
        full = np.full((len(self), len(prep.ok)), np.nan)
        full[:, prep.ok] = p.members
        f1 = np.full(len(prep.ok), np.nan)
        f2 = f1.copy()
        f1[prep.ok], f2[prep.ok] = p.p_rgb, p.p_rgb_std
        return ClassPrediction(f1, f2, full), prep

    def is_rgb(self, X, threshold: float = 0.5) -> np.ndarray:
        """Boolean mask of the spectra called RGB (averaged P(RGB) >= threshold)."""
        return self.predict(X).is_rgb(threshold)

    def evaluate(self, X, y, threshold: float = 0.5, name: str = "val", **_ignored) -> dict:
        """Averaged-model and per-member metrics on a labelled set; stored in the card as ``name``."""
        t = as_labels(y)
        p = self.predict(X)
        res = classification_metrics(t, p.p_rgb, threshold)
        per = [classification_metrics(t, q, threshold) for q in p.members]
        res["member_contamination"] = [r["contamination"] for r in per]
        res["member_completeness"] = [r["completeness"] for r in per]
        self.card.setdefault("metrics", {})[name] = res
        return res

    @classmethod
    def load(cls, folder, target: str | None = TARGET, device="auto") -> "Classifier":
        """Read and check a classifier folder (see :meth:`rgbkit.ensemble.Ensemble.load`)."""
        return super().load(folder, target=TARGET, device=device)


def load_pretrained_classifier(device="auto") -> Classifier:
    """The RGB/RC classifier shipped with rgbkit (trained on the demo data, see its card)."""
    return Classifier.load(Path(PRETRAINED_DIR) / "classifier", device=device)
