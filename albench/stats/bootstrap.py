"""Bootstrap estimates and curve summaries for active-learning curves.

Interval estimates follow the approach of *rliable* (Agarwal et al., 2021, "Deep RL at
the edge of the statistical precipice"): point estimates with percentile bootstrap
confidence intervals obtained by resampling runs (seeds) with replacement, stratified by
task/setting when several are pooled, and the probability of improvement P(X > Y) instead
of a bare difference of means. The percentile bootstrap needs enough runs to be an
interval (about 30; with 3 it returns their range): :mod:`albench.stats.fewseed` picks
the method by the number of runs.

Conventions: a *curve* is a pair ``x`` (labeled images per round, increasing) and ``y``
(a metric per round). ``scores`` arrays have runs on axis 0. Every function that draws
random numbers takes ``rng`` (a :class:`numpy.random.Generator`, an int seed, or ``None``
for the fixed seed 0, so that reports are reproducible).
"""

from __future__ import annotations

from typing import Callable, Sequence, Union

import numpy as np
from numpy.typing import ArrayLike

RngLike = Union[np.random.Generator, int, None]
Stat = Callable[..., np.ndarray]
Estimate = tuple[float, float, float]

__all__ = [
    "aubc",
    "stratified_bootstrap_ci",
    "probability_of_improvement",
    "probability_of_improvement_ci",
    "mean_difference_ci",
    "labels_to_reach",
    "stack_curves",
    "mean_curve",
    "standard_error",
]


def _rng(rng: RngLike) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(0 if rng is None else rng)


def _interval(boot: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    low, high = np.quantile(boot, [alpha / 2, 1 - alpha / 2], axis=0)
    return low, high


def _check_alpha(alpha: float, reps: int) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    if reps < 1:
        raise ValueError(f"reps must be at least 1, got {reps}")


def aubc(x: ArrayLike, y: ArrayLike) -> float:
    """Area under the budget curve, normalised by the labeled range.

    Trapezoid area under ``y`` over ``x`` divided by ``x[-1] - x[0]``, i.e. the mean of the
    curve over the labeled range, in the units of ``y``. A single point returns ``y[0]``;
    a curve whose ``x`` does not advance returns the mean of ``y``.
    """
    xs, ys = np.asarray(x, float).ravel(), np.asarray(y, float).ravel()
    if xs.size != ys.size or xs.size == 0:
        raise ValueError(f"x and y must be non-empty and equally long, got {xs.size} and {ys.size}")
    if xs.size == 1:
        return float(ys[0])
    span = xs[-1] - xs[0]
    if span == 0:
        return float(ys.mean())
    area = np.sum((ys[1:] + ys[:-1]) / 2 * np.diff(xs))
    return float(area / span)


def stratified_bootstrap_ci(
    scores: np.ndarray | Sequence[np.ndarray],
    stat: Stat = np.mean,
    reps: int = 2000,
    alpha: float = 0.05,
    rng: RngLike = None,
) -> tuple[np.ndarray | float, np.ndarray | float, np.ndarray | float]:
    """Point estimate and percentile bootstrap ``1 - alpha`` interval of ``stat`` over runs.

    ``scores`` is a NumPy array of shape ``(runs,)`` or ``(runs, points)`` (one stratum), or
    a list of such arrays, one per task/setting, with equal trailing shapes. Each bootstrap
    replicate resamples the runs of every stratum with replacement, independently and
    keeping the stratum's size, concatenates the strata along axis 0 and applies ``stat``
    with ``axis=0`` (so ``stat`` must take an ``axis`` keyword, as NumPy reductions do).
    The point estimate is ``stat`` of the concatenated original runs.

    Returns ``(point, low, high)``: floats for ``(runs,)`` input, arrays of shape
    ``(points,)`` for ``(runs, points)`` input. Identical runs give a zero-width interval.
    """
    _check_alpha(alpha, reps)
    if isinstance(scores, np.ndarray):
        strata = [np.asarray(scores, float)]
    elif len(scores) and all(np.ndim(s) == 0 for s in scores):
        strata = [np.asarray(scores, float)]
    else:
        strata = [np.asarray(s, float) for s in scores]
    if not strata or any(s.ndim == 0 or s.shape[0] == 0 for s in strata):
        raise ValueError("every stratum needs at least one run (a non-empty array)")
    if len({s.shape[1:] for s in strata}) != 1:
        raise ValueError("all strata must have the same shape apart from the number of runs")
    gen = _rng(rng)
    point = np.asarray(stat(np.concatenate(strata, axis=0), axis=0), float)
    samples = np.concatenate(
        [s[gen.integers(0, s.shape[0], size=(reps, s.shape[0]))] for s in strata], axis=1
    )  # (reps, total runs, *points)
    low, high = _interval(np.asarray(stat(samples, axis=1), float), alpha)
    if point.ndim == 0:
        return float(point), float(low), float(high)
    return point, low, high


def probability_of_improvement(x_scores: ArrayLike, y_scores: ArrayLike) -> float:
    """P(X > Y) over all pairs of one run of X and one of Y; ties count one half.

    This is the Mann-Whitney U statistic divided by ``len(x) * len(y)``: 1.0 when every X
    run beats every Y run, 0.5 for identical samples, 0.0 when every Y run wins.
    """
    xs, ys = np.asarray(x_scores, float).ravel(), np.asarray(y_scores, float).ravel()
    if xs.size == 0 or ys.size == 0:
        raise ValueError("both samples need at least one run")
    return float(_poi(xs[None], ys[None])[0])


def _poi(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Vectorised P(X > Y) for batches: ``xs`` (b, nx), ``ys`` (b, ny) -> (b,)."""
    gt = (xs[:, :, None] > ys[:, None, :]).mean(axis=(1, 2))
    eq = (xs[:, :, None] == ys[:, None, :]).mean(axis=(1, 2))
    return gt + 0.5 * eq


def probability_of_improvement_ci(
    x_scores: ArrayLike,
    y_scores: ArrayLike,
    reps: int = 2000,
    alpha: float = 0.05,
    rng: RngLike = None,
) -> Estimate:
    """:func:`probability_of_improvement` with a bootstrap interval.

    Each replicate resamples the runs of X and of Y independently with replacement.
    Returns ``(point, low, high)``.
    """
    _check_alpha(alpha, reps)
    xs, ys = np.asarray(x_scores, float).ravel(), np.asarray(y_scores, float).ravel()
    point = probability_of_improvement(xs, ys)
    gen = _rng(rng)
    xb = xs[gen.integers(0, xs.size, size=(reps, xs.size))]
    yb = ys[gen.integers(0, ys.size, size=(reps, ys.size))]
    low, high = _interval(_poi(xb, yb), alpha)
    return point, float(low), float(high)


def mean_difference_ci(
    x_scores: ArrayLike,
    y_scores: ArrayLike,
    paired: bool,
    reps: int = 2000,
    alpha: float = 0.05,
    rng: RngLike = None,
) -> Estimate:
    """Mean of X minus mean of Y with a bootstrap interval.

    ``paired=True`` (X and Y share seeds, given in the same order) bootstraps the per-seed
    differences ``x - y``, which removes the seed-to-seed variation both share.
    ``paired=False`` resamples X and Y independently. Returns ``(point, low, high)``.
    """
    _check_alpha(alpha, reps)
    xs, ys = np.asarray(x_scores, float).ravel(), np.asarray(y_scores, float).ravel()
    if xs.size == 0 or ys.size == 0:
        raise ValueError("both samples need at least one run")
    if paired:
        if xs.size != ys.size:
            raise ValueError(f"paired samples must be equally long, got {xs.size} and {ys.size}")
        point, low, high = stratified_bootstrap_ci(xs - ys, np.mean, reps, alpha, rng)
        return float(point), float(low), float(high)
    gen = _rng(rng)
    xb = xs[gen.integers(0, xs.size, size=(reps, xs.size))].mean(axis=1)
    yb = ys[gen.integers(0, ys.size, size=(reps, ys.size))].mean(axis=1)
    low, high = _interval(xb - yb, alpha)
    return float(xs.mean() - ys.mean()), float(low), float(high)


def labels_to_reach(x: ArrayLike, y: ArrayLike, target: float) -> float:
    """The first labeled count at which the curve reaches ``target``; NaN if it never does.

    Scans rounds in order; at the first round ``i`` with ``y[i] >= target`` it returns
    ``x[i]`` if ``i`` is the first round (or the previous value is NaN), else the linear
    interpolation between rounds ``i - 1`` and ``i``:
    ``x[i-1] + (target - y[i-1]) / (y[i] - y[i-1]) * (x[i] - x[i-1])``.
    """
    xs, ys = np.asarray(x, float).ravel(), np.asarray(y, float).ravel()
    if xs.size != ys.size:
        raise ValueError(f"x and y must be equally long, got {xs.size} and {ys.size}")
    hits = np.flatnonzero(ys >= target)
    if hits.size == 0:
        return float("nan")
    i = int(hits[0])
    if i == 0 or np.isnan(ys[i - 1]):
        return float(xs[i])
    frac = (target - ys[i - 1]) / (ys[i] - ys[i - 1])
    return float(xs[i - 1] + frac * (xs[i] - xs[i - 1]))


def stack_curves(curves: Sequence[ArrayLike]) -> np.ndarray:
    """Stack per-run curves into a ``(runs, points)`` array, cut to the shortest run."""
    arrays = [np.asarray(c, float).ravel() for c in curves]
    if not arrays:
        raise ValueError("need at least one curve")
    n = min(a.size for a in arrays)
    return np.stack([a[:n] for a in arrays])


def mean_curve(curves: Sequence[ArrayLike] | np.ndarray) -> np.ndarray:
    """Point-wise mean over runs of :func:`stack_curves` (or of a ``(runs, points)`` array)."""
    stacked = curves if isinstance(curves, np.ndarray) and curves.ndim == 2 else stack_curves(curves)
    return np.asarray(stacked, float).mean(axis=0)


def standard_error(scores: ArrayLike) -> float:
    """Standard error of the mean: sample std (``ddof=1``) / sqrt(n); 0.0 for one run."""
    xs = np.asarray(scores, float).ravel()
    if xs.size == 0:
        raise ValueError("need at least one run")
    if xs.size == 1:
        return 0.0
    return float(xs.std(ddof=1) / np.sqrt(xs.size))
