"""The dashboard's server-side upload checks and who may open a session (no browser needed)."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "apps"))

import badinputs  # noqa: E402
from rgbkit_app import sources  # noqa: E402


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, shared_data):
    return badinputs.build(tmp_path_factory.mktemp("up"), shared_data)


def _tmp_uploads():
    return sorted(Path(tempfile.gettempdir()).glob("rgbkit-upload-*"))


def test_every_corpus_file_gets_a_verdict_and_leaves_no_temp_file(corpus):
    before = _tmp_uploads()
    for case, path in corpus:
        if not case.regular or path.stat().st_size > sources.MAX_UPLOAD_BYTES:
            continue
        data = path.read_bytes()
        if case.expect is None:
            spec = sources.read_upload(data, path.name)
            assert spec.meta.path == path.name and len(spec) > 3000
        else:
            with pytest.raises(sources.UploadError) as err:
                sources.read_upload(data, path.name)
            expect = "empty upload" if case.kind == "empty file" else case.expect
            assert str(err.value).startswith(f"{path.name}: ") and expect in str(err.value), case.kind
    assert _tmp_uploads() == before


def test_server_side_limits():
    with pytest.raises(sources.UploadError, match="larger than the 10 MB limit"):
        sources.read_upload(b"SIMPLE  =" + b" " * (11 << 20), "big.fits")
    with pytest.raises(sources.UploadError, match="empty upload"):
        sources.read_upload(b"", "e.fits")
    bomb = badinputs.gzip_bomb(badinputs.fits_header(BITPIX="-32", NAXIS="2", NAXIS1="50000000", NAXIS2="5"), 1 << 30)
    assert len(bomb) < sources.MAX_UPLOAD_BYTES  # passes the size limit ...
    with pytest.raises(sources.UploadError, match="inflates to more than"):  # ... not the reader's cap
        sources.read_upload(bomb, "../../bomb.fits.gz")


def test_unexpected_failures_are_upload_errors(monkeypatch):
    def boom(data, name):
        raise MemoryError("no room")

    monkeypatch.setattr(sources, "read_lamost_bytes", boom)
    with pytest.raises(sources.UploadError, match="x.fits: could not be read \\(MemoryError: no room\\)"):
        sources.read_upload(b"SIMPLE  =", "x.fits")


@pytest.mark.parametrize("ip, env, ok", [
    ("127.0.0.1", None, True), ("::1", None, True), ("127.0.0.2", None, True),
    ("192.168.1.20", None, False), ("10.0.0.5", None, False), ("2001:db8::1", None, False), ("garbage", None, False),
    ("192.168.1.20", "1", True), ("192.168.1.20", "0", False), (None, None, True),
])
def test_sessions_only_from_this_machine_unless_asked(monkeypatch, ip, env, ok):
    if env is None:
        monkeypatch.delenv("RGBKIT_DASHBOARD_REMOTE", raising=False)
    else:
        monkeypatch.setenv("RGBKIT_DASHBOARD_REMOTE", env)
    assert sources.session_allowed(ip) is ok
