"""MGRAL's section of a report and its diagnostics figure on a paper page.

:func:`report_section` is the section the MGRAL class declares (``report_section``, see
:mod:`albench.report.sections`): the report calls it for every setting with MGRAL runs
(a table and three figures), and a paper page for its strategy-diagnostics figure (the
same table and the three figures in one). The data and statistics are in
:mod:`strategies.mgral.report_data`, the figures in :mod:`strategies.mgral.report_figures`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable

from strategies.mgral.report_data import (DIAGNOSTICS, STRATEGY, MgralRun, calibration_pairs,
                                          collect, cost_multiples, first_with_lut, lut_matrix,
                                          pooled_calibration, read_diagnostics, realised_gains,
                                          spearman_rho, summary_rows)
from strategies.mgral.report_figures import (plot_calibration, plot_diagnostics, plot_lut,
                                             plot_rewards)
from strategies.mgral.report_validity import validity_lines

__all__ = [
    "MgralRun", "spearman_rho", "realised_gains", "calibration_pairs", "cost_multiples",
    "lut_matrix", "read_diagnostics", "collect", "pooled_calibration", "summary_rows",
    "plot_calibration", "plot_lut", "plot_rewards", "plot_diagnostics", "section_lines",
    "draw_all", "report_section", "STRATEGY", "DIAGNOSTICS",
]


def _f(value: float, fmt: str) -> str:
    return "—" if value is None or not math.isfinite(value) else format(value, fmt)


def section_lines(runs: list[MgralRun], figures: dict[str, str]) -> list[str]:
    """The Markdown of an MGRAL section; ``figures`` maps figure name -> relative PNG path."""
    rows = summary_rows(runs)
    header = ["Strategy", "Seeds", "Pairs", "Spearman rho", "p", "Pairs on R", "rho on R", "p on R",
              "Cost × training (mean)",
              "Cost × training (max)", "LUT s/round", "Agent s/round", "Variants/round",
              "Lookup speed-up (median)"]
    table = ["| " + " | ".join(header) + " |", "|:---|" + "---:|" * (len(header) - 1)]
    for r in rows:
        cells = [r["label"], str(r["seeds"]), str(r["pairs"]), _f(r["rho"], ".2f"), _f(r["p"], ".3f"),
                 str(r["pairs_R"]), _f(r["rho_R"], ".2f"), _f(r["p_R"], ".3f"),
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
        "constant side); p: its two-sided p-value (`albench.stats.spearman`, scipy's "
        "spearmanr; NaN below three pairs). The strategy never sees the test split; the "
        "realised gain is read "
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
    for name, caption in (("diagnostics", "Estimated vs realised gain, agent reward and "
                                          "look-up tables"),
                          ("calibration", "Estimated vs realised gain"),
                          ("lut", "Look-up table per round"),
                          ("rewards", "Agent reward over policy iterations")):
        if name in figures:
            png = figures[name]
            lines += [f"![{caption}]({png})", "",
                      f"{caption}: [PNG]({png}) · [SVG]({png[:-4]}.svg)", ""]
    lines += validity_lines(runs)
    problems = [p for r in runs for p in r.problems]
    lines += [f"- {p}" for p in problems] + ([""] if problems else [])
    return lines


def draw_all(runs: list[MgralRun], folder: Path, prefix: str = "mgral_") -> dict[str, str]:
    """Draw the three MGRAL figures into ``folder``; names -> PNG file names."""
    figures: dict[str, str] = {}
    plot_calibration(runs, folder / f"{prefix}calibration")
    figures["calibration"] = f"{prefix}calibration.png"
    with_lut = first_with_lut(runs)
    if with_lut is not None:
        plot_lut(with_lut, folder / f"{prefix}lut")
        figures["lut"] = f"{prefix}lut.png"
    plot_rewards(runs, folder / f"{prefix}rewards")
    figures["rewards"] = f"{prefix}rewards.png"
    return figures


def report_section(runs: Iterable[Any], root: str | Path | None, folder: Path,
                   stem: str | None = None) -> list[str]:
    """The MGRAL section of a setting's report.md (three figures), or with ``stem`` the
    figure of a paper page (:func:`plot_diagnostics` as ``<folder>/<stem>.png``/``.svg``) and
    the same table; no lines when there is no MGRAL run."""
    if root is None:
        return []
    found = collect(runs, root)
    if not found:
        return []
    if stem is None:
        return section_lines(found, draw_all(found, Path(folder)))
    plot_diagnostics(found, Path(folder) / stem)
    return section_lines(found, {"diagnostics": f"{stem}.png"})
