"""What the lab costs, measured in one run on the real yolo backend at the ``quick``
recipe (128 px, the round's model trained on 100 shapes images):

* copying the round's model and restoring it, as a share of one variant fine-tune
  (3 epochs on 80 labeled images plus 25 unlabeled ones under the consistency term,
  MGRAL's default variant): target under 1 %;
* the speed-up of four fine-tunes run by two worker processes over the same four run
  one by one (the same weights either way, see tests/test_lab.py);
* MGRAL's table lookup against one variant fine-tune: target at least 10,000 x.

``pytest tests/bench/test_bench_lab.py --benchmark-only``; figures in ``extra_info``.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from albench.backends import build_backend
from albench.data import load_dataset
from albench.lab import FinetuneJob, Lab, LabWorkers
from albench.pool import LabelState, Oracle
from strategies.mgral.lut import GainTable, ladder


@pytest.fixture(scope="module")
def setup():
    ds = load_dataset("shapes", pool_size=1000, test_size=250)
    backend = build_backend("yolo", ds.images, ds.num_classes, {"epochs": 10}, "cpu")
    state = LabelState(ds.pool_ids)
    state.mark(ds.pool_ids[:100], 0)
    oracle = Oracle(ds.annotations, state)
    backend.fit(oracle.label(state.labeled), 0)
    return ds, backend, state, oracle


def _job(state, k: int = 0) -> FinetuneJob:
    return FinetuneJob(state.labeled[20:], state.unlabeled[k * 25:(k + 1) * 25], epochs=3, seed=k)


def _variant_seconds(setup) -> float:
    ds, backend, state, oracle = setup
    t0 = time.perf_counter()
    Lab(backend, oracle.label, ds.classes).finetune(_job(state))
    return time.perf_counter() - t0


def test_bench_copy_restore_vs_variant(benchmark, setup):
    backend = setup[1]
    variant = _variant_seconds(setup)
    twin = backend.clone()

    def copy_restore():
        twin.load_state(backend.state())

    benchmark.pedantic(copy_restore, rounds=5, iterations=1, warmup_rounds=1)
    share = benchmark.stats.stats.mean / variant
    benchmark.extra_info.update(variant_s=round(variant, 3), copy_restore_share=round(share, 5))
    print(f"\ncopy+restore {benchmark.stats.stats.mean * 1e3:.1f} ms = {share:.3%} of a variant "
          f"({variant:.2f} s)")
    assert share < 0.01


def test_bench_parallel_finetunes(benchmark, setup):
    ds, backend, state, oracle = setup
    jobs = [_job(state, k) for k in range(4)]
    workers = LabWorkers(2)
    try:
        parallel = Lab(backend, oracle.label, ds.classes, workers=workers)
        parallel.finetune_many(jobs[:2])  # start the workers outside the timing
        t0 = time.perf_counter()
        Lab(backend, oracle.label, ds.classes).finetune_many(jobs)
        one_by_one = time.perf_counter() - t0
        benchmark.pedantic(lambda: parallel.finetune_many(jobs), rounds=1, iterations=1)
    finally:
        workers.close()
    speedup = one_by_one / benchmark.stats.stats.mean
    benchmark.extra_info.update(one_by_one_s=round(one_by_one, 2), speedup_2_workers=round(speedup, 2))
    print(f"\n4 fine-tunes: one by one {one_by_one:.1f} s, 2 workers {benchmark.stats.stats.mean:.1f} s "
          f"-> {speedup:.2f}x")


def test_bench_lookup_vs_variant(benchmark, setup):
    variant = _variant_seconds(setup)
    rng = np.random.default_rng(0)
    group_of = rng.integers(0, 8, 400)
    levels = ladder(50, 8, np.bincount(group_of, minlength=8).tolist())
    table = GainTable([np.array(v) for v in levels], [rng.normal(0, 0.02, len(v)) for v in levels], group_of)
    picked = rng.choice(400, 50, replace=False)
    benchmark(table.estimate, picked)
    speedup = variant / benchmark.stats.stats.mean
    benchmark.extra_info.update(variant_s=round(variant, 3), lookup_speedup=round(speedup))
    print(f"\nlookup {benchmark.stats.stats.mean * 1e6:.1f} us vs variant {variant:.2f} s -> {speedup:,.0f}x")
    assert speedup >= 10_000
