"""Bounded, checked access to the bytes of a would-be LAMOST file.

Everything a reader does before it parses a spectrum: open the path without
following it into a FIFO or device, read at most a fixed number of bytes,
inflate gzip as a stream with a cap (a decompression bomb stops at the cap,
not in the allocator), and walk the FITS headers checking every size they
declare against what is really there before anything is allocated.

A LAMOST low-resolution file is about 110 kB inflated (headers of 4 blocks at
most); the caps below leave a wide margin and still keep one read to a few MB.
Refusals raise :class:`BoundedReadError` with a reason meant for people; the
readers turn it into their own error naming the file.
"""
from __future__ import annotations

import errno
import os
import stat
import zlib
from dataclasses import dataclass, field
from math import prod
from pathlib import Path

from .files import FITS_MAGIC

MAX_FILE_BYTES = 4 << 20
"""Largest file (compressed or not) and largest inflated content read: 4 MiB."""
MAX_HEADER_BLOCKS = 64
"""Largest header of one HDU in 2880-byte blocks (real LAMOST headers: 1-4)."""
MAX_HDUS = 16
"""Most HDUs walked in one file (real LAMOST low-resolution files: 1-2)."""

GZIP_MAGIC = b"\x1f\x8b"
BLOCK = 2880
_CHUNK = 1 << 16
_OTHER_COMPRESSION = {b"BZh": "bzip2", b"PK\x03\x04": "zip", b"\x28\xb5\x2f\xfd": "zstandard",
                      b"\xfd7zXZ\x00": "xz"}
_BITPIX = {8, 16, 32, 64, -32, -64}


class BoundedReadError(ValueError):
    """Why the bytes of a file were refused (no file name: the caller adds it)."""


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n < 1e9 else f"{n / 1e9:.1f} GB"


# ----------------------------------------------------------------- the path
def _stat_reason(path: Path, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symbolic link loop (too many levels of links)"
    if exc.errno == errno.EACCES or exc.errno == errno.EPERM:
        return "permission denied"
    if exc.errno == errno.ENOTDIR:
        return "a part of the path is a file, not a folder"
    if exc.errno == errno.ENAMETOOLONG:
        return "file name too long"
    if exc.errno == errno.ENOENT:
        try:
            if stat.S_ISLNK(os.lstat(path).st_mode):
                return f"broken symbolic link (its target {os.readlink(path)} does not exist)"
        except OSError:
            pass
        return "no such file"
    return f"cannot open ({exc.strerror or exc})"


def _kind_reason(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a directory, not a FITS file"
    if stat.S_ISFIFO(mode):
        return "is a named pipe (FIFO), not a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device, not a regular file"
    if stat.S_ISSOCK(mode):
        return "is a socket, not a regular file"
    return "is not a regular file"


def read_file(path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; never blocks on a FIFO."""
    path = Path(path)
    try:
        st = os.stat(path)
    except OSError as exc:
        raise BoundedReadError(_stat_reason(path, exc)) from None
    except ValueError:  # a NUL byte in the name
        raise BoundedReadError("invalid file name (holds a NUL byte)") from None
    reason = _kind_reason(st.st_mode)
    if reason:
        raise BoundedReadError(reason)
    try:  # O_NONBLOCK: a path swapped for a FIFO after the stat still cannot hang us
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise BoundedReadError(_stat_reason(path, exc)) from None
    try:
        st = os.fstat(fd)
        reason = _kind_reason(st.st_mode)
        if reason:
            raise BoundedReadError(reason)
        if st.st_size == 0:
            raise BoundedReadError("empty file (0 bytes)")
        if st.st_size > limit:
            raise BoundedReadError(f"file is {_mb(st.st_size)}, larger than the {_mb(limit)} limit "
                                   "(a LAMOST low-resolution spectrum is about 0.1 MB)")
        parts, n = [], 0
        while n <= limit:
            try:
                b = os.read(fd, min(_CHUNK * 16, limit + 1 - n))
            except OSError as exc:
                raise BoundedReadError(f"read failed ({exc.strerror or exc})") from None
            if not b:
                break
            parts.append(b)
            n += len(b)
    finally:
        os.close(fd)
    if n > limit:  # grew while we read it
        raise BoundedReadError(f"file is larger than the {_mb(limit)} limit")
    if n == 0:
        raise BoundedReadError("empty file (0 bytes)")
    return b"".join(parts)


# ----------------------------------------------------------------- gzip
def inflate(data: bytes, limit: int = MAX_FILE_BYTES) -> bytes:
    """Inflate a gzip stream (all members) to at most ``limit`` bytes, checking CRC and size."""
    out, n, rest = [], 0, data
    while True:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:  # max_length: inflating stops one byte past the limit, whatever the stream says
            chunk = d.decompress(rest, limit + 1 - n)
        except zlib.error as exc:
            msg = str(exc)
            what = "CRC check failed" if "data check" in msg else "wrong length" if "length" in msg else msg
            raise BoundedReadError(f"corrupt gzip stream ({what})") from None
        n += len(chunk)
        out.append(chunk)
        if n > limit:
            raise BoundedReadError(f"gzip stream inflates to more than {_mb(limit)} "
                                   "(a decompression bomb, or not a LAMOST low-resolution file)")
        if not d.eof:
            raise BoundedReadError("truncated gzip stream (ends before its last block)")
        rest = d.unused_data.lstrip(b"\x00")  # zero padding after a member is allowed, as gzip does
        if not rest:
            return b"".join(out)
        if not rest.startswith(GZIP_MAGIC):
            raise BoundedReadError("trailing bytes after the gzip stream are not another gzip member")


def load(path=None, data: bytes | None = None, limit: int = MAX_FILE_BYTES) -> bytes:
    """The (inflated) bytes of a FITS file from ``path`` or ``data``, bounded by ``limit``."""
    raw = read_file(path, limit) if data is None else data
    if data is not None:
        if not raw:
            raise BoundedReadError("empty file (0 bytes)")
        if len(raw) > limit:
            raise BoundedReadError(f"file is {_mb(len(raw))}, larger than the {_mb(limit)} limit "
                                   "(a LAMOST low-resolution spectrum is about 0.1 MB)")
    if raw[:2] == GZIP_MAGIC:
        raw = inflate(raw, limit)
        if not raw:
            raise BoundedReadError("gzip stream inflates to 0 bytes")
        if raw[:2] == GZIP_MAGIC:
            raise BoundedReadError("not a FITS file (gzip inside gzip)")
    for magic, name in _OTHER_COMPRESSION.items():
        if raw.startswith(magic):
            raise BoundedReadError(f"not a FITS file ({name}-compressed; rgbkit reads plain or gzipped FITS)")
    if not raw.startswith(FITS_MAGIC):
        raise BoundedReadError("not a FITS file (no SIMPLE card at the start)")
    return raw


# ----------------------------------------------------------------- FITS walk
@dataclass
class HDUInfo:
    """Where one HDU lies in the buffer and what its header declares."""

    index: int
    kind: str  # "PRIMARY", "IMAGE", "BINTABLE", "TABLE" or another XTENSION
    name: str
    header_start: int
    data_start: int
    data_bytes: int
    cards: dict  # the structural cards, typed
    raw: dict = field(default_factory=dict)  # every "KEY = value" card's text after "= " (first of each key)
    long_strings: bool = False  # CONTINUE cards (long strings) before END

    @property
    def naxes(self) -> list[int]:
        return [self.cards[f"NAXIS{i}"] for i in range(1, self.cards["NAXIS"] + 1)]


def _value(text: str):
    v = text.split("/", 1)[0].strip() if not text.strip().startswith("'") else text.strip()
    if v.startswith("'"):
        end = v.find("'", 1)
        while end > 0 and v[end + 1:end + 2] == "'":
            end = v.find("'", end + 2)
        return v[1:end].rstrip() if end > 0 else None
    if v in ("T", "F"):
        return v == "T"
    try:
        return int(v)
    except ValueError:
        try:
            return float(v.replace("D", "E"))
        except ValueError:
            return None


# Only the cards that decide structure (and the MRS check) are parsed here; the readers parse the rest.
_KEYS = {"SIMPLE", "BITPIX", "NAXIS", "PCOUNT", "GCOUNT", "GROUPS", "XTENSION", "EXTNAME", "TFIELDS",
         "DATA_V", "OBSMODE", "RESOLUTION"}
_TABLE_PREFIXES = ("TFORM", "TTYPE", "TSCAL", "TZERO", "TNULL")


def _end_card(buf: bytes, start: int) -> int:
    """Offset of the END card of the header at ``start`` (-1: none within the allowed blocks)."""
    stop = min(len(buf), start + MAX_HEADER_BLOCKS * BLOCK)
    p = buf.find(b"END", start, stop)
    while p >= 0:
        if (p - start) % 80 == 0 and buf[p + 3:p + 8] == b"     ":
            return p
        p = buf.find(b"END", p + 1, stop)
    return -1


def _header(buf: bytes, start: int, index: int) -> tuple[dict, dict, bool, int]:
    """(structural cards typed, every card's raw value text, CONTINUE seen, data offset).

    One pass for the walk and the readers (which type the raw values they use):
    the END card is found with ``bytes.find`` and the cards split by comprehension,
    as a card-by-card loop was most of a file's read time.
    """
    end = _end_card(buf, start)
    if end < 0:
        if len(buf) - start < MAX_HEADER_BLOCKS * BLOCK:
            raise BoundedReadError(f"truncated FITS: header of HDU {index} ends before its END card")
        raise BoundedReadError(f"header of HDU {index} is longer than {MAX_HEADER_BLOCKS} blocks "
                               f"({MAX_HEADER_BLOCKS * 36} cards) or has no END card")
    data_start = start + ((end - start) // BLOCK + 1) * BLOCK
    if data_start > len(buf):
        raise BoundedReadError(f"truncated FITS: header of HDU {index} ends before its END card")
    try:
        text = buf[start:data_start].decode("ascii")
    except UnicodeDecodeError:
        raise BoundedReadError(f"header of HDU {index} holds non-ASCII bytes (corrupt FITS header)") from None
    cards = [text[i:i + 80] for i in range(0, end - start, 80)]
    # reversed, so that the first card of a key is the one kept, as FITS readers do
    raw = {c[:8].rstrip(): c[10:] for c in reversed(cards) if c[8:10] == "= "}
    long_strings = any(c.startswith("CONTINUE") for c in cards) if "CONTINUE" in text else False
    typed = {k: _value(raw[k]) for k in _KEYS if k in raw}
    # numbered cards only up to NAXIS / TFIELDS, which is all the walk and the readers use
    for count, prefixes in (("NAXIS", ("NAXIS",)), ("TFIELDS", _TABLE_PREFIXES)):
        n = typed.get(count)
        if isinstance(n, int) and not isinstance(n, bool):
            for k in (f"{p}{i}" for i in range(1, min(n, 999) + 1) for p in prefixes):
                if k in raw:
                    typed[k] = _value(raw[k])
    return typed, raw, long_strings, data_start


def _int_card(cards: dict, key: str, index: int, lo: int = 0, hi: int | None = None, default=None) -> int:
    v = cards.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < lo or (hi is not None and v > hi):
        raise BoundedReadError(f"HDU {index} has an invalid {key} card ({cards.get(key)!r})")
    return v


def walk(buf: bytes, limit: int = MAX_FILE_BYTES) -> list[HDUInfo]:
    """Check every HDU's header-declared data size against the limit and the buffer."""
    hdus, pos = [], 0
    while pos < len(buf):
        i = len(hdus)
        if i == MAX_HDUS:
            raise BoundedReadError(f"more than {MAX_HDUS} HDUs (a LAMOST low-resolution file has 1 or 2)")
        if i and not buf[pos:pos + 8].startswith(b"XTENSION"):
            if buf[pos:].strip(b"\x00 ") == b"" or len(buf) - pos < BLOCK:
                break  # padding or a short tail after the last HDU, which astropy ignores too
            raise BoundedReadError(f"bytes after HDU {i - 1} are not a FITS extension")
        cards, raw, long_strings, data_start = _header(buf, pos, i)
        if i == 0 and cards.get("SIMPLE") is not True:
            raise BoundedReadError("SIMPLE card is not T (not a standard FITS file)")
        bitpix = cards.get("BITPIX")
        if bitpix not in _BITPIX or isinstance(bitpix, bool):
            raise BoundedReadError(f"HDU {i} has an invalid BITPIX card ({bitpix!r})")
        naxis = _int_card(cards, "NAXIS", i, 0, 999)
        axes = [_int_card(cards, f"NAXIS{k}", i) for k in range(1, naxis + 1)]
        pcount = _int_card(cards, "PCOUNT", i, default=0)
        gcount = _int_card(cards, "GCOUNT", i, default=1)
        if i == 0 and (pcount, gcount) != (0, 1) and not cards.get("GROUPS"):
            pcount, gcount = 0, 1
        if naxis and cards.get("GROUPS") and axes[0] == 0:
            axes = axes[1:]
        size = abs(bitpix) // 8 * gcount * (pcount + prod(axes)) if naxis else 0
        kind = "PRIMARY" if i == 0 else str(cards.get("XTENSION") or "").strip().upper()
        if size > limit:
            dims = " x ".join(str(a) for a in axes)
            raise BoundedReadError(f"HDU {i} declares {_mb(size)} of data ({dims}, BITPIX {bitpix}"
                                   f"{f', heap {pcount}' if pcount else ''}), more than the {_mb(limit)} limit")
        if data_start + size > len(buf):
            raise BoundedReadError(f"truncated FITS: HDU {i} declares {size} bytes of data, "
                                   f"{max(0, len(buf) - data_start)} are there")
        name = str(cards.get("EXTNAME") or ("PRIMARY" if i == 0 else "")).strip().upper()
        hdus.append(HDUInfo(i, kind, name, pos, data_start, size, cards, raw, long_strings))
        pos = data_start + -(-size // BLOCK) * BLOCK
    return hdus


_TFORM_BYTES = {"L": 1, "X": None, "B": 1, "I": 2, "J": 4, "K": 8, "A": 1, "E": 4, "D": 8, "C": 8, "M": 16,
                "P": 8, "Q": 16}


def table_columns(hdu: HDUInfo) -> dict[str, tuple[int, int, str, int]]:
    """Each column of a binary table by upper-case TTYPE: (number k, byte offset in a row, TFORM code, repeat).

    Refuses unknown TFORM codes and column widths that do not add up to NAXIS1.
    """
    c, i = hdu.cards, hdu.index
    nfields = _int_card(c, "TFIELDS", i, 0, 999)
    width, cols = 0, {}
    for k in range(1, nfields + 1):
        form = str(c.get(f"TFORM{k}") or "").strip().upper()
        j = 0
        while j < len(form) and form[j].isdigit():
            j += 1
        repeat = int(form[:j]) if j else 1
        code = form[j:j + 1]
        if code not in _TFORM_BYTES:
            raise BoundedReadError(f"the {hdu.name} table has an invalid TFORM{k} ({form!r})")
        cols[str(c.get(f"TTYPE{k}") or "").strip().upper()] = (k, width, code, repeat)
        width += (repeat + 7) // 8 if code == "X" else repeat * _TFORM_BYTES[code]
    if width != c["NAXIS1"]:
        raise BoundedReadError(f"the {hdu.name} table's column widths add up to {width} bytes, "
                               f"but NAXIS1 says {c['NAXIS1']} (corrupt table header)")
    return cols


def check_bintable(hdu: HDUInfo, need: tuple[str, ...]) -> None:
    """A binary table whose column widths add up to its row width, fixed-size numeric ``need`` columns."""
    c = hdu.cards
    if hdu.kind != "BINTABLE":
        raise BoundedReadError(f"the {hdu.name} extension is of type {hdu.kind or 'unknown'}, "
                               "not a binary table (BINTABLE)")
    if c.get("NAXIS") != 2:
        raise BoundedReadError(f"the {hdu.name} table has NAXIS {c.get('NAXIS')!r}, expected 2")
    names = table_columns(hdu)
    for col in need:
        if col not in names:
            continue  # the reader names missing columns itself
        code = names[col][2]
        if code in "PQ":
            raise BoundedReadError(f"the {hdu.name} column {col} is a variable-length array "
                                   "(LAMOST stores fixed-length arrays)")
        if code not in "BIJKED":
            raise BoundedReadError(f"the {hdu.name} column {col} is not numeric (TFORM {code})")
