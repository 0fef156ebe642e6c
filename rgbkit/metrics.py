"""Metrics of the paper and of the ensembles' uncertainties.

M1 = mean |pred - true| (units of the target); M2 = mean |pred - true| / true,
in percent (Section 4.1). Coverage: the fraction of stars whose truth lies
within the ensemble's mean +- z std; a calibrated 68% interval covers 68.3%.
Contamination and completeness are for the RGB/RC classifier.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["m1", "m2", "coverage", "fit_spread_scale", "contamination", "completeness", "ONE_SIGMA"]

ONE_SIGMA = math.erf(1 / math.sqrt(2))  # 0.6827: Gaussian mass within +-1 sigma


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(y_pred, dtype=np.float64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"true and predicted lengths differ: {t.size} vs {p.size}")
    if t.size == 0:
        raise ValueError("empty arrays")
    return t, p


def m1(y_true, y_pred) -> float:
    """Mean absolute error (Gyr for age, Msun for mass)."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(p - t)))


def m2(y_true, y_pred) -> float:
    """Mean absolute percentage error, in percent."""
    t, p = _pair(y_true, y_pred)
    if np.any(t == 0):
        raise ValueError("M2 is undefined for a true value of 0")
    return float(100.0 * np.mean(np.abs(p - t) / np.abs(t)))


def coverage(y_true, mean, std, z: float = 1.0) -> float:
    """Fraction of stars with |true - mean| <= z * std (z = 1: the 68% interval)."""
    t, m = _pair(y_true, mean)
    s = np.asarray(std, dtype=np.float64).ravel()
    if s.shape != t.shape:
        raise ValueError(f"std has length {s.size}, expected {t.size}")
    return float(np.mean(np.abs(t - m) <= z * s))


def fit_spread_scale(y_true, mean, std, level: float = ONE_SIGMA) -> float:
    """Factor s such that mean +- s * std covers ``level`` of the stars (fit on validation).

    It is the ``level`` quantile of |true - mean| / std, so after scaling the
    spread by s the interval's coverage on these stars equals ``level``.
    """
    t, m = _pair(y_true, mean)
    s = np.asarray(std, dtype=np.float64).ravel()
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if np.any(s <= 0):
        raise ValueError("spreads must be positive to calibrate")
    return float(np.quantile(np.abs(t - m) / s, level))


def _confusion(y_true, y_pred, positive) -> tuple[int, int, int]:
    t = np.asarray(y_true).ravel()
    p = np.asarray(y_pred).ravel()
    if t.shape != p.shape:
        raise ValueError(f"true and predicted lengths differ: {t.size} vs {p.size}")
    tp = int(np.sum((p == positive) & (t == positive)))
    fp = int(np.sum((p == positive) & (t != positive)))
    fn = int(np.sum((p != positive) & (t == positive)))
    return tp, fp, fn


def contamination(y_true, y_pred, positive=1) -> float:
    """Fraction of stars selected as ``positive`` that are not: FP / (TP + FP)."""
    tp, fp, _ = _confusion(y_true, y_pred, positive)
    return float(fp / (tp + fp)) if tp + fp else math.nan


def completeness(y_true, y_pred, positive=1) -> float:
    """Fraction of true ``positive`` stars that are selected: TP / (TP + FN)."""
    tp, _, fn = _confusion(y_true, y_pred, positive)
    return float(tp / (tp + fn)) if tp + fn else math.nan
