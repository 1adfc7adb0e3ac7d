"""The Backend protocol: one adapter per detector framework, same surface for the loop.

A backend sees images (through the dataset's :class:`ImageStore`) and the labels the
loop hands it in ``fit``; it never sees ground truth of unlabeled images.
"""

from __future__ import annotations

import copy
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
    head_seconds: float = 0.0   # inside the fit: extra heads (LL4AL's loss module)
    extra_seconds: float = 0.0  # inside the fit: terms on unlabeled images (semi-supervised)

    @property
    def aux_seconds(self) -> float:
        """Seconds of the fit spent outside the plain detection loss."""
        return self.head_seconds + self.extra_seconds


@runtime_checkable
class Backend(Protocol):
    """What the loop, the lab and strategies call on a detector adapter.

    ``capabilities`` names optional training-time features a strategy may ``enable``:
    ``"loss_head"`` (LL4AL's loss-prediction module, read with ``predict_loss``).
    ``fit`` can also use unlabeled images (``unlabeled`` ids with an
    :class:`~albench.backends.semi.UnsupConfig`): every backend supports that.
    """

    name: str
    capabilities: frozenset[str]
    features: frozenset[str]
    num_classes: int
    opts: dict

    def enable(self, features: frozenset[str]) -> None: ...

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


class BackendBase:
    """What every adapter shares: construction from the registry's arguments, ``enable``
    for the optional training-time features, saving and loading (files and in-memory
    states), clones for strategies that train, and loading of local weight files.

    A subclass provides ``_build(seed, load_files)`` (a fresh model on the device, loss
    head attached when enabled), ``_attach_head(model)`` and ``_clear_caches()``.
    """

    name = ""
    capabilities: frozenset[str] = frozenset()

    def __init__(self, images: ImageStore, num_classes: int, options: dict, device: str = "cpu"):
        from albench.backends.training import resolve_device

        self.images = images
        self.num_classes = num_classes
        self.opts = dict(options)
        self.device = resolve_device(device)
        self.features: frozenset[str] = frozenset()
        self.model: torch.nn.Module | None = None

    def enable(self, features: frozenset[str]) -> None:
        """Attach the training-time features a strategy requires (see ``capabilities``)."""
        from albench.errors import ConfigError

        missing = sorted(set(features) - set(self.capabilities))
        if missing:
            raise ConfigError(f"Backend {self.name!r} does not offer {missing}; the strategy "
                              f"needs them. It offers: {sorted(self.capabilities) or 'nothing extra'}.")
        self.features = self.features | frozenset(features)

    # ------------------------------------------------------------ subclass hooks
    def _build(self, seed: int, load_files: bool = True) -> torch.nn.Module:
        raise NotImplementedError

    def _attach_head(self, model: torch.nn.Module) -> None:
        raise NotImplementedError

    def _clear_caches(self) -> None:
        """Forget per-model caches (embeddings, predicted losses); image tensors stay."""

    def recipe(self) -> dict:
        raise NotImplementedError

    # ------------------------------------------------------------ states and files
    def state(self) -> dict[str, torch.Tensor]:
        """An in-memory copy of the model's weights (CPU tensors, detached)."""
        assert self.model is not None, "fit() or load() first"
        return {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}

    def load_state(self, state: Mapping[str, torch.Tensor], source: str = "a saved state") -> None:
        """Replace the model by one holding ``state`` (head attached when ``state`` has one)."""
        from albench.errors import ConfigError

        has_head = any(k.startswith("loss_head.") for k in state)
        if "loss_head" in self.features and not has_head:
            raise ConfigError(f"{source} holds a {self.name} model without the loss-prediction "
                              "head that this run's strategy needs; it cannot resume from it.")
        if self.model is not None and self.model.state_dict().keys() == state.keys():
            self.model.load_state_dict(state)  # same architecture: restore in place
            self._clear_caches()
            return
        model = self._build(0, load_files=False)
        if has_head and not hasattr(model, "loss_head"):
            self._attach_head(model)
        model.load_state_dict(state)
        self.model = model.to(self.device)
        self._clear_caches()

    def save(self, path: Path) -> None:
        from albench.results import atomic_torch_save

        assert self.model is not None, "fit() or load() first"
        atomic_torch_save({"recipe": self.recipe(), "state_dict": self.model.state_dict()}, path)

    def load(self, path: Path) -> None:
        blob = torch.load(path, map_location="cpu", weights_only=False)
        self.load_state(blob["state_dict"], source=str(path))

    def clone(self) -> "BackendBase":
        """A second adapter over the same images with a deep copy of the model: training
        or loading the clone leaves this one's model bitwise unchanged."""
        twin = copy.copy(self)
        twin.opts = dict(self.opts)
        twin.model = copy.deepcopy(self.model) if self.model is not None else None
        twin._fresh_caches()
        return twin

    def _fresh_caches(self) -> None:
        """Give a clone its own per-model caches (shared image caches may stay shared)."""

    # ------------------------------------------------------------ unlabeled images
    def _with_unlabeled(self, labeled: Mapping[int, Annotation], unlabeled: Sequence[int],
                        unsup: object | None) -> tuple[dict[int, Annotation], list[int]]:
        """The targets a fit trains on and the ids its consistency term uses.

        ``pseudo``: the current model's detections (score >= the threshold) on
        ``unlabeled`` become their targets, read before any training. ``consistency``:
        ``unlabeled`` feed the flip-consistency hook. ``none``/no config: ignored.
        """
        from albench.backends.semi import pseudo_annotations

        targets = dict(labeled)
        unlabeled = [int(i) for i in unlabeled if int(i) not in labeled]
        mode = getattr(unsup, "mode", "none") if unlabeled else "none"
        if mode == "pseudo":
            if self.model is None:
                raise RuntimeError("pseudo-labels need a model: fit() or load() first")
            dets = dict(zip(unlabeled, self.predict(unlabeled)))
            targets.update(pseudo_annotations(dets, unsup.pseudo_threshold))  # type: ignore[union-attr]
            return targets, []
        if "loss_head" in self.features and self.model is not None and not hasattr(self.model, "loss_head"):
            self._attach_head(self.model)
        return targets, (unlabeled if mode == "consistency" else [])

    def _consistency_hook(self, ids: Sequence[int], unsup: object | None, seed: int):
        """``extra(it, total)`` for :func:`~albench.backends.training.train`: the ramped
        flip-consistency term on the next batch of unlabeled ``ids`` (None without ids)."""
        from albench.backends.semi import UnlabeledStream, ramp_weight

        if not ids or unsup is None:
            return None
        stream = UnlabeledStream(ids, unsup.batch, seed)  # type: ignore[union-attr]

        def extra(it: int, total: int) -> torch.Tensor:
            w = ramp_weight(it, total, unsup.weight, unsup.ramp)  # type: ignore[union-attr]
            return w * self.consistency(stream.next())

        return extra

    def consistency(self, ids: Sequence[int]) -> torch.Tensor:
        """The flip-consistency term of unlabeled ``ids`` under the current model."""
        raise NotImplementedError


def load_weights_file(module: torch.nn.Module, path: Path, what: str = "weights") -> None:
    """Load every tensor of a local checkpoint whose name and shape match ``module``.

    Accepts a bare state_dict, a module, or a checkpoint dict holding one under
    ``state_dict``, ``model`` or ``ema`` (ultralytics and torchvision files). Nothing is
    downloaded; a missing file or one sharing no layer is a :class:`ConfigError`.
    """
    from albench.errors import ConfigError

    if not Path(path).is_file():
        raise ConfigError(f"{what} file {path} does not exist. Pass a local file with "
                          f"--backend-opt {what}=PATH; albench never downloads weights.")
    blob = torch.load(path, map_location="cpu", weights_only=False)
    for key in ("ema", "model", "state_dict"):
        if isinstance(blob, dict) and blob.get(key) is not None:
            blob = blob[key]
            break
    if isinstance(blob, torch.nn.Module):
        blob = blob.float().state_dict()
    own = module.state_dict()
    match = {k: v for k, v in dict(blob).items()
             if k in own and hasattr(v, "shape") and tuple(v.shape) == tuple(own[k].shape)}
    if not match:
        raise ConfigError(f"{what} file {path} shares no layer with the configured model "
                          "(check the backend's model/arch option).")
    module.load_state_dict(match, strict=False)
