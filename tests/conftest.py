"""Test set-up: a private cache folder for the session (set before albench is imported)."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("ALBENCH_CACHE", tempfile.mkdtemp(prefix="albench-test-cache-"))

import pytest  # noqa: E402

# The smallest real setting: tiny shapes pool, tiny YOLO, a couple of epochs.
TINY = dict(
    dataset="shapes", backend="yolo", initial=16, budget=8, rounds=2,
    dataset_options={"pool_size": 80, "test_size": 40, "image_size": 64},
    backend_options={"imgsz": 64, "epochs": 2, "warm_epochs": 1, "batch": 8},
)


@pytest.fixture
def tiny_cfg():
    from albench.config import resolve

    def make(**overrides):
        params = {**TINY, **overrides}
        params["dataset_options"] = {**TINY["dataset_options"], **overrides.get("dataset_options", {})}
        params["backend_options"] = {**TINY["backend_options"], **overrides.get("backend_options", {})}
        return resolve("smoke", **params)

    return make


TINY_CLI = ["--preset", "smoke", "--initial", "16", "--budget", "8", "--rounds", "2",
            "--dataset-opt", "pool_size=80", "--dataset-opt", "test_size=40",
            "--dataset-opt", "image_size=64", "--backend-opt", "imgsz=64",
            "--backend-opt", "epochs=2", "--backend-opt", "warm_epochs=1",
            "--backend-opt", "batch=8"]


@pytest.fixture
def temp_strategy():
    """Register strategy classes for one test (removed afterwards)."""
    from albench.strategy import STRATEGIES

    added = []

    def register(cls):
        STRATEGIES[cls.name] = cls
        added.append(cls.name)
        return cls

    yield register
    for name in added:
        STRATEGIES.pop(name, None)


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
