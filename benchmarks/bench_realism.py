"""SIMULATED vs real: the simulator against the real LAMOST DR1 giants of plate B6212.

For each giant (LASP DR1 logg <= 3.65, Teff < 5,250 K) with a file in
../shared/data/lamost/dr1, simulate a spectrum at its LASP Teff, logg,
[Fe/H], radial velocity and SNR, normalise both the same way and compute the
reduced chi-square (rgbkit.simulate.compare_with_observed). Also scans a
Teff offset to show where the chi-square minimum sits. Writes
benchmarks/results/sim_realism.md and, with --html, the best/worst plot.

Run:  .venv/bin/python benchmarks/bench_realism.py [--html out.html]   (needs ../shared; ~20 s)
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from rgbkit import simulate as sim
from rgbkit.io.lamost import read_many
from rgbkit.io.paths import shared_data_dir

OUT = Path(__file__).resolve().parent / "results" / "sim_realism.md"


def main(html=None):
    root = shared_data_dir()
    if root is None:
        raise SystemExit("../shared/data not found: this benchmark needs the real DR1 files")
    lab = pd.read_csv(root / "catalogs" / "B6212_lasp_dr1_labels.csv")
    spectra, _ = read_many(sorted((root / "lamost" / "dr1").glob("*.fits")), progress=False)
    by = {s.meta.designation.replace("LAMOST", "").strip(): s for s in spectra}
    g = lab[(lab.logg <= 3.65) & (lab.teff < 5250)].drop_duplicates("designation")
    g = g[g.designation.isin(by)]
    comps = [sim.compare_with_observed(by[r.designation], r.teff, r.logg, r.feh) for _, r in g.iterrows()]
    chi2 = np.array([c["chi2"] for c in comps])
    offsets = (-600, -300, 0, 300, 600)
    scan = np.array([[sim.compare_with_observed(by[r.designation], r.teff + dt, r.logg, r.feh)["chi2"] for dt in offsets]
                     for _, r in g.iterrows()])
    best, worst = comps[int(np.argmin(chi2))], comps[int(np.argmax(chi2))]
    lines = [
        "# Simulated against real LAMOST DR1 giants (`benchmarks/bench_realism.py`)",
        "",
        f"{len(comps)} giants of plate B6212 with LASP DR1 labels (SNR_g {g.snrg.min():.0f}-{g.snrg.max():.0f}). "
        "Both spectra divided by a running-median pseudo-continuum; chi-square of observed against the "
        "noise-free simulation with the observed inverse variance, 3,900-8,900 A, telluric bands masked.",
        "",
        f"* reduced chi-square: median {np.median(chi2):.2f}, 16-84 % {np.percentile(chi2, 16):.2f}-{np.percentile(chi2, 84):.2f}, "
        f"range {chi2.min():.2f}-{chi2.max():.2f}",
        f"* best: {best['name']} (chi2 {best['chi2']:.2f}, SNR {best['snr']:.0f}); worst: {worst['name']} "
        f"(chi2 {worst['chi2']:.2f}, SNR {worst['snr']:.0f})",
        "* median chi-square with the model Teff offset by " + ", ".join(
            f"{dt:+d} K: {v:.2f}" for dt, v in zip(offsets, np.median(scan, axis=0))),
        "",
        "Where simulation and sky differ (largest first): Ca II H&K cores and the 3,900-4,000 A region",
        "(model lines too deep, blue end noisiest); the CH G band (model deeper at 4,290-4,315 A, shallower",
        "at 4,320 A); sky-line residuals ([O I] 5,577/6,300 A, OH in the far red) and interstellar Na D, not",
        "simulated; the chi-square minimum sits ~300 K above the LASP Teff (a model/LASP temperature-scale",
        "offset). Improved on the way, mostly in the raw flux shape (which this normalised chi-square does not",
        "see, but the paper's min-max normalisation does): continuum taken as log10 F_lambda (matches the",
        "relative flux calibration to 3 % over 4,000-9,000 A), a measured blue-end response (+25 % below",
        "3,900 A), CCM reddening with Kepler-field-like E(B-V); and giants' post-dredge-up carbon depletion",
        "([C/Fe] = 0.45 x the [C/N] drop). Low-SNR stars get low chi-square by construction.",
    ]
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    if html:
        import holoviews as hv

        from rgbkit.plots import sim_vs_observed

        hv.save(sim_vs_observed([best, worst]), html, backend="bokeh")
        print(f"plot: {html}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--html", default=None)
    main(ap.parse_args().html)
