"""Which models a catalog run uses and how a worker process finds them again.

A :class:`ModelRef` (class path + folder) travels to pool and Dask workers,
which load each model once per process (safetensors, never pickles).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["ModelRef", "default_models", "fast_model", "label_range", "resolve", "reference"]


@dataclass
class ModelRef:
    """How a worker finds a model: a class with ``load(folder)`` and a folder."""

    cls: str
    folder: str

    def load(self):
        import importlib

        mod, _, name = self.cls.rpartition(".")
        return getattr(importlib.import_module(mod), name).load(self.folder)


_LOADED: dict = {}


def resolve(model):
    """A model object from an object, a ModelRef or None (cached per process)."""
    if model is None or not isinstance(model, ModelRef):
        return model
    key = (model.cls, model.folder)
    if key not in _LOADED:
        _LOADED[key] = model.load()
    return _LOADED[key]


def reference(model, spare: Path, name: str):
    """A ModelRef for a loaded model so other processes can load it too (None: not possible)."""
    if model is None or isinstance(model, ModelRef):
        return model
    cls = f"{type(model).__module__}.{type(model).__qualname__}"
    if not hasattr(type(model), "load"):
        return None
    folder = getattr(model, "folder", None)
    if folder is None and hasattr(model, "save"):
        folder = spare / name
        if not (folder / "card.json").exists():
            model.save(folder, overwrite=True)
    return None if folder is None else ModelRef(cls, str(folder))


def default_models() -> dict:
    """The shipped age and mass ensembles and RGB/RC classifier, as references (absent ones None)."""
    out = {"age": None, "mass": None, "classifier": None}
    from ..config import PRETRAINED_DIR  # not ..ensemble: a pool run's parent never imports torch

    for target in ("age", "mass"):
        if (PRETRAINED_DIR / target / "card.json").exists():
            out[target] = ModelRef("rgbkit.ensemble.Ensemble", str(PRETRAINED_DIR / target))
    for name in ("classifier", "rgbrc"):
        if (PRETRAINED_DIR / name / "card.json").exists():
            out["classifier"] = ModelRef("rgbkit.classify.Classifier", str(PRETRAINED_DIR / name))
    return out


def label_range(model) -> tuple[float, float] | None:
    card = getattr(model, "card", None) or {}
    for where in (card.get("data") or {}, card):
        for key in ("label_range", "y_range"):
            r = where.get(key)
            if r is not None and len(r) == 2:
                return float(r[0]), float(r[1])
    # No stored range: the target scaler's mean +- 3 std (in log space for
    # log targets) stands for the training labels' support.
    sc = getattr(model, "scaler", None)
    if sc is None or getattr(model, "target", None) not in ("age", "mass"):
        return None
    lo, hi = sc.mean - 3 * sc.std, sc.mean + 3 * sc.std
    return (float(np.exp(lo)), float(np.exp(hi))) if sc.kind == "log" else (float(lo), float(hi))


_FAST: dict = {}


def fast_model(model, precision: str = "float32"):
    """The fastest form of an ensemble for scoring, computing in ``precision``.

    Its members packed into one fused network
    (:meth:`~rgbkit.ensemble.Ensemble.packed_network`, which ``predict`` then
    uses; same numbers to float32 rounding), else each member fused. A
    shallow copy (cached), so the caller's object keeps its own settings;
    ``model`` itself when it is not a DenseNet ensemble. ``precision``:
    "float32" or "bfloat16" (:func:`rgbkit.precision.resolve_precision`).
    """
    members = getattr(model, "members", None)
    if not members or not hasattr(model, "precision"):
        return model
    key = (id(model), precision)
    if key not in _FAST or _FAST[key][0] is not model:
        import copy

        packed = getattr(model, "packed_network", None)
        packed = packed is not None and packed() is not None  # built before the copy: shared, not rebuilt
        fast = copy.copy(model)
        fast.precision = precision
        if not packed and all(hasattr(m, "fused") for m in members):
            fast.members = [m.fused() for m in members]
            fast._stacked = None
        _FAST[key] = (model, fast)
    return _FAST[key][1]
