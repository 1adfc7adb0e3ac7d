"""MGRAL's LSTM sampling agent: REINFORCE against a hand-built gain table, deterministic
selection, reproducibility from one generator, and the state that carries over rounds."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from strategies.mgral.agent import (SamplingAgent, agent_state, load_agent_state, make_optimizer,
                                    select, train_agent)
from strategies.mgral.lut import GainTable, ladder

G, PER, D, B = 3, 16, 8, 8


def _problem(seed: int = 0) -> tuple[np.ndarray, GainTable]:
    """Three well-separated feature clusters; group 0 gains, groups 1 and 2 lose."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(G, D))
    group_of = np.repeat(np.arange(G), PER)
    feats = centers[group_of] + 0.3 * rng.normal(size=(G * PER, D))
    feats = (feats / np.linalg.norm(feats, axis=1, keepdims=True)).astype(np.float32)
    levels = ladder(B, G, [PER] * G)
    gains = [np.array([0.05, 0.08, 0.10]), np.array([-0.03, -0.05, -0.08]),
             np.array([-0.02, -0.04, -0.06])]
    return feats, GainTable([np.array(v) for v in levels], gains, group_of)


def _run(seed: int, iterations: int = 20, lr: float = 1e-2):
    feats, table = _problem()
    gen = torch.Generator().manual_seed(seed)
    agent = SamplingAgent(D, hidden=16, generator=gen)
    order = torch.randperm(len(feats), generator=gen).numpy()
    out = train_agent(agent, feats, table, B, iterations=iterations, lr=lr, generator=gen, order=order)
    idx, probs = select(agent, feats, order, B)
    return agent, out, idx, probs, order


def test_sampling_pass_and_teacher_forced_pass_are_one_policy():
    gen = torch.Generator().manual_seed(1)
    agent = SamplingAgent(D, hidden=16, generator=gen)
    x = torch.randn(30, D, generator=gen)
    u = torch.rand(5, 30, generator=gen, dtype=torch.float64)
    actions, logits = agent.rollout(x, u)
    assert torch.allclose(agent.scores(x, actions), logits, atol=1e-5)
    # a_k ~ Bernoulli(p_k): taken exactly when the uniform draw is below p_k
    assert torch.equal(actions.bool(), u < torch.sigmoid(logits.double()))
    # the deterministic pass feeds back 1[p > 0.5]
    det, det_logits = agent.rollout(x, None)
    assert torch.equal(det.bool(), det_logits > 0)
    assert torch.allclose(agent.scores(x, det), det_logits, atol=1e-5)


def test_previous_decision_changes_the_next_score():
    gen = torch.Generator().manual_seed(2)
    agent = SamplingAgent(D, hidden=16, generator=gen)
    x = torch.randn(4, D, generator=gen)
    s = agent.scores(x, torch.tensor([[0.0, 0, 0, 0], [1.0, 0, 0, 0]]))
    assert s[0, 0] == s[1, 0]          # same history up to step 0
    assert s[0, 1] != s[1, 1]          # step 1 sees a different previous decision


def test_same_seed_same_training_and_selection_other_seed_differs():
    rng_before = torch.get_rng_state()
    _, out_a, idx_a, p_a, _ = _run(5)
    _, out_b, idx_b, p_b, _ = _run(5)
    _, out_c, idx_c, p_c, _ = _run(6)
    assert out_a["reward_curve"] == out_b["reward_curve"]
    assert np.array_equal(idx_a, idx_b) and np.array_equal(p_a, p_b)
    assert out_a["reward_curve"] != out_c["reward_curve"]
    assert not np.array_equal(p_a, p_c)
    assert torch.equal(torch.get_rng_state(), rng_before), "the global RNG must not be used"


def test_training_raises_reward_and_selects_the_good_group():
    feats, table = _problem()
    agent, out, idx, probs, _ = _run(0, iterations=150)
    curve = np.array(out["reward_curve"])
    assert len(curve) == 150 and out["iterations"] == 150
    assert curve[-20:].mean() > curve[:20].mean() + 0.08
    sizes = np.array(out["size_curve"])
    assert sizes[0] > 2 * B and abs(sizes[-20:].mean() - B) < 1.0  # the budget penalty works
    assert np.sum(table.group_of[idx] == 0) >= 6, "most of the budget must go to the gaining group"
    assert table.estimate(idx) > 0.05
    assert out["budget_penalty"] == pytest.approx(table.scale())


def test_prior_rate_sets_the_initial_selection_rate():
    feats, table = _problem()
    for rate in (0.1, 0.5):
        gen = torch.Generator().manual_seed(0)
        agent = SamplingAgent(D, hidden=16, generator=gen, prior_rate=rate)
        out = train_agent(agent, feats, table, B, iterations=1, generator=gen,
                          order=np.arange(len(feats)), samples_per_iter=64)
        assert out["size_curve"][0] == pytest.approx(rate * len(feats), rel=0.3)


def test_budget_penalty_option_is_used():
    feats, table = _problem()
    gen = torch.Generator().manual_seed(0)
    agent = SamplingAgent(D, hidden=16, generator=gen)
    order = np.arange(len(feats))
    out = train_agent(agent, feats, table, B, iterations=1, budget_penalty=0.0, generator=gen,
                      order=order)
    # no penalty: the first mean reward is the mean table gain of the samples (about half of M
    # drawn, so around LUT([8, 8, 8]) = 0.09 - 0.065 - 0.05)
    assert out["budget_penalty"] == 0.0
    assert -0.06 < out["reward_curve"][0] < 0.0


def test_selection_is_budget_distinct_sorted_and_indexes_feats():
    feats, table = _problem()
    agent, _, idx, probs, order = _run(3)
    assert len(idx) == B and len(set(idx.tolist())) == B
    assert np.all(np.diff(probs) <= 0)
    assert np.all((idx >= 0) & (idx < len(feats)))
    # the probabilities are those of the deterministic pass, mapped back through the order
    _, logits = agent.rollout(torch.from_numpy(feats[order]), None)
    full = np.empty(len(feats))
    full[order] = torch.sigmoid(logits[0].double()).numpy()
    assert np.allclose(full[idx], probs)
    assert np.all(full[idx].min() >= np.delete(full, idx).max() - 1e-12)
    every, _ = select(agent, feats, order, 10 * len(feats))
    assert sorted(every.tolist()) == list(range(len(feats)))


def test_candidate_count_may_change_between_rounds():
    feats, table = _problem()
    agent, _, _, _, _ = _run(4, iterations=2)
    gen = torch.Generator().manual_seed(9)
    sub = feats[:20]
    sub_table = GainTable(table.sizes, table.gains, table.group_of[:20])
    out = train_agent(agent, sub, sub_table, 4, iterations=2, generator=gen, order=np.arange(20)[::-1])
    idx, _ = select(agent, sub, np.arange(20)[::-1], 4)
    assert len(out["reward_curve"]) == 2 and len(set(idx.tolist())) == 4 and idx.max() < 20


def test_bad_order_and_shapes_are_refused():
    feats, table = _problem()
    agent = SamplingAgent(D, hidden=16)
    with pytest.raises(ValueError, match="permutation"):
        select(agent, feats, np.zeros(len(feats), int), B)
    with pytest.raises(ValueError, match="feats"):
        select(agent, feats[:, :4], np.arange(len(feats)), B)


def test_state_round_trip_selects_and_trains_like_the_original():
    feats, table = _problem()
    gen = torch.Generator().manual_seed(7)
    agent = SamplingAgent(D, hidden=16, generator=gen)
    opt = make_optimizer(agent, lr=1e-2)
    order = torch.randperm(len(feats), generator=gen).numpy()
    train_agent(agent, feats, table, B, iterations=5, generator=gen, order=order, optimizer=opt)
    buf = io.BytesIO()
    torch.save(agent_state(agent, opt), buf)
    buf.seek(0)
    loaded, loaded_opt = load_agent_state(torch.load(buf, weights_only=False), lr=1e-2)
    assert loaded.config() == agent.config()
    a_idx, a_p = select(agent, feats, order, B)
    b_idx, b_p = select(loaded, feats, order, B)
    assert np.array_equal(a_idx, b_idx) and np.array_equal(a_p, b_p)
    # the next round continues identically (weights and Adam moments carried over)
    state = gen.get_state()
    more_a = train_agent(agent, feats, table, B, iterations=5, generator=gen, order=order, optimizer=opt)
    gen.set_state(state)
    more_b = train_agent(loaded, feats, table, B, iterations=5, generator=gen, order=order,
                         optimizer=loaded_opt)
    assert more_a["reward_curve"] == more_b["reward_curve"]
    # a fresh Adam (no carried moments) would have taken other steps
    fresh, _ = load_agent_state({**agent_state(loaded), "optimizer": None}, lr=1e-2)
    assert torch.equal(next(fresh.parameters()), next(loaded.parameters()))
