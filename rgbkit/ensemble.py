"""Ensembles of DenseNet-BC regressors: train, save, load, predict mean and spread.

Why ~500 lines in one module: fit, evaluate/calibrate and predict (loop or
packed) are the three halves of one class; the folder format and its checks
live in :mod:`rgbkit.model_folder`, training in :mod:`rgbkit.train`.

Model averaging as in the paper (Section 4.2): N members trained on the same
split with different seeds; the prediction is the members' mean and the
uncertainty their standard deviation (optionally scaled by a factor fitted
on the validation split so the +-1 sigma interval covers 68%).

A model on disk is a folder::

    card.json               architecture, preprocessing, target, units, data
                            hash/size/split, per-member epochs and metrics,
                            library and format versions, date, file hashes
    member_00.safetensors   one file of weights per member (never a pickle)
    ...
    history.json            per-epoch training curves of every member

:meth:`Ensemble.load` checks all of it and raises :class:`ModelFormatError`
naming the folder and the reason.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from . import metrics
from .config import PRETRAINED_DIR
from .model_folder import (CARD, CARD_HASH, HISTORY, MODEL_FORMAT_VERSION, ModelFormatError, card_digest,
                           library_version, read_folder, write_folder)
from .models.densenet import DenseNet1D, DenseNetConfig, small_config
from .precision import resolve_precision
from .train import (DEFAULT_EPOCHS, RegressionTask, TargetScaler, TrainConfig, resolve_device, split_train_val, train_member,
                    train_members)

__all__ = ["Ensemble", "Prediction", "predict_rows", "ModelFormatError", "MODEL_FORMAT_VERSION", "UNITS",
           "load_pretrained", "data_hash", "PRETRAINED_DIR"]

UNITS = {"age": "Gyr", "mass": "Msun"}
PACKED_BATCH = 256
"""Largest batch of one packed (all-members) forward pass in :meth:`Ensemble.predict`."""
PACKED_ROWS = 192
"""Member-spectra per packed pass on a CPU (batch = this / members, 32-256): the activations of
about this many stay in a core's cache. bfloat16, one thread, shipped network, spectra/s by batch
(benchmarks/results/speed.md section 13): 3 members 4,107 at 64 rows against 3,447 at 128; 10
members 1,215 at 32 against 932 at 128; 5 members flat from 48 to 96."""


@dataclass
class Prediction:
    """Ensemble output in physical units (``units``)."""

    mean: np.ndarray
    """Mean over members, (n,)."""
    std: np.ndarray
    """Spread over members times the card's ``spread_scale`` (1 if uncalibrated), (n,)."""
    std_raw: np.ndarray
    """Plain standard deviation over members, (n,)."""
    members: np.ndarray
    """Every member's prediction, (n_members, n)."""
    target: str
    units: str
    debiased: np.ndarray | None = None
    """Estimate not pulled toward the training mean (:mod:`rgbkit.debias`), (n,); None when
    the card has no de-biasing calibration. Use it for populations (age maps, distributions,
    clusters); use ``mean`` for a single star (smaller error)."""
    debiased_lo: np.ndarray | None = None
    """Lower end of the de-biased value's 68% interval, (n,)."""
    debiased_hi: np.ndarray | None = None
    """Upper end of the de-biased value's 68% interval, (n,)."""


def data_hash(X: np.ndarray, y: np.ndarray | None = None) -> str:
    """sha256 of the float32 inputs (and float64 targets): identifies a training set."""
    h = hashlib.sha256(np.ascontiguousarray(X, dtype=np.float32).tobytes())
    if y is not None:
        h.update(np.ascontiguousarray(y, dtype=np.float64).tobytes())
    return h.hexdigest()


def _float_targets(y) -> np.ndarray:
    return np.asarray(y, dtype=np.float64).ravel()


def predict_rows(model, X: np.ndarray, ok: np.ndarray, batch_size: int | None = None, progress: bool = False):
    """``model.predict`` on the rows of ``X`` where ``ok``, returned for every row (NaN where not ``ok``).

    The one path from preprocessed rows to per-input predictions: used by
    :meth:`Ensemble.predict_spectra` (and so the classifier's), ``rgbkit
    predict`` and the catalog. ``model``: an :class:`Ensemble`, a
    :class:`~rgbkit.classify.Classifier`, or any object whose ``predict(X)``
    returns an object of arrays (its per-row arrays are spread out; other fields kept).
    """
    ok = np.asarray(ok, bool)
    kw = {} if batch_size is None else {"batch_size": batch_size}
    if progress:
        kw["progress"] = True
    p = model.predict(X[ok], **kw)
    n_ok = int(ok.sum())

    def full(a):
        if not isinstance(a, np.ndarray) or a.ndim == 0 or a.shape[-1] != n_ok:
            return a
        out = np.full(a.shape[:-1] + ok.shape, np.nan)
        out[..., ok] = a
        return out

    fields = {k: full(v) for k, v in vars(p).items()}
    return type(p)(**fields)


class Ensemble:
    """N DenseNet-BC members for one target ("age" in Gyr, "mass" in Msun).

    Build one with :meth:`fit` or :meth:`load`; :meth:`predict` takes
    preprocessed ``(n, 64, 64)`` arrays, :meth:`predict_spectra` raw spectra.
    """

    def __init__(self, members: Sequence[DenseNet1D], scaler: TargetScaler, target: str,
                 card: dict | None = None, histories: list[dict] | None = None,
                 device: str | torch.device | None = "auto"):
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = [m.eval() for m in members]
        self.model_config: DenseNetConfig = members[0].config
        self.scaler = scaler
        self.target = target
        self.units = UNITS.get(target, "")
        self.card = card if card is not None else {}
        self.histories = histories or []
        self.spread_scale = float(self.card.get("spread_scale", 1.0))
        self.debias = None
        if self.card.get("debias"):
            from .debias import ForwardRelation

            self.debias = ForwardRelation.from_dict(self.card["debias"])
        self.device = resolve_device(device)
        self.folder: Path | None = None
        self._stacked = None
        self.precision = "float32"
        """Number format of the forward passes: "float32" or "bfloat16" (see :mod:`rgbkit.precision`)."""

    def __len__(self) -> int:
        return len(self.members)

    def __repr__(self) -> str:
        m = self.card.get("metrics", {}).get("val", {})
        extra = f", val M1={m['m1']:.3g} {self.units}, M2={m['m2']:.1f}%" if "m2" in m else ""
        return f"Ensemble(target={self.target!r}, members={len(self)}{extra})"

    @property
    def preprocessing(self) -> dict | None:
        return self.card.get("preprocessing")

    # ------------------------------------------------------------------ training
    @classmethod
    def fit(
        cls,
        X: np.ndarray,
        y: np.ndarray,
        target: str | None = None,
        *,
        n_members: int = 5,
        model_config: DenseNetConfig | None = None,
        train_config: TrainConfig | None = None,
        X_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
        val_fraction: float = 0.2,
        split_seed: int = 0,
        seed: int = 0,
        preprocessing: dict | None = None,
        data_name: str | None = None,
        calibrate: bool = True,
        callback: Callable[[int, int, dict], bool | None] | None = None,
        progress: bool = True,
        packed: bool = False,
    ) -> "Ensemble":
        """Train ``n_members`` networks with seeds ``seed, seed+1, ...``.

        Args:
            X, y: preprocessed spectra ``(n, 64, 64)`` and targets in physical
                units (a classifier: labels). Without ``X_val``/``y_val`` they are split 8:2 at random
                (``val_fraction``, ``split_seed``), as in the paper.
            target: "age" or "mass" (sets units and the default epochs 450/350);
                a :class:`~rgbkit.classify.Classifier` needs none.
            model_config: architecture (default ``small_config()``).
            train_config: per-member settings; its ``seed`` is replaced per member.
            preprocessing: the ``Preprocessor.config`` dict that made ``X``,
                stored in the card so :meth:`predict_spectra` can repeat it.
            data_name: a label for the card (e.g. "demo").
            calibrate: fit the spread scale on the validation split (the
                coverage before and after goes in the card either way).
            callback: ``callback(member, epoch, history)`` after every epoch;
                return True to stop: the current member keeps its best weights
                and no further members are trained.
            packed: train all members at once as one network
                (:func:`rgbkit.packed_train.train_members_packed`: each its own
                seed, data order and best epoch; faster on a CPU). The
                callback then comes for every member after every epoch and
                True stops all members.
        """
        if n_members < 1:
            raise ValueError(f"n_members must be >= 1, got {n_members}")
        target = cls._fit_target(target)
        mc = cls._fit_model_config(model_config)
        tc = train_config if train_config is not None else cls._default_train_config(target)
        Xt, yt, Xv, yv, split = split_train_val(X, y, X_val, y_val, val_fraction, split_seed, cls._labels)
        if packed:
            from .packed_train import train_members_packed

            results = train_members_packed(Xt, yt, Xv, yv, [seed + i for i in range(n_members)], mc, tc,
                                           callback=callback, progress=progress, desc=f"{target} ensemble")
        else:
            results = train_members(lambda c, cb, desc: cls._train_member(Xt, yt, Xv, yv, mc, c, callback=cb,
                                                                          progress=progress, desc=desc),
                                    n_members, tc, seed, callback, progress, desc=f"{target} ensemble",
                                    postfix=cls._member_postfix)
        card = {
            **cls._card_head(target, mc, results),
            "training": {**{k: v for k, v in tc.to_dict().items() if k not in cls._card_drop},
                         "loss": cls._task.loss_name, "optimizer": "adam", "selection": cls._task.selection,
                         "members_packed": bool(packed),
                         "precision_used": resolve_precision(tc.precision, resolve_device(tc.device))},
            "preprocessing": preprocessing,
            "data": {"name": data_name, "sha256": data_hash(Xt, yt), "n_train": int(len(Xt)), "n_val": int(len(Xv)),
                     **cls._data_counts(yt, yv), "val_sha256": data_hash(Xv, yv), "split": split},
            "members": [{"seed": r.seed, "best_epoch": r.best_epoch, "epochs_run": r.epochs_run,
                         "stop_reason": r.stop_reason, **cls._member_scores(r), "train_seconds": round(r.seconds, 1)}
                        for r in results],
            **cls._card_tail,
        }
        model = cls._from_results(results, target, card, tc)
        if calibrate and cls._debias_on_fit:
            try:  # de-biased estimates for every ensemble trained with a validation split (issue 12)
                model.calibrate_debias(Xv, yv)
            except ValueError:  # fewer validation stars than its bins need: no de-biased column
                pass
        model.evaluate(Xv, yv, calibrate=calibrate)
        return model

    # What a subclass (the classifier) changes in fit: the task's pieces.
    _task = RegressionTask
    _debias_on_fit = True  # regression: fit rgbkit.debias on validation (the classifier has no such thing)
    _labels = staticmethod(_float_targets)
    _train_member = staticmethod(train_member)
    _member_postfix = staticmethod(lambda r: {"M2": f"{r.best_val_m2:.2f}%"})
    _fit_model_config = staticmethod(lambda mc: mc if mc is not None else small_config())
    _default_train_config = staticmethod(lambda target: TrainConfig(epochs=DEFAULT_EPOCHS.get(target, 450)))
    _card_drop = ("seed", "device")
    _card_tail = {"spread_scale": 1.0}
    _data_counts = staticmethod(lambda yt, yv: {})
    _member_scores = staticmethod(lambda r: {"val_m1": r.best_val_m1, "val_m2": r.best_val_m2})

    @classmethod
    def _fit_target(cls, target):
        if target is None:
            raise TypeError("Ensemble.fit needs a target: 'age' or 'mass'")
        return target

    @staticmethod
    def _card_head(target, mc, results) -> dict:
        return {"format_version": MODEL_FORMAT_VERSION, "kind": "rgbkit.Ensemble", "target": target,
                "units": UNITS.get(target, ""), "architecture": mc.to_dict(),
                "target_scaler": results[0].scaler.to_dict()}

    @classmethod
    def _from_results(cls, results, target, card, tc):
        return cls([r.model for r in results], results[0].scaler, target, card,
                   [r.history for r in results], device=tc.device)

    def evaluate(self, X_val: np.ndarray, y_val: np.ndarray, calibrate: bool = False,
                 split: str = "val", y_true=None) -> dict:
        """Ensemble and member M1/M2 and 68% coverage on a labelled set; stored in ``card['metrics'][split]``.

        With ``calibrate=True`` the spread scale is fitted here and applied to
        later predictions (coverage before/after are both recorded): only on
        the validation split. ``split="test"`` for numbers that chose nothing.
        With a de-biasing calibration in the card, its M2, log-log slope and
        interval coverage are added; ``y_true`` (noise-free truth of
        simulated stars) adds the slopes against the truth.
        """
        if calibrate and split != "val":
            raise ValueError("calibrate only on the validation split")
        y_val = np.asarray(y_val, dtype=np.float64).ravel()
        p = self.predict(X_val)
        mem_m1 = [metrics.m1(y_val, q) for q in p.members]
        mem_m2 = [metrics.m2(y_val, q) for q in p.members]
        res = {"n": int(len(y_val)), "m1": metrics.m1(y_val, p.mean), "m2": metrics.m2(y_val, p.mean),
               "member_m1": mem_m1, "member_m2": mem_m2,
               "member_m1_range": [min(mem_m1), max(mem_m1)], "member_m2_range": [min(mem_m2), max(mem_m2)],
               "median_fractional_spread": float(np.median(p.std_raw / p.mean))}
        if len(self) > 1 and np.all(p.std_raw > 0):
            scale = metrics.fit_spread_scale(y_val, p.mean, p.std_raw)
            res["coverage_68_raw"] = metrics.coverage(y_val, p.mean, p.std_raw)
            res["spread_scale_fit"] = scale
            res["coverage_68_calibrated"] = metrics.coverage(y_val, p.mean, p.std_raw * scale)
            if calibrate:
                self.spread_scale = scale
                self.card["spread_scale"] = scale
        res["coverage_68"] = metrics.coverage(y_val, p.mean, p.std_raw * self.spread_scale)
        if p.debiased is not None:
            from .debias import log_slope

            res["debiased_m1"] = metrics.m1(y_val, p.debiased)
            res["debiased_m2"] = metrics.m2(y_val, p.debiased)
            res["debiased_coverage_68"] = float(np.mean((y_val >= p.debiased_lo) & (y_val <= p.debiased_hi)))
            res["log_slope"] = log_slope(y_val, p.mean)
            res["debiased_log_slope"] = log_slope(y_val, p.debiased)
            if y_true is not None:
                yt = np.asarray(y_true, dtype=np.float64).ravel()
                res["log_slope_vs_truth"] = log_slope(yt, p.mean)
                res["debiased_log_slope_vs_truth"] = log_slope(yt, p.debiased)
        self.card.setdefault("metrics", {})[split] = res
        return res

    # ------------------------------------------------------------------ inference
    def _stack(self):
        """Members' weights stacked for one vmapped forward pass."""
        if self._stacked is None:
            import copy

            from torch.func import stack_module_state

            params, buffers = stack_module_state([m.to(self.device) for m in self.members])
            base = copy.deepcopy(self.members[0]).to("meta")
            self._stacked = (params, buffers, base)
        return self._stacked

    def packed_network(self):
        """All members as one fused :class:`~rgbkit.models.packed.PackedDenseNet1D` on ``self.device``.

        Built on first use and rebuilt when a member or its weights change;
        None when the members cannot be packed (not plain DenseNet1D networks).
        """
        from .models.packed import PackedDenseNet1D

        if not all(type(m) is DenseNet1D for m in self.members):
            return None
        # weights' version counters (in-place edits and load_state_dict bump them); parameters() and
        # buffers() rather than state_dict(), which rebuilt a dict per batch (~3 ms each in the catalog)
        key = (str(self.device),) + tuple(
            (id(m), sum(t._version for t in m.parameters()) + sum(t._version for t in m.buffers()))
            for m in self.members)
        cached = getattr(self, "_packed", None)
        if cached is None or cached[0] != key:
            try:
                net = PackedDenseNet1D.from_members(self.members).fuse().to(self.device)
            except ValueError:  # e.g. members already fused or of different architectures
                net = None
            self._packed = cached = (key, net)
        return cached[1]

    def _forward_z(self, xb: torch.Tensor, method: str, net=None) -> torch.Tensor:
        """(n_members, batch[, classes]) network outputs for one batch (float32 whatever the precision).

        ``net``: the packed network when the caller already holds it (checking that it is
        current costs ~10 ms for ten members, so a batch loop asks once).
        """
        from .precision import autocast

        with autocast(self.precision, self.device):
            return self._forward_members(xb, method, net).float()

    def _forward_members(self, xb: torch.Tensor, method: str, net=None) -> torch.Tensor:
        if method == "packed":
            return (net or self.packed_network())(xb)
        if method == "vmap":
            from torch.func import functional_call, vmap

            params, buffers, base = self._stack()
            return vmap(lambda p, b, x: functional_call(base, (p, b), (x,)),
                        in_dims=(0, 0, None))(params, buffers, xb)
        return torch.stack([m(xb) for m in self.members])

    def _inputs(self, X) -> torch.Tensor:
        """Checked network inputs (n, channels, length) as a tensor; members moved to the device in eval mode."""
        c = self.model_config
        X = np.asarray(X)
        if X.ndim == 2 and X.shape[1] == c.in_channels * c.length:
            X = X.reshape(len(X), c.in_channels, c.length)
        if X.ndim != 3 or X.shape[1:] != (c.in_channels, c.length):
            raise ValueError(f"expected preprocessed spectra (n, {c.in_channels}, {c.length}), got {X.shape}")
        for m in self.members:
            m.to(self.device).eval()
        return torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))

    def _method(self, method: str, batch_size: int) -> tuple[str, int, object]:
        """The forward method really used ("packed" falls back to "loop"), its batch size
        and the packed network (None for the other methods)."""
        if method not in ("packed", "loop", "vmap"):
            raise ValueError(f"method must be 'packed', 'loop' or 'vmap', got {method!r}")
        if method == "packed":
            net = self.packed_network()
            if net is None:
                return "loop", batch_size, None
            # a few hundred spectra per call keep the N members' activations in cache
            rows = PACKED_BATCH
            if torch.device(self.device).type == "cpu":
                rows = min(rows, max(32, PACKED_ROWS // len(self.members)))
            return method, min(batch_size, rows), net
        return method, batch_size, None

    def predict(self, X: np.ndarray, batch_size: int = 1024, method: str = "packed",
                progress: bool = False) -> Prediction:
        """Mean and spread over members for preprocessed spectra ``(n, 64, 64)`` float32.

        ``method``: "packed" (all members as one fused network, see
        :meth:`packed_network`; "loop" when the members cannot be packed),
        "loop" (one member after another per batch) or "vmap" (members
        stacked with ``torch.func``); all give the same numbers to float32 rounding.
        """
        from tqdm.auto import tqdm

        method, batch_size, net = self._method(method, batch_size)
        Xt = self._inputs(X)
        out = []
        with torch.inference_mode():
            for i in tqdm(range(0, len(Xt), batch_size), disable=not progress, desc="predict"):
                out.append(self._forward_z(Xt[i:i + batch_size].to(self.device), method, net).float().cpu())
        z = torch.cat(out, 1).double().numpy() if out else np.empty((len(self), 0))
        members = self.scaler.inverse(z)
        mean = members.mean(0)
        std_raw = members.std(0, ddof=1) if len(self) > 1 else np.zeros_like(mean)
        p = Prediction(mean=mean, std=std_raw * self.spread_scale, std_raw=std_raw,
                       members=members, target=self.target, units=self.units)
        if self.debias is not None:
            p.debiased, p.debiased_lo, p.debiased_hi = self.debias.apply(mean, std_raw)
        return p

    def calibrate_debias(self, X_val: np.ndarray, y_val: np.ndarray, y_err=None, groups=None,
                         fitted_on: str = "validation", **kw):
        """Fit the de-biasing (:func:`rgbkit.debias.fit_forward`) on stars that chose nothing else; stored in the card.

        ``y_err``: the labels' uncertainties (corrects for their noise, see
        :func:`~rgbkit.debias.fit_forward`); ``groups``: a kind of star per row
        (e.g. [Fe/H] x log g terciles) for the shared-error term; ``fitted_on``: which
        stars these are, as the card will say. Returns the fitted relation.
        """
        from .debias import fit_forward

        p = self.predict(X_val)
        self.debias = fit_forward(y_val, p.mean, p.std_raw, y_err, groups=groups, **kw)
        self.debias.fitted_on = fitted_on
        self.card["debias"] = self.debias.to_dict()
        return self.debias

    def predict_spectra(self, spectra, batch_size: int = 1024, progress: bool = False):
        """Preprocess :class:`~rgbkit.spectra.Spectrum` objects with the card's settings, then predict.

        Returns ``(prediction, prep)``: ``prediction`` has one row per input
        spectrum in input order, NaN where the preprocessing dropped it;
        ``prep`` is the :class:`rgbkit.preprocess.PreprocessResult` (``ok``,
        ``flags`` and ``reasons`` say why a row was dropped).
        """
        from .preprocess import Preprocessor

        if self.preprocessing is None:
            raise ValueError(f"{self!r} has no preprocessing settings in its card; "
                             "preprocess the spectra yourself and call predict()")
        prep = Preprocessor.from_config(self.preprocessing).run_spectra(list(spectra), progress=progress)
        return predict_rows(self, prep.X, prep.ok, batch_size=batch_size), prep

    # ------------------------------------------------------------------ disk
    def save(self, folder: str | Path, overwrite: bool = False) -> Path:
        """Write the folder (card, one safetensors file per member, histories): :mod:`rgbkit.model_folder`."""
        return write_folder(self, folder, overwrite=overwrite)

    @classmethod
    def load(cls, folder: str | Path, target: str | None = None,
             device: str | torch.device | None = "auto") -> "Ensemble":
        """Read and check a model folder (:func:`rgbkit.model_folder.read_folder`: raises
        :class:`ModelFormatError` naming the folder and the reason)."""
        members, scaler, card, histories = read_folder(folder, target)
        ens = cls(members, scaler, card["target"], card, histories, device=device)
        ens.folder = Path(folder)
        return ens


def load_pretrained(target: str = "age", device: str | torch.device | None = "auto") -> Ensemble:
    """The ensemble shipped with rgbkit for ``target`` ("age" or "mass"), trained on the demo data."""
    if target not in UNITS:
        raise ValueError(f"no pretrained model for target {target!r}; choose from {sorted(UNITS)}")
    return Ensemble.load(PRETRAINED_DIR / target, target=target, device=device)
