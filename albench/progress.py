"""Progress and per-round output (rich). Quiet mode prints nothing.

On a terminal a phase shows a live progress bar. Off a terminal (a file, a pipe, a cluster
or CI log) there are no live bars: a phase prints a plain line at most every ``interval``
seconds and one when it ends, every round is one full line, and tables are printed at
their full width (never cut to 80 columns).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable, Iterator

from rich.console import Console, RenderableType
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                           TimeElapsedColumn)
from rich.table import Table

PLAIN_INTERVAL_S = 30.0  # off a terminal: at most one progress line per phase this often


def live(console: Console) -> bool:
    """Whether ``console`` can show live bars (a terminal that is not 'dumb')."""
    return console.is_terminal and not console.is_dumb_terminal


def show(console: Console, renderable: RenderableType) -> None:
    """Print ``renderable``; off a terminal at its full natural width (no cut headers)."""
    if live(console):
        console.print(renderable)
        return
    need = console.measure(renderable, options=console.options.update(max_width=10_000)).maximum
    wide = Console(file=console.file, width=max(need, console.width), no_color=console.no_color,
                   highlight=False, soft_wrap=False)
    wide.print(renderable)


class Reporter:
    def __init__(self, quiet: bool = False, console: Console | None = None,
                 interval: float = PLAIN_INTERVAL_S) -> None:
        self.quiet = quiet
        self.console = console or Console(stderr=True)
        self.interval = interval

    def note(self, text: str) -> None:
        if not self.quiet:
            self.line(f"[dim]{text}[/dim]")

    def line(self, text: str) -> None:
        """One line, never wrapped (logs are read with grep)."""
        self.console.print(text, soft_wrap=True, highlight=False)

    @contextmanager
    def phase(self, name: str, total: int | None) -> Iterator[Callable[[int, str], None]]:
        """A progress bar (or spinner when ``total`` is None); yields ``tick(n, info)``.

        Off a terminal: plain lines instead (see the module docstring).
        """
        if self.quiet:
            yield lambda n=1, info="": None
            return
        if not live(self.console):
            with self._plain_phase(name, total) as tick:
                yield tick
            return
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                      MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                      TimeElapsedColumn(), console=self.console, transient=True) as bar:
            task = bar.add_task(name, total=total, info="")
            yield lambda n=1, info="": bar.update(task, advance=n, info=info)

    @contextmanager
    def _plain_phase(self, name: str, total: int | None) -> Iterator[Callable[[int, str], None]]:
        t0 = time.monotonic()
        state = {"done": 0, "info": "", "printed": t0, "lines": 0}
        of = f"/{total}" if total is not None else ""

        def tick(n: int = 1, info: str = "") -> None:
            state["done"] += n
            state["info"] = info
            now = time.monotonic()
            if now - state["printed"] >= self.interval:
                state["printed"], state["lines"] = now, state["lines"] + 1
                extra = f" {info}" if info else ""
                self.line(f"{name}: {state['done']}{of}{extra} ({now - t0:.0f}s)")

        yield tick
        if state["lines"]:  # a long phase: say that it ended; short ones stay silent
            extra = f" {state['info']}" if state["info"] else ""
            self.line(f"{name}: done {state['done']}{of}{extra} ({time.monotonic() - t0:.0f}s)")

    def round_done(self, row: dict) -> None:
        if self.quiet:
            return
        sel = f", selected {row['n_selected']}" if row.get("n_selected") else ""
        cached = " (round-0 model from cache)" if row.get("round0_cached") else ""
        gpu = float(row.get("peak_gpu_mb") or 0)
        gpu_text = f", peak GPU {gpu:.0f} MB" if gpu else ""
        own = float(row.get("t_strategy_train_s") or 0)
        gpu_text = (f", strategy-train {own:.1f}s" if own else "") + gpu_text
        self.line(
            f"round {row['round']}: {row['n_labeled']} labeled -> AP50 {float(row['ap50']):.3f}, "
            f"AP {float(row['ap']):.3f}; train {float(row['t_train_s']):.1f}s, "
            f"infer {float(row['t_infer_s']):.1f}s, select {float(row['t_select_s']):.2f}s"
            f"{gpu_text}{sel}{cached}")


def rounds_table(rows: list[dict], title: str) -> Table:
    gpu = any(float(r.get("peak_gpu_mb") or 0) for r in rows)
    table = Table(title=title)
    for col in ("round", "labeled", "boxes", "AP50", "AP", "train s", "infer s", "select s",
                "strategy-train s", "peak MB") + (("peak GPU MB",) if gpu else ()):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(str(r["round"]), str(r["n_labeled"]), str(r["n_boxes_labeled"]),
                      f"{float(r['ap50']):.3f}", f"{float(r['ap']):.3f}",
                      f"{float(r['t_train_s']):.1f}", f"{float(r['t_infer_s']):.1f}",
                      f"{float(r['t_select_s']):.2f}", f"{float(r['t_strategy_train_s']):.1f}",
                      f"{float(r['peak_rss_mb']):.0f}",
                      *([f"{float(r.get('peak_gpu_mb') or 0):.0f}"] if gpu else []))
    return table
