"""``python -m albench paper NAME``: run (or resume) a figure set's sweeps, then draw its
figures and their page (:func:`albench.paper.draw_figures`)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from albench.errors import ConfigError
from albench.paper import draw_figures, dry_run, load_figure_set, plan
from albench.progress import show
from albench.sweep import exit_code, run_sweep


def add_parser(sub: Any) -> None:
    """Register ``paper`` on the CLI's sub-parsers."""
    p = sub.add_parser(
        "paper", help="run a paper's sweeps and draw its figures (see `paper --help`)",
        description="Run or resume every sweep a paper's figure set needs (finished runs are "
                    "skipped), then draw its figures and a Markdown page. --scale shapes runs the "
                    "figure set on the embedded dataset with the quick preset (a CPU is enough); "
                    "--scale paper runs the published protocols (VOC/COCO roots, a GPU).")
    p.add_argument("figure_set", help="a figure set: the name of a strategy whose package ships "
                                      "one (paper/figures.yaml), or the path of a figures.yaml")
    p.add_argument("--out", help="where the figures and page go (default: reports/paper-NAME)")
    p.add_argument("--scale", help="a scale of the figure set: shapes (the default) or paper "
                                   "(the default when --data-root is given)")
    p.add_argument("--results", help="results folder of the runs (default: the scale's, as its "
                                     "figures.yaml names it)")
    p.add_argument("--data-root", help="dataset root for the paper scale (else $ALBENCH_VOC_ROOT / "
                                       "$ALBENCH_COCO_ROOT, which also keep the path out of run ids)")
    p.add_argument("--device", help="cpu (default), cuda, cuda:1 ...")
    p.add_argument("--workers", type=int, default=1, help="parallel runs (default 1)")
    p.add_argument("--dry-run", action="store_true",
                   help="list the runs, how many are done and what the rest should cost; run nothing")
    p.add_argument("--no-run", action="store_true", help="draw from the runs there are; run nothing")
    p.add_argument("--quiet", action="store_true", help="no sweep progress output")
    p.set_defaults(func=cmd_paper)


def cmd_paper(args: argparse.Namespace) -> int:
    figset = load_figure_set(args.figure_set)
    scale = args.scale or ("paper" if args.data_root else "shapes")
    if scale not in figset.scales:
        raise ConfigError(f"--scale {scale}: the figure set {figset.name} has scales "
                          f"{', '.join(figset.scales)}.")
    results = Path(args.results or figset.scales[scale].results)
    overrides = _overrides(args)
    plans = plan(figset, scale, overrides)
    if args.dry_run:
        _print_dry_run(dry_run(plans, results), results)
        return 0
    code = 0
    configs = [c for p in plans for c in p.configs]
    if configs and not args.no_run:
        code = exit_code(run_sweep(configs, results, workers=args.workers, quiet=args.quiet))
    page = draw_figures(figset, scale, results, args.out or f"reports/paper-{figset.name}",
                        overrides)
    print(f"figures written: {page}")
    return code


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if args.device:
        out["device"] = args.device
    if args.data_root:
        out["dataset_options"] = {"data_root": args.data_root}
    return out


def _print_dry_run(rows: list, results: Path) -> None:
    done = sum(r.status == "done" for r in rows)
    todo = [r for r in rows if r.status != "done"]
    known = [r.estimate_s for r in todo if math.isfinite(r.estimate_s)]
    t = Table(title=f"{len(rows)} runs in {results}: {done} done, {len(todo)} not")
    for col in ("panel", "strategy", "seed", "run id", "status", "estimate", "estimated from"):
        t.add_column(col)
    for r in rows:
        est = ("" if r.status == "done" else "?" if not math.isfinite(r.estimate_s)
               else f"{r.estimate_s / 60:.1f} min")
        t.add_row(r.panel, r.strategy, "" if r.seed < 0 else str(r.seed), r.run_id, r.status, est, r.basis)
    console = Console()
    show(console, t)
    unknown = len(todo) - len(known)
    console.print(f"estimated cost of the rest: {sum(known) / 60:.1f} min on this kind of machine"
                  + (f" plus {unknown} run(s) with no estimate" if unknown else "")
                  + " (from finished runs' t_round_s)", highlight=False)
