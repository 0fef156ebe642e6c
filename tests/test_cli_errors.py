"""User errors on the command line: one clear line on stderr and a non-zero exit, never a traceback."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from rgbkit.cli import main


def _run(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse refusals
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def a_file(tmp_path):
    p = tmp_path / "plain.txt"
    p.write_text("x")
    return p


@pytest.mark.parametrize("argv, fragment", [
    (["catalog", "IN", "-o", "OUT", "--chunk-size", "0"], "argument --chunk-size: 0 is not positive"),
    (["catalog", "IN", "-o", "OUT", "--workers", "-1"], "argument --workers: -1 is not 0 or more"),
    (["fetch", "1", "--retries", "-2"], "argument --retries: -2 is not 0 or more"),
    (["fetch", "1", "--workers", "0"], "argument --workers: 0 is not positive"),
    (["train", "--target", "age", "--out", "OUT", "--members", "0"], "argument --members: 0 is not positive"),
    (["train", "--target", "age", "--out", "OUT", "--epochs", "-5"], "argument --epochs: -5 is not positive"),
    (["train", "--target", "age", "--out", "OUT", "--lr", "0"], "argument --lr: 0 is not positive"),
    (["summary", "IN", "--workers", "abc"], "argument --workers: 'abc' is not a whole number"),
])
def test_numbers_out_of_range_are_argument_errors(capsys, tmp_path, argv, fragment):
    argv = [a.replace("IN", str(tmp_path)).replace("OUT", str(tmp_path / "o")) for a in argv]
    code, _, err = _run(capsys, *argv)
    assert code == 2 and fragment in err and "Traceback" not in err


def test_user_errors_are_one_line(capsys, tmp_path, a_file, real_fits):
    empty = tmp_path / "empty"
    empty.mkdir()
    good = tmp_path / "good"
    good.mkdir()
    shutil.copy(real_fits[0], good / real_fits[0].name)
    (tmp_path / "notamodel").mkdir()
    cases = [
        (["summary", str(tmp_path / "nope")], "no such file or folder"),
        (["summary", str(empty)], "no LAMOST files"),
        (["summary", str(tmp_path / "*.nothing.fits")], "no files match"),
        (["predict", str(tmp_path / "nope.fits")], "no such file or folder"),
        (["predict", str(empty)], "no LAMOST files"),
        (["predict", str(good), "--models", str(tmp_path / "notamodel")], "missing card.json"),
        (["predict", str(good), "--models", str(tmp_path / "missing")], "no such model folder"),
        (["predict", str(good), "--out", str(tmp_path)], "is a folder"),
        (["predict", str(good), "--out", str(tmp_path / "x.xlsx")], "unknown table format"),
        (["predict", str(good), "--out", str(a_file / "x.csv")], "is a file, not a folder"),
        (["catalog", str(good), "-o", str(a_file)], "is a file; give a folder"),
        (["catalog", str(tmp_path / "nope"), "-o", str(tmp_path / "o")], "no such file or folder"),
        (["catalog", str(empty), "-o", str(tmp_path / "o")], "no LAMOST files"),
        (["catalog", str(good), "-o", str(tmp_path / "o"), "--age-model", str(tmp_path / "notamodel")],
         "--age-model"),
        (["catalog", "-o", str(tmp_path / "o")], "give input files"),
        (["fetch"], "no obsids given"),
        (["fetch", "../../etc/x", "--cache", str(tmp_path / "c")], "invalid obsid"),
        (["train", "--target", "age", "--out", str(a_file), "--members", "1"], "is a file; give a folder"),
        (["train", "--target", "age", "--out", str(tmp_path / "m"), "--data", "mine"], "only 'demo'"),
    ]
    for argv, fragment in cases:
        code, _, err = _run(capsys, *argv)
        lines = [x for x in err.splitlines() if x.strip()]
        assert code != 0, argv
        assert "Traceback" not in err and fragment in err, (argv, err[-500:])
        assert len(lines) == 1 and lines[0].startswith(f"rgbkit {argv[0]}: error:"), (argv, err[-500:])
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").iterdir())


def test_a_tampered_model_folder_is_one_line(capsys, tmp_path, real_fits):
    from rgbkit.ensemble import PRETRAINED_DIR

    folder = tmp_path / "age"
    shutil.copytree(PRETRAINED_DIR / "age", folder)
    card = (folder / "card.json").read_text().replace('"spread_scale": ', '"spread_scale": 2 * ')
    (folder / "card.json").write_text(card)
    code, _, err = _run(capsys, "predict", str(real_fits[0]), "--models", str(folder))
    assert code == 2 and f"model folder {folder}: card.json is not valid JSON" in err
    shutil.copy(PRETRAINED_DIR / "age" / "card.json", folder / "card.json")
    (folder / "card.json").write_text((folder / "card.json").read_text().replace('"target": "age"', '"target": "mass"'))
    code, _, err = _run(capsys, "predict", str(real_fits[0]), "--models", str(folder))
    assert code == 2 and "changed after it was saved" in err and len(err.strip().splitlines()) == 1


def test_nothing_readable_is_a_failure(capsys, tmp_path):
    (tmp_path / "junk.fits").write_text("not fits")
    code, out, err = _run(capsys, "predict", str(tmp_path), "--out", str(tmp_path / "p.csv"))
    assert code == 2 and "nothing to predict" in err and "refused" in out
    assert not (tmp_path / "p.csv").exists()
    code, out, _ = _run(capsys, "summary", str(tmp_path))
    assert code == 1 and "0 spectra read, 1 refused" in out


def test_a_tampered_model_folder_fails_a_pool_catalog_in_one_line(tmp_path, real_fits):
    """With a process pool the models are loaded in the workers (the command never imports
    torch); a bad folder still stops the run with one line naming it."""
    from rgbkit.ensemble import PRETRAINED_DIR

    folder = tmp_path / "age"
    shutil.copytree(PRETRAINED_DIR / "age", folder)
    (folder / "card.json").write_text((folder / "card.json").read_text().replace('"target": "age"', '"target": "mass"'))
    out = tmp_path / "c"
    cmd = [sys.executable, "-m", "rgbkit.cli", "catalog", *map(str, real_fits[:8]), "-o", str(out),
           "--workers", "2", "--chunk-size", "2", "--quiet", "--age-model", str(folder)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr[-800:]
    assert str(folder) in lines[0] and "changed after it was saved" in lines[0]
    assert not list((out / "parts").glob("part-*.parquet"))


def test_the_command_line_parser_does_not_import_torch():
    code = "import sys; from rgbkit.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
