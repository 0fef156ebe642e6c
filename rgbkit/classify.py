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
Training is :mod:`rgbkit.train`'s one learner with :class:`ClassificationTask`
(cross-entropy, keep the lowest validation loss) and :meth:`Ensemble.fit`'s
member loop; only the task's pieces differ.

Metrics (RGB is the class one wants to select):

* contamination = share of RC among the stars called RGB, FP / (TP + FP);
* completeness  = share of the true RGB stars called RGB, TP / (TP + FN).

Paper, averaged model: validation 0.4% / 98.0%, independent test 0.9% / 66.2%.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from . import metrics
from .ensemble import PRETRAINED_DIR, Ensemble
from .models.densenet import DenseNet1D, DenseNetConfig, small_config
from .train import MemberResult, TargetScaler, TrainConfig, check_training_data, fit_network

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


@dataclass(kw_only=True)
class ClassTrainResult(MemberResult):
    """A trained classifier member (kept: the lowest validation loss)."""

    best_val_loss: float = math.nan
    best_val_accuracy: float = math.nan


class ClassificationTask:
    """Cross-entropy on class indices; keep the epoch with the lowest validation loss."""

    train_keys = ("train_accuracy",)
    val_keys = ("val_accuracy", "val_contamination", "val_completeness")
    score_key = "val_loss"
    loss_name, selection = "cross_entropy", "lowest validation loss"

    def __init__(self, y_val: np.ndarray):
        self.loss_fn = nn.CrossEntropyLoss()
        self.y_val = y_val

    @staticmethod
    def targets(y) -> torch.Tensor:
        return torch.from_numpy(as_labels(y))

    @staticmethod
    def batch_sums(logits: torch.Tensor, t: torch.Tensor) -> dict:
        return {"train_accuracy": int((logits.argmax(1) == t).sum())}

    def val_metrics(self, logits: torch.Tensor) -> dict:
        pred = logits.argmax(1).numpy()
        return {"val_accuracy": float(np.mean(pred == self.y_val)),
                "val_contamination": metrics.contamination(self.y_val, pred, positive=RGB),
                "val_completeness": metrics.completeness(self.y_val, pred, positive=RGB)}


def train_classifier_member(X_train: np.ndarray, y_train, X_val: np.ndarray, y_val,
                            model_config: DenseNetConfig | None = None, train_config: TrainConfig | None = None,
                            callback: Callable[[int, dict], bool | None] | None = None, progress: bool = True,
                            desc: str = "classifier") -> ClassTrainResult:
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
    mc = _classifier_config(model_config)
    tc = train_config if train_config is not None else default_train_config()
    yt, yv = ClassificationTask.targets(y_train), ClassificationTask.targets(y_val)
    Xt, Xv = check_training_data(X_train, yt, X_val, yv, mc)
    task = ClassificationTask(yv.numpy())
    r = fit_network(Xt, yt, Xv, yv, task, mc, tc, callback, progress, desc)
    return ClassTrainResult(**r.member_fields(tc.seed), best_val_loss=r.best.get("val_loss", math.inf),
                            best_val_accuracy=r.best.get("val_accuracy", math.nan))


def _classifier_config(model_config: DenseNetConfig | None) -> DenseNetConfig:
    return replace(model_config if model_config is not None else small_config(), head="classification", num_classes=2)


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

    # Ensemble.fit does the training; these are the classifier's pieces of it.
    @classmethod
    def _fit_target(cls, target):
        if target not in (None, TARGET):
            raise ValueError(f"a Classifier's target is {TARGET!r}, not {target!r}")
        return TARGET

    _debias_on_fit = False
    _task = ClassificationTask
    _labels = staticmethod(as_labels)
    _train_member = staticmethod(train_classifier_member)
    _member_postfix = staticmethod(lambda r: {"loss": f"{r.best_val_loss:.3f}"})
    _fit_model_config = staticmethod(lambda mc: _classifier_config(mc))
    _default_train_config = staticmethod(lambda target: default_train_config())
    _card_drop = ("seed", "device", "target_transform", "huber_delta")
    _card_tail: dict = {}
    _data_counts = staticmethod(lambda yt, yv: {"n_train_rgb": int(np.sum(yt == RGB)), "n_val_rgb": int(np.sum(yv == RGB))})
    _member_scores = staticmethod(lambda r: {"val_loss": r.best_val_loss, "val_accuracy": r.best_val_accuracy})
    _card_head = staticmethod(lambda target, mc, results: {"kind": "rgbkit.Classifier", "classes": list(CLASS_NAMES)})

    @classmethod
    def _from_results(cls, results, target, card, tc):
        return cls([r.model for r in results], card=card, histories=[r.history for r in results], device=tc.device)

    def predict(self, X, batch_size: int = 1024, method: str = "packed", progress: bool = False) -> ClassPrediction:
        """Averaged P(RGB) for preprocessed spectra ``(n, 64, 64)`` float32.

        ``method``: as for :meth:`Ensemble.predict`; the same numbers either way.
        """
        from tqdm.auto import tqdm

        method, batch_size, net = self._method(method, batch_size)
        Xt = self._inputs(X)
        out = []
        with torch.inference_mode():
            for i in tqdm(range(0, len(Xt), batch_size), disable=not progress, desc="classify"):
                xb = Xt[i:i + batch_size].to(self.device)
                # members' softmax probabilities, averaged (the paper's model averaging)
                out.append(torch.softmax(self._forward_z(xb, method, net).float(), 2)[:, :, RGB].cpu())
        members = torch.cat(out, 1).double().numpy() if out else np.empty((len(self), 0))
        std = members.std(0, ddof=1) if len(self) > 1 else np.zeros(members.shape[1])
        return ClassPrediction(p_rgb=members.mean(0), p_rgb_std=std, members=members)

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
