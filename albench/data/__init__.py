"""Dataset loaders, registered by name. Each returns a :class:`DetectionDataset`.

A loader is registered with its options, a dict of :class:`~albench.options.Option`: those
are the only keys ``--dataset-opt`` (and the data flags) may set for it, parsed by the one
option policy before anything is loaded. ``cache_dir`` is accepted by every
dataset and passed on to loaders that declare it (those that generate data).

The built-in loaders are registered here as ``"module:function"`` strings, imported on
first use, so a loader module never imports this package (nor anything that imports it).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from albench.data.index import Annotation, DetectionDataset, ImageStore
from albench.errors import ConfigError
from albench.options import Option, parse_options

COMMON_OPTIONS = {"cache_dir": Option(None, "where generated data go (--cache-dir)", kind=str)}
_FLAGS = {"data_root": "--data-root", "ann_train": "--ann-train", "ann_test": "--ann-test",
          "images": "--images", "images_test": "--images-test", "cache_dir": "--cache-dir"}


def _resolve(target: Any) -> Any:
    """``"package.module:function"`` imported; a function as it is."""
    if not isinstance(target, str):
        return target
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class LoaderInfo:
    name: str
    description: str
    target: Callable[..., DetectionDataset] | str  # the loader, or "module:function"
    options: dict[str, Option]  # its keyword options (the common cache_dir aside)

    @property
    def load(self) -> Callable[..., DetectionDataset]:
        return _resolve(self.target)


LOADERS: dict[str, LoaderInfo] = {}


def register_loader(name: str, description: str, load: Callable[..., DetectionDataset] | str,
                    options: dict[str, Option]) -> LoaderInfo:
    """Register loader ``name``: ``load`` (a function, or ``"module:function"`` imported on
    first use) takes the keyword options that ``options`` declares."""
    LOADERS[name] = LoaderInfo(name, description, load, dict(options))
    return LOADERS[name]


# The built-in loaders. Defaults that mirror a loader module's constant (checked by the
# tests): MAX_DROPPED_SHARE of albench.data.checks, len(CLASSES) of albench.data.scenes,
# FOLDER_DEFAULTS of albench.data.vocfolder, YEARS_DEFAULT of albench.data.voc.
_CACHE = COMMON_OPTIONS["cache_dir"]
_MAX_DROPPED = Option(0.05, "largest share of a file's boxes that may be dropped (outside "
                      "their image, degenerate) before the load stops", low=0, high=1)
_TEST_IN_POOL = Option(False, "accept test images that are also in the pool (a train/test "
                       "leak), with a warning")
register_loader("shapes", "Synthetic filled shapes on clutter: long-tailed classes, "
                "near-duplicate frames, small objects; generated offline, no download",
                "albench.data.shapes:load", {
                    "cache_dir": Option(None, "where the generated images go (default "
                                        "$ALBENCH_CACHE/datasets)", kind=str),
                    "seed": Option(0, "generator seed of the scenes", low=0),
                    "image_size": Option(128, "square image side in pixels", low=32),
                    "pool_size": Option(1000, "pool images", low=1),
                    "test_size": Option(250, "test images", low=1),
                    "num_classes": Option(6, "shape classes", low=1, high=8),
                    "imbalance": Option(1.8, "Zipf exponent of the pool's class frequencies "
                                        "(the test split: half of it)", low=0),
                    "duplication": Option(0.5, "share of pool images in groups of 2-10 "
                                          "near-duplicate frames", low=0, high=1)})
register_loader("coco", "COCO 2017: pool = train2017 images with boxes (117,266), test = "
                "val2017 (5,000); 80 classes. Root: --data-root or $ALBENCH_COCO_ROOT.",
                "albench.data.coco:load_coco", {
                    "data_root": Option(None, "COCO 2017 root (--data-root; default "
                                        "$ALBENCH_COCO_ROOT)", kind=str),
                    "keep_empty": Option(False, "keep train2017 images without boxes in the pool"),
                    "max_dropped": _MAX_DROPPED, "cache_dir": _CACHE})
register_loader("coco-json", "Your own COCO-format data: --ann-train and --ann-test annotation "
                "files, --images (and --images-test) folders.",
                "albench.data.coco:load_coco_json", {
                    "ann_train": Option(None, "COCO-format annotation file of the pool "
                                        "(--ann-train)", kind=str),
                    "ann_test": Option(None, "COCO-format annotation file of the test split "
                                       "(--ann-test)", kind=str),
                    "images": Option(None, "folder the file_name entries are relative to "
                                     "(--images)", kind=str),
                    "images_test": Option(None, "folder of the test images (--images-test; "
                                          "default: --images)", kind=str),
                    "allow_test_in_pool": _TEST_IN_POOL,
                    "max_dropped": _MAX_DROPPED, "cache_dir": _CACHE})
register_loader("voc", "PASCAL VOC: a VOCdevkit root (pool = VOC2007+2012 trainval, 16,551; "
                "test = VOC2007 test, 4,952; 20 classes) or a single VOC folder (Annotations/ + "
                "JPEGImages/, your own data). Root: --data-root or $ALBENCH_VOC_ROOT.",
                "albench.data.voc:load_voc", {
                    "data_root": Option(None, "VOCdevkit root or VOC folder (--data-root; "
                                        "default $ALBENCH_VOC_ROOT)", kind=str),
                    "years": Option("2007,2012", "VOCdevkit only: VOC years whose trainval "
                                    "forms the pool, comma-separated"),
                    "classes": Option(None, "VOC folder only: class names, comma-separated, in "
                                      "label order (default: read from the XML files)", kind=str),
                    "train": Option(None, "VOC folder only: list file of the pool, a name in "
                                    "ImageSets/Main or a path", kind=str),
                    "test": Option(None, "VOC folder only: list file of the test split, a name "
                                   "in ImageSets/Main or a path", kind=str),
                    "test_share": Option(0.2, "VOC folder only: share of images in the test "
                                         "split when no list file is used", low=0, high=1,
                                         exclusive=True),
                    "seed": Option(0, "VOC folder only: seed of that split", low=0),
                    "allow_test_in_pool": _TEST_IN_POOL,
                    "max_dropped": _MAX_DROPPED, "cache_dir": _CACHE})
register_loader("yolo", "An ultralytics data.yaml (YOLO txt labels; train/val/test as folders, "
                "list files or lists): your own data. --data-root DATA.yaml.",
                "albench.data.yolo:load_yolo", {
                    "data_root": Option(None, "the data.yaml, or the folder holding it "
                                        "(--data-root)", kind=str),
                    "test_split": Option("auto", "which split is the test split (auto: test if "
                                         "the yaml has one, else val)", ("auto", "test", "val")),
                    "allow_test_in_pool": _TEST_IN_POOL,
                    "max_dropped": _MAX_DROPPED, "cache_dir": _CACHE})


def _info(name: str) -> LoaderInfo:
    if name not in LOADERS:
        raise ConfigError(
            f"Unknown dataset {name!r}. Known datasets: {', '.join(sorted(LOADERS))}. "
            "Pass one of them with --dataset (see `python -m albench list`)."
        )
    return LOADERS[name]


def dataset_options(name: str, given: dict[str, Any]) -> dict[str, Any]:
    """``given`` parsed against dataset ``name``'s declared options (text or typed): an
    unknown key is an error suggesting the near ones; only the given keys come back."""
    declared = {**COMMON_OPTIONS, **_info(name).options}
    flags = [_FLAGS[k] for k in given if k not in declared and k in _FLAGS]
    hint = "Fix the --dataset-opt key or the preset" + (
        f", or drop {', '.join(flags)}, which {name!r} does not use." if flags else ".")
    return parse_options(declared, given, "--dataset-opt", f"dataset {name!r}", hint=hint)


def load_dataset(name: str, **options: Any) -> DetectionDataset:
    """Load dataset ``name`` with its declared ``options`` (unknown keys are an error)."""
    info = _info(name)
    options = dataset_options(name, options)
    if "cache_dir" not in info.options:
        options.pop("cache_dir", None)
    return info.load(**options)


def available() -> dict[str, LoaderInfo]:
    return dict(LOADERS)


__all__ = ["Annotation", "DetectionDataset", "ImageStore", "LOADERS", "LoaderInfo",
           "register_loader", "load_dataset", "dataset_options", "available"]
