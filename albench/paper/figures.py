"""The figures of a figure set's page drawn from its panels' runs (the page itself is
:mod:`albench.paper.page`):

1. AL curves, one panel per dataset/protocol: mean over seeds, 95% bands
   (:func:`albench.stats.mean_interval`), x as labeled images (bottom) and % of the pool
   (top); with it, Δ AP vs random per round with paired intervals (``fig1_delta``).
2. Published reference values (filled: exact, hollow: read off a plot) on the same axes,
   with a gap table of like-with-like rows.
3. What the strategies pick (:mod:`albench.paper.picks`).
4. Strategy diagnostics, drawn by each strategy's own report section.
5. Compute cost: stacked seconds per round by phase per strategy.

Every figure uses :mod:`albench.style`: a strategy's colour, marker and line style follow
the full registry order (the reference black), so they match the report's figures; upper
bounds have hollow markers and thinner lines. Files are written by :func:`albench.style.save`
as PNG, PDF and SVG.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from albench import stats, style  # noqa: E402
from albench.paper.spec import METRICS, PanelPlan, Reference  # noqa: E402
from albench.report import (REFERENCE, TIME_COLUMNS, Run, StrategyCurves,  # noqa: E402
                            strategy_curves)
from albench.report.plots import UPPER_LEGEND, curve_looks, strategy_styles  # noqa: E402
from albench.report.tables import cost_phases, delta_intervals  # noqa: E402

_BOOT_SEED = 20240521
PHASE_COLORS = tuple(style.OKABE_ITO[k] for k in ("sky blue", "orange", "bluish green",
                                                     "vermillion", "reddish purple"))
_MARKERS = "osD^vP*X"


@dataclass
class PanelData:
    """A panel's runs as found in the results folder, and what is missing."""

    plan: PanelPlan
    runs: list[Run]
    root: Path
    curves: list[StrategyCurves] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # strategies of the sweep without runs
    pool: float = math.nan

    @property
    def panel(self):
        return self.plan.panel

    def values(self, c: StrategyCurves) -> np.ndarray:
        return c.ap50 if self.panel.metric == "ap50" else c.ap


def strategy_colors(names: list[str]) -> dict[str, Any]:
    """A colour per strategy name from :mod:`albench.style` in the full registry order
    (unregistered names appended, sorted): the same colour in every figure and report."""
    styles = strategy_styles(list(names))
    return {n: styles.color(n) for n in names}


def panel_data(plan: PanelPlan, runs: list[Run], root: Path) -> PanelData:
    """The runs of ``runs`` that belong to the panel's sweep (same setting, named strategy)."""
    mine = [r for r in runs if r.key.setting_hash in plan.setting_hashes
            and str(r.config.get("strategy", r.strategy)) in plan.strategies]
    if not plan.setting_hashes:  # nothing registered to compute the setting: match by preset
        mine = []
    data = PanelData(plan, mine, root)
    have = {str(r.config.get("strategy", r.strategy)) for r in mine}
    data.missing = [s for s in plan.strategies if s not in have]
    if mine:
        data.curves, _ = strategy_curves(mine)
        try:
            manifest = json.loads((root / mine[0].path / "manifest.json").read_text())
            data.pool = float((manifest.get("resolved") or {}).get("pool") or math.nan)
        except (OSError, ValueError):
            pass
    return data


def _save(fig: Figure, stem: Path) -> list[Path]:
    return style.save(fig, stem)


def _pool_axis(ax: Any, pool: float) -> None:
    if math.isfinite(pool) and pool > 0:
        top = ax.secondary_xaxis("top", functions=(lambda x: 100 * x / pool, lambda p: p * pool / 100))
        top.set_xlabel("% of the pool labeled")


def _draw_curves(ax: Any, data: PanelData, colors: dict[str, Any], rng: np.random.Generator,
                 thin: bool = False) -> None:
    looks = curve_looks(data.curves, _base)
    for c in data.curves:
        kw = looks[c.name].kwargs(upper_bound=c.upper_bound)
        if thin:
            kw["linewidth"] *= 0.7
        band = stats.mean_interval(data.values(c), rng=rng)
        ax.plot(c.x, band.estimate, markersize=3, label=f"{c.label} (ours, {len(c.seeds)} seeds)",
                **kw)
        if band.has_interval:
            ax.fill_between(c.x, band.low, band.high, color=kw["color"],
                            alpha=0.12 if thin else 0.18, linewidth=0)


def _base(c: StrategyCurves) -> str:
    return str(c.runs[0].config.get("strategy", c.name))


def plot_deltas(panels: list[PanelData], stem: Path) -> list[Path]:
    """Δ of the panel's metric vs the reference per round: the mean of per-seed differences
    with its paired interval (every strategy at a seed shares the initial set and the
    round-0 model)."""
    drawn = [p for p in panels if p.curves]
    rng = np.random.default_rng(_BOOT_SEED)
    with style.context():
        fig = Figure(figsize=(max(6.8, 5.2 * len(drawn)), 4.4), layout="constrained")
        axes = np.atleast_1d(fig.subplots(1, len(drawn)))
        for ax, data in zip(axes, drawn):
            looks = curve_looks(data.curves, _base)
            metric = data.panel.metric
            curves = [_as_metric(c, metric) for c in data.curves]
            for c in data.curves:
                d = delta_intervals(curves, rng).get(c.name)
                if d is None:
                    continue
                kw = looks[c.name].kwargs(upper_bound=c.upper_bound)
                ax.plot(c.x, d.estimate, markersize=3, label=f"{c.label} (n = {d.n})", **kw)
                if d.has_interval:
                    ax.fill_between(c.x, d.low, d.high, color=kw["color"], alpha=0.15, linewidth=0)
            ax.axhline(0.0, color="black", linewidth=0.8)
            ax.set_title(data.panel.title)
            ax.set_xlabel("labeled images")
            ax.set_ylabel(f"Δ {METRICS[metric]} vs {REFERENCE}")
            ax.grid(alpha=0.3)
            ax.legend(loc="best", title=UPPER_LEGEND if any(c.upper_bound for c in data.curves)
                      else None)
        fig.suptitle(f"Paired difference to {REFERENCE} per round (bands: 95% paired "
                     "t-intervals over seeds)")
        return _save(fig, stem)


def _as_metric(c: StrategyCurves, metric: str) -> StrategyCurves:
    """``c`` with its AP50 array replaced by the panel's metric (what delta_intervals reads)."""
    from dataclasses import replace

    return c if metric == "ap50" else replace(c, ap50=c.ap)


def plot_curves(panels: list[PanelData], stem: Path, colors: dict[str, Any]) -> list[Path]:
    """Figure 1: one axis per panel that has runs."""
    drawn = [p for p in panels if p.curves]
    rng = np.random.default_rng(_BOOT_SEED)
    fig = Figure(figsize=(max(6.8, 5.2 * len(drawn)), 4.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(drawn)))
    for ax, data in zip(axes, drawn):
        _draw_curves(ax, data, colors, rng)
        _pool_axis(ax, data.pool)
        _dress(ax, data, "x-small")
    fig.suptitle("AL curves (mean over seeds; bands: 95% t-intervals over seeds)")
    return _save(fig, stem)


def _dress(ax: Any, data: PanelData, legend_size: str) -> None:
    """Title, axis labels, grid and legend of one AL-curve panel."""
    ax.set_title(data.panel.title, fontsize="medium")
    ax.set_xlabel("labeled images")
    ax.set_ylabel(METRICS[data.panel.metric])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=legend_size, loc="lower right")


REF_METRICS = {"ap50": "AP50", "ap": "AP"}  # panel metric -> the references' metric name


def like_with_like(data: PanelData, refs: list[Reference]) -> list[Reference]:
    """The published rows a panel can be compared with: same protocol and same metric."""
    metric = REF_METRICS.get(data.panel.metric)
    return [r for r in refs if r.protocol == data.panel.protocol and r.metric == metric]


def plot_references(panels: list[PanelData], refs: list[Reference], stem: Path,
                    colors: dict[str, Any]) -> list[Path]:
    """Figure 2: published values on the panels' axes (same protocol and metric), with our
    curves: filled markers for exact values, hollow for values read off a plot."""
    drawn = [p for p in panels if like_with_like(p, refs)]
    rng = np.random.default_rng(_BOOT_SEED)
    styles = strategy_styles(sorted({r.strategy for r in refs} | set(colors)))
    with style.context():
        fig = Figure(figsize=(max(7.2, 5.6 * len(drawn)), 5.0), layout="constrained")
        axes = np.atleast_1d(fig.subplots(1, len(drawn)))
        papers = sorted({r.paper for r in refs})
        for ax, data in zip(axes, drawn):
            _draw_curves(ax, data, colors, rng, thin=True)
            _pool_axis(ax, data.pool)
            mine = [r for r in like_with_like(data, refs) if math.isfinite(r.images(data.pool))]
            for (paper, strategy, exact), group in itertools.groupby(
                    sorted(mine, key=lambda r: (r.paper, r.strategy, r.exact, r.images(data.pool))),
                    key=lambda r: (r.paper, r.strategy, r.exact)):
                group = list(group)
                color = styles.color(strategy)
                ax.plot([r.images(data.pool) for r in group], [r.value / 100 for r in group],
                        ls="none", marker=_MARKERS[papers.index(paper) % len(_MARKERS)],
                        markersize=7, markerfacecolor=color if exact else "none",
                        markeredgewidth=1.4, color=color,
                        label=f"{strategy}: {paper} ({'exact' if exact else 'read off a plot'})")
            _dress(ax, data, "xx-small")
        fig.suptitle("Published values (filled: exact; hollow: read off a plot) and our curves")
        return _save(fig, stem)


def gap_rows(panels: list[PanelData], refs: list[Reference]) -> list[list[str]]:
    """Reproduction gap per published value of the same protocol and metric: our mean minus
    it, with our 95% interval (:func:`albench.stats.mean_interval`), the row's exact flag
    and the paper's detector next to ours."""
    rng = np.random.default_rng(_BOOT_SEED)
    rows = []
    for data in panels:
        ours_detector = ", ".join(sorted({str(r.config.get("backend", "?")) for r in data.runs})) or "—"
        for r in sorted(like_with_like(data, refs),
                        key=lambda r: (r.paper, r.strategy, r.images(data.pool))):
            ours = next((c for c in data.curves if _base(c) == r.strategy), None)
            where = r.images(data.pool)
            shown = f"{r.labeled_pct:g}%" if math.isnan(r.labeled) else f"{r.labeled:.0f}"
            cells = [data.panel.id, r.paper, r.strategy, shown, r.metric, f"{r.value:.2f}",
                     "yes" if r.exact else "no (read off a plot)",
                     f"{r.detector} / {ours_detector}"]
            if ours is None:
                rows.append(cells + ["no runs", "—", "—", r.source])
                continue
            if not (math.isfinite(where) and ours.x[0] - 0.5 <= where <= ours.x[-1] + 0.5):
                rows.append(cells + ["outside our range", "—", "—", r.source])
                continue
            per_seed = np.array([np.interp(where, ours.x, v) for v in data.values(ours)]) * 100
            band = stats.mean_interval(per_seed, rng=rng)
            interval = (f"[{band.low:.2f}, {band.high:.2f}] ({band.method}, n = {band.n})"
                        if band.has_interval else f"n/a (n = {band.n})")
            rows.append(cells + [f"{band.estimate:.2f}", interval,
                                 f"{band.estimate - r.value:+.2f}", r.source])
    return rows


def plot_cost(panels: list[PanelData], stem: Path) -> list[Path]:
    """Figure 5: seconds per round by phase, stacked: one bar for the round 0 shared by every
    strategy at a seed, then per strategy the median over seeds of its rounds >= 1 (as the
    report's cost table)."""
    drawn = [p for p in panels if p.curves]
    with style.context():
        fig = Figure(figsize=(1.2 + 1.3 * (1 + max(len(p.curves) for p in drawn)) * len(drawn), 4.4),
                     layout="constrained")
        axes = np.atleast_1d(fig.subplots(1, len(drawn)))
        for ax, data in zip(axes, drawn):
            shared, per = cost_phases(data.curves)
            bars = ([("round 0 (shared)", shared[0])] if shared else []) + [
                (c.label, per[c.name][0]) for c in data.curves]
            names = [b[0] for b in bars]
            bottom = np.zeros(len(names))
            for k, phase in enumerate(TIME_COLUMNS.values()):
                vals = np.nan_to_num(np.array([b[1][k] for b in bars], float))
                ax.bar(names, vals, bottom=bottom, color=PHASE_COLORS[k % len(PHASE_COLORS)],
                       label=phase)
                bottom += vals
            ax.set_title(data.panel.title)
            ax.set_ylabel("seconds per round (median over seeds)")
            ax.tick_params(axis="x", rotation=30)
            ax.grid(alpha=0.3, axis="y")
        axes[-1].legend(title="phase")
        fig.suptitle("Compute cost per round by phase (round 0 shared, charged to no strategy)")
        return _save(fig, stem)
