"""Sweeps: a grid of runs (strategies x seeds x settings) into one results folder.

``expand_grid`` turns strategies, seeds and settings into :class:`RunConfig` s;
``run_sweep`` runs them. The first run of every (setting, seed) goes first, and the other
strategies at that (setting, seed) are dispatched when it has finished, so they load its
cached round-0 model instead of training their own. Scheduling is left to the executor:
``local`` is a process pool (one process per worker, or in-process for one worker),
``ray`` makes every run one Ray task. Finished runs are skipped and interrupted ones
resume, so running the same sweep again continues where it stopped. A failing run is
recorded and the others go on.
"""

from __future__ import annotations

import argparse
import os
import time
import traceback
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                           TimeElapsedColumn)
from rich.table import Table

from albench.config import PRESETS, RunConfig, parse_kv, resolve
from albench.errors import AlbenchError, ConfigError
from albench.results import read_rows, run_complete

SETTING_KEYS = ("preset", "dataset", "backend", "initial", "budget", "rounds", "train_mode",
                "pool_subsample", "device", "eval_engine", "deterministic", "dataset_options",
                "backend_options")
SWEEP_KEYS = ("strategies", "seeds", "strategy_options", "settings", "out", "executor",
              "workers", "ray_address", "gpu_mem_per_run", "gpus_per_run")
_DICT_KEYS = ("dataset_options", "backend_options")
RAY_HINT = 'The ray executor needs Ray: pip install "albench[ray]" (or use --executor local).'
# GPU memory one run is assumed to take (MB) when several share a GPU: an estimate, not a
# measurement of every recipe. A quick-preset yolo run peaked at 116 MB of tensors on an
# H100; each worker process also holds its own CUDA context (some hundreds of MB) and the
# caching allocator keeps freed blocks. Paper recipes need far more: measure yours
# (scripts/protocol-cost, the peak GPU MB column of rounds.csv) and pass --gpu-mem-per-run.
GPU_MEM_PER_RUN_MB = 1024


@dataclass
class SweepOutcome:
    """What became of one run of a sweep."""

    run_id: str
    status: str  # "complete", "already complete" or "failed"
    error: str | None = None
    seconds: float = 0.0
    final_ap50: float | None = None
    detail: str | None = None  # traceback of an unexpected failure


# ---------------------------------------------------------------------- the grid
def parse_seeds(spec: str | int | Sequence[int]) -> list[int]:
    """``"0-4"`` -> [0..4]; ``"0,2,5"`` -> [0, 2, 5]; ranges and lists mix (``"0-2,7"``)."""
    if isinstance(spec, int):
        return [spec]
    if not isinstance(spec, str):
        return list(dict.fromkeys(int(s) for s in spec))
    seeds: list[int] = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        low, dash, high = part.partition("-")
        if not low.strip().isdigit() or (dash and not high.strip().isdigit()):
            raise ConfigError(f"Seeds {spec!r} are not seeds: give whole numbers of at least 0 "
                              "as a range 0-4, a list 0,2,5 or a mix such as 0-2,7.")
        lo, hi = (int(low), int(high)) if dash else (int(low), int(low))
        if hi < lo:
            raise ConfigError(f"The seed range {part!r} is reversed: write it low to high, "
                              f"as {hi}-{lo}.")
        seeds.extend(range(lo, hi + 1))
    if not seeds:
        raise ConfigError("No seeds given: pass --seeds 0-4 (or leave it out for the preset's).")
    return list(dict.fromkeys(seeds))


def parse_strategies(spec: str | Sequence[str]) -> list[str]:
    """A comma list (or sequence) of registered names, or ``all``."""
    import strategies

    names = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    names = [n for n in names if n]
    if names == ["all"]:
        return list(strategies.available())
    if not names:
        raise ConfigError("No strategies given: pass --strategies random,entropy (or all).")
    known = strategies.available()
    for name in names:
        if name not in known:
            raise ConfigError(f"Unknown strategy {name!r}. Known strategies: "
                              f"{', '.join(known)}. Pass them with --strategies "
                              "(a comma list, or all; see `python -m albench list`).")
    return list(dict.fromkeys(names))


def parse_opts(pairs: Iterable[str] | None) -> dict[str, dict[str, str]]:
    """``["entropy:aggregate=max"]`` -> ``{"entropy": {"aggregate": "max"}}``."""
    out: dict[str, dict[str, str]] = {}
    for pair in pairs or []:
        strategy, sep, rest = pair.partition(":")
        if not sep or not strategy or "=" not in rest:
            raise ConfigError(f"--opt takes STRATEGY:KEY=VALUE in a sweep, got {pair!r}. "
                              "Example: --opt entropy:aggregate=max.")
        out.setdefault(strategy.strip(), {}).update(parse_kv([rest], "--opt"))
    return out


def merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``; None means not given; option dicts merge key by key."""
    out = dict(base)
    for key, value in top.items():
        if value is None:
            continue
        out[key] = {**out.get(key, {}), **value} if key in _DICT_KEYS else value
    return out


def _check_option_names(strategy_options: Mapping[str, Mapping[str, Any]],
                        names: list[str]) -> None:
    for name in strategy_options:
        if name not in names:
            raise ConfigError(f"Options are given for strategy {name!r}, which is not in the "
                              f"sweep ({', '.join(names)}): add it to the strategies or drop "
                              "its options.")


def expand_grid(strategies: str | Sequence[str], seeds: str | Sequence[int] | None = None,
                preset: str | None = None, settings: Sequence[Mapping[str, Any]] | None = None,
                strategy_options: Mapping[str, Mapping[str, Any]] | None = None,
                **overrides: Any) -> list[RunConfig]:
    """Every (setting, seed, strategy) as a resolved :class:`RunConfig`, duplicates dropped.

    ``overrides`` are run settings (as for :func:`albench.config.resolve`) shared by all
    settings; each entry of ``settings`` overrides them (it may name its own ``preset``).
    ``seeds=None`` takes each preset's seed count (0 .. n-1).
    """
    names = parse_strategies(strategies)
    options = dict(strategy_options or {})
    _check_option_names(options, names)
    grid: dict[str, RunConfig] = {}
    for setting in settings or [{}]:
        params = merge(overrides, setting)
        name = params.pop("preset", None) or preset or "quick"
        if name not in PRESETS:
            resolve(name)  # the unknown-preset error
        for seed in parse_seeds(seeds) if seeds is not None else range(PRESETS[name].seeds):
            for strategy in names:
                cfg = resolve(name, strategy=strategy, seed=seed,
                              strategy_options=dict(options.get(strategy, {})), **params)
                grid.setdefault(cfg.run_id(), cfg)
    return list(grid.values())


# ---------------------------------------------------------------------- one run
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
        return _failed(run_id, exc, time.perf_counter() - t0)


def _failed(run_id: str, exc: BaseException, seconds: float = 0.0) -> SweepOutcome:
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


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# ---------------------------------------------------------------------- runs sharing a GPU
@dataclass(frozen=True)
class GpuMemory:
    name: str
    free_mb: float
    total_mb: float


def _gpu(device: str) -> str | None:
    """``cuda`` -> ``cuda:0``; None for a device that is not CUDA."""
    kind, _, index = str(device).partition(":")
    return f"cuda:{index or 0}" if kind == "cuda" else None


_QUERY = """import json, sys, torch
if not torch.cuda.is_available():
    print(json.dumps({"count": 0})); sys.exit()
i, n = int(sys.argv[1]), torch.cuda.device_count()
if i >= n:
    print(json.dumps({"count": n})); sys.exit()
free, total = torch.cuda.mem_get_info(i)
print(json.dumps({"count": n, "name": torch.cuda.get_device_name(i),
                  "free": free / 2**20, "total": total / 2**20}))
"""


def gpu_memory(device: str) -> GpuMemory:
    """Free and total memory of a CUDA device, asked in a child process so that this one
    does not start CUDA (runs set up their determinism before CUDA starts)."""
    import json
    import subprocess
    import sys

    index = int(device.partition(":")[2] or 0)
    try:
        proc = subprocess.run([sys.executable, "-c", _QUERY, str(index)], capture_output=True,
                              text=True, timeout=300)
        info = json.loads(proc.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        raise ConfigError(f"Could not ask torch for the memory of {device} (a child python "
                          "process failed). Check that `python -c 'import torch; "
                          "print(torch.cuda.mem_get_info())'` works, or use --device cpu.") from None
    if not info["count"]:
        raise ConfigError(f"--device {device} was asked for but torch sees no CUDA device on this "
                          "machine. Use --device cpu, or install a CUDA build of torch on a "
                          "machine with a GPU.")
    if "free" not in info:
        raise ConfigError(f"--device {device} does not exist: torch sees {info['count']} CUDA "
                          f"device(s), cuda:0 .. cuda:{info['count'] - 1}. Pick one of them.")
    return GpuMemory(info["name"], info["free"], info["total"])


def check_gpus_per_run(value: float) -> float:
    if not 0 < value <= 1:
        raise ConfigError(f"--gpus-per-run must be in (0, 1], not {value}: the share of one GPU "
                          "a Ray task asks for (0.25 lets four runs share a GPU).")
    return float(value)


def runs_at_once(executor: str, workers: int, gpus_per_run: float, runs: int) -> int:
    """How many of ``runs`` runs can be on one GPU at the same time."""
    if executor == "ray":
        return min(runs, workers, int(1 / gpus_per_run + 1e-9))
    return min(runs, workers)


def check_gpu_fit(configs: Sequence[RunConfig], executor: str = "local", workers: int = 1,
                  mem_per_run_mb: float | None = None, gpus_per_run: float = 1.0,
                  query: Callable[[str], GpuMemory] = gpu_memory) -> None:
    """A clear error, before anything runs, when the runs that would share a GPU do not fit
    in its free memory at ``mem_per_run_mb`` each (default :data:`GPU_MEM_PER_RUN_MB`)."""
    check_gpus_per_run(gpus_per_run)
    mem = GPU_MEM_PER_RUN_MB if mem_per_run_mb is None else float(mem_per_run_mb)
    if mem <= 0:
        raise ConfigError(f"--gpu-mem-per-run must be a positive number of MB, not {mem_per_run_mb}.")
    per_device: dict[str, int] = {}
    for cfg in configs:
        device = _gpu(cfg.device)
        if device:
            per_device[device] = per_device.get(device, 0) + 1
    for device, runs in sorted(per_device.items()):
        gpu = query(device)
        at_once = runs_at_once(executor, workers, gpus_per_run, runs)
        need = at_once * mem
        if need <= gpu.free_mb:
            continue
        fit = int(gpu.free_mb // mem)
        how = (f"ask Ray for --gpus-per-run {1 / fit:.3g} or more" if executor == "ray"
               else f"use --workers {fit}") if fit else "free some GPU memory"
        raise ConfigError(
            f"{at_once} runs at once on {device} need about {at_once} x {mem:,.0f} MB = "
            f"{need:,.0f} MB of GPU memory (--gpu-mem-per-run, an estimate per run), but "
            f"{gpu.name} has {gpu.free_mb:,.0f} MB free of {gpu.total_mb:,.0f} MB, room for "
            f"{fit}. To fix it, {how}, or, if your runs need less (see the peak_gpu_mb "
            "column of rounds.csv or scripts/protocol-cost), pass a smaller --gpu-mem-per-run.")


# ---------------------------------------------------------------------- executors
class _Inline:
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


class _Pool:
    """N worker processes ("spawn"), each with cores // N torch threads."""

    def __init__(self, out: Path, workers: int) -> None:
        import multiprocessing

        self.out, self.threads = str(out), max(1, _cores() // workers)
        self.pool = futures.ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"))
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


class _Ray:
    """Every run one Ray task (``gpus_per_run`` of a GPU when the run's device is CUDA)."""

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
            root = str(Path(__file__).resolve().parents[1])
            path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
            env = {"PYTHONPATH": path, "ALBENCH_CACHE": str(_offline.cache_root())}
            common: dict[str, Any] = {"log_to_driver": False, "logging_level": "ERROR",
                                      "runtime_env": {"env_vars": env}}
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


# ---------------------------------------------------------------------- the sweep
class _Display:
    """Overall progress (runs done / total, what is running) and a line per finished run."""

    def __init__(self, total: int, quiet: bool, console: Console | None = None) -> None:
        from albench.progress import live

        console = console or Console(stderr=True)
        self.quiet, self.live, self.shown = quiet, live(console), ""
        self.bar = Progress(  # off a terminal no live bar: plain lines (see current, done)
            SpinnerColumn(), TextColumn("sweep"), BarColumn(bar_width=20), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("{task.fields[current]}"),
            console=console, disable=quiet or not self.live)
        self.task = self.bar.add_task("sweep", total=total, current="")

    def __enter__(self) -> _Display:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def note(self, text: str) -> None:
        if not self.quiet:
            self.bar.console.print(text, highlight=False, soft_wrap=True)

    def current(self, text: str) -> None:
        self.bar.update(self.task, current=text)
        if not self.live and text and text != self.shown:
            self.note(f"running {text}")
        self.shown = text

    def done(self, o: SweepOutcome) -> None:
        self.bar.advance(self.task)
        if not self.live:
            task = self.bar.tasks[0]
            self.note(f"[{int(task.completed)}/{int(task.total or 0)}] "
                      f"{self._done_text(o)}")
            return
        self.note(self._done_text(o))

    @staticmethod
    def _done_text(o: SweepOutcome) -> str:
        if o.status == "failed":
            return f"[red]failed[/red] {o.run_id}: {o.error}"
        ap = "-" if o.final_ap50 is None else f"{o.final_ap50:.3f}"
        return f"{o.status} {o.run_id}: final AP50 {ap} ({o.seconds:.1f}s)"


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
            ex: Any = (_Ray(out, workers, ray_address, gpus_per_run) if executor == "ray" else
                       _Pool(out, local) if local > 1 else _Inline(out, display.current))
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
            outcomes[cfg.run_id()] = failed = _failed(cfg.run_id(), exc)
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
                outcome = _failed(cfg.run_id(), exc)
            outcomes[cfg.run_id()] = outcome
            display.done(outcome)
            group = groups[(cfg.setting_hash(), cfg.seed)]
            if group[0] is cfg:
                for follower in group[1:]:
                    submit(follower)
    display.current("")


def summary_table(outcomes: Sequence[SweepOutcome]) -> Table:
    failed = sum(o.status == "failed" for o in outcomes)
    table = Table(title=f"sweep: {len(outcomes) - failed} of {len(outcomes)} runs complete"
                        + (f", {failed} failed" if failed else ""))
    for col in ("run id", "status", "final AP50", "wall s") + (("error",) if failed else ()):
        table.add_column(col, justify="right" if col in ("final AP50", "wall s") else "left")
    for o in outcomes:
        status = f"[red]{o.status}[/red]" if o.status == "failed" else o.status
        cells = [o.run_id, status, "-" if o.final_ap50 is None else f"{o.final_ap50:.3f}",
                 f"{o.seconds:.1f}"]
        table.add_row(*cells, *([o.error or ""] if failed else []))
    return table


# ---------------------------------------------------------------------- command line
@dataclass
class SweepPlan:
    configs: list[RunConfig]
    out: Path
    executor: str
    workers: int
    ray_address: str | None
    gpu_mem_per_run: float | None = None
    gpus_per_run: float = 1.0


def read_config(path: str | Path) -> dict[str, Any]:
    """A sweep file (YAML): the sweep's fields and run settings, see docs/presets.md."""
    import yaml

    from albench.cli import _amount

    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"Cannot read the sweep file {path}: {exc}. Give --config a "
                          "readable YAML file.") from None
    if not isinstance(data, dict):
        raise ConfigError(f"The sweep file {path} must hold a mapping "
                          "(strategies: ..., seeds: ...).")

    def check(entry: dict, allowed: tuple[str, ...], where: str) -> dict:
        unknown = sorted(set(entry) - set(allowed))
        if unknown:
            raise ConfigError(f"{where} in {path} has unknown field(s) {', '.join(unknown)}. "
                              f"Known fields: {', '.join(allowed)}.")
        if isinstance(entry.get("deterministic"), bool):  # YAML reads a bare on/off as a bool
            entry["deterministic"] = "on" if entry["deterministic"] else "off"
        for key in ("initial", "budget"):
            if isinstance(entry.get(key), str):
                try:
                    entry[key] = _amount(entry[key])
                except argparse.ArgumentTypeError as exc:
                    raise ConfigError(f"{key} in {path}: {exc}.") from None
        return entry

    check(data, SETTING_KEYS + SWEEP_KEYS, "The sweep file")
    settings = data.get("settings") or []
    if not isinstance(settings, list) or not all(isinstance(s, dict) for s in settings):
        raise ConfigError(f"settings in {path} must be a list of mappings (- backend: frcnn ...).")
    data["settings"] = [check(dict(s), SETTING_KEYS, "An entry of settings") for s in settings]
    return data


def plan_from_args(args: argparse.Namespace) -> SweepPlan:
    """Flags over the --config file over the preset; the grid of runs and where they go."""
    from albench.cli import DEFAULT_OUT, setting_overrides

    file = read_config(args.config) if args.config else {}
    ns = argparse.Namespace(**{**vars(args), "backend": args.backend or file.get("backend")})
    flags = {**setting_overrides(ns), "backend": args.backend, "preset": args.preset}
    flags = {k: v for k, v in flags.items() if v not in (None, {})}
    base = merge({k: file[k] for k in SETTING_KEYS if k in file}, flags)
    settings = [merge(entry, flags) for entry in file.get("settings") or []]
    strategy_options = {k: dict(v) for k, v in (file.get("strategy_options") or {}).items()}
    for name, given in parse_opts(args.opt).items():
        strategy_options.setdefault(name, {}).update(given)
    names = args.strategies or file.get("strategies")
    if not names:
        raise ConfigError("Say which strategies to sweep: --strategies random,entropy (or all), "
                          "or strategies: in the --config file.")
    seeds = args.seeds if args.seeds is not None else file.get("seeds")
    configs = expand_grid(names, seeds, settings=settings or None,
                          strategy_options=strategy_options, **base)
    executor = args.executor or file.get("executor") or "local"
    workers = args.workers or file.get("workers") or (_cores() if executor == "ray" else 1)
    return SweepPlan(configs, Path(args.out or file.get("out") or DEFAULT_OUT), executor,
                     int(workers), args.ray_address or file.get("ray_address"),
                     *_gpu_sharing(args, file, executor))


def _gpu_sharing(args: argparse.Namespace, file: dict, executor: str) -> tuple[float | None, float]:
    """(--gpu-mem-per-run, --gpus-per-run) from the flags over the sweep file."""
    def number(key: str) -> float | None:
        value = getattr(args, key, None)
        value = file.get(key) if value is None else value
        try:
            return None if value is None else float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key} must be a number, not {value!r}.") from None

    mem, share = number("gpu_mem_per_run"), number("gpus_per_run")
    if share is not None and executor != "ray":
        raise ConfigError("--gpus-per-run is the share of a GPU each Ray task asks for; with the "
                          "local executor runs share a GPU by --workers (e.g. --workers 4). Drop "
                          "--gpus-per-run or add --executor ray.")
    return mem, check_gpus_per_run(1.0 if share is None else share)


def exit_code(outcomes: Sequence[SweepOutcome]) -> int:
    """1 when any run of the sweep failed, else 0."""
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def cmd_sweep(args: argparse.Namespace) -> int:
    plan = plan_from_args(args)
    return exit_code(run_sweep(plan.configs, plan.out, plan.executor, plan.workers,
                               plan.ray_address, quiet=args.quiet,
                               gpu_mem_per_run=plan.gpu_mem_per_run,
                               gpus_per_run=plan.gpus_per_run))


def add_cli(sub: Any) -> None:
    from albench.cli import add_setting_args

    p = sub.add_parser(
        "sweep", help="run strategies x seeds x settings into one results folder",
        description="Run a grid of AL experiments into one results folder. Running the same "
                    "command again skips finished runs and resumes interrupted ones. Flags "
                    "override the --config file, which overrides the preset.")
    p.add_argument("--strategies", help="comma list of strategies, or all (see `list`)")
    p.add_argument("--seeds", help="0-4, 0,2,5 or a mix (default: the preset's seed count)")
    p.add_argument("--opt", action="append", metavar="STRATEGY:KEY=VALUE",
                   help="strategy option, repeatable (e.g. entropy:aggregate=max)")
    p.add_argument("--out", help="results folder (default: results/runs)")
    p.add_argument("--executor", choices=["local", "ray"], help="local processes (default) or Ray")
    p.add_argument("--workers", type=int,
                   help="parallel runs (local default 1 = in this process; ray: CPUs of a "
                        "local Ray instance, default all cores); with --device cuda the local "
                        "workers share the GPU")
    p.add_argument("--gpu-mem-per-run", type=float, metavar="MB",
                   help=f"GPU memory one run is assumed to need when runs share a GPU; the "
                        f"sweep stops with an error when they would not fit (default "
                        f"{GPU_MEM_PER_RUN_MB}, an estimate for the small presets)")
    p.add_argument("--gpus-per-run", type=float, metavar="SHARE",
                   help="ray: the share of a GPU each CUDA run asks for (default 1; 0.25 puts "
                        "four runs on one GPU)")
    p.add_argument("--ray-address", help="join this Ray cluster (e.g. auto or HOST:6379) "
                                         "instead of starting a local instance")
    p.add_argument("--config", help="sweep file (YAML) with the same fields; flags override it")
    p.add_argument("--quiet", action="store_true", help="no progress output or summary")
    add_setting_args(p)
    p.set_defaults(func=cmd_sweep, preset=None, device=None)
