"""Sweeps: the grid, one results folder, skip/resume, shared round-0 models, failures,
the config file, the executors (in-process, process pool, Ray) and the paper presets."""

from __future__ import annotations

import os

import json
import shutil
import sys
from concurrent import futures
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import yaml

from albench import _offline
from albench.cli import build_parser, main
from albench.config import PRESETS, RunConfig, resolve
from albench.errors import ConfigError
from albench.results import read_rows
from albench.cli.sweep import plan_from_args
from albench.strategy import STRATEGIES, Option, Selection, Strategy
from albench.sweep import SweepOutcome, _drive, _Display, expand_grid, parse_seeds, run_sweep
from tests.helpers.settings import TINY, TINY_CLI

# TINY made smaller still (8 + 1 x 4 labels, one epoch per training): the cheapest real runs.
SWEEP = {**TINY, "initial": 8, "budget": 4, "rounds": 1,
         "dataset_options": {**TINY["dataset_options"], "pool_size": 40, "test_size": 20},
         "backend_options": {**TINY["backend_options"], "epochs": 1}}
SWEEP_CLI = [*TINY_CLI, "--initial", "8", "--budget", "4", "--rounds", "1",
             "--dataset-opt", "pool_size=40", "--dataset-opt", "test_size=20",
             "--backend-opt", "epochs=1"]
PAPER_PRESETS = ("voc-ll4al", "voc-miaod", "coco-miaod", "voc07-almdn")


class Lowest(Strategy):
    name = "sweep-lowest"
    description = "the lowest unlabeled ids (test strategy)"
    options: ClassVar[dict[str, Option]] = {"k": Option(3, "unused")}

    def select(self, ctx, budget):
        return Selection(np.sort(ctx.unlabeled)[:budget])


class Raises(Strategy):
    name = "sweep-raises"
    description = "fails when asked to select (test strategy)"

    def select(self, ctx, budget):
        raise RuntimeError("boom")


@pytest.fixture(scope="module", autouse=True)
def test_strategies_and_one_thread():
    """The test strategies; one torch thread for in-process runs this small (as workers use)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    STRATEGIES.update({Lowest.name: Lowest, Raises.name: Raises})
    yield
    for cls in (Lowest, Raises):
        STRATEGIES.pop(cls.name, None)
    torch.set_num_threads(threads)


def grid(strategies, seeds="0-1", **overrides):
    return expand_grid(strategies, seeds, "smoke", **{**SWEEP, **overrides})


def plan(argv):
    return plan_from_args(build_parser().parse_args(["sweep", *argv]))


def files(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns
            for p in folder.rglob("*") if p.is_file()}


def comparable(run_dir: Path) -> list[tuple]:
    return [(r["round"], r["n_labeled"], r["ap50"], r["ap"], r["selection_sha256"])
            for r in read_rows(run_dir / "rounds.csv")]


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """random x seeds 0-1 first, then the whole 2 x 2 grid into the same folder."""
    out = tmp_path_factory.mktemp("sweep")
    shutil.rmtree(_offline.cache_root() / "models", ignore_errors=True)
    first = run_sweep(grid("random"), out, quiet=True)
    configs = grid(["random", "sweep-lowest"])
    second = run_sweep(configs, out, quiet=True)
    return out, configs, first, second


def test_grid_runs_into_one_folder_and_shares_round0(swept):
    out, configs, first, second = swept
    assert [o.status for o in first] == ["complete", "complete"]
    assert {o.run_id: o.status for o in second} == {
        c.run_id(): "already complete" if c.strategy == "random" else "complete" for c in configs}
    assert sorted(p.name for p in out.iterdir()) == sorted(c.run_id() for c in configs)
    for cfg in configs:
        run_dir = out / cfg.run_id()
        assert json.loads((run_dir / "manifest.json").read_text())["status"] == "complete"
        rows = read_rows(run_dir / "rounds.csv")
        assert [int(r["round"]) for r in rows] == [0, 1]
        # round 0 trained once per seed (by random); the other strategy loads it
        assert int(rows[0]["round0_cached"]) == (cfg.strategy != "random")
    assert all(o.error is None and o.final_ap50 is not None for o in first + second)


def test_same_sweep_again_skips_every_run(swept):
    out, configs, *_ = swept
    before = files(out)
    again = run_sweep(configs, out, quiet=True)
    assert [o.status for o in again] == ["already complete"] * 4
    assert files(out) == before


def test_complete_runs_of_another_machine_are_not_paired_with_new_ones(swept, tmp_path):
    out, configs, *_ = swept
    copy = Path(shutil.copytree(out, tmp_path / "copy"))
    baseline = next(c for c in configs if c.strategy == "random" and c.seed == 0)
    newcomer = next(c for c in configs if c.strategy != "random" and c.seed == 0)
    shutil.rmtree(copy / newcomer.run_id())
    redone = {o.run_id: o.status for o in run_sweep(configs, copy, quiet=True)}
    assert redone[newcomer.run_id()] == "complete"  # made on this machine: reused and paired
    shutil.rmtree(copy / newcomer.run_id())
    manifest_path = copy / baseline.run_id() / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["hardware"]["processor"] = "Another CPU"
    manifest_path.write_text(json.dumps(manifest))
    before = files(copy)
    with pytest.raises(ConfigError, match="made on another machine or torch build"):
        run_sweep(configs, copy, quiet=True)
    assert files(copy) == before


def test_interrupted_run_is_resumed(swept):
    out, configs, *_ = swept
    target = out / configs[-1].run_id()
    rows = comparable(target)
    manifest = json.loads((target / "manifest.json").read_text())
    (target / "manifest.json").write_text(json.dumps({**manifest, "status": "running"}))
    again = {o.run_id: o.status for o in run_sweep(configs, out, quiet=True)}
    assert again.pop(target.name) == "complete"
    assert set(again.values()) == {"already complete"}
    assert comparable(target) == rows


def test_failing_runs_are_recorded_and_the_rest_complete(swept, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # no wrapped table cells
    out, configs, *_ = swept
    random0 = configs[0].run_id()
    shutil.copytree(out / random0, tmp_path / random0)  # finished before the sweep
    sweep_file = tmp_path / "sweep.yaml"
    sweep_file.write_text(yaml.safe_dump({
        "strategies": ["random", "sweep-raises"], "seeds": [0],
        "settings": [{}, {"backend_options": {"bogus": 1}}]}))
    before = files(tmp_path)
    code = main(["sweep", "--config", str(sweep_file), *SWEEP_CLI, "--out", str(tmp_path)])
    text = capsys.readouterr()
    assert code == 2 and "Unknown --backend-opt 'bogus'" in text.err  # checked before any run
    assert files(tmp_path) == before
    sweep_file.write_text(yaml.safe_dump({"strategies": ["random", "sweep-raises"],
                                          "seeds": [0]}))
    code = main(["sweep", "--config", str(sweep_file), *SWEEP_CLI, "--out", str(tmp_path)])
    text = capsys.readouterr()
    assert code == 1
    assert "RuntimeError: boom" in text.out
    assert "1 of 2 runs complete, 1 failed" in text.out
    finished = [p.parent.name for p in tmp_path.glob("*/manifest.json")
                if json.loads(p.read_text())["status"] == "complete"]
    assert finished == [random0]


def test_seed_syntax():
    assert parse_seeds("0-2") == [0, 1, 2]
    assert parse_seeds("0,2,5") == [0, 2, 5]
    assert parse_seeds("0-2,7,1") == [0, 1, 2, 7]
    assert parse_seeds(3) == [3] and parse_seeds([4, 1]) == [4, 1]
    for bad in ("a", "", "1-", "-1"):
        with pytest.raises(ConfigError, match="0-4"):
            parse_seeds(bad)
    with pytest.raises(ConfigError, match="reversed.*0-2"):
        parse_seeds("2-0")
    configs = plan(["--strategies", "random", "--seeds", "0-2", *SWEEP_CLI]).configs
    assert [c.seed for c in configs] == [0, 1, 2]
    assert [c.seed for c in grid("random", seeds=None)] == list(range(PRESETS["smoke"].seeds))


def test_config_file_equals_the_flags(tmp_path):
    flags = plan(["--strategies", "random,sweep-lowest", "--seeds", "0-1", *SWEEP_CLI,
                  "--opt", "sweep-lowest:k=5", "--workers", "2", "--out", str(tmp_path)])
    sweep_file = tmp_path / "sweep.yaml"
    sweep_file.write_text(yaml.safe_dump({
        "strategies": "random,sweep-lowest", "seeds": "0-1", "preset": "smoke",
        "workers": 2, "out": str(tmp_path), **SWEEP,
        "strategy_options": {"sweep-lowest": {"k": 5}}}))
    from_file = plan(["--config", str(sweep_file)])
    assert [c.to_dict() for c in from_file.configs] == [c.to_dict() for c in flags.configs]
    assert (from_file.out, from_file.workers, from_file.executor) == (tmp_path, 2, "local")
    assert [c.run_id() for c in flags.configs] == [c.run_id() for c in grid(
        ["random", "sweep-lowest"], strategy_options={"sweep-lowest": {"k": "5"}})]
    # flags override the file, also inside every entry of settings
    sweep_file.write_text(yaml.safe_dump({
        **SWEEP, "strategies": ["random"], "seeds": [0], "rounds": 7,
        "settings": [{"budget": 4}, {"budget": "10%", "rounds": 9}]}))
    crossed = plan(["--config", str(sweep_file), "--preset", "smoke"]).configs
    assert [(c.budget, c.rounds) for c in crossed] == [(4, 7), (0.1, 9)]
    crossed = plan(["--config", str(sweep_file), "--preset", "smoke", "--rounds", "2"]).configs
    assert [(c.budget, c.rounds) for c in crossed] == [(4, 2), (0.1, 2)]


def test_sweep_input_errors(tmp_path):
    with pytest.raises(ConfigError, match="Unknown strategy 'nope'"):
        plan(["--strategies", "random,nope"])
    with pytest.raises(ConfigError, match="which strategies"):
        plan([])
    with pytest.raises(ConfigError, match="STRATEGY:KEY=VALUE"):
        plan(["--strategies", "random", "--opt", "k=1"])
    with pytest.raises(ConfigError, match="not in the sweep"):
        plan(["--strategies", "random", "--opt", "sweep-lowest:k=1"])
    with pytest.raises(ConfigError, match="Unknown --opt 'kk' for strategy 'sweep-lowest'. Did "
                                          "you mean 'k'?"):
        plan(["--strategies", "sweep-lowest", "--opt", "sweep-lowest:kk=1"])
    (tmp_path / "bad.yaml").write_text("strategies: [random]\nepochs: 3\n")
    with pytest.raises(ConfigError, match="unknown field"):
        plan(["--config", str(tmp_path / "bad.yaml")])
    assert main(["sweep", "--strategies", "random", "--preset", "nope"]) == 2


def test_round0_leader_finishes_before_its_followers_are_dispatched(tmp_path):
    configs = grid(["random", "sweep-lowest", "sweep-raises"], seeds="0-1")
    log: list[tuple[str, str]] = []

    class Recording:
        def submit(self, cfg):
            log.append(("submit", cfg.run_id()))
            fut = futures.Future()
            fut.cfg = cfg
            return fut

        def wait(self, handles, timeout):
            handles[-1].set_result(SweepOutcome(handles[-1].cfg.run_id(), "complete"))
            log.append(("done", handles[-1].cfg.run_id()))
            return handles[-1:]

        def result(self, handle):
            return handle.result()

        def running(self, handles):
            return ""

    groups: dict = {}
    for cfg in configs:
        groups.setdefault((cfg.setting_hash(), cfg.seed), []).append(cfg)
    outcomes = {c.run_id(): None for c in configs}
    _drive(Recording(), groups, outcomes, _Display(len(configs), quiet=True))
    assert all(o is not None for o in outcomes.values())
    for leader, *followers in groups.values():
        done_at = log.index(("done", leader.run_id()))
        assert all(log.index(("submit", f.run_id())) > done_at for f in followers)
    first = [e for e in log if e[0] == "submit"][:2]
    assert first == [("submit", c.run_id()) for c in configs[::3]]


def test_process_pool_trains_round0_once_and_matches_in_process_runs(swept, tmp_path):
    out, configs, *_ = swept
    runs = grid(["random", "entropy"], seeds="0")
    assert runs[0].run_id() == configs[0].run_id()
    shutil.rmtree(_offline.cache_root() / "models", ignore_errors=True)
    outcomes = run_sweep(runs, tmp_path, workers=2, quiet=True)
    assert [o.status for o in outcomes] == ["complete", "complete"], [o.error for o in outcomes]
    assert comparable(tmp_path / runs[0].run_id()) == comparable(out / runs[0].run_id())
    # two workers, yet entropy waited for random's round-0 model instead of training one
    rows = [read_rows(tmp_path / c.run_id() / "rounds.csv")[0] for c in runs]
    assert [int(r["round0_cached"]) for r in rows] == [0, 1]
    assert rows[0]["ap50"] == rows[1]["ap50"]


@pytest.mark.skipif(os.environ.get("ALBENCH_TEST_RAY") != "1",
                    reason="opt-in (ALBENCH_TEST_RAY=1): a starting Ray instance probes the cloud "
                           "metadata address whatever its usage-stats setting, which offline CI "
                           "must not do")
def test_ray_executor_gives_the_same_runs(swept, tmp_path):
    pytest.importorskip("ray", reason='Ray is not installed (pip install "albench[ray]")')
    out, configs, *_ = swept
    runs = [c for c in configs if c.strategy == "random"]
    outcomes = run_sweep(runs, tmp_path, executor="ray", workers=2, quiet=True)
    assert [o.status for o in outcomes] == ["complete", "complete"], [o.error for o in outcomes]
    for cfg in runs:
        assert comparable(tmp_path / cfg.run_id()) == comparable(out / cfg.run_id())


def test_ray_workers_get_albench_and_the_strategy_packages_not_a_checkout_path():
    from albench.sweep.executors import shipped_packages

    # the test strategies registered here live in a test module, not a package: not shipped
    assert Lowest.name in STRATEGIES
    assert [m.__name__ for m in shipped_packages()] == ["albench", "strategies"]


def test_missing_ray_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ConfigError, match=r'pip install "albench\[ray\]"'):
        run_sweep(grid("random", seeds="0"), tmp_path, executor="ray", quiet=True)


@pytest.mark.parametrize("name", PAPER_PRESETS)
def test_paper_presets_resolve(name):
    from albench.backends import available, backend_options

    preset = PRESETS[name]
    for backend in ("yolo", "frcnn"):
        cfg = resolve(name, backend=backend)
        assert cfg.dataset == preset.dataset and cfg.train_mode == "scratch"
        assert (cfg.initial, cfg.budget, cfg.rounds) == (preset.initial, preset.budget,
                                                         preset.rounds)
        assert cfg.dataset_options == preset.dataset_options.get(preset.dataset, {})
        assert cfg.backend_options == preset.backend_options[backend]
        if backend in available():
            backend_options(backend, cfg.backend_options)  # every key is a real option
    explicit = resolve(name, dataset="shapes")
    assert explicit.dataset == "shapes" and explicit.dataset_options == {}
    assert [c.seed for c in expand_grid("random", preset=name)] == list(range(preset.seeds))


@pytest.mark.parametrize("name", PAPER_PRESETS)
def test_a_flag_overrides_one_preset_field(name):
    base = plan(["--preset", name, "--strategies", "random", "--seeds", "0"]).configs[0]
    changed = plan(["--preset", name, "--strategies", "random", "--seeds", "0",
                    "--initial", "500"]).configs[0]
    diff = {k for k, v in changed.to_dict().items() if base.to_dict()[k] != v}
    assert diff == {"initial"} and changed.initial == 500
    assert base.to_dict() == resolve(name).to_dict()


def test_paper_preset_sizes():
    from albench.loop import count

    voc, coco = 16551, 117266
    assert count(PRESETS["voc-miaod"].initial, voc) == 828
    assert count(PRESETS["voc-miaod"].budget, voc) == 414
    assert count(PRESETS["coco-miaod"].budget, coco) == 2345
    for name, end in (("voc-ll4al", 10000), ("voc07-almdn", 5000)):
        p = PRESETS[name]
        assert p.initial + p.rounds * p.budget == end


def test_list_shows_presets_with_sizes(capsys):
    assert main(["list"]) == 0
    text = capsys.readouterr().out
    for name in PAPER_PRESETS:
        assert name in text
    assert "5.0%" in text and "2.5%" in text and "scratch" in text


def test_run_config_from_sweep_is_a_plain_run_config():
    cfg = grid("random", seeds="0")[0]
    assert isinstance(cfg, RunConfig) and cfg.strategy_options == {}
    assert cfg.run_id() == resolve("smoke", strategy="random", seed=0, **SWEEP).run_id()


# ---------------------------------------------------------------------- runs sharing a GPU
def fixed_gpu(free_mb: float, total_mb: float = 80_000.0):
    """A stand-in for the memory query (the check's input), recording what was asked."""
    from albench.sweep import GpuMemory

    asked: list[str] = []

    def query(device: str) -> GpuMemory:
        asked.append(device)
        return GpuMemory("test GPU", free_mb, total_mb)

    query.asked = asked
    return query


def test_workers_that_do_not_fit_the_gpu_are_a_clear_error():
    from albench.sweep import check_gpu_fit

    runs = grid("random", seeds="0-5", device="cuda")  # 6 runs on one GPU
    query = fixed_gpu(free_mb=3000)
    with pytest.raises(ConfigError) as exc:
        check_gpu_fit(runs, "local", workers=4, mem_per_run_mb=1000, query=query)
    text = str(exc.value)
    assert "4 runs at once on cuda:0 need about 4 x 1,000 MB = 4,000 MB" in text
    assert "3,000 MB free" in text and "room for 3" in text and "--workers 3" in text
    assert query.asked == ["cuda:0"]
    check_gpu_fit(runs, "local", workers=3, mem_per_run_mb=1000, query=query)  # fits
    check_gpu_fit(runs[:2], "local", workers=8, mem_per_run_mb=1000, query=query)  # 2 runs only
    with pytest.raises(ConfigError, match="free some GPU memory"):
        check_gpu_fit(runs, "local", workers=1, mem_per_run_mb=5000, query=query)


def test_default_memory_estimate_is_used_and_validated():
    from albench.sweep import GPU_MEM_PER_RUN_MB, check_gpu_fit

    runs = grid("random", seeds="0-3", device="cuda:1")
    query = fixed_gpu(free_mb=4 * GPU_MEM_PER_RUN_MB - 1)
    with pytest.raises(ConfigError, match=f"4 x {GPU_MEM_PER_RUN_MB:,} MB"):
        check_gpu_fit(runs, "local", workers=4, query=query)
    assert query.asked == ["cuda:1"]
    with pytest.raises(ConfigError, match="positive number of MB"):
        check_gpu_fit(runs, "local", workers=1, mem_per_run_mb=0, query=query)


def test_cpu_runs_never_ask_for_gpu_memory():
    from albench.sweep import check_gpu_fit

    def no_query(device):
        raise AssertionError(f"asked for {device}")

    check_gpu_fit(grid("random", seeds="0-7"), "local", workers=8, query=no_query)


def test_ray_runs_per_gpu_follow_the_gpu_share():
    from albench.sweep import check_gpu_fit, runs_at_once

    assert runs_at_once("ray", workers=16, gpus_per_run=0.25, runs=12) == 4
    assert runs_at_once("ray", workers=2, gpus_per_run=0.25, runs=12) == 2
    assert runs_at_once("ray", workers=16, gpus_per_run=1.0, runs=12) == 1
    assert runs_at_once("ray", workers=16, gpus_per_run=1 / 3, runs=12) == 3
    assert runs_at_once("local", workers=4, gpus_per_run=1.0, runs=3) == 3
    runs = grid("random", seeds="0-7", device="cuda")
    with pytest.raises(ConfigError, match="--gpus-per-run 0.333 or more"):
        check_gpu_fit(runs, "ray", workers=16, mem_per_run_mb=1000, gpus_per_run=0.25,
                      query=fixed_gpu(free_mb=3500))
    check_gpu_fit(runs, "ray", workers=16, mem_per_run_mb=1000, gpus_per_run=0.25,
                  query=fixed_gpu(free_mb=4000))


@pytest.mark.parametrize("share", [0.0, -0.5, 1.5])
def test_gpu_share_out_of_range_is_an_error(share):
    from albench.sweep import check_gpus_per_run

    with pytest.raises(ConfigError, match=r"\(0, 1\]"):
        check_gpus_per_run(share)


def test_gpu_sharing_flags_and_file_fields(tmp_path):
    p = plan(["--strategies", "random", "--seeds", "0", *SWEEP_CLI, "--executor", "ray",
              "--gpus-per-run", "0.25", "--gpu-mem-per-run", "2048"])
    assert (p.gpus_per_run, p.gpu_mem_per_run) == (0.25, 2048.0)
    spec = tmp_path / "sweep.yaml"
    spec.write_text(yaml.safe_dump({"strategies": "random", "seeds": "0", "preset": "smoke",
                                    "executor": "ray", "gpus_per_run": 0.5,
                                    "gpu_mem_per_run": 512}))
    p = plan(["--config", str(spec)])
    assert (p.gpus_per_run, p.gpu_mem_per_run) == (0.5, 512.0)
    p = plan(["--config", str(spec), "--gpus-per-run", "0.2"])
    assert p.gpus_per_run == 0.2
    assert plan(["--strategies", "random", "--seeds", "0"]).gpus_per_run == 1.0
    with pytest.raises(ConfigError, match="--executor ray"):
        plan(["--strategies", "random", "--seeds", "0", "--gpus-per-run", "0.5"])


@pytest.mark.skipif(__import__("torch").cuda.is_available(),
                    reason="checks the error on a machine without CUDA")
def test_cuda_sweep_without_a_gpu_stops_before_any_run(tmp_path, capsys):
    code = main(["sweep", "--strategies", "random", "--seeds", "0-3", *SWEEP_CLI,
                 "--device", "cuda", "--workers", "4", "--out", str(tmp_path / "out"),
                 "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "torch sees no CUDA device" in err and "Traceback" not in err
    assert not list((tmp_path / "out").glob("*/manifest.json"))


def test_sweep_progress_is_plain_lines_off_a_terminal():
    import io

    from rich.console import Console

    buf = io.StringIO()
    display = _Display(2, quiet=False, console=Console(file=buf, width=40))
    with display:
        display.current("shapes-yolo-random-s0-0123abcd")
        display.current("shapes-yolo-random-s0-0123abcd")  # unchanged: no second line
        display.done(SweepOutcome("shapes-yolo-random-s0-0123abcd", "complete", None, 12.3, 0.456))
        display.done(SweepOutcome("shapes-yolo-entropy-s0-0123abcd", "failed", "boom"))
    lines = buf.getvalue().splitlines()
    assert lines == ["running shapes-yolo-random-s0-0123abcd",
                     "[1/2] complete shapes-yolo-random-s0-0123abcd: final AP50 0.456 (12.3s)",
                     "[2/2] failed shapes-yolo-entropy-s0-0123abcd: boom"]


WORKER_SCRIPT = """
import os, sys, time
if __name__ == "__main__":
    if sys.argv[1] == "sweep":
        from albench.sweep.executors import Pool
        pool = Pool(sys.argv[2], workers=1).pool
    else:
        from albench.lab import LabWorkers
        lab = LabWorkers(2)
        lab.map(abs, [1, 2])
        pool = lab._pool
    pid = pool.submit(os.getpid).result()
    pool.submit(time.sleep, 600)
    print(pid, flush=True)
    time.sleep(600)
"""


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its reaper counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states in /proc")
@pytest.mark.parametrize("kind", ["sweep", "lab"])
def test_workers_end_when_the_process_that_started_them_is_killed(kind, tmp_path):
    """A sweep killed by a scheduler (SIGKILL reaches only the parent) must not leave its
    run workers, or a run its fine-tune workers, training on as orphans that hold the
    run's lock and write into its folder."""
    import signal
    import subprocess
    import time

    script = tmp_path / "workers.py"
    script.write_text(WORKER_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), kind, str(tmp_path)],
                            stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parent.parent)
    worker = int(proc.stdout.readline())
    assert _alive(worker)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 20
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.2)
    ended = not _alive(worker)
    if not ended:
        os.kill(worker, signal.SIGKILL)
    assert ended, f"the {kind} worker {worker} outlived the process that started it"
