"""``python -m albench sweep``: strategies x seeds x settings into one results folder.

Flags override the ``--config`` sweep file, which overrides the preset
(:func:`plan_from_args`); :func:`albench.sweep.run_sweep` runs the grid.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from albench.cli.settings import DEFAULT_OUT, add_setting_args, setting_overrides
from albench.config import RunConfig
from albench.errors import ConfigError
from albench.sweep import (GPU_MEM_PER_RUN_MB, SETTING_KEYS, check_gpus_per_run, cores, exit_code,
                           expand_grid, merge, parse_opts, read_config, run_sweep)


@dataclass
class SweepPlan:
    configs: list[RunConfig]
    out: Path
    executor: str
    workers: int
    ray_address: str | None
    gpu_mem_per_run: float | None = None
    gpus_per_run: float = 1.0


def plan_from_args(args: argparse.Namespace) -> SweepPlan:
    """Flags over the --config file over the preset; the grid of runs and where they go."""
    file = read_config(args.config) if args.config else {}
    ns = argparse.Namespace(**{**vars(args), "backend": args.backend or file.get("backend")})
    flags = {**setting_overrides(ns), "backend": args.backend, "preset": args.preset}
    flags = {k: v for k, v in flags.items() if v not in (None, {})}
    base = merge({k: file[k] for k in SETTING_KEYS if k in file}, flags)
    settings = [merge(entry, flags) for entry in file.get("settings") or []]
    strategy_options = {k: dict(v) for k, v in (file.get("strategy_options") or {}).items()}
    for name, given in parse_opts(args.opt).items():
        strategy_options.setdefault(name, {}).update(given)
    names = args.strategies or file.get("strategies")
    if not names:
        raise ConfigError("Say which strategies to sweep: --strategies random,entropy (or all), "
                          "or strategies: in the --config file.")
    seeds = args.seeds if args.seeds is not None else file.get("seeds")
    configs = expand_grid(names, seeds, settings=settings or None,
                          strategy_options=strategy_options, **base)
    executor = args.executor or file.get("executor") or "local"
    workers = args.workers or file.get("workers") or (cores() if executor == "ray" else 1)
    return SweepPlan(configs, Path(args.out or file.get("out") or DEFAULT_OUT), executor,
                     int(workers), args.ray_address or file.get("ray_address"),
                     *_gpu_sharing(args, file, executor))


def _gpu_sharing(args: argparse.Namespace, file: dict, executor: str) -> tuple[float | None, float]:
    """(--gpu-mem-per-run, --gpus-per-run) from the flags over the sweep file."""
    def number(key: str) -> float | None:
        value = getattr(args, key, None)
        value = file.get(key) if value is None else value
        try:
            return None if value is None else float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key} must be a number, not {value!r}.") from None

    mem, share = number("gpu_mem_per_run"), number("gpus_per_run")
    if share is not None and executor != "ray":
        raise ConfigError("--gpus-per-run is the share of a GPU each Ray task asks for; with the "
                          "local executor runs share a GPU by --workers (e.g. --workers 4). Drop "
                          "--gpus-per-run or add --executor ray.")
    return mem, check_gpus_per_run(1.0 if share is None else share)


def cmd_sweep(args: argparse.Namespace) -> int:
    plan = plan_from_args(args)
    return exit_code(run_sweep(plan.configs, plan.out, plan.executor, plan.workers,
                               plan.ray_address, quiet=args.quiet,
                               gpu_mem_per_run=plan.gpu_mem_per_run,
                               gpus_per_run=plan.gpus_per_run))


def add_parser(sub: Any) -> None:
    """Register ``sweep`` on the CLI's sub-parsers."""
    p = sub.add_parser(
        "sweep", help="run strategies x seeds x settings into one results folder",
        description="Run a grid of AL experiments into one results folder. Running the same "
                    "command again skips finished runs and resumes interrupted ones. Flags "
                    "override the --config file, which overrides the preset.")
    p.add_argument("--strategies", help="comma list of strategies, or all (see `list`)")
    p.add_argument("--seeds", help="0-4, 0,2,5 or a mix (default: the preset's seed count)")
    p.add_argument("--opt", action="append", metavar="STRATEGY:KEY=VALUE",
                   help="strategy option, repeatable (e.g. entropy:aggregate=max)")
    p.add_argument("--out", help="results folder (default: results/runs)")
    p.add_argument("--executor", choices=["local", "ray"], help="local processes (default) or Ray")
    p.add_argument("--workers", type=int,
                   help="parallel runs (local default 1 = in this process; ray: CPUs of a "
                        "local Ray instance, default all cores); with --device cuda the local "
                        "workers share the GPU")
    p.add_argument("--gpu-mem-per-run", type=float, metavar="MB",
                   help=f"GPU memory one run is assumed to need when runs share a GPU; the "
                        f"sweep stops with an error when they would not fit (default "
                        f"{GPU_MEM_PER_RUN_MB}, an estimate for the small presets)")
    p.add_argument("--gpus-per-run", type=float, metavar="SHARE",
                   help="ray: the share of a GPU each CUDA run asks for (default 1; 0.25 puts "
                        "four runs on one GPU)")
    p.add_argument("--ray-address", help="join this Ray cluster (e.g. auto or HOST:6379) "
                                         "instead of starting a local instance")
    p.add_argument("--config", help="sweep file (YAML) with the same fields; flags override it")
    p.add_argument("--quiet", action="store_true", help="no progress output or summary")
    add_setting_args(p)
    p.set_defaults(func=cmd_sweep, preset=None, device=None)
