"""The report's tables: label efficiency (AUBC, paired difference, probability of
improvement and win rate over the reference, labels to reach a target), mean ± SD by
round, paired Δ AP50 by round and compute cost, as Markdown."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from albench import stats
from albench.report.curves import REFERENCE, StrategyCurves, reference_curve

TARGET_FRACTION = 0.9
TIME_COLUMNS = {  # rounds.csv column -> table header
    "t_train_s": "train",
    "t_infer_s": "infer",
    "t_select_s": "select",
    "t_strategy_train_s": "strategy train",
    "t_eval_s": "eval",
}
SHARED_ROUND0 = ("t_train_s", "t_eval_s")  # phases of round 0 every strategy at a seed shares
METHOD_NAMES = {"student-t": "t-interval", "bootstrap": "percentile bootstrap interval",
                "wilson": "Wilson interval"}


def _f(value: float, digits: int = 3) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _ci(interval: stats.Interval, digits: int = 3) -> str:
    """An interval's bounds; ``n/a`` when the method gave none (one run)."""
    if not interval.has_interval:
        return "n/a"
    low, high = float(interval.low), float(interval.high)
    if not (math.isfinite(low) and math.isfinite(high)):
        return "—"
    return f"[{low:.{digits}f}, {high:.{digits}f}]"


def method_text(method: str, n: int, unit: str = "seeds") -> str:
    """How an interval was made, e.g. ``95% t-interval, n = 3 seeds``."""
    if method == "none":
        return f"no interval (n = {n} {unit})"
    return f"95% {METHOD_NAMES.get(method, method)}, n = {n} {unit}"


def md_table(header: list[str], rows: list[list[str]], align: str = "l") -> str:
    def esc(cell: str) -> str:
        return str(cell).replace("|", "\\|")

    lines = ["| " + " | ".join(esc(h) for h in header) + " |"]
    rule = "---:" if align == "r" else "---"
    lines.append("|" + "|".join([":---"] + [rule] * (len(header) - 1)) + "|")
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def seed_text(curves: list[StrategyCurves]) -> str:
    counts = sorted({len(c.seeds) for c in curves})
    text = str(counts[0]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
    return text + (" seed" if text == "1" else " seeds")


def paired_rows(c: StrategyCurves, ref: StrategyCurves) -> tuple[np.ndarray, np.ndarray]:
    """Indices of ``c``'s and ``ref``'s runs on the seeds both have, in seed order: runs at
    one seed share the initial labeled set and the round-0 model, so they pair up."""
    common = sorted(set(c.seeds.tolist()) & set(ref.seeds.tolist()))
    ci = np.array([int(np.flatnonzero(c.seeds == s)[0]) for s in common], dtype=int)
    ri = np.array([int(np.flatnonzero(ref.seeds == s)[0]) for s in common], dtype=int)
    return ci, ri


def _methods(intervals: list[stats.Interval], unit: str) -> str:
    seen = dict.fromkeys(method_text(i.method, i.n, unit) for i in intervals)
    return "; ".join(seen) or "none"


# ----------------------------------------------------------------------------- tables


def label_efficiency_table(
    curves: list[StrategyCurves], rng: np.random.Generator
) -> tuple[str, str, list[str]]:
    """The AUBC table, the mean ± SD AP50-by-round table and notes (the first notes name
    the interval methods and the number of runs they rest on)."""
    notes: list[str] = []
    ref = reference_curve(curves)
    real = [c for c in curves if not c.upper_bound] or curves
    finals = {c.name: float(c.ap50.mean(axis=0)[-1]) for c in real}
    best_name = max(finals, key=lambda n: finals[n])
    target = TARGET_FRACTION * finals[best_name]
    rows: list[list[str]] = []
    means, diffs, wins = [], [], []
    for c in curves:
        interval = stats.mean_interval(c.aubc, rng=rng)
        means.append(interval)
        diff = ["—"] * 5
        if ref is not None and c is not ref:
            ci, ri = paired_rows(c, ref)
            p = stats.improvement_probability(c.aubc, ref.aubc, rng=rng)
            p_text = _f(p.estimate, 2) + ("" if not p.has_interval else " " + _ci(p, 2))
            if len(ci):
                d = stats.paired_interval(c.aubc[ci], ref.aubc[ri], rng=rng)
                w = stats.paired_win_rate(c.aubc[ci], ref.aubc[ri])
                diffs.append(d)
                wins.append(w)
                diff = [f"{d.estimate:+.3f}", _ci(d), p_text, _f(w.estimate, 2), _ci(w, 2)]
            else:
                diff = ["—", "—", p_text, "—", "—"]
            if len(ci) < max(len(c.seeds), len(ref.seeds)):
                notes.append(f"{c.name}: Δ and wins use the {len(ci)} seed(s) it shares with "
                             f"{ref.name}.")
        reach = stats.labels_to_reach(c.x, c.ap50.mean(axis=0), target)
        rows.append(
            [c.label, str(len(c.seeds)), _f(interval.estimate), _ci(interval), *diff,
             "not reached" if math.isnan(reach) else f"{reach:.0f}"]
        )
    ref_name = ref.name if ref is not None else REFERENCE
    header = [
        "Strategy", "Seeds", "AUBC AP50", "95% interval", f"Δ vs {ref_name}",
        "Δ 95% interval", f"P(> {ref_name})", "wins", "wins 95% Wilson",
        f"Labels to {TARGET_FRACTION:.0%} best",
    ]
    methods = [f"Intervals of AUBC: {_methods(means, 'seeds')}."]
    if diffs:
        methods.append(f"Δ: paired over seeds, {_methods(diffs, 'paired seeds')}; wins: "
                       f"{_methods(wins, 'paired seeds')}.")
    notes = methods + notes
    if ref is None:
        notes.append(f"No '{REFERENCE}' strategy in this setting: comparisons to it are left out.")
    notes.append(
        f"Target for the last column: {TARGET_FRACTION:.0%} of the best final mean AP50 "
        f"({best_name}: {finals[best_name]:.3f}) = {target:.3f}"
        + ("; upper-bound strategies do not set it." if len(real) < len(curves) else ".")
    )
    return md_table(header, rows, "r"), rounds_table(curves), notes


def _mean_sd_cell(mean: float, sd: float) -> str:
    return _f(mean) if not math.isfinite(sd) else f"{mean:.3f} ± {sd:.3f}"


def rounds_table(curves: list[StrategyCurves]) -> str:
    """Mean ± SD (sample SD over seeds) of AP50 at each round, columns headed by labeled
    images; one seed shows the mean alone."""
    header = ["Strategy", "Seeds"] + [f"{x:.0f}" for x in curves[0].x]
    rows = []
    for c in curves:
        m = stats.mean_sd(c.ap50)
        rows.append([c.label, str(m.n)] + [_mean_sd_cell(a, b) for a, b in zip(m.mean, m.sd)])
    return md_table(header, rows, "r")


def delta_intervals(curves: list[StrategyCurves], rng: np.random.Generator | None = None
                    ) -> dict[str, stats.Interval]:
    """Per strategy (not the reference), Δ AP50 against the reference at every round with
    paired intervals over the seeds both share (a curve of intervals)."""
    ref = reference_curve(curves)
    out: dict[str, stats.Interval] = {}
    if ref is None:
        return out
    for c in curves:
        if c is ref:
            continue
        ci, ri = paired_rows(c, ref)
        if len(ci):
            out[c.name] = stats.paired_interval(c.ap50[ci], ref.ap50[ri], rng=rng)
    return out


def delta_table(curves: list[StrategyCurves], deltas: dict[str, stats.Interval]) -> str:
    """Δ AP50 vs the reference per round: the paired mean and its interval."""
    header = ["Strategy", "n"] + [f"{x:.0f}" for x in curves[0].x]
    rows = []
    for c in curves:
        d = deltas.get(c.name)
        if d is None:
            continue
        cells = [f"{e:+.3f}" + ("" if not d.has_interval else f" [{lo:.3f}, {hi:.3f}]")
                 for e, lo, hi in zip(np.atleast_1d(d.estimate), np.atleast_1d(d.low),
                                      np.atleast_1d(d.high))]
        rows.append([c.label, str(d.n), *cells])
    return md_table(header, rows, "r")


def _cached(frame: pd.DataFrame) -> pd.Series:
    if "round0_cached" not in frame:
        return pd.Series(False, index=frame.index)
    return pd.to_numeric(frame["round0_cached"], errors="coerce").fillna(0).astype(int) == 1


def _phase_means(frame: pd.DataFrame) -> list[float]:
    return [float(frame[col].mean()) if col in frame and frame[col].notna().any() else math.nan
            for col in TIME_COLUMNS]


def _median(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.median(finite)) if finite else math.nan


def cost_phases(curves: list[StrategyCurves]
                ) -> tuple[tuple[list[float], int] | None, dict[str, tuple[list[float], float, float]]]:
    """The numbers of :func:`cost_table`: the shared round 0 (seconds per phase, NaN for the
    phases that are not shared, and the seeds it rests on; None without rows) and, per
    strategy name, (seconds per phase, total, peak RSS MB)."""
    round0: dict[int, pd.Series] = {}
    for c in curves:
        for run in c.runs:
            first = run.rounds[(run.rounds["round"] == 0) & ~_cached(run.rounds)]
            if len(first) and run.seed not in round0:
                round0[run.seed] = first.iloc[0]
    shared = None
    if round0:
        shared = ([_median([float(r.get(col, math.nan)) for r in round0.values()])
                   if col in SHARED_ROUND0 else math.nan for col in TIME_COLUMNS], len(round0))
    per: dict[str, tuple[list[float], float, float]] = {}
    for c in curves:
        seeds = [_phase_means(r.rounds[r.rounds["round"] >= 1]) for r in c.runs]
        phases = [_median([s[i] for s in seeds]) for i in range(len(TIME_COLUMNS))]
        total = float(np.nansum(phases)) if any(math.isfinite(v) for v in phases) else math.nan
        frame = pd.concat([r.rounds for r in c.runs], ignore_index=True)
        peak = (float(frame["peak_rss_mb"].max())
                if "peak_rss_mb" in frame and frame["peak_rss_mb"].notna().any() else math.nan)
        per[c.name] = (phases, total, peak)
    return shared, per


def cost_table(curves: list[StrategyCurves]) -> str:
    """Seconds per round by phase: one row for the shared round 0 (the training and
    evaluation of the run that trained the round-0 model, ``round0_cached`` = 0, median
    over seeds), then per strategy the median over seeds of each run's mean over rounds
    >= 1; total, ratio to the reference and peak memory."""
    ref = reference_curve(curves)
    shared, per = cost_phases(curves)
    ref_total = per[ref.name][1] if ref is not None else math.nan
    rows = []
    if shared is not None:
        phases, n = shared
        total = float(np.nansum(phases)) if any(math.isfinite(v) for v in phases) else math.nan
        rows.append([f"round 0, shared by every strategy at a seed (n = {n})",
                     *(_f(v, 2) for v in phases), _f(total, 2), "—", "—"])
    for c in curves:
        phases, total, peak = per[c.name]
        ratio = total / ref_total if ref_total and math.isfinite(ref_total) else math.nan
        rows.append([c.label, *(_f(m, 2) for m in phases), _f(total, 2),
                     "—" if math.isnan(ratio) else f"{ratio:.2f}×", _f(peak, 0)])
    header = ["Strategy", *(f"{h} s" for h in TIME_COLUMNS.values()), "total s",
              f"× {ref.name if ref else REFERENCE}", "peak RSS MB"]
    return md_table(header, rows, align="r")
