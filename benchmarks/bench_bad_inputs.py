"""Peak memory and time of reading every kind in the bad-input corpus (tests/badinputs.py).

    .venv/bin/python benchmarks/bench_bad_inputs.py [--shared ../shared/data] [--out benchmarks/results/bad_inputs.md]

Per kind: the outcome, the peak of traced allocations (Python objects and
NumPy arrays, via tracemalloc) and the wall time of one ``read_lamost``. For
the worst inputs (bombs and the largest refusals) it also runs the read in a
fresh process and reports how much the resident set grew (ru_maxrss after the
read minus after a warm-up read of a real file), which also counts zlib's and
astropy's own buffers.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import badinputs  # noqa: E402

from rgbkit.io.lamost import LamostFormatError, read_lamost  # noqa: E402

RSS_CODE = """
import resource, sys, time
from rgbkit.io.lamost import read_lamost, LamostFormatError
read_lamost(sys.argv[2])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
try:
    read_lamost(sys.argv[1])
except LamostFormatError:
    pass
dt = time.perf_counter() - t
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before, dt, before)
"""


def one(path: Path) -> tuple[str, int, float]:
    tracemalloc.start()
    t = time.perf_counter()
    try:
        read_lamost(path)
        out = "read"
    except LamostFormatError as exc:
        out = "refused: " + exc.reason
    dt = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, peak, dt


def rss_growth(path: Path, warm: Path) -> tuple[int, float, int]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", RSS_CODE, str(path), str(warm)], capture_output=True, text=True,
                         env=env, check=True, timeout=300)
    kb, dt, base = out.stdout.split()
    return int(kb), float(dt), int(base)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "bad_inputs.md"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="rgbkit-bad-") as tmp:
        pairs = badinputs.build(Path(tmp), Path(args.shared))
        warm = next(p for c, p in pairs if c.kind == "real DR5 image")
        for _, p in pairs[:5]:  # warm imports and caches so the first rows are not charged for them
            one(p)
        rows = []
        for case, path in pairs:
            out, peak, dt = one(path)
            ok = (out == "read") if case.expect is None else (case.expect in out)
            rows.append((case, path, out, peak, dt, ok))
            print(f"{'ok ' if ok else 'BAD'} {peak / 1e6:7.2f} MB {dt * 1e3:7.1f} ms  {case.kind}: {out[:90]}")
        worst = sorted(rows, key=lambda r: (not r[0].bomb, -r[3]))[:10]
        rss = {}
        for case, path, *_ in worst:
            rss[case.kind] = rss_growth(path, warm)
            print(f"RSS growth {rss[case.kind][0] / 1024:7.1f} MB over {rss[case.kind][2] / 1024:.0f} MB in {rss[case.kind][1] * 1e3:.1f} ms: {case.kind}")
    lines = [
        "# Bad inputs: outcome, peak memory and time per kind",
        "",
        f"`python benchmarks/bench_bad_inputs.py`, {_dt.date.today()}, on the corpus of `tests/badinputs.py` "
        f"({len(rows)} kinds built from the real files in ../shared/data; bombs declare or inflate to GBs).",
        "Peak = largest traced allocation total (tracemalloc: Python objects and NumPy arrays) during one "
        "`read_lamost`; the cap on what is read or inflated is 4 MiB (`rgbkit.io.bounded.MAX_FILE_BYTES`).",
        f"All outcomes as expected: {all(r[5] for r in rows)}; largest peak "
        f"{max(r[3] for r in rows) / 1e6:.1f} MB; slowest {max(r[4] for r in rows) * 1e3:.0f} ms.",
        "",
        "## Worst inputs in a fresh process",
        "",
        "Growth of the process's peak resident set (ru_maxrss after the read minus after importing rgbkit and "
        "reading one real file) and time. 0 means the read stayed below the high-water mark the imports "
        "(NumPy, astropy) had already set:",
        "",
        "| input | peak RSS before | growth | time |",
        "| --- | ---: | ---: | ---: |",
    ]
    for kind, (kb, dt, base) in rss.items():
        lines.append(f"| {kind} | {base / 1024:.0f} MB | {kb / 1024:.1f} MB | {dt * 1e3:.1f} ms |")
    lines += ["", "## Every kind", "", "| # | input | outcome | peak memory | time |", "| ---: | --- | --- | ---: | ---: |"]
    for i, (case, _, out, peak, dt, ok) in enumerate(rows):
        flag = "" if ok else " **UNEXPECTED**"
        lines.append(f"| {i} | {case.kind} | {out.replace('|', '/')}{flag} | {peak / 1e6:.2f} MB | {dt * 1e3:.1f} ms |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
