"""The report's figure: mean AP50 and AP against labeled images with bootstrap bands."""

from __future__ import annotations

import itertools
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from albench import stats  # noqa: E402
from albench.report.curves import StrategyCurves, reference_curve  # noqa: E402
from albench.report.runs import SettingKey  # noqa: E402
from albench.report.tables import seed_text  # noqa: E402


def plot_curves(
    key: SettingKey, curves: list[StrategyCurves], out_stem: Path, rng: np.random.Generator
) -> list[Path]:
    """Mean AP50 and AP against labeled images with 95% bootstrap bands; PNG and SVG."""
    fig = Figure(figsize=(12, 4.8), layout="constrained")
    axes = fig.subplots(1, 2)
    colors = itertools.cycle(matplotlib.colormaps["tab10"].colors)
    seeds = seed_text(curves)
    ref = reference_curve(curves)
    for c in curves:
        is_ref = c is ref
        color = "black" if is_ref else next(colors)
        label = c.name + (" (reference)" if is_ref else " (upper bound)" if c.upper_bound else "")
        for ax, values in zip(axes, (c.ap50, c.ap)):
            mean, low, high = stats.stratified_bootstrap_ci(values, rng=rng)
            ax.plot(c.x, mean, color=color, label=label, marker="o", markersize=3,
                    linestyle="--" if c.upper_bound else "-", linewidth=2.2 if is_ref else 1.5,
                    zorder=3 if is_ref else 2)
            ax.fill_between(c.x, low, high, color=color, alpha=0.15, linewidth=0)
    for ax, metric in zip(axes, ("AP50", "AP (IoU 0.50:0.95)")):
        ax.set_xlabel("labeled images")
        ax.set_ylabel(metric)
        ax.set_title(f"Mean {metric.split()[0]}")
        ax.grid(alpha=0.3)
    axes[1].legend(loc="lower right", fontsize="small")
    fig.suptitle(f"{key.title} — {seeds} (bands: 95% bootstrap CI over seeds)")
    paths = [out_stem.with_suffix(".png"), out_stem.with_suffix(".svg")]
    fig.savefig(paths[0], dpi=150)
    fig.savefig(paths[1])
    return paths


