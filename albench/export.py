"""Tidy export of results folders: one table row per (run, round), tied to the run it came from.

``rounds.csv`` alone does not say which configuration made a row (two runs of one strategy
with different options have the same dataset, backend, strategy and seed columns), so
concatenating run folders merges different experiments. :func:`runs_frame` joins every
round row with its run's identity from ``manifest.json``; :func:`write_export` writes the
table as CSV or Parquet and :func:`read_export` reads it back with the same column types.

Columns, in this order (``docs/reports.md`` has the same list):

- :data:`RUN_COLUMNS`, from the manifest: ``run_id``, ``config_hash``, ``setting_hash``,
  ``dataset``, ``backend``, ``strategy``, ``label``, ``seed``, ``preset``, ``upper_bound``,
  ``status``, ``run_dir`` (the run folder as found below the given results folder);
- ``opt.<name>`` for every resolved strategy option of any run (``config.strategy_options``;
  sorted by name; empty where a run's strategy has no such option; nested values are
  flattened to ``opt.<name>.<key>``, lists are written as JSON);
- every column of ``rounds.csv`` except those already above, in the order of
  :data:`albench.results.ROUND_COLUMNS` (then any others a run has): ``round``,
  ``n_labeled``, ``n_boxes_labeled``; the metrics ``ap``, ``ap50``, ``ap75``,
  ``per_class_ap`` (JSON); the seconds ``t_train_s``, ``t_train_aux_s``, ``t_infer_s``,
  ``t_eval_s``, ``t_select_s``, ``t_strategy_train_s``, ``t_round_s``; ``peak_rss_mb``,
  ``peak_gpu_mb``; ``n_selected``, ``selection_sha256`` (empty in the last round),
  ``round0_cached``. A column a run's ``rounds.csv`` lacks (written by an older version)
  is empty for that run.
"""

from __future__ import annotations

import importlib.util
import io
import json
import warnings
from pathlib import Path
from typing import Any, Iterable, Sequence

import pandas as pd

from albench.errors import AlbenchError, ConfigError, RunFolderError
from albench.results import ROUND_COLUMNS, atomic_write_bytes, damaged, read_rows

__all__ = ["RUN_COLUMNS", "runs_frame", "write_export", "read_export"]

RUN_COLUMNS = ["run_id", "config_hash", "setting_hash", "dataset", "backend", "strategy",
               "label", "seed", "preset", "upper_bound", "status", "run_dir"]
IDENTITY = ("dataset", "backend", "strategy", "preset", "seed")  # in manifest and rounds.csv
TEXT_COLUMNS = {"per_class_ap", "selection_sha256"}
KEY = ["run_id", "round"]


def _flatten(options: Any, prefix: str = "opt") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in sorted(options or {}):
        value = options[name]
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}.{name}"))
        elif isinstance(value, (list, tuple)):
            out[f"{prefix}.{name}"] = json.dumps(list(value))
        else:
            out[f"{prefix}.{name}"] = value
    return out


def _manifest(folder: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise damaged(folder, f"manifest.json cannot be read ({exc})") from None
    config = manifest.get("config") if isinstance(manifest, dict) else None
    if not isinstance(config, dict):
        raise damaged(folder, "manifest.json holds no config")
    absent = [k for k in ("run_id", "config_hash") if not manifest.get(k)]
    absent += [k for k in IDENTITY if config.get(k) is None]
    if absent:
        raise damaged(folder, f"manifest.json lacks {', '.join(absent)}")
    return manifest


def _run_frame(folder: Path, run_dir: str, manifest: dict[str, Any]) -> pd.DataFrame:
    """The rows of one run, typed, with the run's identity in front."""
    config = manifest["config"]
    rows = read_rows(folder / "rounds.csv")
    if not rows:
        raise damaged(folder, "rounds.csv has no rounds")
    frame = pd.DataFrame(rows)
    for name in IDENTITY:
        if name in frame and set(frame[name]) != {str(config[name])}:
            raise damaged(folder, f"rounds.csv column {name} disagrees with the manifest "
                          f"({sorted(set(frame[name]))} against {config[name]!r})")
    if frame["round"].duplicated().any():
        raise damaged(folder, "rounds.csv holds a round twice")
    frame = frame.drop(columns=[c for c in IDENTITY if c in frame])
    for name in frame.columns:
        if name not in TEXT_COLUMNS:
            try:
                frame[name] = pd.to_numeric(frame[name])
            except (ValueError, TypeError):
                raise damaged(folder, f"rounds.csv column {name} holds a value that is not a "
                              "number") from None
    ident = {"run_id": str(manifest["run_id"]), "config_hash": str(manifest["config_hash"]),
             "setting_hash": str(manifest.get("setting_hash") or ""),
             **{k: config[k] for k in IDENTITY},
             "label": str(manifest.get("label") or config["strategy"]),
             "upper_bound": bool(manifest.get("upper_bound", False)),
             "status": str(manifest.get("status", "missing")), "run_dir": run_dir,
             **_flatten(config.get("strategy_options"))}
    return pd.concat([pd.DataFrame([ident] * len(frame)), frame.reset_index(drop=True)], axis=1)


def _order_columns(frame: pd.DataFrame) -> pd.DataFrame:
    opts = sorted(c for c in frame.columns if c.startswith("opt."))
    known = [c for c in ROUND_COLUMNS if c not in RUN_COLUMNS]
    rest = [c for c in frame.columns if c not in RUN_COLUMNS and c not in opts and c not in known]
    for name in known:
        if name not in frame:
            frame[name] = "" if name in TEXT_COLUMNS else float("nan")
    frame = frame[RUN_COLUMNS + opts + known + rest]
    for name in TEXT_COLUMNS:
        frame[name] = frame[name].fillna("").astype(str)
    return frame


def _as_dirs(results_dirs: str | Path | Iterable[str | Path]) -> list[Path]:
    if isinstance(results_dirs, (str, Path)):
        return [Path(results_dirs)]
    return [Path(d) for d in results_dirs]


def runs_frame(results_dirs: str | Path | Sequence[str | Path],
               include_incomplete: bool = False) -> pd.DataFrame:
    """One row per (run, round) of every run below ``results_dirs`` (a folder or a list).

    A run is a folder holding ``manifest.json`` (at any depth). Runs whose manifest status
    is not ``complete`` are left out unless ``include_incomplete``. A damaged run folder
    (unreadable manifest or ``rounds.csv``, rows that disagree with the manifest) is
    skipped with a warning naming it; :class:`ConfigError` when a folder does not exist or
    no run is left. A run id found again in a later folder (a copied run) is kept once if
    both copies agree and is a ``ConfigError`` if they differ. The result is sorted by
    ``run_id`` and ``round``; the pair is unique. Columns: see the module docstring.
    """
    frames: list[pd.DataFrame] = []
    seen: dict[str, tuple[Path, pd.DataFrame]] = {}
    dirs = _as_dirs(results_dirs)
    for root in dirs:
        if not root.is_dir():
            raise ConfigError(
                f"The results folder {root} does not exist, so there are no runs to export. "
                "Check the path; runs are written by `python -m albench run ...` or "
                "`python -m albench sweep ...` (by default to results/runs)."
            )
        for manifest_path in sorted(root.rglob("manifest.json")):
            folder = manifest_path.parent
            try:
                manifest = _manifest(folder)
                if manifest.get("status") != "complete" and not include_incomplete:
                    continue
                run = _run_frame(folder, str(folder), manifest)
            except RunFolderError as exc:
                warnings.warn(f"skipped {folder}: {exc}", stacklevel=2)
                continue
            run_id = str(manifest["run_id"])
            if run_id in seen:
                _check_copy(run_id, seen[run_id], (folder, run))
                continue
            seen[run_id] = (folder, run)
            frames.append(run)
    if not frames:
        raise ConfigError(
            f"No usable run below {', '.join(map(str, dirs))}: every folder with a "
            "manifest.json was damaged" + ("" if include_incomplete else " or unfinished")
            + ". Pass folders that hold finished runs (or include_incomplete=True)."
        )
    frame = _order_columns(pd.concat(frames, ignore_index=True))
    return frame.sort_values(KEY, kind="stable").reset_index(drop=True)


def _check_copy(run_id: str, first: tuple[Path, pd.DataFrame],
                again: tuple[Path, pd.DataFrame]) -> None:
    drop = ["run_dir", "status"]
    a, b = (f.drop(columns=drop).reset_index(drop=True) for _, f in (first, again))
    if a.columns.equals(b.columns) and a.equals(b):
        return
    raise ConfigError(
        f"The run {run_id} is in {first[0]} and in {again[0]} with different contents, so "
        "one table cannot hold both under one run id. Export the folders separately, or "
        "leave out the folder with the copy you do not want."
    )


def write_export(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a :func:`runs_frame` table to ``path``: ``.csv``, or ``.parquet`` (needs the
    optional ``pyarrow``); the write is atomic. Returns the path."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        atomic_write_bytes(path, frame.to_csv(index=False, lineterminator="\n").encode())
        return path
    if suffix != ".parquet":
        raise ConfigError(
            f"Cannot export to {path}: the file name must end in .csv or .parquet, which "
            "selects the format. Name the output e.g. runs.csv or runs.parquet."
        )
    if importlib.util.find_spec("pyarrow") is None:
        raise ConfigError(
            f"Cannot write {path}: Parquet needs the optional package pyarrow, which is not "
            "installed. Install it with `pip install pyarrow` (or `pip install -e '.[parquet]'`), "
            "or export to a .csv file."
        )
    buf = io.BytesIO()
    _parquet_safe(frame).to_parquet(buf, index=False)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _parquet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns holding values of several Python types (an option that is a number in one
    run and a string in another) become strings; Parquet needs one type a column."""
    out = frame.copy()
    for name in out.columns:
        if out[name].dtype == object:
            kinds = {type(v) for v in out[name] if v is not None and v == v}
            if len(kinds) > 1:
                out[name] = [None if v is None or v != v else str(v) for v in out[name]]
    return out


def read_export(path: str | Path) -> pd.DataFrame:
    """Read a file written by :func:`write_export` with the column types it had."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"The export {path} does not exist. Write one with write_export.")
    try:
        if path.suffix.lower() == ".parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, dtype={c: str for c in (*TEXT_COLUMNS, *RUN_COLUMNS)
                                             if c not in ("seed", "upper_bound")})
    except (OSError, ValueError, ImportError, AlbenchError) as exc:
        raise ConfigError(f"The export {path} cannot be read ({exc}). Write it again with "
                          "write_export.") from None
    for name in TEXT_COLUMNS | {"label", "setting_hash"}:
        if name in frame:
            frame[name] = frame[name].fillna("").astype(str)
    return frame
