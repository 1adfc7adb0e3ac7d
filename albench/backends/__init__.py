"""Detector backends, registered by name.

A backend is built as ``cls(images, num_classes, options, device)``: ``images`` is the
dataset's :class:`~albench.data.index.ImageStore`, ``options`` a dict of the backend's
declared options (image size, batch, epochs, learning rate, local weights...). A backend
registers with its ``OPTIONS``, a dict of :class:`~albench.options.Option` (default, help,
bounds, choices): the only ``--backend-opt`` keys it takes, parsed by the one option policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from albench.backends.base import Backend, Detections, FitReport
from albench.errors import ConfigError
from albench.options import Option, parse_options


@dataclass(frozen=True)
class BackendInfo:
    name: str
    description: str
    cls: type
    options: dict[str, Option]  # the declared --backend-opt keys

    @property
    def defaults(self) -> dict[str, Any]:
        return {k: o.default for k, o in self.options.items()}


BACKENDS: dict[str, BackendInfo] = {}


def register_backend(name: str, description: str, options: dict[str, Option]):
    def wrap(cls: type) -> type:
        BACKENDS[name] = BackendInfo(name, description, cls, dict(options))
        cls.name = name
        return cls

    return wrap


def _import_builtin() -> None:
    from albench.backends import frcnn, yolo  # noqa: F401  (registration side effect)


def available() -> dict[str, BackendInfo]:
    _import_builtin()
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
