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
