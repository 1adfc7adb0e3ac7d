"""A table that spreads under noise (``shrink=true``): replicate tables, their reliability,
shrinkage of group effects toward a common curve, concave curves, and the exact optimum.

Inputs are replicate tables: per group g, ``reps[g]`` of shape [R, n_g], replicate r's
gains at the group's ladder sizes (every replicate shares the sizes). Then

1. the **common curve** ``c(n)``: at every measured size, the mean over groups of each
   group's mean curve (piecewise linear through (0, 0), the last slope continued), made
   concave (:func:`concave`);
2. the **group effects** ``e_g(n) = mean_r reps[g][r, n] - c(n)`` at the measured sizes;
3. their **reliability** from the replicates (:func:`icc`): one-way random-effects ICC of
   the per-entry effects, and the reliability of the mean of R replicates; the shrinkage
   factor ``lambda`` is its one-sided 95% lower bound (evidence must survive the noise:
   pure noise gives 0 in 95% of tables); with one replicate there is no noise estimate
   and ``lambda = 0``;
4. the **shrunk table**: ``c(n) + lambda * e_g(n)`` at the group's sizes, made concave,
   extrapolated linearly past the last size (never flat, so concentrating costs).

Pure noise gives ``lambda`` near 0: every group follows ``c``, and the exact optimum
(:func:`exact_optimum`, greedy with ties to the group with fewer picks) spreads the batch
evenly over the groups (cluster-stratified random). A group effect that survives the noise
keeps ``lambda`` near 1 and lets the batch concentrate. Pure numpy.
"""

from __future__ import annotations

import numpy as np

from strategies.mgral.lut import GainTable


def concave(sizes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The concave curve closest to the points (0, 0), (sizes, values) in slope terms:
    pool-adjacent-violators on the segment slopes (weights: segment lengths), so slopes
    never increase; returns the new values at ``sizes`` (increasing, >= 1)."""
    x = np.concatenate([[0.0], np.asarray(sizes, np.float64)])
    y = np.concatenate([[0.0], np.asarray(values, np.float64)])
    if len(x) < 3:
        return y[1:].copy()
    w = np.diff(x)
    slopes = np.diff(y) / w
    blocks: list[list[float]] = []  # [slope, weight, count]
    for s, wt in zip(slopes, w):
        blocks.append([s, wt, 1])
        while len(blocks) > 1 and blocks[-2][0] < blocks[-1][0]:  # an increase: pool
            s2, w2, c2 = blocks.pop()
            s1, w1, c1 = blocks.pop()
            blocks.append([(s1 * w1 + s2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    out = np.concatenate([[b[0]] * int(b[2]) for b in blocks])
    return np.cumsum(out * w)


def icc(entries: np.ndarray) -> dict:
    """Agreement of replicate tables. ``entries`` [R, E]: replicate r's value of entry e.
    Returns ``icc`` (one-way random, single replicate), ``reliability`` (of the mean of
    the R replicates, ``1 - MSW / MSB``), ``reliability_lower`` (its one-sided 95% lower
    bound, ``1 - F_0.95 / (MSB / MSW)`` with F on (E - 1, E (R - 1)) degrees of freedom,
    at least 0: pure noise gives 0 in 95% of tables), ``sd_within`` (replicate noise) and
    ``sd_between`` (of the entries' true values); None where R < 2 or E < 2."""
    a = np.asarray(entries, np.float64)
    r, e = a.shape if a.ndim == 2 else (0, 0)
    if r < 2 or e < 2:
        return {"icc": None, "reliability": None, "reliability_lower": None, "sd_within": None,
                "sd_between": None}
    msw = float(a.var(0, ddof=1).mean())
    msb = float(r * a.mean(0).var(ddof=1))
    s2b = max(0.0, (msb - msw) / r)
    single = (msb - msw) / (msb + (r - 1) * msw) if msb + (r - 1) * msw > 0 else 0.0
    rel = s2b / (s2b + msw / r) if s2b + msw / r > 0 else 0.0
    from scipy.stats import f as fisher

    crit = float(fisher.ppf(0.95, e - 1, e * (r - 1)))
    if msb <= 0:  # no spread between entries at all: nothing to trust
        lower = 0.0
    else:
        lower = 1.0 if msw <= 0 else max(0.0, 1.0 - crit * msw / msb)
    return {"icc": float(single), "reliability": float(rel), "reliability_lower": float(lower),
            "sd_within": float(np.sqrt(msw)), "sd_between": float(np.sqrt(s2b))}


def _curve(sizes: np.ndarray, values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Piecewise linear through (0, 0) and the points, last slope continued past the end."""
    x = np.concatenate([[0.0], sizes.astype(np.float64)])
    y = np.concatenate([[0.0], values])
    out = np.interp(at, x, y)
    slope = (y[-1] - y[-2]) / (x[-1] - x[-2])
    return np.where(at > x[-1], y[-1] + slope * (at - x[-1]), out)


def shrunk_table(sizes: list[np.ndarray], reps: list[np.ndarray], group_of: np.ndarray,
                 floor_reliability: float | None = None) -> tuple[GainTable, dict]:
    """The shrunk table and what it measured (see the module docstring). ``reps[g]``:
    [R, len(sizes[g])]. ``floor_reliability``: use this lambda instead of the measured
    one (tests, ablations)."""
    sizes = [np.asarray(s, np.int64) for s in sizes]
    reps = [np.asarray(v, np.float64).reshape(-1, len(s)) for v, s in zip(reps, sizes)]
    live = [g for g, s in enumerate(sizes) if len(s)]
    knots = np.unique(np.concatenate([sizes[g] for g in live])) if live else np.zeros(0, np.int64)
    means = {g: reps[g].mean(0) for g in live}
    common = (np.mean([_curve(sizes[g], means[g], knots.astype(np.float64)) for g in live], 0)
              if live else np.zeros(0))
    common = concave(knots, common) if len(knots) else common
    c_at = {int(k): float(v) for k, v in zip(knots, common)}
    effects = [reps[g] - np.array([c_at[int(n)] for n in sizes[g]]) for g in live]
    rel = icc(np.concatenate(effects, 1)) if effects else icc(np.zeros((0, 0)))
    lam = floor_reliability if floor_reliability is not None else (rel["reliability_lower"] or 0.0)
    gains = []
    for g, s in enumerate(sizes):
        if not len(s):
            gains.append(np.zeros(0))
            continue
        base = np.array([c_at[int(n)] for n in s])
        gains.append(concave(s, base + lam * (means[g] - base)))
    table = GainTable(sizes, gains, group_of, extrapolate="linear")
    spread = [float(np.ptp(means[g] - np.array([c_at[int(n)] for n in sizes[g]]))) for g in live]
    return table, {**rel, "shrinkage": float(lam), "replicates": int(reps[live[0]].shape[0]) if live else 0,
                   "common_curve": {int(k): float(v) for k, v in c_at.items()},
                   "effect_range": max(spread, default=0.0)}


def exact_optimum(table: GainTable, budget: int) -> np.ndarray:
    """Per-group counts [G] of the table's best batch of ``min(budget, M)`` images: greedy
    on marginal gains, exact for a separable concave table; ties go to the group with
    fewer picks, then the lower index (so equal curves give an even spread)."""
    budget = max(0, min(int(budget), table.candidates))
    sizes = table.group_sizes()
    counts = np.zeros(table.groups, np.int64)
    for _ in range(budget):
        now = table.group_gains(counts[None, :].astype(np.float64))[0]
        nxt = table.group_gains((counts + 1)[None, :].astype(np.float64))[0]
        marginal = np.where(counts < sizes, nxt - now, -np.inf)
        best = np.flatnonzero(marginal >= marginal.max() - 1e-12)
        g = int(best[np.argmin(counts[best])])
        counts[g] += 1
    return counts


def batch_values(table: GainTable, budget: int, picked: np.ndarray, rng: np.random.Generator,
                 draws: int = 200) -> dict:
    """The estimated gain of ``picked`` beside the table's optimum and the mean of
    ``draws`` random batches of the same size, and the gap of ``picked``: (optimum -
    picked) / (optimum - random), 0 at the optimum, 1 at random (None when they tie)."""
    k = min(int(budget), table.candidates)
    opt = float(table.lookup(exact_optimum(table, k)))
    masks = np.zeros((draws, table.candidates))
    for d in range(draws):
        masks[d, rng.choice(table.candidates, k, replace=False)] = 1
    rand = float(table.lookup_batch(table.counts_batch(masks)).mean())
    chosen = float(table.estimate(np.asarray(picked, np.int64)))
    gap = (opt - chosen) / (opt - rand) if opt - rand > 1e-12 else None
    return {"estimated_gain": chosen, "optimum_gain": opt, "random_gain": rand, "agent_gap": gap}
