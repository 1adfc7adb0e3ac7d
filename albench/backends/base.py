"""The Backend protocol: one adapter per detector framework, same surface for the loop.

A backend sees images (through the dataset's :class:`ImageStore`) and the labels the
loop hands it in ``fit``; it never sees ground truth of unlabeled images.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Protocol, Sequence, runtime_checkable

import numpy as np

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
    head_seconds: float = 0.0  # time spent on extra heads (e.g. LL4AL's loss module)


@runtime_checkable
class Backend(Protocol):
    """What every detector adapter offers.

    ``capabilities`` names optional features: ``"loss_head"`` (a loss-prediction module
    can be attached with ``heads={"loss_head"}`` and read with ``predict_loss``),
    ``"consistency"`` (semi-supervised training on unlabeled images).
    """

    name: str
    capabilities: frozenset[str]
    num_classes: int

    def fit(self, labeled: Mapping[int, Annotation], seed: int, *,
            epochs: int | None = None, warm_start: bool = False,
            progress: object | None = None) -> FitReport: ...

    def predict(self, ids: Sequence[int]) -> list[Detections]: ...

    def embed(self, ids: Sequence[int]) -> np.ndarray: ...

    def save(self, path: Path) -> None: ...

    def load(self, path: Path) -> None: ...

    def recipe(self) -> dict: ...


class BackendBase:
    """What every adapter shares: construction from the registry's arguments and
    ``enable`` for the optional training-time features named in ``capabilities``."""

    name = ""
    capabilities: frozenset[str] = frozenset()

    def __init__(self, images: ImageStore, num_classes: int, options: dict, device: str = "cpu"):
        from albench.backends.training import resolve_device

        self.images = images
        self.num_classes = num_classes
        self.opts = dict(options)
        self.device = resolve_device(device)
        self.features: frozenset[str] = frozenset()

    def enable(self, features: frozenset[str]) -> None:
        """Attach the training-time features a strategy requires (see ``capabilities``)."""
        from albench.errors import ConfigError

        missing = sorted(set(features) - set(self.capabilities))
        if missing:
            raise ConfigError(f"Backend {self.name!r} does not offer {missing}; the strategy "
                              f"needs them. It offers: {sorted(self.capabilities) or 'nothing extra'}.")
        self.features = self.features | frozenset(features)
