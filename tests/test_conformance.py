"""The contract every registered strategy meets; a new strategy module is checked by
adding it, nothing else.

Most checks run on the suite's fake backend (``tests/helpers/fakes.py``: outputs derived
deterministically from the id and a salt; "training" derives a new salt from everything it
was given, labels included) behind the real :class:`ModelView` and the real
:class:`~albench.lab.Lab`; one smoke AL experiment per strategy runs on the real yolo
backend at the tiniest setting. Strategies with expensive defaults get small settings
(``FAST``); the smoke experiment and the strategies' own tests cover the defaults.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping

import numpy as np
import pytest

from albench.backends import BACKENDS
from albench.data.index import Annotation, DetectionDataset
from albench.errors import ConfigError, OracleError
from albench.loop import ActiveLearningLoop
from albench.pool import LabelState, Oracle
from albench.results import read_jsonl, read_rows
from albench.strategy import Selection, Strategy, available, build_strategy, strategy_options
from tests.helpers.fakes import FAST, POOL, annotations, context, label_state

NAMES = sorted(available())


def make(name: str):
    return build_strategy(name, FAST.get(name))


def select(name: str, state: LabelState, budget: int, seed: int = 0, salt: int = 0,
           truth_salt: int = 0, options: dict | None = None):
    strategy = build_strategy(name, {**FAST.get(name, {}), **(options or {})})
    return strategy.select(context(state, seed, salt, truth_salt, strategy), budget)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("budget", [1, 7])
def test_selection_is_budget_sized_distinct_and_unlabeled(name: str, budget: int):
    state = label_state()
    sel = select(name, state, budget)
    assert len(sel.ids) == budget and len(np.unique(sel.ids)) == budget
    assert np.isin(sel.ids, state.unlabeled).all()
    assert sel.scores is None or len(sel.scores) == len(sel.ids)
    state.check_selection(sel.ids, budget, name)


@pytest.mark.parametrize("name", NAMES)
def test_smaller_pool_gives_the_rest_of_the_pool(name: str):
    state = label_state(len(POOL) - 4)
    sel = select(name, state, 7)
    assert sorted(sel.ids.tolist()) == state.unlabeled.tolist()


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_selection_and_inputs_matter(name: str):
    state = label_state()
    base = select(name, state, 5)
    again = select(name, state, 5)
    assert base.ids.tolist() == again.ids.tolist()
    if base.scores is not None:
        assert np.array_equal(base.scores, again.scores)
    other_seed = select(name, state, 5, seed=1).ids.tolist()
    other_model = select(name, state, 5, salt=1).ids.tolist()
    assert base.ids.tolist() != other_seed or base.ids.tolist() != other_model, (
        "neither the generator seed nor the model's outputs change the selection")


def _holds_ground_truth(value: object) -> bool:
    if isinstance(value, (DetectionDataset, Oracle, Annotation)):
        return True
    return isinstance(value, Mapping) and any(isinstance(v, Annotation) for v in value.values())


@pytest.mark.parametrize("name", NAMES)
def test_no_access_to_unlabeled_ground_truth(name: str):
    state = label_state()
    annotations = {int(i): Annotation.empty() for i in POOL}
    oracle = Oracle(annotations, state)
    ctx = context(state)
    exposed = list(vars(ctx).values())
    exposed += [getattr(ctx.model, a) for a in dir(ctx.model) if not a.startswith("_")]
    exposed += [getattr(ctx.lab, a) for a in dir(ctx.lab) if not a.startswith("_")]
    assert not any(_holds_ground_truth(v) for v in exposed)
    sel = make(name).select(ctx, 5)
    with pytest.raises(OracleError):
        oracle.label(sel.ids)  # not accepted yet
    state.mark(sel.ids, 1)
    assert sorted(oracle.label(sel.ids)) == sorted(sel.ids.tolist())
    with pytest.raises(OracleError):
        oracle.label(state.unlabeled[:1])


def _changed_truth_selections(make_strategy, state: LabelState, budget: int = 6):
    """The selections of ``make_strategy()`` under the fixture's ground truth and under one
    where every unlabeled image's truth is another draw (images that held no object now
    hold some and the other way round); the labeled images keep theirs."""
    strategy = make_strategy()
    base = strategy.select(context(state, strategy=strategy), budget)
    changed = annotations(1)
    for i in state.labeled:
        changed[int(i)] = annotations(0)[int(i)]
    strategy = make_strategy()
    ctx = context(state, strategy=strategy)
    ctx.lab._label = Oracle(changed, state).label
    return base, strategy.select(ctx, budget)


def test_the_fixture_changes_which_unlabeled_images_are_empty():
    state = label_state(20)
    empty = {s: {int(i) for i in state.unlabeled if len(annotations(s)[int(i)].boxes) == 0}
             for s in (0, 1)}
    assert empty[0] and empty[1] and empty[0] != empty[1]
    assert any(len(a.boxes) >= 10 for a in annotations(0).values())


@pytest.mark.parametrize("name", NAMES)
def test_selection_ignores_the_labels_of_images_it_was_never_given(name: str):
    """Changing the ground truth of the unlabeled images changes no selection (and the
    labels of labeled images do reach strategies that train: the check has teeth)."""
    base, again = _changed_truth_selections(lambda: make(name), label_state(20))
    assert base.ids.tolist() == again.ids.tolist()
    if base.scores is not None:
        assert np.array_equal(base.scores, again.scores)


class SkipsEmptyImages(Strategy):
    """A leak: reads the ground truth behind the lab only to leave out images without objects,
    then picks at random among the rest."""

    name = "skips-empty-images"

    def select(self, ctx, budget):
        truth = ctx.lab._label.__self__._annotations
        nonempty = np.array([i for i in ctx.unlabeled if len(truth[int(i)].boxes)], np.int64)
        return Selection(ctx.rng.choice(nonempty, size=min(budget, len(nonempty)), replace=False))


def test_the_leak_check_catches_a_strategy_that_skips_empty_images():
    base, again = _changed_truth_selections(SkipsEmptyImages, label_state(20))
    assert base.ids.tolist() != again.ids.tolist()


@pytest.mark.parametrize("name", NAMES)
def test_loop_rejects_a_setting_with_nothing_to_select(name: str, tiny_cfg, tmp_path):
    with pytest.raises(ConfigError, match="does not fit the pool"):
        ActiveLearningLoop(tiny_cfg(strategy=name, initial=80), tmp_path).run()


@pytest.mark.parametrize("name", NAMES)
def test_options_round_trip_through_opt_strings(name: str):
    cls = available()[name]
    defaults = {k: o.default for k, o in cls.options.items()}
    for key, opt in cls.options.items():
        assert opt.parse(str(opt.default), f"--opt {key}") == opt.default
        for choice in opt.choices or ():
            assert opt.parse(str(choice), f"--opt {key}") == choice
    parsed = strategy_options(name, {k: str(v) for k, v in defaults.items()})
    assert parsed == defaults and build_strategy(name, parsed).opts == defaults
    for given in ({"no_such_option": "1"}, {"no_such_option": 1}):  # resolve's parse, and code
        for make in (strategy_options, build_strategy):
            with pytest.raises(ConfigError) as err:
                make(name, given)
            assert all(key in str(err.value) for key in defaults) and "no_such_option" in str(err.value)


@pytest.mark.parametrize("backend", ["yolo", "frcnn"])
@pytest.mark.parametrize("name", NAMES)
def test_requirements_are_offered_by_the_real_backends(name: str, backend: str):
    importlib.import_module(f"albench.backends.{backend}")
    if backend not in BACKENDS:
        pytest.skip(f"backend {backend!r} is not registered")
    requires = available()[name].requires
    assert requires <= BACKENDS[backend].cls.capabilities


@pytest.mark.parametrize("name", NAMES)
def test_smoke_experiment_on_yolo(name: str, tiny_cfg, tmp_path):
    cfg = tiny_cfg(strategy=name, seed=11, rounds=1, dataset_options={"test_size": 16})
    result = ActiveLearningLoop(cfg, tmp_path).run()
    rows = read_rows(result.run_dir / "rounds.csv")
    assert [int(r["n_labeled"]) for r in rows] == [16, 24]
    assert [int(r["n_selected"]) for r in rows] == [8, 0]
    sels = read_jsonl(result.run_dir / "selections.jsonl")
    assert [len(set(s["ids"])) for s in sels] == [8]
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["strategy_requires"] == sorted(available()[name].requires)
