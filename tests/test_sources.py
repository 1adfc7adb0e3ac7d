"""The run manifest's record of a dataset's source files: cheap to recheck, small for many files."""

from __future__ import annotations

import json
import os
from pathlib import Path

from albench.runstate import MANY_SOURCES, source_stats


def _files(folder: Path, n: int) -> list[str]:
    folder.mkdir()
    paths = []
    for i in range(n):
        path = folder / f"{i:05d}.xml"
        path.write_text(f"<annotation>{i}</annotation>")
        paths.append(str(path))
    return paths


def test_a_few_sources_are_recorded_file_by_file(tmp_path: Path) -> None:
    paths = _files(tmp_path / "ann", 3)
    record = source_stats(paths)
    assert list(record) == paths and all(v[0] > 0 for v in record.values())
    assert source_stats(record) == record


def test_many_sources_are_one_small_record_per_folder_that_still_sees_every_change(
        tmp_path: Path) -> None:
    paths = _files(tmp_path / "ann", MANY_SOURCES * 4) + [str(tmp_path / "list.txt")]
    Path(paths[-1]).write_text("a\n")
    record = source_stats(paths)
    assert len(record) == 2 and len(json.dumps(record)) < 500
    assert record[f"{tmp_path / 'ann'}/*.xml"][0] == MANY_SOURCES * 4
    assert source_stats(record) == record  # nothing changed: the cheap check passes

    edited = Path(paths[10])
    stat = edited.stat()
    edited.write_text("<annotation>changed</annotation>")  # longer: a new size
    os.utime(edited, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # even with the old time
    assert source_stats(record) != record
    edited.write_text("<annotation>10</annotation>")
    os.utime(edited, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert source_stats(record) == record
    Path(paths[20]).unlink()
    assert source_stats(record) != record
