"""The Backend protocol: one adapter per detector framework, same surface for the loop.

A backend sees images (through the dataset's :class:`ImageStore`) and the labels the
loop hands it in ``fit``; it never sees ground truth of unlabeled images. This module
holds the protocol and the values that cross it; the shared implementation is
:class:`~albench.backends.adapter.BackendBase`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Protocol, Sequence, runtime_checkable

import numpy as np
import torch

from albench.data.index import Annotation, ImageStore


@dataclass
class Detections:
    """Post-NMS detections of one image, in the image's pixel coordinates."""

    boxes: np.ndarray  # (k, 4) float32 xyxy
    scores: np.ndarray  # (k,) float32 confidence of the predicted class
    labels: np.ndarray  # (k,) int64 contiguous class index
    probs: np.ndarray  # (k, C) float32 class-probability rows (each sums to 1)

    @staticmethod
    def empty(num_classes: int) -> "Detections":
        return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                          np.zeros(0, np.int64), np.zeros((0, num_classes), np.float32))

    def __len__(self) -> int:
        return len(self.scores)


@dataclass
class FitReport:
    """What one ``fit`` did: epochs, iterations, seconds, the loss per epoch."""

    epochs: int
    iterations: int
    seconds: float
    losses: list[float] = field(default_factory=list)
    # inside the fit: extra heads (LL4AL: the per-image detection losses and the loss module)
    head_seconds: float = 0.0
    extra_seconds: float = 0.0  # inside the fit: terms on unlabeled images (semi-supervised)

    @property
    def aux_seconds(self) -> float:
        """Seconds of the fit spent outside the plain detection loss."""
        return self.head_seconds + self.extra_seconds


@dataclass(frozen=True)
class BackendSpec:
    """What rebuilds a backend in another process (all picklable): its registered name,
    class count, resolved options, device and enabled features. Images and weights travel
    separately (:func:`albench.backends.build_from_spec`)."""

    name: str
    num_classes: int
    options: dict
    device: str
    features: frozenset[str] = frozenset()


@runtime_checkable
class Backend(Protocol):
    """What the loop, the lab and strategies call on a detector adapter.

    ``capabilities`` names optional training-time features a strategy may ``enable``:
    ``"loss_head"`` (LL4AL's loss-prediction module, read with ``predict_loss``).
    ``fit`` can also use unlabeled images (``unlabeled`` ids with an
    :class:`~albench.backends.semi.UnsupConfig`): every backend supports that.
    ``deterministic_on_cuda`` declares what torch's strict deterministic algorithms cost
    on CUDA, which ``--deterministic auto`` follows (:mod:`albench.determinism`):
    ``"cheap: <why>"`` (auto turns them on), ``"slow: <why>"`` (auto leaves them off) or
    ``""`` (not measured: off).
    """

    name: str
    capabilities: frozenset[str]
    deterministic_on_cuda: str
    features: frozenset[str]
    num_classes: int
    opts: dict
    images: ImageStore
    device: torch.device

    def enable(self, features: frozenset[str]) -> None: ...

    def epochs(self, warm: bool) -> int: ...

    def spec(self) -> BackendSpec: ...

    def fit(self, labeled: Mapping[int, Annotation], seed: int, *,
            epochs: int | None = None, warm_start: bool = False, progress: object | None = None,
            unlabeled: Sequence[int] = (), unsup: object | None = None) -> FitReport: ...

    def predict(self, ids: Sequence[int]) -> list[Detections]: ...

    def embed(self, ids: Sequence[int]) -> np.ndarray: ...

    def predict_loss(self, ids: Sequence[int]) -> np.ndarray: ...

    def save(self, path: Path) -> None: ...

    def load(self, path: Path) -> None: ...

    def state(self) -> dict: ...

    def load_state(self, state: dict) -> None: ...

    def clone(self) -> "Backend": ...

    def recipe(self) -> dict: ...

    def weights(self) -> list: ...  # optional: what each local weights file gave (weights.Transfer)
