"""Label catalogs on the real files in ../shared/data/catalogs, and cross-matching."""
import numpy as np
import pandas as pd
import pytest
from astropy.table import Table

from rgbkit.io.labels import CANONICAL, LabelFormatError, crossmatch, read_labels
from rgbkit.io.lamost import read_lamost, read_many


def test_apokasc2_canonical(shared_data):
    df = read_labels(shared_data / "catalogs/apokasc2.csv")
    assert list(df.columns[: len(CANONICAL)]) == CANONICAL
    assert len(df) == 6355
    counts = df["evstate"].value_counts()
    assert counts["RGB"] == 3619 and counts["RC"] == 2689
    first = df.iloc[0]
    assert first["kic"] == 1027337 and first["mass"] == pytest.approx(1.227)
    assert first["age"] == pytest.approx(6.2806, rel=1e-4)
    assert df["mass"].between(0.5, 4).mean() > 0.99


def test_dr1_pipeline_labels_match_dr1_files_by_designation(shared_data):
    labels = read_labels(shared_data / "catalogs/B6212_lasp_dr1_labels.csv")
    assert len(labels) == 131
    spectra, _ = read_many(shared_data / "lamost/dr1", progress=False)
    matched, unmatched_spec, unmatched_lab = crossmatch(spectra, labels)
    assert matched.attrs["matched_by"] == "designation"  # DR1 headers have no OBSID
    assert len(matched) + len(unmatched_spec) == 120
    assert len(matched) == 90
    # the match is right: header SNR equals the catalog's g-band SNR for same-visit rows
    same = matched[matched["same_obs"]]
    assert len(same) > 50
    np.testing.assert_allclose(same["snr_g"], same["snrg"], rtol=1e-3)
    # position matching finds the same pairs at zero separation
    by_pos, _, _ = crossmatch(spectra, labels, by="position", max_sep_arcsec=1.0)
    assert set(by_pos["designation"]) == set(matched["designation"])
    assert by_pos["sep_arcsec"].max() < 0.1


def test_fits_label_table_with_coordinates(shared_data, tmp_path):
    df = read_labels(shared_data / "catalogs/thecannon_lamost_dr2_apogee_labels.fits")
    assert len(df) == 1387
    assert df["teff"].between(3500, 6000).mean() > 0.95
    assert df["feh"].notna().all() and df["alpha_fe"].notna().all()
    # a spectrum at one catalog position matches it by sky position
    s = read_lamost(shared_data / "lamost/dr5/spec-55959-B5595902_sp08-132.fits")
    s.meta.ra, s.meta.dec = df["ra"].iloc[7] + 0.5 / 3600, df["dec"].iloc[7]
    m, us, ul = crossmatch([s], df, by="position", max_sep_arcsec=2)
    assert len(m) == 1 and len(ul) == 1386
    assert m["sep_arcsec"].iloc[0] == pytest.approx(0.5 * np.cos(np.radians(df["dec"].iloc[7])), abs=0.01)
    m, us, _ = crossmatch([s], df, by="position", max_sep_arcsec=0.1)
    assert len(m) == 0 and len(us) == 1


def test_kic_match_from_tcomment(shared_data):
    s = read_lamost(shared_data / "lamost/dr6/spec-57287-KP193637N444141V03_sp10-161.fits.gz")
    labels = pd.DataFrame({"KIC": [123, 8098300], "Mass": [1.0, 1.3], "Age": [5.0, 3.0]})
    from rgbkit.io.labels import canonicalise

    m, _, ul = crossmatch([s], canonicalise(labels), by="kic")
    assert len(m) == 1 and m["mass"].iloc[0] == 1.3 and len(ul) == 1


@pytest.mark.parametrize("suffix", [".parquet", ".vot", ".fits", ".csv"])
def test_formats_and_mapping_round_trip(tmp_path, suffix):
    raw = pd.DataFrame({"KICID": [1, 2], "M_star": [1.1, 0.9], "tau": [4.0, 9.0], "Teff": [4800.0, 4600.0]})
    path = tmp_path / f"labels{suffix}"
    if suffix == ".parquet":
        raw.to_parquet(path)
    elif suffix == ".csv":
        raw.to_csv(path, index=False)
    else:
        Table.from_pandas(raw).write(path, format="votable" if suffix == ".vot" else "fits")
    df = read_labels(path, mapping={"mass": "M_star", "age": "tau"})
    assert df["kic"].tolist() == [1, 2]
    assert df["mass"].tolist() == [1.1, 0.9] and df["age"].tolist() == [4.0, 9.0]
    assert df["teff"].tolist() == [4800.0, 4600.0]
    assert df["logg"].isna().all()


def test_bad_catalogs(tmp_path):
    with pytest.raises(LabelFormatError, match="no such file"):
        read_labels(tmp_path / "nope.csv")
    (tmp_path / "x.xyz").write_text("a b c")
    with pytest.raises(LabelFormatError, match="unknown catalog format"):
        read_labels(tmp_path / "x.xyz")
    (tmp_path / "x.dat").write_text("a b c")  # a CDS table without its ReadMe
    with pytest.raises(LabelFormatError, match="x.dat: a CDS .dat table is described by its ReadMe"):
        read_labels(tmp_path / "x.dat")
    (tmp_path / "bad.fits").write_text("not fits at all")
    with pytest.raises(LabelFormatError, match="bad.fits: cannot read"):
        read_labels(tmp_path / "bad.fits")
    pd.DataFrame({"a": [1]}).to_csv(tmp_path / "ok.csv", index=False)
    with pytest.raises(LabelFormatError, match="mapped column 'Mass'"):
        read_labels(tmp_path / "ok.csv", mapping={"mass": "Mass"})
