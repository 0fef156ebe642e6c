"""Dev-time: build the compact LAMOST-resolution emulator shipped in rgbkit/data/.

Input: the Cannon-style cool-star model of the MIT-licensed PyPI package
``thedoppler`` 1.1.32 (David Nidever), as trimmed in
``../shared/data/emulator/doppler_cannon_coolstars_3690_9110.npz``
(0.1 A air-wavelength pixels, 20 coefficients per pixel, cubic in
Teff, logg, [Fe/H]).

Because the model is linear in its coefficients, convolving each coefficient
column with the line-spread function gives the convolved model exactly. Steps:

1. air -> vacuum wavelengths (Morton 2000 / VALD formula, as used by SDSS);
2. interpolate the columns onto a fine uniform log10(vacuum) grid aligned
   with the LAMOST grid (5e-6 dex, 20 fine pixels per LAMOST pixel);
3. convolve with a Gaussian of FWHM = lambda / R (R = 1,800; constant in
   log-lambda) and then with a box of one LAMOST pixel (pixel integration);
4. sample at the LAMOST pixel centres: log10(lambda) = 3.5682 + 1e-4 i,
   i = 0..3908 (vacuum).

The continuum model (log flux on 1,009 smooth knots) is only converted to
vacuum; rgbkit interpolates it at run time.

Run:  .venv/bin/python tools/build_emulator.py [--src PATH] [--out rgbkit/data/lamost_emulator.npz]
"""
from __future__ import annotations

import argparse
import ast
import hashlib
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d, uniform_filter1d

SRC = Path(__file__).resolve().parents[2] / "shared/data/emulator/doppler_cannon_coolstars_3690_9110.npz"
OUT = Path(__file__).resolve().parents[1] / "rgbkit/data/lamost_emulator.npz"
LOG0, DLOG, NPIX = 3.5682, 1e-4, 3909
R = 1800.0
FINE = 20  # fine pixels per LAMOST pixel


def air_to_vacuum(air):
    """Air -> vacuum wavelength in Angstrom (Morton 2000; the VALD/SDSS formula)."""
    air = np.asarray(air, dtype=np.float64)
    s2 = (1e4 / air) ** 2
    n = 1 + 8.336624212083e-5 + 2.408926869968e-2 / (130.1065924522 - s2) + 1.599740894897e-4 / (38.92568793293 - s2)
    return air * n


def terms_to_powers(terms_str: str, nlabels: int = 3) -> np.ndarray:
    """The emulator's term list as an integer power matrix (nterms+1, nlabels); row 0 is the constant."""
    terms = ast.literal_eval(terms_str)
    pw = np.zeros((len(terms) + 1, nlabels), dtype=np.int8)
    for k, term in enumerate(terms, start=1):
        for idx, p in term:
            pw[k, idx] += int(p)
    return pw


def build(src: Path = SRC, out: Path = OUT) -> dict:
    d = np.load(src, allow_pickle=False)
    wvac = air_to_vacuum(d["wavelength_air_A"])
    theta = d["theta"].astype(np.float64)
    lam_log = LOG0 + DLOG * np.arange(NPIX)
    # fine grid aligned with LAMOST pixel centres, with margin for the kernels
    pad = 40 * FINE
    fine_log = LOG0 + (DLOG / FINE) * np.arange(-pad, NPIX * FINE + pad)
    fine_w = 10.0 ** fine_log
    inside = (fine_w >= wvac[0]) & (fine_w <= wvac[-1])
    cols = np.empty((fine_w.size, theta.shape[1]))
    for j in range(theta.shape[1]):
        # outside the model's range: hold the edge value (affects < 2 px at the red end)
        cols[:, j] = np.interp(fine_w, wvac, theta[:, j])
    sigma_dex = 1.0 / (R * 2.0 * np.sqrt(2.0 * np.log(2.0)) * np.log(10.0))
    sigma_fine = sigma_dex / (DLOG / FINE)
    cols = gaussian_filter1d(cols, sigma_fine, axis=0, mode="nearest", truncate=5.0)
    cols = uniform_filter1d(cols, FINE, axis=0, mode="nearest")
    centre = pad + FINE * np.arange(NPIX)
    theta_l = cols[centre].astype(np.float32)
    covered = inside[centre]

    cw = air_to_vacuum(d["cont_wavelength_A"])
    pw = terms_to_powers(str(d["terms"]))
    assert str(d["terms"]) == str(d["cont_terms"]), "line and continuum models must share terms"
    arrays = dict(
        log10_wave0=np.float64(LOG0), dlog10_wave=np.float64(DLOG), npix=np.int32(NPIX),
        resolving_power=np.float64(R),
        theta=theta_l,
        covered=covered,
        powers=pw,
        fiducials=d["fiducials"].astype(np.float64),
        scales=d["scales"].astype(np.float64),
        label_names=np.array([str(x) for x in d["label_names"]]),
        training_set_labels=d["training_set_labels"].astype(np.float32),
        cont_wavelength_vac=cw,
        cont_theta=d["cont_theta"].astype(np.float32),
        source_sha256=np.array(hashlib.sha256(src.read_bytes()).hexdigest()),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KB); {covered.sum()} of {NPIX} px inside the model; "
          f"LSF sigma {sigma_dex:.3e} dex; grid {10 ** lam_log[0]:.2f}-{10 ** lam_log[-1]:.2f} A vacuum")
    return arrays


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=SRC)
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args()
    build(a.src, a.out)
