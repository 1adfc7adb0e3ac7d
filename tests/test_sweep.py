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
from albench.sweep import (SweepOutcome, _drive, _Display, expand_grid, parse_seeds,
                           plan_from_args, run_sweep)
from strategies.base import STRATEGIES, Option, Selection, Strategy
from tests.conftest import TINY, TINY_CLI

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
    assert code == 2 and "no option 'bogus'" in text.err  # the grid is checked before any run
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
    with pytest.raises(ConfigError, match="has no option 'kk'"):
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
