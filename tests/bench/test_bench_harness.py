"""The harness's own overhead in real AL runs (yolo on shapes, random strategy): the
tests' tiny setting (16 + 2 x 8 labels, 2/1 epochs at 64 px) and the ``smoke`` preset.

From ``rounds.csv``: the share of the summed round wall time (``t_round_s``) that is
neither training (``t_train_s``), inference (``t_infer_s``), COCO evaluation
(``t_eval_s``) nor the strategy's own work (``t_select_s``, ``t_strategy_train_s``);
COCO evaluation's share is reported separately, and so is the share of the whole
``run()`` (set-up, data, saving each round) outside training, inference, evaluation
and selection. The round-0 model cache is cleared first so round 0 really trains.
"""

from __future__ import annotations

import shutil
import time

import pytest

from albench import _offline
from albench.config import resolve
from albench.loop import ActiveLearningLoop
from albench.results import read_rows

PARTS = ("t_train_s", "t_infer_s", "t_eval_s", "t_select_s", "t_strategy_train_s")


@pytest.mark.parametrize("setting", ["tiny", "smoke"])
def test_bench_harness_overhead(benchmark, tiny_cfg, tmp_path, setting: str):
    cfg = (tiny_cfg(strategy="random", seed=0) if setting == "tiny" else
           resolve("smoke", dataset="shapes", backend="yolo", strategy="random", seed=0))
    runs = iter(range(100))

    def run() -> tuple[list[dict], float]:
        shutil.rmtree(_offline.cache_root() / "models", ignore_errors=True)
        t0 = time.perf_counter()
        result = ActiveLearningLoop(cfg, tmp_path / str(next(runs)), force=True).run()
        return read_rows(result.run_dir / "rounds.csv"), time.perf_counter() - t0

    rows, wall = benchmark.pedantic(run, rounds=1, warmup_rounds=int(setting == "tiny"),
                                    iterations=1)
    total = {k: sum(float(r[k]) for r in rows) for k in (*PARTS, "t_round_s")}
    rounds = total["t_round_s"]
    overhead = rounds - sum(total[k] for k in PARTS)
    info = {
        "setting": setting, "rounds": len(rows), "t_round_s": round(rounds, 3),
        "run_wall_s": round(wall, 3),
        **{k: round(v, 3) for k, v in total.items() if k != "t_round_s"},
        "overhead_share": round(overhead / rounds, 4),
        "eval_share": round(total["t_eval_s"] / rounds, 4),
        "overhead_incl_eval_share": round((overhead + total["t_eval_s"]) / rounds, 4),
        "run_outside_parts_share": round((wall - sum(total[k] for k in PARTS)) / wall, 4),
    }
    benchmark.extra_info.update(info)
    print(f"\nharness ({setting}):", info)
    assert len(rows) == 3
    if setting == "smoke":  # the target; the tiny setting's 1-second rounds are all fixed cost
        assert overhead / rounds < 0.03, info
