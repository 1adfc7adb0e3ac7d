"""Detector backends, registered by name.

A backend is built as ``cls(images, num_classes, options, device)``: ``images`` is the
dataset's :class:`~albench.data.index.ImageStore`, ``options`` a dict of the backend's
declared options (image size, batch, epochs, learning rate, local weights...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from albench.backends.base import Backend, Detections, FitReport
from albench.errors import ConfigError


@dataclass(frozen=True)
class BackendInfo:
    name: str
    description: str
    cls: type
    defaults: dict[str, Any]


BACKENDS: dict[str, BackendInfo] = {}


def register_backend(name: str, description: str, defaults: dict[str, Any]):
    def wrap(cls: type) -> type:
        BACKENDS[name] = BackendInfo(name, description, cls, dict(defaults))
        cls.name = name
        return cls

    return wrap


def _import_builtin() -> None:
    from albench.backends import frcnn, yolo  # noqa: F401  (registration side effect)


def available() -> dict[str, BackendInfo]:
    _import_builtin()
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


def _info(name: str) -> BackendInfo:
    _import_builtin()
    if name not in BACKENDS:
        raise ConfigError(
            f"Unknown backend {name!r}. Known backends: {', '.join(sorted(BACKENDS))}. "
            "Pass one of them with --backend (see `python -m albench list`)."
        )
    return BACKENDS[name]


__all__ = ["Backend", "Detections", "FitReport", "register_backend", "build_backend",
           "backend_options", "available", "BACKENDS"]
