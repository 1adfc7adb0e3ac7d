"""MGRAL's diagnostics as data: the per-round lines MGRAL writes to
``<run_dir>/diagnostics.jsonl`` (format in docs/reports.md, "MGRAL section"), paired with
the run's ``rounds.csv``, and the statistics the report shows.

- **calibration**: the table's estimated gain of the chosen batch at round t against the
  realised gain, the next round's test AP50 minus this round's (from ``rounds.csv``; the
  strategy never sees it), with Spearman's rho over all rounds and seeds;
- **cost**: MGRAL's own training per round (``t_strategy_train_s``) as a multiple of that
  round's detector training (``t_train_s``), and the table's lookup speed-up.

Statistics are small pure functions over arrays (:func:`spearman_rho`,
:func:`realised_gains`, :func:`calibration_pairs`, :func:`cost_multiples`,
:func:`lut_matrix`); reading is :func:`read_diagnostics` and :func:`collect`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from albench import stats

STRATEGY = "mgral"
DIAGNOSTICS = "diagnostics.jsonl"

# ----------------------------------------------------------------------------- statistics


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n; tied values share the mean of the ranks they span."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), float)
    sorted_vals = values[order]
    start = 0
    for end in range(1, len(values) + 1):
        if end == len(values) or sorted_vals[end] != sorted_vals[start]:
            ranks[order[start:end]] = (start + end + 1) / 2.0  # mean of ranks start+1..end
            start = end
    return ranks


def spearman_rho(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation of paired values (ties get average ranks).

    The Pearson correlation of the two rank vectors; pairs where either value is not finite
    are dropped. NaN when fewer than two pairs remain or either side is constant.
    """
    xs, ys = np.asarray(x, float).ravel(), np.asarray(y, float).ravel()
    if xs.size != ys.size:
        raise ValueError(f"x and y must be equally long, got {xs.size} and {ys.size}")
    keep = np.isfinite(xs) & np.isfinite(ys)
    xs, ys = xs[keep], ys[keep]
    if xs.size < 2:
        return math.nan
    rx, ry = _average_ranks(xs), _average_ranks(ys)
    dx, dy = rx - rx.mean(), ry - ry.mean()
    denom = math.sqrt(float(np.sum(dx * dx)) * float(np.sum(dy * dy)))
    return math.nan if denom == 0 else float(np.sum(dx * dy) / denom)


def realised_gains(rounds: Sequence[int], ap50: Sequence[float]) -> dict[int, float]:
    """``{t: ap50[t + 1] - ap50[t]}`` for every round t whose next round is present."""
    by_round = {int(r): float(v) for r, v in zip(rounds, ap50)}
    return {t: by_round[t + 1] - v for t, v in sorted(by_round.items()) if t + 1 in by_round}


def calibration_pairs(estimated: dict[int, float], realised: dict[int, float]
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rounds present in both, with the estimated and the realised gain at each."""
    common = sorted(set(estimated) & set(realised))
    return (np.array(common, int), np.array([estimated[t] for t in common], float),
            np.array([realised[t] for t in common], float))


def cost_multiples(t_strategy_train_s: Sequence[float], t_train_s: Sequence[float]) -> np.ndarray:
    """Per round, the strategy's own training seconds over the detector's training seconds.

    NaN where the detector did not train (0 s: a cached round-0 model) or a value is missing.
    """
    s = np.asarray(t_strategy_train_s, float)
    t = np.asarray(t_train_s, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(t > 0, s / np.where(t > 0, t, 1.0), np.nan)


def lut_matrix(lut: Sequence[Sequence[float]], ladder: Sequence[Sequence[int]]
               ) -> tuple[np.ndarray, np.ndarray]:
    """The table as (groups x steps) arrays of gains and candidate counts, NaN/0 padded.

    Ladders differ between groups (a ladder is capped by its group's size), so column k is
    the k-th rung of each group's ladder; the counts say how many images that rung adds.
    """
    groups = len(lut)
    steps = max((len(row) for row in lut), default=0)
    gains = np.full((groups, steps), np.nan)
    counts = np.zeros((groups, steps), int)
    for g, row in enumerate(lut):
        gains[g, : len(row)] = np.asarray(row, float)
        rung = list(ladder[g]) if g < len(ladder) else []
        counts[g, : len(rung)] = np.asarray(rung[: steps], int)
    return gains, counts


# ----------------------------------------------------------------------------- reading


@dataclass
class MgralRun:
    """One MGRAL run: its per-round diagnostics and the rounds.csv columns they pair with."""

    label: str
    seed: int
    run_id: str
    diagnostics: list[dict[str, Any]]  # sorted by round
    rounds: pd.DataFrame
    problems: list[str] = field(default_factory=list)

    @property
    def estimated(self) -> dict[int, float]:
        return {int(d["round"]): float(d["estimated_gain"]) for d in self.diagnostics
                if _finite(d.get("estimated_gain"))}

    @property
    def realised(self) -> dict[int, float]:
        return realised_gains(self.rounds["round"].to_numpy(), self.rounds["ap50"].to_numpy())

    @property
    def realised_on_reward_split(self) -> dict[int, float]:
        """The model's AP50 gain on the reward split R from round t to t + 1 (the
        strategy's own measure of improvement, recorded in its diagnostics)."""
        on_r = {int(d["round"]): float(d["model_ap50_R"]) for d in self.diagnostics
                if _finite(d.get("model_ap50_R"))}
        return realised_gains(list(on_r), list(on_r.values()))

    def column(self, name: str) -> np.ndarray:
        return self.rounds[name].to_numpy(float) if name in self.rounds else np.full(len(self.rounds), np.nan)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def read_diagnostics(run_dir: str | Path) -> tuple[list[dict[str, Any]], list[str]]:
    """MGRAL's diagnostics lines of a run (sorted by round) and notes on lines skipped."""
    path = Path(run_dir) / DIAGNOSTICS
    if not path.is_file():
        return [], []
    lines: dict[int, dict[str, Any]] = {}
    problems: list[str] = []
    for n, text in enumerate(path.read_text().splitlines(), 1):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except ValueError:
            problems.append(f"{path.name} line {n} is not JSON")
            continue
        if not isinstance(obj, dict) or obj.get("strategy") != STRATEGY or "round" not in obj:
            continue
        lines[int(obj["round"])] = obj  # a resumed run rewrote its later lines: last wins
    return [lines[r] for r in sorted(lines)], problems


def collect(runs: Iterable[Any], root: str | Path) -> list[MgralRun]:
    """The MGRAL runs among report runs (:class:`albench.report.Run`) under ``root``.

    A run counts when its config names the strategy ``mgral`` or its diagnostics hold
    MGRAL lines.
    """
    out: list[MgralRun] = []
    for run in runs:
        diags, problems = read_diagnostics(Path(root) / run.path)
        if not diags and str(run.config.get("strategy")) != STRATEGY:
            continue
        if not diags:
            problems.append(f"{run.run_id}: no MGRAL lines in {DIAGNOSTICS}")
        out.append(MgralRun(run.strategy, run.seed, run.run_id, diags, run.rounds, problems))
    return sorted(out, key=lambda m: (m.label, m.seed))


def by_label(runs: list[MgralRun]) -> dict[str, list[MgralRun]]:
    groups: dict[str, list[MgralRun]] = {}
    for run in runs:
        groups.setdefault(run.label, []).append(run)
    return groups


def pooled_calibration(runs: list[MgralRun], on: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """Estimated and realised gains over all rounds and seeds of ``runs``; the realised
    gain on the test split (``on="test"``) or on the reward split (``on="R"``)."""
    est: list[float] = []
    real: list[float] = []
    for run in runs:
        realised = run.realised if on == "test" else run.realised_on_reward_split
        _, e, r = calibration_pairs(run.estimated, realised)
        est += e.tolist()
        real += r.tolist()
    return np.array(est, float), np.array(real, float)


def _diag_values(runs: list[MgralRun], key: str) -> np.ndarray:
    vals = [float(d[key]) for run in runs for d in run.diagnostics if _finite(d.get(key))]
    return np.array(vals, float)


def summary_rows(runs: list[MgralRun]) -> list[dict[str, Any]]:
    """One row per MGRAL label: calibration, cost and speed-up figures."""
    rows = []
    for label, group in by_label(runs).items():
        est, real = pooled_calibration(group)
        est_r, real_r = pooled_calibration(group, on="R")
        multiples = np.concatenate([cost_multiples(r.column("t_strategy_train_s"), r.column("t_train_s"))
                                    for r in group]) if group else np.array([])
        multiples = multiples[np.isfinite(multiples)]
        speedup = _diag_values(group, "lookup_speedup")
        rows.append({
            "label": label, "seeds": len(group), "pairs": int(est.size),
            "rho": spearman_rho(est, real), "p": stats.spearman(est, real).p_value,
            "pairs_R": int(est_r.size), "rho_R": spearman_rho(est_r, real_r),
            "p_R": stats.spearman(est_r, real_r).p_value,
            "cost_multiple": float(np.mean(multiples)) if multiples.size else math.nan,
            "cost_multiple_max": float(np.max(multiples)) if multiples.size else math.nan,
            "t_lut_s": float(np.mean(v)) if (v := _diag_values(group, "t_lut_s")).size else math.nan,
            "t_agent_s": float(np.mean(v)) if (v := _diag_values(group, "t_agent_s")).size else math.nan,
            "variants": float(np.mean(v)) if (v := _diag_values(group, "variants")).size else math.nan,
            "lookup_speedup": float(np.median(speedup)) if speedup.size else math.nan,
        })
    return rows



def first_with_lut(runs: list[MgralRun]) -> MgralRun | None:
    """The first run whose diagnostics hold look-up tables."""
    return next((r for r in runs if any(d.get("lut") for d in r.diagnostics)), None)
