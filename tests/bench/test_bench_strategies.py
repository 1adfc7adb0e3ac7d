"""Speed and memory of the strategies' hot paths.

* k-center greedy on 100,000 x 256 float32 features, 1,000 labeled, budget 1,000:
  :func:`strategies.coreset.k_center_greedy` (torch, one min-distance vector, chunked
  initial distances) against :func:`naive_k_center_greedy` (numpy, the textbook version)
  in the same session. Peak memory is the rise of the process's resident set during the
  call: ``VmHWM`` is reset through ``/proc/self/clear_refs`` after ``malloc_trim`` and
  compared with ``VmRSS`` just before (the same method for both; torch's CPU allocations
  are invisible to tracemalloc). The numpy run also reports tracemalloc's peak.
* entropy: one selection over 100,000 images' cached detections (0-100 boxes each).

Run with ``pytest tests/bench --benchmark-only``; the figures land in ``extra_info``.
"""

from __future__ import annotations

import ctypes
import gc
import tracemalloc
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import torch

from albench.backends.base import Detections
from albench.strategy import Meter, ModelView, SelectionContext
from strategies.coreset import k_center_greedy
from strategies.entropy import EntropyStrategy

N, DIM, N_LABELED, BUDGET = 100_000, 256, 1_000, 1_000
_RESULTS: dict[str, dict] = {}


def naive_k_center_greedy(features: np.ndarray, labeled_mask: np.ndarray,
                          budget: int) -> np.ndarray:
    """The textbook greedy k-center in numpy: the pool x labeled distance matrix in one
    piece, then one full distance pass ``|X - X[c]|`` per pick. Same rule as
    ``k_center_greedy`` (farthest from its nearest center, ties to the lowest position,
    the lowest-position point first when nothing is labeled)."""
    x = np.asarray(features)
    mask = np.asarray(labeled_mask, bool)
    lab = np.flatnonzero(mask)
    sq = (x * x).sum(1)
    if len(lab):
        d2 = sq[:, None] + sq[lab][None, :] - 2.0 * (x @ x[lab].T)
        mind = np.sqrt(np.maximum(d2, 0)).min(1)
    else:
        mind = np.full(len(x), np.inf)
    mind[mask] = -np.inf
    picks = []
    for k in range(min(budget, int((~mask).sum()))):
        c = int(np.argmax(mind)) if len(lab) or k else int(np.flatnonzero(~mask)[0])
        picks.append(c)
        mind = np.minimum(mind, np.linalg.norm(x - x[c], axis=1))
        mind[c] = -np.inf
    return np.array(picks, np.int64)


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


class PeakRSS:
    """Rise of the resident set size over a block (MiB), from the reset high-water mark."""

    def __enter__(self) -> "PeakRSS":
        gc.collect()
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except OSError:
            pass
        Path("/proc/self/clear_refs").write_text("5")
        self.before = _status_kb("VmRSS")
        return self

    def __exit__(self, *exc: object) -> None:
        self.mib = (_status_kb("VmHWM") - self.before) / 1024


@lru_cache(maxsize=1)
def kcenter_case() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = np.empty((N, DIM), np.float32)
    for s in range(0, N, 10_000):
        x[s:s + 10_000] = rng.standard_normal((min(10_000, N - s), DIM), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    mask = np.zeros(N, bool)
    mask[rng.choice(N, N_LABELED, replace=False)] = True
    return x, mask


@pytest.mark.parametrize("impl", ["torch", "numpy"])
def test_bench_k_center_greedy(benchmark, impl: str) -> None:
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("peak-memory measurement needs Linux /proc")
    x, mask = kcenter_case()
    peak: dict[str, float] = {}

    def run() -> np.ndarray:
        with PeakRSS() as rss:
            if impl == "torch":
                picks = k_center_greedy(x, mask, BUDGET)
            else:
                tracemalloc.start()
                picks = naive_k_center_greedy(x, mask, BUDGET)
                peak["tracemalloc_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
                tracemalloc.stop()
        peak["rss_mib"] = rss.mib
        return picks

    picks = benchmark.pedantic(run, rounds=1, warmup_rounds=0, iterations=1)
    assert len(picks) == BUDGET and len(np.unique(picks)) == BUDGET and not mask[picks].any()
    seconds = benchmark.stats.stats.min
    _RESULTS[impl] = {"seconds": seconds, "picks": picks, **peak}
    info = benchmark.extra_info
    info.update(n=N, dim=DIM, labeled=N_LABELED, budget=BUDGET,
                features_mib=round(x.nbytes / 2**20, 1), seconds=round(seconds, 3),
                peak_rss_rise_mib=round(peak["rss_mib"], 1),
                peak_over_features=round(peak["rss_mib"] * 2**20 / x.nbytes, 2),
                memory_method="VmHWM - VmRSS (clear_refs reset, malloc_trim) around the call",
                torch_threads=torch.get_num_threads())
    if "tracemalloc_mib" in peak:
        info["tracemalloc_peak_mib"] = round(peak["tracemalloc_mib"], 1)
    if {"torch", "numpy"} <= set(_RESULTS):
        fast, slow = _RESULTS["torch"], _RESULTS["numpy"]
        info.update(speedup_torch_over_numpy=round(slow["seconds"] / fast["seconds"], 2),
                    memory_numpy_over_torch=round(slow["rss_mib"] / max(fast["rss_mib"], 1e-3), 2),
                    same_picks_share=float(np.mean(fast["picks"] == slow["picks"])))
        print(f"\nk-center: torch {fast['seconds']:.2f}s / {fast['rss_mib']:.0f} MiB, numpy "
              f"{slow['seconds']:.2f}s / {slow['rss_mib']:.0f} MiB (tracemalloc "
              f"{slow.get('tracemalloc_mib', float('nan')):.0f} MiB), features "
              f"{x.nbytes / 2**20:.0f} MiB, speed-up {slow['seconds'] / fast['seconds']:.1f}x")


class _CachedDetections:
    """A backend stand-in whose predictions are precomputed."""

    capabilities = frozenset()
    num_classes = 20

    def __init__(self, dets: dict[int, Detections]) -> None:
        self.dets = dets

    def predict(self, ids: list[int]) -> list[Detections]:
        return [self.dets[i] for i in ids]


@lru_cache(maxsize=1)
def entropy_case(n: int = 100_000, classes: int = 20) -> dict[int, Detections]:
    """0-100 detections per image (uniform), softmax class rows, uniform scores."""
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 101, n)
    total = int(counts.sum())
    logits = rng.standard_normal((total, classes), dtype=np.float32) * 3
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    scores = rng.random(total, dtype=np.float32)
    boxes = np.zeros((total, 4), np.float32)
    labels = probs.argmax(1)
    edges = np.concatenate([[0], np.cumsum(counts)])
    return {i + 1: Detections(boxes[a:b], scores[a:b], labels[a:b], probs[a:b])
            for i, (a, b) in enumerate(zip(edges[:-1], edges[1:]))}


@pytest.mark.parametrize("aggregate", ["max", "mean", "sum"])
def test_bench_entropy_select(benchmark, aggregate: str) -> None:
    dets = entropy_case()
    ids = np.arange(1, len(dets) + 1)
    meter = Meter()
    ctx = SelectionContext(unlabeled=ids, labeled=ids[:0], round=0,
                           rng=np.random.default_rng(0),
                           model=ModelView(_CachedDetections(dets), meter), meter=meter)
    strategy = EntropyStrategy(aggregate=aggregate)
    strategy.select(ctx, 1000)  # fills the view's cache: the timed calls score cached detections
    sel = benchmark.pedantic(strategy.select, args=(ctx, 1000), rounds=5, iterations=1)
    assert len(sel.ids) == 1000
    benchmark.extra_info.update(images=len(dets), boxes=int(sum(len(d) for d in dets.values())),
                                classes=20, seconds_min=round(benchmark.stats.stats.min, 3))
