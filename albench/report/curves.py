"""Aligning curves: one setting's runs as per-strategy arrays (seeds x rounds) on the rounds
every run reached, with each run's AUBC (:func:`strategy_curves`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from albench import stats
from albench.report.runs import Run

REFERENCE = "random"
UPPER_MARK = "†"


@dataclass
class StrategyCurves:
    """One strategy's runs in one setting, aligned on the rounds every run of the setting reached."""

    name: str
    upper_bound: bool
    seeds: np.ndarray  # (n,)
    rounds: np.ndarray  # (points,)
    x: np.ndarray  # (points,) mean labeled images per round
    ap50: np.ndarray  # (n, points)
    ap: np.ndarray  # (n, points)
    aubc: np.ndarray  # (n,) AUBC of AP50 per run
    runs: list[Run] = field(repr=False)

    @property
    def label(self) -> str:
        return f"{self.name} {UPPER_MARK}" if self.upper_bound else self.name


def _order(name: str, upper_bound: bool) -> tuple[int, str]:
    return (0 if name == REFERENCE else 2 if upper_bound else 1, name)


def strategy_curves(runs: list[Run]) -> tuple[list[StrategyCurves], list[str]]:
    """Per-strategy curves of one setting's runs, aligned on the rounds all of them reached.

    Returns the curves (reference first, upper bounds last) and notes about the alignment.
    """
    notes: list[str] = []
    common = sorted(set.intersection(*(set(r.rounds["round"].tolist()) for r in runs)))
    longest = max(len(r.rounds) for r in runs)
    if len(common) < longest:
        notes.append(
            f"Curves are cut to the {len(common)} round(s) every run of this setting reached "
            f"(the longest run has {longest})."
        )
    by_strategy: dict[str, list[Run]] = {}
    for run in runs:
        by_strategy.setdefault(run.strategy, []).append(run)
    out: list[StrategyCurves] = []
    for name, group in by_strategy.items():
        group = sorted(group, key=lambda r: r.seed)
        rows = [r.rounds[r.rounds["round"].isin(common)] for r in group]
        labeled = np.stack([f["n_labeled"].to_numpy(float) for f in rows])
        ap50 = np.stack([f["ap50"].to_numpy(float) for f in rows])
        ap = np.stack([f["ap"].to_numpy(float) for f in rows])
        if np.ptp(labeled, axis=0).max(initial=0) > 0:
            notes.append(f"{name}: runs differ in labeled images at the same round; x is their mean.")
        upper = any(r.upper_bound for r in group)
        out.append(
            StrategyCurves(
                name=name,
                upper_bound=upper,
                seeds=np.array([r.seed for r in group]),
                rounds=np.asarray(common),
                x=labeled.mean(axis=0),
                ap50=ap50,
                ap=ap,
                aubc=np.array([stats.aubc(lx, ly) for lx, ly in zip(labeled, ap50)]),
                runs=group,
            )
        )
    out.sort(key=lambda c: _order(c.name, c.upper_bound))
    return out, notes


def reference_curve(curves: list[StrategyCurves]) -> StrategyCurves | None:
    for c in curves:
        if c.name == REFERENCE:
            return c
    for c in curves:  # random with a non-default label
        if all(str(r.config.get("strategy")) == REFERENCE for r in c.runs):
            return c
    return None


