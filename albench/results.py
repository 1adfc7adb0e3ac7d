"""The result store: one folder per run, every write atomic.

``manifest.json``  config, hashes, versions, git commit, hardware, dataset fingerprint
``rounds.csv``     one tidy row per round (see ROUND_COLUMNS)
``selections.jsonl`` ids and scores chosen each round
``diagnostics.jsonl`` per-round diagnostics a strategy returned (e.g. a look-up table the strategy built)
``state/``         what resume needs: the commit record and the committed round
(:mod:`albench.runfolder` owns the folder; this module holds its file formats and writers.)
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from albench.errors import RunFolderError

ROUND_COLUMNS = [
    "dataset", "backend", "strategy", "preset", "seed", "round", "n_labeled", "n_boxes_labeled",
    "ap", "ap50", "ap75", "per_class_ap", "t_train_s", "t_train_aux_s", "t_infer_s", "t_eval_s",
    "t_select_s",
    "t_strategy_train_s", "t_round_s", "peak_rss_mb", "peak_gpu_mb", "n_selected",
    "selection_sha256", "round0_cached",
]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what a plain open() would give (mkstemp gives 0600)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary sibling, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_torch_save(obj: Any, path: Path) -> None:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def round_row(cfg: Any, round_: int, labeled: Mapping[int, Any], metrics: Mapping[str, Any], *,
              t_train: float, t_infer: float, t_eval: float, t_round: float, cached: bool,
              t_train_aux: float = 0.0,
              selected: np.ndarray | None = None, t_select: float = 0.0,
              t_strategy_train: float = 0.0, peak_gpu_mb: float = 0.0) -> dict:
    """One round's row of ``rounds.csv``, every column of :data:`ROUND_COLUMNS` filled.

    ``metrics`` is the evaluator's row (ap, ap50, ap75, per_class_ap); ``selected`` the ids
    chosen after this round's evaluation (None in the last round).
    """
    from albench.pool import ids_sha256

    row = {"dataset": cfg.dataset, "backend": cfg.backend, "strategy": cfg.strategy,
           "preset": cfg.preset, "seed": cfg.seed, "round": round_, "n_labeled": len(labeled),
           "n_boxes_labeled": sum(a.n_boxes for a in labeled.values()), **metrics,
           "t_train_s": t_train, "t_train_aux_s": t_train_aux, "t_infer_s": t_infer,
           "t_eval_s": t_eval,
           "t_select_s": t_select, "t_strategy_train_s": t_strategy_train,
           "t_round_s": t_round, "peak_rss_mb": peak_rss_mb(), "peak_gpu_mb": peak_gpu_mb,
           "n_selected": 0 if selected is None else len(selected),
           "selection_sha256": "" if selected is None else ids_sha256(selected),
           "round0_cached": int(cached)}
    _check_columns(row)
    return row


def _check_columns(row: Mapping[str, Any]) -> None:
    unknown = sorted(set(row) - set(ROUND_COLUMNS))
    missing = sorted(set(ROUND_COLUMNS) - set(row))
    if unknown or missing:
        raise ValueError(f"a rounds.csv row must have exactly ROUND_COLUMNS; unknown keys "
                         f"{unknown}, missing keys {missing}")


def write_rows(path: Path, rows: Iterable[dict]) -> None:
    """``rounds.csv``; a row with a key outside :data:`ROUND_COLUMNS` is an error."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=ROUND_COLUMNS, extrasaction="raise",
                            lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    atomic_write_text(path, buf.getvalue())


def read_rows(path: Path) -> list[dict]:
    """The rows of a ``rounds.csv`` ([] when there is none); a file that is not one albench
    wrote (undecodable, wrong header, a row without a whole round number) is a
    :class:`RunFolderError`."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            header = reader.fieldnames or []
    except (UnicodeDecodeError, csv.Error, OSError) as exc:
        raise damaged(path.parent, f"{path.name} cannot be read ({exc})") from None
    absent = [c for c in ("round", "n_labeled", "ap50") if c not in header]
    if absent:
        raise damaged(path.parent, f"{path.name} lacks the column(s) {', '.join(absent)}")
    for i, row in enumerate(rows, start=2):
        if None in row or None in row.values() or not str(row["round"]).isdigit():
            raise damaged(path.parent, f"line {i} of {path.name} is not a complete round row")
    return rows


def damaged(run_dir: Path, what: str) -> RunFolderError:
    """The error for a run folder albench cannot trust: what is wrong and how to start over."""
    return RunFolderError(
        f"The run folder {run_dir} is damaged: {what}. Its results cannot be trusted or "
        "resumed. Run the same command with --force to start this run over (this deletes "
        "the folder), or move the folder away to keep it."
    )


def write_jsonl(path: Path, records: Iterable[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))


def read_jsonl(path: Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    try:
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
                   if line.strip()]
    except (UnicodeDecodeError, ValueError, OSError) as exc:
        raise damaged(path.parent, f"{path.name} cannot be read ({exc})") from None
    if not all(isinstance(r, dict) for r in records):
        raise damaged(path.parent, f"{path.name} holds lines that are not records")
    return records


def command_line() -> str:
    """The command that started this process, as one shell line."""
    argv = list(sys.argv)
    if argv and argv[0].endswith(("albench/__main__.py", "albench/cli/__init__.py")):
        argv = ["python", "-m", "albench", *argv[1:]]
    return shlex.join(argv)


def now_iso() -> str:
    """The current local time, ISO 8601 with the UTC offset (seconds)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def run_complete(run_dir: Path) -> bool:
    """True when the run folder's manifest says the run finished and the folder holds
    every round (:func:`completion_problem`); running a folder that only says so reports it
    as damaged."""
    try:
        manifest = json.loads((Path(run_dir) / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(manifest, dict) or manifest.get("status") != "complete":
        return False
    try:
        return completion_problem(run_dir, manifest) is None
    except RunFolderError:
        return False


def completion_problem(run_dir: Path, manifest: Mapping[str, Any]) -> str | None:
    """What a finished run's folder lacks, or None when it holds every round: rows 0..last,
    the last one trained and evaluated without a selection, as many as the manifest
    counts; a selection for every round that made one; a saved state (where one is kept)
    at the last round. Unreadable files are a :class:`RunFolderError`."""
    run_dir = Path(run_dir)
    rows = read_rows(run_dir / "rounds.csv")
    rounds = [int(r["round"]) for r in rows]
    if rounds != list(range(len(rows))) or not rows:
        return f"rounds.csv holds rounds {rounds or 'none'}, not 0, 1, 2... in order"
    last = (manifest.get("resolved") or {}).get("last_round")
    if last is not None and len(rows) != int(last) + 1:
        return f"rounds.csv holds rounds 0..{len(rows) - 1} of 0..{last}"
    if str(rows[-1].get("n_selected") or "0") != "0":
        return (f"the last round in rounds.csv (round {len(rows) - 1}) selected images for a "
                "round that rounds.csv lacks")
    done = manifest.get("rounds_done")
    if done is not None and str(done) != str(len(rows)):
        return f"the manifest counts {done} rounds, rounds.csv holds {len(rows)}"
    selections = {int(s.get("round", -1)): s.get("sha256")
                  for s in read_jsonl(run_dir / "selections.jsonl")}
    for r in rows:
        if r.get("selection_sha256") and selections.get(int(r["round"])) != r["selection_sha256"]:
            return f"selections.jsonl lacks the selection of round {r['round']} in rounds.csv"
    state = run_dir / "state" / "state.json"
    if state.exists():
        try:
            next_round = int(json.loads(state.read_text(encoding="utf-8"))["next_round"])
        except (UnicodeDecodeError, ValueError, OSError, KeyError, TypeError):
            return "state/state.json cannot be read"
        if next_round != len(rows):
            return (f"the saved state holds rounds 0..{next_round - 1}, rounds.csv rounds "
                    f"0..{len(rows) - 1}")
    return None


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("albench", "torch", "torchvision", "ultralytics", "numpy", "pycocotools",
                 "faster-coco-eval", "pandas"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_commit() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (sha + ("-dirty" if dirty else "")) if sha else "unknown"


def _processor() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_signature() -> dict[str, Any]:
    """What CPU results are bit-reproducible on: the processor, the kernels torch picks for
    it, the thread count and the torch build (version and a digest of its build config)."""
    import hashlib

    import torch

    build = hashlib.sha256(torch.__config__.show().encode()).hexdigest()[:16]
    return {"processor": _processor(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "torch_build": build}


def hardware() -> dict[str, Any]:
    info: dict[str, Any] = {"platform": platform.platform(), "machine": platform.machine(),
                            "cpu_count": os.cpu_count(), **machine_signature()}
    import torch

    if torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name(0)
        info["cuda_version"] = torch.version.cuda
    return info


def peak_rss_mb() -> float:
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    except (ImportError, OSError):
        return float("nan")
