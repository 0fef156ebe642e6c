"""Spectra per second for preprocessing steps 2-7 (resample, cuts, min-max, denoise, reshape).

    .venv/bin/python benchmarks/bench_preprocess.py [--n 10000] [--repeat 3] [--write]

Compares, in one run, the vectorised :class:`rgbkit.preprocess.Preprocessor`
(1 and 2 threads, shared grid and per-spectrum grids) with a plain per-row
Python loop (np.interp + PyWavelets), and the denoising step alone (NumPy Haar,
chunked PyWavelets, per-row PyWavelets). Inputs are LAMOST-like float32 spectra
on log-linear grids (3,700-9,100 A). The machine is shared: each figure is the
best of ``--repeat`` runs and ratios are taken within the run. ``--write``
records the table in benchmarks/results/preprocess.md.
"""
import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import pywt

from rgbkit.denoise import denoise
from rgbkit.preprocess import Preprocessor, target_grid

RESULTS = Path(__file__).resolve().parent / "results" / "preprocess.md"


def make_spectra(n, seed=0):
    """n LAMOST-like spectra: a shared grid (3909 px) and per-spectrum grids of 3890-3909 px."""
    rng = np.random.default_rng(seed)
    wl = 10 ** (3.5682 + 1e-4 * np.arange(3909))
    cont = 1000 + 300 * np.sin(wl / 700.0)
    flux = (cont + rng.normal(0, 20, (n, wl.size))).astype(np.float32)
    lengths = 3890 + rng.integers(0, 20, n)
    wls = [wl[:m] for m in lengths]
    fls = [flux[i, :m] for i, m in enumerate(lengths)]
    return wl, flux, wls, fls


def per_row_loop(wls, fls, grid):
    """The plain way: one spectrum at a time with np.interp and PyWavelets."""
    out = np.full((len(fls), 64, 64), np.nan, dtype=np.float32)
    for i, (w, f) in enumerate(zip(wls, fls)):
        r = np.interp(grid, w, f, left=0.0, right=0.0)
        if np.count_nonzero(r == 0) >= 100:
            continue
        r = (r - r.min()) / (r.max() - r.min())
        if r.std() < 0.005:
            continue
        c = pywt.wavedec(r, "haar", level=12)
        c = [c[0]] + [pywt.threshold(d, 0.05 * np.abs(d).max(), mode="soft") for d in c[1:]]
        out[i] = pywt.waverec(c, "haar").reshape(64, 64)
    return out


def pywt_chunked(x, chunk=256):
    out = np.empty_like(x)
    for s in range(0, len(x), chunk):
        c = pywt.wavedec(x[s : s + chunk], "haar", level=12, axis=-1)
        c = [c[0]] + [pywt.threshold(d, 0.05 * np.abs(d).max(axis=-1, keepdims=True), "soft") for d in c[1:]]
        out[s : s + chunk] = pywt.waverec(c, "haar", axis=-1)
    return out


def best_rate(fn, n, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return n / min(times)


PROBE = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from bench_preprocess import make_spectra
from rgbkit.preprocess import Preprocessor
n, rep = int(sys.argv[2]), int(sys.argv[3])
wl, flux, wls, fls = make_spectra(n)
p = Preprocessor()
p.run(wl, flux[:512], n_jobs=2)
out = {}
for jobs in (1, 2):
    for name, args in (("shared grid", (wl, flux)), ("per-spectrum grids", (wls, fls))):
        times = []
        for _ in range(rep):
            t = time.perf_counter()
            p.run(*args, n_jobs=jobs)
            times.append(time.perf_counter() - t)
        out[f"{name}, {jobs} thread{'s' if jobs > 1 else ''}"] = n / min(times)
print(json.dumps(out))
"""


def before_after(before: str, n: int, rep: int, rounds: int) -> str:
    """``Preprocessor.run`` of another checkout against this one, fresh processes, rounds interleaved."""
    import json
    import statistics
    import subprocess
    import sys

    here = Path(__file__).resolve().parent
    who = {"before": Path(before).resolve(), "after": here.parent}
    res: dict = {}
    load0 = os.getloadavg()
    for r in range(rounds):
        for label, root in (who.items() if r % 2 == 0 else reversed(list(who.items()))):
            env = {**os.environ, "PYTHONPATH": str(root)}
            out = subprocess.run([sys.executable, "-c", PROBE, str(here), str(n), str(rep)], env=env, cwd=str(root),
                                 capture_output=True, text=True, check=True)
            rates = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"round {r + 1} {label:6s} " + ", ".join(f"{k} {v:,.0f}/s" for k, v in rates.items()), flush=True)
            for k, v in rates.items():
                res.setdefault((k, label), []).append(v)
    load1 = os.getloadavg()
    keys = list(dict.fromkeys(k for k, _ in res))
    lines = [f"`benchmarks/bench_preprocess.py --before {before} --rounds {rounds}`: {n:,} spectra, best of {rep} "
             f"per round, {rounds} interleaved rounds (fresh processes), median spectra/s and per-round ratios. "
             f"Load average at start {load0[0]:.1f} / {load0[1]:.1f} / {load0[2]:.1f}, at end "
             f"{load1[0]:.1f} / {load1[1]:.1f} / {load1[2]:.1f}.", "",
             "| input, threads | before | after | after / before per round |", "| --- | ---: | ---: | --- |"]
    for k in keys:
        b, a = res[(k, "before")], res[(k, "after")]
        ratios = ", ".join(f"{y / x:.2f}" for x, y in zip(b, a))
        lines.append(f"| {k} | {statistics.median(b):,.0f} | {statistics.median(a):,.0f} | {ratios} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--before", help="another checkout: measure its Preprocessor.run against this one's")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    n, rep = args.n, args.repeat
    if args.before:
        print(before_after(args.before, n, rep, args.rounds))
        return
    wl, flux, wls, fls = make_spectra(n)
    grid = target_grid()
    p = Preprocessor()

    # same numbers first: the loop is the reference
    ref = per_row_loop(wls[:200], fls[:200], grid)
    got = p.run(wls[:200], fls[:200]).X
    max_diff = float(np.nanmax(np.abs(ref - got)))

    rows = []
    loop_n = min(n, 2000)  # the loop is slow; its rate does not depend on n
    loop = best_rate(lambda: per_row_loop(wls[:loop_n], fls[:loop_n], grid), loop_n, rep)
    rows.append(("steps 2-7", "per-row Python loop (np.interp + pywt)", 1, loop))
    for jobs in (1, 2):
        rows.append(("steps 2-7", "Preprocessor, shared grid", jobs, best_rate(lambda: p.run(wl, flux, n_jobs=jobs), n, rep)))
        rows.append(("steps 2-7", "Preprocessor, per-spectrum grids", jobs, best_rate(lambda: p.run(wls, fls, n_jobs=jobs), n, rep)))
    x = p.run(wl, flux, keep_stages=True).stages["normalised"]
    rows.append(("denoise only", "NumPy Haar (rgbkit.denoise)", 1, best_rate(lambda: denoise(x), n, rep)))
    rows.append(("denoise only", "chunked pywt.wavedec, axis=-1", 1, best_rate(lambda: pywt_chunked(x), n, rep)))

    def pywt_rows():
        for r in x[:loop_n]:
            c = pywt.wavedec(r, "haar", level=12)
            c = [c[0]] + [pywt.threshold(d, 0.05 * np.abs(d).max(), mode="soft") for d in c[1:]]
            pywt.waverec(c, "haar")

    rows.append(("denoise only", "per-row pywt loop", 1, best_rate(pywt_rows, loop_n, rep)))

    load = os.getloadavg()
    lines = [
        "# Preprocessing speed (steps 2-7)",
        "",
        f"`.venv/bin/python benchmarks/bench_preprocess.py --n {n} --repeat {rep} --write`",
        "",
        f"{n:,} LAMOST-like float32 spectra (3,890-3,909 px, log-linear 3,700-9,100 A) -> "
        f"{n:,} x 64 x 64. Best of {rep} runs. Machine: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, shared with other work (load average at the end: "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}), numpy {np.__version__}, pywt {pywt.__version__}.",
        "",
        "| step | method | threads | spectra/s | vs per-row loop |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for step, method, jobs, rate in rows:
        base = loop if step == "steps 2-7" else rows[-1][3]
        lines.append(f"| {step} | {method} | {jobs} | {rate:,.0f} | {rate / base:.1f}x |")
    lines += [
        "",
        f"Largest difference between the Preprocessor and the per-row loop on 200 spectra: {max_diff:.1e}.",
        "Goal: >= 20,000 spectra/s for steps 2-7 on this 2-core machine.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text)
        print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
