"""The report's figure: mean AP50 and AP against labeled images with interval bands, and
the paired Δ AP50 against the reference per round, in :mod:`albench.style`."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from albench import stats, style  # noqa: E402
from albench.report.curves import StrategyCurves, reference_curve  # noqa: E402
from albench.report.runs import SettingKey  # noqa: E402
from albench.report.tables import delta_intervals, seed_text  # noqa: E402
from albench.strategy import available  # noqa: E402

UPPER_LEGEND = "upper bounds: hollow markers, thinner lines"


def strategy_styles(extra: list[str] | tuple[str, ...] = ()) -> style.StrategyStyles:
    """Styles fixed by the full registry order (names it lacks appended, sorted), so a
    strategy keeps its look in every figure whichever others are drawn with it."""
    order = list(available())
    return style.StrategyStyles(order + sorted(set(extra) - set(order)))


def look_name(c: StrategyCurves) -> str:
    """The registry name a curve is styled by: its runs' configured strategy."""
    names = {str(r.config.get("strategy", c.name)) for r in c.runs}
    return names.pop() if len(names) == 1 else c.name


def curve_looks(curves: list, base=look_name) -> dict[str, style.Look]:
    """One look per curve, keyed by its name: a strategy's registry look for its first
    curve, and a look of its own for every further variant of that strategy in the same
    figure (e.g. a strategy at its defaults and with one option changed), styled after
    every registry name, so no two lines of one figure share colour, marker and line style.
    ``base`` gives the registry name a curve is styled by."""
    seen: set[str] = set()
    keys: dict[str, str] = {}
    for c in curves:
        b = base(c)
        keys[c.name] = c.name if b in seen else b
        seen.add(b)
    styles = strategy_styles(list(keys.values()))
    return {name: styles[key] for name, key in keys.items()}


def plot_curves(
    key: SettingKey, curves: list[StrategyCurves], out_stem: Path, rng: np.random.Generator
) -> list[Path]:
    """Mean AP50 and AP against labeled images with 95% bands (the method picked by
    :func:`albench.stats.mean_interval`) and the paired Δ AP50 vs the reference; PNG, PDF
    and SVG written by :func:`albench.style.save`."""
    looks = curve_looks(curves)
    ref = reference_curve(curves)
    deltas = delta_intervals(curves, rng)
    methods: set[str] = set()
    with style.context():
        fig = Figure(figsize=(16, 4.8), layout="constrained")
        axes = fig.subplots(1, 3)
        for c in curves:
            kw = looks[c.name].kwargs(upper_bound=c.upper_bound)
            label = c.name + (" (reference)" if c is ref else " (upper bound)" if c.upper_bound else "")
            for ax, values in zip(axes[:2], (c.ap50, c.ap)):
                band = stats.mean_interval(values, rng=rng)
                methods.add(band.method)
                ax.plot(c.x, band.estimate, label=label, markersize=3, **kw)
                if band.has_interval:
                    ax.fill_between(c.x, band.low, band.high, color=kw["color"], alpha=0.15,
                                    linewidth=0)
            d = deltas.get(c.name)
            if d is not None:
                axes[2].plot(c.x, d.estimate, label=label, markersize=3, **kw)
                if d.has_interval:
                    axes[2].fill_between(c.x, d.low, d.high, color=kw["color"], alpha=0.15,
                                         linewidth=0)
        axes[2].axhline(0.0, color="black", linewidth=0.8)
        for ax, metric in zip(axes[:2], ("AP50", "AP (IoU 0.50:0.95)")):
            ax.set_xlabel("labeled images")
            ax.set_ylabel(metric)
            ax.set_title(f"Mean {metric.split()[0]}")
            ax.grid(alpha=0.3)
        axes[2].set_xlabel("labeled images")
        axes[2].set_ylabel("Δ AP50")
        axes[2].set_title(f"Δ AP50 vs {ref.name if ref else 'reference'} (paired by seed)")
        axes[2].grid(alpha=0.3)
        axes[1].legend(loc="lower right", title=UPPER_LEGEND if any(c.upper_bound for c in curves)
                       else None)
        how = " / ".join(sorted(stats_method_names(methods)))
        fig.suptitle(f"{key.title} — {seed_text(curves)} (bands: {how} over seeds)")
        return style.save(fig, out_stem)


def stats_method_names(methods: set[str]) -> list[str]:
    names = {"student-t": "95% t-interval", "bootstrap": "95% percentile bootstrap",
             "none": "no interval (one seed)"}
    return [names.get(m, m) for m in methods]
