import json

import numpy as np
import pytest

from albench.data import load_dataset
from albench.data.index import Annotation
from albench.errors import OracleError, SelectionError
from albench.loop import ActiveLearningLoop
from albench.pool import LabelState, Oracle, ids_sha256
from albench.results import read_jsonl, read_rows


def make_state():
    state = LabelState(np.arange(10, 30))
    state.mark(np.array([10, 11, 12]), 0)
    return state


def test_labeled_and_unlabeled_partition_the_pool():
    state = make_state()
    assert set(state.labeled) == {10, 11, 12}
    assert len(state.unlabeled) == 17
    assert not np.intersect1d(state.labeled, state.unlabeled).size
    state.mark(np.array([20, 21]), 1)
    assert state.added_in(1).tolist() == [20, 21]
    assert len(state.labeled) + len(state.unlabeled) == 20


@pytest.mark.parametrize("ids, fragment", [
    ([13, 13, 14], "repeats ids [13]"),
    ([13, 14, 99], "not in the pool"),
    ([13, 14, 10], "already labeled"),
    ([13, 14, 15, 16], "exactly 3"),
    ([13], "exactly 3"),
])
def test_invalid_selections_are_rejected_with_a_clear_error(ids, fragment):
    with pytest.raises(SelectionError, match="invalid selection") as err:
        make_state().check_selection(np.array(ids), 3, "bad")
    assert fragment in str(err.value)
    assert "Fix the strategy" in str(err.value)


def test_a_selection_may_take_the_rest_of_a_small_pool(tiny_cfg, tmp_path):
    state = LabelState(np.arange(5))
    state.mark(np.array([0, 1, 2]), 0)
    state.check_selection(np.array([4, 3]), 10, "ok")  # budget 10, 2 left: exactly the rest
    for not_the_rest in ([3], [3, 3], [3, 4, 2]):
        with pytest.raises(SelectionError, match="invalid selection"):
            state.check_selection(np.array(not_the_rest), 10, "bad")
    state.mark(np.array([4, 3]), 1)
    assert state.unlabeled.size == 0 and state.added_in(1).tolist() == [3, 4]

    # the loop: 30 of 40 labeled, budget 8: round 1 takes the last 2, round 2 trains on all 40
    cfg = tiny_cfg(strategy="random", initial=30, budget=8, rounds=2,
                   dataset_options={"pool_size": 40, "test_size": 16}, backend_options={"epochs": 1})
    run_dir = ActiveLearningLoop(cfg, tmp_path).run().run_dir
    ds = load_dataset(cfg.dataset, **cfg.dataset_options)  # the loop's data
    labeled_round = np.array(json.loads((run_dir / "state" / "state.json").read_text())["labeled_round"])
    sels = read_jsonl(run_dir / "selections.jsonl")
    before = set(ds.pool_ids[(labeled_round >= 0) & (labeled_round <= 1)].tolist())
    assert len(before) == 38 and before.isdisjoint(sels[1]["ids"])
    assert sorted(sels[1]["ids"]) == sorted(set(ds.pool_ids.tolist()) - before)  # distinct, the rest
    rows = read_rows(run_dir / "rounds.csv")
    assert [int(r["n_labeled"]) for r in rows] == [30, 38, 40]
    assert [int(r["n_selected"]) for r in rows] == [8, 2, 0]
    last = rows[-1]  # trained on every pool image's boxes, evaluated on the test split
    assert int(last["n_boxes_labeled"]) == sum(ds.annotations[int(i)].n_boxes for i in ds.pool_ids)
    assert float(last["t_train_s"]) > 0 and float(last["t_eval_s"]) > 0
    assert 0 <= float(last["ap50"]) <= 1
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "complete"


def test_oracle_refuses_unlabeled_ids():
    state = make_state()
    anns = {i: Annotation.empty() for i in range(10, 30)}
    oracle = Oracle(anns, state)
    assert set(oracle.label(state.labeled)) == {10, 11, 12}
    with pytest.raises(OracleError, match="not labeled"):
        oracle.label(np.array([10, 25]))


def test_ids_fingerprint_ignores_order():
    assert ids_sha256(np.array([3, 1, 2])) == ids_sha256(np.array([1, 2, 3]))
    assert ids_sha256(np.array([1, 2])) != ids_sha256(np.array([1, 3]))
