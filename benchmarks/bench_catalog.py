"""End-to-end catalog speed: read, preprocess, classify, age, mass, write.

    .venv/bin/python benchmarks/bench_catalog.py [--n 2000] [--members 5] [--workers 2]

Inputs: ``load_survey(n)`` written as LAMOST FITS (cached under
``$RGBKIT_CACHE/bench``) and the real files in ../shared/data (repeated).
Models: the shipped ensembles when ``rgbkit/pretrained`` holds them, else
untrained stand-ins of the shipped architecture (``small_config``) with
``--members`` members each for age, mass and the classifier; speed does
not depend on the weights.

Prints a stage profile (one process, one thread) and end-to-end rates for
the configurations compared in benchmarks/results/catalog.md.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rgbkit import catalog  # noqa: E402
from rgbkit.catalog.models import resolve  # noqa: E402
from rgbkit.classify import Classifier  # noqa: E402
from rgbkit.ensemble import PRETRAINED_DIR, Ensemble  # noqa: E402
from rgbkit.io.lamost import read_lamost  # noqa: E402
from rgbkit.models.densenet import DenseNet1D, small_config  # noqa: E402
from rgbkit.preprocess import Preprocessor  # noqa: E402
from rgbkit.train import TargetScaler  # noqa: E402


def survey_files(n: int) -> list[Path]:
    from rgbkit.datasets import write_survey

    root = Path(os.environ.get("RGBKIT_CACHE", Path.home() / ".cache" / "rgbkit")) / "bench" / f"survey{n}"
    files = sorted(root.glob("*.fits"))
    if len(files) != n:
        shutil.rmtree(root, ignore_errors=True)
        files = write_survey(root, n=n, progress=True)
    return sorted(files)


def models(members: int, folder: Path) -> dict:
    """Shipped models as references, else saved stand-ins of the shipped size."""
    shipped = catalog.default_models()
    if all(shipped.values()):
        return shipped
    torch.manual_seed(0)
    out = {}
    for name, obj in (
        ("age", Ensemble([DenseNet1D(small_config()) for _ in range(members)], TargetScaler("log", 1.0, 0.5), "age")),
        ("mass", Ensemble([DenseNet1D(small_config()) for _ in range(members)], TargetScaler("log", 0.1, 0.2), "mass")),
        ("classifier", Classifier([DenseNet1D(small_config(head="classification", num_classes=2))
                                   for _ in range(members)])),
    ):
        if shipped.get(name) is not None:
            out[name] = shipped[name]
            continue
        obj.save(folder / name, overwrite=True)
        out[name] = catalog.ModelRef(f"{type(obj).__module__}.{type(obj).__qualname__}", str(folder / name))
    return out


def profile(files, refs, fast: bool) -> dict:
    """CPU seconds per stage for one chunk in this process (torch: 1 thread).

    CPU time (time.process_time) rather than wall time, because the machine
    is shared: it measures the work, not the wait for a core.
    """
    torch.set_num_threads(1)
    m = {k: resolve(v) for k, v in refs.items()}
    t = {}
    t0 = time.process_time()
    spectra = [read_lamost(p, fast=fast) for p in files]
    t["read (fast path)" if fast else "read (astropy)"] = time.process_time() - t0
    t0 = time.process_time()
    pre = Preprocessor().run_spectra(spectra, keep_stages=True)
    t["preprocess"] = time.process_time() - t0
    t0 = time.process_time()
    catalog.line_indices(pre.stages["resampled"], pre.wavelength)
    t["line indices"] = time.process_time() - t0
    X = pre.X[pre.ok]
    bs = 128 if fast else 1024
    for name in ("classifier", "age", "mass"):
        model = catalog.fast_model(m[name]) if fast else m[name]
        model.predict(X[:8])
        t0 = time.process_time()
        model.predict(X, batch_size=bs)
        t[f"{name} ({len(m[name])} members)"] = time.process_time() - t0
    t0 = time.process_time()
    catalog.score_spectra(spectra, **m, fast=fast, batch_size=bs)
    t["score_spectra (all but read)"] = time.process_time() - t0
    return t


def _cpu() -> float:
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def end_to_end(files, refs, out: Path, **kw) -> tuple[float, float]:
    """(spectra per wall second, spectra per CPU second of this process and its workers).

    Worker CPU time counts once the pool has shut down, i.e. inside the call.
    """
    shutil.rmtree(out, ignore_errors=True)
    t0, c0 = time.perf_counter(), _cpu()
    catalog.build_catalog([str(f) for f in files], out, progress=False, **refs, **kw)
    return len(files) / (time.perf_counter() - t0), len(files) / (_cpu() - c0)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--members", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--chunk-size", type=int, default=256)
    ap.add_argument("--real-repeat", type=int, default=6)
    ap.add_argument("--skip-profile", action="store_true")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="rgbkit-bench-"))
    refs = models(args.members, tmp / "models")
    print("models:", {k: v.folder for k, v in refs.items()}, "shipped" if refs == catalog.default_models() else "stand-ins")
    files = survey_files(args.n)
    print(f"{len(files)} simulated survey files; machine load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if not args.skip_profile:
        for fast in (False, True):
            prof = profile(files[:1024], refs, fast)
            total = prof["score_spectra (all but read)"] + prof[next(k for k in prof if k.startswith("read"))]
            print(f"\nprofile, 1024 spectra, 1 process, 1 thread ({'read_lamost fast path, fused members, batch 128' if fast else 'read_lamost via astropy, Ensemble.predict, batch 1024'}):")
            for k, v in prof.items():
                print(f"  {k:30s} {v:7.3f} CPU s  {1024 / v:8.0f} spec per CPU s")
            print(f"  {'read + score':30s} {total:7.3f} CPU s  {1024 / total:8.0f} spec per CPU s")
    real = sorted((REPO.parent / "shared" / "data" / "lamost").rglob("*.fits*"))
    links = tmp / "real"
    links.mkdir()
    for k in range(args.real_repeat):
        for i, p in enumerate(real):
            (links / f"r{k}_{i:03d}_{p.name}").symlink_to(p)
    real_files = sorted(links.iterdir())
    print("\nend to end (build_catalog, Parquet):")
    for label, fl in (("survey", files), ("real x%d" % args.real_repeat, real_files)):
        for kw in ({"workers": 0, "threads": 1}, {"workers": args.workers, "threads": 1}):
            rate, cpu_rate = end_to_end(fl, refs, tmp / "out", chunk_size=args.chunk_size, **kw)
            print(f"  {label:8s} {len(fl):5d} files  {kw}  {rate:6.0f} spec/s wall, "
                  f"{cpu_rate:6.0f} spec per CPU s (load {os.getloadavg()[0]:.1f})")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
