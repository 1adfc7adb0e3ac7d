"""``BackendBase``: the sequence every detector adapter shares, written once.

``fit`` is a template: targets (labels, plus pseudo-labels of unlabeled images), the model
(fresh, or the current one when warm-starting), the loss of each mini-batch from the
subclass, LL4AL's loss head on top of it when enabled, the semi-supervised term on
unlabeled images, and :func:`~albench.backends.training.train` for data order, optimiser
and schedule. Inference is batched here too; the subclass's ``_infer`` gives one batch's
taps (pooled features, predicted losses, detections) and this class caches them per model.

A subclass implements:

- ``_build(seed, load_files)``: a fresh model (random init from ``seed``, or local weights);
- ``_attach_head(model)``: the loss-prediction head on the features it reads;
- ``_loss_fn()``: called once per fit, returns ``loss(ids, targets, rng, per_image) ->
  BatchLoss`` (per-image losses and the head's features when ``per_image``);
- ``_infer(ids, detect) -> Taps`` (called in eval mode without gradients);
- ``consistency(ids)``: the flip-consistency term of unlabeled ids;
- ``recipe()``.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from albench.backends.base import BackendSpec, Detections, FitReport
from albench.backends.loss_head import head_inputs, margin_ranking_loss
from albench.backends.semi import UnlabeledStream, UnsupConfig, pseudo_annotations, ramp_weight
from albench.backends.training import resolve_device, train
from albench.backends.weights import Transfer, load_weights_file, sha256_file
from albench.data.index import Annotation, ImageStore
from albench.errors import ConfigError


@dataclass
class BatchLoss:
    """A mini-batch's detection loss. With per-image losses asked for (LL4AL): the
    per-image losses, the feature maps the loss head reads and the seconds the per-image
    losses took (counted as head time)."""

    loss: torch.Tensor
    per_image: torch.Tensor | None = None
    feats: Sequence[torch.Tensor] = ()
    per_image_s: float = 0.0


@dataclass
class Taps:
    """One inference batch: a pooled feature row per image (float32), the loss head's
    output per image (None without a head) and the detections (None unless asked)."""

    embeddings: np.ndarray
    losses: np.ndarray | None = None
    detections: list[Detections] | None = None


LossFn = Callable[[list[int], Mapping[int, Annotation], np.random.Generator, bool], BatchLoss]


class BackendBase:
    """What every adapter shares: construction from the registry's arguments, ``enable``
    for the optional training-time features, the fit template, batched and cached
    inference (``predict``, ``embed``, ``predict_loss``), saving and loading (files and
    in-memory states), clones for strategies that train, and the spec that rebuilds it."""

    name = ""
    capabilities: frozenset[str] = frozenset()
    deterministic_on_cuda = ""  # see albench.backends.base.Backend
    weight_options: tuple[str, ...] = ()  # options that name local weights files

    def __init__(self, images: ImageStore, num_classes: int, options: dict, device: str = "cpu"):
        self.images = images
        self.num_classes = num_classes
        self.opts = dict(options)
        self.device = resolve_device(device)
        self.features: frozenset[str] = frozenset()
        self.model: torch.nn.Module | None = None
        self._transfers: dict[str, Transfer] = {}
        self._fresh_caches()

    def enable(self, features: frozenset[str]) -> None:
        """Attach the training-time features a strategy requires (see ``capabilities``)."""
        missing = sorted(set(features) - set(self.capabilities))
        if missing:
            raise ConfigError(f"Backend {self.name!r} does not offer {missing}; the strategy "
                              f"needs them. It offers: {sorted(self.capabilities) or 'nothing extra'}.")
        self.features = self.features | frozenset(features)

    def epochs(self, warm: bool) -> int:
        """Epochs of a fit: a warm-started one (``warm``) or one from initialisation."""
        return self.opts["warm_epochs" if warm else "epochs"]

    def spec(self) -> BackendSpec:
        return BackendSpec(self.name, self.num_classes, dict(self.opts), str(self.device),
                           frozenset(self.features))

    # ------------------------------------------------------------ local weights
    def weights(self) -> list[Transfer]:
        """What each local weights file gives a fresh model (tensors transferred, the
        file's sha256), in option order; empty without weights. The first call builds one
        model to count, which also refuses a file that does not fit before any training."""
        given = [k for k in self.weight_options if self.opts.get(k)]
        if given and any(k not in self._transfers for k in given):
            self._build(0)
        return [self._transfers[k] for k in given]

    def _load_weights(self, module: torch.nn.Module, option: str, configured: str = "") -> None:
        """``_build``'s loader: ``module`` gets the file of ``option``; the count is kept."""
        self._transfers[option] = load_weights_file(module, Path(self.opts[option]), option,
                                                    configured=configured)

    def _weights_recipe(self) -> dict:
        """``{option}_sha256`` of each weights file: a recipe (and so the round-0 cache key
        and the manifest) names the bytes, not only a path."""
        return {f"{k}_sha256": sha256_file(self.opts[k]) for k in self.weight_options
                if self.opts.get(k)}

    # ------------------------------------------------------------ subclass hooks
    def _build(self, seed: int, load_files: bool = True) -> torch.nn.Module:
        raise NotImplementedError

    def _attach_head(self, model: torch.nn.Module) -> None:
        raise NotImplementedError

    def _loss_fn(self) -> LossFn:
        raise NotImplementedError

    def _infer(self, ids: list[int], detect: bool) -> Taps:
        raise NotImplementedError

    def consistency(self, ids: Sequence[int]) -> torch.Tensor:
        """The flip-consistency term of unlabeled ``ids`` under the current model."""
        raise NotImplementedError

    def recipe(self) -> dict:
        raise NotImplementedError

    def _new_model(self, seed: int, load_files: bool = True) -> torch.nn.Module:
        """``_build`` plus the loss head when enabled, on the device."""
        model = self._build(seed, load_files)
        if "loss_head" in self.features:
            self._attach_head(model)
        return model.to(self.device)

    # ------------------------------------------------------------ training
    def fit(self, labeled: Mapping[int, Annotation], seed: int, *, epochs: int | None = None,
            warm_start: bool = False, progress=None, unlabeled: Sequence[int] = (),
            unsup: UnsupConfig | None = None, lr_scale: float = 1.0,
            stream: Mapping[int, Annotation] | None = None) -> FitReport:
        """Train on ``labeled`` (plus ``unlabeled`` through ``unsup``) from a fresh model
        seeded by ``seed``, or from the current one when ``warm_start``. ``lr_scale``
        multiplies the learning rate; ``stream`` (labeled images, e.g. pseudo-labelled) and,
        with ``unsup.stream``, the pseudo-labelled ``unlabeled`` come as an extra per-step
        batch of ``unsup.batch`` images: the labeled batches and step count stay those of
        ``labeled`` alone."""
        targets, extra_ids = self._with_unlabeled(labeled, unlabeled, unsup)
        streamed = dict(stream or {})
        if getattr(unsup, "stream", False) and getattr(unsup, "mode", "none") == "pseudo":
            streamed.update({i: a for i, a in targets.items() if i not in labeled})
            targets = {i: a for i, a in targets.items() if i in labeled}
        if self.model is None or not warm_start:
            self.model = self._new_model(seed)
        self.model.to(self.device)
        self._clear_caches()
        epochs = epochs or self.epochs(warm_start)
        batch_loss = self._loss_fn()
        use_head = "loss_head" in self.features
        head_s = 0.0

        def step(batch_ids: list[int], rng: np.random.Generator, epoch: int) -> torch.Tensor:
            nonlocal head_s
            out = batch_loss(batch_ids, targets, rng, use_head)
            if not use_head:
                return out.loss
            # LL4AL: the margin ranking loss of the head against the detached per-image losses
            t0 = time.perf_counter()
            pred = self.model.loss_head(head_inputs(list(out.feats), epoch, epochs))
            loss = out.loss + 1.0 * margin_ranking_loss(pred, out.per_image.detach())
            head_s += out.per_image_s + time.perf_counter() - t0
            return loss

        extra = (self._stream_hook(streamed, unsup, seed, batch_loss) if streamed
                 else self._consistency_hook(extra_ids, unsup, seed))
        torch.manual_seed(seed)
        report = train(self.model, sorted(targets), step, epochs=epochs,
                       batch_size=self.opts["batch"],
                       lr=self.opts["lr"] if lr_scale == 1.0 else self.opts["lr"] * lr_scale,
                       weight_decay=self.opts["weight_decay"], seed=seed,
                       optimizer=self.opts["optimizer"], progress=progress, extra=extra,
                       amp=self.opts["amp"])
        report.head_seconds = head_s
        return report

    def _with_unlabeled(self, labeled: Mapping[int, Annotation], unlabeled: Sequence[int],
                        unsup: object | None) -> tuple[dict[int, Annotation], list[int]]:
        """The targets a fit trains on and the ids its consistency term uses.

        ``pseudo``: the current model's detections (score >= the threshold) on
        ``unlabeled`` become their targets, read before any training. ``consistency``:
        ``unlabeled`` feed the flip-consistency hook. ``none``/no config: ignored.
        """
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
        if not ids or unsup is None:
            return None
        stream = UnlabeledStream(ids, unsup.batch, seed)  # type: ignore[union-attr]
        share = stream.batch / self.opts["batch"] if getattr(unsup, "stream", False) else 1.0

        def extra(it: int, total: int) -> torch.Tensor:
            w = ramp_weight(it, total, unsup.weight, unsup.ramp)  # type: ignore[union-attr]
            return w * self.consistency(stream.next()) if share == 1.0 else \
                share * w * self.consistency(stream.next())

        return extra

    def _stream_hook(self, targets: Mapping[int, Annotation], unsup: object | None, seed: int,
                     batch_loss: LossFn):
        """``extra`` for a supervised stream: each step, the loss of the next ``unsup.batch``
        of ``targets``' images, weighted per image like the labeled batch (own generator)."""
        stream = UnlabeledStream(sorted(targets), getattr(unsup, "batch", 8), seed)
        rng = np.random.default_rng(np.random.SeedSequence([seed, 3141]))
        share = stream.batch / self.opts["batch"]

        def extra(it: int, total: int) -> torch.Tensor:
            return share * batch_loss(stream.next(), targets, rng, False).loss

        return extra

    # ------------------------------------------------------------ inference
    @torch.no_grad()
    def _run(self, ids: Sequence[int], detect: bool) -> list[Detections]:
        """``_infer`` over ``ids`` in batches of ``infer_batch``; caches each image's
        embedding and predicted loss; the detections when ``detect``."""
        assert self.model is not None, "fit() or load() first"
        self.model.eval()
        step = max(1, int(self.opts["infer_batch"]))
        out: list[Detections] = []
        for s in range(0, len(ids), step):
            chunk = [int(i) for i in ids[s:s + step]]
            taps = self._infer(chunk, detect)
            for j, image_id in enumerate(chunk):
                self._emb_cache[image_id] = taps.embeddings[j]
                if taps.losses is not None:
                    self._loss_cache[image_id] = float(taps.losses[j])
            out.extend(taps.detections or ())
        return out

    def predict(self, ids: Sequence[int]) -> list[Detections]:
        return self._run(ids, detect=True)

    def embed(self, ids: Sequence[int]) -> np.ndarray:
        self._run([int(i) for i in ids if int(i) not in self._emb_cache], detect=False)
        return np.stack([self._emb_cache[int(i)] for i in ids]).astype(np.float32)

    def predict_loss(self, ids: Sequence[int]) -> np.ndarray:
        """The loss-prediction head's output per image (``enable({"loss_head"})`` first)."""
        if self.model is None or not hasattr(self.model, "loss_head"):
            raise ConfigError(f"This {self.name} model has no loss-prediction head: a strategy "
                              "that requires 'loss_head' must enable it before training.")
        self._run([int(i) for i in ids if int(i) not in self._loss_cache], detect=False)
        return np.array([self._loss_cache[int(i)] for i in ids], np.float32)

    def _clear_caches(self) -> None:
        """Forget per-model caches (embeddings, predicted losses); image tensors stay."""
        self._emb_cache.clear()
        self._loss_cache.clear()

    def _fresh_caches(self) -> None:
        """Per-model caches of its own (a clone's; shared image caches may stay shared)."""
        self._emb_cache: dict[int, np.ndarray] = {}
        self._loss_cache: dict[int, float] = {}

    # ------------------------------------------------------------ states and files
    def state(self) -> dict[str, torch.Tensor]:
        """An in-memory copy of the model's weights (CPU tensors, detached)."""
        assert self.model is not None, "fit() or load() first"
        return {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}

    def load_state(self, state: Mapping[str, torch.Tensor], source: str = "a saved state") -> None:
        """Replace the model by one holding ``state`` (head attached when ``state`` has one)."""
        has_head = any(k.startswith("loss_head.") for k in state)
        if "loss_head" in self.features and not has_head:
            raise ConfigError(f"{source} holds a {self.name} model without the loss-prediction "
                              "head that this run's strategy needs; it cannot resume from it.")
        if self.model is not None and self.model.state_dict().keys() == state.keys():
            self.model.load_state_dict(state)  # same architecture: restore in place
            self._clear_caches()
            return
        model = self._new_model(0, load_files=False)
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
        twin._transfers = dict(self._transfers)
        twin.model = copy.deepcopy(self.model) if self.model is not None else None
        twin._fresh_caches()
        return twin
