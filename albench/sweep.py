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
              "workers", "ray_address")
_DICT_KEYS = ("dataset_options", "backend_options")
RAY_HINT = 'The ray executor needs Ray: pip install "albench[ray]" (or use --executor local).'


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
    try:
        for part in filter(None, (p.strip() for p in spec.split(","))):
            low, dash, high = part.partition("-")
            lo, hi = (int(low), int(high)) if dash else (int(low), int(low))
            if hi < lo:
                raise ValueError(part)
            seeds.extend(range(lo, hi + 1))
    except ValueError:
        raise ConfigError(f"Seeds {spec!r} are neither a range nor a list: give them as 0-4, "
                          "0,2,5 or a mix such as 0-2,7.") from None
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
    for name in names:
        strategies.get_strategy(name)
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


def _full_options(strategy_options: Mapping[str, Mapping[str, Any]],
                  names: list[str]) -> dict[str, dict[str, Any]]:
    """Every strategy's options, typed and with defaults filled in (as the loop records them)."""
    from strategies import get_strategy
    from strategies.base import resolve_options

    for name in strategy_options:
        if name not in names:
            raise ConfigError(f"Options are given for strategy {name!r}, which is not in the "
                              f"sweep ({', '.join(names)}): add it to the strategies or drop "
                              "its options.")
    return {name: resolve_options(get_strategy(name), dict(strategy_options.get(name, {})))
            for name in names}


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
    options = _full_options(strategy_options or {}, names)
    grid: dict[str, RunConfig] = {}
    for setting in settings or [{}]:
        params = merge(overrides, setting)
        name = params.pop("preset", None) or preset or "quick"
        if name not in PRESETS:
            resolve(name)  # the unknown-preset error
        for seed in parse_seeds(seeds) if seeds is not None else range(PRESETS[name].seeds):
            for strategy in names:
                cfg = resolve(name, strategy=strategy, seed=seed,
                              strategy_options=dict(options[strategy]), **params)
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
        cfg = RunConfig.from_dict(cfg.to_dict())  # the loop writes to the config it is given
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
    """Every run one Ray task (one GPU when the run's device is CUDA)."""

    def __init__(self, out: Path, workers: int, address: str | None) -> None:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
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
        gpus = 1 if cfg.device.startswith("cuda") else 0
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

    def __init__(self, total: int, quiet: bool) -> None:
        self.quiet = quiet
        self.bar = Progress(
            SpinnerColumn(), TextColumn("sweep"), BarColumn(bar_width=20), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("{task.fields[current]}"),
            console=Console(stderr=True), disable=quiet)
        self.task = self.bar.add_task("sweep", total=total, current="")

    def __enter__(self) -> _Display:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def note(self, text: str) -> None:
        if not self.quiet:
            self.bar.console.print(text, highlight=False)

    def current(self, text: str) -> None:
        self.bar.update(self.task, current=text)

    def done(self, o: SweepOutcome) -> None:
        self.bar.advance(self.task)
        if o.status == "failed":
            self.note(f"[red]failed[/red] {o.run_id}: {o.error}")
        else:
            ap = "-" if o.final_ap50 is None else f"{o.final_ap50:.3f}"
            self.note(f"{o.status} {o.run_id}: final AP50 {ap} ({o.seconds:.1f}s)")


def run_sweep(configs: Sequence[RunConfig], out: Path, executor: str = "local", workers: int = 1,
              ray_address: str | None = None, quiet: bool = False) -> list[SweepOutcome]:
    """Run every config into ``out`` (skipping complete ones); outcomes in ``configs`` order."""
    if executor not in ("local", "ray"):
        raise ConfigError(f"Unknown executor {executor!r}: use --executor local or ray.")
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, not {workers}.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    unique = {cfg.run_id(): cfg for cfg in configs}
    outcomes = {run_id: finished(cfg, out) for run_id, cfg in unique.items()}
    todo = [cfg for run_id, cfg in unique.items() if outcomes[run_id] is None]
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
            ex: Any = (_Ray(out, workers, ray_address) if executor == "ray" else
                       _Pool(out, local) if local > 1 else _Inline(out, display.current))
            try:
                _drive(ex, groups, outcomes, display)
            finally:
                ex.close()
    result = [o for o in outcomes.values() if o is not None]
    if not quiet:
        Console().print(summary_table(result))
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
                     int(workers), args.ray_address or file.get("ray_address"))


def exit_code(outcomes: Sequence[SweepOutcome]) -> int:
    """1 when any run of the sweep failed, else 0."""
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def cmd_sweep(args: argparse.Namespace) -> int:
    plan = plan_from_args(args)
    return exit_code(run_sweep(plan.configs, plan.out, plan.executor, plan.workers,
                               plan.ray_address, quiet=args.quiet))


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
                        "local Ray instance, default all cores)")
    p.add_argument("--ray-address", help="join this Ray cluster (e.g. auto or HOST:6379) "
                                         "instead of starting a local instance")
    p.add_argument("--config", help="sweep file (YAML) with the same fields; flags override it")
    p.add_argument("--quiet", action="store_true", help="no progress output or summary")
    add_setting_args(p)
    p.set_defaults(func=cmd_sweep, preset=None, device=None)
