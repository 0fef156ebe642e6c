"""Download LAMOST spectra by obsid into a local cache.

The archive address is a URL template with ``{obsid}`` (and optionally
``{token}``) in it. For the LAMOST archive use the release you want, e.g.::

    https://www.lamost.org/dr9/v2.0/spectrum/fits/{obsid}
    https://www.lamost.org/dr11/v2.0/spectrum/fits/{obsid}?token={token}

(the ``/drN/vX/spectrum/fits/<obsid>`` endpoint returns the gzipped FITS file
of one low-resolution spectrum; a token is only needed for proprietary
releases). Pass it as ``url_template=`` or set the environment variable
``RGBKIT_FETCH_URL``; ``RGBKIT_FETCH_TOKEN`` fills ``{token}``.

Obsids are digits only (anything else is refused before a request is made)
and are escaped into the URL. Every download streams into
``<obsid>.<pid>.<thread>.part`` with a size cap and an overall deadline, and
is moved into place with ``os.replace`` only after its size (Content-Length),
its sha256 when given, and a full read with :func:`rgbkit.io.lamost.read_lamost`
have passed, so the cache never holds a file that was not checked. Partial
files are removed on any failure; those of a killed run are removed by the
next one. Failures that can pass (HTTP 5xx and 429, refused or cut connections,
short or truncated bodies, time-outs) are retried with exponential backoff; a
404 or another 4xx, a file that is too large or not a spectrum, is not.
"""
from __future__ import annotations

import http.client
import os
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..config import fetch_token, fetch_url, spectra_cache_dir
from ..errors import RgbkitError
from . import bounded
from .files import FITS_MAGIC, sha256_file

__all__ = ["read_obsids", "FetchError", "FetchResult", "fetch", "fetch_one", "cache_dir", "cached_path",
           "check_obsid", "clean_stale_parts", "LAMOST_URL_TEMPLATE"]

LAMOST_URL_TEMPLATE = "https://www.lamost.org/dr9/v2.0/spectrum/fits/{obsid}"
"""The template used when neither ``url_template`` nor ``RGBKIT_FETCH_URL`` is set."""
RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
GZIP_MAGIC = b"\x1f\x8b"
OBSID_PATTERN = re.compile(r"[0-9]{1,20}")
"""LAMOST obsids are integers; nothing else may reach a file name or a URL."""
MAX_REDIRECTS = 3
STALE_PART_SECONDS = 24 * 3600


class FetchError(RgbkitError, RuntimeError):
    """A spectrum that could not be downloaded; names the obsid, URL and reason."""

    def __init__(self, obsid, url: str, reason: str, retryable: bool = False):
        self.obsid, self.url, self.reason, self.retryable = obsid, url, reason, retryable
        super().__init__(f"obsid {obsid} ({url}): {reason}")


@dataclass
class FetchResult:
    obsid: str
    path: Path | None
    status: str  # "cached", "downloaded" or "failed"
    attempts: int = 0
    nbytes: int = 0
    error: str = ""


def cache_dir(folder=None) -> Path:
    """``folder``, else ``$RGBKIT_CACHE/spectra``, else ``~/.cache/rgbkit/spectra``."""
    return Path(folder) if folder is not None else spectra_cache_dir()


def check_obsid(obsid) -> str:
    """``obsid`` as a string of digits; :class:`FetchError` for anything else (``../x``, ``1/2``, ``1?a``, ...)."""
    text = str(obsid).strip()
    if not OBSID_PATTERN.fullmatch(text):
        raise FetchError(obsid, "-", f"invalid obsid {str(obsid)[:40]!r}: a LAMOST obsid is 1-20 digits")
    return text


def _names(obsid) -> tuple[str, str]:
    return f"{obsid}.fits.gz", f"{obsid}.fits"


def cached_path(obsid, folder=None) -> Path | None:
    """The cached file of ``obsid`` if there is one."""
    obsid = check_obsid(obsid)
    d = cache_dir(folder)
    for name in _names(obsid):
        if (d / name).is_file():
            return d / name
    return None


def _url(template: str, obsid, token: str | None) -> str:
    if "{obsid}" not in template:
        raise ValueError(f"URL template {template!r} has no '{{obsid}}' placeholder")
    if urllib.parse.urlsplit(template).scheme not in ("http", "https"):
        raise ValueError(f"URL template {template!r} is not an http(s) address")
    q = urllib.parse.quote
    return template.format(obsid=q(str(obsid), safe=""), token=q(token or "", safe=""))


class _Redirects(urllib.request.HTTPRedirectHandler):
    """At most MAX_REDIRECTS hops, and only to http(s)."""

    max_redirections = MAX_REDIRECTS
    max_repeats = 2

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if urllib.parse.urlsplit(newurl).scheme not in ("http", "https"):
            raise urllib.error.HTTPError(newurl, code, f"redirect to a non-http address {newurl[:80]}", headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_Redirects)


def clean_stale_parts(folder) -> list[Path]:
    """Remove ``*.part`` files left by killed downloads (their process is gone, or they are a day old)."""
    removed = []
    for p in Path(folder).glob("*.part"):
        fields = p.name.split(".")
        try:
            pid = int(fields[-3])
            alive = True
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                alive = False
            except PermissionError:
                pass
            if alive and time.time() - p.stat().st_mtime < STALE_PART_SECONDS:
                continue
            p.unlink()
            removed.append(p)
        except (ValueError, IndexError, OSError):
            continue
    return removed


def _download(url: str, obsid, part: Path, timeout: float, deadline: float, max_bytes: int) -> int:
    """Stream ``url`` into ``part`` (at most ``max_bytes``, done by ``deadline``); return the byte count."""
    req = urllib.request.Request(url, headers={"User-Agent": "rgbkit-fetch/1"})

    def left() -> float:
        rest = deadline - time.monotonic()
        if rest <= 0:
            raise FetchError(obsid, url, "deadline passed before the download finished (server too slow)")
        return rest

    try:
        with _OPENER.open(req, timeout=min(timeout, left())) as resp:
            expected = resp.headers.get("Content-Length")
            if expected is not None and expected.strip().isdigit() and int(expected) > max_bytes:
                raise FetchError(obsid, url, f"server announces {int(expected)} bytes, more than the "
                                             f"{max_bytes} byte limit (not a LAMOST low-resolution spectrum)")
            n = 0
            with open(part, "wb") as fh:
                while True:
                    # read1: what has arrived, so a slow drip is stopped at the deadline (overshoot < timeout)
                    block = resp.read1(1 << 16)
                    if not block:
                        break
                    n += len(block)
                    if n > max_bytes:
                        raise FetchError(obsid, url, f"body is larger than the {max_bytes} byte limit "
                                                     "(not a LAMOST low-resolution spectrum)")
                    fh.write(block)
                    left()
                fh.flush()
                os.fsync(fh.fileno())
    except FetchError:
        raise
    except urllib.error.HTTPError as exc:
        raise FetchError(obsid, url, f"HTTP {exc.code} {exc.reason}", exc.code in RETRY_STATUS) from None
    except (urllib.error.URLError, OSError, EOFError) as exc:
        if time.monotonic() >= deadline:
            raise FetchError(obsid, url, "deadline passed before the download finished (server too slow)") from None
        raise FetchError(obsid, url, f"connection failed ({type(exc).__name__}: {exc})", True) from None
    except http.client.HTTPException as exc:  # IncompleteRead when the server cuts the body
        raise FetchError(obsid, url, f"transfer failed ({type(exc).__name__}: {exc})", True) from None
    if expected is not None and n != int(expected):
        raise FetchError(obsid, url, f"short body: {n} of {expected} bytes (connection cut)", True)
    if n == 0:
        raise FetchError(obsid, url, "empty body", True)
    return n


def _check_spectrum(path: Path, obsid, url: str) -> None:
    """Read the file with the real reader: only a usable spectrum is kept."""
    from .lamost import LamostFormatError, read_lamost

    try:
        read_lamost(path)
    except LamostFormatError as exc:
        raise FetchError(obsid, url, f"not a readable LAMOST spectrum: {exc.reason}",
                         retryable="truncated" in exc.reason) from None


def _good_cached(path: Path) -> bool:
    from .lamost import LamostFormatError, read_lamost

    try:
        read_lamost(path)
        return True
    except LamostFormatError:
        return False


def fetch_one(obsid, url_template: str | None = None, cache=None, *, sha256: str | None = None,
              retries: int = 4, backoff: float = 0.5, timeout: float = 60.0, token: str | None = None,
              overwrite: bool = False, deadline: float = 300.0, max_bytes: int = bounded.MAX_FILE_BYTES,
              _clean: bool = True) -> FetchResult:
    """Download one spectrum (or find it in the cache); raises :class:`FetchError` when it cannot.

    ``retries`` extra attempts after the first, waiting ``backoff * 2**k`` seconds.
    ``sha256``: expected hex digest of the file as served (checked, also for a cached file).
    ``timeout``: seconds one network operation may wait; ``deadline``: seconds
    for the whole download, retries included; ``max_bytes``: size cap.
    A cached file that no longer reads is fetched again.
    """
    if retries < 0 or timeout <= 0 or deadline <= 0 or max_bytes <= 0:
        raise ValueError("retries must be >= 0 and timeout, deadline and max_bytes > 0")
    template = url_template or fetch_url() or LAMOST_URL_TEMPLATE
    token = token if token is not None else fetch_token()
    obsid = check_obsid(obsid)
    url = _url(template, obsid, token)
    folder = cache_dir(cache)
    if _clean and folder.is_dir():
        clean_stale_parts(folder)
    hit = None if overwrite else cached_path(obsid, folder)
    if hit is not None and (sha256 is None or sha256_file(hit) == sha256.lower()) and _good_cached(hit):
        return FetchResult(obsid, hit, "cached", 0, hit.stat().st_size)
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / f"{obsid}.{os.getpid()}.{threading.get_ident()}.part"
    end = time.monotonic() + deadline
    last: FetchError | None = None
    for attempt in range(retries + 1):
        try:
            if attempt:
                pause = backoff * 2 ** (attempt - 1)
                if time.monotonic() + pause >= end:
                    raise FetchError(obsid, url, f"deadline of {deadline:g} s passed after {attempt} attempt(s); "
                                                 f"last: {last.reason if last else '?'}")
                time.sleep(pause)
            n = _download(url, obsid, part, timeout, end, max_bytes)
            with open(part, "rb") as fh:
                head = fh.read(9)
            if not (head.startswith(GZIP_MAGIC) or head.startswith(FITS_MAGIC)):
                raise FetchError(obsid, url, f"not a FITS or gzip file (starts {head[:9]!r}: an error page?)")
            if sha256 is not None:
                got = sha256_file(part)
                if got != sha256.lower():
                    raise FetchError(obsid, url, f"sha256 {got[:12]}... differs from the expected {sha256[:12]}...", True)
            _check_spectrum(part, obsid, url)
            name = _names(obsid)[0 if head.startswith(GZIP_MAGIC) else 1]
            dest = folder / name
            os.replace(part, dest)  # atomic: readers never see half a file
            for other in _names(obsid):
                if other != name and (folder / other).exists():
                    (folder / other).unlink()
            return FetchResult(obsid, dest, "downloaded", attempt + 1, n)
        except FetchError as exc:
            last = exc
            if not exc.retryable:
                break
        finally:
            if part.exists():
                part.unlink()
    raise last  # type: ignore[misc]


def fetch(obsids, url_template: str | None = None, cache=None, *, sha256: dict | None = None,
          workers: int = 4, retries: int = 4, backoff: float = 0.5, timeout: float = 60.0,
          token: str | None = None, progress: bool = True, deadline: float = 300.0,
          max_bytes: int = bounded.MAX_FILE_BYTES) -> list[FetchResult]:
    """Download many spectra with ``workers`` threads; never raises for one bad obsid.

    Returns one :class:`FetchResult` per obsid, in input order; failures have
    ``status="failed"`` and the reason in ``error``. ``sha256`` maps obsid to
    an expected digest.
    """
    from tqdm.auto import tqdm

    if workers < 1 or retries < 0:
        raise ValueError(f"workers must be >= 1 and retries >= 0 (got workers={workers}, retries={retries})")
    obsids = [str(o).strip() for o in obsids]
    sha256 = {str(k): v for k, v in (sha256 or {}).items()}
    if cache_dir(cache).is_dir():
        clean_stale_parts(cache_dir(cache))

    def one(obsid):
        try:
            return fetch_one(obsid, url_template, cache, sha256=sha256.get(obsid), retries=retries,
                             backoff=backoff, timeout=timeout, token=token, deadline=deadline,
                             max_bytes=max_bytes, _clean=False)
        except FetchError as exc:
            return FetchResult(obsid, None, "failed", retries + 1, 0, exc.reason)

    with ThreadPoolExecutor(max(1, workers)) as pool:
        results = list(tqdm(pool.map(one, obsids), total=len(obsids), desc="fetch", unit="file",
                            disable=not progress))
    return results


def read_obsids(path) -> list[str]:
    """Obsids from a text file: the first comma-separated field of each line; blank and ``#`` lines skipped."""
    return [line.split(",")[0].strip() for line in Path(path).read_text().splitlines()
            if line.strip() and not line.startswith("#")]
