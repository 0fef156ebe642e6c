"""HoloViews plots shared by the notebooks and the dashboard.

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


def pred_vs_true(true, pred, err=None, target: str = "age", units: str | None = None, title: str | None = None):
    """Predicted against true values with the 1:1 line, M1/M2 in the title (the paper's Figure 11).

    ``err``: optional 1-sigma uncertainties (ensemble spread) drawn as error bars.
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
    xd, yd = hv.Dimension("true", label=f"true {target}{u}"), hv.Dimension("pred", label=f"predicted {target}{u}")
    lo, hi = float(min(t.min(), p.min())), float(max(t.max(), p.max()))
    layers = [hv.Curve([(lo, lo), (hi, hi)], xd, yd).opts(color="grey", line_dash="dashed")]
    if err is not None:
        e = np.asarray(err, dtype=np.float64).ravel()[good]
        layers.append(hv.ErrorBars((t, p, e), xd, [yd, "err"]).opts(alpha=0.3, color="gray"))
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
