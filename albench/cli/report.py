"""``python -m albench report``: curves and tables over finished runs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from albench.errors import ConfigError
from albench.report import write_report


def add_parser(sub: Any) -> None:
    """Register ``report`` on the CLI's sub-parsers."""
    p = sub.add_parser("report", help="curves and tables over finished runs",
                       description="Write AL curves, label-efficiency and compute-cost tables for "
                                   "every setting found under a results folder.")
    p.add_argument("results", nargs="?", default="results/runs",
                   help="folder holding the runs (default: results/runs)")
    p.add_argument("--out", default="reports", help="where the report goes (default: reports)")
    p.add_argument("--include-incomplete", action="store_true",
                   help="also report runs that are still running or were interrupted")
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise ConfigError(
            f"--out {args.out} is an existing file, but the report is a folder (index.md, "
            "figures and tables). Pass a folder path, e.g. --out reports/quick, or move the "
            "file away."
        )
    index = write_report(args.results, args.out, include_incomplete=args.include_incomplete)
    print(f"report written: {index}")
    return 0
