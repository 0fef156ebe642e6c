"""LAMOST readers on every real file in ../shared/data and on broken input."""
import gzip
import shutil

import numpy as np
import pytest
from astropy.io import fits

from rgbkit.io.lamost import LamostFormatError, read_lamost, read_many, write_lamost


def test_every_real_file_reads_with_sane_values(real_fits):
    layouts = {}
    for path in real_fits:
        s = read_lamost(path)
        w = s.wavelength
        # most span 3700-9100 A; DR5 grids vary (3748-3909 px: one starts at 3839 A, shortest ends at 8915 A)
        assert 3690 < w[0] < 3850 and 8900 < w[-1] < 9110, (path, w[0], w[-1])
        assert np.all(np.diff(w) > 0)
        # LAMOST's grid is log-linear with 1e-4 dex steps
        assert np.allclose(np.diff(np.log10(w)), 1e-4, atol=2e-7), path
        good = s.ivar > 0
        assert good.sum() > 0.4 * len(s), path  # worst real file: 48% (sp06-145)
        assert np.all(np.isfinite(s.flux[good]))
        with fits.open(path) as h:
            hdr = h[0].header
            assert s.meta.designation == hdr["DESIG"].strip()
            assert s.meta.subclass == str(hdr["SUBCLASS"]).strip()
            assert s.meta.objclass == str(hdr["CLASS"]).strip()
            assert s.meta.ra == pytest.approx(hdr["RA"])
            assert s.meta.z == pytest.approx(hdr["Z"])
            assert s.meta.obsid == hdr.get("OBSID")
        assert s.meta.path == str(path)
        layouts.setdefault(s.meta.layout, set()).add(s.meta.data_release)
        assert np.isfinite(s.meta.snr["g"])
    assert layouts == {"dr1-image": {"DR1"}, "dr2-image": {"DR5", "DR6", "DR7"}, "dr8-table": {"DR9", "DR13"}}


def test_dr1_wavelength_from_coefficients(shared_data):
    s = read_lamost(shared_data / "lamost/dr1/spec-55862-B6212_sp06-003.fits")
    assert len(s) == 3904
    assert s.wavelength[0] == pytest.approx(10**3.5682)
    assert s.wavelength[100] == pytest.approx(10 ** (3.5682 + 100e-4))
    assert s.meta.obsid is None and s.meta.snr["g"] == pytest.approx(71.41)
    assert s.meta.subclass == "F9"


def test_dr7_image_and_dr9_table_of_same_star_agree(shared_data):
    a = read_lamost(shared_data / "lamost/dr7/spec-55859-F5902_sp01-001_dr7.fits.gz")
    b = read_lamost(shared_data / "lamost/dr9/spec-55859-F5902_sp01-001.fits.gz")
    assert (a.meta.layout, b.meta.layout) == ("dr2-image", "dr8-table")
    assert a.meta.obsid == b.meta.obsid == 101001
    for name in ("wavelength", "flux", "ivar", "and_mask", "or_mask"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-6)
    assert a.meta.snr == b.meta.snr


def test_kepler_id_from_tcomment(shared_data):
    s = read_lamost(shared_data / "lamost/dr6/spec-57287-KP193637N444141V03_sp10-161.fits.gz")
    assert s.meta.kic == 8098300 and s.meta.data_release == "DR6"


def test_dr13_quasar_and_dwarf_metadata(shared_data):
    classes = {read_lamost(p).meta.objclass for p in (shared_data / "lamost/dr13").glob("*.fits.gz")}
    assert "QSO" in classes and "STAR" in classes


@pytest.mark.parametrize("layout", ["dr7", "dr9"])
@pytest.mark.parametrize("gz", [False, True])
def test_write_read_round_trip(tmp_path, shared_data, layout, gz):
    s = read_lamost(shared_data / "lamost/dr5/spec-55959-B5595902_sp08-132.fits")
    out = write_lamost(s, tmp_path / ("x.fits" + (".gz" if gz else "")), layout=layout)
    t = read_lamost(out)
    np.testing.assert_allclose(t.wavelength, s.wavelength, rtol=1e-6)
    np.testing.assert_array_equal(t.flux, s.flux)
    assert t.meta.obsid == s.meta.obsid and t.meta.designation == s.meta.designation
    assert t.meta.layout == ("dr2-image" if layout == "dr7" else "dr8-table")


# ------------------------------------------------------------------ bad input
def _image(tmp_path, data, name="bad.fits", **hdr):
    h = fits.PrimaryHDU(np.asarray(data, dtype=np.float32))
    for k, v in hdr.items():
        h.header[k] = v
    p = tmp_path / name
    h.writeto(p)
    return p


def _good_rows(n=3900):
    w = 10 ** (3.5682 + 1e-4 * np.arange(n))
    return np.vstack([np.ones(n) * 5, np.ones(n), w, np.zeros(n), np.zeros(n)])


def _expect(path, fragment):
    with pytest.raises(LamostFormatError) as err:
        read_lamost(path)
    assert str(path) in str(err.value)
    assert fragment in err.value.reason
    assert isinstance(err.value, ValueError)


def test_bad_inputs_give_clear_errors(tmp_path, shared_data):
    txt = tmp_path / "notes.fits"
    txt.write_text("this is not a FITS file\n" * 10)
    _expect(txt, "not a FITS file")

    empty = tmp_path / "empty.fits"
    empty.write_bytes(b"")
    _expect(empty, "empty file")

    _expect(tmp_path / "missing.fits", "no such file")
    _expect(tmp_path, "directory")

    real = shared_data / "lamost/dr5/spec-55959-B5595902_sp08-132.fits"
    trunc = tmp_path / "trunc.fits"
    trunc.write_bytes(real.read_bytes()[:20000])
    _expect(trunc, "truncated")

    badgz = tmp_path / "trunc.fits.gz"
    badgz.write_bytes(gzip.compress(real.read_bytes())[:5000])
    _expect(badgz, "truncated")

    rows = _good_rows()
    _expect(_image(tmp_path, rows[:3], "rows3.fits"), "3 rows")

    back = rows.copy()
    back[2] = back[2][::-1]
    _expect(_image(tmp_path, back, "backwards.fits"), "strictly increasing")

    zero = rows.copy()
    zero[0] = 0
    _expect(_image(tmp_path, zero, "zero.fits"), "all zero")

    nan = rows.copy()
    nan[0] = np.nan
    _expect(_image(tmp_path, nan, "nan.fits"), "all NaN")

    neg = rows.copy()
    neg[1, 10] = -1
    _expect(_image(tmp_path, neg, "negivar.fits"), "negative inverse variance")

    # A medium-resolution file: coadded blue and red arms as separate tables.
    cols = [fits.Column(name=c, format="10E", array=np.ones((1, 10), np.float32)) for c in ("FLUX", "IVAR", "WAVELENGTH")]
    mrs = fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols, name="COADD_B"),
                        fits.BinTableHDU.from_columns(cols, name="COADD_R")])
    mrs.writeto(tmp_path / "mrs.fits")
    _expect(tmp_path / "mrs.fits", "medium-resolution")

    notab = fits.HDUList([fits.PrimaryHDU()])
    notab.writeto(tmp_path / "notab.fits")
    _expect(tmp_path / "notab.fits", "no COADD table")


def test_read_many_records_refusals_and_goes_on(tmp_path, shared_data):
    for p in list((shared_data / "lamost/dr9").glob("*.fits.gz"))[:3]:
        shutil.copy(p, tmp_path / p.name)
    (tmp_path / "junk.fits").write_text("nope")
    (tmp_path / "empty.fits.gz").write_bytes(b"")
    spectra, refused = read_many(tmp_path, progress=False)
    assert len(spectra) == 3
    assert sorted(r[0].split("/")[-1] for r in refused) == ["empty.fits.gz", "junk.fits"]
    assert all(reason for _, reason in refused)


def test_read_many_two_workers_matches_serial(real_fits, tmp_path, monkeypatch):
    """Workers hand spectra back through scratch files: the same spectra, metadata and refusals
    as one process, arrays of their own, and no scratch file left behind."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where read_many puts its scratch folder
    bad = tmp_path / "in" / "cut.fits"
    bad.parent.mkdir()
    bad.write_bytes(real_fits[0].read_bytes()[:4000])
    files = list(real_fits) + [bad]
    a, ra = read_many(files, progress=False)
    b, rb = read_many(files, workers=2, progress=False)
    assert ra == rb and len(ra) == 1 and len(a) == len(real_fits)
    for x, y in zip(a, b):
        assert str(x.meta) == str(y.meta)
        for k in ("wavelength", "flux", "ivar", "and_mask", "or_mask"):
            assert np.array_equal(getattr(x, k), getattr(y, k)) and getattr(x, k).dtype == getattr(y, k).dtype
    b[0].flux[:] = 0  # writable, and only its own pixels
    assert b[1].flux.any() and np.array_equal(b[1].wavelength, a[1].wavelength)
    assert [p.name for p in tmp_path.iterdir()] == ["in"]


def test_read_many_without_a_temporary_folder(real_fits, monkeypatch):
    import tempfile

    def refuse(*a, **k):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(tempfile, "TemporaryDirectory", refuse)
    spectra, refused = read_many(real_fits[:6], workers=2, progress=False)
    assert [s.meta.obsid for s in spectra] == [read_lamost(p).meta.obsid for p in real_fits[:6]] and not refused


def test_read_chunk_without_scratch_space_sends_spectra(real_fits, tmp_path):
    from rgbkit.io.lamost import _read_chunk, _spectra_from_chunk

    out = str(tmp_path / "missing-folder" / "0.bin")  # cannot be written
    chunk = _read_chunk((real_fits[:3], out))
    assert chunk[0] is False  # sent inline
    got = _spectra_from_chunk(out, chunk)
    assert [s.meta.obsid for s, _ in got] == [read_lamost(p).meta.obsid for p in real_fits[:3]]


def test_specutils_loader(shared_data):
    pytest.importorskip("specutils")
    from specutils import Spectrum as SUSpectrum

    import rgbkit.io.specutils_loader  # noqa: F401  (registers the format)

    path = shared_data / "lamost/dr1/spec-55862-B6212_sp06-003.fits"
    su = SUSpectrum.read(path, format="LAMOST-LRS")
    ours = read_lamost(path)
    np.testing.assert_allclose(su.spectral_axis.value, ours.wavelength)
    np.testing.assert_array_equal(su.flux.value, ours.flux)
    assert su.meta["designation"] == "LAMOST J063715.90+271356.5"
    assert su.mask.sum() == np.sum((ours.ivar <= 0) | (ours.and_mask != 0))


def test_fast_path_gives_the_same_spectrum_as_astropy(real_fits, monkeypatch, tmp_path):
    from rgbkit.io import fastfits

    fell_back, calls, table_calls = [], [], []

    def spy(real, count):
        def wrapped(buf, *a, **k):
            count.append(1)
            try:
                return real(buf, *a, **k)
            except Exception:
                fell_back.append(buf)
                raise
        return wrapped

    monkeypatch.setattr(fastfits, "plain_primary_image", spy(fastfits.plain_primary_image, calls))
    monkeypatch.setattr(fastfits, "table_first_row", spy(fastfits.table_first_row, table_calls))
    for p in real_fits:
        a, b = read_lamost(p, fast=False), read_lamost(p)
        for k in ("wavelength", "flux", "ivar", "and_mask", "or_mask"):
            assert np.array_equal(getattr(a, k), getattr(b, k)) and getattr(a, k).dtype == getattr(b, k).dtype
        assert str(a.meta.as_row()) == str(b.meta.as_row()) and a.meta.header == b.meta.header
    # every image file took the image fast path, the DR8+ table files (5 DR9, 3 DR13) the table one
    assert len(calls) == len(real_fits) - 8 and len(table_calls) == 8 and not fell_back
    bad = tmp_path / "cut.fits"
    bad.write_bytes(real_fits[0].read_bytes()[:4000])
    with pytest.raises(LamostFormatError, match="cut.fits"):
        read_lamost(bad)


def test_table_fast_path_leaves_scaled_columns_to_astropy(shared_data, tmp_path):
    """A DR8+ COADD table whose FLUX column carries TSCAL/TZERO: astropy applies the scaling, so the
    hand parser must step aside (and gives the same arrays as astropy when it does not)."""
    from astropy.io import fits

    src = shared_data / "lamost/dr9/spec-55859-F5902_sp01-001.fits.gz"
    plain = read_lamost(src)
    with fits.open(src) as h:
        primary, tab = h[0].header.copy(), h["COADD"].data
        for k in ("NAXIS1", "NAXIS2"):
            primary.remove(k, ignore_missing=True)
        cols = []
        for c in h["COADD"].columns:
            arr = np.array(tab[c.name])
            if c.name.upper() == "FLUX":
                cols.append(fits.Column(name=c.name, format=c.format, array=arr,  # stored (arr - 10) / 2
                                        bscale=2.0, bzero=10.0))
            else:
                cols.append(fits.Column(name=c.name, format=c.format, array=arr))
    out = tmp_path / "scaled.fits"
    fits.HDUList([fits.PrimaryHDU(header=primary), fits.BinTableHDU.from_columns(cols, name="COADD")]).writeto(out)
    fast, slow = read_lamost(out), read_lamost(out, fast=False)
    np.testing.assert_allclose(fast.flux, plain.flux, rtol=1e-6, atol=1e-3)  # the scaling was applied
    np.testing.assert_array_equal(fast.flux, slow.flux)
    np.testing.assert_array_equal(fast.wavelength, plain.wavelength)


def test_table_fast_path_skips_text_columns_it_does_not_need(shared_data, tmp_path):
    from astropy.io import fits

    from rgbkit.io import fastfits
    from rgbkit.io.bounded import load, walk

    src = shared_data / "lamost/dr9/spec-55859-F5902_sp01-002.fits.gz"
    with fits.open(src) as h:
        primary = h[0].header.copy()
        for k in ("NAXIS1", "NAXIS2"):
            primary.remove(k, ignore_missing=True)
        cols = [fits.Column(name="NOTE", format="12A", array=np.array(["hello world!"]))]
        cols += [fits.Column(name=c.name, format=c.format, array=np.array(h["COADD"].data[c.name])) for c in h["COADD"].columns]
        cols.append(fits.Column(name="FLAGS", format="5X", array=np.zeros((1, 5), bool)))
    out = tmp_path / "with_text.fits"
    fits.HDUList([fits.PrimaryHDU(header=primary), fits.BinTableHDU.from_columns(cols, name="COADD")]).writeto(out)
    buf = load(out)
    coadd = next(x for x in walk(buf) if x.name == "COADD")
    got = fastfits.table_first_row(buf, coadd, ("FLUX", "WAVELENGTH"))  # no fallback needed
    ref = read_lamost(src)
    np.testing.assert_array_equal(got["FLUX"].astype(np.float32), ref.flux)
    np.testing.assert_array_equal(read_lamost(out).flux, ref.flux)


def _header_bytes(cards):
    text = "".join(c.ljust(80) for c in cards + ["END"])
    return (text + " " * (-len(text) % 2880)).encode("ascii")


@pytest.mark.parametrize("filler", [0, 40])  # END in the first or the second 2,880-byte block
def test_header_split_once_agrees_with_astropy(filler):
    """The walk's one-pass split (END found with bytes.find) gives the cards astropy gives:
    the first of a repeated key, END only as a whole key at a card start, the data offset after END's block."""
    from astropy.io import fits as afits

    from rgbkit.io import bounded, fastfits

    cards = ["SIMPLE  =                    T", "BITPIX  =                  -32", "NAXIS   =                    0",
             "EXTEND  =                    T / ends with END", "COMMENT the END     of a sentence",
             "ENDX    =                    1 / a key that starts with END", "OBJNAME = 'first   '",
             "RA      =           12.5D0 / deg", "OBJNAME = 'second'", "DESIG   = 'it''s'"]
    cards += [f"HISTORY filler {i}" for i in range(filler)]
    buf = _header_bytes(cards)
    typed, raw, long_strings, data_start = bounded._header(buf, 0, 0)
    assert data_start == len(buf) == (2880 if filler == 0 else 5760) and not long_strings
    ref = afits.Header.fromstring(buf.decode("ascii"))
    hdu = bounded.walk(buf)[0]
    once, start = fastfits.primary_header(buf, hdu=hdu)
    loop, start2 = fastfits.primary_header(buf)  # without a walked HDU: walks it itself
    assert once == loop and start == start2 == data_start
    for key in ("OBJNAME", "RA", "DESIG", "ENDX", "EXTEND"):
        assert once[key] == ref[key], key
    assert once["OBJNAME"] == "first" and "COMMENT" not in once and typed["NAXIS"] == 0
    with_continue = _header_bytes(cards + ["OBJSOURC= 'a long&'", "CONTINUE  'string'"])
    assert bounded.walk(with_continue)[0].long_strings
    with pytest.raises(ValueError, match="long-string"):  # the reader then goes to astropy
        fastfits.primary_header(with_continue, hdu=bounded.walk(with_continue)[0])
    with pytest.raises(bounded.BoundedReadError, match="END card"):
        bounded.walk(buf.replace(b"END" + b" " * 77, b" " * 80))
