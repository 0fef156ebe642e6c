"""Dev-time: fit the label distributions that rgbkit.simulate draws from.

Real catalogs used (all in ../shared/data/catalogs, see its README):

* APOKASC-2 (Pinsonneault et al. 2018): joint (ln mass, logg) of RGB (ES=1)
  and red clump (ES=2) stars, logg from numax by the seismic scaling relation;
  the RGB age-mass relation and the clump fraction.
* Hall et al. (2019) red clump: the metallicity term of the age relation,
  the clump Teff relation.
* APOGEE DR12 labels of LAMOST DR2 stars (The Cannon's training table):
  the RGB Teff(logg, [M/H]) relation, the metallicity distribution and the
  [alpha/M]-[M/H] two-population split of giants.

It prints a Python block with the fitted numbers; paste it into
``rgbkit/simulate.py`` (section "fitted numbers"). Deterministic (seeded).

Run:  .venv/bin/python tools/fit_labels.py
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from astropy.table import Table
from sklearn.mixture import GaussianMixture

CAT = Path(__file__).resolve().parents[2] / "shared/data/catalogs"
TEFF_REF = 4700.0  # K, for logg from numax (0.5 log10(T) term: +-0.02 dex over 4,300-5,100 K)


def logg_from_numax(numax, teff=TEFF_REF):
    return 4.438 + np.log10(numax / 3090.0) + 0.5 * np.log10(teff / 5777.0)


def gmm(x, k, seed=0):
    g = GaussianMixture(k, covariance_type="full", random_state=seed, n_init=5).fit(x)
    return {"weights": g.weights_.round(5).tolist(), "means": g.means_.round(5).tolist(),
            "covariances": g.covariances_.round(6).tolist()}


def main():
    a = pd.read_csv(CAT / "apokasc2.csv")
    rgb, rc = a[a.ES == 1], a[a.ES == 2]
    out = {}
    # joint (ln M, logg) of RGB and RC
    for name, s, k in (("RGB", rgb, 3), ("RC", rc, 3)):
        x = np.column_stack([np.log(s.Mass), logg_from_numax(s.Numax)])
        out[f"GMM_{name}"] = gmm(x, k)
    out["RC_FRACTION_APOKASC"] = round(len(rc) / (len(rc) + len(rgb)), 4)
    out["REL_ERR_MEDIAN"] = {
        "RGB_mass": round(float((rgb.Mass_err / rgb.Mass).median()), 4),
        "RGB_age": round(float((rgb.Age_err / rgb.Age).median()), 4),
    }

    # age relation: log10 age = a + b log10 M + c [M/H]; b from APOKASC RGB, c from Hall RC
    h = pd.read_csv(CAT / "hall2019_red_clump.csv").dropna(subset=["M_Clump", "[Fe/H]", "Log Age"])
    X = np.column_stack([np.ones(len(h)), np.log10(h.M_Clump), h["[Fe/H]"]])
    coef_h, *_ = np.linalg.lstsq(X, h["Log Age"] - 3.0, rcond=None)
    c = float(coef_h[2])
    # APOKASC-2 has no [Fe/H] column here: the Kepler field's mean [M/H] (~0) is absorbed in a
    X = np.column_stack([np.ones(len(rgb)), np.log10(rgb.Mass)])
    y = np.log10(rgb.Age)
    coef_r, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ coef_r
    meas = np.median(rgb.Age_err / rgb.Age) / np.log(10)
    out["AGE_RELATION"] = {"a": round(float(coef_r[0]), 4), "b": round(float(coef_r[1]), 4), "c_mh": round(c, 4),
                           "rms_resid_dex": round(float(resid.std()), 4),
                           "intrinsic_dex": round(float(np.sqrt(max(resid.var() - meas ** 2, 0.0))), 4),
                           "hall_fit": [round(float(v), 4) for v in coef_h]}

    # clump Teff = t0 + tM (M - 1.2) + tZ [Fe/H]
    X = np.column_stack([np.ones(len(h)), h.M_Clump - 1.2, h["[Fe/H]"]])
    coef, *_ = np.linalg.lstsq(X, h.Teff, rcond=None)
    out["RC_TEFF"] = {"t0": round(float(coef[0]), 1), "tM": round(float(coef[1]), 1), "tZ": round(float(coef[2]), 1),
                      "scatter": round(float((h.Teff - X @ coef).std()), 1)}

    # RGB Teff(logg, [M/H]) and metallicity / alpha from APOGEE giants, clump region excluded
    t = Table.read(CAT / "thecannon_lamost_dr2_apogee_labels.fits").to_pandas()
    g = t[(t.LOGG > 1.7) & (t.LOGG < 3.5) & (t.TEFF < 5400) & ~((t.LOGG > 2.2) & (t.LOGG < 2.75))]
    g = g[np.isfinite(g.PARAM_M_H) & (g.PARAM_M_H > -1.2)]
    X = np.column_stack([np.ones(len(g)), g.LOGG - 2.5, g.PARAM_M_H])
    coef, *_ = np.linalg.lstsq(X, g.TEFF, rcond=None)
    r = g.TEFF - X @ coef
    out["RGB_TEFF"] = {"t0": round(float(coef[0]), 1), "tg": round(float(coef[1]), 1), "tZ": round(float(coef[2]), 1),
                       "scatter": round(float(r.std()), 1), "n": int(len(g))}
    gg = t[(t.LOGG < 3.9) & (t.TEFF < 5500) & np.isfinite(t.PARAM_M_H) & (t.PARAM_M_H > -1.2)]
    out["GMM_MH_ALPHA"] = gmm(np.column_stack([gg.PARAM_M_H, gg.PARAM_ALPHA_M]), 2)
    print("# --- fitted by tools/fit_labels.py ---")
    for k, v in out.items():
        print(f"{k} = {json.dumps(v)}")


if __name__ == "__main__":
    main()
