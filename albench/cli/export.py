"""``python -m albench export``: every run of results folders as one tidy table."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    """Register ``export`` on the CLI's sub-parsers."""
    p = sub.add_parser("export", help="runs of results folders as one CSV or Parquet table",
                       description="Write one row per (run, round) of every run below the given "
                                   "results folders, with run id, config and setting hashes and "
                                   "the strategy's options (opt.* columns), so runs of different "
                                   "configurations never merge. Columns: docs/reports.md.")
    p.add_argument("results", nargs="+", help="results folders holding runs")
    p.add_argument("--out", required=True,
                   help="FILE.csv or FILE.parquet (Parquet needs pip install pyarrow)")
    p.add_argument("--include-incomplete", action="store_true",
                   help="also export runs that are still running or were interrupted")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from albench.export import runs_frame, write_export

    frame = runs_frame(args.results, include_incomplete=args.include_incomplete)
    path = write_export(frame, args.out)
    print(f"exported {frame['run_id'].nunique()} run(s), {len(frame)} row(s): {path}")
    return 0
