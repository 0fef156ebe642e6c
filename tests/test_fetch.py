"""The downloader against a local HTTP server on 127.0.0.1 serving the real files."""
from __future__ import annotations

import hashlib
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
