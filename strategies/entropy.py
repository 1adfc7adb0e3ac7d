"""entropy: classification uncertainty of the detections.

Each post-NMS detection with ``score >= min_score`` gets the Shannon entropy (natural
log) of its class-probability row; an image's score aggregates them by ``aggregate``
(``max``, ``mean`` or ``sum``). An image without such a detection scores 0 under
``max`` and ``sum``; under ``mean`` it scores -1 and so ranks after every image with a
detection. The ``budget`` highest scores are selected, ties to the lower id.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from albench.strategy import (Detections, Option, Selection, SelectionContext, Strategy,
                              register_strategy, top_k)


def entropy_scores(dets: Sequence[Detections], min_score: float = 0.05,
                   aggregate: str = "max", block: int = 2048) -> np.ndarray:
    """One score per image, vectorised over blocks of ``block`` images."""
    out = np.empty(len(dets), np.float64)
    for s in range(0, len(dets), block):
        part = dets[s:s + block]
        counts = np.fromiter((len(d) for d in part), np.int64, len(part))
        rows = [d for d in part if len(d)] or [Detections.empty(1)]
        probs = np.concatenate([d.probs for d in rows]).astype(np.float32, copy=False)
        keep = np.concatenate([d.scores for d in rows]) >= min_score
        ent = -np.einsum("ij,ij->i", probs, np.log(np.maximum(probs, np.float32(1e-12))))[keep]
        img = np.repeat(np.arange(len(part)), counts)[keep]
        n = np.bincount(img, minlength=len(part))
        if aggregate == "max":
            score = np.zeros(len(part))
            starts = np.concatenate([[0], np.cumsum(n)[:-1]])[n > 0]
            score[n > 0] = np.maximum.reduceat(ent, starts) if len(ent) else 0.0
        else:
            score = np.bincount(img, ent.astype(np.float64), minlength=len(part))
            if aggregate == "mean":
                score = np.where(n > 0, score / np.maximum(n, 1), -1.0)
        out[s:s + len(part)] = score
    return out


@register_strategy
class EntropyStrategy(Strategy):
    name = "entropy"
    description = "Shannon entropy of detections' class probabilities, aggregated per image."
    options = {
        "min_score": Option(0.05, "detections below this confidence are ignored"),
        "aggregate": Option("max", "per-image aggregation of box entropies",
                            ("max", "mean", "sum")),
    }

    def select(self, ctx: SelectionContext, budget: int) -> Selection:
        dets = ctx.model.predictions(ctx.unlabeled)
        scores = entropy_scores(dets, self.opts["min_score"], self.opts["aggregate"])
        return top_k(ctx.unlabeled, scores, budget)
