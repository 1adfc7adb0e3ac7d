"""The labeled/unlabeled split of the pool and the oracle that reveals labels.

One integer array over the pool holds the round at which each image was labeled
(-1 = unlabeled, 0 = the initial set): it gives the labeled set, each round's additions,
and a state that saves as one list.
"""

from __future__ import annotations

import hashlib
from typing import Mapping

import numpy as np

from albench.data.index import Annotation
from albench.errors import OracleError, SelectionError


def ids_sha256(ids: np.ndarray) -> str:
    """Fingerprint of a set of ids (sorted, int64 bytes)."""
    return hashlib.sha256(np.sort(np.asarray(ids, np.int64)).tobytes()).hexdigest()


class LabelState:
    def __init__(self, pool_ids: np.ndarray, labeled_round: np.ndarray | None = None) -> None:
        self.pool_ids = np.asarray(pool_ids, np.int64)
        if np.any(np.diff(self.pool_ids) <= 0):
            raise ValueError("pool ids must be sorted and unique")
        self.labeled_round = (np.full(len(self.pool_ids), -1, np.int64) if labeled_round is None
                              else np.asarray(labeled_round, np.int64).copy())
        if self.labeled_round.shape != self.pool_ids.shape:
            raise ValueError("labeled_round must have one entry per pool id")

    @property
    def labeled(self) -> np.ndarray:
        return self.pool_ids[self.labeled_round >= 0]

    @property
    def unlabeled(self) -> np.ndarray:
        return self.pool_ids[self.labeled_round < 0]

    def added_in(self, round_: int) -> np.ndarray:
        return self.pool_ids[self.labeled_round == round_]

    def positions(self, ids: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self.pool_ids, ids)
        pos = np.clip(pos, 0, len(self.pool_ids) - 1)
        if len(ids) and not np.all(self.pool_ids[pos] == ids):
            raise SelectionError(f"ids {ids[self.pool_ids[pos] != ids][:5].tolist()} are not in the pool")
        return pos

    def check_selection(self, ids: np.ndarray, budget: int, strategy: str) -> None:
        """The loop's invariants on one selection; raises :class:`SelectionError`."""
        ids = np.asarray(ids, np.int64)
        expected = min(budget, int((self.labeled_round < 0).sum()))
        problems = []
        if len(np.unique(ids)) != len(ids):
            uniq, counts = np.unique(ids, return_counts=True)
            problems.append(f"it repeats ids {uniq[counts > 1][:5].tolist()}")
        outside = ids[~np.isin(ids, self.pool_ids)]
        if len(outside):
            problems.append(f"ids {outside[:5].tolist()} are not in the pool")
        inside = ids[np.isin(ids, self.pool_ids)]
        already = inside[self.labeled_round[self.positions(inside)] >= 0] if len(inside) else inside
        if len(already):
            problems.append(f"ids {already[:5].tolist()} are already labeled")
        if len(ids) != expected:
            problems.append(f"it has {len(ids)} ids where the budget asks for exactly {expected}")
        if problems:
            raise SelectionError(
                f"Strategy {strategy!r} returned an invalid selection: {'; '.join(problems)}. "
                "A selection must be distinct ids from the unlabeled pool, exactly the budget "
                "(or the rest of the pool when fewer remain). Fix the strategy's select()."
            )

    def mark(self, ids: np.ndarray, round_: int) -> None:
        self.labeled_round[self.positions(np.asarray(ids, np.int64))] = round_
        assert not np.intersect1d(self.labeled, self.unlabeled).size


class Oracle:
    """Reveals ground truth, and only for images the loop has labeled."""

    def __init__(self, annotations: Mapping[int, Annotation], state: LabelState) -> None:
        self._annotations = annotations
        self._state = state

    def label(self, ids: np.ndarray) -> dict[int, Annotation]:
        ids = np.asarray(ids, np.int64)
        ok = np.isin(ids, self._state.labeled)
        if not ok.all():
            raise OracleError(
                f"Labels were requested for {int((~ok).sum())} image(s) that are not labeled "
                f"(e.g. {ids[~ok][:5].tolist()}). Only images the loop accepted into the "
                "labeled set may be labeled; strategies must not read ground truth."
            )
        return {int(i): self._annotations[int(i)] for i in ids}

    def reveal_for_upper_bound(self, ids: np.ndarray) -> dict[int, Annotation]:
        """True labels of any pool ids, unlabeled ones included. Only the lab of a strategy
        instance that declares ``uses_true_labels`` gets this (an upper-bound ablation,
        marked in the manifest and every report)."""
        ids = np.asarray(ids, np.int64)
        outside = ids[~np.isin(ids, self._state.pool_ids)]
        if len(outside):
            raise OracleError(f"ids {outside[:5].tolist()} are not in the pool; the test split "
                              "is never revealed to a strategy.")
        return {int(i): self._annotations[int(i)] for i in ids}
