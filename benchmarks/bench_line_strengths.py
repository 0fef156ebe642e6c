"""Line strengths of simulated against real giants at the same labels.

    .venv/bin/python benchmarks/bench_line_strengths.py

For the real DR1 giants of plate B6212 with LAMOST pipeline (LASP) labels
(logg < 3.5), simulate each star at its LASP Teff, logg, [Fe/H] (no noise, no
calibration wobble, solar [alpha/Fe], dredged-up [C/N] of a 1.2 Msun giant)
and compare the equivalent widths the catalog measures
(rgbkit.catalog.line_indices). Needs ../shared/data.
Results: benchmarks/results/sim_realism.md.
"""
from pathlib import Path

import pandas as pd

from rgbkit import simulate as sim
from rgbkit.catalog import line_indices
from rgbkit.io.lamost import read_many
from rgbkit.preprocess import Preprocessor

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def ews(spectra) -> pd.DataFrame:
    pre = Preprocessor().run_spectra(spectra, keep_stages=True)
    ew = line_indices(pre.stages["resampled"], pre.wavelength)
    return pd.DataFrame({"mgb": ew["mgb"], "ca4227": ew["ca4227"], "halpha": ew["halpha"]})


def main():
    spectra, _ = read_many(SHARED / "lamost" / "dr1", progress=False)
    by_name = {s.meta.designation: s for s in spectra}
    lasp = pd.read_csv(SHARED / "catalogs" / "B6212_lasp_dr1_labels.csv")
    lasp["designation"] = "LAMOST " + lasp["designation"]
    giants = lasp[(lasp.logg < 3.5) & lasp.teff.notna() & lasp.designation.isin(by_name)]
    labels = pd.DataFrame({"teff": giants.teff.values, "logg": giants.logg.values, "feh": giants.feh.values,
                           "alpha_fe": 0.0, "snr": 200.0, "rv": 0.0})
    labels["c_n"] = [float(sim.cn_after_dredge_up(1.2, f)) for f in labels.feh]
    labels["c_fe"] = 0.45 * labels.c_n
    simulated = sim.simulate_spectra(labels, seed=0, wobble=0.0, arm_step=0.0, bad_pixel_rate=0.0,
                                     gap_fraction=0.0, ebv_mean=0.0)
    real = ews([by_name[d] for d in giants.designation])
    fake = ews(list(simulated.spectra()))
    table = pd.concat([labels[["teff", "logg", "feh"]], real.add_suffix("_real"), fake.add_suffix("_sim")], axis=1)
    print(table.round(2).to_string())
    print(f"\n{len(table)} LASP giants; medians (EW in Angstrom):")
    print(table.median().round(2).to_string())


if __name__ == "__main__":
    main()
