"""Speed of MGRAL's pure parts: the gain table and the sampling agent.

* LUT lookup: the estimated gain of one batch (B = 50 candidate indices of M = 400, G = 8
  groups, a 3-level ladder per group), through ``GainTable.estimate`` (counting included),
  and ``lookup_batch`` over the 16 count vectors of one policy iteration. Microseconds.
* Agent: seconds per REINFORCE policy iteration (16 sampled trajectories, the
  teacher-forced pass, backward, Adam step) at M = 400 and M = 4,000 candidates, D = 256,
  hidden 128, B = M / 8; with the agent's default of 1 torch thread and with torch's
  setting. Also one deterministic selection pass at each M.

Run with ``pytest tests/bench/test_bench_mgral.py --benchmark-only``; figures land in
``extra_info`` and are printed.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from strategies.mgral.agent import SamplingAgent, select, train_agent
from strategies.mgral.lut import GainTable, ladder

D, HIDDEN, SAMPLES, GROUPS = 256, 128, 16, 8


def _case(m: int) -> tuple[np.ndarray, GainTable, np.ndarray, int]:
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((m, D), dtype=np.float32)
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    group_of = rng.integers(0, GROUPS, m)
    budget = m // 8
    levels = ladder(budget, GROUPS, np.bincount(group_of, minlength=GROUPS).tolist())
    gains = [np.sort(rng.normal(0.0, 0.02, len(v))) for v in levels]
    table = GainTable([np.array(v) for v in levels], gains, group_of)
    return feats, table, rng.permutation(m), budget


def test_bench_lut_estimate(benchmark) -> None:
    _, table, _, budget = _case(400)
    batch = np.random.default_rng(1).choice(table.candidates, budget, replace=False)
    value = benchmark(table.estimate, batch)
    assert value == pytest.approx(table.lookup(table.counts_of(batch)))
    us = benchmark.stats.stats.median * 1e6
    benchmark.extra_info.update(candidates=table.candidates, groups=GROUPS, budget=budget,
                                median_us=round(us, 2))
    print(f"\nLUT estimate of one batch: {us:.1f} us (median)")


def test_bench_lut_lookup_batch(benchmark) -> None:
    _, table, _, _ = _case(400)
    rng = np.random.default_rng(2)
    counts = np.stack([rng.integers(0, n + 1, SAMPLES) for n in table.group_sizes()], axis=1)
    values = benchmark(table.lookup_batch, counts)
    assert values.shape == (SAMPLES,)
    us = benchmark.stats.stats.median * 1e6
    benchmark.extra_info.update(batches=SAMPLES, groups=GROUPS, median_us=round(us, 2),
                                per_batch_us=round(us / SAMPLES, 2))
    print(f"\nLUT lookup_batch of {SAMPLES} batches: {us:.1f} us (median), {us / SAMPLES:.2f} us each")


@pytest.mark.parametrize("threads", [1, None], ids=["1thread", "torchdefault"])
@pytest.mark.parametrize("m", [400, 4000])
def test_bench_agent_iteration(benchmark, m: int, threads: int | None) -> None:
    feats, table, order, budget = _case(m)
    iterations = 10 if m <= 400 else 3
    gen = torch.Generator().manual_seed(0)
    agent = SamplingAgent(D, hidden=HIDDEN, generator=gen)
    train_agent(agent, feats, table, budget, iterations=1, generator=gen, order=order,
                threads=threads)  # warm-up (allocator, kernels)

    def run() -> dict:
        return train_agent(agent, feats, table, budget, iterations=iterations, generator=gen,
                           order=order, samples_per_iter=SAMPLES, threads=threads)

    out = benchmark.pedantic(run, rounds=1, warmup_rounds=0, iterations=1)
    assert len(out["reward_curve"]) == iterations
    per_iter = out["seconds_per_iteration"]
    with_threads = threads if threads is not None else torch.get_num_threads()
    idx, _ = select(agent, feats, order, budget, threads=threads)
    assert len(np.unique(idx)) == budget
    benchmark.extra_info.update(candidates=m, dim=D, hidden=HIDDEN, samples_per_iter=SAMPLES,
                                iterations=iterations, torch_threads=with_threads,
                                seconds_per_iteration=round(per_iter, 4),
                                seconds_300_iterations=round(300 * per_iter, 1))
    print(f"\nagent M={m} threads={with_threads}: {per_iter:.3f} s per policy iteration "
          f"({300 * per_iter:.0f} s for 300)")


@pytest.mark.parametrize("m", [400, 4000])
def test_bench_agent_select(benchmark, m: int) -> None:
    feats, _, order, budget = _case(m)
    agent = SamplingAgent(D, hidden=HIDDEN, generator=torch.Generator().manual_seed(0))
    idx, _ = benchmark.pedantic(select, args=(agent, feats, order, budget), rounds=3,
                                warmup_rounds=1, iterations=1)
    assert len(np.unique(idx)) == budget
    seconds = benchmark.stats.stats.median
    benchmark.extra_info.update(candidates=m, seconds=round(seconds, 4))
    print(f"\nagent selection pass M={m}: {seconds:.3f} s")
