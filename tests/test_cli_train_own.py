"""`rgbkit train --spectra ... --labels ...` end to end on the Kepler stand-in, then predict and catalog with the folder."""
import json

import pandas as pd
import pytest

from rgbkit.cli import main
from rgbkit.datasets import write_kepler_standin


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    return write_kepler_standin(tmp_path_factory.mktemp("kepler-cli"), n=80, seed=2)


def test_cli_check_prints_the_match_report(standin, capsys):
    assert main(["train", "--target", "mass", "--spectra", str(standin.spectra), "--labels",
                 str(standin.tables["yu2018_cds"]), "--states", "RGB", "--check", "--out", "unused"]) == 0
    out = capsys.readouterr().out
    n_rgb_rows = int((pd.read_csv(standin.tables["apokasc2_csv"])["ES"] == 1).sum())
    assert "match report (kic)" in out and "mass <- M" in out
    assert f"label table: {80 + 16} rows, {n_rgb_rows} usable" in out and "1 refused by the reader" in out


def test_cli_bad_table_says_what_to_pass(standin, tmp_path):
    t = pd.read_csv(standin.tables["apokasc2_csv"]).drop(columns=["LogAge"])
    t["Age"] = t["Age"] * 1e9
    t.to_csv(tmp_path / "yr.csv", index=False)
    with pytest.raises(SystemExit, match="look like yr.*--age-unit yr"):
        main(["train", "--target", "age", "--spectra", str(standin.spectra), "--labels", str(tmp_path / "yr.csv"),
              "--out", str(tmp_path / "m")])
    assert not (tmp_path / "m").exists()


def test_cli_train_predict_catalog(standin, tmp_path, capsys):
    out = tmp_path / "age-model"
    assert main(["train", "--target", "age", "--spectra", str(standin.spectra / "*.fits*"),
                 "--labels", str(standin.tables["lamost_votable"]), "--match", "position", "--radius", "1",
                 "--duplicates", "all", "--arch", "tiny", "--members", "2", "--epochs", "2", "--device", "cpu",
                 "--fractions", "0.6", "0.2", "0.2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    n_files = len(standin.truth)
    assert f"matched: {n_files} spectra of {n_files} stars" in text and "test (chose nothing)" in text
    card = json.loads((out / "card.json").read_text())
    assert card["data"]["provenance"]["match"]["by"] == "position"
    assert card["data"]["provenance"]["match"]["radius_arcsec"] == 1.0
    assert card["data"]["split"]["fractions"] == [0.6, 0.2, 0.2]
    pred = tmp_path / "pred.csv"
    assert main(["predict", str(standin.spectra), "--models", str(out), "--out", str(pred)]) == 0
    df = pd.read_csv(pred)
    assert len(df) == n_files + 1 and df["age"].notna().sum() == df["ok"].sum() > 0.9 * n_files
    assert main(["catalog", str(standin.spectra), "-o", str(tmp_path / "cat"), "--age-model", str(out),
                 "--mass-model", "none", "--classifier", "none", "--workers", "0", "--quiet"]) == 0
    cat = pd.read_parquet(tmp_path / "cat" / "catalog.parquet")
    assert cat["age"].notna().sum() > 0.8 * n_files
