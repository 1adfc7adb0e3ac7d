"""MGRAL's own diagnostics in reports: estimator calibration, cost, look-up tables, agent.

MGRAL writes one line per round to ``<run_dir>/diagnostics.jsonl`` (format in
docs/reports.md, "MGRAL section"). This module reads those lines and turns them into

- **calibration**: the table's estimated gain of the chosen batch at round t against the
  realised gain, the next round's test AP50 minus this round's (from ``rounds.csv``; the
  strategy never sees it), with Spearman's rho over all rounds and seeds;
- **cost**: MGRAL's own training per round (``t_strategy_train_s``) as a multiple of that
  round's detector training (``t_train_s``), and the table's lookup speed-up;
- **figures**: the look-up table per round as a heatmap, the agent's reward over policy
  iterations, and the calibration scatter.

Statistics are small pure functions over arrays (:func:`spearman_rho`,
:func:`realised_gains`, :func:`calibration_pairs`, :func:`cost_multiples`); reading and
plotting are separate. :func:`report_section` is the hook the generic report calls for a
setting; the paper figure set (:mod:`albench.paper`) uses the same pieces.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

STRATEGY = "mgral"
DIAGNOSTICS = "diagnostics.jsonl"

__all__ = [
    "MgralRun", "spearman_rho", "realised_gains", "calibration_pairs", "cost_multiples",
    "lut_matrix", "read_diagnostics", "collect", "summary_rows", "plot_calibration",
    "plot_lut", "plot_rewards", "report_section",
]


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


def _by_label(runs: list[MgralRun]) -> dict[str, list[MgralRun]]:
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
    for label, group in _by_label(runs).items():
        est, real = pooled_calibration(group)
        est_r, real_r = pooled_calibration(group, on="R")
        multiples = np.concatenate([cost_multiples(r.column("t_strategy_train_s"), r.column("t_train_s"))
                                    for r in group]) if group else np.array([])
        multiples = multiples[np.isfinite(multiples)]
        speedup = _diag_values(group, "lookup_speedup")
        rows.append({
            "label": label, "seeds": len(group), "pairs": int(est.size),
            "rho": spearman_rho(est, real),
            "pairs_R": int(est_r.size), "rho_R": spearman_rho(est_r, real_r),
            "cost_multiple": float(np.mean(multiples)) if multiples.size else math.nan,
            "cost_multiple_max": float(np.max(multiples)) if multiples.size else math.nan,
            "t_lut_s": float(np.mean(v)) if (v := _diag_values(group, "t_lut_s")).size else math.nan,
            "t_agent_s": float(np.mean(v)) if (v := _diag_values(group, "t_agent_s")).size else math.nan,
            "variants": float(np.mean(v)) if (v := _diag_values(group, "variants")).size else math.nan,
            "lookup_speedup": float(np.median(speedup)) if speedup.size else math.nan,
        })
    return rows


# ----------------------------------------------------------------------------- figures


def _save(fig: Figure, out_stem: Path) -> list[Path]:
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [out_stem.with_suffix(".png"), out_stem.with_suffix(".svg")]
    fig.savefig(paths[0], dpi=130)
    fig.savefig(paths[1])
    return paths


def plot_calibration(runs: list[MgralRun], out_stem: Path, title: str = "") -> list[Path]:
    """Estimated gain (the table's, for the chosen batch) against realised test-AP50 gain."""
    fig = Figure(figsize=(5.6, 4.8), layout="constrained")
    ax = fig.subplots()
    colors = matplotlib.colormaps["tab10"].colors
    lo, hi = math.inf, -math.inf
    for k, (label, group) in enumerate(_by_label(runs).items()):
        est, real = pooled_calibration(group)
        if est.size:
            lo, hi = min(lo, est.min(), real.min()), max(hi, est.max(), real.max())
        rho = spearman_rho(est, real)
        ax.scatter(est, real, color=colors[k % len(colors)], s=28,
                   label=f"{label}: rho {rho:.2f} (n={est.size})" if est.size else f"{label}: no pairs")
    if math.isfinite(lo):
        pad = 0.05 * (hi - lo or 1.0)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="grey", lw=0.8, ls=":",
                label="estimated = realised")
    ax.axhline(0, color="grey", lw=0.5)
    ax.axvline(0, color="grey", lw=0.5)
    ax.set_xlabel("estimated gain of the chosen batch (LUT, AP50 on R)")
    ax.set_ylabel("realised gain (test AP50, next round − this round)")
    ax.set_title(title or "MGRAL estimator calibration (Spearman's rho)")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return _save(fig, out_stem)


def plot_lut(run: MgralRun, out_stem: Path) -> list[Path]:
    """One heatmap per round: groups x ladder rungs, cells = gain (n = images added)."""
    diags = [d for d in run.diagnostics if d.get("lut")]
    n = max(1, len(diags))
    fig = Figure(figsize=(3.2 * n + 1.2, 3.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, n))
    mats = [lut_matrix(d["lut"], d.get("ladder") or []) for d in diags]
    finite = np.concatenate([m[0][np.isfinite(m[0])] for m in mats]) if mats else np.array([])
    vmax = float(np.max(np.abs(finite))) if finite.size else 1.0
    image = None
    for ax, d, (gains, counts) in zip(axes, diags, mats):
        image = ax.imshow(gains, cmap="RdBu", vmin=-vmax or -1, vmax=vmax or 1, aspect="auto")
        for g in range(gains.shape[0]):
            for k in range(gains.shape[1]):
                if np.isfinite(gains[g, k]):
                    ax.text(k, g, f"{gains[g, k]:+.3f}\nn={counts[g, k]}", ha="center",
                            va="center", fontsize=6)
        ax.set_title(f"round {d['round']}", fontsize="small")
        ax.set_xlabel("ladder rung")
        ax.set_ylabel("group")
        ax.set_xticks(range(gains.shape[1]))
        ax.set_yticks(range(gains.shape[0]))
    if not diags:
        axes[0].text(0.5, 0.5, "no look-up tables in diagnostics", ha="center", va="center")
        axes[0].set_axis_off()
    if image is not None:
        fig.colorbar(image, ax=list(axes), label="AP50 gain on R over the baseline variant")
    fig.suptitle(f"MGRAL look-up table per round — {run.label}, seed {run.seed}")
    return _save(fig, out_stem)


def plot_rewards(runs: list[MgralRun], out_stem: Path) -> list[Path]:
    """The agent's mean sampled reward per policy iteration, one line per round and seed."""
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    rounds = sorted({int(d["round"]) for r in runs for d in r.diagnostics})
    cmap = matplotlib.colormaps["viridis"]
    drawn = 0
    labelled: set[int] = set()
    for run in runs:
        for d in run.diagnostics:
            curve = np.asarray(d.get("reward_curve") or [], float)
            if curve.size == 0:
                continue
            round_ = int(d["round"])
            pos = rounds.index(round_) / max(1, len(rounds) - 1)
            ax.plot(np.arange(1, curve.size + 1), curve, color=cmap(pos), lw=1, alpha=0.8,
                    label=None if round_ in labelled else f"round {round_}")
            labelled.add(round_)
            drawn += 1
    if not drawn:
        ax.text(0.5, 0.5, "no reward curves (agent=greedy trains no policy)", ha="center",
                va="center", transform=ax.transAxes)
    ax.set_xlabel("policy iteration")
    ax.set_ylabel("mean sampled reward")
    ax.set_title("MGRAL agent reward over policy iterations (colour: round; one line per seed)")
    if drawn:
        ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return _save(fig, out_stem)


# ----------------------------------------------------------------------------- report hook


def _f(value: float, fmt: str) -> str:
    return "—" if value is None or not math.isfinite(value) else format(value, fmt)


def section_lines(runs: list[MgralRun], figures: dict[str, str]) -> list[str]:
    """The Markdown of an MGRAL section; ``figures`` maps figure name -> relative PNG path."""
    rows = summary_rows(runs)
    header = ["Strategy", "Seeds", "Pairs", "Spearman rho", "Pairs on R", "rho on R",
              "Cost × training (mean)",
              "Cost × training (max)", "LUT s/round", "Agent s/round", "Variants/round",
              "Lookup speed-up (median)"]
    table = ["| " + " | ".join(header) + " |", "|:---|" + "---:|" * (len(header) - 1)]
    for r in rows:
        cells = [r["label"], str(r["seeds"]), str(r["pairs"]), _f(r["rho"], ".2f"),
                 str(r["pairs_R"]), _f(r["rho_R"], ".2f"),
                 _f(r["cost_multiple"], ".2f") + ("×" if math.isfinite(r["cost_multiple"]) else ""),
                 _f(r["cost_multiple_max"], ".2f") + ("×" if math.isfinite(r["cost_multiple_max"]) else ""),
                 _f(r["t_lut_s"], ".1f"), _f(r["t_agent_s"], ".1f"), _f(r["variants"], ".1f"),
                 _f(r["lookup_speedup"], ",.0f") + ("×" if math.isfinite(r["lookup_speedup"]) else "")]
        table.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines = [
        "## MGRAL",
        "",
        *table,
        "",
        "Pairs: rounds t (all seeds) with both MGRAL's estimated gain of the chosen batch (its "
        "look-up table) and a realised gain, the next round's test AP50 minus round t's; "
        "Spearman's rho is computed over all those pairs (NaN below two pairs or with a "
        "constant side). The strategy never sees the test split; the realised gain is read "
        "from rounds.csv here only. On R: the same with the realised gain measured as MGRAL "
        "measures gains, the model's AP50 on its reward split R in round t + 1 minus round t "
        "(from its diagnostics; the last round has none, so one pair fewer per seed). "
        "Cost × training: per round, MGRAL's own training seconds "
        "(`t_strategy_train_s`: table variants and agent) divided by that round's detector "
        "training seconds (`t_train_s`); rounds whose detector did not train (a cached "
        "round-0 model) are left out. Lookup speed-up: one variant fine-tune's seconds over "
        "one table lookup's, as the run measured them.",
        "",
    ]
    for name, caption in (("calibration", "Estimated vs realised gain"),
                          ("lut", "Look-up table per round"),
                          ("rewards", "Agent reward over policy iterations")):
        if name in figures:
            png = figures[name]
            lines += [f"![{caption}]({png})", "",
                      f"{caption}: [PNG]({png}) · [SVG]({png[:-4]}.svg)", ""]
    problems = [p for r in runs for p in r.problems]
    lines += [f"- {p}" for p in problems] + ([""] if problems else [])
    return lines


def draw_all(runs: list[MgralRun], folder: Path, prefix: str = "mgral_") -> dict[str, str]:
    """Draw the three MGRAL figures into ``folder``; names -> PNG file names."""
    figures: dict[str, str] = {}
    plot_calibration(runs, folder / f"{prefix}calibration")
    figures["calibration"] = f"{prefix}calibration.png"
    with_lut = next((r for r in runs if any(d.get("lut") for d in r.diagnostics)), None)
    if with_lut is not None:
        plot_lut(with_lut, folder / f"{prefix}lut")
        figures["lut"] = f"{prefix}lut.png"
    plot_rewards(runs, folder / f"{prefix}rewards")
    figures["rewards"] = f"{prefix}rewards.png"
    return figures


def report_section(runs: Iterable[Any], root: str | Path | None, folder: Path) -> list[str]:
    """The MGRAL section of a setting's report.md, or no lines when it has no MGRAL run."""
    if root is None:
        return []
    found = collect(runs, root)
    if not found:
        return []
    return section_lines(found, draw_all(found, Path(folder)))
