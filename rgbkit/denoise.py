"""Wavelet denoising of many spectra at once (paper Section 3.1.1, step 5 of 3.2).

The paper decomposes each spectrum with Mallat's algorithm into N levels,

    N = log2(Nd / (lf - 1))                                     (Eq. 4)

(Nd pixels, lf the decomposition filter length), soft-thresholds the
high-frequency (detail) coefficients with T = 0.05 x max{w_HF,j^k} (Eq. 5) and
reconstructs from the untouched approximation and the thresholded details.

Choices made here, from the paper's text:

* Levels: Eq. 4 is exactly ``pywt.dwt_max_level(Nd, lf)`` (floored). For the
  Haar wavelet (lf = 2) and Nd = 4096 it gives N = log2(4096) = 12: the
  decomposition runs down to a single approximation coefficient.
* Threshold scope: the text is ambiguous. Eq. 5 has one T with no level
  index, and the max in "0.05 x max{w_HF,j^k}" leaves j and k free, which
  reads as one T per spectrum over all levels (``threshold="max_all"``). But
  Eq. 4 is, word for word, the level formula of ``pywt.dwt_max_level``, and the
  widely copied PyWavelets denoising recipe it comes with thresholds each
  level at a fraction of that level's max (``"max_level"``). The consequences
  decide it: on the real LAMOST spectra in ../shared/data, the largest detail
  coefficient is a coarse one carrying the continuum shape (~15 for a
  spectrum normalised to [0, 1]), so ``"max_all"`` gives T ~ 0.75, which zeroes
  every detail coefficient of levels 1-6, i.e. all
  structure narrower than ~64 A: no absorption lines survive and the residual
  is 2.5x the pipeline's own noise (median). ``"max_level"`` removes a residual
  of 0.8x the pipeline noise (median) and keeps the lines, which is what a
  denoising step (Fig. 9: raw and denoised spectra side by side) is for. So
  the default is ``"max_level"``; ``"max_all"`` stays available.
* The paper writes max{w}, not max|w|; we use the absolute value. (The recipe
  uses a signed max; for a level whose coefficients are all negative that
  gives T < 0, and soft thresholding with T < 0 *inflates* coefficients.)

What the rule does: T_k = 5% of the largest coefficient, so a level's
strongest feature always shrinks by 5% (a step edge comes back 0.95 high) and
white noise loses only about a quarter of its power (its max is ~4 sigma, so
T ~ 0.2 sigma). On noisy spectra (noise ~0.05 of the min-max range) the output
is closer to the truth than the input; on clean ones (noise ~0.005) the 5%
shrinkage of the strong continuum/line coefficients outweighs the noise
removed. ``threshold="universal"`` (Donoho's sigma sqrt(2 ln n)) is the
textbook alternative, kept as an option.

Haar is implemented directly in NumPy (unnormalised pairwise sums and
differences; the last six levels' coefficients kept in one array so their
thresholds take a few calls), ~2x faster than chunked ``pywt.wavedec`` on 2D
arrays and ~10x a per-row loop (benchmarks/results/preprocess.md); other
wavelets, and lengths not divisible by 2**N, go through PyWavelets. Tests check
the two paths agree to ~1e-6, and that a row's result does not depend on the
rows it is batched with.
"""
from __future__ import annotations

import math

import numpy as np
import pywt

THRESHOLD_RULES = ("max_all", "max_level", "universal")


def paper_level(n_pixels: int, wavelet: str = "haar") -> int:
    """Number of decomposition levels from Eq. 4, N = floor(log2(Nd / (lf - 1))).

    Identical to ``pywt.dwt_max_level(n_pixels, filter_len)``; 0 when the
    spectrum is shorter than the filter (no decomposition possible).
    """
    lf = pywt.Wavelet(wavelet).dec_len
    if n_pixels < lf:
        return 0
    return int(math.floor(math.log2(n_pixels / (lf - 1))))


def soft_threshold(d: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Eq. 5: 0 where |d| < t, else sign(d) (|d| - t). ``t`` broadcasts against ``d``."""
    return np.sign(d) * np.maximum(np.abs(d) - t, np.float32(0))


def hard_threshold(d: np.ndarray, t: np.ndarray) -> np.ndarray:
    return np.where(np.abs(d) < t, np.float32(0), d)


# The last _DEEP levels' coefficients live in one array of blocks of 2**_DEEP
# values, so their thresholds and shrinkage take a few NumPy calls instead of
# ~15 a level: the calls' GIL-held overhead kept two threads from scaling
# (benchmarks/results/speed.md, section 14).
_DEEP = 6


def nonfinite_mask(x: np.ndarray) -> np.ndarray | None:
    """Where ``x`` holds NaN/inf, or None when nowhere (a finite sum says so in one pass)."""
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(x.sum()):
            return None
    bad = ~np.isfinite(x)
    return bad if bad.any() else None


def _absmax(d: np.ndarray) -> np.ndarray:
    """max |d| per row, without an |d| temporary."""
    return np.maximum(d.max(axis=-1), -d.min(axis=-1))


def _thresholds(details: list[np.ndarray], rule: str, factor: float, n_pixels: int):
    """One threshold array per detail level (pywt layout), each broadcastable to it."""
    factor = np.float32(factor)
    if rule == "max_all":
        t = factor * np.max([_absmax(d) for d in details], axis=0)[..., None]
        return [t] * len(details)
    if rule == "max_level":
        return [factor * _absmax(d)[..., None] for d in details]
    if rule == "universal":
        # Donoho & Johnstone (1994): sigma from the MAD of the finest level.
        sigma = np.median(np.abs(details[-1]), axis=-1, keepdims=True) / np.float32(0.6745)
        t = sigma * np.float32(math.sqrt(2.0 * math.log(n_pixels)))
        return [t.astype(np.float32)] * len(details)
    raise ValueError(f"unknown threshold rule {rule!r}; use one of {THRESHOLD_RULES}")


def _shrink_inplace(d: np.ndarray, t: np.ndarray, mode: str) -> None:
    if mode == "soft":
        # soft(d) = d - clip(d, -t, t); min/max are faster than np.clip
        c = np.maximum(d, -t)
        np.minimum(c, t, out=c)
        np.subtract(d, c, out=d)
    else:
        d *= np.abs(d) >= t


def _haar_denoise(x: np.ndarray, level: int, rule: str, factor: float, mode: str, out: np.ndarray) -> None:
    """Haar denoising of the rows of ``x`` (float32 (r, n), n divisible by 2**level) into ``out``.

    Works on unnormalised sums A_k and differences D_k of the two halves' sums:
    level k's coefficients are 2**(k/2) times the orthonormal ones (PyWavelets'),
    and the thresholds scale with them (soft and hard thresholding commute with
    a positive scale), so the result is the same with two passes a level
    fewer. Reconstruction runs on block means, S_k-1 = S_k +- D_k / 2**k (exact
    powers of two). Only elementwise operations: a row's result does not
    depend on the other rows.
    """
    r, n = x.shape
    deep = min(_DEEP, level)
    pair = level - deep
    details = []
    a = x
    for _ in range(pair):
        even, odd = a[:, 0::2], a[:, 1::2]
        details.append(np.subtract(even, odd))
        a = np.add(even, odd)
    # the deep levels, per block of m values: [sum, D_level (1), ..., D_pair+1 (m/2)]
    m = 1 << deep
    q = a.shape[1] // m
    c = np.empty((r, q, m), dtype=np.float32)
    for j in range(1, deep + 1):
        w = m >> j
        even, odd = a[:, 0::2], a[:, 1::2]
        c[:, :, w : 2 * w] = np.subtract(even, odd).reshape(r, q, w)
        a = np.add(even, odd)
    c[:, :, 0] = a
    starts = np.array([0] + [m >> j for j in range(deep, 0, -1)])

    # thresholds of levels 1..level, in unnormalised units
    scale = np.float32(2.0) ** (np.arange(1, level + 1, dtype=np.float32) / np.float32(2))
    if rule == "universal":
        finest = details[0] if pair else c[:, :, m // 2 :].reshape(r, -1)
        sigma = np.median(np.abs(finest), axis=-1, keepdims=True) / np.float32(0.6745 * math.sqrt(2.0))
        t = (sigma * np.float32(math.sqrt(2.0 * math.log(n)))) * scale
    else:
        amax = np.empty((r, level), dtype=np.float32)
        for k, d in enumerate(details):
            amax[:, k] = np.maximum(d.max(axis=-1), -d.min(axis=-1))
        groups = np.maximum.reduceat(np.abs(c).max(axis=1), starts, axis=-1)  # sum, coarsest .. finest
        amax[:, pair:] = groups[:, :0:-1]
        if rule == "max_level":
            t = np.float32(factor) * amax
        else:  # max_all: one threshold on the orthonormal scale
            t = np.float32(factor) * (amax / scale).max(axis=-1, keepdims=True) * scale

    # the blocks: the sum's threshold is 0 (kept), then the levels' own; then scaled to means
    sizes = np.diff(np.append(starts, m))
    tb = np.concatenate([np.zeros((r, 1), dtype=np.float32), t[:, pair:][:, ::-1]], axis=1)
    _shrink_inplace(c, np.repeat(tb, sizes, axis=1)[:, None, :], mode)
    powers = np.concatenate([[level], np.arange(level, pair, -1)]).astype(np.float32)  # S_level, then D_k / 2**k
    c *= np.repeat(np.float32(2.0) ** -powers, sizes)
    s = c[:, :, :1]
    for j in range(deep, 0, -1):
        w = m >> j
        d = c[:, :, w : 2 * w]
        nxt = np.empty((r, q, 2 * w), dtype=np.float32)
        np.add(s, d, out=nxt[..., 0::2])
        np.subtract(s, d, out=nxt[..., 1::2])
        s = nxt
    s = s.reshape(r, n >> pair)
    if not pair:
        out[...] = s
    for k in range(pair, 0, -1):
        d = details[k - 1]
        _shrink_inplace(d, t[:, k - 1 : k], mode)
        d *= np.float32(2.0**-k)
        nxt = out if k == 1 else np.empty((r, 2 * s.shape[1]), dtype=np.float32)
        np.add(s, d, out=nxt[:, 0::2])
        np.subtract(s, d, out=nxt[:, 1::2])
        s = nxt


def denoise(
    flux: np.ndarray,
    wavelet: str = "haar",
    level: int | None = None,
    threshold: str = "max_level",
    factor: float = 0.05,
    mode: str = "soft",
    chunk_size: int = 64,
    engine: str = "auto",
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Wavelet-denoise each row of ``flux`` (shape (n, Nd) or (Nd,)); float32 out, same shape.

    Parameters
    ----------
    wavelet : PyWavelets name; the paper uses ``"haar"`` (fast NumPy path).
    level : decomposition levels; None = Eq. 4 (:func:`paper_level`).
    threshold : ``"max_level"`` (default: T_k = factor x max |detail of level k|,
        see the module docstring), ``"max_all"`` (one T = factor x max |detail|
        over all levels of the spectrum), or
        ``"universal"`` (sigma sqrt(2 ln Nd), sigma = MAD(finest)/0.6745; factor ignored).
    factor : the paper's 0.05. ``factor=0`` returns the input (perfect reconstruction).
    mode : ``"soft"`` (paper, Eq. 5) or ``"hard"``.
    engine : ``"auto"`` (NumPy Haar when possible, else PyWavelets),
        ``"numpy"`` (require the fast path) or ``"pywt"``.
    out : a float32 array of the input's shape to write the result into (returned).

    Rows containing NaN/inf come back as all-NaN (the threshold is undefined);
    the :class:`rgbkit.preprocess.Preprocessor` flags such spectra before this step.
    """
    x = np.asarray(flux, dtype=np.float32)
    one_d = x.ndim == 1
    x2 = np.atleast_2d(x)
    if x2.ndim != 2:
        raise ValueError(f"denoise expects a 1D or 2D array, got shape {x.shape}")
    n_pix = x2.shape[-1]
    if level is None:
        level = paper_level(n_pix, wavelet)
    max_level = pywt.dwt_max_level(n_pix, pywt.Wavelet(wavelet).dec_len)
    if level < 1 or level > max(max_level, 0):
        raise ValueError(
            f"cannot decompose {n_pix} pixels with {wavelet!r} into {level} levels "
            f"(at most {max_level}); the spectrum has fewer pixels than the wavelet needs"
        )
    if threshold not in THRESHOLD_RULES:
        raise ValueError(f"unknown threshold rule {threshold!r}; use one of {THRESHOLD_RULES}")
    if mode not in ("soft", "hard"):
        raise ValueError(f"mode must be 'soft' or 'hard', got {mode!r}")
    fast_ok = wavelet == "haar" and n_pix % (1 << level) == 0
    if engine == "numpy" and not fast_ok:
        raise ValueError(f"the NumPy path needs the Haar wavelet and {n_pix} divisible by 2**{level}")
    if engine not in ("auto", "numpy", "pywt"):
        raise ValueError(f"engine must be 'auto', 'numpy' or 'pywt', got {engine!r}")
    fast = fast_ok and engine != "pywt"

    if out is None:
        out = np.empty_like(x)
    elif out.shape != x.shape or out.dtype != np.float32:
        raise ValueError(f"out must be float32 of shape {x.shape}, got {out.dtype} {out.shape}")
    res, out = out, out.reshape(x2.shape)  # a view: writing into out fills res
    with np.errstate(invalid="ignore"):
        for s in range(0, x2.shape[0], chunk_size):
            block = x2[s : s + chunk_size]
            if fast:
                _haar_denoise(block, level, threshold, factor, mode, out[s : s + chunk_size])
                continue
            coeffs = pywt.wavedec(block, wavelet, level=level, axis=-1)
            ts = _thresholds(coeffs[1:], threshold, factor, n_pix)
            for d, t in zip(coeffs[1:], ts):
                _shrink_inplace(d, t, mode)
            out[s : s + chunk_size] = pywt.waverec(coeffs, wavelet, axis=-1)[..., :n_pix]
    bad = nonfinite_mask(x2)
    if bad is not None:
        out[bad.any(axis=-1)] = np.nan
    return res
