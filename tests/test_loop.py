"""The AL loop on the real yolo backend and the real shapes data, at the tiniest scale."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from albench import _offline
from albench.errors import ConfigError, SelectionError
from albench.loop import ActiveLearningLoop
from albench.results import read_jsonl, read_rows
from albench.strategy import Selection, Strategy
from tests.helpers.runs import comparable, crash_then_resume
from tests.helpers.settings import TINY_CLI


def clear_model_cache():
    shutil.rmtree(_offline.cache_root() / "models", ignore_errors=True)


def test_run_respects_budget_and_records_every_round(tiny_cfg, tmp_path):
    cfg = tiny_cfg(strategy="random", seed=3)
    result = ActiveLearningLoop(cfg, tmp_path).run()
    rows = read_rows(result.run_dir / "rounds.csv")
    assert [int(r["round"]) for r in rows] == [0, 1, 2]
    assert [int(r["n_labeled"]) for r in rows] == [16, 24, 32]
    sels = read_jsonl(result.run_dir / "selections.jsonl")
    assert [len(s["ids"]) for s in sels] == [8, 8]
    chosen = np.concatenate([s["ids"] for s in sels])
    assert len(np.unique(chosen)) == len(chosen)
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["dataset"]["fingerprint"] and manifest["config_hash"] == cfg.config_hash()
    for key in ("versions", "git_commit", "hardware", "recipe"):
        assert manifest[key]
    for r in rows:
        assert 0.0 <= float(r["ap50"]) <= 1.0 and float(r["t_train_s"]) > 0


def test_same_seed_gives_same_selections_and_metrics(tiny_cfg, tmp_path):
    clear_model_cache()
    a = ActiveLearningLoop(tiny_cfg(seed=5), tmp_path / "a").run()
    clear_model_cache()  # train round 0 again rather than load it
    b = ActiveLearningLoop(tiny_cfg(seed=5), tmp_path / "b").run()
    assert comparable(a.rows) == comparable(b.rows)
    c = ActiveLearningLoop(tiny_cfg(seed=6), tmp_path / "c").run()
    assert [r["selection_sha256"] for r in c.rows] != [r["selection_sha256"] for r in a.rows]


def test_strategies_share_initial_set_and_round0_model(tiny_cfg, tmp_path, temp_strategy):
    @temp_strategy
    class LowestIds(Strategy):
        name = "test-lowest"

        def select(self, ctx, budget):
            return Selection(np.sort(ctx.unlabeled)[:budget])

    clear_model_cache()
    a = ActiveLearningLoop(tiny_cfg(seed=1), tmp_path).run()
    b = ActiveLearningLoop(tiny_cfg(seed=1, strategy="test-lowest"), tmp_path).run()
    assert int(b.rows[0]["round0_cached"]) == 1 and int(a.rows[0]["round0_cached"]) == 0
    assert comparable(a.rows)[0]["ap50"] == comparable(b.rows)[0]["ap50"]
    state_a = json.loads((a.run_dir / "state" / "state.json").read_text())["labeled_round"]
    state_b = json.loads((b.run_dir / "state" / "state.json").read_text())["labeled_round"]
    assert [x == 0 for x in state_a] == [x == 0 for x in state_b]
    assert a.rows[0]["selection_sha256"] != b.rows[0]["selection_sha256"]


def test_invalid_selection_stops_the_run_and_keeps_earlier_rounds(tiny_cfg, tmp_path, temp_strategy):
    @temp_strategy
    class Repeats(Strategy):
        name = "test-repeats"

        def select(self, ctx, budget):
            if ctx.round == 0:
                return Selection(ctx.unlabeled[:budget])
            return Selection(np.repeat(ctx.unlabeled[:1], budget))

    loop = ActiveLearningLoop(tiny_cfg(strategy="test-repeats"), tmp_path)
    with pytest.raises(SelectionError, match="repeats ids"):
        loop.run()
    rows = read_rows(loop.run_dir / "rounds.csv")
    assert [int(r["round"]) for r in rows] == [0]
    state = json.loads((loop.run_dir / "state" / "state.json").read_text())
    assert state["next_round"] == 1


def test_budget_larger_than_pool_is_a_clear_error(tiny_cfg, tmp_path):
    with pytest.raises(ConfigError, match="does not fit the pool"):
        ActiveLearningLoop(tiny_cfg(budget=500), tmp_path).run()
    assert not any(tmp_path.iterdir())


def test_resume_after_a_crash_equals_an_uninterrupted_run(tiny_cfg, tmp_path, monkeypatch):
    from strategies.random import RandomStrategy

    whole = ActiveLearningLoop(tiny_cfg(seed=2), tmp_path / "whole").run()
    resumed = crash_then_resume(tiny_cfg(seed=2), tmp_path / "crash", RandomStrategy, 1, monkeypatch)
    assert comparable(resumed.rows) == comparable(whole.rows)
    assert read_jsonl(resumed.run_dir / "selections.jsonl") == read_jsonl(whole.run_dir / "selections.jsonl")


def test_finished_run_is_left_alone_unless_forced(tiny_cfg, tmp_path):
    first = ActiveLearningLoop(tiny_cfg(seed=4), tmp_path).run()
    before = (first.run_dir / "rounds.csv").stat().st_mtime_ns
    again = ActiveLearningLoop(tiny_cfg(seed=4), tmp_path).run()
    assert again.status == "already complete"
    assert (first.run_dir / "rounds.csv").stat().st_mtime_ns == before
    forced = ActiveLearningLoop(tiny_cfg(seed=4), tmp_path, force=True).run()
    assert forced.status == "complete"
    assert comparable(forced.rows) == comparable(first.rows)


def test_kill_9_then_rerun_equals_uninterrupted(tmp_path):
    """A real crash: SIGKILL the CLI after round 0 is saved, run the command again."""
    cmd = [sys.executable, "-m", "albench", "run", "--strategy", "random", "--seed", "7",
           "--quiet", *TINY_CLI, "--backend-opt", "epochs=6", "--backend-opt", "warm_epochs=4"]
    env = dict(os.environ)
    subprocess.run(cmd + ["--out", str(tmp_path / "whole")], check=True, env=env)
    proc = subprocess.Popen(cmd + ["--out", str(tmp_path / "killed")], env=env)
    deadline = time.time() + 300
    state = None
    while time.time() < deadline and proc.poll() is None:
        found = list((tmp_path / "killed").glob("*/state/state.json"))
        if found and json.loads(found[0].read_text())["next_round"] >= 1:
            state = found[0]
            break
        time.sleep(0.05)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert state is not None, "the run never saved a round"
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    subprocess.run(cmd + ["--out", str(tmp_path / "killed")], check=True, env=env)
    (whole,) = (tmp_path / "whole").iterdir()
    (killed,) = (tmp_path / "killed").iterdir()
    assert comparable(read_rows(killed / "rounds.csv")) == comparable(read_rows(whole / "rounds.csv"))
    assert read_jsonl(killed / "selections.jsonl") == read_jsonl(whole / "selections.jsonl")
