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
    """``100`` -> 100 images; ``5%`` or ``0.05`` -> a share of the pool."""
    try:
        if text.endswith("%"):
            return float(text[:-1]) / 100
        return float(text) if "." in text else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a count nor a share such as 5%") from None


def _auto(value: str) -> Any:
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(value.lower(), value)


def add_setting_args(p: argparse.ArgumentParser) -> None:
    """Flags shared by ``run``, ``sweep`` and ``regress``: the setting of a run."""
    g = p.add_argument_group("setting (a preset, then flags override it field by field)")
    g.add_argument("--dataset", help="shapes, coco, voc or coco-json (default: the preset's, else shapes)")
    g.add_argument("--backend", help="yolo (default) or frcnn")
    g.add_argument("--preset", default="quick", help="named protocol (default: quick)")
    g.add_argument("--initial", type=_amount,
                   help="initial labeled images: a count (100) or a share of the pool in (0, 1] "
                        "(0.05 or 5%%)")
    g.add_argument("--budget", type=_amount,
                   help="images labeled per round: a count or a share, as --initial")
    g.add_argument("--rounds", type=int, help="selection rounds after the initial training (0 or more)")
    g.add_argument("--train-mode", choices=["warm", "scratch"],
                   help="warm: fine-tune last round's model; scratch: retrain from init (papers)")
    g.add_argument("--pool-subsample", type=int,
                   help="use a random subset of N >= 1 pool images (quick looks)")
    g.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or mps")
    g.add_argument("--eval-engine", choices=["faster", "pycocotools"], help="COCO evaluation engine")
    g.add_argument("--deterministic", choices=["auto", "on", "off"],
                   help="bit-reproducible GPU runs (default auto: on for yolo on CUDA, off for "
                        "frcnn on CUDA where it is slow; CPU runs are reproducible anyway)")
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


def setting_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The setting flags as :func:`albench.config.resolve` overrides (None = not given);
    resolve checks them all, before any data is loaded."""
    from albench.config import parse_kv

    dataset_opts = {k: _auto(v) for k, v in parse_kv(args.dataset_opt, "--dataset-opt").items()}
    for flag in ("data_root", "ann_train", "ann_test", "images", "images_test", "cache_dir"):
        if getattr(args, flag, None):
            dataset_opts[flag] = getattr(args, flag)
    return dict(dataset=args.dataset, backend=args.backend, initial=args.initial,
                budget=args.budget, rounds=args.rounds, train_mode=args.train_mode,
                pool_subsample=args.pool_subsample, device=args.device,
                eval_engine=args.eval_engine, deterministic=getattr(args, "deterministic", None),
                dataset_options=dataset_opts,
                backend_options=parse_kv(args.backend_opt, "--backend-opt"))


def cmd_run(args: argparse.Namespace) -> int:
    from albench.config import parse_kv, resolve
    from albench.loop import ActiveLearningLoop
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
    from rich.table import Table

    import strategies
    from albench import backends, data
    from albench.config import PRESETS
    from albench.progress import show

    console = Console()
    t = Table(title="strategies (--strategy, options with --opt KEY=VALUE)")
    t.add_column("name"), t.add_column("description"), t.add_column("options (default)")
    for name, cls in strategies.available().items():
        opts = ", ".join(f"{k}={o.default!r}" for k, o in cls.options.items()) or "-"
        t.add_row(name, cls.description, opts)
    show(console, t)
    t = Table(title="backends (--backend, options with --backend-opt KEY=VALUE)")
    t.add_column("name"), t.add_column("description")
    for name, info in backends.available().items():
        t.add_row(name, info.description)
    show(console, t)
    t = Table(title="datasets (--dataset)")
    t.add_column("name"), t.add_column("description")
    for name, info in data.available().items():
        t.add_row(name, info.description)
    show(console, t)
    t = Table(title="presets (--preset)")
    for col in ("name", "initial", "per round", "rounds", "train", "seeds", "description"):
        t.add_column(col)
    for p in PRESETS.values():
        t.add_row(p.name, _fmt(p.initial), _fmt(p.budget), str(p.rounds), p.train_mode,
                  str(p.seeds), p.description)
    show(console, t)
    return 0


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
    p.add_argument("--strategy", default="random", help="strategy name (see `list`)")
    p.add_argument("--seed", type=int, default=0, help="0 or more (default 0)")
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
