"""coreset: greedy k-center on pooled embeddings (Sener & Savarese, 2018).

The embeddings of the labeled and unlabeled images are L2-normalised; the labeled
images are the initial centers and each pick is the unlabeled image farthest (Euclidean)
from its nearest center. Each selected id's score is that distance at the time it was
picked.
"""

from __future__ import annotations

import numpy as np
import torch

from albench.strategy import Selection, SelectionContext, Strategy, register_strategy


def k_center_greedy(features: np.ndarray, labeled_mask: np.ndarray, budget: int,
                    device: str = "cpu", chunk: int = 2048,
                    return_distances: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Greedy k-center: pool positions of ``budget`` new centers, in the order chosen.

    The labeled points are the initial centers. Each step picks the unlabeled point whose
    distance to its nearest center is largest (ties: the lowest position), then lowers
    every point's nearest-center distance with the new center's distances. Without a
    labeled point the first pick is the lowest-position point (then the rule goes on).

    The features are copied once to ``device`` as a ``d x n`` tensor, block by block (the
    layout whose vector-matrix product streams fastest on a CPU; on a GPU the copy is
    needed anyway). Beyond that copy: a few length-n vectors, and one ``chunk`` x
    ``chunk`` block while the initial distances (labeled x pool blocks) are computed;
    never an n x n matrix. Squared distances come from ``|a|^2 + |b|^2 - 2 a.b``, in float64
    for float64 input and float32 otherwise. With ``return_distances``, also returns each
    pick's distance at pick time (inf for a first pick without labeled points).
    """
    feats = np.asarray(features)
    n = len(feats)
    mask = np.asarray(labeled_mask, bool).reshape(-1)
    if mask.shape != (n,):
        raise ValueError("labeled_mask needs one entry per feature row")
    budget = max(0, min(int(budget), int((~mask).sum())))
    picks, dists = np.empty(budget, np.int64), np.empty(budget, np.float64)
    if budget == 0:
        return (picks, dists) if return_distances else picks
    dtype = torch.float64 if feats.dtype == np.float64 else torch.float32
    feats = feats.reshape(n, -1)
    xt = torch.empty((feats.shape[1], n), dtype=dtype, device=device)
    sq = torch.empty(n, dtype=dtype, device=device)
    for s in range(0, n, chunk):
        block = torch.as_tensor(feats[s:s + chunk], device=device).to(dtype)
        xt[:, s:s + chunk], sq[s:s + chunk] = block.T, (block * block).sum(1)
    mind = torch.full((n,), float("inf"), dtype=dtype, device=device)
    lab = torch.as_tensor(np.flatnonzero(mask), device=device)
    for t in range(0, len(lab), chunk):  # initial distances: labeled x pool blocks
        centers = lab[t:t + chunk]
        xc, sqc = xt[:, centers], sq[centers]
        for s in range(0, n, chunk):
            d = (xt[:, s:s + chunk].T @ xc).mul_(-2.0).add_(sqc).add_(sq[s:s + chunk, None])
            torch.minimum(mind[s:s + chunk], d.min(1).values.clamp_min_(0), out=mind[s:s + chunk])
    mind[lab] = -1.0  # never picked
    d = torch.empty(n, dtype=dtype, device=device)
    for k in range(budget):
        c = int(torch.argmax(mind)) if len(lab) or k else int(np.argmin(mask))
        value = float(mind[c])
        picks[k], dists[k] = c, np.sqrt(max(value, 0.0)) if value != np.inf else np.inf
        torch.mv(xt.T, xt[:, c], out=d).mul_(-2.0).add_(sq).add_(sq[c]).clamp_min_(0)
        torch.minimum(mind, d, out=mind)
        mind[c] = -1.0
    return (picks, dists) if return_distances else picks


@register_strategy
class CoresetStrategy(Strategy):
    name = "coreset"
    description = "Greedy k-center on L2-normalised pooled embeddings (labeled = centers)."

    def select(self, ctx: SelectionContext, budget: int) -> Selection:
        ids = np.concatenate([ctx.labeled, ctx.unlabeled]).astype(np.int64)
        feats = ctx.model.embeddings(ids).astype(np.float32).reshape(len(ids), -1)
        feats /= np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
        mask = np.arange(len(ids)) < len(ctx.labeled)
        pos, dist = k_center_greedy(feats, mask, budget, ctx.device, return_distances=True)
        return Selection(ids[pos], dist)
