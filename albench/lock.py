"""One process per run folder: an advisory lock next to it.

The lock is ``<out>/.<run id>.lock``, held with ``flock`` while the run goes on, so the
operating system drops it when the holder exits or is killed: a stale lock never blocks.
The file holds the holder's pid, host and command line for the message a second process
gets. (On a system without ``fcntl`` runs are not locked.)
"""

from __future__ import annotations

import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from albench.errors import ConfigError, RunFolderError
from albench.results import command_line, now_iso

try:
    import fcntl
except ImportError:  # pragma: no cover - not a POSIX system
    fcntl = None  # type: ignore[assignment]


def lock_path(run_dir: Path) -> Path:
    run_dir = Path(run_dir)
    return run_dir.parent / f".{run_dir.name}.lock"


def make_out(out: Path) -> None:
    """Create the results folder, or say why it cannot be."""
    try:
        Path(out).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"The results folder {out} cannot be created ({exc.strerror or exc}). Pass --out "
            "a folder you can write to (its parents must be folders, not files)."
        ) from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise ConfigError(f"The results folder {out} is not writable. Pass --out a folder "
                          "you can write to.")


@contextmanager
def run_lock(run_dir: Path, wait: bool = False, poll_s: float = 1.0) -> Iterator[None]:
    """Hold the lock of ``run_dir`` (creating its parent); another holder is a
    :class:`RunFolderError` naming it, or, with ``wait``, is waited for."""
    make_out(Path(run_dir).parent)
    if fcntl is None:
        yield
        return
    path = lock_path(run_dir)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            if not wait:
                raise RunFolderError(
                    f"The run {Path(run_dir).name} is being run by another process "
                    f"({holder}). Wait for it to finish (then this command finds the run "
                    "complete), pass --wait to wait for it here, or use another --out."
                ) from None
            time.sleep(poll_s)
            continue
        try:  # the file may have been removed by a holder releasing it meanwhile
            if os.fstat(fd).st_ino != os.stat(path).st_ino:
                raise FileNotFoundError(path)
        except FileNotFoundError:
            os.close(fd)
            continue
        break
    try:
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "command": command_line(), "since": now_iso()}).encode())
        yield
    finally:
        try:
            path.unlink()
        except OSError:
            pass
        os.close(fd)  # closing releases the flock


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        return (f"pid {info['pid']} on {info['host']} since {info['since']}: "
                f"{info['command']}")
    except (ValueError, KeyError, OSError):
        return "a process that is still starting"
