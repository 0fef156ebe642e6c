"""Science plots (HR maps, density, residuals, classifier curve, clusters, catalog comparison):
each renders to Bokeh and shows the numbers it should."""
import holoviews as hv
import numpy as np
import pandas as pd
import pytest

from rgbkit import plots


def render(obj):
    model = hv.render(obj, backend="bokeh")
    assert model is not None
    return model


def only(overlay, kind, label=None):
    """The one element of ``kind`` (and ``label``) in an overlay."""
    found = [e for e in overlay if isinstance(e, kind) and (label is None or e.label == label)]
    assert len(found) == 1, [type(e).__name__ + ":" + e.label for e in overlay]
    return found[0]


def test_hr_map_median_per_bin_and_min_count():
    # 4 stars in one bin (ages 1, 2, 3, 10 -> median 2.5), 2 stars in another (below min_count 3)
    teff = np.array([4050, 4060, 4070, 4080, 4550, 4560.0])
    logg = np.array([2.05, 2.06, 2.07, 2.08, 3.05, 3.06])
    age = np.array([1, 2, 3, 10, 5, 6.0])
    obj = plots.hr_map(teff, logg, age, bins=(np.arange(4000, 4701, 100), np.arange(2.0, 3.21, 0.1)), min_count=3)
    render(obj)
    grid = obj.dimension_values(2, flat=False)  # (logg bins, teff bins)
    assert grid.shape == (12, 7)
    assert grid[0, 0] == pytest.approx(2.5)
    assert np.isnan(grid[10, 5])  # 2 stars < min_count
    assert np.sum(np.isfinite(grid)) == 1
    assert "4 of 6 stars" in obj.opts.get().kwargs["title"]
    mean = plots.hr_map(teff, logg, age, statistic="mean", bins=(np.arange(4000, 4701, 100), np.arange(2.0, 3.21, 0.1)))
    assert mean.dimension_values(2, flat=False)[0, 0] == pytest.approx(4.0)
    with pytest.raises(ValueError, match="lengths differ"):
        plots.hr_map(teff, logg[:3], age)


def test_pred_truth_density_counts_and_title():
    rng = np.random.default_rng(0)
    t = rng.uniform(1, 10, 500)
    p = t * (1 + 0.1 * rng.standard_normal(500))
    p[0] = np.nan  # dropped
    obj = plots.pred_truth_density(t, p, bins=20)
    render(obj)
    mesh, line = only(obj, hv.QuadMesh), only(obj, hv.Curve)
    counts = mesh.dimension_values(2, flat=False)
    assert np.nansum(counts) == 499
    lo, hi = line.dimension_values(0)
    assert line.dimension_values(1).tolist() == [lo, hi]  # the 1:1 line
    m2 = 100 * np.mean(np.abs(p[1:] - t[1:]) / t[1:])
    assert f"M2 = {m2:.1f}%" in obj.opts.get().kwargs["title"]


def test_residual_hist_median_and_relative():
    t = np.array([1.0, 2.0, 4.0, 8.0, 10.0])
    p = np.array([1.5, 2.0, 3.0, 8.8, 10.0])
    obj = plots.residual_hist(t, p, bins=5)
    render(obj)
    hist, vline = only(obj, hv.Histogram), only(obj, hv.VLine)
    assert hist.dimension_values(1).sum() == 5
    assert vline.data == pytest.approx(0.0)  # residuals 0.5, 0, -1, 0.8, 0 -> median 0
    rel = plots.residual_hist(t, p, relative=True)
    assert only(rel, hv.VLine).data == pytest.approx(0.0)
    assert "std" in obj.opts.get().kwargs["title"]


def test_fractional_uncertainty_hist():
    mean = np.array([2.0, 4.0, 5.0, 10.0])
    std = np.array([0.2, 0.8, 1.5, 1.0])  # 10%, 20%, 30%, 10%
    obj = plots.fractional_uncertainty_hist(std, mean, bins=4)
    render(obj)
    assert only(obj, hv.Histogram).dimension_values(1).sum() == 4
    assert only(obj, hv.VLine).data == pytest.approx(0.15)
    assert "15.0%" in obj.opts.get().kwargs["title"]
    with pytest.raises(ValueError, match="positive"):
        plots.fractional_uncertainty_hist([0.1], [-1.0])


def test_cluster_ages_plot_shows_table():
    table = pd.DataFrame({"cluster": ["M67", "NGC 2420"], "age": [4.1, 3.0], "age_spread": [0.4, 0.5],
                          "truth_age": [4.0, np.nan], "lit_age": [4.0, 3.3], "lit_low": [3.5, 2.8],
                          "lit_high": [4.8, 3.8]})
    stars = pd.DataFrame({"cluster": ["M67"] * 3 + ["NGC 2420"] * 2, "used": [True, True, False, True, True],
                          "age": [3.9, 4.3, 9.0, 2.8, 3.2]})
    obj = plots.cluster_ages_plot(table, stars)
    render(obj)
    scatters = {e.label: e for e in obj if isinstance(e, hv.Scatter)}
    assert scatters["members used"].dimension_values(1).tolist() == [3.9, 4.3, 2.8, 3.2]
    assert scatters["predicted (median)"].dimension_values(1).tolist() == [4.1, 3.0]
    assert scatters["literature"].dimension_values(1).tolist() == [4.0, 3.3]
    assert only(obj, hv.ErrorBars, "1.4826 MAD").dimension_values(2).tolist() == [0.4, 0.5]
    lit = only(obj, hv.ErrorBars, "literature range")
    assert lit.dimension_values(2).tolist() == pytest.approx([0.5, 0.5])  # 4.0 - 3.5, 3.3 - 2.8
    assert lit.dimension_values(3).tolist() == pytest.approx([0.8, 0.5])
    assert not [e for e in obj if e.label.startswith(("likelihood", "predicted (likelihood)"))]  # no age_like column


def test_cluster_ages_plot_shows_likelihood_age_with_its_interval():
    table = pd.DataFrame({"cluster": ["M67", "NGC 2420"], "age": [4.6, 3.8], "age_spread": [0.4, 0.5],
                          "age_like": [4.2, 3.4], "age_like_lo": [3.9, 2.9], "age_like_hi": [4.7, 4.1]})
    obj = plots.cluster_ages_plot(table)
    render(obj)
    scatters = {e.label: e for e in obj if isinstance(e, hv.Scatter)}
    assert scatters["predicted (likelihood)"].dimension_values(1).tolist() == [4.2, 3.4]
    bars = only(obj, hv.ErrorBars, "likelihood 68%")
    assert bars.dimension_values(2).tolist() == pytest.approx([0.3, 0.5])  # 4.2 - 3.9, 3.4 - 2.9
    assert bars.dimension_values(3).tolist() == pytest.approx([0.5, 0.7])


def test_contamination_completeness_curve_numbers():
    y = np.array(["RGB"] * 4 + ["RC"] * 4)
    p = np.array([0.9, 0.8, 0.7, 0.2, 0.6, 0.1, 0.1, 0.1])
    obj = plots.contamination_completeness_curve({"validation": y}, {"validation": p}, threshold=0.5)
    render(obj)
    curve = only(obj, hv.Curve)
    th = curve.dimension_values("threshold")
    cont = curve.dimension_values(0)
    comp = curve.dimension_values(1)
    i = np.argmin(np.abs(th - 0.5))
    # at 0.5: called RGB = 0.9, 0.8, 0.7, 0.6 -> 3 RGB + 1 RC: contamination 25%, completeness 75%
    assert cont[i] == pytest.approx(25.0) and comp[i] == pytest.approx(75.0)
    marked = [s for s in obj if isinstance(s, hv.Scatter) and s.label.startswith("validation")][0]
    assert marked.dimension_values(0)[0] == pytest.approx(25.0)
    paper = [s for s in obj if isinstance(s, hv.Scatter) and s.label.startswith("paper")][0]
    assert paper.dimension_values(0).tolist() == pytest.approx([0.4, 0.9])
    with pytest.raises(ValueError, match="different sets"):
        plots.contamination_completeness_curve({"a": y}, {"b": p})


def test_compare_catalogs_matches_by_id():
    a = pd.DataFrame({"obsid": [1, 2, 3, 4, 5], "age": [2.0, 4.0, 6.0, 8.0, 10.0]})
    b = pd.DataFrame({"obsid": [5, 4, 3, 2, 99], "age": [9.0, 7.5, 6.0, 3.0, 1.0]})
    obj = plots.compare_catalogs(a, b)
    render(obj)
    left, right = obj
    sc = only(left, hv.Scatter)
    assert len(sc) == 4  # ids 2..5 match
    d = sc.dimension_values(0) - sc.dimension_values(1)
    assert sorted(d.tolist()) == [0.0, 0.5, 1.0, 1.0]
    assert only(right, hv.VLine).data == pytest.approx(0.75)
    assert "n = 4" in left.opts.get().kwargs["title"]
    with pytest.raises(ValueError, match="lacks column"):
        plots.compare_catalogs(a, b.rename(columns={"obsid": "id"}))


def test_label_scatter_colour_and_nan():
    x = np.array([1.0, 1.2, np.nan, 1.5])
    y = np.array([9.0, 6.0, 5.0, 3.0])
    c = np.array([0.1, 0.0, -0.1, -0.2])
    obj = plots.label_scatter(x, y, c, "mass", "age", "[Fe/H]", logy=True)
    render(obj)
    assert obj.dimension_values(0).tolist() == [1.0, 1.2, 1.5]
    assert obj.dimension_values(2).tolist() == [0.1, 0.0, -0.2]
    assert "3 stars" in obj.opts.get().kwargs["title"]
    render(plots.label_scatter(x, y))
    with pytest.raises(ValueError, match="color has length"):
        plots.label_scatter(x, y, c[:2])


def test_preprocessing_steps_panels_and_zero_pixels():
    wl = np.linspace(3800, 9000, 500)
    grid = np.arange(4000.0, 4100.0)
    res = np.ones(100)
    res[:7] = 0
    obj = plots.preprocessing_steps(wl, np.ones(500), grid, {"resampled": res, "normalised": res / 2,
                                                             "denoised": res / 3}, title="star")
    render(obj)
    assert len(obj) == 4
    zeros = [e for e in obj.traverse(lambda e: e, [hv.Scatter])]
    assert len(zeros) == 1 and len(zeros[0]) == 7
    assert len(plots.preprocessing_steps(wl, np.ones(500), grid, {"denoised": res})) == 2
    with pytest.raises(ValueError, match="unknown stages"):
        plots.preprocessing_steps(wl, np.ones(500), grid, {"smoothed": res})
    with pytest.raises(ValueError, match="shape"):
        plots.preprocessing_steps(wl, np.ones(500), grid, {"denoised": res[:50]})


def test_network_input_image_rows_are_bands():
    x = np.arange(64 * 64, dtype=float).reshape(64, 64)
    obj = plots.network_input_image(x)
    render(obj)
    # band b at y = b + 0.5 (the axis is inverted, so band 0, 4000-4064 A, is the top row)
    assert obj[0.5, 0.5] == x[0, 0]
    assert obj[63.5, 63.5] == x[63, 63]
    assert obj[10.5, 2.5] == x[2, 10]
    assert "4000-8096" in obj.opts.get().kwargs["title"]
    with pytest.raises(ValueError, match="2D"):
        plots.network_input_image(x.ravel())


def test_architecture_diagram_one_box_per_stage():
    from rgbkit.models.densenet import DenseNet1D, layer_table, tiny_config

    t = layer_table(DenseNet1D(tiny_config()))
    obj = plots.architecture_diagram(t)
    render(obj)
    boxes = [e for e in obj if isinstance(e, hv.Rectangles)][0]
    assert len(boxes) == len(t) == 8
    labels = [e for e in obj if isinstance(e, hv.Labels)][0]
    assert any("denseblock1" in s for s in labels.dimension_values(2))
