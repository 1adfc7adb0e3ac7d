"""MGRAL's gain table, its size ladder and the greedy fill (pure numpy, no detector)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from albench.errors import ConfigError
from strategies.mgral.lut import GainTable, greedy_select, ladder


def _table(extrapolate: str = "flat") -> GainTable:
    # group 0: concave, rising; group 1: falling; group 2: a single point.
    group_of = np.array([0] * 12 + [1] * 10 + [2] * 4)
    return GainTable(sizes=[np.array([2, 4, 8]), np.array([2, 4, 8]), np.array([3])],
                     gains=[np.array([0.06, 0.09, 0.12]), np.array([-0.02, -0.05, -0.08]),
                            np.array([0.03])],
                     group_of=group_of, extrapolate=extrapolate)


@pytest.mark.parametrize("extrapolate", ["flat", "linear"])
def test_empty_batch_gains_nothing(extrapolate):
    t = _table(extrapolate)
    assert t.lookup(np.zeros(3)) == 0.0
    assert t.estimate(np.array([], np.int64)) == 0.0
    assert t.lookup_batch(np.zeros((4, 3))).tolist() == [0.0] * 4


def test_exact_at_ladder_points_and_linear_between():
    t = _table()
    for g, (sizes, gains) in enumerate(zip(t.sizes, t.gains)):
        for n, v in zip(sizes, gains):
            c = np.zeros(3)
            c[g] = n
            assert t.lookup(c) == pytest.approx(v, abs=1e-12)
    assert t.lookup([1, 0, 0]) == pytest.approx(0.03)          # through (0, 0)
    assert t.lookup([3, 0, 0]) == pytest.approx(0.075)         # between 2 and 4
    assert t.lookup([6, 0, 0]) == pytest.approx(0.105)         # between 4 and 8
    assert t.lookup([0, 5, 0]) == pytest.approx(-0.0575)       # a quarter of the way 4 -> 8
    assert t.lookup([0, 0, 1.5]) == pytest.approx(0.015)


def test_additive_over_groups():
    t = _table()
    counts = np.array([5, 3, 2])
    parts = [t.lookup(np.eye(3)[g] * counts[g]) for g in range(3)]
    assert t.lookup(counts) == pytest.approx(sum(parts), abs=1e-12)
    assert np.allclose(t.group_gains(counts), parts)


def test_diminishing_returns_shape_preserved():
    t = _table()
    values = [t.lookup([n, 0, 0]) for n in range(0, 14)]
    marginal = np.diff(values)
    assert np.all(np.diff(marginal) <= 1e-12), "a concave ladder must interpolate to a concave curve"
    assert np.all(marginal[:8] > 0)


def test_flat_and_linear_extrapolation():
    flat, linear = _table("flat"), _table("linear")
    assert flat.lookup([20, 0, 0]) == pytest.approx(0.12)
    assert linear.lookup([12, 0, 0]) == pytest.approx(0.12 + 4 * 0.03 / 4)
    assert linear.lookup([0, 12, 0]) == pytest.approx(-0.08 - 4 * 0.03 / 4)
    # a one-point ladder continues the segment from (0, 0)
    assert linear.lookup([0, 0, 6]) == pytest.approx(0.06)
    assert flat.lookup([0, 0, 6]) == pytest.approx(0.03)
    with pytest.raises(ConfigError, match="extrapolation"):
        _table("cubic")


def test_batch_lookup_matches_single_lookups():
    t = _table("linear")
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 15, size=(50, 3))
    assert np.allclose(t.lookup_batch(counts), [t.lookup(c) for c in counts], atol=1e-12)
    # whole counts within the groups (the precomputed path) agree with direct interpolation
    inside = np.stack([rng.integers(0, n + 1, 200) for n in t.group_sizes()], axis=1)
    assert np.allclose(t.lookup_batch(inside), t.group_gains(inside).sum(1), atol=1e-12)
    assert np.allclose([t.lookup(c) for c in inside], t.group_gains(inside).sum(1), atol=1e-12)


def test_counts_from_mask_indices_and_masks():
    t = _table()
    idx = np.array([0, 1, 13, 14, 15, 25])
    mask = np.zeros(t.candidates, bool)
    mask[idx] = True
    assert t.counts_of(idx).tolist() == [2, 3, 1]
    assert t.counts_of(mask).tolist() == [2, 3, 1]
    assert t.estimate(idx) == pytest.approx(t.lookup([2, 3, 1]))
    masks = np.stack([mask, ~mask]).astype(np.float32)
    assert t.counts_batch(masks).tolist() == [[2, 3, 1], [10, 7, 3]]


def test_json_round_trip():
    t = _table("linear")
    back = GainTable.from_json(json.loads(json.dumps(t.to_json())))
    assert back.extrapolate == "linear"
    assert np.array_equal(back.group_of, t.group_of)
    counts = np.array([[3, 5, 1], [9, 0, 7]])
    assert np.array_equal(back.lookup_batch(counts), t.lookup_batch(counts))


def test_malformed_tables_are_refused():
    with pytest.raises(ValueError, match="increasing"):
        GainTable([np.array([4, 2])], [np.array([0.1, 0.2])], np.zeros(5, int))
    with pytest.raises(ValueError, match="sizes"):
        GainTable([np.array([0, 2])], [np.array([0.1, 0.2])], np.zeros(5, int))
    with pytest.raises(ValueError, match="gains"):
        GainTable([np.array([1, 2])], [np.array([0.1])], np.zeros(5, int))
    with pytest.raises(ValueError, match="group_of"):
        GainTable([np.array([1])], [np.array([0.1])], np.array([0, 1]))


def test_table_scale_has_a_floor():
    assert _table().scale() == pytest.approx(0.12)
    tiny = GainTable([np.array([1])], [np.array([1e-5])], np.zeros(3, int))
    assert tiny.scale() == pytest.approx(1e-3)


def test_ladder_default_levels():
    assert ladder(40, 8, [100] * 8) == [[5, 10, 20]] * 8
    assert ladder(10, 4, [50] * 4) == [[3, 5, 10]] * 4   # 2.5 -> 3, 5, 10 (half up)


def test_ladder_caps_dedups_and_floors():
    out = ladder(40, 4, [100, 25, 10, 0])
    assert out == [[10, 20, 40], [10, 20, 25], [10], []]
    assert ladder(2, 8, [5] * 8) == [[1]] * 8               # 0.25 B/G -> at least 1, deduplicated
    for levels in ladder(33, 5, [1, 7, 13, 40, 2], multipliers=(1, 1.5, 2, 4)):
        assert levels == sorted(set(levels)) and all(v >= 1 for v in levels)
    with pytest.raises(ConfigError, match="budget"):
        ladder(0, 4, [10] * 4)
    with pytest.raises(ConfigError, match="multipliers"):
        ladder(10, 2, [10, 10], multipliers=(1, -2))


def test_greedy_picks_budget_distinct_in_right_groups():
    t = _table()
    picks = greedy_select(t, 9, np.random.default_rng(0))
    assert len(picks) == 9 and len(set(picks.tolist())) == 9
    # marginals: group 0 gives 0.03 x2, 0.015 x2, 0.0075 x4; group 2: 0.01 x3; group 1 < 0
    assert t.group_of[picks].tolist() == [0, 0, 0, 0, 2, 2, 2, 0, 0]
    # all of M when the budget exceeds it, still distinct
    every = greedy_select(t, 100, np.random.default_rng(0))
    assert sorted(every.tolist()) == list(range(t.candidates))


def test_greedy_prefers_larger_marginal_and_spreads_on_diminishing_returns():
    group_of = np.array([0] * 5 + [1] * 5)
    t = GainTable([np.array([1, 2]), np.array([1, 2])],
                  [np.array([0.10, 0.11]), np.array([0.05, 0.10])], group_of)
    picks = greedy_select(t, 4, np.random.default_rng(3))
    # 0.10 (g0), then g1's 0.05 twice (g0 offers 0.01), then g0's 0.01 beats g1's 0 (flat)
    assert t.group_of[picks].tolist() == [0, 1, 1, 0]
    # ties between groups go to the lower index
    even = GainTable([np.array([1]), np.array([1])], [np.array([0.1]), np.array([0.1])], group_of)
    assert even.group_of[greedy_select(even, 1, np.random.default_rng(0))].tolist() == [0]


def test_greedy_within_group_order_follows_rng():
    t = _table()
    a = greedy_select(t, 6, np.random.default_rng(1))
    b = greedy_select(t, 6, np.random.default_rng(1))
    c = greedy_select(t, 6, np.random.default_rng(2))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.array_equal(t.group_of[a], t.group_of[c])  # same groups, other images
