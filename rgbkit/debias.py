"""Estimates not pulled toward the training mean: invert the ensemble's forward relation.

Why: a network trained to minimise its error on noisy labels answers, for a
star it cannot place well, something nearer the middle of the training
labels. On the demo test stars the median predicted/true age runs from 1.46
(0-2 Gyr) to 0.69 (10-14 Gyr); log(predicted) against log(true) has slope
~0.6. That mean is the best single-star guess (lowest M1/M2) but every
population made of it (an age map, an age distribution, a cluster median)
is compressed toward the middle.

How (fitted on stars that chose nothing else, stored in the model card: the
shipped ensembles use :func:`rgbkit.datasets.load_calibration`, your own
training the validation split):

1. the forward relation f: the median of log(predicted) among stars whose
   label is log t, as a monotone piecewise-linear function of log t
   (medians in label-quantile bins, pooled to be increasing, extended
   linearly past the end bins with the overall slope);
2. the de-biased estimate of a star is ``exp(f^-1(log predicted))``. Because
   f is monotone, a star of true age t has half its predictions above f(t)
   and half below, so half its de-biased estimates lie above t: the median
   per true age is t again (slope ~1), at the price of a larger scatter
   (the noise is stretched by 1/f');
3. its 68% interval maps the forward band: ``f^-1(log pred -+ w)`` with the
   band's half-width ``w = sqrt(a^2 + (k s)^2)``, ``s`` the ensemble's
   relative spread; ``a`` and ``k`` are fitted with f (the shape by
   maximum likelihood of ``log pred - f(log label)``, the scale so that 68%
   of the calibration stars fall inside), so the interval covers the label when
   the label's forward band holds the prediction. Why the floor ``a``: a
   spread from three members rests on two degrees of freedom, so a star whose
   members happen to agree gets a band far too narrow (on validation, the
   fifth of stars with the smallest spread fell inside ``k s`` 32% of the
   time, not 68%); with the floor each fifth is covered 64-71% (test: 65-73%).

Dividing the training-label prior out (the other common fix) needs a
likelihood per star; the ensemble gives a point and a spread, and the
forward relation is measured directly, so it is the one used here.

Which to use: the mean (``Prediction.mean``) for one star (smaller error);
the de-biased value (``Prediction.debiased``) for anything built from many
stars: age maps, distributions, trends, and the cluster likelihood in
:mod:`rgbkit.clusters`, which uses f itself.

The calibration uses the catalog labels (what a user with real data has).
Their own noise flattens the measured f (regression dilution): binned by
noisy label, a bin holds stars from a wider range of true values. With the
labels' uncertainties, each star's label is replaced by its expected true
value given the label: the population of true log labels is deconvolved
from the noisy ones (a 3-component Gaussian mixture, extreme deconvolution,
Bovy et al. 2011) and each star gets its posterior mean (regression
calibration). Why not the linear shrinkage used before (knots moved to
``mu + lam (x - mu)``): it assumes a Gaussian population and one noise
level; on four independent simulated sets of ~4,850 stars each, fitted
on one and checked on the others, it left the median log prediction per
true-age bin off by 0.088 rms (+0.13 at 0-2 Gyr, -0.14 at 10-14), the
deconvolution by 0.030 (fitting on the true ages: 0.024);
benchmarks/results/debias_calibration.md.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["ForwardRelation", "fit_forward", "deconvolve", "posterior_mean", "log_slope", "bias_table", "ONE_SIGMA"]

ONE_SIGMA = 0.6826894921370859
MIN_SLOPE = 0.1
"""Smallest slope allowed in f (keeps f^-1 finite where the network hardly responds)."""


@dataclass
class ForwardRelation:
    """Monotone median relation log(pred) = f(log label), its inverse, and the interval width.

    knots_x, knots_y: natural-log label and prediction at the knots (increasing).
    slope_lo, slope_hi: slopes used below the first and above the last knot.
    interval_k: the forward band's half-width in units of the relative spread.
    sigma_floor: the band's half-width (natural log) for a star whose members agree exactly.
    label_min, label_max: range of the calibration labels (physical units);
        de-biased values are clipped to [label_min / 2, 2 label_max].
    """

    knots_x: list
    knots_y: list
    slope_lo: float
    slope_hi: float
    interval_k: float
    label_min: float
    label_max: float
    n: int = 0
    fitted_on: str = "validation"
    method: str = "forward-relation inversion (median log prediction per label bin, monotone)"
    pop_mean: float = float("nan")
    """Mean of log(pred) over the calibration stars (the cluster outlier term)."""
    pop_std: float = float("nan")
    """Standard deviation of log(pred) over the calibration stars."""
    label_reliability: float = 1.0
    """var(true log label) / var(log label) as deconvolved from the labels' errors (1: not corrected).
    Cards written before 2026-12-02 (evening) used it to move the knots linearly; now the knots sit at the
    stars' expected true labels (:func:`deconvolve`) and this is for information."""
    sigma_floor: float = 0.0
    """``a`` of the band's half-width ``sqrt(a^2 + (interval_k x relative spread)^2)`` (0: proportional)."""
    sys_sigma: float = 0.0
    """Shift of f between kinds of star (rms of the median residual about f in groups of
    [Fe/H] and log g): an error shared by stars of one kind, e.g. a cluster's members."""

    # ------------------------------------------------------------------ maps
    def forward(self, log_t):
        """f(log t): the median log prediction for stars whose label is t."""
        x, y = np.asarray(self.knots_x), np.asarray(self.knots_y)
        t = np.asarray(log_t, dtype=np.float64)
        out = np.interp(t, x, y)
        out = np.where(t < x[0], y[0] + self.slope_lo * (t - x[0]), out)
        return np.where(t > x[-1], y[-1] + self.slope_hi * (t - x[-1]), out)

    def inverse(self, log_p):
        """f^-1(log p), clipped to the label range widened by a factor 2 each way."""
        x, y = np.asarray(self.knots_x), np.asarray(self.knots_y)
        p = np.asarray(log_p, dtype=np.float64)
        out = np.interp(p, y, x)
        out = np.where(p < y[0], x[0] + (p - y[0]) / self.slope_lo, out)
        out = np.where(p > y[-1], x[-1] + (p - y[-1]) / self.slope_hi, out)
        return np.clip(out, np.log(self.label_min / 2), np.log(2 * self.label_max))

    def apply(self, mean, std_raw):
        """De-biased value and its 68% interval (lo, hi), physical units, from the ensemble mean and raw spread."""
        m = np.asarray(mean, dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            lm = np.log(m)
            s = self.forward_sigma(m, std_raw)
            return np.exp(self.inverse(lm)), np.exp(self.inverse(lm - s)), np.exp(self.inverse(lm + s))

    def forward_sigma(self, mean, std_raw):
        """Per-star half-width (natural log) of the forward band: ``sqrt(sigma_floor^2 + (interval_k x rel. spread)^2)``."""
        with np.errstate(invalid="ignore", divide="ignore"):
            rs = np.asarray(std_raw, dtype=np.float64) / np.asarray(mean, dtype=np.float64)
        return np.hypot(self.sigma_floor, self.interval_k * rs)

    def slope(self) -> float:
        """Least-squares slope of f over its knots (a one-number summary)."""
        return float(np.polyfit(self.knots_x, self.knots_y, 1)[0])

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> "ForwardRelation":
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown ForwardRelation keys: {sorted(unknown)}")
        r = cls(**d)
        x, y = np.asarray(r.knots_x, float), np.asarray(r.knots_y, float)
        if x.size < 2 or x.size != y.size or np.any(np.diff(x) <= 0) or np.any(np.diff(y) <= 0):
            raise ValueError("forward relation knots must be two or more strictly increasing pairs")
        if not (r.slope_lo > 0 and r.slope_hi > 0 and r.interval_k > 0 and 0 < r.label_min < r.label_max):
            raise ValueError("forward relation slopes, interval_k and label range must be positive")
        if not (np.isfinite(r.sigma_floor) and r.sigma_floor >= 0):
            raise ValueError("forward relation sigma_floor must be a finite number >= 0")
        return r


def _pool_adjacent(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted isotonic (non-decreasing) fit of ``y`` (pool adjacent violators)."""
    blocks = [[float(v), float(wt), 1] for v, wt in zip(y, w)]
    out: list[list] = []
    for b in blocks:
        out.append(b)
        while len(out) > 1 and out[-2][0] > out[-1][0]:
            v2, w2, n2 = out.pop()
            v1, w1, n1 = out.pop()
            out.append([(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, n1 + n2])
    return np.concatenate([[v] * n for v, _, n in out])


def fit_forward(label, mean, std_raw, label_err=None, n_bins: int | None = None, level: float = ONE_SIGMA,
                groups=None) -> ForwardRelation:
    """Fit :class:`ForwardRelation` on stars that chose nothing else (a calibration set, or the validation split).

    Args:
        label: catalog labels (physical units, > 0).
        mean, std_raw: the ensemble's mean and raw member spread for those stars.
        label_err: the labels' 1-sigma uncertainties (physical units), or None.
            Given, the relation is corrected for regression dilution: f is
            binned on each star's expected true log label given its noisy one
            (:func:`deconvolve`, :func:`posterior_mean`), not on the label.
            If any usable star's error is missing (NaN), nothing is corrected
            and ``method`` says so.
        n_bins: label-quantile bins; None: 8, up to 12 for 4,800+ stars (400 a bin).
        groups: optional group id per star (e.g. [Fe/H] x log g terciles): sets
            ``sys_sigma``, the count-weighted rms of the groups' median residuals.
    """
    t = np.asarray(label, dtype=np.float64).ravel()
    m = np.asarray(mean, dtype=np.float64).ravel()
    s = np.asarray(std_raw, dtype=np.float64).ravel()
    if not (t.size == m.size == s.size):
        raise ValueError(f"label, mean and std_raw lengths differ: {t.size}, {m.size}, {s.size}")
    ok = np.isfinite(t) & np.isfinite(m) & np.isfinite(s) & (t > 0) & (m > 0) & (s > 0)
    if n_bins is None:
        n_bins = int(np.clip(ok.sum() // 400, 8, 12))
    if ok.sum() < 5 * n_bins:
        raise ValueError(f"need at least {5 * n_bins} usable stars to fit {n_bins} bins, got {int(ok.sum())}")
    lt, lm, rs = np.log(t[ok]), np.log(m[ok]), s[ok] / m[ok]
    x, y = _binned_medians(lt, lm, n_bins)
    overall = max(float(np.polyfit(x, y, 1)[0]), MIN_SLOPE)
    rel = ForwardRelation(knots_x=x.tolist(), knots_y=y.tolist(), slope_lo=overall, slope_hi=overall,
                          interval_k=1.0, label_min=float(t[ok].min()), label_max=float(t[ok].max()),
                          n=int(ok.sum()), pop_mean=float(lm.mean()), pop_std=float(lm.std()))
    # the band's width from the scatter of predictions about f at fixed (noisy) label:
    # the intervals are calibrated against what the user can check them with
    resid = lm - rel.forward(lt)
    rel.sigma_floor, rel.interval_k = band_width(resid, rs, level)
    if groups is not None:
        g = np.asarray(groups).ravel()[ok]
        keys, inv, cnt = np.unique(g, return_inverse=True, return_counts=True)
        med = np.array([np.median(resid[inv == i]) for i in range(len(keys))])
        rel.sys_sigma = float(np.sqrt(np.average(med ** 2, weights=cnt)))
    if label_err is not None:
        e = np.broadcast_to(np.asarray(label_err, dtype=np.float64).ravel(), t.shape)[ok] / t[ok]
        if not np.isfinite(e).all():
            rel.method += "; labels' noise NOT corrected (some label errors missing)"
        elif (e > 0).any():
            mix = deconvolve(lt, e)
            x, y = _binned_medians(posterior_mean(lt, e, mix), lm, n_bins)
            overall = max(float(np.polyfit(x, y, 1)[0]), MIN_SLOPE)
            rel.knots_x, rel.knots_y = x.tolist(), y.tolist()
            rel.slope_lo = rel.slope_hi = overall
            rel.label_reliability = float(np.clip(_mixture_var(mix) / lt.var(), 0.0, 1.0))
            rel.method += "; labels' noise deconvolved (posterior mean true label per star)"
    return rel


def _binned_medians(lx: np.ndarray, ly: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Knots of f: medians of ``ly`` in ``n_bins`` quantile bins of ``lx``, increasing by at least MIN_SLOPE."""
    edges = np.quantile(lx, np.linspace(0, 1, n_bins + 1))
    which = np.clip(np.searchsorted(edges, lx, side="right") - 1, 0, n_bins - 1)
    xs, ys, ws = [], [], []
    for b in range(n_bins):
        sel = which == b
        if sel.sum() >= 3:
            xs.append(np.median(lx[sel]))
            ys.append(np.median(ly[sel]))
            ws.append(sel.sum())
    x, y = np.array(xs), _pool_adjacent(np.array(ys), np.array(ws, float))
    # strictly increasing with at least MIN_SLOPE between knots, so f can be inverted
    for i in range(1, len(y)):
        y[i] = max(y[i], y[i - 1] + MIN_SLOPE * (x[i] - x[i - 1]))
    return x, y


def deconvolve(x, err, k: int = 3, iters: int = 300) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian mixture (weights, means, variances) of the true values behind ``x = true + N(0, err^2)``.

    One-dimensional extreme deconvolution (Bovy, Hogg & Roweis 2011): EM in
    which each star's own noise is added to every component's variance.
    """
    x, e2 = np.asarray(x, dtype=np.float64), np.asarray(err, dtype=np.float64) ** 2
    w, mu, v = np.full(k, 1.0 / k), np.quantile(x, (np.arange(k) + 0.5) / k), np.full(k, x.var() / k)
    for _ in range(iters):
        r, b, cvar = _responsibilities(x, e2, (w, mu, v))
        n = r.sum(0) + 1e-12
        w, mu = n / n.sum(), (r * b).sum(0) / n
        v = np.maximum((r * ((mu[None] - b) ** 2 + cvar)).sum(0) / n, 1e-6 * x.var() + 1e-12)
    return w, mu, v


def _responsibilities(x, e2, mix):
    """Per star and component: membership, conditional mean and variance of the true value."""
    w, mu, v = mix
    tot = v[None] + e2[:, None]
    logp = np.log(w + 1e-300)[None] - 0.5 * np.log(tot) - 0.5 * (x[:, None] - mu[None]) ** 2 / tot
    r = np.exp(logp - logp.max(1, keepdims=True))
    r /= r.sum(1, keepdims=True)
    b = mu[None] + v[None] / tot * (x[:, None] - mu[None])
    return r, b, v[None] - v[None] ** 2 / tot


def posterior_mean(x, err, mix) -> np.ndarray:
    """Expected true value of each star given its noisy ``x``, its ``err`` and the population ``mix``."""
    x = np.asarray(x, dtype=np.float64)
    r, b, _ = _responsibilities(x, np.asarray(err, dtype=np.float64) ** 2, mix)
    return (r * b).sum(1)


def _mixture_var(mix) -> float:
    w, mu, v = mix
    m = float((w * mu).sum())
    return float((w * (v + mu ** 2)).sum() - m * m)


def band_width(resid, rs, level: float = ONE_SIGMA) -> tuple[float, float]:
    """``(a, k)`` of the band half-width ``sqrt(a^2 + (k rs)^2)`` for residuals ``resid`` at relative spreads ``rs``.

    The shape (a : k) by maximum likelihood of ``resid ~ N(0, a^2 + k^2 rs^2)``
    on a grid, then both scaled so that a fraction ``level`` of ``|resid|``
    falls inside (robust to heavy tails, as the quantile alone was before).
    """
    r, s = np.asarray(resid, dtype=np.float64), np.asarray(rs, dtype=np.float64)
    scale = float(np.quantile(np.abs(r), level)) or 1e-3
    rf, sf = r, s
    if r.size > 4000:  # the grid holds 10^4 values per star: fit the shape on a fixed subsample
        pick = np.random.default_rng(0).choice(r.size, 4000, replace=False)
        r, s = r[pick], s[pick]
    a = np.linspace(0.0, 2.0, 81)[:, None, None] * scale
    k = np.linspace(0.0, 6.0, 121)[None, :, None] * scale / max(float(np.median(s)), 1e-6)
    var = a ** 2 + (k * s[None, None, :]) ** 2 + 1e-12
    nll = (np.log(var) + r[None, None, :] ** 2 / var).sum(-1)
    i, j = np.unravel_index(np.argmin(nll), nll.shape)
    a0, k0 = float(a[i, 0, 0]), float(k[0, j, 0])
    if k0 == 0.0:  # the spread says nothing: keep a small share so the band still follows it
        k0 = 1e-3 * scale / max(float(np.median(s)), 1e-6)
    c = float(np.quantile(np.abs(rf) / np.hypot(a0, k0 * sf), level))
    return a0 * c, k0 * c


def log_slope(true, est) -> float:
    """Least-squares slope of log(est) against log(true) (1: no pull toward the mean)."""
    t, e = np.asarray(true, dtype=np.float64).ravel(), np.asarray(est, dtype=np.float64).ravel()
    ok = np.isfinite(t) & np.isfinite(e) & (t > 0) & (e > 0)
    return float(np.polyfit(np.log(t[ok]), np.log(e[ok]), 1)[0])


AGE_BINS = (0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 14.0)


def bias_table(true, estimates: dict, bins=AGE_BINS):
    """Median estimate/true and count per true-value bin, one column per estimate (a DataFrame)."""
    import pandas as pd

    t = np.asarray(true, dtype=np.float64).ravel()
    rows = []
    for lo, hi in zip(bins[:-1], bins[1:]):
        sel = (t >= lo) & (t < hi) if hi != bins[-1] else (t >= lo) & (t <= hi)
        row = {"bin": f"{lo:g}-{hi:g}", "n": int(sel.sum())}
        for name, e in estimates.items():
            e = np.asarray(e, dtype=np.float64).ravel()
            row[name] = float(np.median(e[sel] / t[sel])) if sel.any() else np.nan
        rows.append(row)
    return pd.DataFrame(rows)
