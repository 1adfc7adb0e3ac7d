"""MGRAL, the strategy: reward split, variants, table, agent, state and diagnostics.

Fast checks run on the suite's fake backend (tests/helpers/fakes.py) behind the real lab (every
fine-tune and score goes through :class:`~albench.lab.Lab` and the real evaluator); one
experiment per estimator mode runs on the real yolo backend at the tiniest setting.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from albench.lab import Lab
from albench.loop import ActiveLearningLoop
from albench.pool import Oracle
from albench.results import read_jsonl, read_rows
from albench.strategy import build_strategy
from strategies.mgral import LEGACY
from tests.helpers.fakes import FAST, annotations, context, label_state

KEYS = {"estimator", "agent", "candidates", "groups", "group_sizes", "ladder", "lut",
        "baseline_ap50", "model_ap50_R", "variants", "t_lut_s", "t_agent_s", "t_variant_s",
        "lookup_us", "lookup_speedup", "iterations", "reward_curve", "estimated_gain",
        "chosen_per_group"}


def mgral(**options):
    """The behaviour these tests pin is the committed runs' (LEGACY); the defaults' own
    tests are tests/test_mgral_validity.py."""
    return build_strategy("mgral", {**FAST["mgral"], **LEGACY, **options})


class Spy:
    """Records what the strategy asks of the lab."""

    def __init__(self, lab: Lab) -> None:
        self.lab, self.jobs, self.scored = lab, [], []
        finetune_many, score = lab.finetune_many, lab.score

        def record_jobs(jobs):
            self.jobs += list(jobs)
            return finetune_many(jobs)

        def record_score(model, ids):
            self.scored.append(np.asarray(ids).copy())
            return score(model, ids)

        lab.finetune_many, lab.score = record_jobs, record_score


def test_reward_split_is_drawn_once_kept_and_the_only_scoring_data():
    state = label_state(20)
    strategy = mgral()
    ctx = context(state, strategy=strategy)
    spy = Spy(ctx.lab)
    sel = strategy.select(ctx, 6)
    reward = strategy.reward_ids.copy()
    assert len(reward) == 4 and np.isin(reward, state.labeled).all()
    assert all(not np.isin(reward, job.labeled).any() for job in spy.jobs), "a variant trained on R"
    assert all(np.array_equal(ids, reward) for ids in spy.scored), "something else was scored"
    assert not np.isin(sel.ids, reward).any()
    # round 2: more labeled images, the same R
    state.mark(sel.ids, 1)
    strategy.select(context(state, seed=1, strategy=strategy), 6)
    assert np.array_equal(strategy.reward_ids, reward)


def test_one_variant_per_group_and_size_plus_the_baseline_and_diagnostics_complete():
    state = label_state(20)
    strategy = mgral(groups=3, ladder="1,2")
    ctx = context(state, strategy=strategy)
    spy = Spy(ctx.lab)
    sel = strategy.select(ctx, 6)
    d = sel.diagnostics
    assert KEYS <= set(d)
    assert d["variants"] == len(spy.jobs) == 1 + sum(len(x) for x in d["ladder"])
    assert spy.jobs[0].unsup == "none" and len(spy.jobs[0].unlabeled) == 0  # the baseline
    for job in spy.jobs[1:]:
        assert job.unsup == "consistency" and np.isin(job.unlabeled, state.unlabeled).all()
        assert job.seed == spy.jobs[0].seed  # only the added images differ
    assert [len(g) for g in d["lut"]] == [len(x) for x in d["ladder"]]
    assert sum(d["chosen_per_group"]) == 6 and len(d["reward_curve"]) == d["iterations"]
    assert d["lookup_speedup"] > 1
    json.dumps(d)  # JSON-able


def test_estimator_modes_reach_the_lab_and_only_oracle_declares_true_labels():
    for estimator, mode in (("consistency", "consistency"), ("pseudo", "pseudo"), ("oracle", "labels")):
        strategy = mgral(estimator=estimator, groups=2, ladder="1")
        state = label_state(20)
        ctx = context(state, strategy=strategy)
        spy = Spy(ctx.lab)
        strategy.select(ctx, 4)
        assert {j.unsup for j in spy.jobs[1:]} == {mode}
        assert strategy.uses_true_labels == (estimator == "oracle")


def test_labels_of_labeled_images_do_reach_the_table():
    """The counterpart of the conformance leak test: MGRAL does use the labels it is given."""
    state = label_state(20)
    tables = []
    for salt in (0, 1):
        ctx = context(state, strategy=mgral())
        changed = annotations(0)
        changed.update({int(i): annotations(salt)[int(i)] for i in state.labeled})
        ctx.lab._label = Oracle(changed, state).label
        tables.append(mgral().select(ctx, 6).diagnostics["lut"])
    assert tables[0] != tables[1]


def test_greedy_agent_fills_the_budget_by_table_gain():
    state, budget = label_state(20), 6
    sel = mgral(agent="greedy").select(context(state, seed=7), budget)
    d = sel.diagnostics
    assert len(set(sel.ids.tolist())) == budget and np.isin(sel.ids, state.unlabeled).all()
    assert d["reward_curve"] == [] and d["agent"] == "greedy"

    def gain(g: int, n: int) -> float:  # the table: linear through (0, 0) and the ladder, flat beyond
        return float(np.interp(n, [0, *d["ladder"][g]], [0.0, *d["lut"][g]]))

    assert sum(v != 0 for g in d["lut"] for v in g) >= 2, "an all-zero table tells no fill from another"
    counts, left = [0] * d["groups"], list(d["group_sizes"])
    for _ in range(budget):  # each image to the group of largest marginal table gain, ties to the lower
        marginal = [gain(g, counts[g] + 1) - gain(g, counts[g]) if left[g] else -np.inf
                    for g in range(d["groups"])]
        g = int(np.argmax(marginal))
        counts[g], left[g] = counts[g] + 1, left[g] - 1
    assert d["chosen_per_group"] == counts and sum(counts) == budget
    assert sum(n > 0 for n in counts) > 1  # the table, not the group order, decided
    assert d["estimated_gain"] == pytest.approx(sum(gain(g, n) for g, n in enumerate(counts)), abs=1e-12)


def test_state_round_trip_selects_as_the_carried_instance_does():
    state = label_state(20)
    first = mgral()
    sel0 = first.select(context(state, strategy=first), 6)
    state.mark(sel0.ids, 1)
    revived = mgral()
    revived.load_state_dict(first.state_dict())
    a = first.select(context(state, seed=3), 6)
    b = revived.select(context(state, seed=3), 6)
    assert a.ids.tolist() == b.ids.tolist() and np.array_equal(a.scores, b.scores)


@pytest.mark.parametrize("bad", [{"groups": "0"}, {"reward_split": "1.5"}, {"reward_split": "0"},
                                 {"iterations": "-1"}, {"candidates": "-3"}, {"lr": "0"},
                                 {"samples": "0"}, {"hidden": "2.5"}, {"estimator": "magic"},
                                 {"carry_agent": "maybe"}])
def test_bad_options_are_refused_by_resolve_before_any_data_loads(bad):
    from albench.config import resolve
    from albench.errors import ConfigError

    (key,) = bad
    with pytest.raises(ConfigError, match=f"--opt {key} must be"):  # a COCO root that is not
        resolve("quick", strategy="mgral", strategy_options=bad, dataset="coco",  # there:
                dataset_options={"data_root": "/nonexistent/coco"})  # nothing was loaded


@pytest.mark.parametrize("bad", [{"groups": 0}, {"reward_split": 1.0}, {"lr": 0.0}, {"iterations": 2.0}])
def test_typed_values_out_of_bounds_are_refused_in_code_too(bad):
    from albench.errors import ConfigError

    (key,) = bad
    with pytest.raises(ConfigError, match=f"--opt {key} must be"):
        build_strategy("mgral", bad)


@pytest.mark.parametrize("bad", [{"ladder": "0,2"}, {"ladder": "a"}])
def test_a_bad_ladder_is_a_clear_error(bad):
    from albench.errors import ConfigError

    with pytest.raises(ConfigError, match="mgral: --opt ladder"):
        build_strategy("mgral", bad)


@pytest.mark.slow
@pytest.mark.parametrize("estimator", ["consistency", "oracle"])
def test_mgral_experiment_on_yolo(tiny_cfg, tmp_path, estimator):
    cfg = tiny_cfg(strategy="mgral", seed=2, rounds=1, dataset_options={"test_size": 16},
                   strategy_options={**LEGACY, "iterations": "20", "estimator": estimator,
                                     "groups": "4"})
    result = ActiveLearningLoop(cfg, tmp_path, lab_workers=1).run()
    rows = read_rows(result.run_dir / "rounds.csv")
    (diag,) = read_jsonl(result.run_dir / "diagnostics.jsonl")
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["upper_bound"] == (estimator == "oracle")
    assert diag["variants"] == 1 + sum(len(x) for x in diag["ladder"]) and diag["estimator"] == estimator
    assert float(rows[0]["t_strategy_train_s"]) >= diag["t_lut_s"] * 0.9
    assert [int(r["n_labeled"]) for r in rows] == [16, 24]
