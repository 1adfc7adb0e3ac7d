"""The report's tables: label efficiency (AUBC, difference and probability of improvement
over the reference, labels to reach a target) and compute cost, as Markdown."""

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


def _f(value: float, digits: int = 3) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _ci(low: float, high: float, digits: int = 3, seeds: int = 2) -> str:
    """An interval; ``n/a`` below two seeds, where a bootstrap interval has no width."""
    if seeds < 2:
        return "n/a"
    if not (math.isfinite(low) and math.isfinite(high)):
        return "—"
    return f"[{low:.{digits}f}, {high:.{digits}f}]"


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


# ----------------------------------------------------------------------------- tables


def label_efficiency_table(
    curves: list[StrategyCurves], rng: np.random.Generator
) -> tuple[str, str, list[str]]:
    """The AUBC table, the mean-AP50-by-round table and notes."""
    notes: list[str] = []
    ref = reference_curve(curves)
    real = [c for c in curves if not c.upper_bound] or curves
    finals = {c.name: float(c.ap50.mean(axis=0)[-1]) for c in real}
    best_name = max(finals, key=lambda n: finals[n])
    target = TARGET_FRACTION * finals[best_name]
    rows: list[list[str]] = []
    for c in curves:
        point, low, high = stats.stratified_bootstrap_ci(c.aubc, rng=rng)
        diff = ["—", "—", "—", "—"]
        if ref is not None and c is not ref:
            paired = sorted(c.seeds.tolist()) == sorted(ref.seeds.tolist())
            d, dl, dh = stats.mean_difference_ci(c.aubc, ref.aubc, paired=paired, rng=rng)
            p, pl, ph = stats.probability_of_improvement_ci(c.aubc, ref.aubc, rng=rng)
            n = min(len(c.seeds), len(ref.seeds))
            diff = [f"{d:+.3f}", _ci(dl, dh, seeds=n), _f(p, 2), _ci(pl, ph, 2, seeds=n)]
            if not paired:
                notes.append(f"{c.name}: seeds differ from {ref.name}'s, so Δ is bootstrapped unpaired.")
        reach = stats.labels_to_reach(c.x, c.ap50.mean(axis=0), target)
        rows.append(
            [c.label, str(len(c.seeds)), _f(point), _ci(low, high, seeds=len(c.seeds)), *diff,
             "not reached" if math.isnan(reach) else f"{reach:.0f}"]
        )
    ref_name = ref.name if ref is not None else REFERENCE
    header = [
        "Strategy", "Seeds", "AUBC AP50", "95% CI", f"Δ vs {ref_name}", "Δ 95% CI",
        f"P(> {ref_name})", "P 95% CI", f"Labels to {TARGET_FRACTION:.0%} best",
    ]
    if ref is None:
        notes.append(f"No '{REFERENCE}' strategy in this setting: comparisons to it are left out.")
    notes.append(
        f"Target for the last column: {TARGET_FRACTION:.0%} of the best final mean AP50 "
        f"({best_name}: {finals[best_name]:.3f}) = {target:.3f}"
        + ("; upper-bound strategies do not set it." if len(real) < len(curves) else ".")
    )
    xs = curves[0].x
    round_header = ["Strategy"] + [f"{x:.0f}" for x in xs]
    round_rows = [[c.label] + [_f(v) for v in c.ap50.mean(axis=0)] for c in curves]
    return md_table(header, rows, "r"), md_table(round_header, round_rows, "r"), notes


def cost_table(curves: list[StrategyCurves]) -> str:
    """Mean seconds per round by phase, total, ratio to the reference and peak memory."""
    ref = reference_curve(curves)
    per: dict[str, tuple[list[float], float, float]] = {}
    for c in curves:
        frame = pd.concat([r.rounds for r in c.runs], ignore_index=True)
        means = [
            float(frame[col].mean()) if col in frame and frame[col].notna().any() else math.nan
            for col in TIME_COLUMNS
        ]
        total = float(np.nansum(means)) if any(math.isfinite(m) for m in means) else math.nan
        peak = (
            float(frame["peak_rss_mb"].max())
            if "peak_rss_mb" in frame and frame["peak_rss_mb"].notna().any()
            else math.nan
        )
        per[c.name] = (means, total, peak)
    ref_total = per[ref.name][1] if ref is not None else math.nan
    rows = []
    for c in curves:
        means, total, peak = per[c.name]
        ratio = total / ref_total if ref_total and math.isfinite(ref_total) else math.nan
        rows.append(
            [c.label, *(_f(m, 2) for m in means), _f(total, 2),
             "—" if math.isnan(ratio) else f"{ratio:.2f}×", _f(peak, 0)]
        )
    header = ["Strategy", *(f"{h} s" for h in TIME_COLUMNS.values()), "total s",
              f"× {ref.name if ref else REFERENCE}", "peak RSS MB"]
    return md_table(header, rows, align="r")


