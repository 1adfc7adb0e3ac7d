"""Sweeps: a grid of runs (strategies x seeds x settings) into one results folder.

``expand_grid`` turns strategies, seeds and settings into :class:`RunConfig` s;
``run_sweep`` runs them. The first run of every (setting, seed) goes first, and the other
strategies at that (setting, seed) are dispatched when it has finished, so they load its
cached round-0 model instead of training their own. Scheduling is left to the executor:
``local`` is a process pool (one process per worker, or in-process for one worker),
``ray`` makes every run one Ray task. Finished runs are skipped and interrupted ones
resume, so running the same sweep again continues where it stopped. A failing run is
recorded and the others go on.

One concept per module: :mod:`~albench.sweep.grid` (the grid and its settings),
:mod:`~albench.sweep.single` (one run and its outcome), :mod:`~albench.sweep.gpu` (GPU
memory and whether the runs fit), :mod:`~albench.sweep.executors` (in-process, process
pool, Ray), :mod:`~albench.sweep.display` (progress and the summary table),
:mod:`~albench.sweep.scheduler` (:func:`run_sweep`) and :mod:`~albench.sweep.files`
(sweep files). The command line is in :mod:`albench.cli.sweep`.
"""

from albench.sweep.display import _Display, summary_table
from albench.sweep.executors import RAY_HINT, cores
from albench.sweep.files import read_config
from albench.sweep.gpu import (GPU_MEM_PER_RUN_MB, GpuMemory, check_gpu_fit, check_gpus_per_run,
                               gpu_memory, runs_at_once)
from albench.sweep.grid import (SETTING_KEYS, SWEEP_KEYS, expand_grid, merge, parse_amount,
                                parse_opts, parse_seeds, parse_strategies)
from albench.sweep.scheduler import _drive, run_sweep
from albench.sweep.single import SweepOutcome, exit_code, finished, run_one

__all__ = [
    "SETTING_KEYS", "SWEEP_KEYS", "GPU_MEM_PER_RUN_MB", "RAY_HINT", "SweepOutcome", "GpuMemory",
    "parse_amount", "parse_seeds", "parse_strategies", "parse_opts", "merge", "expand_grid",
    "run_one", "finished", "exit_code", "cores", "gpu_memory", "check_gpus_per_run",
    "runs_at_once", "check_gpu_fit", "run_sweep", "summary_table", "read_config",
    "_Display", "_drive",
]
