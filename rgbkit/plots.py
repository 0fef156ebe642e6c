"""HoloViews plots shared by the notebooks and the dashboard.

Why ~480 lines in one module: one small function per paper figure, sharing
style helpers; the plots are independent and read one at a time.

Every figure is a function that takes arrays and returns a HoloViews object,
so a notebook cell and a dashboard tab are one line each. Render with
``hv.render(obj, backend="bokeh")`` or display it directly in a notebook/Panel.
"""
from __future__ import annotations

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401  registers the Bokeh backend and its options
import numpy as np


def raw_vs_denoised(
    wavelength,
    raw,
    denoised,
    title: str = "Raw and denoised spectrum",
    width: int = 800,
    height: int = 300,
    residual_height: int = 150,
) -> hv.Layout:
    """Paper Fig. 9: normalised flux before (blue) and after (orange) wavelet
    denoising, with the residual raw - denoised in a panel below.

    ``wavelength``, ``raw`` and ``denoised`` are 1D arrays of one length, e.g.
    ``res.wavelength``, ``res.stages["normalised"][i]`` and
    ``res.stages["denoised"][i]`` from ``Preprocessor().run(..., keep_stages=True)``.
    """
    wl = np.asarray(wavelength, dtype=np.float64)
    r = np.asarray(raw, dtype=np.float64)
    d = np.asarray(denoised, dtype=np.float64)
    if not (wl.ndim == r.ndim == d.ndim == 1 and wl.size == r.size == d.size):
        raise ValueError(
            f"raw_vs_denoised needs three 1D arrays of one length, got shapes {wl.shape}, {r.shape}, {d.shape}"
        )
    kw = dict(kdims=[hv.Dimension("wavelength", label="Wavelength", unit="Å")])
    flux = hv.Dimension("flux", label="Normalised flux")
    top = hv.Overlay(
        [
            hv.Curve((wl, r), vdims=[flux], label="raw", **kw).opts(color="#1f77b4", line_width=1),
            hv.Curve((wl, d), vdims=[flux], label="denoised", **kw).opts(color="#ff7f0e", line_width=1.5),
        ]
    ).opts(title=title, width=width, height=height, legend_position="top_right", show_grid=True)
    resid = hv.Curve((wl, r - d), vdims=[hv.Dimension("residual", label="raw − denoised")], **kw).opts(
        color="#555555", line_width=1, width=width, height=residual_height, show_grid=True
    )
    zero = hv.HLine(0).opts(color="black", line_dash="dashed", line_width=0.5)
    return (top + resid * zero).cols(1)


def training_curves(history, metric: str = "loss", title: str | None = None):
    """Training and validation curves per epoch (the paper's Figure 10).

    ``history``: one member's dict of per-epoch lists (``rgbkit.train``:
    epoch, train_loss, val_loss, val_m1, val_m2), or a list of such dicts
    (an ensemble's ``Ensemble.histories``: one curve per member).
    ``metric``: "loss" (Huber train and validation), "m1" or "m2"
    (validation). The best epoch (lowest validation M2) is marked per member.
    """
    if metric not in ("loss", "m1", "m2"):
        raise ValueError(f"metric must be 'loss', 'm1' or 'm2', got {metric!r}")
    histories = [history] if isinstance(history, dict) else list(history)
    if not histories or not histories[0].get("epoch"):
        raise ValueError("training_curves needs a non-empty history (dict of per-epoch lists)")
    ylabel = {"loss": "Huber loss", "m1": "validation M1", "m2": "validation M2 (%)"}[metric]
    curves, marks = [], []
    for i, h in enumerate(histories):
        tag = f"member {i}" if len(histories) > 1 else ""
        ep = h["epoch"]
        if metric == "loss":
            curves.append(hv.Curve((ep, h["train_loss"]), "epoch", ylabel, label=f"train {tag}".strip()))
            curves.append(hv.Curve((ep, h["val_loss"]), "epoch", ylabel, label=f"validation {tag}".strip()))
        else:
            curves.append(hv.Curve((ep, h[f"val_{metric}"]), "epoch", ylabel, label=f"validation {tag}".strip()))
        if h.get("val_m2"):
            b = min(range(len(h["val_m2"])), key=h["val_m2"].__getitem__)
            y = h["val_loss"][b] if metric == "loss" else h[f"val_{metric}"][b]
            marks.append((ep[b], y))
    best = hv.Scatter(marks, "epoch", ylabel, label="best epoch").opts(color="black", size=7, marker="x")
    return hv.Overlay(curves + [best]).opts(
        title=title or f"Training curves ({ylabel})", width=600, height=350, legend_position="top_right",
        logy=metric == "loss", show_grid=True)


def pred_vs_true(true, pred, err=None, target: str = "age", units: str | None = None, title: str | None = None,
                 reference: str = "true"):
    """Predicted against reference values with the 1:1 line, M1/M2 in the title (the paper's Figure 11).

    ``err``: optional 1-sigma uncertainties (ensemble spread) drawn as error bars.
    ``reference``: what the x values are, for the axis label ("true", "catalog", "asteroseismic").
    """

    from .metrics import m1, m2

    t = np.asarray(true, dtype=np.float64).ravel()
    p = np.asarray(pred, dtype=np.float64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"true and predicted lengths differ: {t.size} vs {p.size}")
    good = np.isfinite(t) & np.isfinite(p)
    t, p = t[good], p[good]
    units = units if units is not None else {"age": "Gyr", "mass": "Msun"}.get(target, "")
    u = f" ({units})" if units else ""
    xd, yd = hv.Dimension("true", label=f"{reference} {target}{u}"), hv.Dimension("pred", label=f"predicted {target}{u}")
    lo, hi = float(min(t.min(), p.min())), float(max(t.max(), p.max()))
    layers = [hv.Curve([(lo, lo), (hi, hi)], xd, yd).opts(color="grey", line_dash="dashed")]
    if err is not None:
        e = np.asarray(err, dtype=np.float64).ravel()[good]
        # thin and cap-less: hundreds of caps would hide the points
        layers.append(hv.ErrorBars((t, p, e), xd, [yd, "err"]).opts(color="gray", line_alpha=0.25,
                                                                    lower_head=None, upper_head=None))
    layers.append(hv.Scatter((t, p), xd, yd).opts(size=4, alpha=0.5, tools=["hover"]))
    name = title or f"{target}: M1 = {m1(t, p):.3g}{' ' + units if units else ''}, M2 = {m2(t, p):.1f}%"
    return hv.Overlay(layers).opts(title=name, width=450, height=450, show_grid=True)


def sim_vs_observed(comparisons, width: int = 800, height: int = 260, residual_height: int = 120) -> hv.Layout:
    """Observed against simulated spectra, one column per star (e.g. best and worst).

    ``comparisons``: one dict or a list of dicts from
    :func:`rgbkit.simulate.compare_with_observed` (normalised observed,
    simulated-with-noise and noise-free model flux, pixel mask, chi2). Each
    star gets a flux panel (observed black, simulated orange, model blue) and
    a residual panel (observed - model) over the pixels used for chi-square.
    """
    if isinstance(comparisons, dict):
        comparisons = [comparisons]
    panels = []
    for c in comparisons:
        w = np.asarray(c["wavelength"], dtype=np.float64)
        m = np.asarray(c["mask"], dtype=bool)
        title = (f"{c.get('name', '')}  Teff {c['teff']:.0f} K, logg {c['logg']:.2f}, [Fe/H] {c['feh']:+.2f}, "
                 f"SNR {c['snr']:.0f}: reduced chi2 {c['chi2']:.2f}")
        obs = hv.Curve((w[m], c["observed"][m]), "Wavelength (A)", "Normalised flux", label="observed").opts(color="black", line_width=1)
        simc = hv.Curve((w[m], c["simulated"][m]), "Wavelength (A)", "Normalised flux", label="simulated").opts(color="darkorange", line_width=1, alpha=0.8)
        mod = hv.Curve((w[m], c["model"][m]), "Wavelength (A)", "Normalised flux", label="model (noise-free)").opts(color="royalblue", line_width=1)
        top = (obs * simc * mod).opts(title=title, width=width, height=height, legend_position="bottom_right", show_grid=True)
        res = hv.Curve((w[m], (c["observed"] - c["model"])[m]), "Wavelength (A)", "obs - model").opts(
            color="gray", line_width=1, width=width, height=residual_height, show_grid=True)
        panels += [top, res * hv.HLine(0).opts(color="black", line_width=0.5)]
    return hv.Layout(panels).cols(1)


# --------------------------------------------------------------------------- science checks
# HR-diagram maps, density and residual plots, classifier and cluster figures
# (paper Figs. 1, 2, 11, 12, 14, 15 and Table 1).

_UNITS = {"age": "Gyr", "mass": "Msun"}


def _finite_pair(a, b, what: str):
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"{what}: lengths differ ({x.size} vs {y.size})")
    good = np.isfinite(x) & np.isfinite(y)
    if not good.any():
        raise ValueError(f"{what}: no finite pairs to plot")
    return x[good], y[good], good


def _robust_sigma(d) -> float:
    d = np.asarray(d, dtype=np.float64)
    return float(1.4826 * np.median(np.abs(d - np.median(d))))


def hr_map(teff, logg, value, quantity: str = "age", bins=(np.arange(3800, 5601, 100), np.arange(1.5, 4.01, 0.1)),
           min_count: int = 3, statistic: str = "median", title: str | None = None):
    """Teff-logg map of the median ``value`` (age or mass) per bin (the paper's Figure 2).

    Works for labels and for predictions alike. ``bins``: (Teff edges, logg edges)
    or a pair of bin counts; bins with fewer than ``min_count`` stars are blank and
    stars outside the edges are left out (the title counts the stars shown).
    Axes run as in an HR diagram (hot to the left, low log g at the top).
    Returns a ``hv.QuadMesh`` whose value dimension is the per-bin statistic.
    """
    from scipy.stats import binned_statistic_2d

    t = np.asarray(teff, dtype=np.float64).ravel()
    g = np.asarray(logg, dtype=np.float64).ravel()
    v = np.asarray(value, dtype=np.float64).ravel()
    if not (t.shape == g.shape == v.shape):
        raise ValueError(f"hr_map: teff, logg and value lengths differ ({t.size}, {g.size}, {v.size})")
    if statistic not in ("median", "mean"):
        raise ValueError(f"statistic must be 'median' or 'mean', got {statistic!r}")
    good = np.isfinite(t) & np.isfinite(g) & np.isfinite(v)
    if not good.any():
        raise ValueError("hr_map: no star with finite teff, logg and value")
    t, g, v = t[good], g[good], v[good]
    stat, xe, ye, _ = binned_statistic_2d(t, g, v, statistic=statistic, bins=bins)
    count, _, _, _ = binned_statistic_2d(t, g, v, statistic="count", bins=[xe, ye])
    shown = int(count[count >= min_count].sum())
    stat[count < min_count] = np.nan
    units = _UNITS.get(quantity, "")
    vd = hv.Dimension(quantity, label=f"{statistic} {quantity}" + (f" ({units})" if units else ""))
    mesh = hv.QuadMesh((xe, ye, stat.T), [hv.Dimension("teff", label="Teff", unit="K"),
                                          hv.Dimension("logg", label="log g", unit="dex")], vd)
    return mesh.opts(cmap="viridis", colorbar=True, invert_xaxis=True, invert_yaxis=True, width=520,
                     height=420, tools=["hover"], title=title or f"{statistic.capitalize()} {quantity} per bin "
                     f"({shown} of {int(good.sum())} stars in bins of >= {min_count})")


def pred_truth_density(true, pred, target: str = "age", bins: int = 40, range_=None, title: str | None = None,
                       reference: str = "true"):
    """Density of predicted against true values with the 1:1 line (the paper's Figure 11).

    A 2D histogram (counts per cell, empty cells blank) rather than points, so
    thousands of stars stay readable; M1 and M2 in the title. For points with
    error bars use :func:`pred_vs_true`.
    """
    from .metrics import m1, m2

    t, p, _ = _finite_pair(true, pred, "pred_truth_density")
    lo, hi = range_ if range_ is not None else (float(min(t.min(), p.min())), float(max(t.max(), p.max())))
    edges = np.linspace(lo, hi, bins + 1)
    counts, _, _ = np.histogram2d(t, p, bins=[edges, edges])
    shown = np.where(counts > 0, counts, np.nan)
    units = _UNITS.get(target, "")
    u = f" ({units})" if units else ""
    xd, yd = hv.Dimension("true", label=f"{reference} {target}{u}"), hv.Dimension("pred", label=f"predicted {target}{u}")
    mesh = hv.QuadMesh((edges, edges, shown.T), [xd, yd], "count").opts(cmap="Blues", colorbar=True,
                                                                          tools=["hover"])
    line = hv.Curve([(lo, lo), (hi, hi)], xd, yd, label="1:1").opts(color="red", line_dash="dashed")
    name = title or f"{target}: M1 = {m1(t, p):.3g}{' ' + units if units else ''}, M2 = {m2(t, p):.1f}%, n = {t.size}"
    return (mesh * line).opts(title=name, width=480, height=450, show_grid=True)


def residual_hist(true, pred, target: str = "age", relative: bool = False, bins: int = 40,
                  label: str | None = None, title: str | None = None):
    """Distribution of residuals pred - true (or (pred - true) / true) (the paper's Figures 1 and 14).

    The dashed line marks the median; the title gives the median, the
    standard deviation and the robust scatter (1.4826 x MAD).
    """
    t, p, _ = _finite_pair(true, pred, "residual_hist")
    d = (p - t) / t if relative else p - t
    units = "" if relative else _UNITS.get(target, "")
    lab = f"({target}_pred - {target}_true)" + (f" / {target}_true" if relative else "") + (f" ({units})" if units else "")
    counts, edges = np.histogram(d, bins=bins)
    xd = hv.Dimension("residual", label=lab)
    hist = hv.Histogram((edges, counts), kdims=[xd], vdims=["count"], label=label or "").opts(alpha=0.6)
    med = float(np.median(d))
    name = title or (f"{target} residuals: median {med:+.3g}, std {float(np.std(d)):.3g}, "
                     f"robust {_robust_sigma(d):.3g} (n = {d.size})")
    return (hist * hv.VLine(med).opts(color="black", line_dash="dashed")).opts(
        title=name, width=520, height=350, show_grid=True)


def fractional_uncertainty_hist(std, mean, target: str = "age", bins: int = 40, title: str | None = None):
    """Distribution of the ensemble's fractional uncertainties std / mean (the paper's Figure 12)."""
    s, m, _ = _finite_pair(std, mean, "fractional_uncertainty_hist")
    if np.any(m <= 0):
        raise ValueError("fractional_uncertainty_hist: predicted means must be positive")
    f = s / m
    counts, edges = np.histogram(f, bins=bins)
    med = float(np.median(f))
    hist = hv.Histogram((edges, counts), kdims=[hv.Dimension("frac", label=f"σ_{target} / {target}")], vdims=["count"])
    name = title or f"Fractional {target} uncertainty: median {100 * med:.1f}% (n = {f.size})"
    return (hist.opts(alpha=0.7) * hv.VLine(med).opts(color="black", line_dash="dashed")).opts(
        title=name, width=520, height=350, show_grid=True)


def cluster_ages_plot(table, stars=None, title: str = "Open-cluster ages"):
    """Cluster ages (median +- 1.4826 MAD) against truth and literature (paper Table 1).

    ``table`` / ``stars``: the DataFrames of :func:`rgbkit.clusters.cluster_ages`.
    Per cluster (x position = row order): the member stars used (grey dots),
    the predicted median with error bar, the members' combined likelihood
    (``age_like`` with its 68% interval, green) when the table has it, the
    literature age with its range (orange) and the simulated truth (red cross) where known.
    """
    tab = table.reset_index(drop=True)
    if not len(tab):
        raise ValueError("cluster_ages_plot: empty table")
    xs = np.arange(len(tab), dtype=np.float64)
    ticks = [(float(i), str(c)) for i, c in zip(xs, tab["cluster"])]
    xd, yd = hv.Dimension("x", label="cluster"), hv.Dimension("age", label="age (Gyr)")
    layers = []
    if stars is not None:
        used = stars[stars["used"]]
        pos = {c: i for i, c in enumerate(tab["cluster"])}
        sx = np.array([pos.get(c, np.nan) for c in used["cluster"]], dtype=np.float64)
        jitter = np.random.default_rng(0).uniform(-0.12, 0.12, len(sx))
        layers.append(hv.Scatter((sx + jitter, used["age"].to_numpy()), xd, yd, label="members used")
                      .opts(color="grey", alpha=0.4, size=4))
    pred = tab["age"].to_numpy(dtype=np.float64)
    spread = tab["age_spread"].to_numpy(dtype=np.float64)
    layers.append(hv.ErrorBars((xs, pred, spread), xd, [yd, "spread"], label="1.4826 MAD").opts(color="#1f77b4", line_width=2))
    layers.append(hv.Scatter((xs, pred), xd, yd, label="predicted (median)").opts(color="#1f77b4", size=10))
    if "age_like" in tab and np.isfinite(tab["age_like"].to_numpy(dtype=np.float64)).any():
        like = tab["age_like"].to_numpy(dtype=np.float64)
        lo = like - tab["age_like_lo"].to_numpy(dtype=np.float64)
        hi = tab["age_like_hi"].to_numpy(dtype=np.float64) - like
        layers.append(hv.ErrorBars((xs - 0.1, like, lo, hi), xd, [yd, "neg", "pos"], label="likelihood 68%")
                      .opts(color="#2ca02c", line_width=2))
        layers.append(hv.Scatter((xs - 0.1, like), xd, yd, label="predicted (likelihood)").opts(
            color="#2ca02c", size=10, marker="diamond"))
    if "lit_age" in tab and np.isfinite(tab["lit_age"].to_numpy(dtype=np.float64)).any():
        lit = tab["lit_age"].to_numpy(dtype=np.float64)
        lo = lit - tab["lit_low"].to_numpy(dtype=np.float64)
        hi = tab["lit_high"].to_numpy(dtype=np.float64) - lit
        layers.append(hv.ErrorBars((xs + 0.2, lit, lo, hi), xd, [yd, "neg", "pos"], label="literature range").opts(color="#ff7f0e"))
        layers.append(hv.Scatter((xs + 0.2, lit), xd, yd, label="literature").opts(color="#ff7f0e", size=8,
                                                                                   marker="square"))
    if "truth_age" in tab and np.isfinite(tab["truth_age"].to_numpy(dtype=np.float64)).any():
        layers.append(hv.Scatter((xs - 0.2, tab["truth_age"].to_numpy(dtype=np.float64)), xd, yd,
                                 label="simulated truth").opts(color="red", size=10, marker="x"))
    return hv.Overlay(layers).opts(title=title, xticks=ticks, width=560, height=400, legend_position="top_left",
                                   show_grid=True)


def contamination_completeness_curve(y_true, p_rgb, thresholds=None, threshold: float = 0.5,
                                     paper: bool = True, title: str | None = None):
    """Completeness against contamination of the RGB selection as the P(RGB) threshold moves.

    ``y_true`` and ``p_rgb`` are arrays, or dicts ``{label: array}`` for several
    sets (e.g. validation and test) drawn together. The point at ``threshold``
    is marked per set; ``paper`` adds the paper's averaged-model points.
    Axes in percent.
    """
    from .classify import PAPER, classification_metrics, threshold_curve

    ys = y_true if isinstance(y_true, dict) else {"": y_true}
    ps = p_rgb if isinstance(p_rgb, dict) else {"": p_rgb}
    if set(ys) != set(ps):
        raise ValueError(f"y_true and p_rgb have different sets: {sorted(ys)} vs {sorted(ps)}")
    xd = hv.Dimension("contamination", label="contamination (%)")
    yd = hv.Dimension("completeness", label="completeness (%)")
    layers = []
    for name in ys:
        c = threshold_curve(ys[name], ps[name], thresholds).dropna(subset=["contamination"])
        layers.append(hv.Curve((100 * c["contamination"].to_numpy(), 100 * c["completeness"].to_numpy(),
                                c["threshold"].to_numpy()), xd, [yd, "threshold"], label=name or "curve")
                      .opts(tools=["hover"]))
        m = classification_metrics(ys[name], ps[name], threshold)
        layers.append(hv.Scatter([(100 * m["contamination"], 100 * m["completeness"])], xd, yd,
                                 label=f"{name} P(RGB) >= {threshold:g}".strip()).opts(size=9))
    if paper:
        pts = [(100 * v["contamination"], 100 * v["completeness"]) for v in PAPER.values()]
        layers.append(hv.Scatter(pts, xd, yd, label="paper (val, test)").opts(color="black", marker="x", size=10))
    return hv.Overlay(layers).opts(title=title or "RGB selection: completeness vs contamination", width=520,
                                   height=400, legend_position="bottom_right", show_grid=True)


def compare_catalogs(a, b, value: str = "age", on: str = "obsid", labels=("ours", "other"), relative: bool = False,
                     bins: int = 40, title: str | None = None):
    """Two catalogs matched by ``on`` (e.g. ours against another method's ages; paper Figure 15).

    ``a``, ``b``: DataFrames (or dicts of columns) with columns ``on`` and ``value``.
    Left: b against a with the 1:1 line; right: the distribution of a - b
    (or (a - b) / b with ``relative``). Titles give the number matched, the
    median difference and the scatter (std and 1.4826 x MAD).
    """
    import pandas as pd

    da, db = pd.DataFrame(a), pd.DataFrame(b)
    for name, d in zip(labels, (da, db)):
        missing = {on, value} - set(d.columns)
        if missing:
            raise ValueError(f"compare_catalogs: catalog {name!r} lacks column(s) {sorted(missing)}")
    m = da[[on, value]].merge(db[[on, value]], on=on, suffixes=("_a", "_b"))
    x, y, _ = _finite_pair(m[f"{value}_a"], m[f"{value}_b"], "compare_catalogs (after matching)")
    d = (x - y) / y if relative else x - y
    units = "" if relative else _UNITS.get(value, "")
    u = f" ({units})" if units else ""
    xd, yd = hv.Dimension("a", label=f"{value} {labels[0]}{u}"), hv.Dimension("b", label=f"{value} {labels[1]}{u}")
    lo, hi = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
    med, std, rob = float(np.median(d)), float(np.std(d)), _robust_sigma(d)
    stats = f"n = {d.size}, median diff {med:+.3g}, std {std:.3g}, robust {rob:.3g}"
    left = (hv.Scatter((x, y), xd, yd).opts(size=3, alpha=0.4) *
            hv.Curve([(lo, lo), (hi, hi)], xd, yd).opts(color="red", line_dash="dashed")).opts(
        title=title or f"{labels[0]} vs {labels[1]}: {stats}", width=450, height=420, show_grid=True)
    counts, edges = np.histogram(d, bins=bins)
    dlab = f"({labels[0]} - {labels[1]})" + (f" / {labels[1]}" if relative else "") + u
    right = (hv.Histogram((edges, counts), kdims=[hv.Dimension("diff", label=dlab)], vdims=["count"]).opts(alpha=0.7) *
             hv.VLine(med).opts(color="black", line_dash="dashed")).opts(
        title=f"median {med:+.3g}, robust scatter {rob:.3g}", width=420, height=420, show_grid=True)
    return left + right


# --------------------------------------------------------------------------- teaching figures
# Used by the narrative notebooks: labels against each other, the preprocessing
# chain step by step, the 64 x 64 network input and the network's stages.


def label_scatter(x, y, color=None, xlabel: str = "x", ylabel: str = "y", clabel: str = "",
                  logx: bool = False, logy: bool = False, title: str | None = None):
    """One label against another, optionally coloured by a third (e.g. age against mass by [Fe/H])."""
    xs, ys, good = _finite_pair(x, y, "label_scatter")
    xd, yd = hv.Dimension("x", label=xlabel), hv.Dimension("y", label=ylabel)
    if color is None:
        pts = hv.Scatter((xs, ys), xd, yd).opts(size=3, alpha=0.5)
    else:
        c = np.asarray(color, dtype=np.float64).ravel()
        if c.size != good.size:
            raise ValueError(f"label_scatter: color has length {c.size}, expected {good.size}")
        cd = hv.Dimension("c", label=clabel or "colour")
        pts = hv.Scatter((xs, ys, c[good]), xd, [yd, cd]).opts(color="c", cmap="viridis", colorbar=True,
                                                               size=3, alpha=0.6)
    return pts.opts(logx=logx, logy=logy, width=520, height=420, tools=["hover"], show_grid=True,
                    title=title or f"{ylabel} against {xlabel} ({xs.size} stars)")


_STAGE_TITLES = {"resampled": "resampled onto the 4,096-pixel grid (1 Å steps)",
                 "normalised": "min-max normalised to [0, 1]",
                 "denoised": "Haar-wavelet denoised"}


def preprocessing_steps(wavelength, flux, grid, stages: dict, title: str = "", width: int = 800,
                        height: int = 200) -> hv.Layout:
    """The spectrum as read, then after each preprocessing step, one panel each (paper Section 3.2).

    ``wavelength``, ``flux``: the spectrum as read (its own grid). ``grid`` and
    ``stages``: the output grid and ``{"resampled": ..., "normalised": ...,
    "denoised": ...}`` 1D arrays, e.g. ``res.wavelength`` and
    ``{k: v[i] for k, v in res.stages.items()}`` from ``Preprocessor().run(..., keep_stages=True)``.
    Zero-flux pixels of the resampled spectrum (gaps, which the zero-pixel cut counts) are marked red.
    """
    wl = np.asarray(wavelength, dtype=np.float64)
    fl = np.asarray(flux, dtype=np.float64)
    g = np.asarray(grid, dtype=np.float64)
    if wl.shape != fl.shape or wl.ndim != 1:
        raise ValueError(f"preprocessing_steps: wavelength and flux must be 1D of one length, got {wl.shape}, {fl.shape}")
    unknown = set(stages) - set(_STAGE_TITLES)
    if unknown:
        raise ValueError(f"preprocessing_steps: unknown stages {sorted(unknown)}; use {list(_STAGE_TITLES)}")
    kd = hv.Dimension("wavelength", label="Wavelength", unit="Å")
    head = f"1. as read{': ' + title if title else ''} ({wl.size} px, {wl[0]:.0f}-{wl[-1]:.0f} Å)"
    panels = [hv.Curve((wl, fl), kd, "flux").opts(title=head, color="#555555")]
    for k in _STAGE_TITLES:
        if k not in stages:
            continue
        v = np.asarray(stages[k], dtype=np.float64)
        if v.shape != g.shape:
            raise ValueError(f"preprocessing_steps: stage {k!r} has shape {v.shape}, grid {g.shape}")
        curve = hv.Curve((g, v), kd, "flux").opts(title=f"{len(panels) + 1}. {_STAGE_TITLES[k]}")
        if k == "resampled" and np.any(v == 0):
            zero = v == 0
            curve = curve * hv.Scatter((g[zero], v[zero]), kd, "flux", label=f"{int(zero.sum())} zero pixels").opts(
                color="red", size=2)
        panels.append(curve)
    return hv.Layout([p.opts(width=width, height=height, show_grid=True) for p in panels]).cols(1).opts(
        shared_axes=False)


def network_input_image(x, wave_min: float = 4000.0, step: float = 1.0, title: str | None = None):
    """One preprocessed spectrum as the network sees it: bands (rows) x pixels in a band (columns).

    ``x``: (channels, pixels) e.g. ``res.X[i]`` (64 x 64). Row b holds the wavelengths
    ``wave_min + step * pixels * b`` onwards.
    """
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"network_input_image needs a 2D (channels, pixels) array, got shape {a.shape}")
    nb, npx = a.shape
    img = hv.Image(a[::-1], bounds=(0, 0, npx, nb), kdims=[hv.Dimension("pixel", label="pixel in band"),
                                                          hv.Dimension("band", label="band (channel)")],
                   vdims=[hv.Dimension("flux", label="normalised flux")])
    last = wave_min + step * npx * nb
    return img.opts(cmap="magma", colorbar=True, invert_yaxis=True, width=480, height=440, tools=["hover"],
                    title=title or f"Network input: {nb} bands x {npx} px, {wave_min:.0f}-{last:.0f} Å")


def architecture_diagram(table, title: str = "DenseNet-BC stages"):
    """The network's stages as boxes, left to right (the paper's Figure 7).

    ``table``: :func:`rgbkit.models.densenet.layer_table`. Box height grows with
    the channels out of a stage (square root), the label gives channels x positions
    and parameters.
    """
    t = table.reset_index(drop=True)
    if not len(t):
        raise ValueError("architecture_diagram: empty table")
    colours = {"stem conv": "#9ecae1", "dense block": "#fdae6b", "transition": "#a1d99b",
               "integration 1x1 conv": "#bcbddc", "fully connected head": "#fc9272"}
    h = np.sqrt(t["out_channels"].to_numpy(dtype=np.float64))
    h = 0.4 + 1.6 * h / h.max()
    xs = np.arange(len(t), dtype=np.float64) * 1.3
    rects = [(x, -hh / 2, x + 1, hh / 2, k) for x, hh, k in zip(xs, h, t["kind"])]
    boxes = hv.Rectangles(rects, vdims=["kind"]).opts(color="kind", cmap=colours, line_color="black")
    text = [f"{r.stage}\n{r.out_channels} ch x {r.out_length}\n{r.parameters:,} params" for r in t.itertuples()]
    labels = hv.Labels((xs + 0.5, -h / 2 - 0.45, text)).opts(text_font_size="8pt", text_baseline="top",
                                                              text_color="black")
    inp = int(t["in_channels"].iat[0]), int(t["in_length"].iat[0])
    arrow = hv.Labels(([-0.9], [0.0], [f"input\n{inp[0]} x {inp[1]}"])).opts(text_font_size="9pt", text_color="black")
    return (boxes * labels * arrow).opts(title=title, width=1000, height=320, xaxis=None, yaxis=None,
                                         xlim=(-1.6, xs[-1] + 1.4), ylim=(-2.2, 1.3), show_legend=False)
