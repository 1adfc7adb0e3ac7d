"""Paper figure sets: run (or resume) a paper's sweeps, then draw its figures.

A figure set is data (a ``figures.yaml``, one sweep file per panel, a references table;
see :mod:`albench.paper.spec`), shipped by a strategy package or given by its path.
:func:`draw_figures` (:mod:`albench.paper.page`) draws every figure from a results folder
without training; ``python -m albench paper NAME`` (:mod:`albench.cli.paper`) first runs
what is missing through :func:`albench.sweep.run_sweep` (finished runs are skipped,
interrupted ones resume). See docs/paper.md.
"""

from albench.paper.page import command_for, draw_figures
from albench.paper.spec import available, dry_run, load_figure_set, plan

__all__ = ["load_figure_set", "available", "plan", "dry_run", "draw_figures", "command_for"]
