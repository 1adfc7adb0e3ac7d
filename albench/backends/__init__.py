"""Detector backends, registered by name.

A backend is built as ``cls(images, num_classes, options, device)``: ``images`` is the
dataset's :class:`~albench.data.index.ImageStore`, ``options`` a dict of the backend's
declared options (image size, batch, epochs, learning rate, local weights...). A backend
registers with its options, a dict of :class:`~albench.options.Option` (default, help,
bounds, choices): the only ``--backend-opt`` keys it takes, parsed by the one option policy.
The built-in backends are listed in :data:`BACKENDS` as ``"module:Class"`` and imported on
first use (their options live in :mod:`albench.backends.options`, so listing and checking
them imports no detector framework); :func:`register_backend` adds one's own.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from albench.backends.base import Backend, BackendSpec, Detections, FitReport
from albench.backends.options import FRCNN_OPTIONS, YOLO_OPTIONS
from albench.errors import ConfigError
from albench.options import Option, parse_options


@dataclass(frozen=True)
class BackendInfo:
    """A registered backend: its name, a line for ``albench list``, and its class, given
    as the class or as ``"module:Class"`` (imported on first use, so that importing the
    registry imports no detector framework)."""

    name: str
    description: str
    target: type | str
    options: dict[str, Option]  # the declared --backend-opt keys

    @property
    def cls(self) -> type:
        if isinstance(self.target, type):
            return self.target
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)

    @property
    def defaults(self) -> dict[str, Any]:
        return {k: o.default for k, o in self.options.items()}


BACKENDS: dict[str, BackendInfo] = {
    "yolo": BackendInfo("yolo", "ultralytics YOLO (v8/11 yaml, random init or local weights), "
                        "trained by albench's plain loop with ultralytics' detection loss",
                        "albench.backends.yolo:YoloBackend", YOLO_OPTIONS),
    "frcnn": BackendInfo("frcnn", "torchvision Faster R-CNN FPN (MobileNetV3 or ResNet-50; "
                         "random init or local weights), trained by albench's plain loop",
                         "albench.backends.frcnn:FasterRCNNBackend", FRCNN_OPTIONS),
}


def register_backend(name: str, description: str, options: dict[str, Option]):
    """Class decorator registering a backend of one's own under ``name`` with its declared
    options (built-ins are listed in :data:`BACKENDS` as ``"module:Class"``)."""
    def wrap(cls: type) -> type:
        cls.name, cls.options = name, dict(options)
        BACKENDS[name] = BackendInfo(name, description, cls, dict(options))
        return cls

    return wrap


def available() -> dict[str, BackendInfo]:
    return dict(BACKENDS)


def backend_options(name: str, given: dict[str, Any] | None = None, *,
                    fill: bool = True) -> dict[str, Any]:
    """``given`` parsed against backend ``name``'s declared options (text or typed; unknown
    keys, kinds, bounds and choices are errors); with ``fill``, the defaults of the others."""
    info = _info(name)
    parsed = parse_options(info.options, given or {}, "--backend-opt", f"backend {name!r}",
                           hint="Fix the --backend-opt key or the preset (see `python -m "
                                "albench list`).")
    return {**info.defaults, **parsed} if fill else parsed


def build_backend(name: str, images, num_classes: int, options: dict[str, Any] | None = None,
                  device: str = "cpu") -> Backend:
    info = _info(name)
    return info.cls(images, num_classes, backend_options(name, options), device)


def build_from_spec(spec: BackendSpec, images) -> Backend:
    """The backend ``spec`` describes (:meth:`Backend.spec`), over ``images``, with the
    spec's features enabled; no model yet (``load_state`` or ``fit`` gives it one)."""
    backend = build_backend(spec.name, images, spec.num_classes, spec.options, spec.device)
    if spec.features:
        backend.enable(spec.features)
    return backend


def _info(name: str) -> BackendInfo:
    if name not in BACKENDS:
        raise ConfigError(
            f"Unknown backend {name!r}. Known backends: {', '.join(sorted(BACKENDS))}. "
            "Pass one of them with --backend (see `python -m albench list`)."
        )
    return BACKENDS[name]


__all__ = ["Backend", "BackendSpec", "Detections", "FitReport", "register_backend",
           "build_backend", "build_from_spec", "backend_options", "available", "BACKENDS"]
