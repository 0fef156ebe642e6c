"""A corpus of bad (and a few good) inputs built from the real LAMOST files at test time.

``build(folder, shared_data)`` writes one file (or link, pipe, device, ...) per
kind into ``folder`` and returns ``[(Case, path), ...]``. Each case says what
the reader must do: ``expect=None`` (read it) or a substring of the refusal's
reason. Bombs are small on disk and in CI time but declare or inflate to GBs,
so a test that reads them proves the bound. Used by the reader tests and
meant for the catalog and command-line tests too (a folder of these must
give one row per good file and one refusal per bad one).
"""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import socket
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from astropy.io import fits

GB = 1 << 30


@dataclass
class Case:
    kind: str
    expect: str | None  # None: must be read; else a substring of the refusal reason
    make: Callable[["Sources", Path], None]  # writes the input at the given path
    suffix: str = ".fits"
    bomb: bool = False  # declares or inflates to GBs: the memory bound is checked on these
    regular: bool = True  # a plain file (False: link, pipe, device, folder, missing)
    name: str | None = None  # a path relative to the corpus folder instead of the numbered one


class Sources:
    """Bytes of a few real files (one per layout) and helpers to bend them."""

    def __init__(self, shared_data: Path):
        lam = Path(shared_data) / "lamost"
        self.dr1 = lam / "dr1" / "spec-55862-B6212_sp06-003.fits"
        self.dr5 = lam / "dr5" / "spec-55959-B5595902_sp08-132.fits"
        self.dr7gz = lam / "dr7" / "spec-55859-F5902_sp01-001_dr7.fits.gz"
        self.dr9gz = lam / "dr9" / "spec-55859-F5902_sp01-001.fits.gz"
        self.dr13gz = sorted((lam / "dr13").glob("*.fits.gz"))[0]
        self.dr5_bytes = self.dr5.read_bytes()
        self.dr1_bytes = self.dr1.read_bytes()
        self.dr9_bytes = gzip.decompress(self.dr9gz.read_bytes())

    # ---- image files (DR1-7)
    def image(self, which: str = "dr5"):
        with fits.open(io.BytesIO(self.dr5_bytes if which == "dr5" else self.dr1_bytes)) as h:
            return np.array(h[0].data, dtype=np.float32), h[0].header.copy()

    def image_bytes(self, edit: Callable | None = None, which: str = "dr5", dtype=np.float32) -> bytes:
        data, hdr = self.image(which)
        if edit is not None:
            out = edit(data, hdr)
            if out is not None:
                data, hdr = out
        for k in ("BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "NAXIS3"):
            hdr.remove(k, ignore_missing=True)
        bio = io.BytesIO()
        with fits.conf.set_temp("enable_record_valued_keyword_cards", False):
            fits.PrimaryHDU(np.asarray(data, dtype=dtype), header=hdr).writeto(bio)
        return bio.getvalue()

    # ---- table files (DR8+)
    def table_columns(self) -> tuple[dict, fits.Header, fits.Header]:
        with fits.open(io.BytesIO(self.dr9_bytes)) as h:
            tab = h["COADD"]
            cols = {c.name: np.array(tab.data[c.name]) for c in tab.columns}
            return cols, h[0].header.copy(), tab.header.copy()

    def table_bytes(self, edit: Callable | None = None, forms: dict | None = None, name: str = "COADD",
                    kind: str = "bin") -> bytes:
        cols, phdr, _ = self.table_columns()
        if edit is not None:
            cols = edit(cols) or cols
        forms = forms or {}
        if kind == "ascii":
            fcols = [fits.Column(name=k, format="E15.7", array=np.asarray(v).ravel()[:1]) for k, v in cols.items()]
            ext = fits.TableHDU.from_columns(fcols, name=name)
        else:
            fcols = []
            for k, v in cols.items():
                v = np.asarray(v)
                fmt = forms.get(k, f"{v.shape[-1]}{'E' if v.dtype.kind == 'f' else 'J'}")
                fcols.append(fits.Column(name=k, format=fmt, array=v))
            ext = fits.BinTableHDU.from_columns(fcols, name=name)
        for k in ("NAXIS1", "NAXIS2"):
            phdr.remove(k, ignore_missing=True)
        bio = io.BytesIO()
        fits.HDUList([fits.PrimaryHDU(header=phdr), ext]).writeto(bio)
        return bio.getvalue()


# ------------------------------------------------------------------ byte surgery
def _cards_start(buf: bytes, hdu: int) -> int:
    """Offset of the header of HDU ``hdu`` in a valid FITS buffer."""
    from rgbkit.io import bounded

    return bounded.walk(buf)[hdu].header_start


def set_card(buf: bytes, key: str, value: str, hdu: int = 0) -> bytes:
    """Replace (or insert before END) the card ``key`` with a raw value text, keeping block sizes."""
    start = _cards_start(buf, hdu)
    card = f"{key:<8}= {value:>20}".ljust(80)[:80].encode("ascii", "replace")
    pos = start
    while True:
        k = buf[pos:pos + 8].rstrip()
        if k == key.encode():
            return buf[:pos] + card + buf[pos + 80:]
        if k == b"END":
            if (pos - start) // 80 % 36 == 35:
                raise ValueError("no room for a card before END")
            return buf[:pos] + card + b"END".ljust(80) + buf[pos + 160:]
        pos += 80


def drop_card(buf: bytes, key: str, hdu: int = 0) -> bytes:
    start, pos = _cards_start(buf, hdu), _cards_start(buf, hdu)
    while buf[pos:pos + 3] != b"END" or buf[pos + 3:pos + 8] != b"     ":
        if buf[pos:pos + 8].rstrip() == key.encode():
            end = buf.index(b"END     ", pos)
            block_end = start + (-(-(end + 80 - start) // 2880)) * 2880
            body = buf[pos + 80:block_end] + b" " * 80
            return buf[:pos] + body + buf[block_end:]
        pos += 80
    raise KeyError(key)


def gz(data: bytes, level: int = 6) -> bytes:
    return gzip.compress(data, compresslevel=level, mtime=0)


def gzip_bomb(head: bytes, total: int) -> bytes:
    """A valid gzip stream of ``head`` followed by zeros up to ``total`` bytes, built in O(total / 1 MB) steps.

    Blocks after a full flush cannot refer back, so one compressed MB of zeros repeats.
    """
    mb = 1 << 20
    zeros = b"\x00" * mb
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = c.compress(head) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    n = (total - len(head)) // mb
    last = c.flush(zlib.Z_FINISH)
    crc = zlib.crc32(head)
    for _ in range(n):
        crc = zlib.crc32(zeros, crc)
    size = len(head) + n * mb
    return (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + first + block * n + last
            + struct.pack("<II", crc & 0xFFFFFFFF, size & 0xFFFFFFFF))


def fits_header(**cards) -> bytes:
    """One 2880-byte primary header with the given cards (values as raw text)."""
    lines = [f"{'SIMPLE':<8}= {'T':>20}"]
    for k, v in cards.items():
        lines.append(f"{k:<8}= {v:>20}")
    lines.append("END")
    text = "".join(line.ljust(80) for line in lines)
    return text.ljust(2880).encode("ascii")


# ------------------------------------------------------------------ the cases
def _w(data: bytes | Callable[["Sources"], bytes]):
    def make(src: Sources, path: Path):
        path.write_bytes(data(src) if callable(data) else data)
    return make


def _edit_rows(fn):
    """An image case: ``fn(data, hdr)`` edits the DR5 image in place."""
    return _w(lambda s: s.image_bytes(fn))


def _dr1(fn):
    return _w(lambda s: s.image_bytes(fn, which="dr1"))


def _table(edit=None, **kw):
    return _w(lambda s: s.table_bytes(edit, **kw))


def _symlink(target):
    def make(src, path):
        os.symlink(target(src, path) if callable(target) else target, path)
    return make


def _loop(src, path):
    os.symlink(path.with_name(path.name + ".b"), path)
    os.symlink(path, path.with_name(path.name + ".b"))


def _fifo(src, path):
    os.mkfifo(path)


def _socket(src, path):
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.close()


def _dir(src, path):
    path.mkdir()
    (path / "inner.fits").write_bytes(src.dr5_bytes)


def _under_file(src, path):
    path.parent.write_bytes(b"x")  # path is <folder>/plainfile/x.fits


def _sparse(size):
    def make(src, path):
        with open(path, "wb") as fh:
            fh.write(src.dr5_bytes[:2880])
            fh.truncate(size)
    return make


def _zip(src, path):
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("spec.fits", src.dr5_bytes)
    path.write_bytes(bio.getvalue())


def _many_hdus(src):
    ext = fits.ImageHDU(np.zeros(3, np.float32))
    bio = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(header=fits.Header())] + [ext.copy() for _ in range(20)]).writeto(bio)
    return bio.getvalue()


def _long_header(src):
    data, hdr = src.image()
    for i in range(3000):
        hdr.add_comment(f"padding card {i}")
    bio = io.BytesIO()
    fits.PrimaryHDU(data, header=hdr).writeto(bio)
    return bio.getvalue()


def _no_end(src):
    head = src.dr5_bytes[:2880 * 2].replace(b"END" + b" " * 77, b"COMMENT".ljust(80))
    return head + b"COMMENT".ljust(80) * 36 * 80


def _with_extension(src):
    data, hdr = src.image()
    bio = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(data, header=hdr), fits.ImageHDU(np.zeros((2, 2), np.float32), name="EXTRA")]).writeto(bio)
    return bio.getvalue()


def _continue_card(src):
    def edit(data, hdr):
        hdr["LONGSTR"] = "a long string value " * 8
    return src.image_bytes(edit)


def _set(key, value, hdu=0, base="dr5"):
    def build(src):
        buf = {"dr5": src.dr5_bytes, "dr1": src.dr1_bytes, "dr9": src.dr9_bytes}[base]
        return set_card(buf, key, value, hdu)
    return _w(build)


def _flip(buf: bytes, offset: int) -> bytes:
    b = bytearray(buf)
    b[offset] ^= 0xFF
    return bytes(b)


def _wave(fn):
    def edit(d, h):
        d[2] = fn(d[2].astype(np.float64))
    return _edit_rows(edit)


def _cols(fn):
    def edit(cols):
        fn(cols)
        return cols
    return edit


def _nan_at_good(d, h):
    d[0, 1000:1010] = np.nan
    d[1, 1000:1010] = 1.0


def _inf_at_bad(d, h):
    d[0, :5] = np.inf
    d[1, :5] = 0


def _real(attr):
    return _w(lambda s: getattr(s, attr).read_bytes())


CASES: list[Case] = [
    # ---- accepted: real files and harmless variants
    Case("real DR1 image", None, _real("dr1")),
    Case("real DR5 image", None, _real("dr5")),
    Case("real DR7 image, gzipped", None, _real("dr7gz"), ".fits.gz"),
    Case("real DR9 table, gzipped", None, _real("dr9gz"), ".fits.gz"),
    Case("real DR13 table, gzipped", None, _real("dr13gz"), ".fits.gz"),
    Case("DR9 table, uncompressed", None, _w(lambda s: s.dr9_bytes)),
    Case("symbolic link to a real file", None, _symlink(lambda s, p: s.dr5), regular=False),
    Case("image as float64", None, _w(lambda s: s.image_bytes(dtype=np.float64))),
    Case("extra image extension after the spectrum", None, _w(_with_extension)),
    Case("long-string CONTINUE card", None, _w(_continue_card)),
    Case("RA card holds text", None, _set("RA", "'not a number'")),
    Case("OBSID card holds text", None, _set("OBSID", "'abc'")),
    Case("OBSID beyond 64 bits", None, _set("OBSID", "123456789012345678901234567890")),
    Case("short garbage after the last block", None, _w(lambda s: s.dr5_bytes + b"garbage")),
    Case("gzip padded with zeros", None, _w(lambda s: gz(s.dr5_bytes) + b"\x00" * 100), ".fits.gz"),
    Case("gzip split into two members", None,
         _w(lambda s: gz(s.dr5_bytes[:5000]) + gz(s.dr5_bytes[5000:])), ".fits.gz"),
    Case("flux inf only where ivar is 0", None, _edit_rows(_inf_at_bad)),
    Case("COADD table with two rows", None, _table(_cols(lambda c: c.update({k: np.repeat(v, 2, 0) for k, v in c.items()})))),
    # ---- the path itself
    Case("missing file", "no such file", lambda s, p: None, regular=False),
    Case("directory named .fits", "is a directory", _dir, regular=False),
    Case("empty file", "empty file", _w(b"")),
    Case("symbolic link loop", "symbolic link loop", _loop, regular=False),
    Case("broken symbolic link", "broken symbolic link", _symlink("/nonexistent/rgbkit/x.fits"), regular=False),
    Case("named pipe (FIFO)", "named pipe", _fifo, regular=False),
    Case("character device", "is a device", _symlink("/dev/zero"), regular=False),
    Case("unix socket", "is a socket", _socket, regular=False),
    Case("a file used as a folder", "is a file, not a folder", _under_file, regular=False,
         name="plainfile/x.fits"),
    Case("file name too long", "file name too long", lambda s, p: None, regular=False,
         name="x" * 300 + ".fits"),
    # ---- not FITS at all
    Case("text file", "not a FITS file", _w(b"this is not a FITS file\n" * 10)),
    Case("HTML error page", "not a FITS file", _w(b"<html><body>404 not found</body></html>")),
    Case("random bytes", "not a FITS file", _w(bytes(np.random.default_rng(0).integers(0, 256, 5000, np.uint8)))),
    Case("bzip2-compressed FITS", "bzip2", _w(lambda s: bz2.compress(s.dr5_bytes)), ".fits.bz2"),
    Case("zip archive", "zip", _zip, ".zip"),
    Case("xz-compressed FITS", "xz", _w(lambda s: lzma.compress(s.dr5_bytes)), ".fits.xz"),
    Case("gzip inside gzip", "gzip inside gzip", _w(lambda s: gz(gz(s.dr5_bytes))), ".fits.gz"),
    Case("gzip of a text file", "not a FITS file", _w(gz(b"hello\n" * 100)), ".fits.gz"),
    Case("gzip of nothing", "inflates to 0 bytes", _w(gz(b"")), ".fits.gz"),
    # ---- too big, or declares too much
    Case("50 GB sparse file on disk", "larger than the", _sparse(50 * GB), bomb=True),
    Case("plain FITS of 6 MB", "larger than the", _w(lambda s: s.dr5_bytes + b"\x00" * (6 << 20))),
    Case("gzip bomb: 2 GB image of zeros", "inflates to more than",
         _w(lambda s: gzip_bomb(fits_header(BITPIX="-32", NAXIS="2", NAXIS1="107374182", NAXIS2="5"), 2 * GB)),
         ".fits.gz", bomb=True),
    Case("gzip bomb in a second member", "inflates to more than",
         _w(lambda s: gz(s.dr5_bytes) + gzip_bomb(b"", GB)), ".fits.gz", bomb=True),
    Case("header declares a 50 GB image", "declares", _w(fits_header(BITPIX="-32", NAXIS="2",
                                                                      NAXIS1="2684354560", NAXIS2="5")), bomb=True),
    Case("gzipped header declaring 50 GB", "declares",
         _w(gz(fits_header(BITPIX="-64", NAXIS="2", NAXIS1="1342177280", NAXIS2="5"))), ".fits.gz", bomb=True),
    Case("header declares 10^18 pixels in 3 axes", "declares",
         _w(fits_header(BITPIX="-64", NAXIS="3", NAXIS1="1000000", NAXIS2="1000000", NAXIS3="1000000")), bomb=True),
    Case("COADD declares 10^9 rows", "declares", _w(lambda s: set_card(s.dr9_bytes, "NAXIS2", "1000000000", 1)),
         bomb=True),
    Case("COADD declares a 50 GB heap", "declares", _w(lambda s: set_card(s.dr9_bytes, "PCOUNT", "53687091200", 1)),
         bomb=True),
    Case("header longer than 64 blocks", "longer than", _w(_long_header)),
    Case("more than 16 HDUs", "more than 16 HDUs", _w(_many_hdus)),
    # ---- broken gzip
    Case("gzip cut in half", "truncated gzip", _w(lambda s: s.dr7gz.read_bytes()[:len(s.dr7gz.read_bytes()) // 2]),
         ".fits.gz"),
    Case("gzip header only", "truncated gzip", _w(lambda s: s.dr7gz.read_bytes()[:10]), ".fits.gz"),
    Case("gzip with a wrong CRC", "CRC check failed", _w(lambda s: _flip(gz(s.dr5_bytes), -6)), ".fits.gz"),
    Case("gzip with a wrong length", "wrong length", _w(lambda s: _flip(gz(s.dr5_bytes), -2)), ".fits.gz"),
    Case("gzip with a corrupted deflate byte", "corrupt gzip",
         _w(lambda s: _flip(gz(s.dr5_bytes), len(gz(s.dr5_bytes)) // 2)), ".fits.gz"),
    Case("gzip with a bad header method", "corrupt gzip", _w(lambda s: _flip(gz(s.dr5_bytes), 2)), ".fits.gz"),
    Case("gzip followed by garbage", "trailing bytes", _w(lambda s: gz(s.dr5_bytes) + b"junk!" * 10), ".fits.gz"),
    Case("gzip member truncated inside a multi-member file", "truncated gzip",
         _w(lambda s: gz(s.dr5_bytes) + gz(s.dr5_bytes)[:300]), ".fits.gz"),
    # ---- broken FITS structure
    Case("FITS cut inside the header", "truncated FITS", _w(lambda s: s.dr5_bytes[:2000])),
    Case("FITS cut inside the data", "truncated FITS", _w(lambda s: s.dr5_bytes[:20000])),
    Case("gzipped FITS cut inside the data", "truncated FITS", _w(lambda s: gz(s.dr5_bytes[:20000])), ".fits.gz"),
    Case("no END card", "no END card", _w(_no_end)),
    Case("NAXIS1 negative", "invalid NAXIS1", _set("NAXIS1", "-3909")),
    Case("NAXIS1 not a number", "invalid NAXIS1", _set("NAXIS1", "'abc'")),
    Case("NAXIS1 fractional", "invalid NAXIS1", _set("NAXIS1", "3909.5")),
    Case("NAXIS 1000", "invalid NAXIS", _set("NAXIS", "1000")),
    Case("BITPIX 7", "invalid BITPIX", _set("BITPIX", "7")),
    Case("BITPIX missing", "invalid BITPIX", _w(lambda s: drop_card(s.dr5_bytes, "BITPIX"))),
    Case("SIMPLE = F", "SIMPLE card is not T", _set("SIMPLE", "F")),
    Case("non-ASCII byte in the header", "non-ASCII", _w(lambda s: s.dr5_bytes[:500] + b"\xe9" + s.dr5_bytes[501:])),
    Case("a block of junk after the primary HDU", "not a FITS extension",
         _w(lambda s: s.dr5_bytes + b"J" * 2880)),
    # ---- image content (DR1-7 layouts)
    Case("image of 3 rows", "3 rows", _edit_rows(lambda d, h: (d[:3], h))),
    Case("image of 7 rows", "7 rows", _edit_rows(lambda d, h: (np.vstack([d, d[:2]]), h))),
    Case("one-dimensional image", "expected 5 rows", _edit_rows(lambda d, h: (d[0], h))),
    Case("three-dimensional image", "expected 5 rows", _edit_rows(lambda d, h: (d[None], h))),
    Case("image of 10 pixels", "10 pixels", _edit_rows(lambda d, h: (d[:, 1000:1010], h))),
    Case("image of 20000 pixels", "20000 pixels", _edit_rows(lambda d, h: (np.repeat(d, 6, 1)[:, :20000], h))),
    Case("wavelength reversed", "strictly increasing", _wave(lambda w: w[::-1])),
    Case("wavelength with a NaN", "not finite", _wave(lambda w: np.where(np.arange(w.size) == 7, np.nan, w))),
    Case("wavelength in nm", "outside", _wave(lambda w: w / 10)),
    Case("wavelength as log10", "outside", _wave(np.log10)),
    Case("wavelength spans 4 A", "spans only", _wave(lambda w: np.linspace(5000, 5004, w.size))),
    Case("wavelength spans 5000-6000 A", "spans only", _wave(lambda w: np.linspace(5000, 6000, w.size))),
    Case("wavelength with one big jump", "uneven",
         _wave(lambda w: np.concatenate([np.linspace(3700, 3800, 3000), np.linspace(8000, 9000, w.size - 3000)]))),
    Case("flux all zero", "all zero", _edit_rows(lambda d, h: d.__setitem__(0, 0))),
    Case("flux all NaN", "all NaN", _edit_rows(lambda d, h: d.__setitem__(0, np.nan))),
    Case("flux NaN at good pixels", "positive inverse variance", _edit_rows(_nan_at_good)),
    Case("negative inverse variance", "negative inverse variance",
         _edit_rows(lambda d, h: d.__setitem__((1, 10), -1))),
    Case("inverse variance all zero", "positive inverse variance", _edit_rows(lambda d, h: d.__setitem__(1, 0))),
    Case("inverse variance NaN", "not finite", _edit_rows(lambda d, h: d.__setitem__((1, 50), np.nan))),
    Case("and-mask holds NaN", "and-mask", _edit_rows(lambda d, h: d.__setitem__((3, 5), np.nan))),
    Case("or-mask holds 1e20", "or-mask", _edit_rows(lambda d, h: d.__setitem__((4, 5), 1e20))),
    Case("and-mask holds 0.5", "and-mask", _edit_rows(lambda d, h: d.__setitem__((3, 5), 0.5))),
    Case("DR1 without COEFF0", "COEFF0", _w(lambda s: drop_card(s.dr1_bytes, "COEFF0"))),
    Case("DR1 COEFF0 not a number", "not numbers", _set("COEFF0", "'abc'", base="dr1")),
    Case("DR1 COEFF1 = 0", "strictly increasing", _set("COEFF1", "0.0", base="dr1")),
    Case("DR1 COEFF1 = 1e-9 (span of 0.03 A)", "spans only", _set("COEFF1", "1E-9", base="dr1")),
    Case("DR1 COEFF0 = 5 (100,000 A)", "outside", _set("COEFF0", "5.0", base="dr1")),
    Case("DR1 COEFF0 = 400 (overflow)", "not finite", _set("COEFF0", "400.0", base="dr1")),
    # ---- table content (DR8+ layout)
    Case("no COADD table", "no COADD table", _w(lambda s: fits_header(BITPIX="8", NAXIS="0"))),
    Case("COADD is an image", "not a binary table",
         _w(lambda s: _hdul_bytes([fits.PrimaryHDU(), fits.ImageHDU(np.zeros((5, 3900), np.float32), name="COADD")]))),
    Case("COADD is an ASCII table", "not a binary table", _table(kind="ascii")),
    Case("COADD lacks IVAR", "lacks column(s) IVAR", _table(_cols(lambda c: c.pop("IVAR")))),
    Case("COADD with no rows", "no rows", _table(_cols(lambda c: c.update({k: v[:0] for k, v in c.items()})))),
    Case("COADD TFORM wider than the row", "add up to", _w(lambda s: set_card(s.dr9_bytes, "TFORM1", "'999999999E'", 1))),
    Case("COADD TFORM unknown code", "invalid TFORM", _w(lambda s: set_card(s.dr9_bytes, "TFORM1", "'3909Z'", 1))),
    Case("COADD FLUX as variable-length array", "variable-length", _table(forms={"FLUX": "PE()"})),
    Case("COADD FLUX as text", "not numeric", _table(_cols(lambda c: c.update(FLUX=np.array(["abc"]))), forms={"FLUX": "3A"})),
    Case("COADD columns of different lengths", "array lengths differ",
         _table(_cols(lambda c: c.update(WAVELENGTH=c["WAVELENGTH"][:, :3000])))),
    Case("COADD wavelength reversed", "strictly increasing",
         _table(_cols(lambda c: c.update(WAVELENGTH=c["WAVELENGTH"][:, ::-1])))),
    Case("COADD wavelength in nm", "outside", _table(_cols(lambda c: c.update(WAVELENGTH=c["WAVELENGTH"] / 10)))),
    Case("COADD of 50 pixels", "50 pixels", _table(_cols(lambda c: c.update({k: v[:, :50] for k, v in c.items()})))),
    Case("medium-resolution file", "medium-resolution", _table(name="COADD_B")),
]


def _hdul_bytes(hdus) -> bytes:
    bio = io.BytesIO()
    fits.HDUList(hdus).writeto(bio)
    return bio.getvalue()


def _slug(kind: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in kind.lower()).strip("_")[:60]


def build(folder: Path, shared_data: Path, bombs: bool = True) -> list[tuple[Case, Path]]:
    """Write every case into ``folder``; returns ``(case, path)`` pairs in :data:`CASES` order."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    src = Sources(shared_data)
    out = []
    for i, case in enumerate(CASES):
        if case.bomb and not bombs:
            continue
        path = folder / (case.name or f"{i:03d}_{_slug(case.kind)}{case.suffix}")
        case.make(src, path)
        out.append((case, path))
    return out
