"""One run of a sweep, in this process, and what became of it (:class:`SweepOutcome`)."""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from albench.config import RunConfig
from albench.errors import AlbenchError, ConfigError
from albench.results import machine_signature, read_rows, run_complete


@dataclass
class SweepOutcome:
    """What became of one run of a sweep."""

    run_id: str
    status: str  # "complete", "already complete" or "failed"
    error: str | None = None
    seconds: float = 0.0
    final_ap50: float | None = None
    detail: str | None = None  # traceback of an unexpected failure


def run_one(cfg: RunConfig, out: str, threads: int | None = None) -> SweepOutcome:
    """Run ``cfg`` into ``out`` in this process; a failure becomes a failed outcome."""
    t0 = time.perf_counter()
    run_id = cfg.run_id()
    try:
        from albench.loop import ActiveLearningLoop

        if threads:
            import torch

            torch.set_num_threads(threads)
        result = ActiveLearningLoop(cfg, Path(out)).run()
        ap50 = float(result.rows[-1]["ap50"]) if result.rows else None
        return SweepOutcome(run_id, result.status, None, time.perf_counter() - t0, ap50)
    except Exception as exc:  # noqa: BLE001  (recorded; the sweep goes on)
        return failed_outcome(run_id, exc, time.perf_counter() - t0)


def failed_outcome(run_id: str, exc: BaseException, seconds: float = 0.0) -> SweepOutcome:
    """A failed outcome: the message of an albench error, else the exception and its traceback."""
    if isinstance(exc, AlbenchError):
        return SweepOutcome(run_id, "failed", str(exc), seconds)
    return SweepOutcome(run_id, "failed", f"{type(exc).__name__}: {exc}", seconds,
                        detail="".join(traceback.format_exception(exc)))


def finished(cfg: RunConfig, out: Path) -> SweepOutcome | None:
    """The outcome of a run already complete in ``out``, or None."""
    run_dir = out / cfg.run_id()
    if not run_complete(run_dir):
        return None
    rows = read_rows(run_dir / "rounds.csv")
    return SweepOutcome(cfg.run_id(), "already complete", None, 0.0,
                        float(rows[-1]["ap50"]) if rows else None)


def exit_code(outcomes: Sequence[SweepOutcome]) -> int:
    """1 when any run of the sweep failed, else 0."""
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def check_reuse(configs: Sequence[RunConfig], out: Path, todo: Sequence[RunConfig],
                threads: int | None = None) -> None:
    """Raise :class:`ConfigError` when a run still to do would be paired with complete runs
    of its setting and seed in ``out`` made on another machine or torch build (or one that
    was not recorded): its round-0 model would differ from theirs, so the comparison would
    be of machines, not strategies."""
    import json

    here = machine_signature()
    if threads:  # the torch threads the runs to do will use (sweep workers), not this process's
        here["torch_threads"] = threads
    pending = {(cfg.setting_hash(), cfg.seed) for cfg in todo}
    for cfg in configs:
        if (cfg.setting_hash(), cfg.seed) not in pending or not run_complete(out / cfg.run_id()):
            continue
        try:
            hw = json.loads((out / cfg.run_id() / "manifest.json").read_text()).get("hardware")
        except (OSError, ValueError, AttributeError):
            hw = None
        there = {k: (hw or {}).get(k) for k in here} if isinstance(hw, dict) else {}
        if there != here:
            raise ConfigError(
                f"{out / cfg.run_id()} is complete but was made on another machine or torch "
                f"build ({there or 'not recorded'}; this one: {here}); new runs of its setting "
                f"and seed {cfg.seed} would start from another round-0 model, so a new strategy "
                "would be compared with baselines it does not share round 0 with. Run the whole "
                "sweep on this machine into another folder (--out DIR), or add the new runs on "
                "the machine that made this folder."
            )
