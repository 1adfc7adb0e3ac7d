"""Executors of a sweep: where its runs go. Each has ``submit(cfg)``, ``wait(handles,
timeout)``, ``result(handle)``, ``running(handles)`` and ``close()``; the scheduler
(:mod:`albench.sweep.scheduler`) decides what to submit when."""

from __future__ import annotations

import os
import sys
from concurrent import futures
from pathlib import Path
from typing import Any, Callable

from albench.config import RunConfig
from albench.errors import ConfigError
from albench.procs import exit_with_parent
from albench.sweep.gpu import check_gpus_per_run
from albench.sweep.single import SweepOutcome, run_one

RAY_HINT = 'The ray executor needs Ray: pip install "albench[ray]" (or use --executor local).'


def cores() -> int:
    """The CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class Inline:
    """One worker: the runs go one after the other in this process."""

    def __init__(self, out: Path, on_start: Callable[[str], None]) -> None:
        self.out, self.on_start = str(out), on_start
        self.jobs: dict[futures.Future, RunConfig] = {}

    def submit(self, cfg: RunConfig) -> futures.Future:
        fut: futures.Future = futures.Future()
        self.jobs[fut] = cfg
        return fut

    def wait(self, handles: list, timeout: float) -> list:
        cfg = self.jobs.pop(handles[0])
        self.on_start(cfg.run_id())
        handles[0].set_result(run_one(cfg, self.out))
        return handles[:1]

    def result(self, handle: futures.Future) -> SweepOutcome:
        return handle.result()

    def running(self, handles: list) -> str:
        return ""

    def close(self) -> None:
        pass


class Pool:
    """N worker processes ("spawn"), each with cores // N torch threads."""

    def __init__(self, out: Path, workers: int, threads: int | None = None) -> None:
        import multiprocessing

        self.out, self.threads = str(out), threads or max(1, cores() // workers)
        self.pool = futures.ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=exit_with_parent, initargs=(os.getpid(),))  # no orphans if killed
        self.ids: dict[futures.Future, str] = {}

    def submit(self, cfg: RunConfig) -> futures.Future:
        fut = self.pool.submit(run_one, cfg, self.out, self.threads)
        self.ids[fut] = cfg.run_id()
        return fut

    def wait(self, handles: list, timeout: float) -> list:
        return list(futures.wait(handles, timeout, futures.FIRST_COMPLETED).done)

    def result(self, handle: futures.Future) -> SweepOutcome:
        return handle.result()

    def running(self, handles: list) -> str:
        ids = [self.ids[h] for h in handles if h.running()]
        return f"{ids[0]} (+{len(ids) - 1} running)" if len(ids) > 1 else "".join(ids)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def shipped_packages() -> list[Any]:
    """The packages a Ray worker needs: albench and the top-level package of every registered
    strategy (``strategies`` for the built-in ones), shipped as Ray ``py_modules``."""
    import albench
    from albench.strategy import available as strategy_classes

    tops = sorted({cls.__module__.partition(".")[0] for cls in strategy_classes().values()} - {"albench"})
    packages = [sys.modules.get(n) for n in tops]  # regular packages only (a folder to ship)
    return [albench] + [m for m in packages if getattr(m, "__path__", None) and getattr(m, "__file__", None)]


class Ray:
    """Every run one Ray task (``gpus_per_run`` of a GPU when the run's device is CUDA).

    The workers get albench and the strategy packages from the driver (Ray ``py_modules``),
    so a cluster needs albench's dependencies installed, not albench itself or a checkout.
    """

    def __init__(self, out: Path, workers: int, address: str | None,
                 gpus_per_run: float = 1.0) -> None:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        self.gpus_per_run = check_gpus_per_run(gpus_per_run)
        try:
            import ray
        except ImportError:
            raise ConfigError(RAY_HINT) from None
        from albench import _offline

        self.ray, self.out, self.started = ray, str(out.resolve()), not ray.is_initialized()
        if self.started:
            env = {"ALBENCH_CACHE": str(_offline.cache_root())}
            common: dict[str, Any] = {
                "log_to_driver": False, "logging_level": "ERROR",
                "runtime_env": {"env_vars": env, "py_modules": shipped_packages()}}
            if address:
                ray.init(address=address, **common)
            else:
                ray.init(num_cpus=workers, include_dashboard=False, **common)
        self.task = ray.remote(run_one)

    def submit(self, cfg: RunConfig) -> Any:
        gpus = self.gpus_per_run if cfg.device.startswith("cuda") else 0
        return self.task.options(num_cpus=1, num_gpus=gpus).remote(cfg, self.out)

    def wait(self, handles: list, timeout: float) -> list:
        return self.ray.wait(handles, num_returns=1, timeout=timeout)[0]

    def result(self, handle: Any) -> SweepOutcome:
        return self.ray.get(handle)

    def running(self, handles: list) -> str:
        return f"{len(handles)} run(s) submitted to Ray"

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()
