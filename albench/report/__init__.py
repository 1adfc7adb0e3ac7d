"""Reports over finished runs: AL curves, label-efficiency and compute-cost tables.

The report reads result *files* only. A results folder holds one folder per run (possibly
nested, e.g. ``results/runs/<run_id>/``), each with ``manifest.json`` and ``rounds.csv``.
Runs are grouped into *settings* by (dataset, backend, preset, setting_hash); runs of one
setting differ only in strategy, strategy options and seed, so they are comparable.
For every setting :func:`write_report` writes a folder with ``curves.png``/``.pdf``/``.svg``
(:mod:`albench.style`), ``report.md`` and its tables as CSV; ``index.md`` at the top links
them all. A strategy may add its own section to ``report.md``
(:mod:`albench.report.sections`). Statistics live in :mod:`albench.stats`; see
``docs/reports.md`` for their definitions.

One concept per module: :mod:`~albench.report.runs` (reading runs),
:mod:`~albench.report.curves` (aligning curves), :mod:`~albench.report.tables`,
:mod:`~albench.report.plots`, :mod:`~albench.report.sections` (strategy sections),
:mod:`~albench.report.notices` (the learned-nothing warning, CSV tables) and
:mod:`~albench.report.page` (the pages).
"""

from albench.report.curves import (REFERENCE, UPPER_MARK, StrategyCurves, reference_curve,
                                   strategy_curves)
from albench.report.page import UPPER_NOTE, write_report
from albench.report.plots import plot_curves
from albench.report.runs import (HOW_TO_RUN, REQUIRED_COLUMNS, Run, RunSet, SettingKey, SkippedRun,
                                 group_settings, load_runs, require_runs)
from albench.report.sections import section_hook, strategy_sections
from albench.report.notices import LEARNED_NOTHING_AP50, learned_nothing
from albench.report.tables import (TARGET_FRACTION, TIME_COLUMNS, cost_table, delta_intervals,
                                   label_efficiency_table, md_table)

__all__ = [
    "SettingKey", "Run", "SkippedRun", "RunSet", "StrategyCurves", "load_runs", "require_runs",
    "group_settings", "strategy_curves", "reference_curve", "label_efficiency_table",
    "cost_table", "md_table", "plot_curves", "write_report", "section_hook",
    "strategy_sections", "REFERENCE", "TARGET_FRACTION", "TIME_COLUMNS", "UPPER_MARK",
    "UPPER_NOTE", "REQUIRED_COLUMNS", "HOW_TO_RUN", "delta_intervals", "learned_nothing",
    "LEARNED_NOTHING_AP50",
]
