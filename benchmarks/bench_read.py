"""Files read per second on the real LAMOST files (single process and 2 workers).

    .venv/bin/python benchmarks/bench_read.py [--repeat 5] [--shared ../shared/data]

Ratios are taken within one run: the machine is shared and noisy.
"""
import argparse
import time
from pathlib import Path

from rgbkit.io.lamost import expand_paths, read_lamost, read_many


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    files = expand_paths(Path(args.shared) / "lamost") * args.repeat
    results = {}
    t = time.perf_counter()
    for p in files:
        read_lamost(p, fast=False)
    astropy_rate = len(files) / (time.perf_counter() - t)
    print(f"astropy only (fast=False), 1 process: {astropy_rate:.0f} files/s")
    for workers in (1, 2):
        t = time.perf_counter()
        spectra, refused = read_many(files, workers=workers, progress=False)
        dt = time.perf_counter() - t
        results[workers] = len(files) / dt
        print(f"workers={workers}: {len(spectra)} read, {len(refused)} refused, {dt:.2f} s, {results[workers]:.0f} files/s")
    print(f"speed-up with 2 workers: {results[2] / results[1]:.2f}x; fast path vs astropy, 1 process: "
          f"{results[1] / astropy_rate:.2f}x")


if __name__ == "__main__":
    main()
