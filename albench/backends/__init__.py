"""Detector backends, registered by name.

A backend is built as ``cls(images, num_classes, options, device)``: ``images`` is the
dataset's :class:`~albench.data.index.ImageStore`, ``options`` a dict of the backend's
declared options (image size, batch, epochs, learning rate, local weights...). The
built-in backends are listed in :data:`BACKENDS` as ``"module:Class"`` and imported on
first use; :func:`register_backend` adds one's own.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from albench.backends.base import Backend, BackendSpec, Detections, FitReport
from albench.errors import ConfigError


@dataclass(frozen=True)
class BackendInfo:
    """A registered backend: its name, a line for ``albench list``, and its class, given
    as the class or as ``"module:Class"`` (imported on first use, so that importing the
    registry imports no detector framework)."""

    name: str
    description: str
    target: type | str

    @property
    def cls(self) -> type:
        if isinstance(self.target, type):
            return self.target
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)

    @property
    def defaults(self) -> dict[str, Any]:
        return dict(self.cls.defaults)


BACKENDS: dict[str, BackendInfo] = {
    "yolo": BackendInfo("yolo", "ultralytics YOLO (v8/11 yaml, random init or local weights), "
                        "trained by albench's plain loop with ultralytics' detection loss",
                        "albench.backends.yolo:YoloBackend"),
    "frcnn": BackendInfo("frcnn", "torchvision Faster R-CNN FPN (MobileNetV3 or ResNet-50; "
                         "random init or local weights), trained by albench's plain loop",
                         "albench.backends.frcnn:FasterRCNNBackend"),
}


def register_backend(name: str, description: str, defaults: dict[str, Any]):
    """Class decorator registering a backend of one's own under ``name`` (built-ins are
    listed in :data:`BACKENDS` as ``"module:Class"``)."""
    def wrap(cls: type) -> type:
        cls.name, cls.defaults = name, dict(defaults)
        BACKENDS[name] = BackendInfo(name, description, cls)
        return cls

    return wrap


def available() -> dict[str, BackendInfo]:
    return dict(BACKENDS)


def backend_options(name: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The backend's defaults updated with ``overrides``; unknown keys are an error."""
    info = _info(name)
    opts = dict(info.defaults)
    for key, value in (overrides or {}).items():
        if key not in opts:
            raise ConfigError(
                f"Backend {name!r} has no option {key!r}. Its options and defaults: "
                + ", ".join(f"{k}={v!r}" for k, v in sorted(info.defaults.items()))
                + ". Fix the --backend-opt key or the preset."
            )
        opts[key] = value
    return opts


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
