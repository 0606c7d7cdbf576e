"""Agreement figures checked against values computed by hand."""

import pytest

from scoring import metrics


def test_spearman_perfect_and_reversed():
    assert metrics.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert metrics.spearman([1, 2, 3, 4], [40, 30, 20, 10]) == pytest.approx(-1.0)


def test_spearman_averages_tied_ranks():
    # x ranks: 1, 2.5, 2.5, 4; y ranks: 1, 2, 3, 4 -> pearson of those ranks.
    x, y = [1, 5, 5, 9], [1, 2, 3, 4]
    rx, ry = [1, 2.5, 2.5, 4], [1, 2, 3, 4]
    assert metrics.spearman(x, y) == pytest.approx(metrics.pearson(rx, ry))
    assert metrics.spearman(x, y) == pytest.approx(0.9486833, rel=1e-6)


def test_constant_prediction_has_zero_correlation():
    assert metrics.spearman([50, 50, 50], [1, 2, 3]) == 0.0


def test_mae_band_and_top_k():
    assert metrics.mae([10, 20], [20, 40]) == 15
    assert metrics.band(90) == "strong" and metrics.band(70) == "plausible"
    assert metrics.band(40) == "weak" and metrics.band(39) == "no"
    assert metrics.band_agreement([90, 70, 10], [95, 50, 0]) == pytest.approx(2 / 3)
    assert metrics.top_k_overlap([5, 4, 3, 2, 1], [1, 4, 5, 2, 3], k=2) == 1


def test_summary_keys():
    s = metrics.summary([90, 10], [80, 20], k=1)
    assert s["n"] == 2 and s["top1"] == 1 and s["mae"] == 10.0 and s["spearman"] == 1.0
