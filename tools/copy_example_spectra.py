"""Copy the curated real LAMOST example files from ../shared/data into rgbkit/data/examples.

Dev-time only (the package never reads ../shared): run it once after changing
``FILES`` below; it copies the files unchanged, the licence notices beside
them, the LASP DR1 labels of the copied DR1 files, and writes SOURCES.md.
    python tools/copy_example_spectra.py [--shared ../shared/data]
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DEST = REPO / "rgbkit" / "data" / "examples"

# (path under lamost/, what it is, source repository, licence file)
LL, PHEW, LASPEC, CMOST = ("grd349/LearningLAMOST", "grd349-LearningLAMOST-MIT.txt"), \
    ("CoolStarsCU/PHEW", "CoolStarsCU-PHEW-MIT.txt"), ("hypergravity/laspec", "hypergravity-laspec-MIT.txt"), \
    ("YunyuG/Cmost", "YunyuG-Cmost-Apache-2.0.txt")
FILES = [
    ("dr1/spec-55862-B6212_sp06-165.fits", "G5 giant, solar metallicity (LASP log g 3.28)", LL),
    ("dr1/spec-55862-B6212_sp06-143.fits", "F9 giant, metal-poor (LASP [Fe/H] -0.89)", LL),
    ("dr1/spec-55862-B6212_sp06-119.fits", "G5 giant (LASP log g 2.50)", LL),
    ("dr1/spec-55862-B6212_sp06-214.fits", "G5 giant (LASP log g 2.67)", LL),
    ("dr1/spec-55862-B6212_sp06-024.fits", "G5 giant, low log g (2.17)", LL),
    ("dr1/spec-55862-B6212_sp06-147.fits", "K3 giant, metal-rich (LASP [Fe/H] +0.28)", LL),
    ("dr1/spec-55862-B6212_sp06-164.fits", "G5 giant, very metal-poor (LASP [Fe/H] -1.62)", LL),
    ("dr1/spec-55862-B6212_sp06-146.fits", "G5 giant near the subgiant limit (LASP log g 3.27), SNR 14", LL),
    ("dr1/spec-55862-B6212_sp06-052.fits", "K1 star with the blue/red arm join unfilled (a gap: refused by the zero-pixel cut)", LL),
    ("dr1/spec-55862-B6212_sp06-129.fits", "G5 dwarf (LASP log g 4.60)", LL),
    ("dr1/spec-55862-B6212_sp06-020.fits", "K5 dwarf (LASP log g 4.65)", LL),
    ("dr1/spec-55862-B6212_sp06-125.fits", "A1IV hot star (LASP Teff 7,675 K)", LL),
    ("dr5/spec-57443-KP084529N184902V01_sp15-063.fits", "K1 star, SNR 118", PHEW),
    ("dr5/spec-55977-F5597707_sp03-208.fits", "M0 star", PHEW),
    ("dr5/spec-55916-F5591604_sp13-181.fits", "DB white dwarf", PHEW),
    ("dr5/spec-56249-HD084529N184902B01_sp11-177.fits", "CLASS 'Unknown', no redshift", PHEW),
    ("dr6/spec-57287-KP193637N444141V03_sp10-161.fits.gz", "Kepler target KIC 8098300, an F5 dwarf", LASPEC),
    ("dr7/spec-58397-EG014118N254444M01_sp03-031.fits", "G3 star, SNR 154", LASPEC),
    ("dr7/spec-55859-F5902_sp01-001_dr7.fits.gz", "G7 star; the same observation as dr9/spec-55859-F5902_sp01-001", CMOST),
    ("dr9/spec-55859-F5902_sp01-001.fits.gz", "G7 star (DR9 table layout of the DR7 file above)", CMOST),
    ("dr9/spec-55859-F5902_sp01-013_dr8.fits.gz", "A2 star (named dr8, DATA_V says DR9)", CMOST),
    ("dr13/spec-60591-LN042429N340750BM01_sp01-001.fits.gz", "G5 star, SNR 102", CMOST),
    ("dr13/spec-60591-LN042429N340750BM01_sp01-004.fits.gz", "dM5 M dwarf", CMOST),
    ("dr13/spec-60591-LN042429N340750BM01_sp01-005.fits.gz", "quasar (CLASS QSO, z = 0.31)", CMOST),
]
LABEL_COLUMNS = ["file", "designation", "obsid", "ra", "dec", "snrg", "snrr", "class", "subclass",
                 "teff", "teff_err", "logg", "logg_err", "feh", "feh_err", "rv", "rv_err"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    args = ap.parse_args(argv)
    if DEST.exists():
        shutil.rmtree(DEST)
    (DEST / "licenses").mkdir(parents=True)
    rows = []
    for rel, what, (repo, lic) in FILES:
        (DEST / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.shared / "lamost" / rel, DEST / rel)
        shutil.copyfile(args.shared / "licenses" / lic, DEST / "licenses" / lic)
        rows.append(f"| `{rel}` | {what} | {repo} | `licenses/{lic}` |")
    lab = pd.read_csv(args.shared / "catalogs" / "B6212_lasp_dr1_labels.csv")
    dr1 = {Path(rel).name for rel, *_ in FILES if rel.startswith("dr1/")}
    lab = lab[lab["same_obs"] & lab["file"].isin(dr1)][LABEL_COLUMNS].sort_values("file")
    lab["giant"] = (lab["logg"] < 3.6) & (lab["teff"] < 5300)
    lab.to_csv(DEST / "lasp_dr1_labels.csv", index=False)
    (DEST / "SOURCES.md").write_text(
        "# Real LAMOST example spectra shipped with rgbkit\n\n"
        "These files are REAL LAMOST low-resolution spectra, copied unchanged from public repositories "
        "(the licence notices are in `licenses/`). `rgbkit.examples.example_files()` lists them.\n\n"
        "| file | what | source repository | licence |\n|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
        "`lasp_dr1_labels.csv`: the LAMOST pipeline's (LASP DR1) Teff, log g, [Fe/H] and RV of the DR1 files above, "
        "matched by designation; derived from grd349/LearningLAMOST `Data/my_data3.csv` (MIT, "
        "`licenses/grd349-LearningLAMOST-MIT.txt`). `giant` = LASP log g < 3.6 and Teff < 5,300 K.\n"
        "These labels are spectroscopic: there are no asteroseismic masses or ages for these stars.\n")
    size = sum(p.stat().st_size for p in DEST.rglob("*") if p.is_file())
    print(f"{len(FILES)} files, {size / 1e6:.2f} MB in {DEST}")


if __name__ == "__main__":
    main()
