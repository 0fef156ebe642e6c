"""Download LAMOST spectra by obsid into a local cache.

The archive address is a URL template with ``{obsid}`` (and optionally
``{token}``) in it. For the LAMOST archive use the release you want, e.g.::

    https://www.lamost.org/dr9/v2.0/spectrum/fits/{obsid}
    https://www.lamost.org/dr11/v2.0/spectrum/fits/{obsid}?token={token}

(the ``/drN/vX/spectrum/fits/<obsid>`` endpoint returns the gzipped FITS file
of one low-resolution spectrum; a token is only needed for proprietary
releases). Pass it as ``url_template=`` or set the environment variable
``RGBKIT_FETCH_URL``; ``RGBKIT_FETCH_TOKEN`` fills ``{token}``.

Every download streams into ``<name>.part`` and is moved into place with
``os.replace`` only after its size (Content-Length) and, when given, its
sha256 have been checked, so the cache never holds half a file. Failures that
can pass (HTTP 5xx and 429, refused or cut connections, short bodies, time-outs)
are retried with exponential backoff; a 404 or another 4xx is not.
"""
from __future__ import annotations

import http.client
import os
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..config import fetch_token, fetch_url, spectra_cache_dir
from ..errors import RgbkitError
from .files import FITS_MAGIC, sha256_file

__all__ = ["read_obsids", "FetchError", "FetchResult", "fetch", "fetch_one", "cache_dir", "cached_path", "LAMOST_URL_TEMPLATE"]

LAMOST_URL_TEMPLATE = "https://www.lamost.org/dr9/v2.0/spectrum/fits/{obsid}"
"""The template used when neither ``url_template`` nor ``RGBKIT_FETCH_URL`` is set."""
RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
GZIP_MAGIC = b"\x1f\x8b"


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


def _names(obsid) -> tuple[str, str]:
    return f"{obsid}.fits.gz", f"{obsid}.fits"


def cached_path(obsid, folder=None) -> Path | None:
    """The cached file of ``obsid`` if there is one."""
    d = cache_dir(folder)
    for name in _names(obsid):
        if (d / name).is_file():
            return d / name
    return None


def _url(template: str, obsid, token: str | None) -> str:
    if "{obsid}" not in template:
        raise ValueError(f"URL template {template!r} has no '{{obsid}}' placeholder")
    return template.format(obsid=obsid, token=token or "")


def _download(url: str, obsid, part: Path, timeout: float) -> int:
    """Stream ``url`` into ``part``; return the byte count. Raises FetchError."""
    req = urllib.request.Request(url, headers={"User-Agent": "rgbkit-fetch/1"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            expected = resp.headers.get("Content-Length")
            n = 0
            with open(part, "wb") as fh:
                while True:
                    block = resp.read(1 << 16)
                    if not block:
                        break
                    fh.write(block)
                    n += len(block)
    except urllib.error.HTTPError as exc:
        raise FetchError(obsid, url, f"HTTP {exc.code} {exc.reason}", exc.code in RETRY_STATUS) from None
    except (urllib.error.URLError, OSError, EOFError) as exc:
        raise FetchError(obsid, url, f"connection failed ({type(exc).__name__}: {exc})", True) from None
    except http.client.HTTPException as exc:  # IncompleteRead when the server cuts the body
        raise FetchError(obsid, url, f"transfer failed ({type(exc).__name__}: {exc})", True) from None
    if expected is not None and n != int(expected):
        raise FetchError(obsid, url, f"short body: {n} of {expected} bytes (connection cut)", True)
    if n == 0:
        raise FetchError(obsid, url, "empty body", True)
    return n


def fetch_one(obsid, url_template: str | None = None, cache=None, *, sha256: str | None = None,
              retries: int = 4, backoff: float = 0.5, timeout: float = 60.0, token: str | None = None,
              overwrite: bool = False) -> FetchResult:
    """Download one spectrum (or find it in the cache); raises :class:`FetchError` when it cannot.

    ``retries`` extra attempts after the first, waiting ``backoff * 2**k`` seconds.
    ``sha256``: expected hex digest of the file as served (checked, also for a cached file).
    """
    template = url_template or fetch_url() or LAMOST_URL_TEMPLATE
    token = token if token is not None else fetch_token()
    obsid = str(obsid).strip()
    url = _url(template, obsid, token)
    folder = cache_dir(cache)
    hit = None if overwrite else cached_path(obsid, folder)
    if hit is not None and (sha256 is None or sha256_file(hit) == sha256.lower()):
        return FetchResult(obsid, hit, "cached", 0, hit.stat().st_size)
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / f"{obsid}.{os.getpid()}.{threading.get_ident()}.part"
    last: FetchError | None = None
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        try:
            n = _download(url, obsid, part, timeout)
            with open(part, "rb") as fh:
                head = fh.read(9)
            if not (head.startswith(GZIP_MAGIC) or head.startswith(FITS_MAGIC)):
                raise FetchError(obsid, url, f"not a FITS or gzip file (starts {head[:9]!r}: an error page?)")
            if sha256 is not None:
                got = sha256_file(part)
                if got != sha256.lower():
                    raise FetchError(obsid, url, f"sha256 {got[:12]}... differs from the expected {sha256[:12]}...", True)
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
          token: str | None = None, progress: bool = True) -> list[FetchResult]:
    """Download many spectra with ``workers`` threads; never raises for one bad obsid.

    Returns one :class:`FetchResult` per obsid, in input order; failures have
    ``status="failed"`` and the reason in ``error``. ``sha256`` maps obsid to
    an expected digest.
    """
    from tqdm.auto import tqdm

    obsids = [str(o).strip() for o in obsids]
    sha256 = {str(k): v for k, v in (sha256 or {}).items()}

    def one(obsid):
        try:
            return fetch_one(obsid, url_template, cache, sha256=sha256.get(obsid), retries=retries,
                             backoff=backoff, timeout=timeout, token=token)
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
