"""Semi-supervised terms on unlabeled images, shared by every backend.

Two ways of using an unlabeled image when a model is fine-tuned:

``consistency`` (CSD, Jeong et al., NeurIPS 2019): an image and its horizontal flip must
agree. The class posteriors at a location and at its mirror location are compared by the
Jensen-Shannon divergence, the box offsets by the squared error after mirroring (left and
right distances swap, a horizontal centre offset changes sign). Each backend supplies the
paired outputs (YOLO: dense head outputs at mirrored grid cells; Faster R-CNN: RoI-head
outputs on proposals and their mirrored boxes); this module holds the math.
As in CSD, locations that are confidently background are left out ("background
elimination"): each location is weighted by the larger foreground confidence of the two
views (detached), so empty sky does not dominate the term.

``pseudo``: the starting model's detections with score >= a threshold become boxes of
the unlabeled image, which is then trained on like a labeled one. The targets come only
from model outputs (:func:`pseudo_annotations`).

The unsupervised weight follows CSD's Gaussian ramp-up, ``w(t) = w_max * exp(-5 (1 -
t/T)^2)`` for ``t < T`` and ``w_max`` after, with ``T`` a share (``ramp``, default 0.25)
of the fine-tune's iterations (CSD ramps over its first epochs of a long schedule; a
variant fine-tune is a few epochs, so the ramp is a share of it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch

from albench.data.index import Annotation

UNSUP_MODES = ("none", "consistency", "pseudo")


@dataclass(frozen=True)
class UnsupConfig:
    """How unlabeled images enter a fine-tune."""

    mode: str = "consistency"  # none | consistency | pseudo
    weight: float = 1.0        # w_max of the consistency term
    ramp: float = 0.25         # share of the iterations over which the weight ramps up
    pseudo_threshold: float = 0.5
    batch: int = 8             # unlabeled images per training step (consistency)
    stream: bool = False       # pseudo-labelled images as an extra per-step stream, not in the
    #                            epoch; the stream's term weighs each image like a labeled one

    def __post_init__(self) -> None:
        if self.mode not in UNSUP_MODES:
            raise ValueError(f"unsupervised mode must be one of {UNSUP_MODES}, not {self.mode!r}")


def ramp_weight(it: int, total: int, w_max: float, ramp: float) -> float:
    """CSD's Gaussian ramp-up at iteration ``it`` of ``total``."""
    horizon = max(1.0, ramp * total)
    if it >= horizon:
        return float(w_max)
    return float(w_max * math.exp(-5.0 * (1.0 - it / horizon) ** 2))


def js_divergence(p: torch.Tensor, q: torch.Tensor, dim: int = -1, eps: float = 1e-7) -> torch.Tensor:
    """Jensen-Shannon divergence between distributions along ``dim`` (natural log)."""
    p, q = p.clamp_min(eps), q.clamp_min(eps)
    m = 0.5 * (p + q)
    return 0.5 * ((p * (p / m).log()).sum(dim) + (q * (q / m).log()).sum(dim))


def binary_js(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """JS divergence of independent Bernoulli scores (YOLO's sigmoid classes), summed
    over the last dimension."""
    pp = torch.stack([p, 1 - p], -1)
    qq = torch.stack([q, 1 - q], -1)
    return js_divergence(pp, qq).sum(-1)


def consistency_loss(cls_a: torch.Tensor, cls_b: torch.Tensor, box_a: torch.Tensor,
                     box_b_mirrored: torch.Tensor, *, kind: str = "softmax") -> torch.Tensor:
    """CSD's term for N paired locations.

    ``cls_a``/``cls_b``: (N, C) class probabilities of the original and of the flipped view
    at the mirrored location (``kind="softmax"``: rows are distributions; ``"sigmoid"``:
    independent scores). ``box_a``/``box_b_mirrored``: (N, K) box outputs, the flipped
    view's already mirrored back into the original frame. Returns a scalar.
    """
    if cls_a.numel() == 0:
        return cls_a.sum() * 0.0
    if kind == "softmax":
        js = js_divergence(cls_a, cls_b)
        fg = torch.maximum(1 - cls_a[:, 0], 1 - cls_b[:, 0]).detach() if cls_a.shape[1] > 1 else None
    else:
        js = binary_js(cls_a, cls_b)
        fg = torch.maximum(cls_a.max(1).values, cls_b.max(1).values).detach()
    l2 = ((box_a - box_b_mirrored) ** 2).mean(1)
    per = js + l2
    if fg is None:
        return per.mean()
    return (fg * per).sum() / fg.sum().clamp_min(1e-6)


def pseudo_annotations(detections: Mapping[int, object], threshold: float) -> dict[int, Annotation]:
    """Pseudo ground truth of unlabeled images: a model's detections with score >= threshold.

    ``detections`` maps image id -> :class:`~albench.backends.base.Detections` of the model
    being fine-tuned (before the fine-tune). Nothing else is read.
    """
    out = {}
    for image_id, det in detections.items():
        keep = np.asarray(det.scores) >= threshold
        boxes = np.asarray(det.boxes, np.float32)[keep].reshape(-1, 4)
        out[int(image_id)] = Annotation(boxes, np.asarray(det.labels, np.int64)[keep],
                                        np.zeros(int(keep.sum()), bool))
    return out


class UnlabeledStream:
    """Cycles through shuffled unlabeled ids, ``batch`` at a time, with its own generator."""

    def __init__(self, ids: Sequence[int], batch: int, seed: int) -> None:
        self.ids = [int(i) for i in ids]
        self.batch = max(1, min(batch, len(self.ids))) if self.ids else 0
        self.rng = np.random.default_rng(np.random.SeedSequence([seed, 2718]))
        self._order: list[int] = []

    def __bool__(self) -> bool:
        return bool(self.ids)

    def next(self) -> list[int]:
        out: list[int] = []
        while len(out) < self.batch:
            if not self._order:
                self._order = [self.ids[i] for i in self.rng.permutation(len(self.ids))]
            out.append(self._order.pop())
        return out
