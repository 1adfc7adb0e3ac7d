"""A run is tied to its config and data, keeps its last round, and owns its folder."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from albench.config import RunConfig, plan_rounds, resolve
from albench.errors import ConfigError, RunFolderError
from albench.lock import lock_path, run_lock
from albench.loop import ActiveLearningLoop
from albench.results import ROUND_COLUMNS, atomic_write_json, read_rows, write_rows
from strategies.mgral import LEGACY
from tests.helpers.data import coco_doc, write_coco_json

ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------ the config
def test_committed_runs_keep_their_ids():
    """resolve() of the command that made each committed run gives its folder name."""
    manifests = sorted((ROOT / "results" / "quick").glob("*/manifest.json"))
    assert manifests
    for path in manifests:
        recorded = json.loads(path.read_text())["config"]
        legacy = LEGACY if recorded["strategy"] == "mgral" else None  # options added later
        cfg = resolve("quick", strategy=recorded["strategy"], seed=recorded["seed"],
                      strategy_options=legacy)
        assert cfg.hashed_dict() == {k: v for k, v in recorded.items() if k != "deterministic"}
        assert cfg.run_id() == path.parent.name


@pytest.mark.parametrize("results, sweep_file", [
    ("results/reference", "results/reference/sweep.yaml"),
    ("results/quick", "strategies/mgral/paper/sweeps/shapes-quick.yaml")])
def test_committed_sweep_files_make_exactly_the_committed_runs(results, sweep_file):
    """The sweep file a committed folder is rebuilt from gives its run ids, so a changed
    default (mgral's are now the validity variant) cannot silently make other runs."""
    from albench.sweep import SETTING_KEYS, expand_grid, read_config

    spec = read_config(ROOT / sweep_file)
    configs = expand_grid(spec.get("strategies") or "all", spec.get("seeds"),
                          strategy_options=spec.get("strategy_options") or {},
                          **{k: spec[k] for k in SETTING_KEYS if k in spec})
    folders = {p.parent.name for p in (ROOT / results).glob("*/manifest.json")}
    assert folders and {c.run_id() for c in configs} == folders


def test_run_config_is_immutable_and_options_are_resolved_once():
    cfg = resolve("smoke", strategy="entropy", strategy_options={"aggregate": "max"})
    assert set(cfg.strategy_options) > {"aggregate"}  # defaults filled in by resolve
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        cfg.strategy_options["aggregate"] = "sum"
    with pytest.raises(TypeError):
        cfg.backend_options.update(epochs=1)
    again = resolve("smoke", strategy="entropy", strategy_options=dict(cfg.strategy_options))
    assert again == cfg and again.run_id() == cfg.run_id()
    assert pickle.loads(pickle.dumps(cfg)).run_id() == cfg.run_id()
    assert RunConfig.from_dict(cfg.to_dict()).run_id() == cfg.run_id()


@pytest.mark.parametrize("initial, budget, rounds, pool, last", [
    (10, 5, 4, 100, 4), (10, 30, 4, 100, 3), (10, 45, 4, 100, 2), (50, 50, 1, 100, 1)])
def test_plan_rounds(initial, budget, rounds, pool, last):
    got, note = plan_rounds(initial, budget, rounds, pool, "d")
    assert got == last and (note is None) == (last == rounds)
    if note:
        assert f"rounds 0..{last}" in note


def test_plan_rounds_rejects_a_budget_beyond_the_pool():
    with pytest.raises(ConfigError, match="does not fit the pool"):
        plan_rounds(60, 50, 1, 100, "d")


# ------------------------------------------------------------------ the last round
def test_a_selection_that_empties_the_pool_is_trained_and_evaluated(tiny_cfg, tmp_path, capsys):
    cfg = tiny_cfg(initial=16, budget=40, rounds=4)  # 16 + 40 + 24 (the rest) of 80
    result = ActiveLearningLoop(cfg, tmp_path).run()
    rows = read_rows(result.run_dir / "rounds.csv")
    assert [int(r["n_labeled"]) for r in rows] == [16, 56, 80]
    assert [int(r["n_selected"]) for r in rows] == [40, 24, 0]
    assert "the pool runs out in round 2" in " ".join(capsys.readouterr().err.split())
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["rounds_done"] == 3
    assert manifest["resolved"]["last_round"] == 2
    assert manifest["started_at"] <= manifest["finished_at"] and manifest["command"]
    again = ActiveLearningLoop(cfg, tmp_path).run()
    assert again.status == "already complete" and len(again.rows) == 3


# ------------------------------------------------------------------ runs tied to their data
def small_user_data(tmp: Path) -> dict:
    names = [f"{i}.png" for i in range(8)]
    box = {"category_id": 3, "bbox": [8, 8, 30, 20]}
    train = coco_doc(list(enumerate(names[:6])), [{"image_id": i, **box} for i in range(6)])
    test = coco_doc([(10, names[6]), (11, names[7])],
                    [{"image_id": 10, **box}, {"image_id": 11, **box}])
    return {k: str(v) for k, v in write_coco_json(tmp, train, test, tuple(names)).items()}


def test_a_finished_run_whose_data_changed_is_an_error_until_forced(tmp_path):
    data = small_user_data(tmp_path / "data")
    cfg = resolve("smoke", dataset="coco-json", initial=2, budget=2, rounds=1,
                  dataset_options=data,
                  backend_options={"imgsz": 64, "epochs": 1, "warm_epochs": 1, "batch": 4})
    out = tmp_path / "out"
    first = ActiveLearningLoop(cfg, out).run()
    assert first.status == "complete"
    ann = Path(data["ann_train"])
    os.utime(ann, ns=(time.time_ns(), time.time_ns() + 10**9))  # touched, same content
    assert ActiveLearningLoop(cfg, out).run().status == "already complete"
    doc = json.loads(ann.read_text())
    doc["annotations"][0]["bbox"] = [1, 1, 10, 10]
    ann.write_text(json.dumps(doc))
    before = (first.run_dir / "rounds.csv").read_bytes()
    with pytest.raises(RunFolderError, match="finished on different data.*--force"):
        ActiveLearningLoop(cfg, out).run()
    assert (first.run_dir / "rounds.csv").read_bytes() == before
    forced = ActiveLearningLoop(cfg, out, force=True).run()
    assert forced.status == "complete"
    assert ActiveLearningLoop(cfg, out).run().status == "already complete"


# ------------------------------------------------------------------ the lock
HOLD = """
import sys, time
from albench.lock import run_lock
with run_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_second_process_is_told_who_holds_the_run_and_a_killed_holder_does_not_block(tmp_path):
    run_dir = tmp_path / "out" / "some-run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)], stdout=subprocess.PIPE,
                            text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(RunFolderError, match=f"another process \\(pid {proc.pid} "):
            with run_lock(run_dir):
                pass
    finally:
        proc.kill()  # SIGKILL: no clean-up runs in the holder
        proc.wait()
    assert lock_path(run_dir).exists()  # left behind by the killed holder
    with run_lock(run_dir):  # ... and it does not block
        pass
    assert not lock_path(run_dir).exists()


def test_wait_takes_the_lock_when_the_holder_finishes(tmp_path):
    run_dir = tmp_path / "some-run"
    released = threading.Event()

    def hold():
        with run_lock(run_dir):
            started.set()
            time.sleep(0.5)
            released.set()

    started = threading.Event()
    thread = threading.Thread(target=hold)
    thread.start()
    started.wait(5)
    with run_lock(run_dir, wait=True, poll_s=0.05):
        assert released.is_set()
    thread.join()


def test_two_identical_runs_on_one_folder_do_the_work_once(tiny_cfg, tmp_path):
    cfg = tiny_cfg(seed=11)
    loop = ActiveLearningLoop(cfg, tmp_path)
    with run_lock(loop.run_dir):  # another process runs it
        with pytest.raises(RunFolderError, match="being run by another process"):
            ActiveLearningLoop(cfg, tmp_path).run()
    assert not loop.run_dir.exists()


# ------------------------------------------------------------------ files
def test_result_files_get_the_permissions_the_umask_allows(tmp_path):
    import albench.results as results

    atomic_write_json(tmp_path / "m.json", {"a": 1})
    mode = (tmp_path / "m.json").stat().st_mode & 0o777
    assert mode == results.FILE_MODE == 0o666 & ~results._umask()
    if not results._umask() & 0o044:  # e.g. the usual 022: others may read the results
        assert mode & 0o044


def test_rows_with_an_unknown_key_are_refused(tmp_path):
    row = {k: 0 for k in ROUND_COLUMNS}
    write_rows(tmp_path / "rounds.csv", [row])
    assert read_rows(tmp_path / "rounds.csv")[0]["round"] == "0"
    with pytest.raises(ValueError):
        write_rows(tmp_path / "rounds.csv", [{**row, "n_labelled": 3}])


# ------------------------------------------------------------------ runs paired only when comparable
def _other_machine(run: Path) -> None:
    """Make ``run`` look re-run on another processor: its round-0 AP50 and hardware differ."""
    import pandas as pd

    frame = pd.read_csv(run / "rounds.csv")
    frame.loc[frame["round"] == 0, "ap50"] = 0.1412
    frame.to_csv(run / "rounds.csv", index=False)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["hardware"] = {**manifest["hardware"], "processor": "Another CPU"}
    (run / "manifest.json").write_text(json.dumps(manifest))


def _committed(tmp: Path, names: list[str]) -> Path:
    import shutil

    folder = tmp / "runs"
    for name in names:
        src = next((ROOT / "results" / "quick").glob(f"{name}-*"))
        shutil.copytree(src, folder / src.name)
    return folder


def test_committed_runs_at_a_seed_share_their_round0_fingerprint():
    from albench.report import load_runs

    for name in ("quick", "reference", "mgral-ablations", "mgral-ablations-quick"):
        runs = load_runs(ROOT / "results" / name).runs
        assert all(r.round0 for r in runs)
        groups = {(r.seed, r.requires) for r in runs}
        assert len({(r.seed, r.requires, r.round0) for r in runs}) == len(groups) < len(runs)


PAIRING_ROWS = [
    ("report", lambda runs, tmp: ["report", str(runs), "--out", str(tmp / "rep")]),
    ("regress", lambda runs, tmp: ["regress", "--reference", str(ROOT / "results" / "quick"),
                                   "--runs", str(runs)]),
]


@pytest.mark.parametrize("args", [r[1] for r in PAIRING_ROWS], ids=[r[0] for r in PAIRING_ROWS])
def test_runs_of_one_seed_from_two_machines_are_refused(args, tmp_path, capsys):
    from albench.cli import main

    runs = _committed(tmp_path, ["shapes-yolo-random-s0", "shapes-yolo-entropy-s0",
                                 "shapes-yolo-random-s1", "shapes-yolo-entropy-s1"])
    entropy = next(runs.glob("shapes-yolo-entropy-s0-*"))
    _other_machine(entropy)
    code = main(args(runs, tmp_path))
    text = " ".join(capsys.readouterr().err.split())
    assert code == 2 and "Traceback" not in text
    assert "did not start from the same round-0 model" in text and "seed 0" in text
    assert entropy.name in text and "Another CPU" in text and "Re-run the baselines" in text
    _other_machine(next(runs.glob("shapes-yolo-random-s0-*")))  # both now from that machine
    assert main(args(runs, tmp_path)) in (0, 1)


def test_the_round0_cache_is_keyed_by_the_machine_and_the_run_id_is_not(tiny_cfg, tmp_path, monkeypatch):
    import albench.loop as loop_module
    from albench.results import hardware, machine_signature

    cfg = tiny_cfg()
    here = machine_signature()
    assert set(here) <= set(hardware()) and here["processor"] and here["torch_build"]
    loop = ActiveLearningLoop(cfg, tmp_path)
    loop._setup()  # loads the data and builds the detector; trains nothing
    labeled = dict.fromkeys(range(4))
    key_here = loop._round0_path(labeled)
    monkeypatch.setattr(loop_module, "machine_signature", lambda: {**here, "processor": "Another CPU"})
    assert loop._round0_path(labeled) != key_here
    assert tiny_cfg().run_id() == cfg.run_id() and tiny_cfg().config_hash() == cfg.config_hash()
