"""Dataset loaders, registered by name. Each returns a :class:`DetectionDataset`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from albench.data.index import Annotation, DetectionDataset, ImageStore
from albench.errors import ConfigError


@dataclass(frozen=True)
class LoaderInfo:
    name: str
    description: str
    load: Callable[..., DetectionDataset]


LOADERS: dict[str, LoaderInfo] = {}


def register_loader(name: str, description: str):
    """Decorator: ``@register_loader("voc", "...")`` on ``def load(**options) -> DetectionDataset``."""

    def wrap(fn: Callable[..., DetectionDataset]) -> Callable[..., DetectionDataset]:
        LOADERS[name] = LoaderInfo(name, description, fn)
        return fn

    return wrap


def _import_builtin() -> None:
    from albench.data import coco, shapes, voc  # noqa: F401  (registration side effect)


def load_dataset(name: str, **options) -> DetectionDataset:
    """Load dataset ``name`` with loader-specific ``options`` (unknown ones are ignored)."""
    _import_builtin()
    if name not in LOADERS:
        raise ConfigError(
            f"Unknown dataset {name!r}. Known datasets: {', '.join(sorted(LOADERS))}. "
            "Pass one of them with --dataset (see `python -m albench list`)."
        )
    return LOADERS[name].load(**options)


def available() -> dict[str, LoaderInfo]:
    _import_builtin()
    return dict(LOADERS)


__all__ = ["Annotation", "DetectionDataset", "ImageStore", "LOADERS", "register_loader",
           "load_dataset", "available"]
