"""Readers (and a writer) for LAMOST low-resolution spectra.

Why ~420 lines in one module: the three layouts, the plausibility checks both
read paths share, and the writer (its round trip) must be read side by side.

One small function per published layout, one entry point that picks:

* ``dr1-image``: primary image of 5 rows (flux, ivar, "subcontinuum" of ones,
  and-mask, or-mask); wavelength = 10**(COEFF0 + COEFF1 * i); SNR in SN_U..SN_Z.
* ``dr2-image`` (DR2-DR7): 5 rows with the wavelength in row 3; SNR in SNRU..SNRZ.
* ``dr8-table`` (DR8 and later): empty primary HDU with the header and a
  binary table ``COADD`` of one row with array columns.

Gzipped files of each are read transparently (inflated with a cap, see bounded.py).
Every refusal is a :class:`LamostFormatError` that names the file.
"""
from __future__ import annotations

import contextlib
import glob as _glob
import gzip
import io
import mmap
import os
import re
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Iterable

import numpy as np
from astropy.io import fits

from ..errors import FileFormatError
from ..spectra import BANDS, Spectrum, SpectrumMeta
from . import bounded, fastfits
from .files import FITS_MAGIC, atomic_write  # noqa: F401 - FITS_MAGIC re-exported
from .workers import process_pool

# Header cards kept on the spectrum beyond the parsed fields: parsing every
# card of a LAMOST header costs half the read time, so keep what people look at.
HEADER_KEEP = (
    "FILENAME", "DATA_V", "DATE-OBS", "LMJD", "MJD", "PLANID", "SPID", "FIBERID", "FIBERTYP",
    "OBJNAME", "OBJTYPE", "OBJSOURC", "TSOURCE", "TCOMMENT", "TFROM", "MAGTYPE",
    "MAG1", "MAG2", "MAG3", "MAG4", "MAG5", "MAG6", "MAG7", "SEEING", "MOONPHA", "EXPTIME",
    "HELIO_RV", "VACUUM", "OBSID", "DESIG", "RA", "DEC", "CLASS", "SUBCLASS", "Z", "Z_ERR",
)


# every card the readers look at (the fast path types only these)
META_KEYS = frozenset(HEADER_KEEP) | {"OBSID", "DESIG", "RA", "DEC", "CLASS", "SUBCLASS", "Z", "Z_ERR", "DATA_V",
                                      "TCOMMENT", "EXTEN0", "COEFF0", "COEFF1"} | {
    f"{p}{b.upper()}" for p in ("SNR", "SN_") for b in BANDS}


class LamostFormatError(FileFormatError):
    """A file that is not a readable LAMOST low-resolution spectrum."""


# --------------------------------------------------------------------- helpers
def _load(path: Path, data: bytes | None = None) -> tuple[bytes, list]:
    """Bounded, inflated bytes and the checked HDU layout, or a refusal naming the file."""
    try:
        buf = bounded.load(path if data is None else None, data)
        return buf, bounded.walk(buf)
    except bounded.BoundedReadError as exc:
        raise LamostFormatError(path, str(exc)) from None


def _float(header, key) -> float:
    v = header.get(key)
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _str(header, key) -> str | None:
    v = header.get(key)
    if v is None:
        return None
    v = str(v).strip()
    return v or None


def _release(header, layout: str) -> str | None:
    m = re.search(r"DR\s*(\d+)", str(header.get("DATA_V", "")), re.I)
    if m:
        return f"DR{int(m.group(1))}"
    return "DR1" if layout == "dr1-image" else None


def _meta(header, layout: str, path: Path) -> SpectrumMeta:
    snr = {}
    for b in BANDS:
        key = f"SNR{b.upper()}" if f"SNR{b.upper()}" in header else f"SN_{b.upper()}"
        snr[b] = _float(header, key)
    obsid = header.get("OBSID")
    kic = None
    m = re.match(r"\s*kplr0*(\d+)", str(header.get("TCOMMENT", "")), re.I)
    if m:
        kic = int(m.group(1))
    keep = {}
    for key in HEADER_KEEP:
        if key in header:
            v = header[key]
            keep[key] = v if isinstance(v, (int, float, str, bool)) else str(v)
    return SpectrumMeta(
        obsid=int(obsid) if isinstance(obsid, (int, np.integer)) and 0 <= obsid < 2**63 else None,
        designation=_str(header, "DESIG"),
        ra=_float(header, "RA"),
        dec=_float(header, "DEC"),
        objclass=_str(header, "CLASS"),
        subclass=_str(header, "SUBCLASS"),
        z=_float(header, "Z"),
        z_err=_float(header, "Z_ERR"),
        snr=snr,
        data_release=_release(header, layout),
        layout=layout,
        path=str(path),
        kic=kic,
        header=keep,
    )


# Plausible for a LAMOST low-resolution spectrum (real files: 3748-3909 pixels,
# 3690-3850 to 8900-9110 A); anything outside is not what the models expect.
MIN_PIXELS, MAX_PIXELS = 3000, 5000
WAVE_MIN, WAVE_MAX, MIN_SPAN = 3500.0, 9500.0, 4000.0
TABLE_COLUMNS = ("FLUX", "IVAR", "WAVELENGTH", "ANDMASK", "ORMASK")


def _is_mrs(hdus) -> bool:
    names = {h.name for h in hdus}
    if names & {"COADD_B", "COADD_R"} or any(n.startswith(("B-", "R-")) for n in names):
        return True
    text = " ".join(str(hdus[0].cards.get(k, "")) for k in ("DATA_V", "OBSMODE", "RESOLUTION"))
    return "MRS" in text.upper() or "MEDIUM" in text.upper()


def _pixels_reason(n: int) -> str | None:
    if MIN_PIXELS <= n <= MAX_PIXELS:
        return None
    return (f"{n} pixels; a LAMOST low-resolution spectrum has about 3,700-3,950 "
            f"(accepted: {MIN_PIXELS}-{MAX_PIXELS})")


def _plan(path: Path, hdus) -> str:
    """The layout the headers declare ("image" or "table"), refusing what cannot be one, before any data is read."""
    if _is_mrs(hdus):
        raise LamostFormatError(path, "medium-resolution (MRS) file; rgbkit reads low-resolution (LRS) spectra only")
    primary = hdus[0]
    if primary.data_bytes:
        axes = primary.naxes
        if len(axes) != 2:
            raise LamostFormatError(path, f"primary image has shape {tuple(axes[::-1])}, expected 5 rows x N pixels")
        if axes[1] != 5:
            raise LamostFormatError(path, f"primary image has {axes[1]} rows, expected 5 (flux, ivar, wavelength, andmask, ormask)")
        reason = _pixels_reason(axes[0])
        if reason:
            raise LamostFormatError(path, reason)
        return "image"
    coadd = [h for h in hdus if h.name == "COADD"]
    if not coadd:
        raise LamostFormatError(path, "no COADD table extension (DR8+ layout) and no 5-row image (DR1-7 layout)")
    try:
        bounded.check_bintable(coadd[0], TABLE_COLUMNS)
    except bounded.BoundedReadError as exc:
        raise LamostFormatError(path, str(exc)) from None
    if coadd[0].cards.get("NAXIS2", 0) < 1:
        raise LamostFormatError(path, "COADD table has no rows")
    return "table"


# ----------------------------------------------------------------- the layouts
def _read_image(path: Path, hdu) -> tuple[str, tuple]:
    data = hdu.data
    if data is None or data.ndim != 2 or data.shape[0] != 5:
        raise LamostFormatError(path, f"primary image has shape {None if data is None else data.shape}, expected 5 rows")
    header = hdu.header
    flux, ivar, row3, andm, orm = (np.asarray(r) for r in data)
    n = flux.size
    subcontinuum = "SUBCONTINUUM" in str(header.get("EXTEN0", "")).upper() or (row3[0] == 1 and np.all(row3 == 1))
    if subcontinuum:
        c0, c1 = header.get("COEFF0"), header.get("COEFF1")
        if c0 is None or c1 is None:
            raise LamostFormatError(path, "DR1 layout (row 3 is a subcontinuum) but COEFF0/COEFF1 are missing")
        try:
            c0, c1 = float(c0), float(c1)
        except (TypeError, ValueError):
            raise LamostFormatError(path, f"DR1 layout but COEFF0/COEFF1 are not numbers ({c0!r}, {c1!r})") from None
        with np.errstate(over="ignore", invalid="ignore"):
            wave = 10.0 ** (c0 + c1 * np.arange(n))
        return "dr1-image", (wave, flux, ivar, andm, orm)
    return "dr2-image", (row3.astype(np.float64), flux, ivar, andm, orm)


def _read_table(path: Path, hdul) -> tuple:
    tab = hdul["COADD"].data
    cols = {c.upper() for c in tab.columns.names}
    missing = [c for c in TABLE_COLUMNS if c not in cols]
    if missing:
        raise LamostFormatError(path, f"COADD table lacks column(s) {', '.join(missing)}")
    row = tab[0]
    return tuple(np.asarray(row[c]).ravel() for c in ["WAVELENGTH", "FLUX", "IVAR", "ANDMASK", "ORMASK"])


def _validate(path: Path, wave, flux, ivar, masks) -> list[np.ndarray]:
    """Refuse what is not a plausible LAMOST low-resolution spectrum (same checks for every read path).

    Returns the two masks as int32 arrays.
    """
    if flux.size == 0:
        raise LamostFormatError(path, "empty flux array")
    if not (wave.size == flux.size == ivar.size == masks[0].size == masks[1].size):
        raise LamostFormatError(path, f"array lengths differ (wavelength {wave.size}, flux {flux.size}, ivar {ivar.size}, "
                                      f"masks {masks[0].size}/{masks[1].size})")
    reason = _pixels_reason(flux.size)
    if reason:
        raise LamostFormatError(path, reason)
    with np.errstate(invalid="ignore", over="ignore"):
        steps = np.diff(wave)
    # wave[0] finite and every step finite and > 0 <=> finite and strictly increasing
    smin, smax = steps.min(), steps.max()
    if not (np.isfinite(wave[0]) and np.isfinite(steps.sum()) and smin > 0):
        raise LamostFormatError(path, "wavelength is not finite and strictly increasing")
    if wave[0] < WAVE_MIN or wave[-1] > WAVE_MAX:
        raise LamostFormatError(path, f"wavelength range {wave[0]:.6g}-{wave[-1]:.6g} A is outside {WAVE_MIN:.0f}-{WAVE_MAX:.0f} A "
                                      "(LAMOST low-resolution spectra cover about 3,700-9,100 A, in Angstrom)")
    if wave[-1] - wave[0] < MIN_SPAN:
        raise LamostFormatError(path, f"wavelength spans only {wave[-1] - wave[0]:.4g} A; a LAMOST low-resolution "
                                      f"spectrum spans about 5,300 A (accepted: {MIN_SPAN:.0f} A or more)")
    # max <= 10 min implies max <= 10 median: the median (a partition) only when that fails
    if smax > 10 * smin and smax > 10 * np.median(steps):
        raise LamostFormatError(path, f"wavelength steps are uneven (largest {smax:.3g} A, "
                                      f"median {np.median(steps):.3g} A): not a LAMOST pixel grid")
    # one float64 sum finds any NaN/inf (float32 values cannot overflow it)
    if not np.isfinite(ivar.sum(dtype=np.float64)):
        raise LamostFormatError(path, "inverse variance is not finite everywhere")
    if ivar.min() < 0:
        raise LamostFormatError(path, "negative inverse variance")
    good = ivar > 0
    n_good = int(np.count_nonzero(good))
    if n_good < 0.1 * good.size:
        raise LamostFormatError(path, f"only {n_good} of {good.size} pixels have a positive inverse variance")
    if np.isfinite(flux.sum(dtype=np.float64)):  # the usual case: every pixel finite
        if not flux.any():
            raise LamostFormatError(path, "flux is all zero")
    else:
        finite = np.isfinite(flux)
        if not finite.any():
            raise LamostFormatError(path, "flux is all NaN/inf")
        if not np.all(finite[good]):
            raise LamostFormatError(path, "flux is NaN/inf at pixels with a positive inverse variance")
        if not np.any(flux[finite] != 0):
            raise LamostFormatError(path, "flux is all zero")
    out = []
    for name, m in zip(("and", "or"), masks):
        m = np.asarray(m)
        if m.dtype.kind == "f":
            if not m.any():  # most pixels of most files: no bits set (NaN counts as set)
                out.append(np.zeros(m.shape, np.int32))
                continue
            with np.errstate(invalid="ignore"):
                mi = m.astype(np.int32)  # NaN, inf, fractions and values beyond 32 bits do not survive the trip
            if not np.array_equal(mi, m):
                raise LamostFormatError(path, f"{name}-mask holds values that are not 32-bit integers")
            out.append(mi)
        else:
            out.append(m.astype(np.int32))
    return out


# ------------------------------------------------------------------ public API
def read_lamost(path, fast: bool = True) -> Spectrum:
    """Read one LAMOST low-resolution spectrum (any layout, gzipped or not).

    Returns a :class:`~rgbkit.spectra.Spectrum` with vacuum wavelengths in
    Angstrom. Raises :class:`LamostFormatError` naming the file and the reason.
    At most :data:`rgbkit.io.bounded.MAX_FILE_BYTES` are read or inflated, and
    every size a header declares is checked before anything is allocated.
    Files are parsed from their bytes (``fast``: DR1-DR7 images about 16x,
    DR8+ tables about 5x less CPU than astropy); anything odd goes through astropy. Both paths
    share the checks before and after, so they refuse the same files for the
    same reasons. ``fast=False`` always uses astropy.
    """
    path = Path(path)
    try:
        buf, hdus = _load(path)
        return _read_buffer(path, buf, hdus, fast)
    except LamostFormatError:
        raise
    except Exception as exc:  # noqa: BLE001 - a bulk run must get a reason, never a traceback
        raise LamostFormatError(path, f"cannot read ({type(exc).__name__}: {exc})") from None


def read_lamost_bytes(data: bytes, name: str = "upload", fast: bool = True) -> Spectrum:
    """Read a LAMOST file held in memory (an upload); same bounds, checks and errors as :func:`read_lamost`.

    ``name`` stands in for the path in errors and in ``meta.path``; no temporary file is written.
    """
    path = Path(name)
    try:
        buf, hdus = _load(path, bytes(data or b""))
        return _read_buffer(path, buf, hdus, fast)
    except LamostFormatError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise LamostFormatError(path, f"cannot read ({type(exc).__name__}: {exc})") from None


def _read_buffer(path: Path, buf: bytes, hdus, fast: bool) -> Spectrum:
    plan = _plan(path, hdus)
    if fast:
        try:
            if plan == "image":
                header, data = fastfits.plain_primary_image(buf, keys=META_KEYS, hdu=hdus[0])
                layout, arrays = _read_image(path, SimpleNamespace(data=data, header=header))
            else:
                header, _ = fastfits.primary_header(buf, keys=META_KEYS, hdu=hdus[0])
                coadd = next(h for h in hdus if h.name == "COADD")
                cols = fastfits.table_first_row(buf, coadd, TABLE_COLUMNS)
                layout = "dr8-table"
                arrays = tuple(cols[c] for c in ("WAVELENGTH", "FLUX", "IVAR", "ANDMASK", "ORMASK"))
            meta = _meta(header, layout, path)
        except Exception:  # noqa: BLE001 - astropy below reads it or names the error
            pass
        else:
            return _spectrum(path, arrays, meta)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(io.BytesIO(buf), memmap=False, lazy_load_hdus=True) as hdul:
                header = hdul[0].header
                if plan == "image":
                    layout, arrays = _read_image(path, hdul[0])
                else:
                    layout, arrays = "dr8-table", _read_table(path, hdul)
                meta = _meta(header, layout, path)
                arrays = tuple(np.array(a) for a in arrays)  # own copies: nothing points into the buffer
    except LamostFormatError:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure to read is a refusal naming the file
        raise LamostFormatError(path, f"unreadable FITS ({type(exc).__name__}: {exc})") from None
    return _spectrum(path, arrays, meta)


def _spectrum(path: Path, arrays, meta: SpectrumMeta) -> Spectrum:
    wave, flux, ivar, andm, orm = arrays
    with np.errstate(over="ignore", invalid="ignore"):
        wave = np.asarray(wave, dtype=np.float64)
        flux = np.asarray(flux, dtype=np.float32)
        ivar = np.asarray(ivar, dtype=np.float32)
    andm, orm = _validate(path, wave, flux, ivar, (andm, orm))
    return Spectrum(wave, flux, ivar, andm, orm, meta)


def expand_paths(paths_or_glob) -> list[Path]:
    """A glob string, a folder (all *.fits / *.fits.gz below it) or a list of paths."""
    if isinstance(paths_or_glob, (str, os.PathLike)):
        p = Path(paths_or_glob)
        if p.is_dir():
            return sorted(q for q in p.rglob("*") if q.name.lower().endswith((".fits", ".fits.gz", ".fit", ".fit.gz")))
        if any(c in str(paths_or_glob) for c in "*?["):
            return [Path(q) for q in sorted(_glob.glob(str(paths_or_glob), recursive=True))]
        return [p]
    return [Path(q) for q in paths_or_glob]


def _read_or_reason(path):
    try:
        return read_lamost(path), None
    except LamostFormatError as exc:
        return None, exc.reason
    except Exception as exc:  # noqa: BLE001 - one file never costs the run
        return None, f"cannot read ({type(exc).__name__}: {exc})"


_FIELDS = (("wavelength", np.float64), ("flux", np.float32), ("ivar", np.float32),
           ("and_mask", np.int32), ("or_mask", np.int32))
_BYTES_PER_PIXEL = sum(np.dtype(t).itemsize for _, t in _FIELDS)  # 24: every block stays 8-byte aligned


def _read_chunk(job) -> tuple[bool, list]:
    """A worker's chunk: read the files, write all their arrays to one scratch file; returns
    ``(True, [(meta, pixels, offset) or (None, reason) per file])``, or ``(False, [(spectrum,
    reason) per file])`` when the scratch file could not be written.

    Sending the arrays back through the pool's pipe (pickled, ~95 KB a
    spectrum) cost the parent more than reading them did; a scratch file
    (page cache) costs one copy here and none in the parent, which maps it.
    """
    paths, out = job
    results = [_read_or_reason(path) for path in paths]
    if out is None:  # no scratch folder
        return False, results
    info, offset = [], 0
    try:
        with open(out, "wb") as fh:
            for spec, reason in results:
                if spec is None:
                    info.append((None, reason))
                    continue
                for name, _ in _FIELDS:
                    fh.write(memoryview(np.ascontiguousarray(getattr(spec, name))).cast("B"))
                info.append((spec.meta, spec.flux.size, offset))
                offset += spec.flux.size * _BYTES_PER_PIXEL
    except OSError:  # no room for scratch files: send the spectra the slow way
        with contextlib.suppress(OSError):
            os.unlink(out)
        return False, results
    return True, info


def _spectra_from_chunk(out: str, chunk: tuple[bool, list]) -> list:
    """(spectrum, None) or (None, reason) per file of a chunk; the scratch file is removed."""
    in_file, info = chunk
    if not in_file:  # the worker sent the spectra themselves
        return info
    with open(out, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size and os.name != "nt":  # (Windows cannot remove a mapped file)
            # mapped copy-on-write, not read: the arrays are views of its pages, which outlive the
            # name until the chunk's last spectrum goes (a plain array: slicing np.memmap costs ~10 us)
            buf = np.frombuffer(mmap.mmap(fh.fileno(), size, access=mmap.ACCESS_COPY), dtype=np.uint8)
        else:
            buf = np.frombuffer(fh.read(), dtype=np.uint8).copy()
    os.unlink(out)
    result = []
    for item in info:
        if item[0] is None:
            result.append(item)
            continue
        meta, n, pos = item
        arrays = []
        for _, dtype in _FIELDS:
            size = n * np.dtype(dtype).itemsize
            arrays.append(buf[pos:pos + size].view(dtype))
            pos += size
        result.append((Spectrum(*arrays, meta=meta), None))
    return result


def read_many(paths_or_glob, workers: int = 1, progress: bool = True):
    """Read many files; return ``(spectra, refused)``.

    ``refused`` is a list of ``(path, reason)`` for files that could not be
    read; the run goes on past them. ``workers > 1`` reads in processes, which
    hand their spectra back through one scratch file per chunk of files (in
    the temporary folder; each removed as it is read, the folder at the end,
    and by the workers if this process is killed).
    """
    import tempfile

    from tqdm.auto import tqdm

    paths = expand_paths(paths_or_glob)
    spectra, refused = [], []
    if workers > 1 and len(paths) > 1:
        size = max(1, min(128, len(paths) // (4 * workers)))
        chunks = [paths[i:i + size] for i in range(0, len(paths), size)]
        results = []
        try:
            scratch = tempfile.TemporaryDirectory(prefix="rgbkit-read-")
        except OSError:  # no writable temporary folder: the workers send their spectra
            scratch = contextlib.nullcontext(None)
        with scratch as tmp, process_pool(workers, scratch=tmp) as pool, \
                tqdm(total=len(paths), desc="reading", disable=not progress) as bar:
            jobs = [(chunk, tmp and os.path.join(tmp, f"{k}.bin")) for k, chunk in enumerate(chunks)]
            for (chunk, out), sent in zip(jobs, pool.map(_read_chunk, jobs)):
                results += _spectra_from_chunk(out, sent)
                bar.update(len(chunk))
    else:
        results = (_read_or_reason(p) for p in tqdm(paths, desc="reading", disable=not progress))
    for path, (spec, reason) in zip(paths, results):
        if spec is None:
            refused.append((str(path), reason))
        else:
            spectra.append(spec)
    return spectra, refused


def write_lamost(spectrum: Spectrum, path, layout: str = "dr7", overwrite: bool = True) -> Path:
    """Write a spectrum as a LAMOST file: ``layout="dr7"`` (5-row image) or
    ``"dr9"`` (empty primary + COADD table). Gzipped when the name ends .gz.

    Used by the simulator so demo data go through the same readers as real data.
    """
    path = Path(path)
    m = spectrum.meta
    hdr = fits.Header()
    hdr["TELESCOP"] = "LAMOST"
    hdr["FILENAME"] = path.name.replace(".gz", "")
    for key, val in (m.header or {}).items():
        if key not in hdr and len(key) <= 8 and key not in ("SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "EXTEND", "PCOUNT", "GCOUNT"):
            try:
                hdr[key] = val
            except (ValueError, TypeError):
                pass
    release = m.data_release or ("DR7" if layout == "dr7" else "DR9")
    hdr["DATA_V"] = f"LAMOST {release}"
    if m.obsid is not None:
        hdr["OBSID"] = int(m.obsid)
    for key, val in (("DESIG", m.designation), ("CLASS", m.objclass), ("SUBCLASS", m.subclass)):
        if val is not None:
            hdr[key] = val
    for key, val in (("RA", m.ra), ("DEC", m.dec), ("Z", m.z), ("Z_ERR", m.z_err)):
        if np.isfinite(val):
            hdr[key] = float(val)
    for b in BANDS:
        v = m.snr.get(b, float("nan"))
        if np.isfinite(v):
            hdr[f"SNR{b.upper()}"] = float(v)
    if m.kic is not None:
        hdr["TCOMMENT"] = f"kplr{m.kic:09d}"
    wave = spectrum.wavelength.astype(np.float32)
    if layout == "dr7":
        data = np.vstack([spectrum.flux, spectrum.ivar, wave, spectrum.and_mask, spectrum.or_mask]).astype(np.float32)
        hdul = fits.HDUList([fits.PrimaryHDU(data, header=hdr)])
    elif layout == "dr9":
        n = len(spectrum)
        cols = [
            fits.Column(name=name, format=f"{n}E", array=arr.astype(np.float32)[None, :])
            for name, arr in (
                ("FLUX", spectrum.flux), ("IVAR", spectrum.ivar), ("WAVELENGTH", wave),
                ("ANDMASK", spectrum.and_mask), ("ORMASK", spectrum.or_mask),
                ("NORMALIZATION", np.ones(n, np.float32)),
            )
        ]
        table = fits.BinTableHDU.from_columns(cols, name="COADD")
        hdul = fits.HDUList([fits.PrimaryHDU(header=hdr), table])
    else:
        raise ValueError(f"layout must be 'dr7' or 'dr9', not {layout!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not overwrite:
        raise FileExistsError(path)

    def write(tmp):
        if path.name.endswith(".gz"):
            with gzip.open(tmp, "wb", compresslevel=5) as fh:
                hdul.writeto(fh)
        else:
            hdul.writeto(tmp, overwrite=True)

    return atomic_write(path, write)  # a killed run never leaves half a file
