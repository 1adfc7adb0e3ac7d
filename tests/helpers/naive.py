"""Textbook implementations that the fast ones are checked against (tests) and timed
against (benchmarks)."""

from __future__ import annotations

import numpy as np


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
