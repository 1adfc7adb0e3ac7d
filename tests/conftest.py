"""Test set-up: a private cache folder for the session (set before albench is imported),
and the fixtures. Helpers that test modules share are in :mod:`tests.helpers`."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("ALBENCH_CACHE", tempfile.mkdtemp(prefix="albench-test-cache-"))

import pytest  # noqa: E402

from tests.helpers.settings import TINY  # noqa: E402


@pytest.fixture
def tiny_cfg():
    from albench.config import resolve

    def make(**overrides):
        params = {**TINY, **overrides}
        params["dataset_options"] = {**TINY["dataset_options"], **overrides.get("dataset_options", {})}
        params["backend_options"] = {**TINY["backend_options"], **overrides.get("backend_options", {})}
        return resolve("smoke", **params)

    return make


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
