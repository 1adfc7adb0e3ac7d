"""Dataset loaders, registered by name. Each returns a :class:`DetectionDataset`.

A loader declares its options as keyword parameters with defaults; those are the only
keys ``--dataset-opt`` (and the data flags) may set for it. ``cache_dir`` is accepted by
every dataset and passed on to loaders that generate data.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

from albench.config import coerce
from albench.data.index import Annotation, DetectionDataset, ImageStore
from albench.errors import ConfigError

COMMON_OPTIONS = ("cache_dir",)  # accepted for every dataset (where generated data go)
_FLAGS = {"data_root": "--data-root", "ann_train": "--ann-train", "ann_test": "--ann-test",
          "images": "--images", "images_test": "--images-test", "cache_dir": "--cache-dir"}


@dataclass(frozen=True)
class LoaderInfo:
    name: str
    description: str
    load: Callable[..., DetectionDataset]

    @property
    def options(self) -> dict[str, Any]:
        """The loader's declared options and their defaults (its keyword parameters)."""
        return {p.name: p.default for p in inspect.signature(self.load).parameters.values()
                if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}


LOADERS: dict[str, LoaderInfo] = {}


def register_loader(name: str, description: str):
    """Decorator: ``@register_loader("voc", "...")`` on ``def load(*, key=default, ...)``."""

    def wrap(fn: Callable[..., DetectionDataset]) -> Callable[..., DetectionDataset]:
        LOADERS[name] = LoaderInfo(name, description, fn)
        return fn

    return wrap


def _import_builtin() -> None:
    from albench.data import coco, shapes, voc, yolo  # noqa: F401  (registration side effect)


def _info(name: str) -> LoaderInfo:
    _import_builtin()
    if name not in LOADERS:
        raise ConfigError(
            f"Unknown dataset {name!r}. Known datasets: {', '.join(sorted(LOADERS))}. "
            "Pass one of them with --dataset (see `python -m albench list`)."
        )
    return LOADERS[name]


def dataset_options(name: str, given: dict[str, Any]) -> dict[str, Any]:
    """``given`` checked against dataset ``name``'s options: unknown keys are an error
    listing the valid ones; text values of numeric options are parsed (named on error)."""
    declared = _info(name).options
    unknown = sorted(set(given) - set(declared) - set(COMMON_OPTIONS))
    if unknown:
        valid = ", ".join(f"{k}={v!r}" for k, v in sorted(declared.items()))
        flags = [_FLAGS[k] for k in unknown if k in _FLAGS]
        raise ConfigError(
            f"Dataset {name!r} has no option {', '.join(map(repr, unknown))}. Its options and "
            f"defaults: {valid}. Fix the --dataset-opt key or the preset"
            + (f", or drop {', '.join(flags)}, which {name!r} does not use." if flags else ".")
        )
    return {k: coerce(v, declared.get(k), f"--dataset-opt {k}") for k, v in given.items()}


def load_dataset(name: str, **options) -> DetectionDataset:
    """Load dataset ``name`` with its declared ``options`` (unknown keys are an error)."""
    info = _info(name)
    options = dataset_options(name, options)
    if "cache_dir" not in info.options:
        options.pop("cache_dir", None)
    return info.load(**options)


def available() -> dict[str, LoaderInfo]:
    _import_builtin()
    return dict(LOADERS)


__all__ = ["Annotation", "DetectionDataset", "ImageStore", "LOADERS", "register_loader",
           "load_dataset", "dataset_options", "available"]
