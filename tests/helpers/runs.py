"""Run folders in tests: a real run crashed and resumed, the round columns two runs must
agree on, and synthetic reference folders for the regression rule (no training)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

# The columns of rounds.csv that equal runs agree on bit for bit (not the timings).
RESULT_COLUMNS = ["round", "n_labeled", "n_boxes_labeled", "ap", "ap50", "selection_sha256"]


def comparable(rows):
    return [{k: r[k] for k in RESULT_COLUMNS} for r in rows]


def crash_then_resume(cfg, out, strategy_cls, round_: int, monkeypatch):
    """Run ``cfg`` into ``out`` with ``strategy_cls.select`` raising in round ``round_``
    (after the earlier rounds were saved), then run it again as a user would: the second
    run resumes. Returns the resumed run's result."""
    from albench.loop import ActiveLearningLoop

    original = strategy_cls.select

    def crash(self, ctx, budget):
        if ctx.round == round_:
            raise RuntimeError("simulated crash")
        return original(self, ctx, budget)

    monkeypatch.setattr(strategy_cls, "select", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        ActiveLearningLoop(cfg, out).run()
    monkeypatch.setattr(strategy_cls, "select", original)
    return ActiveLearningLoop(cfg, out).run()


# ------------------------------------------------------------------ synthetic reference folders
ROUNDS = 4
STRATEGIES = {"random": 0.0, "entropy": 0.05, "oracle": 0.1}  # each one's lift over random
SEED_NOISE = {0: -0.02, 1: 0.0, 2: 0.02}


def write_run(root: Path, strategy: str, seed: int, noise: float | None = None,
              setting_hash: str = "h1") -> None:
    """A complete run folder ``root/<strategy>-s<seed>``: a manifest and ``ROUNDS`` rows of a
    straight AL curve lifted by ``STRATEGIES[strategy]`` plus the seed's noise (or ``noise``)."""
    run_id = f"{strategy}-s{seed}"
    folder = root / run_id
    folder.mkdir(parents=True)
    config = {"dataset": "toy", "backend": "fake", "strategy": strategy, "preset": "quick",
              "seed": seed, "initial": 100, "budget": 100, "rounds": ROUNDS - 1}
    (folder / "manifest.json").write_text(json.dumps({
        "run_id": run_id, "status": "complete", "config": config, "setting_hash": setting_hash,
        "upper_bound": strategy == "oracle",
    }))
    n_labeled = 100 * (1 + np.arange(ROUNDS))
    ap50 = 0.3 + 0.1 * np.arange(ROUNDS) + STRATEGIES.get(strategy, 0.0)
    ap50 = ap50 + (SEED_NOISE[seed] if noise is None else noise)
    frame = pd.DataFrame({"round": np.arange(ROUNDS), "n_labeled": n_labeled, "ap50": ap50,
                          "ap": ap50 / 2, "strategy": strategy, "seed": seed})
    frame.to_csv(folder / "rounds.csv", index=False)


def make_reference(root: Path, noise: float | None = None) -> Path:
    """Every strategy of ``STRATEGIES`` x every seed of ``SEED_NOISE`` under ``root``."""
    for strategy in STRATEGIES:
        for seed in SEED_NOISE:
            write_run(root, strategy, seed, noise)
    return root
