"""Command line: ``python -m albench {run,sweep,report,regress,paper,list}``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from albench.errors import AlbenchError

DEFAULT_OUT = Path("results/runs")


def _amount(text: str) -> int | float:
    """``100`` -> 100 images; ``5%`` or ``0.05`` -> a share of the pool (the one parser's
    amount syntax; a bad text raises :class:`argparse.ArgumentTypeError`)."""
    from albench.options import AMOUNT, Option

    try:
        return Option(1, "amount", kind=AMOUNT).from_text(text, "amount")
    except AlbenchError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a count nor a share such as 5%") from None


def add_setting_args(p: argparse.ArgumentParser) -> None:
    """Flags shared by ``run``, ``sweep`` and ``regress``: the setting of a run. Their help
    comes from :data:`albench.config.SETTINGS`; the values stay text here and are parsed,
    once, by :func:`albench.config.resolve`."""
    from albench.config import SETTINGS, flag

    g = p.add_argument_group("setting (a preset, then flags override it field by field)")
    for key in ("dataset", "backend", "preset", "initial", "budget", "rounds", "train_mode",
                "pool_subsample", "device", "eval_engine", "deterministic"):
        option = SETTINGS[key]
        default = {"preset": "quick", "device": "cpu"}.get(key)  # as given when left out
        g.add_argument(flag(key), default=default, metavar=key.upper(), help=_help(option))
    g.add_argument("--backend-opt", action="append", metavar="KEY=VALUE",
                   help="backend option, repeatable (e.g. epochs=20, weights=/path/model.pt)")
    d = p.add_argument_group("data")
    d.add_argument("--data-root",
                   help="COCO 2017 or VOCdevkit root (or ALBENCH_COCO_ROOT / ALBENCH_VOC_ROOT)")
    d.add_argument("--ann-train", help="coco-json: pool annotation file")
    d.add_argument("--ann-test", help="coco-json: test annotation file")
    d.add_argument("--images", help="coco-json: image folder")
    d.add_argument("--images-test", help="coco-json: test image folder (default: --images)")
    d.add_argument("--dataset-opt", action="append", metavar="KEY=VALUE",
                   help="dataset option, repeatable (e.g. pool_size=2000 for shapes)")
    d.add_argument("--cache-dir",
                   help="where generated datasets go (default: $ALBENCH_CACHE or ./.albench-cache)")


def _help(option: Any) -> str:
    """An option's help line for argparse (which needs '%' doubled)."""
    text = f"{option.help}; {option.allowed()} (default {option.default_text()})"
    return text.replace("%", "%%")


def setting_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The setting flags as :func:`albench.config.resolve` overrides (None = not given);
    resolve parses and checks them all, before any data is loaded."""
    from albench.options import parse_kv

    dataset_opts: dict[str, Any] = parse_kv(args.dataset_opt, "--dataset-opt")
    for name in ("data_root", "ann_train", "ann_test", "images", "images_test", "cache_dir"):
        if getattr(args, name, None):
            dataset_opts[name] = getattr(args, name)
    return dict(dataset=args.dataset, backend=args.backend, initial=args.initial,
                budget=args.budget, rounds=args.rounds, train_mode=args.train_mode,
                pool_subsample=args.pool_subsample, device=args.device,
                eval_engine=args.eval_engine, deterministic=getattr(args, "deterministic", None),
                dataset_options=dataset_opts,
                backend_options=parse_kv(args.backend_opt, "--backend-opt"))


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
                  str(p.seeds), p.description)
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
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run one AL experiment (strategy x seed x setting)",
                       description="Run one AL experiment. Re-running the same command resumes "
                                   "an interrupted run; a finished one is left as it is.")
    from albench.config import SETTINGS

    p.add_argument("--strategy", default="random", help=_help(SETTINGS["strategy"]))
    p.add_argument("--seed", default=0, help=_help(SETTINGS["seed"]))
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

    from albench import paper, regress, report, sweep  # sub-commands defined next to their code

    for module in (sweep, report, regress, paper):
        module.add_cli(sub)
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
