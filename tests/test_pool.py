import numpy as np
import pytest

from albench.data.index import Annotation
from albench.errors import OracleError, SelectionError
from albench.pool import LabelState, Oracle, ids_sha256


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


def test_a_selection_may_take_the_rest_of_a_small_pool():
    state = LabelState(np.arange(5))
    state.mark(np.array([0, 1, 2]), 0)
    state.check_selection(np.array([3, 4]), 10, "ok")  # budget 10, 2 left: exactly the rest


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
