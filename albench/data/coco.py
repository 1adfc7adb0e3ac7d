"""COCO-format datasets: the COCO 2017 benchmark (``coco``) and a user's own files (``coco-json``).

A file is checked for structure and integrity as it is read (integer, unique image,
annotation and category ids; unique category names; boxes of four finite numbers); the
checks every file-based loader shares are in :mod:`albench.data.checks`.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from albench.data.checks import (MAX_DROPPED_SHARE, BoxTally, Size, Split, assemble,
                                 check_max_dropped, merge_sizes, require_files, resolve_root)
from albench.data.images import inspect_images
from albench.data.index import Annotation, DetectionDataset
from albench.errors import DatasetError

COCO_ENV = "ALBENCH_COCO_ROOT"
COCO_DEFAULT_ROOT = Path("data/coco")
COCO_DOWNLOAD = (
    "Download train2017.zip, val2017.zip and annotations_trainval2017.zip from the official "
    "COCO 2017 download page (https://cocodataset.org/#download) and unzip all three into one "
    "folder, so that it holds annotations/instances_train2017.json, "
    "annotations/instances_val2017.json, train2017/ and val2017/"
)


# --------------------------------------------------------------------------- COCO format


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _positive_size(entry: dict) -> Size | None:
    w, h = entry.get("width"), entry.get("height")
    if _is_number(w) and _is_number(h) and w > 0 and h > 0:
        return int(round(w)), int(round(h))
    return None


@dataclass
class CocoFile:
    """A COCO-format annotation file, checked for structure and integrity."""

    path: Path
    image_dir: Path
    files: dict[int, Path]
    declared: dict[int, Size | None]
    categories: dict[int, str]
    annotations: list[dict] = field(repr=False)

    @property
    def source(self) -> str:
        return self.path.name

    @staticmethod
    def read(path: Path, image_dir: Path, flag: str) -> "CocoFile":
        try:
            with open(path, "rb") as f:
                data = json.load(f)
        except FileNotFoundError:
            raise DatasetError(f"Annotation file {path} does not exist: pass an existing "
                               f"COCO-format JSON file with {flag}.") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DatasetError(f"Annotation file {path} is not valid JSON ({exc}). Re-export "
                               "or re-download it; a truncated download is a common "
                               "cause.") from None
        except OSError as exc:
            raise DatasetError(f"Annotation file {path} cannot be read ({exc}): check the "
                               f"path given with {flag} and its permissions.") from None
        lacking = [k for k in ("images", "annotations", "categories")
                   if not isinstance(data, dict) or not isinstance(data.get(k), list)]
        if lacking:
            raise DatasetError(
                f"Annotation file {path} is not in COCO format: it lacks the list(s) "
                f"{', '.join(repr(k) for k in lacking)}. A COCO file is a JSON object with "
                "'images', 'annotations' and 'categories' lists; convert the file to that form."
            )

        def bad(what: str) -> DatasetError:
            return DatasetError(f"Annotation file {path}: {what}. Fix the entry in the file "
                                "(see the COCO data format at https://cocodataset.org/"
                                "#format-data).")

        categories: dict[int, str] = {}
        for cat in data["categories"]:
            cid = cat.get("id") if isinstance(cat, dict) else None
            if not _is_int(cid):
                raise bad(f"category {cat!r} has no integer 'id'")
            if cid in categories:
                raise bad(f"category id {cid} appears twice")
            name = str(cat.get("name", cid))
            if name in categories.values():
                raise bad(f"two categories are named {name!r} (ids "
                          f"{next(k for k, v in categories.items() if v == name)} and {cid}), "
                          "so their per-class AP could not be told apart; merge them into "
                          "one category or rename one")
            categories[cid] = name
        files: dict[int, Path] = {}
        declared: dict[int, Size | None] = {}
        for entry in data["images"]:
            iid = entry.get("id") if isinstance(entry, dict) else None
            if not _is_int(iid) or not isinstance(entry.get("file_name"), str):
                raise bad(f"image entry {str(entry)[:120]} needs an integer 'id' and a "
                          "'file_name'")
            if iid in files:
                raise bad(f"image id {iid} appears twice")
            files[iid] = image_dir / entry["file_name"]
            declared[iid] = _positive_size(entry)
        seen: set = set()
        for k, ann in enumerate(data["annotations"]):
            if not isinstance(ann, dict):
                raise bad(f"annotation #{k} is not an object")
            aid = ann.get("id", f"#{k}")
            if "id" in ann:
                if not isinstance(aid, (int, str)) or isinstance(aid, bool):
                    raise bad(f"annotation id {aid!r} is neither an integer nor a string")
                if aid in seen:
                    raise bad(f"annotation id {aid!r} appears twice (a copied annotation "
                              "counts its box twice)")
                seen.add(aid)
            if ann.get("image_id") not in files:
                raise bad(f"annotation {aid} refers to image_id {ann.get('image_id')!r}, "
                          "which is not in 'images'")
            if ann.get("category_id") not in categories:
                raise bad(f"annotation {aid} has category_id {ann.get('category_id')!r}, "
                          "which is not in 'categories'")
            box = ann.get("bbox")
            if not isinstance(box, list) or len(box) != 4 or not all(map(_is_number, box)):
                raise bad(f"annotation {aid} has bbox {box!r}, not [x, y, width, height] of "
                          "four finite numbers")
        return CocoFile(path, image_dir, files, declared, categories, data["annotations"])

    def split(self, label_of: Mapping[int, int], warnings: list[str], max_dropped: float,
              strict: bool, cache_dir: str | os.PathLike | None = None) -> Split:
        """Check the image files and turn the annotations into clipped xyxy boxes."""
        facts = inspect_images(self.files, str(self.path), cache_dir)
        sizes, differ = merge_sizes(self.declared, facts, self.source, warnings)
        grouped: dict[int, list[dict]] = {i: [] for i in self.files}
        for ann in self.annotations:
            grouped[ann["image_id"]].append(ann)
        tally = BoxTally(self.source, drop_copies=strict, size_mismatch=differ)
        annotations = {}
        for image_id, anns in grouped.items():
            if not anns:
                annotations[image_id] = Annotation.empty()
                continue
            xywh = np.array([a["bbox"] for a in anns], np.float32)
            xywh[:, 2:] += xywh[:, :2]
            labels = np.array([label_of[a["category_id"]] for a in anns], np.int64)
            ignore = np.array([bool(a.get("iscrowd", 0)) for a in anns], bool)
            annotations[image_id] = tally.clean(xywh, labels, ignore, sizes[image_id])
        tally.finish(warnings, max_dropped)
        return Split(self.source, dict(self.files), sizes, annotations, facts)


def category_index(files: Iterable[CocoFile]) -> tuple[dict[int, int], list[int], list[str]]:
    """Contiguous labels for the union of the files' categories, ordered by category id."""
    names: dict[int, tuple[str, Path]] = {}
    for f in files:
        for cid, name in f.categories.items():
            if cid in names and names[cid][0] != name:
                raise DatasetError(
                    f"Category id {cid} is {names[cid][0]!r} in {names[cid][1]} but {name!r} "
                    f"in {f.path}. The pool and test files must share one category list: "
                    "make the names (or ids) agree."
                )
            names.setdefault(cid, (name, f.path))
    by_name: dict[str, int] = {}
    for cid, (name, path) in sorted(names.items()):
        if by_name.setdefault(name, cid) != cid:
            raise DatasetError(
                f"Category {name!r} has id {by_name[name]} in {names[by_name[name]][1]} but "
                f"{cid} in {path}. The pool and test files must share one category list: "
                "give each name one id."
            )
    ids = sorted(names)
    return {cid: k for k, cid in enumerate(ids)}, ids, [names[c][0] for c in ids]


def load_coco_files(name: str, train: CocoFile, test: CocoFile, fixes: tuple[str, str],
                    params: dict, keep_empty: bool = True, allow_test_in_pool: bool = False,
                    strict: bool = True, max_dropped: float = MAX_DROPPED_SHARE,
                    cache_dir: str | os.PathLike | None = None) -> DetectionDataset:
    """The dataset of a pool file and a test file (``fixes``: advice for missing images).
    ``strict``: a user's own files (see :mod:`albench.data.checks`)."""
    max_dropped = check_max_dropped(max_dropped)
    label_of, category_ids, classes = category_index([train, test])
    require_files(train.files, str(train.path), fixes[0])
    require_files(test.files, str(test.path), fixes[1])
    warnings: list[str] = []
    pool = train.split(label_of, warnings, max_dropped, strict, cache_dir)
    if not keep_empty:
        with_boxes = [i for i, a in pool.annotations.items() if a.n_boxes > 0]
        params = dict(params, pool_images_without_boxes=len(pool.files) - len(with_boxes))
        pool = pool.keep(with_boxes)
    ds = assemble(name, classes, category_ids, pool,
                  test.split(label_of, warnings, max_dropped, strict, cache_dir),
                  warnings, params, allow_test_in_pool, strict)
    ds.sources = [str(train.path.resolve()), str(test.path.resolve())]
    return ds


def load_coco(data_root: str | os.PathLike | None = None, keep_empty: bool = False,
              max_dropped: float = MAX_DROPPED_SHARE,
              cache_dir: str | os.PathLike | None = None) -> DetectionDataset:
    root, origin = resolve_root(data_root, COCO_ENV, COCO_DEFAULT_ROOT)
    anns = {s: root / "annotations" / f"instances_{s}2017.json" for s in ("train", "val")}
    absent = [str(p.relative_to(root)) for p in anns.values() if not p.is_file()]
    if absent:
        raise DatasetError(
            f"COCO 2017 was not found: {root} ({origin}) lacks {' and '.join(absent)}. "
            f"{COCO_DOWNLOAD}. Then pass that folder with --data-root or set {COCO_ENV}."
        )
    train = CocoFile.read(anns["train"], root / "train2017", "--data-root")
    val = CocoFile.read(anns["val"], root / "val2017", "--data-root")
    train_fix, val_fix = (f"Unzip {s}2017.zip (from https://cocodataset.org/#download) into "
                          f"{root} so that {root / (s + '2017')} holds every image."
                          for s in ("train", "val"))
    params = {"root": str(root.resolve()), "ann_train": str(anns["train"]),
              "ann_test": str(anns["val"]), "keep_empty": keep_empty}
    return load_coco_files("coco", train, val, (train_fix, val_fix), params,
                           keep_empty=keep_empty, strict=False, max_dropped=max_dropped,
                           cache_dir=cache_dir)


def load_coco_json(ann_train: str | os.PathLike | None = None,
                   ann_test: str | os.PathLike | None = None,
                   images: str | os.PathLike | None = None,
                   images_test: str | os.PathLike | None = None,
                   allow_test_in_pool: bool = False, max_dropped: float = MAX_DROPPED_SHARE,
                   cache_dir: str | os.PathLike | None = None) -> DetectionDataset:
    given = {"--ann-train": ann_train, "--ann-test": ann_test, "--images": images}
    missing = [flag for flag, value in given.items() if not value]
    if missing:
        raise DatasetError(
            f"The coco-json dataset needs {', '.join(missing)}: --ann-train is the COCO-format "
            "annotation file of the pool, --ann-test that of the test split, --images the "
            "folder their file_name entries are relative to (--images-test, if the test "
            "images live elsewhere)."
        )
    image_dir = Path(images).expanduser()  # type: ignore[arg-type]
    test_dir = Path(images_test).expanduser() if images_test else image_dir
    for flag, folder in (("--images", image_dir), ("--images-test", test_dir)):
        if not folder.is_dir():
            raise DatasetError(f"Image folder {folder} (given with {flag}) does not exist or "
                               "is not a folder: pass the folder the annotation file's "
                               "file_name entries are relative to.")
    train = CocoFile.read(Path(ann_train).expanduser(), image_dir,  # type: ignore[arg-type]
                          "--ann-train")
    test = CocoFile.read(Path(ann_test).expanduser(), test_dir,  # type: ignore[arg-type]
                         "--ann-test")
    train_fix, test_fix = (f"Check that {flag} ({folder}) is the folder the file_name entries "
                           "are relative to, or remove the entries of images you do not have."
                           for flag, folder in (("--images", image_dir),
                                                ("--images-test", test_dir)))
    params = {"ann_train": str(train.path.resolve()), "ann_test": str(test.path.resolve()),
              "images": str(image_dir.resolve()), "images_test": str(test_dir.resolve())}
    return load_coco_files("coco-json", train, test, (train_fix, test_fix), params,
                           allow_test_in_pool=allow_test_in_pool, max_dropped=max_dropped,
                           cache_dir=cache_dir)
