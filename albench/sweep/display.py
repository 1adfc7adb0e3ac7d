"""What a sweep shows: overall progress (a live bar on a terminal, plain lines off one), a
line per finished run, and the summary table at the end."""

from __future__ import annotations

from typing import Sequence

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                           TimeElapsedColumn)
from rich.table import Table

from albench.sweep.single import SweepOutcome


class _Display:
    """Overall progress (runs done / total, what is running) and a line per finished run."""

    def __init__(self, total: int, quiet: bool, console: Console | None = None) -> None:
        from albench.progress import live

        console = console or Console(stderr=True)
        self.quiet, self.live, self.shown = quiet, live(console), ""
        self.bar = Progress(  # off a terminal no live bar: plain lines (see current, done)
            SpinnerColumn(), TextColumn("sweep"), BarColumn(bar_width=20), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("{task.fields[current]}"),
            console=console, disable=quiet or not self.live)
        self.task = self.bar.add_task("sweep", total=total, current="")

    def __enter__(self) -> _Display:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def note(self, text: str) -> None:
        if not self.quiet:
            self.bar.console.print(text, highlight=False, soft_wrap=True)

    def current(self, text: str) -> None:
        self.bar.update(self.task, current=text)
        if not self.live and text and text != self.shown:
            self.note(f"running {text}")
        self.shown = text

    def done(self, o: SweepOutcome) -> None:
        self.bar.advance(self.task)
        if not self.live:
            task = self.bar.tasks[0]
            self.note(f"[{int(task.completed)}/{int(task.total or 0)}] "
                      f"{self._done_text(o)}")
            return
        self.note(self._done_text(o))

    @staticmethod
    def _done_text(o: SweepOutcome) -> str:
        if o.status == "failed":
            return f"[red]failed[/red] {o.run_id}: {o.error}"
        ap = "-" if o.final_ap50 is None else f"{o.final_ap50:.3f}"
        return f"{o.status} {o.run_id}: final AP50 {ap} ({o.seconds:.1f}s)"

def summary_table(outcomes: Sequence[SweepOutcome]) -> Table:
    failed = sum(o.status == "failed" for o in outcomes)
    table = Table(title=f"sweep: {len(outcomes) - failed} of {len(outcomes)} runs complete"
                        + (f", {failed} failed" if failed else ""))
    for col in ("run id", "status", "final AP50", "wall s") + (("error",) if failed else ()):
        table.add_column(col, justify="right" if col in ("final AP50", "wall s") else "left")
    for o in outcomes:
        status = f"[red]{o.status}[/red]" if o.status == "failed" else o.status
        cells = [o.run_id, status, "-" if o.final_ap50 is None else f"{o.final_ap50:.3f}",
                 f"{o.seconds:.1f}"]
        table.add_row(*cells, *([o.error or ""] if failed else []))
    return table
