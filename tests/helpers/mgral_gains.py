"""A fake backend whose gains are known, for MGRAL's table and gate.

:class:`GainBackend` holds a quality ``q`` and the ids it has trained on (``seen``). A fit
adds the planted ``worth`` of every image it has not seen before (labeled, unlabeled or
streamed: the estimator sees the same signal label-free) plus ``noise`` x N(0, 1) drawn from
the fit's seed; a fit from initialisation starts at ``q = 0`` with nothing seen. Its
detections are each image's true boxes scored ``sigmoid(q - 1 + u_i)`` (``u_i`` ~ N(0, 1.5^2), fixed
per image) beside five false positives (one per class) at 0.45, so the real evaluator's AP
rises with ``q``. Embeddings put image ``i`` in cluster ``(i // 3) % 3`` (:func:`cluster`).
What a model trained on is in its state, so a test can check that no model is scored on an
image it saw.
"""

from __future__ import annotations

import numpy as np
import torch

from albench.backends.base import Detections
from tests.helpers.fakes import POOL, FakeBackend, annotations


class GainBackend(FakeBackend):
    def __init__(self, worth: dict[int, float], noise: float, q: float = 0.0,
                 seen: tuple = ()) -> None:
        super().__init__(0)
        self.worth, self.noise, self.q, self.seen = dict(worth), float(noise), float(q), set(seen)
        self.truth = annotations(0)

    def state(self) -> dict:
        return {"q": torch.tensor(self.q, dtype=torch.float64),
                "seen": torch.tensor(sorted(self.seen), dtype=torch.int64)}

    def load_state(self, state: dict, source: str = "") -> None:
        self.q = float(state["q"])
        self.seen = {int(i) for i in state["seen"].tolist()}

    def clone(self) -> GainBackend:
        return GainBackend(self.worth, self.noise, self.q, tuple(self.seen))

    def fit(self, labeled, seed, *, epochs=None, warm_start=False, progress=None,
            unlabeled=(), unsup=None, **extra) -> None:
        if not warm_start:
            self.q, self.seen = 0.0, set()
        ids = {int(i) for i in labeled} | {int(i) for i in unlabeled} | set(extra.get("stream", {}))
        new = ids - self.seen
        self.q += sum(self.worth.get(i, 0.0) for i in new)
        self.q += self.noise * float(np.random.default_rng([int(seed), 77]).standard_normal())
        self.seen |= ids

    def predict(self, ids) -> list[Detections]:
        out = []
        for i in ids:
            gt = self.truth[int(i)]
            u = 1.5 * float(np.random.default_rng([int(i), 5]).standard_normal())
            k = len(gt.boxes)
            s = np.full(k, 1.0 / (1.0 + np.exp(-(self.q - 1.0 + u))), np.float32)
            fp = np.array([[80, 80, 95, 95]] * 5, np.float32) + np.arange(5)[:, None]
            boxes = np.concatenate([gt.boxes.reshape(-1, 4), fp]).astype(np.float32)
            scores = np.concatenate([s, np.full(5, 0.45, np.float32)])
            labels = np.concatenate([gt.labels, np.arange(5)]).astype(np.int64)
            probs = np.full((k + 5, 5), 0.05, np.float32)
            probs[np.arange(k + 5), labels] = 0.8
            out.append(Detections(boxes, scores, labels, probs))
        return out

    def embed(self, ids) -> np.ndarray:
        out = np.zeros((len(ids), 16), np.float32)
        for r, i in enumerate(ids):
            out[r, cluster(i)] = 1.0
            out[r, 3:] = 0.01 * np.random.default_rng([int(i), 6]).standard_normal(13)
        return out


def planted(value: float = 0.3) -> dict[int, float]:
    """Worth ``value`` for the images of cluster 0, 0 for the others."""
    return {int(i): (value if cluster(i) == 0 else 0.0) for i in POOL}


def cluster(image_id: int) -> int:
    """The cluster of a :data:`POOL` image (ids are 5, 8, 11, ...: a third in each)."""
    return (int(image_id) // 3) % 3
