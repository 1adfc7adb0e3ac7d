"""MGRAL's diagnostics as figures: the calibration scatter, the look-up table per round as
heatmaps, the agent's reward over policy iterations, and the three in one figure for a
paper page (:func:`plot_diagnostics`). Each writes PNG, PDF and SVG with
:func:`albench.style.save` (byte-stable); labels keep one colour in a fixed (sorted) order."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from albench import stats, style  # noqa: E402
from strategies.mgral.report_data import (MgralRun, by_label, first_with_lut, lut_matrix,  # noqa: E402
                                          pooled_calibration, spearman_rho)



def _save(fig: Figure, out_stem: Path) -> list[Path]:
    return style.save(fig, out_stem)


def plot_calibration(runs: list[MgralRun], out_stem: Path, title: str = "") -> list[Path]:
    """Estimated gain (the table's, for the chosen batch) against realised test-AP50 gain."""
    fig = Figure(figsize=(5.6, 4.8), layout="constrained")
    _draw_calibration(fig.subplots(), runs, title)
    return _save(fig, out_stem)


def _draw_calibration(ax: Any, runs: list[MgralRun], title: str = "") -> None:
    labels = by_label(runs)
    styles = style.StrategyStyles(sorted(labels), reference=None)
    lo, hi = math.inf, -math.inf
    for label, group in labels.items():
        est, real = pooled_calibration(group)
        if est.size:
            lo, hi = min(lo, est.min(), real.min()), max(hi, est.max(), real.max())
        rho, p_value = spearman_rho(est, real), stats.spearman(est, real).p_value
        ax.scatter(est, real, color=styles.color(label), marker=styles[label].marker, s=28,
                   label=f"{label}: rho {rho:.2f}, p {p_value:.3f} (n={est.size})" if est.size
                   else f"{label}: no pairs")
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


def plot_lut(run: MgralRun, out_stem: Path) -> list[Path]:
    """One heatmap per round: groups x ladder rungs, cells = gain (n = images added)."""
    fig = Figure(figsize=(3.2 * _lut_panels(run) + 1.2, 3.6), layout="constrained")
    _draw_lut(fig, run)
    fig.suptitle(f"MGRAL look-up table per round — {run.label}, seed {run.seed}")
    return _save(fig, out_stem)


def _lut_panels(run: MgralRun) -> int:
    return max(1, sum(1 for d in run.diagnostics if d.get("lut")))


def _draw_lut(fig: Any, run: MgralRun) -> None:
    """The heatmaps into ``fig`` (a figure or a subfigure), with their colour bar."""
    diags = [d for d in run.diagnostics if d.get("lut")]
    n = max(1, len(diags))
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


def plot_rewards(runs: list[MgralRun], out_stem: Path) -> list[Path]:
    """The agent's mean sampled reward per policy iteration, one line per round and seed."""
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    _draw_rewards(fig.subplots(), runs)
    return _save(fig, out_stem)


def _draw_rewards(ax: Any, runs: list[MgralRun],
                  title: str = "MGRAL agent reward over policy iterations (colour: round; one "
                               "line per seed)") -> None:
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
    ax.set_title(title)
    if drawn:
        ax.legend(fontsize="small")
    ax.grid(alpha=0.3)


def plot_diagnostics(runs: list[MgralRun], out_stem: Path, title: str = "") -> list[Path]:
    """The three diagnostics in one figure: calibration and agent reward above, the first
    run's look-up tables below (when a run has them)."""
    with_lut = first_with_lut(runs)
    n = _lut_panels(with_lut) if with_lut is not None else 0
    fig = Figure(figsize=(max(11.0, 3.2 * n + 1.2), 8.4 if n else 4.6), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.2, 1]) if n else (fig, None)
    ax_cal, ax_rew = top.subplots(1, 2)
    _draw_calibration(ax_cal, runs, "estimator calibration (Spearman's rho)")
    _draw_rewards(ax_rew, runs, "agent reward per policy iteration (colour: round)")
    if bottom is not None and with_lut is not None:
        _draw_lut(bottom, with_lut)
        bottom.suptitle(f"look-up table per round — {with_lut.label}, seed {with_lut.seed}",
                        fontsize="medium")
    fig.suptitle(title or "MGRAL diagnostics")
    return _save(fig, out_stem)
