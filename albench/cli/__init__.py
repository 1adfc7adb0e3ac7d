"""Command line: ``python -m albench {run,sweep,report,regress,paper,list}``.

Every command's arguments live here: ``run`` and ``list`` in this module, the others one
module each (:mod:`albench.cli.sweep`, :mod:`~albench.cli.report`,
:mod:`~albench.cli.regress`, :mod:`~albench.cli.paper`); the setting flags they share in
:mod:`albench.cli.settings`. Library modules never import the command line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from albench.cli.settings import DEFAULT_OUT, add_setting_args, option_help, setting_overrides
from albench.errors import AlbenchError

__all__ = ["main", "build_parser", "version", "add_setting_args", "setting_overrides",
           "DEFAULT_OUT"]


def version() -> str:
    """The installed distribution's version, else the package's own ``__version__``."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("albench")
    except PackageNotFoundError:
        from albench import __version__

        return __version__


def cmd_run(args: argparse.Namespace) -> int:
    from albench.config import resolve
    from albench.loop import ActiveLearningLoop
    from albench.options import parse_kv
    from albench.progress import Reporter, rounds_table, show

    cfg = resolve(args.preset, strategy=args.strategy, seed=args.seed,
                  strategy_options=parse_kv(args.opt, "--opt"), **setting_overrides(args))
    reporter = Reporter(quiet=args.quiet)
    loop = ActiveLearningLoop(cfg, Path(args.out), force=args.force, reporter=reporter,
                              wait=args.wait, lab_workers=args.lab_workers)
    reporter.note(f"run {cfg.run_id()} -> {loop.run_dir}")
    result = loop.run()
    if not args.quiet:
        show(Console(), rounds_table(result.rows, f"{cfg.run_id()} ({result.status})"))
        Console().print(f"results: {result.run_dir}")
    from albench.report.notices import learned_nothing_ap50

    warning = learned_nothing_ap50([row.get("ap50") for row in result.rows], "this run")
    if warning:
        Console(stderr=True).print(warning.replace("**", ""), highlight=False, markup=False)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """Every name and every option: run settings, strategies, backends, datasets, presets."""
    from rich.table import Table

    from albench import backends, data
    from albench.config import PRESETS, SETTINGS, flag
    from albench.data import COMMON_OPTIONS
    from albench.progress import show
    from albench.strategy import available

    console = Console()
    show(console, _options_table("run settings (flags of run, sweep and regress)",
                                 {flag(k): o for k, o in SETTINGS.items()}))
    groups = [("strategies (--strategy NAME)", "--opt", available()),
              ("backends (--backend NAME)", "--backend-opt", backends.available()),
              ("datasets (--dataset NAME)", "--dataset-opt", data.available())]
    for title, opt_flag, registry in groups:
        t = Table(title=title)
        t.add_column("name"), t.add_column("description")
        for name, item in registry.items():
            t.add_row(name, item.description)
        show(console, t)
        for name, item in registry.items():
            declared = dict(item.options)
            if opt_flag == "--dataset-opt":
                declared = {**COMMON_OPTIONS, **declared}
            if declared:
                show(console, _options_table(f"{name} ({opt_flag} KEY=VALUE)", declared))
    t = Table(title="presets (--preset)")
    for col in ("name", "initial", "per round", "rounds", "train", "seeds", "description"):
        t.add_column(col)
    for p in PRESETS.values():
        t.add_row(p.name, _fmt(p.initial), _fmt(p.budget), str(p.rounds), p.train_mode,
                  str(p.seeds), f"{p.description} [{p.recipe_note()}]")
    show(console, t)
    return 0


def _options_table(title: str, options: dict) -> Any:
    from rich.table import Table

    t = Table(title=title)
    for col in ("option", "default", "takes", "help"):
        t.add_column(col)
    for key, option in options.items():
        t.add_row(key, option.default_text(), option.allowed(), option.help)
    return t


def _fmt(v: int | float) -> str:
    return f"{v:.1%}" if isinstance(v, float) and v < 1 else str(v)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m albench",
        description="albench: compare active-learning strategies for object detection on equal terms.")
    parser.add_argument("--version", action="version", version=f"albench {version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run one AL experiment (strategy x seed x setting)",
                       description="Run one AL experiment. Re-running the same command resumes "
                                   "an interrupted run; a finished one is left as it is.")
    from albench.config import SETTINGS

    p.add_argument("--strategy", default="random", help=option_help(SETTINGS["strategy"]))
    p.add_argument("--seed", default=0, help=option_help(SETTINGS["seed"]))
    p.add_argument("--opt", action="append", metavar="KEY=VALUE",
                   help="strategy option, repeatable (see `list` for each strategy's options)")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="results folder (default: results/runs)")
    p.add_argument("--force", action="store_true",
                   help="start the run over: rerun a finished run, or one whose folder is "
                        "damaged or whose data changed (deletes its folder)")
    p.add_argument("--wait", action="store_true",
                   help="if another process is running this run, wait for it (default: exit)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--lab-workers", type=int, default=None, metavar="N",
                   help="processes for the fine-tunes of strategies that train (default: "
                        "one per core, at most 4); results do not depend on it")
    add_setting_args(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("list", help="strategies, backends, datasets and presets")
    p.set_defaults(func=cmd_list)

    from albench.cli import export, paper, regress, report, sweep

    for command in (sweep, report, regress, paper, export):
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "cache_dir", None):
        import os

        os.environ["ALBENCH_CACHE"] = str(Path(args.cache_dir).resolve())  # the flag wins
    try:
        return args.func(args)
    except AlbenchError as exc:
        Console(stderr=True).print(f"[bold red]error:[/bold red] {exc}", highlight=False)
        return 2
    except KeyboardInterrupt:
        Console(stderr=True).print("interrupted: finished rounds are saved; run the same "
                                   "command again to resume.")
        return 130


if __name__ == "__main__":
    sys.exit(main())
