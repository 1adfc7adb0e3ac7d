"""What a report says beside its numbers: the warning for a setting that learned nothing
(:func:`learned_nothing`, also printed by ``albench run``) and the tables as CSV next to
``report.md`` (:func:`write_csv_tables`)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Iterable

import numpy as np

LEARNED_NOTHING_AP50 = 0.01
"""A setting whose every run stays below this AP50 on every round learned nothing."""


def nothing_learned_text(what: str, best: float) -> str:
    return (
        f"**Warning: {what} learned nothing**: AP50 stays below {LEARNED_NOTHING_AP50} on "
        f"every round (best {best:.4f}), so its curves, AUBCs and label counts compare "
        "noise, not strategies. Give the detector more to learn from: more epochs "
        "(`--backend-opt epochs=N` or a larger `--preset`), a larger image size "
        "(`--backend-opt imgsz=N`), or pretrained weights (`--backend-opt weights=PATH`), "
        "and run again."
    )


def learned_nothing_ap50(ap50: Iterable[float], what: str) -> str | None:
    """The warning when every AP50 value given is below :data:`LEARNED_NOTHING_AP50` (and
    there is at least one), else None."""
    values = np.asarray(list(ap50), float)
    values = values[np.isfinite(values)]
    if values.size == 0 or values.max() >= LEARNED_NOTHING_AP50:
        return None
    return nothing_learned_text(what, float(values.max()))


def learned_nothing(curves: list) -> str | None:
    """The warning for a report setting whose every run stays below the threshold."""
    values = [v for c in curves for r in c.runs for v in r.rounds["ap50"].tolist()]
    return learned_nothing_ap50(values, "every run of this setting")


def md_to_rows(markdown: str) -> list[list[str]]:
    """The cells of a Markdown table (header first, the rule line dropped)."""
    rows = []
    for line in markdown.splitlines():
        if not line.startswith("|") or line.startswith("|:"):
            continue
        cells = [c.strip().replace("\\|", "|") for c in line.strip()[1:-1].split(" | ")]
        rows.append(cells)
    return rows


def write_csv_tables(folder: Path, tables: dict[str, str]) -> list[Path]:
    """Write every Markdown table as ``<folder>/<name>.csv`` (same cells); return the paths."""
    paths = []
    for name, markdown in tables.items():
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(md_to_rows(markdown))
        path = folder / f"{name}.csv"
        path.write_text(buffer.getvalue())
        paths.append(path)
    return paths
