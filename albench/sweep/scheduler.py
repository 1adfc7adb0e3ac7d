"""The sweep's scheduler (:func:`run_sweep`): skip finished runs, check that the rest fit on
their GPU, run the first run of every (setting, seed) first and its followers when it has
finished (they load its round-0 model), and record every outcome."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from rich.console import Console

from albench.config import RunConfig
from albench.errors import ConfigError
from albench.sweep.display import _Display, summary_table
from albench.sweep.executors import Inline, Pool, Ray, cores
from albench.sweep.gpu import check_gpu_fit
from albench.sweep.single import SweepOutcome, check_reuse, failed_outcome, finished


def run_sweep(configs: Sequence[RunConfig], out: Path, executor: str = "local", workers: int = 1,
              ray_address: str | None = None, quiet: bool = False,
              gpu_mem_per_run: float | None = None,
              gpus_per_run: float = 1.0) -> list[SweepOutcome]:
    """Run every config into ``out`` (skipping complete ones); outcomes in ``configs`` order.

    Runs on a CUDA device share it: ``workers`` local processes (or Ray tasks asking for
    ``gpus_per_run`` of a GPU each) at once, checked first against the GPU's free memory
    at ``gpu_mem_per_run`` MB per run (see :func:`check_gpu_fit`).
    """
    if executor not in ("local", "ray"):
        raise ConfigError(f"Unknown executor {executor!r}: use --executor local or ray.")
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, not {workers}.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    unique = {cfg.run_id(): cfg for cfg in configs}
    outcomes = {run_id: finished(cfg, out) for run_id, cfg in unique.items()}
    todo = [cfg for run_id, cfg in unique.items() if outcomes[run_id] is None]
    # local workers run with cores // workers torch threads, whatever is left to do, so a
    # resumed sweep makes (and finds in the cache) the round-0 models the first one made
    threads = max(1, cores() // workers) if executor == "local" and workers > 1 else None
    check_reuse(list(unique.values()), out, todo, threads)
    if todo and not ray_address:  # a Ray cluster's GPUs are not this machine's
        check_gpu_fit(todo, executor, workers, gpu_mem_per_run, gpus_per_run)
    groups: dict[tuple[str, int], list[RunConfig]] = {}
    for cfg in todo:  # the first run of each (setting, seed) trains the shared round-0 model
        groups.setdefault((cfg.setting_hash(), cfg.seed), []).append(cfg)

    with _Display(len(unique), quiet) as display:
        display.note(f"sweep: {len(unique)} runs -> {out} ({len(unique) - len(todo)} already "
                     f"complete; executor {executor}, {workers} worker(s))")
        for o in outcomes.values():
            if o is not None:
                display.done(o)
        if todo:
            local = min(workers, len(todo))
            ex: Any = (Ray(out, workers, ray_address, gpus_per_run) if executor == "ray" else
                       Pool(out, local, threads) if threads else Inline(out, display.current))
            try:
                _drive(ex, groups, outcomes, display)
            finally:
                ex.close()
    result = [o for o in outcomes.values() if o is not None]
    if not quiet:
        from albench.progress import show

        show(Console(), summary_table(result))
        for o in result:
            if o.detail:
                Console(stderr=True).print(f"[red]{o.run_id}[/red]\n{o.detail}", highlight=False)
    return result


def _drive(ex: Any, groups: dict[tuple[str, int], list[RunConfig]],
           outcomes: dict[str, SweepOutcome | None], display: _Display) -> None:
    pending: dict[Any, RunConfig] = {}

    def submit(cfg: RunConfig) -> None:
        try:
            pending[ex.submit(cfg)] = cfg
        except Exception as exc:  # noqa: BLE001  (e.g. a broken pool): record, go on
            outcomes[cfg.run_id()] = failed = failed_outcome(cfg.run_id(), exc)
            display.done(failed)

    for leader, *_ in groups.values():
        submit(leader)
    while pending:
        display.current(ex.running(list(pending)))
        for handle in ex.wait(list(pending), timeout=1.0):
            cfg = pending.pop(handle)
            try:
                outcome = ex.result(handle)
            except Exception as exc:  # noqa: BLE001  (a worker died)
                outcome = failed_outcome(cfg.run_id(), exc)
            outcomes[cfg.run_id()] = outcome
            display.done(outcome)
            group = groups[(cfg.setting_hash(), cfg.seed)]
            if group[0] is cfg:
                for follower in group[1:]:
                    submit(follower)
    display.current("")
