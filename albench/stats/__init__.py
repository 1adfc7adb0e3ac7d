"""Statistics for active-learning curves: small pure functions over NumPy arrays.

:mod:`albench.stats.bootstrap` follows *rliable* (Agarwal et al., 2021, "Deep RL at the edge
of the statistical precipice"): percentile bootstrap intervals over runs (seeds), stratified
by task/setting when several are pooled, the probability of improvement P(X > Y), AUBC and
curve helpers. :mod:`albench.stats.fewseed` adds what stays honest with few seeds: one entry
point, :func:`mean_interval` (and :func:`paired_interval`), that picks a Student-t interval
or the bootstrap by the number of runs and names the method it used.

Every name of both modules is importable from ``albench.stats``.
"""

from __future__ import annotations

from albench.stats.bootstrap import (aubc, labels_to_reach, mean_curve, mean_difference_ci,
                                     probability_of_improvement,
                                     probability_of_improvement_ci, stack_curves,
                                     standard_error, stratified_bootstrap_ci)
from albench.stats.fewseed import (BOOTSTRAP_MIN_N, Correlation, Interval, MeanSD,
                                   improvement_probability, mean_interval, mean_sd,
                                   paired_interval, paired_win_rate, spearman,
                                   wilson_interval)

__all__ = [
    "aubc", "stratified_bootstrap_ci", "probability_of_improvement",
    "probability_of_improvement_ci", "mean_difference_ci", "labels_to_reach", "stack_curves",
    "mean_curve", "standard_error",
    "BOOTSTRAP_MIN_N", "Interval", "mean_interval", "paired_interval",
    "improvement_probability", "wilson_interval", "paired_win_rate", "Correlation", "spearman",
    "MeanSD", "mean_sd",
]
