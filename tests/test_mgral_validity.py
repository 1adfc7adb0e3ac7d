"""MGRAL's validity fixes: the exact-B sampler, the CRN recipe as the lab runs it, the
shrunk table, the diagnostics of the defaults, empty scored sets, and the legacy options
that keep the committed runs addressable."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from albench.config import resolve
from albench.strategy import build_strategy
from strategies.mgral import LEGACY, VALIDITY
from strategies.mgral.agent import SamplingAgent
from strategies.mgral.evalset import EvalPlan, Fold
from strategies.mgral.lut import GainTable
from strategies.mgral.sampler import (gumbel_top, plackett_logp, select_plackett,
                                      train_plackett)
from strategies.mgral.shrink import batch_values, concave, exact_optimum, icc, shrunk_table
from strategies.mgral.variants import variant_jobs
from tests.helpers.fakes import FAST, annotations, context, label_state

ROOT = Path(__file__).resolve().parent.parent
SMALL = {**FAST["mgral"], **VALIDITY, "folds": 2, "replicates": 2}


# ------------------------------------------------------------------ the sampler
def test_plackett_luce_log_probabilities_sum_to_one():
    scores = torch.tensor([0.3, -1.0, 2.0, 0.5], dtype=torch.float64)
    seqs = torch.tensor(list(itertools.permutations(range(4), 2)))
    assert float(torch.exp(plackett_logp(scores, seqs)).sum()) == pytest.approx(1.0, abs=1e-12)


def test_gumbel_top_draws_exactly_b_distinct_and_follows_the_scores():
    gen = torch.Generator().manual_seed(0)
    picks = gumbel_top(torch.tensor([5.0, 0.0, 0.0, 0.0, 0.0, -5.0]), 3, 400, gen)
    assert picks.shape == (400, 3)
    assert all(len(set(row.tolist())) == 3 for row in picks)
    first = np.bincount(picks[:, 0].numpy(), minlength=6) / 400
    assert first[0] > 0.9 and first[5] == 0  # softmax: e^5 / (e^5 + 4 + e^-5) = 0.97


def test_plackett_agent_selects_b_distinct_ids_and_the_same_seed_gives_the_same_ids():
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((30, 6)).astype(np.float32)
    group_of = np.arange(30) % 3
    table = GainTable([np.array([2, 4])] * 3, [np.array([0.1, 0.15]), np.array([0.0, 0.0]),
                                                np.array([0.02, 0.03])], group_of)

    def run(seed):
        gen = torch.Generator().manual_seed(seed)
        agent = SamplingAgent(6, hidden=8, generator=gen)
        order = np.random.default_rng(seed).permutation(30)
        out = train_plackett(agent, feats, table, 5, iterations=60, lr=0.05, generator=gen,
                             order=order)
        return select_plackett(agent, feats, order, 5)[0], out

    a, out = run(1)
    b, _ = run(1)
    assert len(a) == 5 and len(set(a.tolist())) == 5 and np.array_equal(a, b)
    assert out["iterations"] == 60
    assert table.estimate(a) > batch_values(table, 5, a, np.random.default_rng(0))["random_gain"]


def test_the_strategy_picks_exactly_b_distinct_pool_ids_reproducibly():
    def pick(seed):
        s = build_strategy("mgral", SMALL)
        return s.select(context(label_state(20), seed=seed, strategy=s), 6)

    a, b = pick(4), pick(4)
    assert np.array_equal(a.ids, b.ids) and len(set(a.ids.tolist())) == 6
    assert set(a.ids.tolist()) <= set(label_state(20).unlabeled.tolist())


# ------------------------------------------------------------------ the CRN recipe
@pytest.mark.parametrize("estimator", ["consistency", "pseudo", "labels"])
def test_crn_variants_replay_the_baselines_batches_and_step_count(estimator):
    """What a variant trains on, as the lab hands it to the backend: the baseline's
    labeled set, seed and epochs (so the same batch order and step count), the candidates
    as a stream sized to n, the continuation learning rate."""
    state = label_state(20)
    s = build_strategy("mgral", {**SMALL, "estimator": "oracle"})  # a lab that may reveal
    ctx = context(state, strategy=s)
    cand = state.unlabeled[:12]
    members = [np.arange(0, 12, 2), np.arange(1, 12, 2)]
    plan = EvalPlan("holdout", [Fold(state.labeled[4:], state.labeled[:4], ctx.lab.current())])
    kw = dict(mode=estimator, seeds=[7, 8], epochs=3, lr_scale=0.1, stream_cap=4, weight=1.0,
              pseudo_threshold=0.5)
    jobs = variant_jobs(plan, cand, members, [[1, 3, 6], [2]], recipe="crn", **kw)
    payloads = [(r, g, n, ctx.lab._payload(j)) for r, _, g, n, j in jobs]
    for r in (0, 1):
        base = next(p for rr, g, _, p in payloads if rr == r and g == -1)
        for rr, g, n, p in payloads:
            if rr != r or g == -1:
                continue
            assert sorted(p.targets) == sorted(base.targets)  # the same labeled batches
            assert (p.seed, p.epochs, p.options["lr_scale"]) == (base.seed, 3, 0.1)
            assert p.unsup.stream and p.unsup.batch == min(n, 4)
            streamed = p.options.get("stream", {}) if estimator == "labels" else p.unlabeled
            assert sorted(streamed) == sorted(cand[members[g][:n]].tolist())
    legacy = variant_jobs(plan, cand, members, [[6]], recipe="legacy", **kw)
    p = ctx.lab._payload(legacy[1][-1])
    assert "lr_scale" not in p.options and (p.unsup is None or not p.unsup.stream)
    if estimator == "labels":  # the old recipe: true-labelled candidates join the epoch
        assert len(p.targets) == len(plan.folds[0].train) + 6


# ------------------------------------------------------------------ the table
def test_concave_pools_increasing_slopes():
    v = concave(np.array([1, 2, 4]), np.array([0.1, 0.0, 0.3]))
    slopes = np.diff(np.concatenate([[0.0], v])) / np.diff([0, 1, 2, 4])
    assert np.all(np.diff(slopes) <= 1e-12)
    assert v[-1] == pytest.approx(0.3)  # the end point is kept
    assert np.allclose(concave(np.array([1, 2]), np.array([0.2, 0.3])), [0.2, 0.3])


def test_icc_separates_signal_from_noise():
    rng = np.random.default_rng(0)
    truth = rng.normal(0, 1, 20)
    assert icc(truth + rng.normal(0, 0.1, (3, 20)))["reliability"] > 0.9
    assert icc(rng.normal(0, 1, (3, 20)))["reliability"] < 0.5
    assert icc(np.zeros((1, 5)))["reliability"] is None
    assert icc(np.zeros((3, 5)))["reliability_lower"] == 0.0  # no spread: nothing to trust
    assert icc(np.tile(truth, (3, 1)))["reliability_lower"] == 1.0  # spread without noise


def _tables(effect: float, noise: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    sizes = [np.array([2, 4, 8])] * 4
    curve = np.array([0.02, 0.035, 0.05])
    reps = [curve + (effect if g == 0 else 0.0) * np.array([1, 2, 3])
            + rng.normal(0, noise, (3, 3)) for g in range(4)]
    return shrunk_table(sizes, reps, np.arange(40) % 4)


def test_pure_noise_shrinks_to_an_even_spread():
    shrunk = [_tables(effect=0.0, noise=0.02, seed=s) for s in range(20)]
    assert np.mean([info["shrinkage"] == 0 for _, info in shrunk]) >= 0.8  # 95% in theory
    for table, info in shrunk:
        if info["shrinkage"] == 0:
            counts = exact_optimum(table, 8)
            assert counts.sum() == 8 and np.ptp(counts) <= 1


def test_a_planted_strong_group_effect_survives_and_concentrates():
    table, info = _tables(effect=0.05, noise=0.002)
    assert info["shrinkage"] > 0.9 and info["icc"] > 0.9
    counts = exact_optimum(table, 8)
    assert counts[0] == counts.max() and counts[0] >= 4


def test_the_exact_optimum_beats_every_other_split():
    table, _ = _tables(effect=0.02, noise=0.005, seed=3)
    best = table.lookup(exact_optimum(table, 6))
    for split in itertools.product(range(7), repeat=4):
        if sum(split) == 6:
            assert table.lookup(np.array(split)) <= best + 1e-12


# ------------------------------------------------------------------ the strategy
def test_the_validity_variant_records_its_diagnostics():
    s = build_strategy("mgral", SMALL)
    state = label_state(20)
    d = s.select(context(state, strategy=s), 6).diagnostics
    assert d["eval_set"] == "crossfit" and d["recipe"] == "crn"
    assert d["eval_size"] == 20  # crossfit pools predictions over all of L
    for key in ("model_ap50_eval", "icc", "reliability", "shrinkage", "estimated_gain",
                "optimum_gain", "random_gain", "agent_gap", "baseline_sd", "variants"):
        assert key in d
    assert d["optimum_gain"] >= d["estimated_gain"] - 1e-12
    assert 0 <= d["shrinkage"] <= 1 and d["replicates"] == 2
    assert d["variants"] == 2 * 2 * (1 + sum(len(x) for x in d["ladder"]))  # R x K x entries
    assert all(min(n, 6) in x for x, n in zip(d["ladder"], d["group_sizes"]))  # the top rung
    json.dumps(d)


def test_a_scored_set_without_boxes_gives_an_empty_table_not_an_error():
    truth = annotations(0)
    state = label_state(20)
    empty = np.array([i for i in state.labeled if len(truth[int(i)].boxes) == 0][:2])
    assert len(empty) == 2
    s = build_strategy("mgral", {**SMALL, "eval_set": "holdout"})
    s.reward_ids = empty
    sel = s.select(context(state, strategy=s), 6)
    assert len(sel.ids) == 6 and sel.diagnostics["model_ap50_eval"] is None
    assert all(v == 0 for g in sel.diagnostics["lut"] for v in g)


def test_legacy_options_keep_the_committed_run_ids_and_the_defaults_are_the_validity_variant():
    committed = {p.parent.name for p in (ROOT / "results" / "quick").glob("*mgral*/manifest.json")}
    assert committed
    ids = {resolve("quick", strategy="mgral", seed=s, strategy_options=LEGACY).run_id()
           for s in range(3)}
    assert ids == committed
    default = resolve("quick", strategy="mgral", seed=0)
    assert default.run_id() == resolve("quick", strategy="mgral", seed=0,
                                       strategy_options=VALIDITY).run_id()
    assert default.run_id() not in committed
    assert default.strategy_options["eval_set"] == "crossfit"
    assert "eval_set" in default.hashed_dict()["strategy_options"]
    legacy = resolve("quick", strategy="mgral", strategy_options=LEGACY)
    assert "eval_set" not in legacy.hashed_dict()["strategy_options"]


# ------------------------------------------------------------------ the streams, for real
@pytest.mark.slow
@pytest.mark.parametrize("name", ["yolo", "frcnn"])
def test_streams_and_continuation_rate_train_real_backends(name):
    """The lab's CRN features on the real backends: each streamed variant trains (its
    weights move away from the baseline's, which replays the same labeled batches and
    step count) and stays finite, and lr_scale changes the result."""
    from albench.backends import build_backend
    from albench.data import load_dataset
    from albench.lab import FinetuneJob, Lab
    from albench.pool import LabelState, Oracle

    opts = {"yolo": {"imgsz": 64, "epochs": 1, "batch": 8},
            "frcnn": {"imgsz": 64, "epochs": 1, "batch": 4, "box_batch_size_per_image": 16,
                      "rpn_post_nms_top_n_train": 50}}[name]
    ds = load_dataset("shapes", pool_size=48, test_size=8, image_size=64)
    backend = build_backend(name, ds.images, ds.num_classes, opts, "cpu")
    state = LabelState(ds.pool_ids)
    state.mark(ds.pool_ids[:16], 0)
    oracle = Oracle(ds.annotations, state)
    backend.fit(oracle.label(state.labeled), 0)
    lab = Lab(backend, oracle.label, ds.classes, threads=1,
              true_labels=oracle.reveal_for_upper_bound)
    cand = state.unlabeled[:4]
    common = dict(epochs=1, seed=3, lr_scale=0.1)
    jobs = [FinetuneJob(state.labeled, (), unsup="none", **common)]
    jobs += [FinetuneJob(state.labeled, cand, unsup=m, stream_batch=2, **common)
             for m in ("consistency", "pseudo", "labels")]
    jobs.append(FinetuneJob(state.labeled, (), unsup="none", epochs=1, seed=3))  # full rate
    models = lab.finetune_many(jobs)
    base = models[0].state

    def moved(a, b):
        return any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())

    for m in models[1:]:
        assert moved(m.state, base)
        assert all(torch.isfinite(v).all() for v in m.state.values() if v.is_floating_point())


@pytest.mark.slow
def test_mgral_validity_variant_runs_a_round_on_yolo(tiny_cfg, tmp_path):
    from albench.loop import ActiveLearningLoop
    from albench.results import read_jsonl, read_rows

    cfg = tiny_cfg(strategy="mgral", seed=2, rounds=1, dataset_options={"test_size": 16},
                   strategy_options={**VALIDITY, "iterations": "20", "groups": "2", "folds": "2"})
    result = ActiveLearningLoop(cfg, tmp_path, lab_workers=1).run()
    (d,) = read_jsonl(result.run_dir / "diagnostics.jsonl")
    rows = read_rows(result.run_dir / "rounds.csv")
    assert [int(r["n_labeled"]) for r in rows] == [16, 24]
    assert d["eval_set"] == "crossfit" and d["eval_size"] == 16 and d["replicates"] == 2
    assert d["variants"] == 2 * 2 * (1 + sum(len(x) for x in d["ladder"]))
    assert d["model_ap50_eval"] is None or 0 <= d["model_ap50_eval"] <= 1


# ------------------------------------------------------------------ an indifferent table
def _fixed_table(monkeypatch, table, m):
    """The strategy's table replaced by ``table`` over ``m`` candidates (ids 100..), whose
    encodings cluster by group as k-means groups do."""
    from types import SimpleNamespace

    from strategies.mgral import MGRAL

    rng = np.random.default_rng(0)
    ns = SimpleNamespace(cand=np.arange(100, 100 + m), table=table, gains=None, info={},
                         plan=None, sizes=None, members=None, group_of=table.group_of, seed=0,
                         t_lut=0.0, feats=(rng.standard_normal((4, 6))[table.group_of]
                                           + 0.05 * rng.standard_normal((m, 6))).astype(np.float32))
    monkeypatch.setattr(MGRAL, "build_table", lambda self, ctx, budget: ns)
    monkeypatch.setattr(MGRAL, "_diagnostics", lambda self, *a: {})


def test_a_table_that_values_every_batch_alike_gives_a_random_batch_with_indifferent_random(
        monkeypatch):
    """Four groups on one straight curve: every 10-image batch has the same estimated gain.
    The agent's top-B is then arbitrary, and with encodings that cluster by group it takes
    most of a batch from one group; indifferent=random draws the batch at random: each
    candidate about equally often over seeds, no group favoured."""
    m, budget = 40, 10
    group_of = np.repeat(np.arange(4), 10)
    table = GainTable([np.array([5, 10])] * 4, [np.array([0.01, 0.02])] * 4, group_of)
    assert batch_values(table, budget, np.arange(10), np.random.default_rng(0))["agent_gap"] is None
    _fixed_table(monkeypatch, table, m)

    def over_seeds(option):
        counts, largest = np.zeros(m), []
        for seed in range(60):
            s = build_strategy("mgral", {**SMALL, "indifferent": option, "iterations": 5})
            sel = s.select(context(label_state(20), seed=seed, strategy=s), budget)
            assert len(set(sel.ids.tolist())) == budget
            assert set(sel.ids.tolist()) <= set(range(100, 140))
            assert sel.diagnostics.get("indifferent", True) is True
            counts[sel.ids - 100] += 1
            largest.append(np.bincount(group_of[sel.ids - 100], minlength=4).max())
        return counts, float(np.mean(largest))

    counts, largest = over_seeds("random")
    assert counts.sum() == 600 and counts.min() >= 3 and counts.max() <= 30  # 15 expected
    assert largest < 5.5  # about 4 of 10 from the largest group at random
    _, agent_largest = over_seeds("agent")
    assert agent_largest > largest + 1.5  # the failure the option exists for (7 of 10 here)


def test_indifferent_random_leaves_an_informative_table_to_the_agent(monkeypatch):
    group_of = np.repeat(np.arange(4), 10)
    table = GainTable([np.array([5, 10])] * 4, [np.array([0.05, 0.06])] + [np.array([0.0, 0.0])] * 3,
                      group_of)
    _fixed_table(monkeypatch, table, 40)

    def pick(option):
        s = build_strategy("mgral", {**SMALL, "indifferent": option})
        return s.select(context(label_state(20), seed=3, strategy=s), 10)

    a, b = pick("random"), pick("agent")
    assert a.diagnostics["indifferent"] is False and "indifferent" not in b.diagnostics
    assert np.array_equal(a.ids, b.ids)


# ------------------------------------------------------------------ pick=sample
def test_best_sample_is_the_draw_the_table_values_most_and_the_same_noise_gives_the_same_batch():
    from strategies.mgral.sampler import _top_of, plackett_scores, select_best_sample

    rng = np.random.default_rng(1)
    feats = rng.standard_normal((24, 6)).astype(np.float32)
    group_of = np.arange(24) % 3
    table = GainTable([np.array([2, 4])] * 3, [np.array([0.1, 0.15]), np.array([0.0, 0.01]),
                                                np.array([0.02, 0.03])], group_of)
    agent = SamplingAgent(6, hidden=8, generator=torch.Generator().manual_seed(0))
    order = rng.permutation(24)
    noise = torch.rand(16, 24, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    ids, scores = select_best_sample(agent, feats, order, 5, table, noise)
    assert len(set(ids.tolist())) == 5 and ids.min() >= 0 and ids.max() < 24 and len(scores) == 5
    with torch.no_grad():
        s = plackett_scores(agent, torch.from_numpy(feats[order]))
    draws = order[_top_of(s, noise, 5).numpy()]
    values = [table.estimate(row) for row in draws]
    assert table.estimate(ids) == pytest.approx(max(values))
    assert len({tuple(sorted(r)) for r in draws.tolist()}) > 1  # the draws differ: a real choice
    again, _ = select_best_sample(agent, feats, order, 5, table, noise)
    assert np.array_equal(ids, again)


def test_pick_sample_gives_a_spread_batch_where_the_table_is_blank_and_the_mode_does_not(monkeypatch):
    """The failure pick=sample exists for: on a table that values every batch alike, the
    agent's mode (top-B) takes most of a batch from one group when encodings cluster by
    group; a draw from the policy spreads like a random batch."""
    m, budget = 40, 10
    group_of = np.repeat(np.arange(4), 10)
    table = GainTable([np.array([5, 10])] * 4, [np.array([0.01, 0.02])] * 4, group_of)
    _fixed_table(monkeypatch, table, m)

    def largest(pick):
        out = []
        for seed in range(40):
            s = build_strategy("mgral", {**SMALL, "pick": pick, "iterations": 5})
            sel = s.select(context(label_state(20), seed=seed, strategy=s), budget)
            assert len(set(sel.ids.tolist())) == budget
            assert set(sel.ids.tolist()) <= set(range(100, 140))
            out.append(np.bincount(group_of[sel.ids - 100], minlength=4).max())
        return float(np.mean(out))

    sample, mode = largest("sample"), largest("mode")
    assert sample < 5.5 and mode > sample + 1.5


def test_pick_sample_with_the_bernoulli_sampler_is_a_config_error():
    from albench.errors import ConfigError

    with pytest.raises(ConfigError, match="sampler=plackett"):
        build_strategy("mgral", {**SMALL, "pick": "sample", "sampler": "bernoulli"})
