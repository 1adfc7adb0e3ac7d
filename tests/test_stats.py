"""Statistics on cases checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from albench import stats


def test_aubc_straight_line_and_constant() -> None:
    x = np.arange(0, 11, dtype=float)
    assert stats.aubc(x, x) == pytest.approx(5.0)  # area 50 over range 10
    assert stats.aubc(x, np.full_like(x, 0.37)) == pytest.approx(0.37)
    assert stats.aubc([100, 200, 400], [0.2, 0.4, 0.4]) == pytest.approx((30 + 80) / 300)
    assert stats.aubc([50], [0.3]) == 0.3
    with pytest.raises(ValueError):
        stats.aubc([1, 2], [1.0])


def test_bootstrap_contains_mean_and_shrinks_with_runs() -> None:
    gen = np.random.default_rng(1)
    few = gen.normal(0.5, 0.05, size=5)
    many = gen.normal(0.5, 0.05, size=200)
    p_few, lo_few, hi_few = stats.stratified_bootstrap_ci(few, rng=2)
    p_many, lo_many, hi_many = stats.stratified_bootstrap_ci(many, rng=2)
    assert p_few == pytest.approx(few.mean()) and p_many == pytest.approx(many.mean())
    assert lo_few <= 0.5 <= hi_few and lo_many <= 0.5 <= hi_many
    assert hi_many - lo_many < hi_few - lo_few


def test_bootstrap_identical_runs_zero_width_and_per_point() -> None:
    point, low, high = stats.stratified_bootstrap_ci(np.full(4, 0.42))
    assert point == low == high == pytest.approx(0.42)
    curves = np.tile([0.1, 0.2, 0.3], (3, 1))
    point, low, high = stats.stratified_bootstrap_ci(curves)
    assert point.shape == low.shape == high.shape == (3,)
    np.testing.assert_allclose(low, high)
    np.testing.assert_allclose(point, [0.1, 0.2, 0.3])


def test_bootstrap_stratified_resamples_within_strata() -> None:
    # Two strata of constant but different scores: resampling within each keeps the pooled
    # mean fixed, so the interval has zero width (pooled resampling would not).
    a, b = np.zeros(3), np.ones(5)
    point, low, high = stats.stratified_bootstrap_ci([a, b])
    assert point == low == high == pytest.approx(5 / 8)
    assert stats.stratified_bootstrap_ci([0.1, 0.2, 0.3])[0] == pytest.approx(0.2)  # plain list
    assert stats.stratified_bootstrap_ci(np.array([1.0, 3.0]), stat=np.median)[0] == 2.0


def test_bootstrap_is_reproducible() -> None:
    x = np.array([0.1, 0.4, 0.35, 0.2])
    assert stats.stratified_bootstrap_ci(x, rng=7) == stats.stratified_bootstrap_ci(x, rng=7)


def test_probability_of_improvement() -> None:
    assert stats.probability_of_improvement([5, 6, 7], [1, 2, 3]) == 1.0
    assert stats.probability_of_improvement([1, 2, 3], [5, 6, 7]) == 0.0
    assert stats.probability_of_improvement([1, 2, 3], [1, 2, 3]) == 0.5
    # pairs: (2>1), (2=2), (2<3), (4>1), (4>2), (4>3) -> (4 + 0.5) / 6
    assert stats.probability_of_improvement([2, 4], [1, 2, 3]) == pytest.approx(4.5 / 6)
    point, low, high = stats.probability_of_improvement_ci([5, 6, 7], [1, 2, 3])
    assert point == low == high == 1.0


def test_mean_difference_paired_and_unpaired() -> None:
    x, y = np.array([0.5, 0.6, 0.7]), np.array([0.4, 0.5, 0.6])
    point, low, high = stats.mean_difference_ci(x, y, paired=True)
    assert (point, low, high) == pytest.approx((0.1, 0.1, 0.1))  # constant per-seed gain
    point, low, high = stats.mean_difference_ci(x, y, paired=False)
    assert point == pytest.approx(0.1) and low < 0.1 < high


def test_labels_to_reach_interpolates() -> None:
    x, y = [100, 200, 300], [0.2, 0.4, 0.6]
    assert stats.labels_to_reach(x, y, 0.5) == pytest.approx(250.0)  # halfway 0.4 -> 0.6
    assert stats.labels_to_reach(x, y, 0.25) == pytest.approx(125.0)
    assert stats.labels_to_reach(x, y, 0.4) == pytest.approx(200.0)
    assert stats.labels_to_reach(x, y, 0.1) == 100.0  # reached at the first round
    assert math.isnan(stats.labels_to_reach(x, y, 0.7))
    assert stats.labels_to_reach([0, 10, 20], [0.5, 0.3, 0.9], 0.6) == pytest.approx(10 + 10 * 0.5)


def test_curve_helpers_and_standard_error() -> None:
    np.testing.assert_allclose(stats.mean_curve([[1, 2, 3], [3, 4]]), [2, 3])
    assert stats.stack_curves([[1, 2, 3], [3, 4, 5]]).shape == (2, 3)
    assert stats.standard_error([1.0, 2.0, 3.0]) == pytest.approx(1 / math.sqrt(3))
    assert stats.standard_error([0.4]) == 0.0
