"""Baselines of the paper's Table 2: XGBoost, random forest and a fully connected ANN.

They see exactly what the DenseNet sees: the preprocessed spectra
``(n, 64, 64)``, flattened to 4,096 features, with the same training /
validation split, and they learn the same target transform as
:mod:`rgbkit.train` (natural log of age or mass), since M2 is a relative
error; predictions come back in Gyr / Msun.

Tuning, honestly and cheaply: each baseline tries the few settings of
:data:`GRIDS` with K-fold cross-validation (default 3) on the *training*
split only, scored by M2, and the best setting is refit on the whole
training split; the validation split is touched once, for the final table.
A time budget stops the search early (the first setting always runs).
``n_jobs`` defaults to 1: on a shared 2-core machine XGBoost's OpenMP threads
were 2-4x *slower* with 2 threads than with 1 (measured).

Paper (Li, Bu et al. 2022, Table 2), age M1 [Gyr] / M2, mass M1 [Msun] / M2:
XGB 1.65 / 36.0%, 0.20 / 13.4%; RF 1.74 / 36.5%, 0.18 / 11.7%;
ANN 5.08 / 67.3%, 0.51 / 33.2%; DenseNet-BC 1.47 / 23.4%, 0.09 / 6.5%.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .. import metrics

__all__ = ["PAPER_TABLE2", "GRIDS", "METHODS", "features", "ANNRegressor", "LogTarget", "make_model", "TuneResult", "tune",
           "fit_baseline", "baseline_table"]

PAPER_TABLE2 = {
    "XGB": {"age_m1": 1.65, "age_m2": 36.0, "mass_m1": 0.20, "mass_m2": 13.4},
    "RF": {"age_m1": 1.74, "age_m2": 36.5, "mass_m1": 0.18, "mass_m2": 11.7},
    "ANN": {"age_m1": 5.08, "age_m2": 67.3, "mass_m1": 0.51, "mass_m2": 33.2},
    "DenseNet-BC": {"age_m1": 1.47, "age_m2": 23.4, "mass_m1": 0.09, "mass_m2": 6.5},
}
"""Table 2 of Li, Bu et al. (2022): M1 in Gyr / Msun, M2 in percent."""

METHODS = {"xgb": "XGB", "rf": "RF", "ann": "ANN"}

GRIDS = {
    # Few settings each, spanning the knobs that matter most with 4,096 features and
    # a few thousand stars: tree depth / feature subsampling for the trees, width and
    # weight decay for the ANN. XGBoost's max_bin 64 (not 256) cuts its fixed cost of
    # sketching 4,096 features by ~4x at no visible loss on these smooth inputs.
    "xgb": [
        {"n_estimators": 300, "max_depth": 4, "learning_rate": 0.05, "subsample": 0.8, "colsample_bytree": 0.2,
         "max_bin": 64},
        {"n_estimators": 200, "max_depth": 3, "learning_rate": 0.1, "subsample": 0.8, "colsample_bytree": 0.5,
         "max_bin": 64},
        {"n_estimators": 300, "max_depth": 6, "learning_rate": 0.05, "subsample": 0.8, "colsample_bytree": 0.2,
         "max_bin": 64},
    ],
    "rf": [
        {"n_estimators": 200, "max_features": "sqrt", "min_samples_leaf": 1},
        {"n_estimators": 200, "max_features": 0.05, "min_samples_leaf": 2},
        {"n_estimators": 200, "max_features": 0.15, "min_samples_leaf": 5},
    ],
    "ann": [
        {"hidden": (256, 64), "weight_decay": 1e-4, "dropout": 0.2},
        {"hidden": (64,), "weight_decay": 1e-4, "dropout": 0.0},
        {"hidden": (512, 128), "weight_decay": 1e-3, "dropout": 0.3},
    ],
}
"""The settings each baseline's search tries: the default first, then the cheaper
alternative, the most expensive last, so a time budget cuts the expensive ones."""


def features(X) -> np.ndarray:
    """Preprocessed spectra ``(n, 64, 64)`` (or ``(n, 4096)``) as a float32 ``(n, 4096)`` matrix."""
    X = np.asarray(X, dtype=np.float32)
    if X.ndim == 3:
        X = X.reshape(len(X), -1)
    if X.ndim != 2:
        raise ValueError(f"expected spectra (n, 64, 64) or (n, features), got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("spectra hold non-finite values")
    return X


class ANNRegressor:
    """Fully connected network (torch), scikit-learn style ``fit``/``predict``.

    Inputs standardised per feature, target standardised; Adam, MSE loss,
    early stopping on an internal 10% hold-out of the data given to ``fit``.
    """

    def __init__(self, hidden=(256, 64), lr: float = 1e-3, weight_decay: float = 1e-4, dropout: float = 0.2,
                 epochs: int = 200, batch_size: int = 64, patience: int = 20, seed: int = 0):
        self.hidden, self.lr, self.weight_decay, self.dropout = tuple(hidden), lr, weight_decay, dropout
        self.epochs, self.batch_size, self.patience, self.seed = epochs, batch_size, patience, seed

    def get_params(self, deep: bool = True) -> dict:
        return {k: getattr(self, k) for k in ("hidden", "lr", "weight_decay", "dropout", "epochs",
                                              "batch_size", "patience", "seed")}

    def set_params(self, **p) -> "ANNRegressor":
        for k, v in p.items():
            setattr(self, k, tuple(v) if k == "hidden" else v)
        return self

    def _net(self, n_in: int):
        import torch
        from torch import nn

        torch.manual_seed(self.seed)
        layers, prev = [], n_in
        for h in self.hidden:
            layers += [nn.Linear(prev, h), nn.ReLU(), nn.Dropout(self.dropout)]
            prev = h
        layers.append(nn.Linear(prev, 1))
        return nn.Sequential(*layers)

    def fit(self, X, y) -> "ANNRegressor":
        import copy

        import torch

        X = features(X)
        y = np.asarray(y, dtype=np.float64).ravel()
        self.x_mean_ = X.mean(0)
        self.x_std_ = X.std(0) + 1e-6
        self.y_mean_, self.y_std_ = float(y.mean()), float(y.std() or 1.0)
        Xs = torch.from_numpy(((X - self.x_mean_) / self.x_std_).astype(np.float32))
        ys = torch.from_numpy(((y - self.y_mean_) / self.y_std_).astype(np.float32))
        rng = np.random.default_rng(self.seed)
        perm = rng.permutation(len(X))
        n_hold = max(1, len(X) // 10)
        hold, train = torch.from_numpy(perm[:n_hold]), torch.from_numpy(perm[n_hold:])
        net = self._net(X.shape[1])
        opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        gen = torch.Generator().manual_seed(self.seed)
        best, best_state, since = np.inf, None, 0
        for _ in range(self.epochs):
            net.train()
            order = train[torch.randperm(len(train), generator=gen)]
            for i in range(0, len(order), self.batch_size):
                idx = order[i:i + self.batch_size]
                loss = torch.mean((net(Xs[idx]).squeeze(1) - ys[idx]) ** 2)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            net.eval()
            with torch.no_grad():
                hl = float(torch.mean((net(Xs[hold]).squeeze(1) - ys[hold]) ** 2))
            if hl < best:
                best, best_state, since = hl, copy.deepcopy(net.state_dict()), 0
            else:
                since += 1
                if since >= self.patience:
                    break
        net.load_state_dict(best_state)
        self.net_ = net.eval()
        return self

    def predict(self, X) -> np.ndarray:
        import torch

        X = features(X)
        with torch.no_grad():
            z = self.net_(torch.from_numpy(((X - self.x_mean_) / self.x_std_).astype(np.float32))).squeeze(1)
        return z.double().numpy() * self.y_std_ + self.y_mean_


class LogTarget:
    """Wraps a regressor so it learns ln(y) and predicts y (the DenseNet's target transform)."""

    def __init__(self, regressor):
        self.regressor = regressor

    def fit(self, X, y) -> "LogTarget":
        y = np.asarray(y, dtype=np.float64).ravel()
        if np.any(y <= 0):
            raise ValueError("targets must be positive (ages, masses) for the log transform")
        self.regressor.fit(features(X), np.log(y))
        return self

    def predict(self, X) -> np.ndarray:
        return np.exp(np.asarray(self.regressor.predict(features(X)), dtype=np.float64))


def make_model(method: str, seed: int = 0, n_jobs: int = 1, **params) -> LogTarget:
    """An unfitted regressor for ``method`` ("xgb", "rf", "ann") that learns ln(y) and predicts y."""
    if method == "xgb":
        from xgboost import XGBRegressor

        base = XGBRegressor(tree_method="hist", random_state=seed, n_jobs=n_jobs, **params)
    elif method == "rf":
        from sklearn.ensemble import RandomForestRegressor

        base = RandomForestRegressor(random_state=seed, n_jobs=n_jobs, **params)
    elif method == "ann":
        base = ANNRegressor(seed=seed, **params)
    else:
        raise ValueError(f"unknown baseline {method!r}; choose from {sorted(METHODS)}")
    return LogTarget(base)


@dataclass
class TuneResult:
    method: str
    best_params: dict
    scores: list = field(default_factory=list)
    """One dict per setting tried: params, cv_m2 (mean over folds, %), seconds."""
    stopped_early: bool = False


def tune(method: str, X, y, grid: list[dict] | None = None, cv: int = 3, time_budget_s: float | None = None,
         seed: int = 0, n_jobs: int = 1) -> TuneResult:
    """K-fold CV (on the data given: the training split) over ``grid``, scored by M2; lowest wins."""
    from sklearn.model_selection import KFold

    X = features(X)
    y = np.asarray(y, dtype=np.float64).ravel()
    if len(X) != len(y):
        raise ValueError(f"X and y lengths differ: {len(X)} vs {len(y)}")
    if np.any(y <= 0):
        raise ValueError("targets must be positive (ages, masses)")
    grid = GRIDS[method] if grid is None else grid
    if not grid:
        raise ValueError("empty grid")
    folds = list(KFold(cv, shuffle=True, random_state=seed).split(X))
    t0 = time.perf_counter()
    scores, stopped = [], False
    for params in grid:
        if scores and time_budget_s is not None and time.perf_counter() - t0 > time_budget_s:
            stopped = True
            break
        ts = time.perf_counter()
        fold_m2 = []
        for tr, te in folds:
            model = make_model(method, seed=seed, n_jobs=n_jobs, **params).fit(X[tr], y[tr])
            fold_m2.append(metrics.m2(y[te], model.predict(X[te])))
        scores.append({"params": dict(params), "cv_m2": float(np.mean(fold_m2)),
                       "seconds": round(time.perf_counter() - ts, 1)})
    best = min(scores, key=lambda s: s["cv_m2"])
    return TuneResult(method, best["params"], scores, stopped)


def fit_baseline(method: str, X, y, params: dict | None = None, seed: int = 0, n_jobs: int = 1):
    """Fit one baseline (``params`` default: the first setting of :data:`GRIDS`)."""
    params = GRIDS[method][0] if params is None else params
    return make_model(method, seed=seed, n_jobs=n_jobs, **params).fit(features(X), np.asarray(y, dtype=np.float64))


def baseline_table(X_train, y_train: dict, X_val, y_val: dict, densenet: dict | None = None,
                   methods=("xgb", "rf", "ann"), search: bool = True, grids: dict | None = None, cv: int = 3,
                   time_budget_s: float | None = 120.0, seed: int = 0, n_jobs: int = 1, progress: bool = True):
    """The paper's Table 2 on our data, side by side with the paper's numbers.

    Args:
        X_train, X_val: preprocessed spectra of the DenseNet's training and validation splits.
        y_train, y_val: ``{"age": ..., "mass": ...}`` targets (either key may be left out).
        densenet: optional ``{"age": pred_val, "mass": pred_val}`` DenseNet predictions on
            ``X_val``, added as the "DenseNet-BC" row.
        search: tune each baseline on the training split (:func:`tune`); False uses
            the first setting of each grid.
        time_budget_s: per method and target, for the search.

    Returns:
        ``(table, details)``: ``table`` a DataFrame indexed by model with columns
        age_m1, age_m2, mass_m1, mass_m2 (ours) and paper_age_m1 ... (Table 2);
        ``details`` a dict ``{(method, target): {"tune": TuneResult|None, "fit_seconds": s}}``.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    grids = GRIDS if grids is None else {**GRIDS, **grids}
    Xt, Xv = features(X_train), features(X_val)
    targets = [t for t in ("age", "mass") if t in y_train]
    if not targets:
        raise ValueError("y_train needs an 'age' and/or 'mass' entry")
    rows: dict[str, dict] = {}
    details: dict = {}
    jobs = [(m, t) for m in methods for t in targets]
    for method, target in tqdm(jobs, desc="baselines", disable=not progress):
        yt = np.asarray(y_train[target], dtype=np.float64)
        yv = np.asarray(y_val[target], dtype=np.float64)
        tr = tune(method, Xt, yt, grids[method], cv, time_budget_s, seed, n_jobs) if search else None
        ts = time.perf_counter()
        model = fit_baseline(method, Xt, yt, tr.best_params if tr else grids[method][0], seed, n_jobs)
        pred = model.predict(Xv)
        details[(method, target)] = {"tune": tr, "fit_seconds": round(time.perf_counter() - ts, 1), "pred": pred}
        row = rows.setdefault(METHODS[method], {})
        row[f"{target}_m1"] = metrics.m1(yv, pred)
        row[f"{target}_m2"] = metrics.m2(yv, pred)
    if densenet:
        row = rows.setdefault("DenseNet-BC", {})
        for target in targets:
            if target in densenet:
                yv = np.asarray(y_val[target], dtype=np.float64)
                row[f"{target}_m1"] = metrics.m1(yv, densenet[target])
                row[f"{target}_m2"] = metrics.m2(yv, densenet[target])
    table = pd.DataFrame.from_dict(rows, orient="index")
    for col in ("age_m1", "age_m2", "mass_m1", "mass_m2"):
        if col not in table:
            table[col] = np.nan
        table[f"paper_{col}"] = [PAPER_TABLE2.get(name, {}).get(col, np.nan) for name in table.index]
    table.index.name = "model"
    return table[["age_m1", "age_m2", "mass_m1", "mass_m2",
                  "paper_age_m1", "paper_age_m2", "paper_mass_m1", "paper_mass_m2"]], details
