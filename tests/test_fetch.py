"""The downloader against a local HTTP server on 127.0.0.1 serving the real files."""
from __future__ import annotations

import hashlib
import re
import time
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rgbkit.io.fetch import FetchError, cached_path, fetch, fetch_one
from rgbkit.io.lamost import read_lamost


class Server:
    """A tiny archive: GET /spec/<obsid> returns the file mapped to it.

    ``fail_first``: answer 500 to the first N requests of each obsid.
    ``cut_first``: for the first N requests send half the body (with the full
    Content-Length) and close the connection.
    """

    def __init__(self, files: dict[str, bytes], fail_first: int = 0, cut_first: int = 0):
        self.files, self.fail_first, self.cut_first = files, fail_first, cut_first
        self.hits: Counter = Counter()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                obsid = self.path.rsplit("/", 1)[-1]
                outer.hits[obsid] += 1
                n = outer.hits[obsid]
                body = outer.files.get(obsid)
                if body is None:
                    self.send_error(404, "no such obsid")
                    return
                if n <= outer.fail_first:
                    self.send_error(500, "archive busy")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/fits")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if n <= outer.fail_first + outer.cut_first:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def template(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/spec/{{obsid}}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def archive(shared_data):
    """obsid -> bytes of real files: the DR9/DR13 tables (plain) and the gzipped DR6/DR7 ones."""
    paths = sorted((shared_data / "lamost" / "dr9").glob("*.fits*")) + sorted(
        (shared_data / "lamost").glob("dr[67]/*.fits.gz"))
    files = {}
    for p in paths:
        files[str(read_lamost(p).meta.obsid)] = p.read_bytes()
    assert len(files) >= 6
    return files


def test_fetch_many_reads_back_and_caches(archive, tmp_path):
    with Server(archive) as srv:
        res = fetch(list(archive), srv.template, tmp_path, workers=3, progress=False)
        assert [r.status for r in res] == ["downloaded"] * len(archive)
        for r in res:
            assert r.path.read_bytes() == archive[r.obsid]
            assert r.path.name.endswith(".fits.gz") == archive[r.obsid].startswith(b"\x1f\x8b")
            assert str(read_lamost(r.path).meta.obsid) == r.obsid
        hits = sum(srv.hits.values())
        again = fetch(list(archive), srv.template, tmp_path, progress=False)
        assert {r.status for r in again} == {"cached"}
        assert sum(srv.hits.values()) == hits  # no new requests
    assert not list(tmp_path.glob("*.part"))


def test_retries_after_server_errors(archive, tmp_path):
    obsid = next(iter(archive))
    with Server(archive, fail_first=2) as srv:
        r = fetch_one(obsid, srv.template, tmp_path, backoff=0.01)
        assert r.status == "downloaded" and r.attempts == 3 and srv.hits[obsid] == 3
        assert r.path.read_bytes() == archive[obsid]


def test_gives_up_after_retries_and_names_the_obsid(archive, tmp_path):
    obsid = next(iter(archive))
    with Server(archive, fail_first=10) as srv:
        with pytest.raises(FetchError, match=rf"obsid {obsid} .*HTTP 500"):
            fetch_one(obsid, srv.template, tmp_path, retries=2, backoff=0.01)
        assert srv.hits[obsid] == 3
    assert cached_path(obsid, tmp_path) is None and not list(tmp_path.iterdir())


def test_cut_connection_is_retried_and_never_cached_half(archive, tmp_path):
    obsid = max(archive, key=lambda k: len(archive[k]))
    with Server(archive, cut_first=2) as srv:
        with pytest.raises(FetchError, match="short body|transfer failed|connection"):
            fetch_one(obsid, srv.template, tmp_path, retries=1, backoff=0.01)
        assert cached_path(obsid, tmp_path) is None and not list(tmp_path.glob("*"))
        r = fetch_one(obsid, srv.template, tmp_path, retries=1, backoff=0.01)  # 3rd request is whole
        assert r.status == "downloaded" and r.path.read_bytes() == archive[obsid]
        assert srv.hits[obsid] == 3


def test_404_is_not_retried_and_batch_goes_on(archive, tmp_path):
    good = next(iter(archive))
    with Server(archive) as srv:
        res = fetch(["999999999", good], srv.template, tmp_path, backoff=0.01, progress=False)
        assert srv.hits["999999999"] == 1
    assert res[0].status == "failed" and "HTTP 404" in res[0].error
    assert res[1].status == "downloaded"


def test_sha256_checked(archive, tmp_path):
    obsid = next(iter(archive))
    digest = hashlib.sha256(archive[obsid]).hexdigest()
    with Server(archive) as srv:
        with pytest.raises(FetchError, match="sha256"):
            fetch_one(obsid, srv.template, tmp_path, sha256="0" * 64, retries=1, backoff=0.01)
        assert cached_path(obsid, tmp_path) is None
        r = fetch_one(obsid, srv.template, tmp_path, sha256=digest)
        assert r.status == "downloaded"
        # a cached file that no longer matches is fetched again
        r.path.write_bytes(archive[obsid][:-10])
        r2 = fetch_one(obsid, srv.template, tmp_path, sha256=digest)
        assert r2.status == "downloaded" and r2.path.read_bytes() == archive[obsid]


def test_error_page_is_refused(tmp_path):
    with Server({"1": b"<html>please log in</html>"}) as srv:
        with pytest.raises(FetchError, match="not a FITS"):
            fetch_one("1", srv.template, tmp_path, backoff=0.01)
        assert srv.hits["1"] == 1


def test_template_needs_obsid(tmp_path):
    with pytest.raises(ValueError, match="obsid"):
        fetch_one("1", "http://127.0.0.1:9/spec", tmp_path)


# ------------------------------------------------------------------ a misbehaving archive
class Misbehaving(Server):
    """GET /<route>/<obsid>: each route misbehaves its own way (see ``routes``)."""

    def __init__(self, good: bytes, other: dict[str, bytes] | None = None):
        self.good, self.other = good, other or {}
        self.hits: Counter = Counter()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args):
                pass

            def do_GET(self):
                route = self.path.strip("/").split("/")[0]
                outer.hits[route] += 1
                try:
                    getattr(outer, f"r_{route}")(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, route: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{route}/{{obsid}}"

    def _send(self, h, body: bytes, length: int | None = None):
        h.send_response(200)
        if length is not None:
            h.send_header("Content-Length", str(length))
        h.end_headers()
        h.wfile.write(body)

    def r_good(self, h):
        self._send(h, self.good, len(self.good))

    def r_cut(self, h):  # no Content-Length, body stops half way and the connection closes
        self._send(h, self.good[: len(self.good) // 2])

    def r_huge(self, h):  # announces 1 GB
        h.send_response(200)
        h.send_header("Content-Length", str(1 << 30))
        h.end_headers()
        h.wfile.write(b"\x1f\x8b" + b"\0" * 100_000)

    def r_endless(self, h):  # no Content-Length, never ends (until the client hangs up)
        h.send_response(200)
        h.end_headers()
        block = b"SIMPLE  =" + b" " * 65527
        for _ in range(2000):
            h.wfile.write(block)

    def r_drip(self, h):  # one small piece every 50 ms: each read is quick, the whole is not
        h.send_response(200)
        h.send_header("Content-Length", str(len(self.good)))
        h.end_headers()
        for i in range(0, len(self.good), 16):
            h.wfile.write(self.good[i:i + 16])
            h.wfile.flush()
            time.sleep(0.05)

    def r_redirect(self, h):
        h.send_response(302)
        h.send_header("Location", "/good/1")
        h.end_headers()

    def r_loop(self, h):
        h.send_response(302)
        h.send_header("Location", "/loop/1")
        h.end_headers()

    def r_tofile(self, h):
        h.send_response(302)
        h.send_header("Location", "file:///etc/passwd")
        h.end_headers()

    def __getattr__(self, name):
        if name.startswith("r_") and name[2:] in self.other:  # a fixed body: wrong content of some kind
            body = self.other[name[2:]]
            return lambda h: self._send(h, body, len(body))
        raise AttributeError(name)


@pytest.fixture(scope="module")
def wrong_content(shared_data, tmp_path_factory):
    """Bodies that look like FITS or gzip at the start but are not usable spectra."""
    import gzip

    import badinputs

    src = badinputs.Sources(shared_data)
    return {
        "threerows": src.image_bytes(lambda d, h: (d[:3], h)),
        "bomb": badinputs.gzip_bomb(badinputs.fits_header(BITPIX="-32", NAXIS="2", NAXIS1="53687091", NAXIS2="5"),
                                    1 << 30),
        "badcrc": gzip.compress(src.dr5_bytes)[:-8] + b"\0\0\0\0" + gzip.compress(src.dr5_bytes)[-4:],
        "html": b"<html>please log in</html>",
    }


def _left(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.fixture(scope="module")
def good_bytes(shared_data):
    return (shared_data / "lamost/dr7/spec-55859-F5902_sp01-001_dr7.fits.gz").read_bytes()


def test_truncated_body_without_length_is_never_kept(good_bytes, tmp_path):
    with Misbehaving(good_bytes) as srv:
        with pytest.raises(FetchError, match="truncated"):
            fetch_one("1", srv.url("cut"), tmp_path, retries=2, backoff=0.01)
        assert srv.hits["cut"] == 3  # a cut body is worth retrying
    assert _left(tmp_path) == []


def test_size_cap_announced_and_streamed(good_bytes, tmp_path):
    with Misbehaving(good_bytes) as srv:
        t = time.monotonic()
        with pytest.raises(FetchError, match="announces 1073741824 bytes"):
            fetch_one("1", srv.url("huge"), tmp_path, backoff=0.01)
        with pytest.raises(FetchError, match="larger than the 4194304 byte limit"):
            fetch_one("1", srv.url("endless"), tmp_path, backoff=0.01)
        assert srv.hits["huge"] == srv.hits["endless"] == 1 and time.monotonic() - t < 20
    assert _left(tmp_path) == []


def test_slow_drip_stops_at_the_deadline(good_bytes, tmp_path):
    with Misbehaving(good_bytes) as srv:
        t = time.monotonic()
        with pytest.raises(FetchError, match="deadline"):
            fetch_one("1", srv.url("drip"), tmp_path, deadline=1.0, timeout=0.5, backoff=0.01)
        assert time.monotonic() - t < 2.5
    assert _left(tmp_path) == []


def test_redirects(good_bytes, tmp_path):
    with Misbehaving(good_bytes) as srv:
        r = fetch_one("1", srv.url("redirect"), tmp_path)
        assert r.status == "downloaded" and r.path.read_bytes() == good_bytes
        with pytest.raises(FetchError, match="HTTP 30"):
            fetch_one("2", srv.url("loop"), tmp_path, backoff=0.01)
        assert srv.hits["loop"] <= 4
        with pytest.raises(FetchError, match="file:.*not allowed|non-http"):
            fetch_one("3", srv.url("tofile"), tmp_path, backoff=0.01)
    assert _left(tmp_path) == ["1.fits.gz"]


@pytest.mark.parametrize("route, reason", [
    ("threerows", "not a readable LAMOST spectrum: primary image has 3 rows"),
    ("bomb", "inflates to more than"),
    ("badcrc", "CRC check failed"),
    ("html", "not a FITS or gzip file"),
])
def test_wrong_content_is_read_before_it_is_kept(good_bytes, wrong_content, tmp_path, route, reason):
    with Misbehaving(good_bytes, wrong_content) as srv:
        with pytest.raises(FetchError, match=re.escape(reason)):
            fetch_one("7", srv.url(route), tmp_path, retries=1, backoff=0.01)
        assert srv.hits[route] == 1  # a body that arrived whole and is wrong is not fetched again
    assert _left(tmp_path) == []


@pytest.mark.parametrize("obsid", ["../../x", "1/2", "1?a=b", "", "12a", "1 2", "%2e%2e", "1" * 21, "-5"])
def test_obsids_are_validated_before_any_request(good_bytes, tmp_path, obsid):
    with Misbehaving(good_bytes) as srv:
        with pytest.raises(FetchError, match="invalid obsid"):
            fetch_one(obsid, srv.url("good"), tmp_path / "cache")
        res = fetch([obsid, "5"], srv.url("good"), tmp_path / "cache", progress=False)
        assert res[0].status == "failed" and "invalid obsid" in res[0].error and res[1].status == "downloaded"
        assert srv.hits["good"] == 1
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["5.fits.gz", "cache"]


def test_obsid_and_token_are_escaped_in_the_url():
    from rgbkit.io.fetch import _url

    assert _url("http://h/s/{obsid}?token={token}", "123", "a&b=c/d") == "http://h/s/123?token=a%26b%3Dc%2Fd"
    with pytest.raises(ValueError, match="http"):
        _url("file:///etc/{obsid}", "1", None)


def test_a_corrupted_cached_file_is_fetched_again(good_bytes, tmp_path):
    with Misbehaving(good_bytes) as srv:
        r = fetch_one("1", srv.url("good"), tmp_path)
        r.path.write_bytes(good_bytes[:-20])  # cut on disk after it was cached
        r2 = fetch_one("1", srv.url("good"), tmp_path)
        assert r2.status == "downloaded" and r2.path.read_bytes() == good_bytes and srv.hits["good"] == 2


def test_killed_download_leaves_no_part_for_long(good_bytes, tmp_path):
    """A download killed with SIGKILL leaves its .part; the next run removes it and fetches whole."""
    import os
    import signal
    import subprocess
    import sys

    with Misbehaving(good_bytes) as srv:
        code = ("import sys; from rgbkit.io.fetch import fetch_one\n"
                "fetch_one('1', sys.argv[1], sys.argv[2], deadline=60)\n")
        proc = subprocess.Popen([sys.executable, "-c", code, srv.url("drip"), str(tmp_path)],
                                env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        try:
            for _ in range(300):
                if list(tmp_path.glob("*.part")):
                    break
                time.sleep(0.05)
            parts = list(tmp_path.glob("*.part"))
            assert parts, "the child never started writing"
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        assert list(tmp_path.glob("*.part")) == parts  # SIGKILL runs no clean-up ...
        (tmp_path / "99.12345678.1.part").write_bytes(b"old")  # ... nor did some earlier run
        r = fetch_one("1", srv.url("good"), tmp_path)
    assert r.status == "downloaded" and _left(tmp_path) == ["1.fits.gz"]


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="retries"):
        fetch_one("1", "http://127.0.0.1:9/{obsid}", tmp_path, retries=-1)
    with pytest.raises(ValueError, match="workers"):
        fetch(["1"], "http://127.0.0.1:9/{obsid}", tmp_path, workers=0, progress=False)
