"""Preprocessing steps against independent references, flags for every bad input, real files."""
import json

import numpy as np
import pytest
import pywt

from rgbkit.preprocess import (
    DROP,
    Flag,
    Preprocessor,
    minmax,
    resample,
    std_cut,
    target_grid,
    to_channels,
    to_rest_frame,
    zero_pixel_cut,
)
from rgbkit.spectra import Spectrum, SpectrumMeta

GRID = np.arange(4000.0, 8096.0)
LAMOST_WL = 10 ** (3.5682 + 1e-4 * np.arange(3909))  # 3700-9100 A, log-linear like LAMOST


def _spectrum_flux(rng, n, wl=LAMOST_WL):
    """Smooth continuum with lines and noise, LAMOST-like counts."""
    cont = 1000 + 300 * np.sin(wl / 700.0)
    lines = -200 * np.exp(-(((wl[None, :] - rng.uniform(4100, 8000, (n, 1))) / 3.0) ** 2))
    return (cont + lines + rng.normal(0, 15, (n, wl.size))).astype(np.float32)


def _reference_chain(wl, flux):
    """The paper's chain, one spectrum, written with np.interp and PyWavelets only."""
    f = np.interp(GRID, wl, flux.astype(np.float64), left=0.0, right=0.0)
    f = (f - f.min()) / (f.max() - f.min())
    c = pywt.wavedec(f, "haar", level=12)
    c = [c[0]] + [pywt.threshold(d, 0.05 * np.abs(d).max(), mode="soft") for d in c[1:]]
    return pywt.waverec(c, "haar").reshape(64, 64)


def test_target_grid():
    g = target_grid()
    assert g.size == 4096 and g[0] == 4000.0 and g[-1] == 8095.0
    np.testing.assert_array_equal(np.diff(g), 1.0)


def test_rest_frame_hand_value():
    assert to_rest_frame(np.array([6000.0]), 0.001)[0] == pytest.approx(6000 / 1.001)
    out = to_rest_frame(np.array([5000.0, 6000.0]), np.array([0.0, -0.0005]))
    assert out.shape == (2, 2)
    np.testing.assert_allclose(out[1], [5000 / 0.9995, 6000 / 0.9995])


def test_resample_shared_grid_equals_np_interp():
    rng = np.random.default_rng(0)
    flux = _spectrum_flux(rng, 20)
    out, flags = resample(LAMOST_WL, flux)
    assert out.shape == (20, 4096) and out.dtype == np.float32
    assert (flags == 0).all()
    ref = np.array([np.interp(GRID, LAMOST_WL, f.astype(np.float64)) for f in flux])
    np.testing.assert_allclose(out, ref, rtol=1e-5)


def test_resample_ragged_grids_equal_np_interp():
    rng = np.random.default_rng(1)
    wls, fls = [], []
    for i in range(12):
        start = 3650 + 40 * (i % 4) + 3 * i  # differing starts and lengths
        wl = np.sort(start + np.cumsum(rng.uniform(0.8, 2.2, 3500 + 37 * i)))
        wls.append(wl)
        fls.append(rng.uniform(1, 2, wl.size).astype(np.float32))
    wls.append(wls[0].copy())  # a repeated grid goes through the grouped path
    fls.append(fls[0] * 2)
    for m in (3909, 3890, 3000, 2500):  # LAMOST-like: one log-linear grid cut at different lengths
        wls.append(LAMOST_WL[:m])
        fls.append(rng.uniform(1, 2, m).astype(np.float32))
    bent = LAMOST_WL.copy()
    bent[2000:] += 0.3  # same start and step, then differs: must not share the family's plan
    wls.append(bent)
    fls.append(rng.uniform(1, 2, bent.size).astype(np.float32))
    out, flags = resample(wls, fls)
    assert (flags == 0).all()
    for w, f, o in zip(wls, fls, out):
        ref = np.interp(GRID, w, f.astype(np.float64), left=0.0, right=0.0)
        np.testing.assert_allclose(o, ref, rtol=1e-5)
    # the same rows as a 2D wavelength array (equal lengths)
    m = min(w.size for w in wls)
    out2, _ = resample(np.stack([w[:m] for w in wls]), np.stack([f[:m] for f in fls]))
    np.testing.assert_allclose(out2[0], np.interp(GRID, wls[0][:m], fls[0][:m], left=0, right=0), rtol=1e-5)


def test_resample_fills_outside_coverage_with_zero():
    wl = np.linspace(5000, 9000, 3000)
    out, flags = resample(wl, np.ones((1, 3000), dtype=np.float32))
    assert flags[0] == 0
    assert (out[0, GRID < 5000] == 0).all() and (out[0, GRID >= 5000] == 1).all()


def test_resample_flags_bad_input_without_exceptions():
    rng = np.random.default_rng(2)
    good_f = rng.uniform(1, 2, 500).astype(np.float32)
    good_w = np.linspace(3800, 9000, 500)
    nan_f = good_f.copy()
    nan_f[10:13] = [np.nan, np.inf, -np.inf]
    cases = {
        "good": (good_w, good_f, 0),
        "empty": (np.array([]), np.array([], dtype=np.float32), Flag.EMPTY),
        "mismatch": (good_w, good_f[:-1], Flag.EMPTY),
        "one pixel": (np.array([5000.0]), np.array([1.0], dtype=np.float32), Flag.TOO_SHORT),
        "decreasing": (good_w[::-1], good_f, Flag.BAD_WAVELENGTH),
        "nan wavelength": (np.where(np.arange(500) == 7, np.nan, good_w), good_f, Flag.BAD_WAVELENGTH),
        "no overlap": (np.linspace(9000, 9500, 500), good_f, Flag.NO_OVERLAP),
        "nonfinite": (good_w, nan_f, Flag.NONFINITE),
    }
    out, flags = resample([c[0] for c in cases.values()], [c[1] for c in cases.values()])
    for (name, (_, _, want)), got in zip(cases.items(), flags):
        assert got == want, name
    row = list(cases).index("nonfinite")
    assert np.isfinite(out).all()
    # NaN/inf are treated as missing (0): the same as interpolating a spectrum with zeros there
    zeroed = np.where(np.isfinite(nan_f), nan_f, 0).astype(np.float64)
    np.testing.assert_allclose(out[row], np.interp(GRID, good_w, zeroed), rtol=1e-5)
    # a member of a LAMOST-like family that ends before 4,000 A
    _, f3 = resample([LAMOST_WL, LAMOST_WL[:100]], [np.ones(3909, np.float32), np.ones(100, np.float32)])
    assert f3.tolist() == [0, Flag.NO_OVERLAP]
    # shared-grid path: a bad grid flags every row
    _, f2 = resample(good_w[::-1], np.stack([good_f, good_f]))
    assert (f2 == Flag.BAD_WAVELENGTH).all()


def test_zero_pixel_cut_boundary():
    flux = np.ones((3, 4096), dtype=np.float32)
    flux[0, :99] = 0
    flux[1, :100] = 0
    flux[2, ::2] = 0  # 2048 zeros
    keep, n_zero = zero_pixel_cut(flux)
    assert keep.tolist() == [True, False, False]
    assert n_zero.tolist() == [99, 100, 2048]


def test_minmax_spans_exactly_0_1():
    rng = np.random.default_rng(3)
    flux = (rng.random((100, 4096)) * rng.uniform(1e-3, 1e5, (100, 1)) + rng.uniform(-50, 50, (100, 1))).astype(np.float32)
    out = minmax(flux)
    assert out.dtype == np.float32
    assert (out.min(axis=1) == 0.0).all() and (out.max(axis=1) == 1.0).all()
    ref = (flux - flux.min(1, keepdims=True)) / (flux.max(1, keepdims=True) - flux.min(1, keepdims=True))
    np.testing.assert_allclose(out, ref, atol=1e-6)
    const = minmax(np.full((1, 10), 3.0, dtype=np.float32))
    assert np.isnan(const).all()


def test_std_cut_drops_exactly_the_flat_ones():
    rng = np.random.default_rng(4)
    base = rng.normal(size=(6, 4096))
    base = (base - base.mean(1, keepdims=True)) / base.std(1, keepdims=True)
    stds = np.array([0.001, 0.0049, 0.0051, 0.01, 0.2, 0.004])
    flux = (0.5 + base * stds[:, None]).astype(np.float32)
    keep, std = std_cut(flux)
    assert keep.tolist() == [False, False, True, True, True, False]
    np.testing.assert_allclose(std, np.std(flux.astype(np.float64), axis=1), rtol=1e-4)
    keep, _ = std_cut(np.full((1, 8), np.nan, dtype=np.float32))
    assert not keep[0]


def test_to_channels_consecutive_bands():
    x = np.arange(2 * 4096, dtype=np.float32).reshape(2, 4096)
    c = to_channels(x)
    assert c.shape == (2, 64, 64)
    np.testing.assert_array_equal(c[1, 5], x[1, 320:384])
    with pytest.raises(ValueError, match="64 equal channels"):
        to_channels(np.zeros((1, 100)))


def test_config_round_trip_and_validation():
    p = Preprocessor(min_std=0.01, threshold="max_all")
    text = json.dumps(p.config)
    q = Preprocessor.from_config(text)
    assert q == p and q.config == json.loads(text)
    assert Preprocessor.from_config(p.config) == p
    assert Preprocessor().config["threshold"] == "max_level" and Preprocessor().n_levels == 12
    with pytest.raises(ValueError, match="unknown preprocessing settings"):
        Preprocessor.from_config({**p.config, "colour": "red"})
    with pytest.raises(ValueError, match="not divisible"):
        Preprocessor(channels=100)
    with pytest.raises(ValueError, match="unknown discrete wavelet"):
        Preprocessor(wavelet="mexh")
    with pytest.raises(ValueError, match="levels"):
        Preprocessor(level=13)


def _bad_batch():
    """Good spectra interleaved with each kind of failure; returns wls, fluxes, expected flags."""
    rng = np.random.default_rng(5)
    good = _spectrum_flux(rng, 4)
    rows = []
    rows.append((LAMOST_WL, good[0], 0))
    gap = good[1].copy()
    gap[(LAMOST_WL > 6300) & (LAMOST_WL < 6850)] = 0  # the paper's Fig. 8 gap
    rows.append((LAMOST_WL, gap, Flag.ZERO_PIXELS))
    few_zeros = good[1].copy()
    few_zeros[(LAMOST_WL > 6300) & (LAMOST_WL < 6330)] = 0  # ~30 A: under the limit
    rows.append((LAMOST_WL, few_zeros, 0))
    rows.append((LAMOST_WL, np.full(3909, 7.0, np.float32), Flag.CONSTANT))
    spike = (1000 + np.where(np.arange(3909) == 2000, 1000.0, 0.0)).astype(np.float32)
    rows.append((LAMOST_WL, spike, 0))  # flat but for one spike: std of normalised ~0.016, kept
    rows.append((LAMOST_WL, np.zeros(3909, np.float32), Flag.ZERO_PIXELS))  # all zero: first cut wins
    rows.append((np.linspace(9000, 9600, 400), good[2][:400], Flag.NO_OVERLAP))
    rows.append((np.array([5000.0]), np.array([1.0], np.float32), Flag.TOO_SHORT))
    rows.append((np.array([]), np.array([], np.float32), Flag.EMPTY))
    rows.append((LAMOST_WL[::-1], good[2], Flag.BAD_WAVELENGTH))
    some_nan = good[3].copy()
    some_nan[[100, 2000]] = np.nan
    rows.append((LAMOST_WL, some_nan, Flag.NONFINITE))  # warning only: still usable
    rows.append((LAMOST_WL, np.full(3909, np.nan, np.float32), Flag.NONFINITE | Flag.ZERO_PIXELS))
    late = LAMOST_WL >= 4014
    rows.append((LAMOST_WL[late], good[3][late], 0))  # starts at 4,014.2 A: 15 zero pixels, kept
    later = LAMOST_WL >= 4300
    rows.append((LAMOST_WL[later], good[3][later], Flag.ZERO_PIXELS))  # starts at 4,300 A
    return [r[0] for r in rows], [r[1] for r in rows], np.array([int(r[2]) for r in rows])


def test_run_flags_exactly_the_constructed_failures():
    wls, fls, want = _bad_batch()
    res = Preprocessor().run(wls, fls, keep_stages=True)
    assert res.flags.tolist() == want.tolist()
    ok = (want & DROP) == 0
    assert res.ok.tolist() == ok.tolist()
    assert res.X.shape == (len(wls), 64, 64) and res.X.dtype == np.float32
    assert np.isfinite(res.X[ok]).all()
    assert np.isnan(res.X[~ok]).all()
    for bits, reason in zip(res.flags, res.reasons):
        assert bool(reason) == bool(bits)
    r = res.reasons
    assert "zero-flux pixels" in r[1] and "limit: fewer than 100" in r[1]
    assert "constant flux" in r[3]
    assert "4096 zero-flux" in r[5] and "constant" not in r[5]
    assert "no overlap with 4000-8096 A" in r[6]
    assert "fewer than 2 pixels" in r[7]
    assert "empty" in r[8]
    assert "strictly increasing" in r[9]
    assert "NaN/inf" in r[10] and "NaN/inf" in r[11] and "4096 zero-flux" in r[11]
    assert res.n_zero[12] == np.count_nonzero(GRID < wls[12][0]) == 15  # 4000-4014 A
    s = res.summary()
    assert s["n"] == len(wls) and s["ok"] == ok.sum() and s["ZERO_PIXELS"] == 4


def test_std_cut_is_inert_after_minmax_at_paper_settings():
    """A min-max normalised 4096-px spectrum has a 0 and a 1, so its std is at least
    sqrt(0.5 / 4096) = 0.011 (one 0, one 1, the rest at 0.5): the paper's
    std < 0.005 cut cannot fire. It is wired in all the same (a larger min_std works)."""
    x = np.full((1, 4096), 0.5, dtype=np.float32)
    x[0, 100], x[0, 3000] = 0.0, 1.0  # the least spread spectrum there is, on the output grid
    res = Preprocessor().run(GRID, x)
    assert res.ok[0]
    assert res.std[0] == pytest.approx(np.sqrt(0.5 / 4096), rel=1e-4)
    wls, fls, _ = _bad_batch()
    strict = Preprocessor(min_std=0.02).run(wls, fls)
    assert strict.flags[4] == Flag.LOW_STD  # the spike row, std ~0.016
    assert "std of normalised flux" in strict.reasons[4] and "< 0.02" in strict.reasons[4]
    assert strict.flags[0] == 0  # a real-looking spectrum has std ~0.2


def test_run_equals_independent_reference_chain():
    rng = np.random.default_rng(6)
    flux = _spectrum_flux(rng, 6)
    res = Preprocessor().run(LAMOST_WL, flux)
    assert res.ok.all()
    for i in range(6):
        np.testing.assert_allclose(res.X[i], _reference_chain(LAMOST_WL, flux[i]), atol=2e-5)


def test_stages_chunks_and_threads_agree():
    wls, fls, _ = _bad_batch()
    p = Preprocessor()
    a = p.run(wls, fls, keep_stages=True)
    b = p.run(wls, fls, chunk_size=3, n_jobs=2)
    np.testing.assert_array_equal(a.flags, b.flags)
    np.testing.assert_array_equal(a.X, b.X)  # a spectrum's result does not depend on its batch
    st = a.stages
    assert set(st) == {"resampled", "normalised", "denoised"}
    k = np.flatnonzero(a.ok)
    np.testing.assert_allclose(st["normalised"][k], minmax(st["resampled"][k]), atol=1e-7)
    np.testing.assert_allclose(st["denoised"][k].reshape(-1, 64, 64), a.X[k])
    assert b.stages == {}


def test_remembered_plans_are_checked_against_the_whole_grid():
    """Grids alike in size and ends but not in between must not share an interpolation plan."""
    rng = np.random.default_rng(11)
    f = rng.uniform(1, 2, (2, 500)).astype(np.float32)
    w1 = np.linspace(3800, 9000, 500)
    w2 = w1.copy()
    w2[1:-1] = np.sort(rng.uniform(3801, 8999, 498))
    for _ in range(2):  # the second time from the remembered plans
        for w in (w1, w2):
            out, flags = resample(w, f)
            assert (flags == 0).all()
            np.testing.assert_allclose(out[1], np.interp(GRID, w, f[1], left=0, right=0), rtol=1e-5)


def test_huge_finite_flux_is_not_taken_for_nonfinite():
    """The NaN/inf check starts from a sum, which overflows here: the rows are finite and kept."""
    f = np.full((3, 500), 3e38, dtype=np.float32)
    f[1, 7] = np.nan
    out, flags = resample(np.linspace(3800, 9000, 500), f)
    assert flags.tolist() == [0, Flag.NONFINITE, 0]
    assert np.isfinite(out).all() and out[0, 100] == np.float32(3e38)


def test_shared_grid_and_list_inputs_agree():
    rng = np.random.default_rng(7)
    flux = _spectrum_flux(rng, 5)
    p = Preprocessor()
    a = p.run(LAMOST_WL, flux)
    b = p.run([LAMOST_WL] * 5, list(flux))
    c = p.run(LAMOST_WL, flux[2])  # one spectrum
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(c.X[0], a.X[2])


def test_rest_frame_option_and_missing_redshift():
    rng = np.random.default_rng(8)
    flux = _spectrum_flux(rng, 3)
    z = np.array([0.0, 3e-4, np.nan])
    res = Preprocessor(rest_frame=True).run(LAMOST_WL, flux, z=z, keep_stages=True)
    assert res.flags.tolist() == [0, 0, int(Flag.NO_REDSHIFT)]
    assert "redshift is missing" in res.reasons[2]
    shifted = np.interp(GRID, LAMOST_WL / (1 + 3e-4), flux[1].astype(np.float64))
    np.testing.assert_allclose(res.stages["resampled"][1], shifted, rtol=1e-5)
    plain = Preprocessor().run(LAMOST_WL, flux, keep_stages=True)
    np.testing.assert_allclose(res.stages["resampled"][0], plain.stages["resampled"][0], rtol=1e-6)


def test_run_spectra_uses_each_grid_and_header_z():
    rng = np.random.default_rng(9)
    flux = _spectrum_flux(rng, 2)
    sp = [
        Spectrum(LAMOST_WL, flux[0], np.ones(3909), np.zeros(3909), np.zeros(3909), SpectrumMeta(z=1e-4)),
        Spectrum(LAMOST_WL[5:], flux[1][5:], np.ones(3904), np.zeros(3904), np.zeros(3904)),
    ]
    res = Preprocessor().run_spectra(sp)
    assert res.ok.all()
    np.testing.assert_allclose(res.X[0], _reference_chain(LAMOST_WL, flux[0]), atol=2e-5)
    rf = Preprocessor(rest_frame=True).run_spectra(sp)
    assert rf.ok.tolist() == [True, False]  # second has no Z in its meta
    assert rf.flags[1] == Flag.NO_REDSHIFT


def test_every_real_file_is_finite_or_flagged(real_fits):
    from rgbkit.io.lamost import read_lamost

    spectra = [read_lamost(p) for p in real_fits]
    res = Preprocessor().run_spectra(spectra, keep_stages=True)
    assert len(res) == len(real_fits)
    for path, ok, x, bits, reason in zip(real_fits, res.ok, res.X, res.flags, res.reasons):
        if ok:
            assert x.shape == (64, 64) and np.isfinite(x).all(), path
        else:
            assert bits & DROP and reason, path
    assert res.ok.sum() > 0.8 * len(real_fits)
    # real grids differ per file; the grouped resampler must equal per-file np.interp
    for i in range(0, len(spectra), 15):
        s = spectra[i]
        ref = np.interp(GRID, s.wavelength, s.flux.astype(np.float64), left=0.0, right=0.0)
        np.testing.assert_allclose(res.stages["resampled"][i], ref, rtol=1e-5, atol=1e-3)


def test_raw_vs_denoised_plot_renders_with_its_data():
    import holoviews as hv
    from bokeh.models import ColumnDataSource, GridPlot

    from rgbkit.plots import raw_vs_denoised

    rng = np.random.default_rng(10)
    res = Preprocessor().run(LAMOST_WL, _spectrum_flux(rng, 2), keep_stages=True)
    raw, den = res.stages["normalised"][1], res.stages["denoised"][1]
    fig = hv.render(raw_vs_denoised(res.wavelength, raw, den), backend="bokeh")
    assert isinstance(fig, GridPlot)
    data = [s.data for s in fig.select(dict(type=ColumnDataSource))]
    fluxes = [d for d in data if "flux" in d]
    resid = [d for d in data if "residual" in d]
    assert len(fluxes) == 2 and len(resid) == 1
    for d in fluxes + resid:
        np.testing.assert_array_equal(d["wavelength"], res.wavelength)
    got = sorted((np.asarray(d["flux"]) for d in fluxes), key=lambda a: np.abs(a - raw).max())
    np.testing.assert_allclose(got[0], raw, rtol=1e-6)
    np.testing.assert_allclose(got[1], den, rtol=1e-6)
    np.testing.assert_allclose(resid[0]["residual"], raw.astype(np.float64) - den, atol=1e-6)
    assert 0 < np.abs(resid[0]["residual"]).max() < 0.2  # denoising changed it, but not much
    with pytest.raises(ValueError, match="one length"):
        raw_vs_denoised(res.wavelength, raw[:10], den)


def test_shared_grid_with_list_of_fluxes_and_empty_batch():
    wl = np.linspace(3800, 9000, 3000)
    rng = np.random.default_rng(11)
    res = Preprocessor().run(wl, [rng.random(3000), rng.random(2999)])
    assert res.flags.tolist() == [0, Flag.EMPTY] and "lengths differ" in res.reasons[1]
    empty = Preprocessor().run([], [])
    assert empty.X.shape == (0, 64, 64) and empty.summary()["n"] == 0
