"""Spectral line indices: equivalent widths of a few Lick-style features.

Used by the catalog's out-of-domain checks (H-alpha tells hot stars) and
handy on their own in a notebook.
"""
from __future__ import annotations

import numpy as np

__all__ = ["INDICES", "line_indices"]

# (line window, blue continuum, red continuum), vacuum Angstrom; Lick-style
# definitions (Worthey 1994 for Mg b, Ca4227, Na D) moved to vacuum.
INDICES = {
    "halpha": ((6557.0, 6572.0), (6535.0, 6550.0), (6580.0, 6595.0)),
    "hbeta": ((4855.0, 4870.0), (4830.0, 4848.0), (4877.0, 4892.0)),
    "mgb": ((5161.6, 5194.1), (5144.1, 5162.9), (5192.9, 5207.9)),
    "ca4227": ((4223.4, 4235.9), (4212.2, 4221.0), (4242.2, 4252.2)),
    "nad": ((5878.5, 5911.0), (5862.2, 5877.2), (5923.7, 5949.7)),
}


def line_indices(flux: np.ndarray, grid: np.ndarray) -> dict[str, np.ndarray]:
    """Equivalent widths (Angstrom, absorption positive) of :data:`INDICES`.

    ``flux`` (n, m) on the linear ``grid`` (m,); the pseudo-continuum is the
    line through the two side-band means. Vectorised over spectra.
    """
    flux = np.asarray(flux, dtype=np.float32)
    step = float(grid[1] - grid[0])
    out = {}
    with np.errstate(all="ignore"):
        for name, (line, blue, red) in INDICES.items():
            kb = (grid >= blue[0]) & (grid < blue[1])
            kr = (grid >= red[0]) & (grid < red[1])
            kl = (grid >= line[0]) & (grid < line[1])
            fb, fr = flux[:, kb].mean(1), flux[:, kr].mean(1)
            xb, xr = sum(blue) / 2, sum(red) / 2
            t = ((grid[kl] - xb) / (xr - xb)).astype(np.float32)
            cont = fb[:, None] + (fr - fb)[:, None] * t[None, :]
            ew = np.sum(1.0 - flux[:, kl] / cont, axis=1) * step
            ew[~np.isfinite(ew) | (fb <= 0) | (fr <= 0)] = np.nan
            out[name] = ew.astype(np.float32)
    return out
