"""``python -m albench regress``: re-run the reference sweep (or read fresh runs) and check
their AL curves against the reference's bands (:func:`albench.regress.compare`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from albench.errors import ConfigError
from albench.regress import (DEFAULT_FLOOR, DEFAULT_K, INSTALLED_REFERENCE, check_arguments,
                             compare, format_result, packaged_reference, rebuild_reference,
                             reference_configs)
from albench.sweep import run_sweep


def add_parser(sub: Any) -> None:
    """Register ``regress`` on the CLI's sub-parsers."""
    p = sub.add_parser(
        "regress", help="re-run the reference sweep and check its AL curves",
        description="Check AL curves against a reference. Without --runs, the reference's own "
                    "sweep (<reference>/sweep.yaml) is run again into --fresh (finished runs "
                    "there are reused) and compared; exit status 0 when every reference "
                    "strategy's AUBC lies inside its band, 1 otherwise (see docs/reports.md).")
    p.add_argument("--reference",
                   help="folder holding the reference runs (default: the reference shipped with "
                        "albench, results/reference of its source tree)")
    p.add_argument("--runs", help="compare the complete runs in this folder instead of re-running")
    p.add_argument("--fresh", default="results/runs/regress",
                   help="where re-run sweeps go (default: results/runs/regress)")
    p.add_argument("--workers", type=int, default=1, help="parallel runs of the re-run sweep")
    p.add_argument("--k", default=str(DEFAULT_K),
                   help=f"band half-width in standard errors, finite and > 0 ({DEFAULT_K:g})")
    p.add_argument("--floor", default=str(DEFAULT_FLOOR),
                   help=f"smallest band half-width in AP, finite and >= 0 ({DEFAULT_FLOOR:g})")
    p.add_argument("--out", help="also write the result to this Markdown file")
    p.add_argument("--rebuild", action="store_true",
                   help="regenerate the reference itself from its sweep file, then stop")
    p.add_argument("--quiet", action="store_true", help="no progress output while re-running")
    p.set_defaults(func=cmd_regress)


def _number(flag: str, text: Any) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{flag} must be a number, not {text!r}. Give it as {flag} 3 "
                          "(see python -m albench regress --help).") from None


def cmd_regress(args: argparse.Namespace) -> int:
    k, floor = _number("--k", args.k), _number("--floor", args.floor)
    check_arguments(k, floor)
    reference = Path(args.reference) if args.reference else packaged_reference()
    if args.rebuild:
        if not args.reference and reference.name == INSTALLED_REFERENCE:
            raise ConfigError(f"--rebuild would rewrite the reference installed with albench "
                              f"({reference}). Pass --reference DIR to rebuild a reference "
                              "folder of your own (results/reference in a checkout).")
        return rebuild_reference(reference, args.workers, args.quiet)
    runs = args.runs
    if runs is None:
        runs = args.fresh
        outcomes = run_sweep(reference_configs(reference), Path(runs),
                             workers=args.workers, quiet=args.quiet)
        failed = [o for o in outcomes if o.status == "failed"]
        for o in failed:
            print(f"run {o.run_id} failed: {o.error}")
    result = compare(reference, runs, k=k, floor=floor)
    text = format_result(result)
    print(text, end="")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    return result.exit_code
