"""The resumable catalog run: folders of LAMOST files in, one catalog file out, locally or on Dask.

One row per input file: header metadata, preprocessing flags, spectral line
indices, Teff/logg/[Fe/H] fitted with the shipped emulator, a giant flag, P(RGB) from the classifier, age and mass (ensemble
mean, calibrated spread and 68% interval) and an out-of-domain flag with its
reason. Columns are documented in :data:`COLUMNS` (and ``docs/catalog_columns.md``);
the same text goes into every output file's metadata.

How a run is laid out on disk (``out`` is a folder)::

    parts/part-000001.parquet   rows of one chunk of input files
    parts/part-000001.json      its manifest: the input files it covers, errors
    catalog.parquet|fits|csv    all parts merged at the end
    errors.csv                  one line per file that could not be scored
    run.json                    settings, models, library version, timing
    settings.json               what decides the rows (models' card hashes, cuts,
                                preprocessing): a resume with other settings is refused

Input files are keyed by their resolved folder plus their name, so the same
folder given under another spelling (relative, with ``..``, through a linked
folder) resumes instead of scoring its files again; two links in one folder
stay two inputs. A part is written to a temporary name and moved into place with
``os.replace``; its manifest is written the same way *after* it. On restart a
part without a manifest is discarded and the files listed in the manifests
are skipped, so a run killed at any moment resumes with no lost or
duplicated rows.

Chunks run in a local process pool (default), in this process
(``workers=0``) or on a Dask cluster (``dask="tcp://host:8786"`` or a
``distributed.Client``); each worker reads its own files and loads the
models once from their folders (safetensors, never pickles).
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import time
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from ..errors import RgbkitError
from ..io.files import atomic_write
from ..io.workers import process_pool
from .domain import DomainRules
from .models import ModelRef, default_models, reference
from .schema import schema_metadata
from .score import score_files
from .writers import merge, write_part

__all__ = ["build_catalog", "CatalogRunError", "POOL_MIN_FILES", "input_key", "run_settings"]

POOL_MIN_FILES = 2000  # files per local worker before a process pool is the default (measured: benchmarks/results/catalog.md)


class CatalogRunError(RgbkitError, ValueError):
    """A catalog run that cannot start: output folder unusable, or a resume with other settings."""


SETTINGS = "settings.json"


def input_key(path) -> str:
    """How a run names an input: its folder resolved (links, ``..``, relative spellings), then its name."""
    p = os.path.abspath(os.fspath(path))
    head, name = os.path.split(p)
    return os.path.join(os.path.realpath(head), name)


def _model_fingerprint(model):
    """What identifies a model's numbers: its card's sha256 (folder or object), else its type."""
    from ..io.files import CARD_HASH, card_digest  # torch-free: a pool run's parent never imports torch

    if model is None:
        return None
    if isinstance(model, ModelRef):
        try:
            card = json.loads((Path(model.folder) / "card.json").read_text())
        except (OSError, ValueError):
            return {"class": model.cls, "card_sha256": None, "folder": str(model.folder)}
        return {"class": model.cls, "card_sha256": card.get(CARD_HASH) or card_digest(card)}
    card = getattr(model, "card", None)
    digest = card_digest(card) if isinstance(card, dict) and card else None
    if digest is None and hasattr(model, "members"):  # an unsaved ensemble: its weights decide
        import hashlib

        h = hashlib.sha256()
        for m in model.members:
            for k, v in sorted(m.state_dict().items()):
                h.update(k.encode())
                h.update(v.detach().cpu().numpy().tobytes())
        digest = "weights:" + h.hexdigest()
    return {"class": f"{type(model).__module__}.{type(model).__qualname__}", "card_sha256": digest}


def run_settings(models: dict, rules, preprocessor) -> dict:
    """The settings that decide a catalog's rows: models' hashes, out-of-domain cuts, preprocessing."""
    prep = getattr(preprocessor, "config", None) if preprocessor is not None else None
    return json.loads(json.dumps({
        "models": {k: _model_fingerprint(v) for k, v in models.items()},
        "rules": asdict(rules or DomainRules()),
        "preprocessing": prep if prep is not None else ("from each model's card" if preprocessor is None
                                                        else repr(preprocessor)),
    }, sort_keys=True, default=str))


def _differences(old, new, where="") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new)):
            out += _differences(old.get(k), new.get(k), f"{where}.{k}" if where else k)
        return out
    return [] if old == new else [f"{where}: {str(old)[:40]} then, {str(new)[:40]} now"]


def _check_settings(out: Path, settings: dict) -> None:
    """Record the settings of a new run; refuse to resume one made with other settings."""
    path = out / SETTINGS
    has_parts = any((out / "parts").glob("part-*.json")) if (out / "parts").is_dir() else False
    if path.is_file() and has_parts:
        try:
            old = json.loads(path.read_text())
        except ValueError:
            old = None
        diff = _differences(old, settings) if isinstance(old, dict) else ["settings.json is unreadable"]
        if diff:
            raise CatalogRunError(
                f"{out}: holds a catalog run made with other settings ({'; '.join(diff[:4])}"
                f"{'; ...' if len(diff) > 4 else ''}); resuming would mix two settings in one catalog. "
                "Use another output folder, or start over (resume=False; rgbkit catalog --restart)")
        return
    if has_parts:
        raise CatalogRunError(f"{out}: holds parts of a catalog run with no record of its settings; "
                              "start over (resume=False; rgbkit catalog --restart) or use another output folder")
    atomic_write(path, lambda t: t.write_text(json.dumps(settings, indent=2, sort_keys=True)))


def _done_files(out: Path) -> tuple[set[str], int, list[dict]]:
    """Files already scored (from the manifests, as :func:`input_key`), the last chunk id, and their errors.

    Deletes parts without a manifest and temporary files of a killed run (a part or the final merge).
    """
    parts = out / "parts"
    parts.mkdir(parents=True, exist_ok=True)
    for tmp in list(parts.glob("*.tmp*")) + list(out.glob("*.tmp*")):
        tmp.unlink()
    done, errors, last = set(), [], 0
    for pq_ in parts.glob("part-*.parquet"):
        if not pq_.with_suffix(".json").exists():
            pq_.unlink()  # killed between the part and its manifest: redo those files
    for man in sorted(parts.glob("part-*.json")):
        if not man.with_suffix(".parquet").exists():
            man.unlink()
            continue
        m = json.loads(man.read_text())
        done.update(input_key(f) for f in m["files"])
        errors += m.get("errors", [])
        last = max(last, int(man.stem.split("-")[1]))
    return done, last, errors


def _load_models(refs: dict) -> None:
    """Load (and so check) every model reference in this process; raises the first bad one's error."""
    from .models import resolve

    for v in refs.values():
        if isinstance(v, ModelRef):
            resolve(v)


def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def build_catalog(inputs, out, *, age="default", mass="default", classifier="default", preprocessor=None,
                  rules: DomainRules | None = None, fmt: str = "parquet", chunk_size: int = 512,
                  workers: int | None = None, threads: int | None = None, dask=None, batch_size: int = 128,
                  resume: bool = True, progress: bool = True, fetcher: dict | None = None,
                  precision: str = "auto") -> Path:
    """Score every LAMOST file in ``inputs`` into a catalog under the folder ``out``.

    ``inputs``: a folder (searched recursively), a glob, a list of paths, or,
    with ``fetcher=dict(url_template=..., cache=...)``, a list of obsids that
    :func:`rgbkit.io.fetch.fetch` downloads first. ``age``/``mass``/``classifier``:
    ``"default"`` (the shipped models), None (columns NaN), a model object or
    a :class:`ModelRef`. ``workers``: processes of the local pool (0 runs in
    this process; default: one per core, up to 8, once there are
    ``POOL_MIN_FILES`` files per process, else 0). ``dask``: a scheduler address or a
    ``distributed.Client``. ``fmt``: parquet, fits or csv for the merged file.
    ``precision``: the networks' number format, "auto" (bfloat16 where the
    CPU computes it natively: about twice as fast, ages within ~0.1% of
    float32), "float32" or "bfloat16" (:mod:`rgbkit.precision`).
    Returns the merged catalog's path.

    The local pool forks its workers on Linux when this process has not
    imported torch and runs no other thread (the ``rgbkit catalog`` command),
    else it spawns them, so a script that calls this with ``workers > 0``
    needs the usual ``if __name__ == "__main__":`` guard (notebooks do not). ``threads``: torch
    threads per pool or Dask worker (default 1), or of this process when it
    scores (default: the CPUs it may use, :func:`rgbkit.models.threads.cpu_budget`).
    """
    from tqdm.auto import tqdm

    from ..io.lamost import expand_paths

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CatalogRunError(f"output folder {out} is a file; give a folder (it holds parts, manifests and the catalog)")
    from ..precision import resolve_precision

    try:
        precision_used = resolve_precision(precision, check_torch=False)
    except ValueError as exc:
        raise CatalogRunError(str(exc)) from None
    if chunk_size < 1 or batch_size < 1 or (workers is not None and workers < 0) or (threads is not None and threads < 1):
        raise CatalogRunError(f"chunk_size, batch_size and threads must be >= 1 and workers >= 0 "
                              f"(got {chunk_size}, {batch_size}, {threads}, {workers})")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CatalogRunError(f"output folder {out}: cannot create it ({exc.strerror or exc})") from None
    errors_extra = []
    if fetcher is not None:
        from ..io.fetch import fetch

        res = fetch(list(inputs), progress=progress, **fetcher)
        paths = [input_key(r.path) for r in res if r.path is not None]
        errors_extra = [{"file": r.obsid, "stage": "fetch", "reason": r.error} for r in res if r.path is None]
    else:
        paths = [input_key(p) for p in expand_paths(inputs)]
    if len(set(paths)) != len(paths):
        paths = list(dict.fromkeys(paths))
    defaults = default_models() if "default" in (age, mass, classifier) else {}
    models = {k: defaults.get(k) if v == "default" else v
              for k, v in (("age", age), ("mass", mass), ("classifier", classifier))}
    missing = [k for k, v in (("age", age), ("mass", mass), ("classifier", classifier))
               if v == "default" and models[k] is None]
    if missing:
        import warnings

        warnings.warn(f"no shipped {', '.join(missing)} model in rgbkit/pretrained: "
                      "those columns will be NaN", stacklevel=2)
    if not resume:
        if (out / "parts").exists():
            for p in (out / "parts").iterdir():
                p.unlink()
        (out / SETTINGS).unlink(missing_ok=True)
    _check_settings(out, run_settings(models, rules, preprocessor))
    done, last, old_errors = _done_files(out)
    todo = [p for p in paths if p not in done]
    spare = out / "models"
    refs = {k: reference(v, spare, k) for k, v in models.items()}
    local_only = any(v is not None and refs[k] is None for k, v in models.items())
    if workers is None:
        # A pool worker spends ~2-3 CPU s importing torch and loading models (about 2,000
        # spectra of work), so small runs are faster in this process.
        workers = min(os.cpu_count() or 1, 8, len(todo) // POOL_MIN_FILES)
        workers = workers if workers >= 2 else 0
    if local_only and (dask is not None or workers > 0):
        workers, dask = 0, None  # objects that cannot be reloaded elsewhere: score here
    if dask is not None or workers == 0 or len(todo) <= chunk_size:
        _load_models(refs)  # a wrong folder fails here, naming it, not in every worker
    run_info = {"started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "n_inputs": len(paths), "already_done": len(paths) - len(todo), "chunk_size": chunk_size,
                "models": {k: asdict(v) if isinstance(v, ModelRef) else (None if v is None else repr(v))
                           for k, v in refs.items()},
                "rules": asdict(rules or DomainRules()), "format": fmt,
                "workers": "dask" if dask is not None else workers,
                "precision": {"asked": precision, "here": precision_used}}
    (out / "run.json").write_text(json.dumps(run_info, indent=2))
    kw = dict(preprocessor=preprocessor, rules=rules, batch_size=batch_size, precision=precision)
    chunks = list(_chunks(todo, chunk_size))
    pooled = dask is None and workers > 0 and len(chunks) > 1
    pool = _start_pool(workers, threads or 1) if pooled else None  # before any thread of ours (fork)
    bar = tqdm(total=len(todo), desc="catalog", unit="spec", disable=not progress)
    next_id = [last]

    def record(files, result):
        rows, errs = result
        next_id[0] += 1
        stem = out / "parts" / f"part-{next_id[0]:06d}"
        write_part(rows, stem.with_suffix(".parquet"))
        man = {"files": list(files), "n_rows": len(rows), "errors": errs}
        atomic_write(stem.with_suffix(".json"), lambda t: t.write_text(json.dumps(man)))
        bar.update(len(files))

    t0 = time.perf_counter()
    if dask is not None:
        _run_dask(dask, chunks, refs, kw, threads or 1, record)
    elif workers == 0 or len(chunks) <= 1:
        from ..models.threads import cpu_budget

        m = {k: (models[k] if local_only else refs[k]) for k in models}
        for files in chunks:
            record(files, score_files(files, age=m["age"], mass=m["mass"], classifier=m["classifier"],
                                      threads=None if local_only else (threads or cpu_budget()), **kw))
    else:
        _run_pool(pool, workers, chunks, refs, kw, record)
    bar.close()
    elapsed = time.perf_counter() - t0
    done, _, errors = _done_files(out)
    errors = errors + errors_extra
    atomic_write(out / "errors.csv", lambda t: pd.DataFrame(errors, columns=["file", "stage", "reason"]).to_csv(t, index=False))
    run_info.update(finished=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                    seconds=round(elapsed, 2), scored_now=len(todo),
                    spectra_per_second=round(len(todo) / elapsed, 1) if elapsed > 0 and todo else None)
    (out / "run.json").write_text(json.dumps(run_info, indent=2))
    return merge(out, fmt, schema_metadata({"run": run_info}))


def _start_pool(workers: int, threads: int):
    """A local pool of ``workers`` processes with ``threads`` torch threads each.

    Forked on Linux while this process has not imported torch (the command line
    never does: the workers load the models), so a worker skips Python's and
    rgbkit's start-up (~0.5 s each); spawned otherwise (a forked torch, or a fork of a
    process with other threads, can hang).
    Workers exit when this process is killed (they would wait on their queue forever).
    """
    import multiprocessing as mp
    import sys

    import threading

    alone = threading.active_count() == 1  # forking a process with other threads (a notebook) can hang
    method = "fork" if sys.platform.startswith("linux") and "torch" not in sys.modules and alone else "spawn"
    return process_pool(workers, _worker_init, (threads,), mp_context=mp.get_context(method))


def _run_pool(pool, workers: int, chunks, refs, kw, record) -> None:
    """Score ``chunks`` on ``pool``, two per worker in flight; a wrong model folder fails the first chunk.

    The pool is shut down without waiting for the workers to exit (torch's
    teardown takes ~0.5 s), so the merge overlaps it.
    """
    try:
        pending, it = {}, iter(chunks)
        while True:
            while len(pending) < 2 * workers:
                files = next(it, None)
                if files is None:
                    break
                fut = pool.submit(score_files, files, age=refs["age"], mass=refs["mass"],
                                  classifier=refs["classifier"], **kw)
                pending[fut] = files
            if not pending:
                break
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                record(pending.pop(fut), fut.result())
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _run_dask(dask, chunks, refs, kw, threads, record) -> None:
    from distributed import Client, as_completed

    client = dask if isinstance(dask, Client) else Client(dask)
    try:
        futures = {}
        for files in chunks:
            fut = client.submit(score_files, files, age=refs["age"], mass=refs["mass"],
                                classifier=refs["classifier"], threads=threads, pure=False, **kw)
            futures[fut] = files
        for fut in as_completed(futures):
            record(futures[fut], fut.result())
    finally:
        if not isinstance(dask, Client):
            client.close()

