"""Wavelet denoising against independent references (PyWavelets, closed forms)."""
import math

import numpy as np
import pytest
import pywt
from scipy.stats import norm

from rgbkit.denoise import denoise, paper_level, soft_threshold


def _pywt_denoise(x, wavelet="haar", factor=0.05, per_level=True):
    """Reference: the paper's recipe written with PyWavelets, one spectrum at a time."""
    out = []
    for row in np.atleast_2d(x).astype(np.float64):
        c = pywt.wavedec(row, wavelet, level=pywt.dwt_max_level(row.size, pywt.Wavelet(wavelet).dec_len))
        if per_level:
            ts = [factor * np.abs(d).max() for d in c[1:]]
        else:
            ts = [factor * max(np.abs(d).max() for d in c[1:])] * (len(c) - 1)
        c = [c[0]] + [pywt.threshold(d, t, mode="soft") for d, t in zip(c[1:], ts)]
        out.append(pywt.waverec(c, wavelet)[: row.size])
    return np.array(out)


def test_level_formula_hand_values():
    # Eq. 4 by hand: Haar lf = 2 -> log2(4096 / 1) = 12; db4 lf = 8 -> floor(log2(4096 / 7)) = floor(9.19) = 9
    assert paper_level(4096, "haar") == 12
    assert paper_level(4096, "db4") == 9
    assert paper_level(3000, "haar") == 11  # floor(log2(3000)) = floor(11.55)
    assert paper_level(1, "haar") == 0
    for wav in ("haar", "db2", "sym5", "coif1"):
        for n in (2, 17, 1000, 4096):
            assert paper_level(n, wav) == pywt.dwt_max_level(n, pywt.Wavelet(wav).dec_len)


def _pywt_recipe(x, level, rule, mode):
    """Reference in float64, one spectrum at a time, for any level, rule and mode."""
    out = []
    for row in np.atleast_2d(x).astype(np.float64):
        c = pywt.wavedec(row, "haar", level=level)
        if rule == "max_level":
            ts = [0.05 * np.abs(d).max() for d in c[1:]]
        elif rule == "max_all":
            ts = [0.05 * max(np.abs(d).max() for d in c[1:])] * level
        else:
            ts = [np.median(np.abs(c[-1])) / 0.6745 * math.sqrt(2 * math.log(row.size))] * level
        c = [c[0]] + [pywt.threshold(d, t, mode=mode) for d, t in zip(c[1:], ts)]
        out.append(pywt.waverec(c, "haar"))
    return np.array(out)


@pytest.mark.parametrize("mode", ["soft", "hard"])
@pytest.mark.parametrize("rule", ["max_level", "max_all", "universal"])
@pytest.mark.parametrize("level", [1, 5, 6, 7, 12])
def test_fast_haar_matches_pywt(level, rule, mode):
    """Levels on both sides of the pairwise / block-matrix split (6 levels in the block),
    several blocks a row (level < 12), every rule and mode."""
    rng = np.random.default_rng(0)
    x = (np.cumsum(rng.normal(size=(7, 4096)), axis=1) * 0.01 + rng.random((7, 4096))).astype(np.float32)
    fast = denoise(x, level=level, threshold=rule, mode=mode, engine="numpy")
    assert fast.dtype == np.float32 and fast.shape == x.shape
    np.testing.assert_allclose(fast, _pywt_recipe(x, level, rule, mode), atol=2e-6 * np.abs(x).max())


def test_rows_do_not_depend_on_their_batch():
    """A star's denoised spectrum is the same alone, in a batch, or under any chunk size."""
    x = np.random.default_rng(9).random((70, 4096)).astype(np.float32)
    full = denoise(x, chunk_size=70)
    np.testing.assert_array_equal(denoise(x, chunk_size=7), full)
    for i in (0, 33, 69):
        np.testing.assert_array_equal(denoise(x[i]), full[i])


def test_out_argument_is_filled_and_checked():
    x = np.random.default_rng(10).random((5, 4096)).astype(np.float32)
    out = np.full_like(x, -1)
    assert denoise(x, out=out) is out
    np.testing.assert_array_equal(out, denoise(x))
    one = np.empty(4096, dtype=np.float32)
    np.testing.assert_array_equal(denoise(x[2], out=one), denoise(x)[2])
    with pytest.raises(ValueError, match="out must be float32"):
        denoise(x, out=np.empty((5, 4095), dtype=np.float32))


@pytest.mark.parametrize("rule", ["max_level", "max_all", "universal"])
def test_fast_path_equals_pywt_path(rule):
    rng = np.random.default_rng(1)
    x = rng.random((50, 4096)).astype(np.float32) + np.linspace(0, 1, 4096, dtype=np.float32)
    fast = denoise(x, threshold=rule, engine="numpy")
    slow = denoise(x, threshold=rule, engine="pywt")
    np.testing.assert_allclose(fast, slow, atol=2e-6)


def test_default_equals_independent_recipe():
    rng = np.random.default_rng(2)
    x = rng.random((5, 4096)).astype(np.float32)
    np.testing.assert_allclose(denoise(x), _pywt_denoise(x, per_level=True), atol=2e-6)
    np.testing.assert_allclose(denoise(x, threshold="max_all"), _pywt_denoise(x, per_level=False), atol=2e-6)
    # another wavelet goes through PyWavelets
    np.testing.assert_allclose(denoise(x, wavelet="db4"), _pywt_denoise(x, "db4"), atol=2e-5)


@pytest.mark.parametrize("wavelet", ["haar", "db4"])
def test_zero_threshold_is_perfect_reconstruction(wavelet):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 4096)).astype(np.float32)
    np.testing.assert_allclose(denoise(x, wavelet=wavelet, factor=0.0), x, atol=1e-5)


def test_soft_threshold_is_eq5():
    d = np.array([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0], dtype=np.float32)
    np.testing.assert_array_equal(soft_threshold(d, np.float32(1.0)), [-2, 0, 0, 0, 0, 0, 2])
    np.testing.assert_allclose(soft_threshold(d, 0.7), pywt.threshold(d, 0.7, mode="soft"), atol=1e-7)


def test_pure_noise_variance_follows_soft_threshold_theory():
    """White noise is invariant under an orthogonal DWT, so the energy kept at level k is
    n_k sigma^2 g(t_k / sigma) with g(t) = E[soft(Z, t)^2] = 2[(1 + t^2) Q(t) - t phi(t)]."""
    rng = np.random.default_rng(4)
    sigma = 0.1
    x = rng.normal(0, sigma, size=(200, 4096)).astype(np.float32)

    def g(t):
        return 2 * ((1 + t * t) * norm.sf(t) - t * norm.pdf(t))

    for rule in ("max_level", "max_all"):
        out = denoise(x, threshold=rule)
        kept = (out.astype(np.float64) ** 2).sum(axis=1).mean()
        expected = 0.0
        for row in x[:20].astype(np.float64):  # thresholds from PyWavelets, not from our code
            c = pywt.wavedec(row, "haar", level=12)
            ts = [0.05 * np.abs(d).max() for d in c[1:]]
            if rule == "max_all":
                ts = [max(ts)] * len(ts)
            expected += c[0][0] ** 2 + sum(d.size * sigma**2 * g(t / sigma) for d, t in zip(c[1:], ts))
        expected /= 20
        assert kept == pytest.approx(expected, rel=0.03)
        # the paper's 5% rule is gentle: roughly a quarter of white-noise power goes
        assert 0.6 < kept / (4096 * sigma**2) < 0.85
    # Donoho's universal threshold removes almost all of it
    out = denoise(x, threshold="universal")
    assert (out**2).mean() < 0.02 * sigma**2


def test_noisy_smooth_signal_gets_closer_to_truth():
    """At low SNR (noise 0.05 on the [0, 1] scale) the paper's rule helps; the
    universal threshold helps more. (At high SNR the 5%-of-max shrinkage of the
    strong coarse coefficients costs more than the noise it removes: see denoise.py.)"""
    rng = np.random.default_rng(5)
    t = np.linspace(0, 1, 4096, dtype=np.float32)
    clean = 0.5 + 0.3 * np.sin(2 * np.pi * 3 * t) - 0.2 * np.exp(-(((t - 0.6) / 0.01) ** 2))
    noisy = (clean + rng.normal(0, 0.05, size=(50, 4096))).astype(np.float32)
    mse_in = ((noisy - clean) ** 2).mean()
    assert ((denoise(noisy) - clean) ** 2).mean() < 0.9 * mse_in
    assert ((denoise(noisy, threshold="universal") - clean) ** 2).mean() < 0.5 * mse_in


def test_step_function_keeps_its_edge():
    rng = np.random.default_rng(6)
    x = np.zeros((10, 4096), dtype=np.float32)
    x[:, 1500:] = 1.0
    x += rng.normal(0, 0.01, size=x.shape).astype(np.float32)
    out = denoise(x)
    jumps = np.diff(out, axis=1)
    assert (np.abs(jumps).argmax(axis=1) == 1499).all()  # edge stays between pixels 1499 and 1500
    assert (jumps[:, 1499] > 0.8).all()  # and stays sharp: most of the step in one pixel
    # soft thresholding shrinks the step's coefficient at every level by T_k = 5% of
    # itself (it is each level's largest), so the step comes back 0.95 high
    plateau = out[:, 1600:4000].mean(axis=1) - out[:, 100:1400].mean(axis=1)
    np.testing.assert_allclose(plateau, 0.95, atol=0.01)


def test_shapes_dtypes_and_bad_rows():
    rng = np.random.default_rng(7)
    x = rng.random((3, 4096)).astype(np.float64)
    x[1, 10] = np.nan
    out = denoise(x)
    assert out.dtype == np.float32 and out.shape == (3, 4096)
    assert np.isnan(out[1]).all()
    assert np.isfinite(out[[0, 2]]).all()
    np.testing.assert_allclose(out[0], denoise(x[0]), atol=1e-7)  # 1D in, 1D out, same numbers
    assert denoise(x[0]).shape == (4096,)
    # odd lengths: Haar falls back to PyWavelets and keeps the length
    assert denoise(rng.random((2, 1001))).shape == (2, 1001)


def test_clear_errors_not_pywt_ones():
    with pytest.raises(ValueError, match="fewer pixels than the wavelet needs"):
        denoise(np.ones((2, 1), dtype=np.float32))
    with pytest.raises(ValueError, match="fewer pixels than the wavelet needs"):
        denoise(np.ones((2, 4), dtype=np.float32), wavelet="db4")
    with pytest.raises(ValueError, match="at most 12"):
        denoise(np.ones((2, 4096), dtype=np.float32), level=13)
    with pytest.raises(ValueError, match="unknown threshold rule"):
        denoise(np.ones((2, 64), dtype=np.float32), threshold="median")
    with pytest.raises(ValueError, match="divisible"):
        denoise(np.ones((2, 100), dtype=np.float32), level=6, engine="numpy")


def test_hard_threshold_keeps_or_kills():
    x = np.zeros(64, dtype=np.float32)
    x[10], x[11] = 1.0, -1.0  # one big finest-level detail coefficient sqrt(2)
    x[40] = 0.02  # small details at several levels
    out = denoise(x, mode="hard", level=1)
    # level 1 only: T = 0.05 * sqrt(2); the pair (10, 11) is kept exactly, pixel 40's detail
    # 0.02 / sqrt(2) < T is dropped so the pair (40, 41) becomes its mean
    np.testing.assert_allclose(out[10:12], [1.0, -1.0], atol=1e-6)
    np.testing.assert_allclose(out[40:42], [0.01, 0.01], atol=1e-6)
    assert math.isclose(out.sum(), x.sum(), abs_tol=1e-6)


def test_nonfinite_rows_come_back_nan_and_huge_finite_ones_do_not():
    """The NaN/inf check starts from one sum, which overflows on huge finite values: those rows stay."""
    x = np.random.default_rng(12).random((4, 4096)).astype(np.float32)
    x[1, 7], x[2, 9] = np.nan, np.inf
    x[3] *= np.float32(3e34)  # finite, but the sum of all rows overflows
    out = denoise(x)
    assert np.isnan(out[1]).all() and np.isnan(out[2]).all()
    assert np.isfinite(out[[0, 3]]).all()
    np.testing.assert_array_equal(out[0], denoise(x[0]))
