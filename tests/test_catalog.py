"""The survey catalog: real files, out-of-domain flags, formats, resumption, Dask."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from rgbkit.catalog.domain import REFUSED
from rgbkit.catalog import (COLUMNS, OOD, ModelRef, build_catalog, line_indices, read_catalog,
                            score_files)
from rgbkit.classify import Classifier
from rgbkit.ensemble import Ensemble
from rgbkit.models.densenet import DenseNet1D, tiny_config
from rgbkit.preprocess import target_grid
from rgbkit.train import TargetScaler

REPO = Path(__file__).resolve().parents[1]


def _tiny(target, n=3, seed=0):
    torch.manual_seed(seed)
    if target == "class":
        return Classifier([DenseNet1D(tiny_config(head="classification", num_classes=2)) for _ in range(2)])
    scaler = TargetScaler("log", 1.0, 0.5) if target == "age" else TargetScaler("log", 0.1, 0.2)
    return Ensemble([DenseNet1D(tiny_config()) for _ in range(n)], scaler, target, device="cpu")


@pytest.fixture(scope="module")
def models():
    return {"age": _tiny("age"), "mass": _tiny("mass", seed=1), "classifier": _tiny("class")}


@pytest.fixture(scope="module")
def model_dirs(models, tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    for k, m in models.items():
        m.save(d / k)
    return d


@pytest.fixture(scope="module")
def real_catalog(real_fits, models, tmp_path_factory):
    out = tmp_path_factory.mktemp("cat")
    path = build_catalog(real_fits, out, workers=0, chunk_size=64, progress=False, **models)
    return read_catalog(path), out


def test_line_index_of_a_known_line():
    grid = target_grid()
    flux = np.ones((2, grid.size), np.float32) * np.array([[2.0], [5.0]], np.float32)
    depth, sigma = 0.4, 2.0  # EW = depth * sigma * sqrt(2 pi)
    line = 1 - depth * np.exp(-0.5 * ((grid - 5178.0) / sigma) ** 2)
    flux *= line.astype(np.float32)
    ew = line_indices(flux, grid)
    assert ew["mgb"] == pytest.approx([depth * sigma * np.sqrt(2 * np.pi)] * 2, rel=1e-3)
    assert np.abs(ew["halpha"]).max() < 1e-5


def test_real_files_one_row_each_with_documented_columns(real_catalog, real_fits):
    df, out = real_catalog
    assert list(df.columns) == list(COLUMNS)
    assert len(df) == len(real_fits) == df["file"].nunique()
    assert set(df["file"]) == {str(p) for p in real_fits}
    assert df["read_ok"].all() and len(pd.read_csv(out / "errors.csv")) == 0
    star = df["objclass"] == "STAR"
    refused = (df["ood_flags"] & int(REFUSED)) != 0
    assert df.loc[star & df["pre_ok"] & ~refused, "age"].notna().all()
    assert df.loc[refused, ["age", "mass", "age_debiased", "mass_debiased"]].isna().all().all()
    scored = df["age"].notna()
    assert scored.sum() >= 20
    assert (df.loc[scored, "age_lo"] <= df.loc[scored, "age"]).all()
    deb = df["age_debiased"].notna()  # stand-in models without a de-biasing calibration give NaN
    assert (df.loc[deb, "age_debiased_lo"] <= df.loc[deb, "age_debiased"]).all()
    assert (df.loc[deb, "age_debiased"] <= df.loc[deb, "age_debiased_hi"]).all()
    assert ((df["p_rgb"] >= 0) & (df["p_rgb"] <= 1)).sum() == (star & df["pre_ok"]).sum()


def test_out_of_domain_stars_are_flagged(real_catalog):
    df, _ = real_catalog
    sub = df["subclass"].fillna("")
    a_stars = sub.str.startswith("A")
    assert a_stars.sum() >= 20
    assert (df.loc[a_stars, "ood_flags"] & int(OOD.HOT)).all() and not df.loc[a_stars, "giant"].any()
    m_types = sub.str.match(r"^(M|dM)")
    assert m_types.sum() >= 15 and (df.loc[m_types, "ood_flags"] & int(OOD.COOL)).all()
    qso = df["objclass"] == "QSO"
    assert qso.sum() == 1 and df.loc[qso, "ood"].all() and "not a star (CLASS QSO)" in df.loc[qso, "ood_reason"].iat[0]
    assert np.isnan(df.loc[qso, "age"]).all()  # no age for a quasar
    unknown = df["objclass"] == "Unknown"
    assert df.loc[unknown, "ood"].all()
    dm5 = sub == "dM5"
    assert "M type" in df.loc[dm5, "ood_reason"].iat[0] and "low SNR" in df.loc[dm5, "ood_reason"].iat[0]
    # every flagged row says why, every clean row says nothing
    assert (df["ood"] == (df["ood_reason"] != "")).all()
    assert (df["ood"] == (df["ood_flags"] != 0)).all()


def test_giant_flag_agrees_with_lasp_logg(real_catalog, shared_data):
    from rgbkit.io.labels import crossmatch, normalise_designation, read_labels

    df, _ = real_catalog
    df = df.assign(designation=[normalise_designation(v) for v in df["designation"]])
    labels = read_labels(shared_data / "catalogs" / "B6212_lasp_dr1_labels.csv")
    m, _, _ = crossmatch(df.rename(columns={"file": "path"}), labels, by="designation")
    m = m[m["logg"].notna()]
    assert len(m) == 90
    truth = (m["logg"] < 3.5).to_numpy()
    giant = m["giant"].to_numpy(bool)
    # measured with the emulator fit (logg_fit < 3.6): 87 of 90 agree; 13 of 16 LASP giants found
    # (two of the three missed have SNR < 10), no dwarf called a giant. The Mg b / Ca 4227 rule
    # before: 86 of 90, 14 giants found, 2 dwarfs called giants.
    assert (giant == truth).sum() >= 87, (giant == truth).sum()
    assert (giant & truth).sum() >= 13 and (giant & ~truth).sum() == 0
    # the metal-rich LASP giants ([Fe/H] +0.2, +0.28; Mg b 4.1-4.5 A) are giants now
    rich = truth & (m["feh"] > 0.1).to_numpy()
    assert rich.sum() == 2 and giant[rich].all() and (m.loc[rich, "ew_mgb"] > 4.0).all()
    fitted = np.isfinite(m["logg_fit"]).to_numpy() & (m["snr_g"] >= 15).to_numpy() & (m["teff"] < 5400).to_numpy()
    dlogg = (m["logg_fit"] - m["logg"])[fitted]
    assert fitted.sum() >= 20 and abs(dlogg.median()) < 0.5 and (dlogg.abs() < 1.0).mean() > 0.9


def test_metal_rich_simulated_giant_is_not_a_dwarf_and_dwarfs_are():
    from rgbkit import simulate as sim
    from rgbkit.catalog import score_spectra

    lab = pd.DataFrame({"teff": [4450.0, 4800.0, 5000.0, 4500.0], "logg": [2.5, 3.0, 4.5, 4.6],
                        "feh": [0.3, 0.2, 0.0, 0.3], "snr": [60.0] * 4})
    lab["alpha_fe"] = 0.0
    lab["c_n"] = [float(sim.cn_after_dredge_up(1.2, f)) if g < 3.5 else 0.0 for f, g in zip(lab.feh, lab.logg)]
    lab["c_fe"] = 0.45 * lab["c_n"]
    s = sim.simulate_spectra(lab, seed=1)
    df = score_spectra([s.spectrum(i) for i in range(len(s))])
    dwarf = (df["ood_flags"] & int(OOD.DWARF)) > 0
    # metal-rich giants: Mg b above the old 4.0 A limit, yet giants by the fit
    assert (df["ew_mgb"][:2] > 4.0).all()
    assert df["giant"][:2].all() and not dwarf[:2].any(), df[["logg_fit", "teff_fit", "feh_fit"]]
    assert not df["giant"][2:].any() and dwarf[2:].all(), df[["logg_fit", "teff_fit", "feh_fit"]]
    assert (np.abs(df["logg_fit"] - lab["logg"]) < 0.6).all() and (np.abs(df["teff_fit"] - lab["teff"]) < 300).all()
    assert "dwarf (fitted logg" in df["ood_reason"].iat[2]


def test_formats_carry_column_docs(real_fits, models, tmp_path):
    files = real_fits[::15]
    frames = {}
    for fmt in ("parquet", "fits", "csv"):
        path = build_catalog(files, tmp_path / fmt, fmt=fmt, workers=0, progress=False, **models)
        assert path.name == f"catalog.{fmt}"
        frames[fmt] = read_catalog(path)
        assert len(frames[fmt]) == len(files)
    import pyarrow.parquet as pq
    from astropy.table import Table

    schema = pq.read_schema(tmp_path / "parquet" / "catalog.parquet")
    assert schema.field("age").metadata[b"unit"] == b"Gyr"
    assert json.loads(schema.metadata[b"rgbkit"])["columns"]["mass"]["unit"] == "Msun"
    t = Table.read(tmp_path / "fits" / "catalog.fits")
    assert str(t["mass"].unit) == "solMass" and "calibration" in t["age_std"].description
    head = (tmp_path / "csv" / "catalog.csv").read_text().splitlines()
    assert "# age [Gyr]: age, mean over the age ensemble's members" in head
    for fmt in ("fits", "csv"):
        np.testing.assert_allclose(frames[fmt]["age"], frames["parquet"]["age"], rtol=1e-6)
        assert list(frames[fmt]["file"]) == list(frames["parquet"]["file"])


def test_bad_files_get_a_row_and_an_error_line(real_fits, models, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(real_fits[0], src / "good.fits")
    (src / "text.fits").write_text("not a fits file at all")
    (src / "cut.fits").write_bytes(real_fits[1].read_bytes()[:5000])
    path = build_catalog(src, tmp_path / "out", workers=0, progress=False, **models)
    df = read_catalog(path).set_index(pd.Index([Path(f).name for f in read_catalog(path)["file"]]))
    assert len(df) == 3 and df.loc["good.fits", "read_ok"] and not df.loc["text.fits", "read_ok"]
    assert df.loc["cut.fits", "ood_flags"] & int(OOD.UNREADABLE)
    err = pd.read_csv(tmp_path / "out" / "errors.csv")
    assert sorted(Path(f).name for f in err["file"]) == ["cut.fits", "text.fits"]
    assert err["reason"].str.contains("SIMPLE").any() and err["reason"].str.contains("truncated").any()


def test_resume_skips_done_and_drops_orphans(real_fits, models, tmp_path):
    files = real_fits[:40]
    out = tmp_path / "out"
    build_catalog(files[:20], out, workers=0, chunk_size=10, progress=False, **models)
    parts = sorted((out / "parts").glob("part-*.json"))
    assert len(parts) == 2
    # a killed run can leave a part without its manifest and a temporary file
    shutil.copy(parts[0].with_suffix(".parquet"), out / "parts" / "part-000007.parquet")
    (out / "parts" / "part-000008.parquet.tmp123").write_bytes(b"half")
    path = build_catalog(files, out, workers=0, chunk_size=10, progress=False, **models)
    df = read_catalog(path)
    assert len(df) == 40 and df["file"].nunique() == 40
    assert not (out / "parts" / "part-000007.parquet").exists()


def test_killed_run_resumes_without_loss_or_duplicates(real_fits, model_dirs, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for k in range(2):  # 302 inputs: long enough to be killed half way
        for i, p in enumerate(real_fits):
            (src / f"c{k}_{i:03d}_{p.name}").symlink_to(p)
    n = len(list(src.iterdir()))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "rgbkit.cli", "catalog", str(src), "-o", str(out), "--workers", "0",
           "--chunk-size", "8", "--quiet", "--age-model", str(model_dirs / "age"),
           "--mass-model", str(model_dirs / "mass"), "--classifier", str(model_dirs / "classifier")]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline and len(list((out / "parts").glob("*.json"))) < 3:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list((out / "parts").glob("*.json")))
    assert 3 <= done_before < n // 8 and not (out / "catalog.parquet").exists()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    df = read_catalog(out)
    assert len(df) == n and df["file"].nunique() == n
    run = json.loads((out / "run.json").read_text())
    assert run["already_done"] >= 8 * done_before and run["scored_now"] == n - run["already_done"]


def test_process_pool_and_dask_match_serial(real_fits, models, model_dirs, tmp_path):
    from distributed import Client, LocalCluster

    files = real_fits[::5]
    refs = {k: ModelRef(f"{type(m).__module__}.{type(m).__qualname__}", str(model_dirs / k))
            for k, m in models.items()}
    serial = read_catalog(build_catalog(files, tmp_path / "s", workers=0, chunk_size=8, progress=False, **models))
    pool = read_catalog(build_catalog(files, tmp_path / "p", workers=2, chunk_size=8, progress=False, **refs))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        dsk = read_catalog(build_catalog(files, tmp_path / "d", dask=client, chunk_size=8, progress=False, **refs))
        assert len(client.scheduler_info()["workers"]) == 2
        by_address = read_catalog(build_catalog(files, tmp_path / "a", dask=cluster.scheduler_address,
                                                chunk_size=16, progress=False, **refs))
    for other in (pool, dsk, by_address):
        other = other.set_index("file").loc[serial["file"]].reset_index()
        assert len(other) == len(serial) == len(files)
        np.testing.assert_allclose(other["age"], serial["age"], rtol=1e-5)
        np.testing.assert_allclose(other["p_rgb"], serial["p_rgb"], rtol=1e-5)
        assert (other["ood_reason"] == serial["ood_reason"]).all()


def test_stand_in_model_objects_run_in_process(real_fits, tmp_path):
    class Const:
        """Any object with predict(X) -> .mean/.std works (scored in this process)."""

        def predict(self, X, batch_size=1024):
            from types import SimpleNamespace

            return SimpleNamespace(mean=np.full(len(X), 3.0), std=np.full(len(X), 0.5))

    df, errors = score_files(real_fits[:5], age=Const(), mass=None, classifier=None)
    assert not errors and 0 < df["pre_ok"].sum() < 5  # two of these DR1 files have gaps
    ok = (df["pre_ok"] & ((df["ood_flags"] & int(REFUSED)) == 0)).to_numpy()  # refused: no age
    assert ok.sum() >= 2
    assert (df.loc[ok, "age"] == 3.0).all() and (df.loc[ok, "age_hi"] == 3.5).all()
    assert df.loc[~ok, "age"].isna().all() and df["mass"].isna().all() and df["p_rgb"].isna().all()
    path = build_catalog(real_fits[:5], tmp_path, age=Const(), mass=None, classifier=None, progress=False)
    assert (read_catalog(path)["age_lo"].dropna() == 2.5).sum() == ok.sum()
    assert not (df["ood_flags"] & int(OOD.LABEL_RANGE)).any()
    young = Const()
    young.card = {"data": {"label_range": [0.5, 2.0]}}  # trained on 0.5-2 Gyr: 3 Gyr is outside
    df, _ = score_files(real_fits[:5], age=young)
    assert ((df["ood_flags"] & int(OOD.LABEL_RANGE)) != 0).tolist() == df["pre_ok"].tolist()
    assert df.loc[ok, "ood_reason"].str.contains("age 3 outside the training range 0.5-2").all()


def test_cli_help_lists_catalog_and_fetch():
    from rgbkit.cli import build_parser

    p = build_parser()
    args = p.parse_args(["catalog", "x", "-o", "y", "--dask", "tcp://127.0.0.1:8786"])
    assert args.dask == "tcp://127.0.0.1:8786" and args.format == "parquet"
    assert p.parse_args(["fetch", "1", "2"]).obsid == ["1", "2"]


def test_fused_members_give_the_same_numbers():
    from rgbkit.catalog import fast_model
    from rgbkit.models.densenet import small_config

    torch.manual_seed(3)
    nets = [DenseNet1D(small_config()) for _ in range(2)]
    for net in nets:  # trained-looking BN statistics, so the folding is exercised
        for mod in net.modules():
            if isinstance(mod, torch.nn.BatchNorm1d):
                mod.running_mean.normal_()
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.data.normal_()
                mod.bias.data.normal_()
    ens = Ensemble(nets, TargetScaler("log", 1.0, 0.5), "age", card={"spread_scale": 1.3}, device="cpu")
    X = np.random.default_rng(0).random((100, 64, 64), dtype=np.float32)
    ref = ens.predict(X, batch_size=1024, method="loop")  # plain members, one after another
    # members that pack: a copy of the ensemble (same members, its own precision) run as one fused packed network
    fast = fast_model(ens)
    assert fast is not ens and fast.members is ens.members and fast.precision == ens.precision == "float32"
    assert fast.packed_network() is ens.packed_network() is not None  # built once, shared
    got = fast.predict(X, batch_size=64)
    np.testing.assert_allclose(got.mean, ref.mean, rtol=2e-5)
    np.testing.assert_allclose(got.std, ref.std, rtol=1e-3, atol=1e-6)
    assert got.std[0] == pytest.approx(1.3 * got.std_raw[0])
    clf = _tiny("class")
    assert fast_model(clf).members is clf.members
    np.testing.assert_allclose(clf.predict(X).p_rgb, clf.predict(X, method="loop").p_rgb, atol=1e-6)
    # members that do not pack (two architectures): a copy with each member fused
    odd = Ensemble([nets[0], DenseNet1D(small_config(growth_rate=6))], TargetScaler("log", 1.0, 0.5), "age",
                   device="cpu")
    assert odd.packed_network() is None
    fast = fast_model(odd)
    assert fast is fast_model(odd) and fast.members[0] is not odd.members[0]
    np.testing.assert_allclose(fast.predict(X, batch_size=64).mean, odd.predict(X).mean, rtol=2e-5)


def test_column_docs_are_in_step_with_the_code():
    from rgbkit.catalog import column_docs_markdown

    text = (REPO / "docs" / "catalog_columns.md").read_text()
    assert column_docs_markdown() in text


def test_obsids_are_downloaded_then_scored(real_fits, models, tmp_path):
    from test_fetch import Server

    from rgbkit.io.lamost import read_lamost

    table_files = [p for p in real_fits if "dr9" in str(p) or "dr13" in str(p)]
    archive = {str(read_lamost(p).meta.obsid): p.read_bytes() for p in table_files}
    with Server(archive, fail_first=1) as srv:
        path = build_catalog(list(archive) + ["42"], tmp_path / "out", workers=0, progress=False,
                             fetcher={"url_template": srv.template, "cache": tmp_path / "cache", "backoff": 0.01},
                             **models)
    df = read_catalog(path)
    assert sorted(df["obsid"].astype(str)) == sorted(archive)
    err = pd.read_csv(tmp_path / "out" / "errors.csv")
    assert err.to_dict("records") == [{"file": 42, "stage": "fetch", "reason": "HTTP 404 no such obsid"}]


def test_default_workers_pool_only_for_big_runs(real_fits, tmp_path, monkeypatch):
    import json

    import rgbkit.catalog.run as cat

    files = real_fits[:6]
    build_catalog(files, tmp_path / "small", age=None, mass=None, classifier=None, progress=False)
    assert json.loads((tmp_path / "small" / "run.json").read_text())["workers"] == 0
    monkeypatch.setattr(cat, "POOL_MIN_FILES", 3)
    monkeypatch.setattr(cat.os, "cpu_count", lambda: 2)
    path = build_catalog(files, tmp_path / "big", age=None, mass=None, classifier=None, progress=False, chunk_size=3)
    assert json.loads((tmp_path / "big" / "run.json").read_text())["workers"] == 2
    assert len(read_catalog(path)) == 6


# ------------------------------------------------------------------ resume hardening
def test_resume_under_another_spelling_adds_no_rows(real_fits, models, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for p in real_fits[:12]:
        shutil.copy(p, src / p.name)
    (tmp_path / "alias").symlink_to(src)
    out = tmp_path / "out"
    build_catalog(src, out, workers=0, chunk_size=4, progress=False, **models)
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        for spelling in ("in", "./in/../in", str(tmp_path / "alias"), f"{tmp_path}//in/"):
            path = build_catalog(spelling, out, workers=0, chunk_size=4, progress=False, **models)
            run = json.loads((out / "run.json").read_text())
            assert run["already_done"] == 12 and run["scored_now"] == 0, spelling
    finally:
        os.chdir(cwd)
    df = read_catalog(path)
    assert len(df) == 12 and df["file"].nunique() == 12


def test_resume_with_other_settings_is_refused(real_fits, models, model_dirs, tmp_path):
    from rgbkit.catalog import CatalogRunError, DomainRules

    files, out = real_fits[:6], tmp_path / "out"
    build_catalog(files[:3], out, workers=0, chunk_size=3, progress=False, **models)
    settings = json.loads((out / "settings.json").read_text())
    assert settings["rules"]["min_snr_g"] == 15.0 and len(settings["models"]["age"]["card_sha256"]) > 20
    with pytest.raises(CatalogRunError, match=r"other settings \(rules.min_snr_g: 15.0 then, 30 now.*--restart"):
        build_catalog(files, out, workers=0, rules=DomainRules(min_snr_g=30), progress=False, **models)
    other = {**models, "age": _tiny("age", seed=7)}
    with pytest.raises(CatalogRunError, match=r"models.age.card_sha256"):
        build_catalog(files, out, workers=0, progress=False, **other)
    refs = {k: ModelRef(f"{type(m).__module__}.{type(m).__qualname__}", str(model_dirs / k)) for k, m in models.items()}
    with pytest.raises(CatalogRunError, match="models.mass.card_sha256"):  # the age folder given as the mass model
        build_catalog(files, out, workers=0, progress=False, **{**models, "mass": refs["age"]})
    assert len(list((out / "parts").glob("*.json"))) == 1  # nothing was added by the refused runs
    path = build_catalog(files, out, workers=0, rules=DomainRules(min_snr_g=30), resume=False, progress=False, **models)
    assert len(read_catalog(path)) == 6
    assert json.loads((out / "settings.json").read_text())["rules"]["min_snr_g"] == 30


def test_killed_merge_leaves_no_temp_and_bad_outputs_are_refused(real_fits, models, tmp_path):
    from rgbkit.catalog import CatalogRunError

    out = tmp_path / "out"
    build_catalog(real_fits[:3], out, workers=0, progress=False, **models)
    (out / "catalog.parquet.tmp99999").write_bytes(b"half a merge")
    build_catalog(real_fits[:3], out, workers=0, progress=False, **models)
    assert not list(out.glob("*.tmp*")) and len(read_catalog(out / "catalog.parquet")) == 3
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    with pytest.raises(CatalogRunError, match="is a file"):
        build_catalog(real_fits[:3], afile, workers=0, progress=False, **models)
    with pytest.raises(CatalogRunError, match="chunk_size"):
        build_catalog(real_fits[:3], tmp_path / "o2", chunk_size=0, workers=0, progress=False, **models)


def test_a_folder_of_bad_inputs_gives_one_row_each(shared_data, models, tmp_path):
    """The reader's bad-input corpus through a catalog run: good files scored, every bad one an error line."""
    import badinputs

    pairs = [(c, p) for c, p in badinputs.build(tmp_path / "in", shared_data, bombs=True)
             if p.name.endswith((".fits", ".fits.gz")) and p.parent == tmp_path / "in"]
    out = tmp_path / "out"
    df = read_catalog(build_catalog(tmp_path / "in", out, workers=0, chunk_size=32, progress=False, **models))
    err = pd.read_csv(out / "errors.csv")
    reasons = dict(zip(err["file"].map(lambda f: Path(f).name), err["reason"]))
    for case, path in pairs:
        if case.expect is None:
            assert path.name not in reasons, (case.kind, reasons.get(path.name))
        elif case.regular:
            assert case.expect in reasons[path.name], case.kind
    # plus the good file inside the "directory named .fits" case, which the folder search finds
    assert df["read_ok"].sum() == sum(c.expect is None for c, _ in pairs) + 1


def test_pool_workers_die_with_a_killed_catalog(real_fits, model_dirs, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for k in range(3):
        for i, p in enumerate(real_fits):
            (src / f"c{k}_{i:03d}_{p.name}").symlink_to(p)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "rgbkit.cli", "catalog", str(src), "-o", str(out), "--workers", "2",
           "--chunk-size", "4", "--quiet", "--age-model", str(model_dirs / "age"),
           "--mass-model", str(model_dirs / "mass"), "--classifier", str(model_dirs / "classifier")]
    proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.time() + 120
    while time.time() < deadline and not list((out / "parts").glob("*.json")):
        time.sleep(0.05)
    kids = [int(x) for x in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert kids

    from proc_utils import still_running

    assert still_running(kids, 15) == []


def test_command_line_pool_forks_and_matches_one_process(real_fits, model_dirs, tmp_path):
    """`rgbkit catalog` forks its pool from a parent that never imported torch; same rows as one process."""
    files = [str(p) for p in real_fits[::6]]
    flags = ["--age-model", str(model_dirs / "age"), "--mass-model", str(model_dirs / "mass"),
             "--classifier", str(model_dirs / "classifier"), "--precision", "float32", "--quiet"]
    out = {}
    for name, extra in (("pool", ["--workers", "2", "--chunk-size", "5"]), ("one", ["--workers", "0"])):
        cmd = [sys.executable, "-m", "rgbkit.cli", "catalog", *files, "-o", str(tmp_path / name), *extra, *flags]
        subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
        out[name] = read_catalog(tmp_path / name / "catalog.parquet").set_index("file").loc[files]
    run = json.loads((tmp_path / "pool" / "run.json").read_text())
    assert run["workers"] == 2 and run["precision"]["asked"] == "float32"
    a, b = out["pool"], out["one"]
    np.testing.assert_allclose(a["age"], b["age"], rtol=1e-5)
    np.testing.assert_allclose(a["p_rgb"], b["p_rgb"], rtol=1e-5, atol=1e-7)
    assert (a["ood_reason"] == b["ood_reason"]).all() and a["age"].notna().sum() > 5
