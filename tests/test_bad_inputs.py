"""The bad-input corpus (tests/badinputs.py) through every read path: same outcome, right reason, bounded memory."""
from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import badinputs
from rgbkit.io import bounded
from rgbkit.io.lamost import LamostFormatError, read_lamost, read_lamost_bytes, read_many

BOMB_PEAK_BYTES = 32 << 20  # what one read of any corpus input may allocate (the cap is 4 MiB)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, shared_data):
    return badinputs.build(tmp_path_factory.mktemp("corpus"), shared_data)


def _outcome(fn, *args, **kw):
    try:
        return fn(*args, **kw)
    except LamostFormatError as exc:
        return exc


def test_corpus_has_enough_kinds(corpus):
    kinds = [c.kind for c, _ in corpus]
    assert len(set(kinds)) == len(kinds) >= 60
    assert sum(c.expect is not None for c, _ in corpus) >= 60
    assert sum(c.bomb for c, _ in corpus) >= 5


@pytest.mark.timeout(120)
def test_each_kind_gets_its_outcome_on_both_paths(corpus):
    """Fast and astropy paths agree: the same refusals with the same reasons, the same arrays otherwise."""
    wrong = []
    for case, path in corpus:
        fast, slow = _outcome(read_lamost, path), _outcome(read_lamost, path, fast=False)
        if case.expect is None:
            if isinstance(fast, Exception) or isinstance(slow, Exception):
                wrong.append((case.kind, "refused", str(fast), str(slow)))
                continue
            for k in ("wavelength", "flux", "ivar", "and_mask", "or_mask"):
                assert np.array_equal(getattr(fast, k), getattr(slow, k), equal_nan=True), (case.kind, k)
            assert str(fast.meta.as_row()) == str(slow.meta.as_row()), case.kind
            continue
        for got in (fast, slow):
            if not isinstance(got, LamostFormatError) or case.expect not in got.reason:
                wrong.append((case.kind, case.expect, repr(got)[:200]))
            elif str(path) not in str(got):
                wrong.append((case.kind, "error does not name the file", str(got)))
        if isinstance(fast, Exception) and isinstance(slow, Exception) and fast.reason != slow.reason:
            wrong.append((case.kind, "paths disagree", fast.reason, slow.reason))
    assert not wrong, "\n".join(map(str, wrong))


def test_bytes_reader_agrees_with_the_path_reader(corpus):
    """read_lamost_bytes (the dashboard's upload path) refuses the same regular files for the same reasons."""
    for case, path in corpus:
        if not case.regular or path.stat().st_size > bounded.MAX_FILE_BYTES:
            continue
        a = _outcome(read_lamost, path)
        b = _outcome(read_lamost_bytes, path.read_bytes(), path.name)
        if isinstance(a, Exception):
            assert isinstance(b, LamostFormatError) and b.reason == a.reason, (case.kind, a, b)
            assert b.path == path.name
        else:
            assert not isinstance(b, Exception), (case.kind, b)
            np.testing.assert_array_equal(a.flux, b.flux)
    big = _outcome(read_lamost_bytes, b"SIMPLE  =" + b" " * (5 << 20), "big.fits")
    assert "larger than the" in big.reason and big.path == "big.fits"
    assert "empty" in _outcome(read_lamost_bytes, b"", "x.fits").reason


@pytest.mark.timeout(60)
def test_bombs_stay_within_a_small_memory_bound(corpus):
    """Each bomb (2 GB gzip, 50 GB declared image or heap, 50 GB sparse file) is refused fast with little memory."""
    for case, path in corpus:
        if not case.bomb:
            continue
        tracemalloc.start()
        t = time.perf_counter()
        try:
            got = _outcome(read_lamost, path)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert isinstance(got, LamostFormatError) and case.expect in got.reason, (case.kind, got)
        assert peak < BOMB_PEAK_BYTES, (case.kind, peak)
        assert time.perf_counter() - t < 5, case.kind


def test_gzip_bomb_is_a_real_bomb():
    """The corpus's bomb builder makes valid gzip: it inflates (with the stdlib) to what it claims."""
    import gzip

    blob = badinputs.gzip_bomb(b"", 8 << 20)
    with gzip.open(io.BytesIO(blob)) as fh:
        n = sum(len(b) for b in iter(lambda: fh.read(1 << 20), b""))
    assert n == 8 << 20 and len(blob) < 20_000
    with pytest.raises(bounded.BoundedReadError, match="inflates to more than"):
        bounded.inflate(blob, 4 << 20)
    assert len(bounded.inflate(blob, 9 << 20)) == 8 << 20


def test_bomb_under_an_address_space_limit(corpus, tmp_path):
    """In a process limited to 1 GiB of address space, the 2 GB gzip bomb still gets its clear refusal."""
    bomb = next(p for c, p in corpus if c.kind.startswith("gzip bomb: 2 GB"))
    code = (
        "import resource, sys\n"
        "from rgbkit.io.lamost import read_lamost, LamostFormatError\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
        "try:\n    read_lamost(sys.argv[1])\nexcept LamostFormatError as e:\n    print(e.reason)\n"
        # VmHWM belongs to this process's memory map; ru_maxrss would carry pytest's peak across exec
        "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(bomb)], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.returncode == 0, out.stderr
    reason, rss_kb = out.stdout.strip().splitlines()
    assert "inflates to more than" in reason
    assert int(rss_kb) < 600_000  # the interpreter, numpy and astropy alone take ~150 MB


def test_read_many_returns_the_good_and_lists_the_bad(corpus):
    folder = corpus[0][1].parent
    paths = [p for _, p in corpus]
    for workers in (1, 2):
        spectra, refused = read_many(paths, workers=workers, progress=False)
        good = [p for c, p in corpus if c.expect is None]
        assert sorted(s.meta.path for s in spectra) == sorted(map(str, good))
        reasons = dict(refused)
        for case, path in corpus:
            if case.expect is not None:
                assert case.expect in reasons[str(path)], case.kind
    # a folder of the corpus: every file found is either read or refused with a reason, none lost
    spectra, refused = read_many(folder, progress=False)
    assert len(spectra) >= 10 and len(refused) >= 50 and all(r for _, r in refused)


def test_odd_names_and_arguments_are_refusals(tmp_path):
    with pytest.raises(LamostFormatError, match="NUL byte"):
        read_lamost("spec\0.fits")
    spectra, refused = read_many(["spec\0.fits", tmp_path / "missing.fits"], progress=False)
    assert spectra == [] and [r for _, r in refused] == ["invalid file name (holds a NUL byte)", "no such file"]


@pytest.mark.timeout(10)
def test_fifo_never_blocks(tmp_path):
    fifo = tmp_path / "pipe.fits"
    os.mkfifo(fifo)
    with pytest.raises(LamostFormatError, match="named pipe"):
        read_lamost(fifo)


def test_permission_denied_says_so(shared_data):
    """A file the user may not read: 'permission denied', not 'no such file' (run as an unprivileged user)."""
    real = shared_data / "lamost/dr5/spec-55959-B5595902_sp08-132.fits"
    folder = Path(tempfile.mkdtemp(prefix="rgbkit-perm-"))
    try:
        os.chmod(folder, 0o755)
        locked = folder / "locked.fits"
        locked.write_bytes(real.read_bytes())
        os.chmod(locked, 0)
        code = ("import os, sys\n"
                "from rgbkit.io.lamost import read_lamost, LamostFormatError\n"
                "if os.geteuid() == 0:\n    os.setgid(65534); os.setuid(65534)\n"
                "try:\n    read_lamost(sys.argv[1])\nexcept LamostFormatError as e:\n    print(e)\n")
        out = subprocess.run([sys.executable, "-c", code, str(locked)], capture_output=True, text=True, timeout=60,
                             env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}, cwd="/")
        assert out.stdout.strip() == f"{locked}: permission denied", out.stderr[-2000:]
    finally:
        for p in folder.iterdir():
            p.unlink()
        folder.rmdir()


def test_pool_workers_die_with_a_killed_parent(tmp_path):
    """SIGKILL the parent of a worker pool: its workers exit within a few seconds instead of waiting
    forever, and remove the scratch folder they were writing into for it."""
    import signal

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "0.bin").write_bytes(b"x" * 1000)
    code = ("import os, sys, time\n"
            "from rgbkit.io.workers import process_pool\n"
            f"pool = process_pool(2, scratch={str(scratch)!r})\n"
            "pids = set()\n"
            "while len(pids) < 2:\n"
            "    pids |= set(pool.map(os.getpid, []) or []) | {pool.submit(os.getpid).result()}\n"
            "    time.sleep(0.05)\n"
            "print(*pids, flush=True)\n"
            "time.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        pids = [int(p) for p in proc.stdout.readline().split()]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert len(pids) == 2

    from proc_utils import still_running

    assert still_running(pids, 10) == []
    assert not scratch.exists()
