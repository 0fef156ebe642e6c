"""torch.compile (inductor, frozen weights) against eager for the catalog's packed networks; not used by rgbkit.

    .venv/bin/python benchmarks/bench_compile.py [--rounds 5] [--rows 32]

The catalog's form of each network (``catalog.fast_model``: packed, fused,
bfloat16 where native), one thread, ``--rows`` spectra a batch (the
catalog's batch for 10 members is 32) on real preprocessed inputs
(``bench_network_bound.inputs``). Reports the compile time twice, in a
fresh inductor cache and again in a new process with that cache warm, the
largest differences between compiled, eager and float32 outputs (scaled
units), and spectra/s eager against compiled, interleaved round by round.
Compiling needs a C++ compiler; it is a lead for issue 17, recorded in
``results/speed.md`` section 16.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))


def measure(x_path: str, folder: str, rows: int, rounds: int) -> None:
    """One model in this process: compile time, differences, and (rounds > 0) interleaved rates."""
    import numpy as np
    import torch

    from rgbkit.catalog.models import fast_model
    from rgbkit.ensemble import Ensemble
    from rgbkit.precision import autocast, resolve_precision

    torch.set_num_threads(1)
    prec = resolve_precision("auto")
    net = fast_model(Ensemble.load(folder), prec).packed_network()
    x = torch.from_numpy(np.load(x_path)[:rows])

    def run(m):
        with torch.no_grad(), autocast(prec):
            return m(x).float()

    t = time.perf_counter()
    compiled = torch.compile(net, dynamic=False, options={"freezing": True})
    out = run(compiled)
    seconds = time.perf_counter() - t
    ref = run(net)
    with torch.no_grad():
        f32 = net(x)
    print(f"compile {seconds:.1f} s; largest |compiled - eager| {(out - ref).abs().max():.2g}, "
          f"|eager - float32| {(ref - f32).abs().max():.2g}, |compiled - float32| {(out - f32).abs().max():.2g} "
          f"(outputs up to {f32.abs().max():.2g})", flush=True)
    rates = {"eager": [], "compiled": []}
    for _ in range(rounds):
        for name, m in (("eager", net), ("compiled", compiled)):
            ts = []
            for _ in range(15):
                t = time.perf_counter()
                run(m)
                ts.append(time.perf_counter() - t)
            rates[name].append(rows / float(np.median(ts)))
    if rounds:
        for name, v in rates.items():
            print(f"  {name}: " + ", ".join(f"{r:,.0f}" for r in v) + " spectra/s")
        print("  compiled / eager: " + ", ".join(f"{c / e:.2f}" for c, e in zip(rates["compiled"], rates["eager"])))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--rows", type=int, default=32)
    ap.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        return measure(a.one[0], a.one[1], a.rows, a.rounds)
    from bench_network_bound import inputs
    from bench_speed import load, ten_member_models
    from rgbkit.ensemble import PRETRAINED_DIR

    tmp = Path(tempfile.mkdtemp(prefix="rgbkit_compile_"))
    x_path = tmp / "X.npy"
    inputs(x_path)
    sets = {"10-member age (shipped weights cycled)": str(ten_member_models(tmp / "models")["age"]),
            "shipped age (3 members)": str(PRETRAINED_DIR / "age")}
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(tmp / "inductor")}
    print(f"load average at start {load()}")
    for name, folder in sets.items():
        for label, rounds in (("fresh cache", 0), ("warm cache", a.rounds)):
            print(f"{name}, {label}: ", end="", flush=True)
            subprocess.run([sys.executable, __file__, "--one", str(x_path), folder, "--rows", str(a.rows),
                            "--rounds", str(rounds)], env=env, check=True)
    print(f"load average at end {load()}")


if __name__ == "__main__":
    main()
