"""Giant/dwarf flag of the catalog against LASP (real DR1 plate B6212) and simulated truth.

Prints the numbers in benchmarks/results/catalog.md ("Giant or dwarf"). Needs the shared data
($RGBKIT_SHARED_DATA, default ../shared/data); simulated sets are made on the fly (~2 min).
"""
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

warnings.simplefilter("ignore")
from rgbkit.io.lamost import read_many
from rgbkit.catalog import score_spectra, DomainRules, OOD
from rgbkit.catalog.domain import finish
from rgbkit import datasets
from rgbkit.io.labels import crossmatch, normalise_designation, read_labels
from rgbkit.labelfit import fit_labels
from rgbkit.preprocess import Preprocessor

SHARED = Path(os.environ.get("RGBKIT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))

def old_rule(df):  # the Mg b / Ca 4227 rule before (HOT/COOL as flagged now)
    hot = (df.ood_flags & int(OOD.HOT)) > 0; cool = (df.ood_flags & int(OOD.COOL)) > 0
    return (df.objclass.str.upper() == "STAR") & ~hot & ~cool & ~(df.ew_mgb > 4.0) & ~(df.ew_ca4227 > 5.0) & np.isfinite(df.ew_mgb)

def sweep(df, thr):
    return finish(df.copy(), DomainRules(dwarf_logg=thr))["giant"].to_numpy(bool)

# real DR1 with LASP
sp, _ = read_many(SHARED / "lamost" / "dr1", progress=False)
df = score_spectra(sp)
df = df.assign(designation=[normalise_designation(v) for v in df["designation"]])
labels = read_labels(SHARED / "catalogs" / "B6212_lasp_dr1_labels.csv")
m, _, _ = crossmatch(df.rename(columns={"file": "path"}), labels, by="designation")
m = m[m["logg"].notna()].reset_index(drop=True)
truth = (m.logg < 3.5).to_numpy()
print("REAL n", len(m), "LASP giants", truth.sum())
o = old_rule(m).to_numpy()
print(f"  old: agree {(o==truth).sum()} giants {(o&truth).sum()} dwarfs-as-giants {(o&~truth).sum()}")
for thr in (3.5, 3.6, 3.7, 3.8):
    g = sweep(m, thr)
    print(f"  thr {thr}: agree {(g==truth).sum()} giants {(g&truth).sum()} dwarfs-as-giants {(g&~truth).sum()}")
g = m.giant.to_numpy(bool)
print("  misses:", m.loc[g != truth, ["designation","subclass","teff","logg","feh","snr_g","teff_fit","logg_fit","feh_fit","ood_reason"]].round(2).to_string())
mr = m[(m.feh > 0.1) & truth]
print("  metal-rich LASP giants:", mr[["teff","logg","feh","ew_mgb","logg_fit","feh_fit","giant"]].round(2).to_string(), "old giant", old_rule(mr).tolist())
c = m[np.isfinite(m.logg_fit) & (m.teff < 5400) & ~((m.ood_flags & int(OOD.HOT|OOD.COOL)) > 0)]
for nm, sel in (("all fitted Teff<5400 not hot/cool", np.ones(len(c), bool)), ("LASP giants", c.logg.to_numpy() < 3.5), ("snr>=15", c.snr_g.to_numpy() >= 15)):
    d = (c.logg_fit - c.logg)[sel]; dt = (c.teff_fit - c.teff)[sel]; dz = (c.feh_fit - c.feh)[sel]
    print(f"  resid {nm}: n {sel.sum()} logg med {d.median():+.2f} MAD {1.4826*np.median(np.abs(d-d.median())):.2f} rms {np.sqrt((d**2).mean()):.2f}; Teff med {dt.median():+.0f}; feh med {dz.median():+.2f}")

# demo validation giants
demo = datasets.load_demo(progress=False)
L = demo.labels; v = L[L.split == "validation"]
sp, _ = read_many(list(v.path), progress=False)
by = {s.meta.obsid: s for s in sp}; sp = [by[int(o)] for o in v.obsid]
t = time.process_time(); dd = score_spectra(sp); dt = time.process_time() - t
gi = (v.logg < 3.5).to_numpy()
dw = (dd.ood_flags & int(OOD.DWARF)) > 0
print(f"DEMO validation n {len(v)} giants {gi.sum()}: new DWARF among giants {dw[gi].mean():.3f}  old {(~old_rule(dd)[gi] & ~((dd.ood_flags & int(OOD.HOT|OOD.COOL)) > 0)[gi]).mean():.3f} old DWARF-by-EW {((dd.ew_mgb > 4) | (dd.ew_ca4227 > 5))[gi].mean():.3f}; score_spectra cpu {1e3*dt/len(v):.2f} ms/spec")
print("  giant flag among giants", dd.giant[gi].mean(), "median Mg b", dd.ew_mgb[gi].median())
hi = gi & (v.feh > 0.2).to_numpy()
print(f"  metal-rich ([Fe/H]>0.2) giants n {hi.sum()}: new DWARF {dw[hi].mean():.3f}, old EW-dwarf {((dd.ew_mgb > 4) | (dd.ew_ca4227 > 5))[hi].mean():.3f}")
for thr in (3.5, 3.6, 3.7):
    print(f"  thr {thr}: giants flagged DWARF {((finish(dd.copy(), DomainRules(dwarf_logg=thr)).ood_flags & 64) > 0)[gi].mean():.3f}")
d = dd.logg_fit - v.logg.to_numpy()
print(f"  logg resid giants: med {np.median(d[gi]):+.2f} MAD {1.4826*np.median(np.abs(d[gi]-np.median(d[gi]))):.2f}; feh resid {np.median(dd.feh_fit[gi]-v.feh.to_numpy()[gi]):+.2f}; teff {np.median(dd.teff_fit[gi]-v.teff.to_numpy()[gi]):+.0f}")

# survey
rows, tr = [], []
for s in datasets.load_survey(n=4000, chunk_size=2000, seed=0):
    sp = [s.spectrum(i) for i in range(len(s))]
    rows.append(score_spectra(sp)); tr.append(s.labels)
    pre = Preprocessor().run_spectra(sp, keep_stages=True)
    t0 = time.process_time(); fit_labels(pre.stages["resampled"], pre.wavelength, s.labels["z"].to_numpy())
    print(f"fit alone: {1e3 * (time.process_time() - t0) / len(sp):.3f} ms CPU per spectrum ({len(sp)} spectra)")
S = pd.concat(rows, ignore_index=True); T = pd.concat(tr, ignore_index=True)
tg = (T.true_logg < 3.5).to_numpy(); dwarf = (T.true_stage == "dwarf").to_numpy()
print("SURVEY n", len(S), "stages", T.true_stage.value_counts().to_dict(), "true logg<3.5", tg.sum(), "objclass", S.objclass.value_counts().to_dict())
def report(g, nm):
    print(f"  {nm}: giant flagged {g.sum()}; completeness {(g&tg).sum()/tg.sum():.3f} ({(g&tg).sum()}/{tg.sum()}); contamination {(g&~tg).sum()/max(g.sum(),1):.4f} ({(g&~tg).sum()}); true dwarfs called giant {(g&dwarf).sum()}/{dwarf.sum()}")
report(old_rule(S).to_numpy(), "old")
for thr in (3.5, 3.6, 3.7, 3.8):
    report(sweep(S, thr), f"thr {thr}")
notok = ((S.ood_flags & int(OOD.HOT | OOD.COOL)) > 0).to_numpy()
print("  true giants flagged HOT/COOL", (notok & tg).sum(), "true giants flagged DWARF", (((S.ood_flags & 64) > 0) & tg).sum())
print("  stage x flags:\n", pd.crosstab(T.true_stage, [S.giant]).to_string())
