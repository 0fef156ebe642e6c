import numpy as np
import pytest

from rgbkit import metrics


def test_m1_m2_known_values():
    t = np.array([1.0, 2.0, 4.0])
    p = np.array([1.5, 1.0, 5.0])
    assert metrics.m1(t, p) == pytest.approx((0.5 + 1.0 + 1.0) / 3)
    assert metrics.m2(t, p) == pytest.approx(100 * (0.5 + 0.5 + 0.25) / 3)
    with pytest.raises(ValueError, match="lengths differ"):
        metrics.m1(t, p[:2])
    with pytest.raises(ValueError, match="undefined"):
        metrics.m2([0.0, 1.0], [1.0, 1.0])


def test_coverage_gaussian_and_calibration():
    rng = np.random.default_rng(0)
    n = 20000
    truth = rng.uniform(1, 10, n)
    sigma = rng.uniform(0.1, 1.0, n)
    mean = truth + rng.normal(0, 1, n) * sigma
    cov = metrics.coverage(truth, mean, sigma)
    assert cov == pytest.approx(0.6827, abs=0.01)
    assert metrics.coverage(truth, mean, sigma, z=2) == pytest.approx(0.9545, abs=0.006)
    # Spread reported too small by 2: coverage drops, calibration recovers factor 2.
    small = sigma / 2
    assert metrics.coverage(truth, mean, small) == pytest.approx(0.383, abs=0.01)
    s = metrics.fit_spread_scale(truth, mean, small)
    assert s == pytest.approx(2.0, rel=0.03)
    assert metrics.coverage(truth, mean, small * s) == pytest.approx(0.6827, abs=0.002)


def test_contamination_completeness():
    # 10 true RGB (1), 90 RC (0); classifier keeps 8 RGB and wrongly 2 RC.
    t = np.array([1] * 10 + [0] * 90)
    p = np.array([1] * 8 + [0] * 2 + [1] * 2 + [0] * 88)
    assert metrics.completeness(t, p) == pytest.approx(0.8)
    assert metrics.contamination(t, p) == pytest.approx(0.2)
    assert metrics.completeness(np.array(["RC", "RGB"]), np.array(["RGB", "RGB"]), positive="RGB") == 1.0
    assert np.isnan(metrics.contamination(t, np.zeros_like(t)))
