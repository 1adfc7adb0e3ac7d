"""A run folder and the one class that writes and reads it.

```
<out>/<run id>/
  manifest.json       config, hashes, versions, hardware, dataset fingerprint, status
  rounds.csv          one row per round        } views of the committed round, rewritten
  selections.jsonl    ids and scores per round } from it after each commit and on resume
  diagnostics.jsonl   what the strategy reported (only when it reported anything)
  state/
    state.json        the commit record: next round, label state, the committed folder
    round-NNNN/       the committed round: rows, selections, diagnostics, model.pt,
                      strategy.pt
```

A round commits atomically. Everything it writes goes into ``state/round-NNNN.tmp``,
which is synced and renamed to ``state/round-NNNN``; then ``state/state.json`` is replaced
in one rename: that rename is the commit. Only then are the views at the top rewritten and
the previous round's folder deleted (one model on disk between rounds). A crash or a full
disk at any instant leaves the previous round or the new one committed, never a mix; on
resume the views are rewritten from the committed round and whatever no commit names
(``.tmp`` folders, an uncommitted round, temporary files) is deleted.

Folders written before this layout (rows at the top, ``state/model.pt``) are read as
they are; their next commit moves them to it.
"""

from __future__ import annotations

import errno
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from albench.errors import RunFolderError
from albench.results import (atomic_torch_save, atomic_write_bytes, atomic_write_json,
                             completion_problem, damaged, read_jsonl, read_rows, write_jsonl,
                             write_rows)
from albench.runstate import inconsistencies, read_manifest, read_record

MANIFEST, ROWS, SELECTIONS, DIAGNOSTICS = ("manifest.json", "rounds.csv", "selections.jsonl",
                                           "diagnostics.jsonl")
VIEWS = (ROWS, SELECTIONS, DIAGNOSTICS)
RECORD, MODEL, STRATEGY = "state.json", "model.pt", "strategy.pt"


@dataclass
class Saved:
    """A committed state, checked: rounds ``0..next_round-1`` are done."""

    next_round: int
    labeled_round: np.ndarray
    rows: list[dict]
    selections: list[dict]
    diagnostics: list[dict]
    model: Path | None
    strategy_state: dict | None


class RunFolder:
    """One run's folder: its manifest, its rounds (committed atomically), resume,
    completion and starting over."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.state_dir = self.path / "state"

    # ------------------------------------------------------------------ reading
    def manifest(self) -> dict | None:
        return read_manifest(self.path)

    def rows(self) -> list[dict]:
        return read_rows(self.path / ROWS)

    def complete(self) -> bool:
        """True when the manifest says the run finished and the folder holds every round.
        A manifest that says so over a folder lacking rounds is a damaged folder."""
        manifest = self.manifest()
        if not manifest or manifest.get("status") != "complete":
            return False
        problem = completion_problem(self.path, manifest)
        if problem:
            raise damaged(self.path, f"the manifest says the run is complete, but {problem}")
        return True

    def model_path(self) -> Path | None:
        """The committed round's model (the run's latest), or None when the folder keeps none."""
        record = read_record(self.path, strict=False) or {}
        folder = self.state_dir / record["folder"] if "folder" in record else self.state_dir
        path = folder / MODEL
        return path if path.is_file() else None

    def resume(self, pool_ids: np.ndarray) -> Saved | None:
        """The committed state of an interrupted run, checked (None when nothing was
        committed), with the views rewritten from it and what no commit names deleted.
        A folder whose files disagree is reported as damaged and left as it is."""
        record = read_record(self.path)
        if record is None:
            if self.rows():
                raise damaged(self.path, "rounds.csv holds rounds but state/state.json is missing")
            return None
        start = int(record["next_round"])
        labeled_round = np.asarray(record["labeled_round"], np.int64)
        if labeled_round.shape != (len(pool_ids),):
            raise damaged(self.path, f"the label state covers {labeled_round.size} images, "
                                     f"the pool has {len(pool_ids)}")
        folder = record.get("folder")
        src = self.state_dir / folder if folder else self.state_dir
        views = src if folder else self.path  # older folders: rows at the top
        if folder and not src.is_dir():
            raise damaged(self.path, f"state/state.json names the committed round state/{folder}, "
                                     "which is missing")
        lacking = [n for n in (ROWS, SELECTIONS, MODEL, STRATEGY) if folder and not (src / n).is_file()]
        if lacking:
            raise damaged(self.path, f"the committed round state/{folder} lacks {', '.join(lacking)}")
        rows = [r for r in read_rows(views / ROWS) if int(r["round"]) < start]
        selections = [s for s in read_jsonl(views / SELECTIONS) if int(s.get("round", -1)) < start]
        diagnostics = [d for d in read_jsonl(views / DIAGNOSTICS) if int(d.get("round", -1)) < start]
        problems = inconsistencies(start, labeled_round, np.asarray(pool_ids, np.int64), rows,
                                   selections)
        if problems:
            raise damaged(self.path, "; ".join(problems))
        strategy_state = None
        if (src / STRATEGY).exists():
            import torch

            strategy_state = torch.load(src / STRATEGY, weights_only=False)
        model = src / MODEL if (src / MODEL).is_file() else None
        self._prune({RECORD, folder} if folder else {RECORD, MODEL, STRATEGY})
        for tmp in self.path.glob(".*.tmp"):  # a view or manifest write cut short
            tmp.unlink(missing_ok=True)
        if folder:
            self._publish(src)
        return Saved(start, labeled_round, rows, selections, diagnostics, model, strategy_state)

    # ------------------------------------------------------------------ writing
    def write_manifest(self, manifest: dict) -> None:
        atomic_write_json(self.path / MANIFEST, manifest)

    def commit(self, round_: int, labeled_round: np.ndarray, rows: list[dict],
               selections: list[dict], diagnostics: list[dict], *,
               save_model: Callable[[Path], None], strategy_state: dict, config_hash: str) -> None:
        """Commit finished round ``round_``: rows, selections and diagnostics of rounds
        0..round_, the label state, the model and the strategy state, all at once."""
        name = f"round-{round_:04d}"
        tmp, final = self.state_dir / f"{name}.tmp", self.state_dir / name
        self.state_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            tmp.mkdir()
            save_model(tmp / MODEL)
            atomic_torch_save(strategy_state, tmp / STRATEGY)
            write_rows(tmp / ROWS, rows)
            write_jsonl(tmp / SELECTIONS, selections)
            if diagnostics:
                write_jsonl(tmp / DIAGNOSTICS, diagnostics)
            _fsync_dir(tmp)
            os.rename(tmp, final)
            _fsync_dir(self.state_dir)
            atomic_write_json(self.state_dir / RECORD, {  # the commit
                "next_round": round_ + 1, "labeled_round": labeled_round.tolist(),
                "config_hash": config_hash, "folder": name})
        except BaseException:
            if (read_record(self.path, strict=False) or {}).get("folder") != name:
                shutil.rmtree(tmp, ignore_errors=True)  # give the space back (a full disk)
                shutil.rmtree(final, ignore_errors=True)
            raise
        _fsync_dir(self.state_dir)
        self._publish(final)
        self._prune({RECORD, name})

    def reset(self) -> None:
        """Delete the folder to start the run over (``--force``). A folder that cannot be
        deleted is an error before anything is deleted; the folder is moved aside in one
        rename before it is deleted, so it is never left half-deleted."""
        if not self.path.exists():
            return
        blocked = _undeletable(self.path)
        if blocked is not None:
            raise RunFolderError(
                f"--force cannot start the run in {self.path} over: {blocked} cannot be "
                "deleted (it is not writable or not readable by you). Nothing was deleted. "
                f"Make the folder deletable (e.g. chmod -R u+rwX {self.path}) or move it "
                "away, then run the same command again."
            )
        aside = self.path.with_name(f".{self.path.name}.deleting")
        shutil.rmtree(aside, ignore_errors=True)  # left by a --force that was killed
        try:
            os.rename(self.path, aside)
            try:
                (aside / MANIFEST).unlink(missing_ok=True)  # no report counts what is left
            except OSError:
                os.rename(aside, self.path)
                raise
        except OSError as exc:
            raise RunFolderError(
                f"--force cannot start the run in {self.path} over: the folder cannot be "
                f"moved aside to be deleted ({exc.strerror or exc}). Nothing was deleted. "
                "Delete or move the folder yourself, then run the same command again."
            ) from None
        try:
            shutil.rmtree(aside)
        except OSError as exc:
            raise RunFolderError(
                f"--force moved the run folder {self.path} aside to {aside} to start the run "
                f"over, but deleting it failed ({exc.strerror or exc}: {exc.filename}). The "
                f"run did not start. Delete {aside} yourself, then run the same command "
                "again (the run starts over: its folder no longer exists)."
            ) from None

    # ------------------------------------------------------------------ inside
    def _publish(self, src: Path) -> None:
        """Rewrite the views at the top from the committed round folder ``src``."""
        for name in VIEWS:
            if (src / name).exists():
                atomic_write_bytes(self.path / name, (src / name).read_bytes())
            else:
                (self.path / name).unlink(missing_ok=True)

    def _prune(self, keep: set[str]) -> None:
        """Delete what in state/ no commit needs; what fails is tried again next time."""
        if not self.state_dir.is_dir():
            return
        for entry in self.state_dir.iterdir():
            if entry.name in keep:
                continue
            try:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
            except OSError:
                pass


def out_of_space(run_dir: Path, exc: OSError) -> RunFolderError:
    """The error for a full disk (or quota) while a run writes."""
    where = f" while writing {exc.filename}" if exc.filename else ""
    return RunFolderError(
        f"The disk ran out of space{where} (run folder {run_dir}). The run stopped; every "
        "round committed before that is kept. Free space on that disk, then run the same "
        "command again: it resumes from the last committed round and ends with the rows an "
        "uninterrupted run gives."
    )


def _fsync_dir(path: Path) -> None:
    """Make the renames inside ``path`` durable (where the system allows it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:  # some file systems cannot sync a folder; a full disk is an error
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO):
            raise
    finally:
        os.close(fd)


def _undeletable(root: Path) -> Path | None:
    """The first folder of ``root`` (or its parent) whose entries cannot be deleted."""
    if not os.access(root.parent, os.W_OK | os.X_OK):
        return root.parent
    unreadable: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable.append):
        if unreadable:
            break
        if (dirnames or filenames) and not os.access(dirpath, os.W_OK | os.X_OK):
            return Path(dirpath)
    return Path(unreadable[0].filename) if unreadable else None
