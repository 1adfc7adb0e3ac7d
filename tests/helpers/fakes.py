"""The one fake backend of the test suite, and strategy contexts built on it.

:class:`FakeBackend` gives deterministic, random-looking outputs per (salt, id) and offers
every capability a strategy may require; its "training" derives a new salt from everything
it was given, labels included, so a strategy that trains copies through the real
:class:`~albench.lab.Lab` sees outputs that depend on what it trained on. Tests that need
hand-picked outputs pass them per id (``preds``, ``feats``, ``losses``); those are returned
as given (an id without one is a ``KeyError``).

:func:`context` puts the fake behind the real :class:`ModelView`, :class:`Oracle` and
:class:`Lab` on a small pool (:data:`POOL`) with ground truth :func:`annotations`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np

from albench.backends.base import BackendSpec, Detections
from albench.data.index import Annotation
from albench.lab import Lab
from albench.pool import LabelState, Oracle
from albench.strategy import Meter, ModelView, SelectionContext, available

POOL = np.arange(60) * 3 + 5  # sorted, non-contiguous ids
BOX_COUNTS = (0, 0, 1, 2, 3, 12)  # boxes per image, drawn uniformly: a third are empty
# Small settings for strategies whose defaults are expensive.
FAST = {"mgral": {"iterations": 15, "hidden": 16, "groups": 3, "samples": 4}}


class _Images:
    files = {int(i): f"{int(i)}.png" for i in POOL}
    sizes = {int(i): (100, 100) for i in POOL}

    def size(self, image_id: int) -> tuple[int, int]:
        return self.sizes[int(image_id)]


def annotations(salt: int = 0) -> dict[int, Annotation]:
    """Ground truth of every :data:`POOL` image (0, 1-3 or 12 boxes, 5 classes: some images
    hold no object and some many), derived from ``salt``."""
    out = {}
    for i in POOL:
        rng = np.random.default_rng([salt, 9, int(i)])
        k = int(rng.choice(BOX_COUNTS))
        xy = rng.uniform(0, 50, (k, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(5, 40, (k, 2))], 1).astype(np.float32)
        out[int(i)] = Annotation(boxes, rng.integers(0, 5, k), np.zeros(k, bool))
    return out


class FakeBackend:
    """Random-looking but deterministic outputs per (salt, id); offers every feature."""

    name = "fake"
    capabilities = frozenset({"loss_head"}).union(*(c.requires for c in available().values()))
    features = capabilities

    opts: dict = {}
    device = "cpu"
    images = _Images()

    def __init__(self, salt: int = 0, *, num_classes: int = 5,
                 preds: Mapping[int, Detections] | None = None,
                 feats: Mapping[int, np.ndarray] | None = None,
                 losses: Mapping[int, float] | None = None) -> None:
        self.salt, self.num_classes = salt, num_classes
        self.preds, self.feats, self.losses = preds, feats, losses

    # what the lab needs: states, clones, and a "fit" that depends on all it is given
    def state(self) -> dict:
        import torch

        return {"salt": torch.tensor(self.salt, dtype=torch.int64)}

    def load_state(self, state: dict, source: str = "") -> None:
        self.salt = int(state["salt"])

    def spec(self) -> BackendSpec:
        return BackendSpec(self.name, self.num_classes, dict(self.opts), self.device,
                           frozenset(self.features))

    def epochs(self, warm: bool) -> int:
        return 1

    def clone(self) -> FakeBackend:
        return FakeBackend(self.salt, num_classes=self.num_classes, preds=self.preds,
                           feats=self.feats, losses=self.losses)

    def fit(self, labeled, seed, *, epochs=None, warm_start=False, progress=None,
            unlabeled=(), unsup=None, **extra) -> None:
        h = hashlib.sha256(f"{self.salt}|{seed}|{epochs}|{sorted(unlabeled)}|"
                           f"{getattr(unsup, 'mode', None)}".encode())
        if extra:  # lr_scale, stream: only runs that ask for them hash them
            h.update(repr(sorted((k, sorted(v) if isinstance(v, dict) else v)
                                 for k, v in extra.items())).encode())
        for i in sorted(labeled):
            h.update(str(i).encode() + labeled[i].boxes.tobytes() + labeled[i].labels.tobytes())
        self.salt = int.from_bytes(h.digest()[:4], "little")

    def _rng(self, image_id: int, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.salt, stream, int(image_id)])

    def predict(self, ids) -> list[Detections]:
        if self.preds is not None:
            return [self.preds[int(i)] for i in ids]
        out = []
        for i in ids:
            rng, c = self._rng(i, 0), self.num_classes
            k = int(rng.integers(0, 8))
            xy = rng.uniform(0, 50, (k, 2))
            probs = rng.dirichlet(np.full(c, 0.5), k).astype(np.float32).reshape(k, c)
            out.append(Detections(np.concatenate([xy, xy + rng.uniform(5, 40, (k, 2))], 1)
                                  .astype(np.float32), probs.max(1, initial=0),
                                  probs.argmax(1) if k else np.zeros(0, np.int64), probs))
        return out

    def embed(self, ids) -> np.ndarray:
        if self.feats is not None:
            return np.stack([np.asarray(self.feats[int(i)], np.float32) for i in ids])
        return np.stack([self._rng(i, 1).standard_normal(16).astype(np.float32) for i in ids])

    def predict_loss(self, ids) -> np.ndarray:
        if self.losses is not None:
            return np.array([self.losses[int(i)] for i in ids])
        return np.array([self._rng(i, 2).gamma(2.0) for i in ids])


def label_state(n_labeled: int = 12) -> LabelState:
    """:data:`POOL` with ``n_labeled`` images (drawn with seed 0) labeled in round 0."""
    state = LabelState(POOL)
    state.mark(np.random.default_rng(0).choice(POOL, n_labeled, replace=False), 0)
    return state


def context(state: LabelState, seed: int = 0, salt: int = 0, truth_salt: int = 0,
            strategy=None) -> SelectionContext:
    """Round 1 of ``state`` on a :class:`FakeBackend` behind the real view, oracle and lab.
    The lab reveals true labels of unlabeled images only when ``strategy`` declares it."""
    meter = Meter()
    backend = FakeBackend(salt)
    oracle = Oracle(annotations(truth_salt), state)
    upper = strategy is not None and strategy.uses_true_labels
    lab = Lab(backend, oracle.label, [f"c{k}" for k in range(5)], meter=meter, threads=1,
              true_labels=oracle.reveal_for_upper_bound if upper else None)
    return SelectionContext(unlabeled=state.unlabeled, labeled=state.labeled, round=1,
                            rng=np.random.default_rng(seed),
                            model=ModelView(backend, meter), meter=meter, lab=lab)


def fixed_context(backend: FakeBackend, unlabeled, labeled=()) -> SelectionContext:
    """Round 0 with ``backend`` behind the real view and no lab (strategies that do not train)."""
    meter = Meter()
    return SelectionContext(np.asarray(unlabeled, np.int64), np.asarray(labeled, np.int64), 0,
                            np.random.default_rng(0), ModelView(backend, meter), meter)


def many_tensors(n: int) -> dict:
    """A worker-side result of ``n`` small tensors (pickled by a process pool)."""
    import torch

    return {f"t{i}": torch.full((4,), float(i)) for i in range(n)}
