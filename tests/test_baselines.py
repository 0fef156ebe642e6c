"""Baselines (XGBoost, random forest, fully connected ANN): same inputs, log target,
CV search on the training split only, Table 2 side by side with the paper."""
import numpy as np
import pytest

from rgbkit.models import baselines as bl

TINY = {  # tiny grids: the real search runs in benchmarks/bench_science.py
    "xgb": [{"n_estimators": 40, "max_depth": 3, "max_bin": 32}, {"n_estimators": 40, "max_depth": 1, "max_bin": 32}],
    "rf": [{"n_estimators": 20, "max_features": 0.05}, {"n_estimators": 20, "max_features": 1}],
    "ann": [{"hidden": (32,), "epochs": 40, "patience": 10}],
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def synthetic(n, seed=0):
    """log(age) and mass written into a few pixels, plus noise elsewhere."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(1, 12, n)
    mass = rng.uniform(0.8, 2.0, n)
    X = rng.normal(0.5, 0.05, (n, 64, 64)).astype(np.float32)
    X[:, 0, :] += (0.1 * np.log(age))[:, None].astype(np.float32)
    X[:, 1, :] += (0.1 * mass)[:, None].astype(np.float32)
    return X, age, mass


def test_features_and_log_target():
    X, age, _ = synthetic(60)
    assert bl.features(X).shape == (60, 4096) and bl.features(X).dtype == np.float32
    with pytest.raises(ValueError, match="non-finite"):
        bl.features(np.full((2, 64, 64), np.nan))
    with pytest.raises(ValueError, match="unknown baseline"):
        bl.make_model("svm")
    with pytest.raises(ValueError, match="positive"):
        bl.make_model("rf", n_estimators=5).fit(X, age - 100)


@pytest.mark.parametrize("method", ["xgb", "rf", "ann"])
def test_each_baseline_learns_the_signal(method):
    X, age, _ = synthetic(200, seed=1)
    model = bl.fit_baseline(method, X[:150], age[:150], TINY[method][0])
    pred = model.predict(X[150:])
    assert np.all(pred > 0)
    skill = np.mean(np.abs(pred - age[150:]) / age[150:])
    chance = np.mean(np.abs(np.median(age[:150]) - age[150:]) / age[150:])
    assert skill < 0.6 * chance, (method, skill, chance)


def test_tune_picks_lowest_cv_m2_and_respects_budget():
    X, age, _ = synthetic(150, seed=2)
    r = bl.tune("rf", X, age, TINY["rf"], cv=3)
    assert len(r.scores) == 2
    best = min(r.scores, key=lambda s: s["cv_m2"])
    assert r.best_params == best["params"]
    # max_features=1 (one random pixel per split) finds the 64 informative pixels less often
    assert r.best_params["max_features"] == 0.05
    quick = bl.tune("rf", X, age, TINY["rf"], cv=2, time_budget_s=0.0)
    assert len(quick.scores) == 1 and quick.stopped_early


def test_baseline_table_side_by_side_with_paper():
    X, age, mass = synthetic(180, seed=3)
    tr, va = slice(0, 140), slice(140, 180)
    table, details = bl.baseline_table(X[tr], {"age": age[tr], "mass": mass[tr]}, X[va],
                                       {"age": age[va], "mass": mass[va]},
                                       densenet={"age": age[va] * 1.1, "mass": mass[va]},
                                       methods=("rf", "xgb"), grids=TINY, search=False, progress=False)
    assert list(table.index) == ["RF", "XGB", "DenseNet-BC"]
    assert table.loc["DenseNet-BC", "age_m2"] == pytest.approx(10.0)
    assert table.loc["DenseNet-BC", "mass_m1"] == 0.0
    assert table.loc["XGB", "paper_age_m2"] == 36.0 and table.loc["RF", "paper_mass_m2"] == 11.7
    pred = details[("rf", "age")]["pred"]
    assert table.loc["RF", "age_m1"] == pytest.approx(np.mean(np.abs(pred - age[va])))
    assert details[("rf", "age")]["tune"] is None  # search=False: first grid setting
