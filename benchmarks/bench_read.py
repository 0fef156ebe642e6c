"""Files read per second: real LAMOST files and simulated surveys, one process and 2 workers.

    .venv/bin/python benchmarks/bench_read.py [--repeat 5] [--shared ../shared/data]
    .venv/bin/python benchmarks/bench_read.py --before /tmp/before --rounds 3 --write

``--before CHECKOUT`` measures another checkout's reader in the same run
(a subprocess with that checkout first on the path), rounds interleaved, and
``--write`` records the table in benchmarks/results/read.md. File sets: the
real files of ../shared/data (x ``--repeat``), 4,000 simulated DR7 image
files and 4,000 simulated DR9 table files (``rgbkit.datasets.write_survey``,
cached under ~/.cache/rgbkit/bench). Ratios are taken within one run: the
machine is shared and noisy.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "read.md"

PROBE = r"""
import json, sys, time
from rgbkit.io.lamost import read_lamost, read_many
files = json.loads(open(sys.argv[1]).read())
out = {}
for f in files[:50]:
    read_lamost(f)  # warm the page cache and imports
t = time.perf_counter()
for f in files:
    read_lamost(f)
out["1 process"] = len(files) / (time.perf_counter() - t)
t = time.perf_counter()
spectra, refused = read_many(files, workers=2, progress=False)
out["2 workers"] = len(files) / (time.perf_counter() - t)
out["refused"] = len(refused)
print(json.dumps(out))
"""


def file_sets(shared: Path, repeat: int) -> dict[str, list[str]]:
    from rgbkit.datasets import write_survey
    from rgbkit.io.lamost import expand_paths

    cache = Path(os.environ.get("RGBKIT_CACHE", Path.home() / ".cache" / "rgbkit")) / "bench"
    sets = {f"{len(expand_paths(shared / 'lamost'))} real files x{repeat} (DR1-DR13, gzipped and not)":
            [str(p) for p in expand_paths(shared / "lamost")] * repeat}
    for layout, folder in (("dr7", "survey4000"), ("dr9", "survey4000_dr9")):
        root = cache / folder
        files = sorted(root.glob("*.fits"))
        if len(files) != 4000:
            files = write_survey(root, n=4000, layout=layout, progress=False)
        kind = "image" if layout == "dr7" else "COADD table"
        sets[f"4,000 simulated {layout.upper()} files ({kind}, uncompressed)"] = [str(p) for p in sorted(files)]
    return sets


def probe(checkout: Path | None, files: list[str]) -> dict:
    env = dict(os.environ)
    if checkout is not None:
        env["PYTHONPATH"] = str(checkout) + os.pathsep + env.get("PYTHONPATH", "")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(files, fh)
    try:
        out = subprocess.run([sys.executable, "-c", PROBE, fh.name], env=env, capture_output=True,
                             text=True, check=True, cwd=str(checkout or HERE.parent))
    finally:
        os.unlink(fh.name)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=str(HERE.parents[1] / "shared" / "data"))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--before", help="another checkout to measure in the same run")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    sets = file_sets(Path(args.shared), args.repeat)
    who = {"after": None} if not args.before else {"before": Path(args.before).resolve(), "after": None}
    load0 = os.getloadavg()
    res: dict = {}
    for r in range(args.rounds):
        for name, files in sets.items():
            for label, checkout in (who.items() if r % 2 == 0 else reversed(list(who.items()))):
                out = probe(checkout, files)
                for k in ("1 process", "2 workers"):
                    res.setdefault((name, label, k), []).append(out[k])
                print(f"round {r + 1} {label:6s} {name}: " + ", ".join(f"{k} {out[k]:,.0f}/s" for k in
                                                                      ("1 process", "2 workers")), flush=True)
    load1 = os.getloadavg()
    lines = ["| files | " + " | ".join(f"{label}, {k}" for label in who for k in ("1 process", "2 workers")) + " |",
             "|---|" + "---:|" * (2 * len(who))]
    for name in sets:
        cells = [f"{statistics.median(v):,.0f} ({min(v):,.0f}-{max(v):,.0f})"
                 for v in (res[(name, label, k)] for label in who for k in ("1 process", "2 workers"))]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)
    if args.write:
        head = (f"Measured {dt.date.today()} by `benchmarks/bench_read.py"
                f"{' --before ' + args.before if args.before else ''} --rounds {args.rounds}`: files/s, median (range) of "
                f"{args.rounds} interleaved rounds, each a fresh process (imports warmed on 50 files). Load average "
                f"(1/5/15 min) at start {load0[0]:.1f} / {load0[1]:.1f} / {load0[2]:.1f}, at end "
                f"{load1[0]:.1f} / {load1[1]:.1f} / {load1[2]:.1f}.")
        text = RESULTS.read_text() if RESULTS.exists() else "# Reading LAMOST files\n"
        when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        RESULTS.write_text(text.rstrip() + f"\n\n## Before and after ({when})\n\n{head}\n\n{table}\n")  # history kept
        print("wrote", RESULTS)


if __name__ == "__main__":
    main()
