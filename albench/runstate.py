"""What a run folder says about the run, checked before it is trusted.

A run folder is tied to the data it was run on: the manifest records the dataset's
fingerprint (and, for datasets read from annotation files, each file's size and
modification time). A finished run whose files changed is compared by fingerprint before
it counts as complete, and an interrupted run resumes only when its data are unchanged
and its rows, selections and label state agree. (:mod:`albench.runfolder` reads and writes
the folder; this module holds the checks.)
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from albench.errors import RunFolderError
from albench.results import damaged


MANY_SOURCES = 64  # more source files than this are recorded as one summary per folder


def source_stats(paths: Iterable[str]) -> dict[str, list[int]]:
    """``{path: [size, mtime_ns]}`` of the dataset's source files (cheap to recompute).

    A dataset with more than :data:`MANY_SOURCES` files (a VOCdevkit's 21k XML files) is
    recorded per folder instead, as ``{"<folder>/*<suffix>": [files, digest]}``: the count
    of such files in the folder and a digest of their names, sizes and times. A changed,
    added or removed file changes the record; the manifest stays small. A recorded pattern
    is expanded again when checked."""
    paths = [str(p) for p in paths]
    if len(paths) > MANY_SOURCES and not any("*" in p for p in paths):
        paths = sorted({f"{os.path.dirname(p)}/*{os.path.splitext(p)[1]}" for p in paths})
    out = {}
    for p in paths:
        if "*" in p:
            out[p] = _folder_stat(p)
            continue
        try:
            st = os.stat(p)
            out[p] = [st.st_size, st.st_mtime_ns]
        except OSError:
            out[p] = [-1, -1]
    return out


def _folder_stat(pattern: str) -> list[int]:
    digest = hashlib.sha256()
    files = sorted(glob.glob(glob.escape(os.path.dirname(pattern)) + "/" + os.path.basename(pattern)))
    for f in files:
        try:
            st = os.stat(f)
            digest.update(f"{os.path.basename(f)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{os.path.basename(f)}\0gone\n".encode())
    return [len(files), int(digest.hexdigest()[:15], 16)]


def read_manifest(run_dir: Path) -> dict | None:
    path = Path(run_dir) / "manifest.json"
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError, OSError) as exc:
        raise damaged(run_dir, f"manifest.json cannot be read ({exc})") from None
    if not isinstance(manifest, dict):
        raise damaged(run_dir, "manifest.json is not a record")
    return manifest


def sources_unchanged(run_dir: Path) -> bool:
    """True when the manifest records source files and none changed size or time since.
    False means: load the data and compare fingerprints (:func:`check_fingerprint`)."""
    manifest = read_manifest(run_dir) or {}
    recorded = (manifest.get("dataset") or {}).get("sources")
    if recorded is None:  # generated data (its config hash covers it) or an older run
        return not (manifest.get("dataset") or {}).get("params", {}).get("ann_train")
    return source_stats(recorded) == recorded


def check_fingerprint(run_dir: Path, fingerprint: str, dataset: str) -> None:
    """The run folder was made with data of this fingerprint, or a :class:`RunFolderError`."""
    manifest = read_manifest(run_dir)
    if manifest is None:
        return
    recorded = (manifest.get("dataset") or {}).get("fingerprint")
    if recorded != fingerprint:
        what = "finished" if manifest.get("status") == "complete" else "was started"
        raise RunFolderError(
            f"The run in {run_dir} {what} on different data: the {dataset!r} dataset's "
            f"fingerprint is now {fingerprint[:12]}, the run recorded "
            f"{str(recorded)[:12]}. Its results do not describe the data you have now. "
            "Run the same command with --force to start it over on the current data, or "
            "restore the data the run was made with."
        )


def read_record(run_dir: Path, strict: bool = True) -> dict | None:
    """``state/state.json``, the commit record (None when there is none). One that cannot
    be read is damage (or, with ``strict=False``, None)."""
    path = Path(run_dir) / "state" / "state.json"
    if not path.exists():
        return None
    try:
        record: Any = json.loads(path.read_text(encoding="utf-8"))
        int(record["next_round"])
        np.asarray(record["labeled_round"], np.int64)
        if "folder" in record and not re.fullmatch(r"round-\d{4,}", str(record["folder"])):
            raise ValueError(f"{record['folder']!r} is not a round folder's name")
    except (UnicodeDecodeError, ValueError, OSError, KeyError, TypeError) as exc:
        if not strict:
            return None
        raise damaged(run_dir, f"state/state.json cannot be read ({exc})") from None
    return record


def inconsistencies(start: int, labeled_round: np.ndarray, pool_ids: np.ndarray,
                    rows: list[dict], selections: list[dict]) -> list[str]:
    """What disagrees between the label state of rounds ``0..start-1``, their rows and
    their selections ([] when they agree)."""
    from albench.pool import ids_sha256

    problems = []
    rounds = [int(r["round"]) for r in rows]
    if rounds != list(range(start)):
        problems.append(f"the state says rounds 0..{start - 1} are done but rounds.csv holds "
                        f"rounds {rounds or 'none'}")
        return problems
    for r in rows:
        k = int(r["round"])
        have = int(((labeled_round >= 0) & (labeled_round <= k)).sum())
        if str(r["n_labeled"]) != str(have):
            problems.append(f"round {k} of rounds.csv has {r['n_labeled']} labeled images, "
                            f"the label state {have}")
    by_round = {int(s["round"]): s for s in selections}
    for r in rows:
        k = int(r["round"])
        if r.get("selection_sha256"):
            sel = by_round.get(k)
            added = pool_ids[labeled_round == k + 1]
            if sel is None:
                problems.append(f"selections.jsonl lacks round {k}")
            elif (sel.get("sha256") != r["selection_sha256"]
                  or ids_sha256(np.asarray(sel.get("ids", []), np.int64)) != ids_sha256(added)):
                problems.append(f"the round-{k} selection differs between selections.jsonl, "
                                "rounds.csv and the label state")
    return problems
