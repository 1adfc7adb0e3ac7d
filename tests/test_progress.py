"""Output off a terminal (cluster and CI logs): full lines, full-width tables, no live bars."""

from __future__ import annotations

import io

from rich.console import Console

from albench.progress import Reporter, rounds_table, show

ROW = {"round": 3, "n_labeled": 12345, "n_boxes_labeled": 67890, "ap50": 0.4567, "ap": 0.2345,
       "t_train_s": 123.4, "t_infer_s": 5.6, "t_select_s": 0.78, "t_strategy_train_s": 9.1,
       "peak_rss_mb": 2048, "peak_gpu_mb": 4321.0, "n_selected": 1000, "round0_cached": 1}
HEADERS = ("round", "labeled", "boxes", "AP50", "AP", "train s", "infer s", "select s",
           "strategy-train s", "peak MB", "peak GPU MB")


def plain_console(width: int = 80) -> tuple[Console, io.StringIO]:
    buf = io.StringIO()  # not a TTY, like a redirected log
    return Console(file=buf, width=width), buf


def test_round_line_is_one_full_line_off_a_terminal():
    console, buf = plain_console(width=40)
    Reporter(console=console).round_done(ROW)
    lines = buf.getvalue().splitlines()
    assert len(lines) == 1, lines
    line = lines[0]
    for part in ("round 3", "12345 labeled", "AP50 0.457", "train 123.4s", "select 0.78s",
                 "peak GPU 4321 MB", "selected 1000", "round-0 model from cache"):
        assert part in line
    assert len(line) > 40


def test_rounds_table_keeps_every_header_whole_off_a_terminal():
    console, buf = plain_console(width=80)
    rows = [dict(ROW, round=r) for r in range(5)]
    show(console, rounds_table(rows, "shapes-yolo-entropy-s0-0123abcd (complete)"))
    text = buf.getvalue()
    assert "…" not in text
    header = next(line for line in text.splitlines() if "round" in line and "labeled" in line)
    cells = [c.strip() for c in header.strip("┃ ").split("┃")]
    assert tuple(cells) == HEADERS
    assert max(len(line) for line in text.splitlines()) > 80


def test_gpu_column_only_when_a_round_used_the_gpu():
    console, buf = plain_console()
    show(console, rounds_table([dict(ROW, peak_gpu_mb="0.0")], "cpu run"))
    assert "GPU" not in buf.getvalue()


def test_terminal_output_still_fits_the_terminal():
    buf = io.StringIO()
    console = Console(file=buf, width=80, force_terminal=True, color_system=None)
    show(console, rounds_table([ROW], "t"))
    assert max(len(line) for line in buf.getvalue().splitlines()) <= 80


def test_phase_prints_plain_lines_and_no_bar_off_a_terminal():
    console, buf = plain_console()
    reporter = Reporter(console=console, interval=0.0)
    with reporter.phase("round 1: train", total=3) as tick:
        for epoch in range(3):
            tick(1, f"loss {1.5 - epoch:.2f}")
    lines = buf.getvalue().splitlines()
    assert [line.split(" (")[0] for line in lines] == [
        "round 1: train: 1/3 loss 1.50", "round 1: train: 2/3 loss 0.50",
        "round 1: train: 3/3 loss -0.50", "round 1: train: done 3/3 loss -0.50"]
    assert "\r" not in buf.getvalue() and "\x1b" not in buf.getvalue()  # no live redraws


def test_short_phase_stays_silent_off_a_terminal():
    console, buf = plain_console()
    with Reporter(console=console, interval=3600).phase("predict test split", total=None) as tick:
        tick(1, "")
    assert buf.getvalue() == ""


def test_quiet_prints_nothing():
    console, buf = plain_console()
    reporter = Reporter(quiet=True, console=console, interval=0.0)
    with reporter.phase("x", total=2) as tick:
        tick(1, "")
    reporter.round_done(ROW)
    reporter.note("hello")
    assert buf.getvalue() == ""
