"""Progress and per-round output on the terminal (rich). Quiet mode prints nothing."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                           TimeElapsedColumn)
from rich.table import Table


class Reporter:
    def __init__(self, quiet: bool = False, console: Console | None = None) -> None:
        self.quiet = quiet
        self.console = console or Console(stderr=True)

    def note(self, text: str) -> None:
        if not self.quiet:
            self.console.print(f"[dim]{text}[/dim]")

    @contextmanager
    def phase(self, name: str, total: int | None) -> Iterator[Callable[[int, str], None]]:
        """A progress bar (or spinner when ``total`` is None); yields ``tick(n, info)``."""
        if self.quiet:
            yield lambda n=1, info="": None
            return
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                      MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                      TimeElapsedColumn(), console=self.console, transient=True) as bar:
            task = bar.add_task(name, total=total, info="")
            yield lambda n=1, info="": bar.update(task, advance=n, info=info)

    def round_done(self, row: dict) -> None:
        if self.quiet:
            return
        sel = f", selected {row['n_selected']}" if row.get("n_selected") else ""
        cached = " (round-0 model from cache)" if row.get("round0_cached") else ""
        self.console.print(
            f"round {row['round']}: {row['n_labeled']} labeled -> AP50 {float(row['ap50']):.3f}, "
            f"AP {float(row['ap']):.3f}; train {float(row['t_train_s']):.1f}s, "
            f"infer {float(row['t_infer_s']):.1f}s, select {float(row['t_select_s']):.2f}s{sel}{cached}")


def rounds_table(rows: list[dict], title: str) -> Table:
    table = Table(title=title)
    for col in ("round", "labeled", "boxes", "AP50", "AP", "train s", "infer s", "select s",
                "strategy-train s", "peak MB"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(str(r["round"]), str(r["n_labeled"]), str(r["n_boxes_labeled"]),
                      f"{float(r['ap50']):.3f}", f"{float(r['ap']):.3f}",
                      f"{float(r['t_train_s']):.1f}", f"{float(r['t_infer_s']):.1f}",
                      f"{float(r['t_select_s']):.2f}", f"{float(r['t_strategy_train_s']):.1f}",
                      f"{float(r['peak_rss_mb']):.0f}")
    return table
