"""Write rgbkit/data/apokasc2_subset.csv: 1,500 real APOKASC-2 rows for the Kepler stand-in.

Dev-time only (reads ../shared/data/catalogs/apokasc2.csv, which comes from
henrysky/astroNN_ages, MIT; notice in rgbkit/data/APOKASC2_SUBSET_LICENSE.txt).
Keeps RGB (ES 1) and red-clump (ES 2) stars with a mass of 0.7-2.6 Msun, an
age of 0.3-13.8 Gyr and both seismic parameters; draws 1,000 RGB and 500 RC
rows with a fixed seed; keeps the columns the stand-in and its tables need.
"""
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SRC = REPO.parent / "shared" / "data" / "catalogs" / "apokasc2.csv"
OUT = REPO / "rgbkit" / "data" / "apokasc2_subset.csv"
COLUMNS = ["KIC", "ES", "Mass", "Mass_err", "Age", "Age_err", "LogAge", "LogAge_err",
           "Numax", "Numax_err", "Deltanu", "Deltanu_err", "R", "R_err"]


def main():
    a = pd.read_csv(SRC)
    ok = (a.ES.isin([1, 2]) & a.Mass.between(0.7, 2.6) & a.Age.between(0.3, 13.8)
          & a.Numax.notna() & a.Deltanu.notna() & (a.Mass_err > 0) & (a.Age_err > 0))
    a = a[ok]
    rng = np.random.default_rng(2022)
    parts = [a[a.ES == es].iloc[np.sort(rng.choice((a.ES == es).sum(), n, replace=False))]
             for es, n in ((1, 1000), (2, 500))]
    sub = pd.concat(parts).sort_values("KIC")[COLUMNS]
    sub.to_csv(OUT, index=False, float_format="%.6g")
    print(f"{len(sub)} rows -> {OUT} ({OUT.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
