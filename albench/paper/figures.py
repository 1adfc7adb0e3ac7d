"""The figures of a figure set's page drawn from its panels' runs (the page itself is
:mod:`albench.paper.page`):

1. AL curves, one panel per dataset/protocol: mean over seeds, 95% bootstrap bands, x as
   labeled images (bottom) and % of the pool (top).
2. Published reference values as hollow markers on the same axes, with a gap table.
3. What the strategies pick (:mod:`albench.paper.picks`).
4. Strategy diagnostics, drawn by each strategy's own report section.
5. Compute cost: stacked seconds per round by phase per strategy.

Colours follow the registry's order of strategies; the reference strategy is black.
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

from albench import stats  # noqa: E402
from albench.paper.spec import METRICS, PanelPlan, Reference  # noqa: E402
from albench.strategy import available as strategy_classes  # noqa: E402
from albench.report import (REFERENCE, TIME_COLUMNS, Run, StrategyCurves,  # noqa: E402
                            strategy_curves)

_BOOT_SEED = 20240521
_COLORS = matplotlib.colormaps["tab10"].colors
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
    """A colour per strategy name: the reference black, the others in the registry's order
    (then unregistered names, sorted)."""
    order = list(strategy_classes())
    ordered = [n for n in order if n in names] + sorted(n for n in names if n not in order)
    colors = itertools.cycle(_COLORS[1:])
    return {n: ("black" if n == REFERENCE else next(colors)) for n in ordered}


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
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.savefig(paths[0], dpi=130)
    fig.savefig(paths[1])
    return paths


def _pool_axis(ax: Any, pool: float) -> None:
    if math.isfinite(pool) and pool > 0:
        top = ax.secondary_xaxis("top", functions=(lambda x: 100 * x / pool, lambda p: p * pool / 100))
        top.set_xlabel("% of the pool labeled")


def _draw_curves(ax: Any, data: PanelData, colors: dict[str, Any], rng: np.random.Generator,
                 thin: bool = False) -> None:
    for c in data.curves:
        base = str(c.runs[0].config.get("strategy", c.name))
        color = colors.get(base, "grey")
        mean, low, high = stats.stratified_bootstrap_ci(data.values(c), rng=rng)
        ax.plot(c.x, mean, color=color, marker="o", markersize=3, lw=1.0 if thin else 1.6,
                ls="--" if c.upper_bound else "-", label=f"{c.label} (ours, {len(c.seeds)} seeds)")
        ax.fill_between(c.x, low, high, color=color, alpha=0.12 if thin else 0.18, linewidth=0)


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
    fig.suptitle("AL curves (mean over seeds; bands: 95% bootstrap CI)")
    return _save(fig, stem)


def _dress(ax: Any, data: PanelData, legend_size: str) -> None:
    """Title, axis labels, grid and legend of one AL-curve panel."""
    ax.set_title(data.panel.title, fontsize="medium")
    ax.set_xlabel("labeled images")
    ax.set_ylabel(METRICS[data.panel.metric])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=legend_size, loc="lower right")


def plot_references(panels: list[PanelData], refs: list[Reference], stem: Path,
                    colors: dict[str, Any]) -> list[Path]:
    """Figure 2: published values (hollow markers) on the panels' axes, with our curves."""
    drawn = [p for p in panels if any(r.protocol == p.panel.protocol for r in refs)]
    rng = np.random.default_rng(_BOOT_SEED)
    fig = Figure(figsize=(max(7.2, 5.6 * len(drawn)), 5.0), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(drawn)))
    papers = sorted({r.paper for r in refs})
    for ax, data in zip(axes, drawn):
        _draw_curves(ax, data, colors, rng, thin=True)
        _pool_axis(ax, data.pool)
        mine = [r for r in refs if r.protocol == data.panel.protocol]
        for (paper, strategy), group in itertools.groupby(
                sorted(mine, key=lambda r: (r.paper, r.strategy, r.labeled)),
                key=lambda r: (r.paper, r.strategy)):
            group = list(group)
            where = "; ".join(sorted({r.where for r in group}))
            how = "exact" if all(r.exact for r in group) else "read off a plot"
            ax.plot([r.labeled for r in group], [r.value / 100 for r in group], ls="none",
                    marker=_MARKERS[papers.index(paper) % len(_MARKERS)], markersize=7,
                    markerfacecolor="none", markeredgewidth=1.4, color=colors.get(strategy, "grey"),
                    label=f"{strategy}: {paper}, {where} ({how})")
        _dress(ax, data, "xx-small")
    fig.suptitle("Published values (hollow markers) and our curves")
    return _save(fig, stem)


def gap_rows(panels: list[PanelData], refs: list[Reference]) -> list[list[str]]:
    """Reproduction gap per published value: our mean minus it, with our 95% interval."""
    rng = np.random.default_rng(_BOOT_SEED)
    rows = []
    for data in panels:
        for r in sorted((r for r in refs if r.protocol == data.panel.protocol),
                        key=lambda r: (r.paper, r.strategy, r.labeled)):
            ours = next((c for c in data.curves
                         if str(c.runs[0].config.get("strategy", c.name)) == r.strategy), None)
            cells = [data.panel.id, r.paper, r.strategy, f"{r.labeled:.0f}", f"{r.value:.2f}"]
            if ours is None:
                rows.append(cells + ["no runs", "—", "—", r.source])
                continue
            if not ours.x[0] - 0.5 <= r.labeled <= ours.x[-1] + 0.5:
                rows.append(cells + ["outside our range", "—", "—", r.source])
                continue
            per_seed = np.array([np.interp(r.labeled, ours.x, v) for v in data.values(ours)]) * 100
            mean, low, high = stats.stratified_bootstrap_ci(per_seed, rng=rng)
            rows.append(cells + [f"{mean:.2f}", f"[{low:.2f}, {high:.2f}]", f"{mean - r.value:+.2f}",
                                 r.source])
    return rows


def plot_cost(panels: list[PanelData], stem: Path) -> list[Path]:
    """Figure 5: mean seconds per round by phase, stacked, one bar per strategy."""
    drawn = [p for p in panels if p.curves]
    fig = Figure(figsize=(1.2 + 1.3 * max(len(p.curves) for p in drawn) * len(drawn), 4.4),
                 layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(drawn)))
    phase_colors = matplotlib.colormaps["Set2"].colors
    for ax, data in zip(axes, drawn):
        names = [c.label for c in data.curves]
        bottom = np.zeros(len(names))
        for k, (col, phase) in enumerate(TIME_COLUMNS.items()):
            vals = []
            for c in data.curves:
                frames = [r.rounds[col] for r in c.runs if col in r.rounds]
                vals.append(float(np.nanmean(np.concatenate([f.to_numpy(float) for f in frames])))
                            if frames else 0.0)
            vals = np.nan_to_num(np.array(vals))
            ax.bar(names, vals, bottom=bottom, color=phase_colors[k % len(phase_colors)], label=phase)
            bottom += vals
        ax.set_title(data.panel.title, fontsize="small")
        ax.set_ylabel("seconds per round (mean over rounds and seeds)")
        ax.tick_params(axis="x", rotation=30)
        ax.grid(alpha=0.3, axis="y")
    axes[-1].legend(fontsize="small", title="phase")
    fig.suptitle("Compute cost per round by phase")
    return _save(fig, stem)
