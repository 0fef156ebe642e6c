"""Accuracy and speed of the DenseNet-BC ensembles; writes benchmarks/results/ensemble.md.

1. Accuracy on the demo validation split (SIMULATED data, fixed 8:2 split of
   ``load_demo``): the shipped age and mass ensembles (or ``--models DIR``
   holding ``age/`` and ``mass/``), each member, and a first XGBoost and
   random-forest baseline (``rgbkit.models.baselines``, default settings) on
   the same preprocessed inputs (4096 flattened pixels) and split.
2. Throughput on this CPU: training (spectra/s, one member) and inference
   (spectra/s through a 10-member ensemble), eager against torch.compile,
   for the shipped size (small_config) and our reading of the paper's size
   (paper_config).
3. An estimate of a full paper-protocol run (10 members x 450 epochs).

Usage::

    python benchmarks/bench_ensemble.py            # ~10 minutes on 2 shared cores
    python benchmarks/bench_ensemble.py --quick    # skip torch.compile
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import time
from pathlib import Path

import sys

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's rgbkit
from rgbkit import __version__, metrics
from rgbkit.datasets import demo_training_arrays
from rgbkit.ensemble import PRETRAINED_DIR, Ensemble
from rgbkit.models.densenet import DenseNet1D, count_flops, count_parameters, paper_config, small_config
from rgbkit.train import TargetScaler

HERE = Path(__file__).resolve().parent
PAPER = {"age": {"DenseNet-BC": (1.47, 23.4), "XGBoost": (1.65, 36.0), "random forest": (1.74, 36.5)},
         "mass": {"DenseNet-BC": (0.09, 6.5), "XGBoost": (0.20, 13.4), "random forest": (0.18, 11.7)}}


def accuracy(d, models_dir: Path, quick: bool, lines: list[str]) -> dict:
    from rgbkit.models.baselines import features, fit_baseline

    out = {}
    lines += ["## Accuracy on the demo validation split (SIMULATED data)", "",
              f"{len(d['X_train'])} training / {len(d['X_val'])} validation spectra after preprocessing "
              f"({d['dropped']} of {d['n_total']} dropped by the zero-pixel cut). Labels are the noisy "
              "'catalog' values of the simulator (as the paper's were asteroseismic estimates). Baselines: "
              "`rgbkit.models.baselines.fit_baseline` at its default setting (log target, no search).", "",
              "| target | model | M1 | M2 (%) | paper M1 / M2 | fit time (s) |", "| --- | --- | --- | --- | --- | --- |"]
    for target in ("age", "mass"):
        yt = d["labels_train"][target].to_numpy(np.float64)
        yv = d["labels_val"][target].to_numpy(np.float64)
        units = {"age": "Gyr", "mass": "Msun"}[target]
        ens = Ensemble.load(models_dir / target, target=target, device="cpu")
        p = ens.predict(d["X_val"])
        res = {"DenseNet-BC": (metrics.m1(yv, p.mean), metrics.m2(yv, p.mean))}
        mem = [(metrics.m1(yv, q), metrics.m2(yv, q)) for q in p.members]
        cov_raw = metrics.coverage(yv, p.mean, p.std_raw)
        cov = metrics.coverage(yv, p.mean, p.std)
        fit_t = {"DenseNet-BC": sum(m.get("train_seconds", 0) for m in ens.card["members"])}
        # The baselines of rgbkit.models.baselines at their default (first) setting, no search:
        # the full tuned comparison is benchmarks/ of the science issue.
        for method, name in (("xgb", "XGBoost"), ("rf", "random forest")):
            t = time.perf_counter()
            model = fit_baseline(method, d["X_train"], yt, n_jobs=1)
            pred = model.predict(features(d["X_val"]))
            fit_t[name] = time.perf_counter() - t
            res[name] = (metrics.m1(yv, pred), metrics.m2(yv, pred))
        for name, (a, b) in res.items():
            pa, pb = PAPER[target][name]
            lines.append(f"| {target} | {name} | {a:.3f} {units} | {b:.1f} | {pa} / {pb}% | {fit_t[name]:.0f} |")
        m1s, m2s = [m[0] for m in mem], [m[1] for m in mem]
        lines.append(f"| {target} | {len(mem)} members (range) | {min(m1s):.3f}-{max(m1s):.3f} | "
                     f"{min(m2s):.1f}-{max(m2s):.1f} | members {'24.4-25.8%' if target == 'age' else '-'} | |")
        ratio = res["DenseNet-BC"][1] / res["XGBoost"][1]
        out[target] = {"res": res, "members": mem, "coverage_raw": cov_raw, "coverage": cov,
                       "spread_scale": ens.spread_scale, "ratio": ratio, "card": ens.card}
    lines.append("")
    for target in ("age", "mass"):
        o = out[target]
        goal = 0.55 if target == "age" else 0.45
        lines.append(f"- {target}: DenseNet M2 / XGBoost M2 = {o['ratio']:.2f} (goal <= {goal}; paper "
                     f"{0.65 if target == 'age' else 0.49}). 68% interval coverage on validation: "
                     f"{o['coverage_raw']:.2f} with the raw member spread, {o['coverage']:.2f} after the "
                     f"spread scale x{o['spread_scale']:.2f} fitted on this same split (so 0.68 by construction).")
    lines.append("")
    return out


def _train_rate(config, X, steps: int, compile_: bool, batch: int = 64) -> tuple[float, float]:
    torch.manual_seed(0)
    model = DenseNet1D(config)
    f = torch.compile(model) if compile_ else model
    opt = torch.optim.Adam(model.parameters(), lr=1.5e-4)
    y = torch.randn(len(X))
    Xt = torch.from_numpy(X)
    t = time.perf_counter()
    for i in range(2):  # warm-up (compilation)
        b = slice(i * batch, (i + 1) * batch)
        loss = torch.nn.functional.huber_loss(f(Xt[b]), y[b]); opt.zero_grad(); loss.backward(); opt.step()
    warm = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(steps):
        b = slice((i * batch) % (len(X) - batch), (i * batch) % (len(X) - batch) + batch)
        loss = torch.nn.functional.huber_loss(f(Xt[b]), y[b]); opt.zero_grad(); loss.backward(); opt.step()
    return steps * batch / (time.perf_counter() - t), warm


def _infer_rate(config, X, method: str, batch: int = 512, n_members: int = 10) -> tuple[float, float]:
    members = []
    for i in range(n_members):
        torch.manual_seed(i)
        members.append(DenseNet1D(config).eval())
    ens = Ensemble(members, TargetScaler(), "age", device="cpu")
    t = time.perf_counter()
    if method == "compile":
        ens.members = [torch.compile(m) for m in members]
        ens.predict(X[:batch], batch_size=batch)
        method = "loop"
    else:
        ens.predict(X[:batch], batch_size=batch, method=method)
    warm = time.perf_counter() - t
    t = time.perf_counter()
    ens.predict(X, batch_size=batch, method=method)
    return len(X) / (time.perf_counter() - t), warm


def speed(d, quick: bool, threads: list[int], lines: list[str]) -> dict:
    X = np.ascontiguousarray(d["X_train"][:2048])
    res = {}
    lines += ["## Throughput on this CPU", "",
              "Training: one member, Adam steps on mini-batches of 64 demo spectra. Inference: a 10-member "
              "ensemble, batches of 512, `loop` = members one after another, `vmap` = members stacked with "
              "torch.func, `compile` = each member through torch.compile (inductor). 'warm-up' is the first "
              "call (compilation).", "",
              "| network | params | MFLOP/spectrum | threads | mode | train (spectra/s) | train warm-up (s) | "
              "10-member inference (spectra/s) | inference warm-up (s) |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, cfg in (("small_config (shipped)", small_config()), ("paper_config", paper_config())):
        m = DenseNet1D(cfg)
        n_par, fl = count_parameters(m), count_flops(m) / 1e6
        for th in threads:
            torch.set_num_threads(th)
            # torch.compile only at the first thread count: each compilation costs about a minute.
            modes = ["eager"] if quick or th != threads[0] else ["eager", "compile"]
            for mode in modes:
                steps = 20 if name.startswith("small") else 8
                tr, tw = _train_rate(cfg, X, steps, mode == "compile")
                ir, iw = _infer_rate(cfg, X[:1024], "compile" if mode == "compile" else "loop")
                res[(name, th, mode)] = (tr, ir)
                lines.append(f"| {name} | {n_par:,} | {fl:.1f} | {th} | {mode} | {tr:.0f} | {tw:.1f} | "
                             f"{ir:.0f} | {iw:.1f} |")
                if mode == "eager":
                    vr, vw = _infer_rate(cfg, X[:1024], "vmap")
                    res[(name, th, "vmap")] = (tr, vr)
                    lines.append(f"| {name} | {n_par:,} | {fl:.1f} | {th} | vmap | - | - | {vr:.0f} | {vw:.1f} |")
    lines.append("")
    return res


def estimate(d, speeds: dict, lines: list[str]) -> None:
    n_tr, n_va = len(d["X_train"]), len(d["X_val"])
    lines += ["## A full paper-protocol run (10 members x 450 epochs)", "",
              "Command (not part of the tests):", "",
              "```", "rgbkit train --target age --arch paper --members 10 --epochs 450 --threads 2 --out models/age-paper",
              "rgbkit train --target mass --arch paper --members 10 --epochs 350 --threads 2 --out models/mass-paper",
              "```", "",
              f"Estimated from the eager rates above (training {n_tr} spectra per epoch plus one validation pass "
              f"over {n_va} by one member; best thread count):", ""]
    for name in ("small_config (shipped)", "paper_config"):
        best = max(((v[0], th) for (nm, th, mode), v in speeds.items() if nm == name and mode == "eager"), default=None)
        inf = max((v[1] for (nm, th, mode), v in speeds.items() if nm == name and mode == "eager"), default=None)
        if best is None:
            continue
        per_epoch = n_tr / best[0] + n_va / (inf * 10)  # one member infers ~10x faster than 10 members
        for target, ep in (("age", 450), ("mass", 350)):
            hours = 10 * ep * per_epoch / 3600
            lines.append(f"- {name}, {target}: {per_epoch:.1f} s/epoch ({best[1]} thread(s)) -> "
                         f"{hours:.1f} h for 10 x {ep} epochs")
    lines.append("")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=Path, default=PRETRAINED_DIR, help="folder with age/ and mass/ [shipped]")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--out", type=Path, default=HERE / "results" / "ensemble.md")
    args = ap.parse_args()
    torch.set_num_threads(1)
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    d = demo_training_arrays(progress=False)
    lines = ["# DenseNet-BC ensembles: accuracy and speed", "",
             f"Measured {dt.date.today()} by `benchmarks/bench_ensemble.py` (rgbkit {__version__}, torch "
             f"{torch.__version__}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores shared "
             f"with other work; load average at start {load0[0]:.1f}). Demo data are SIMULATED.", ""]
    acc = accuracy(d, args.models, args.quick, lines)
    sp = speed(d, args.quick, args.threads, lines)
    estimate(d, sp, lines)
    lines.append(f"Benchmark wall time {(time.perf_counter() - t0) / 60:.1f} min; load average at end "
                 f"{os.getloadavg()[0]:.1f}.")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print("wrote", args.out)


if __name__ == "__main__":
    main()
