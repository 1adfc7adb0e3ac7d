"""COCO-format datasets: the COCO 2017 benchmark (``coco``) and a user's own files (``coco-json``).

This module also holds the checks every file-based loader shares (VOC uses them too):
dataset roots, image files that exist and decode, boxes clipped to their image and the
count of dropped ones, and the pool/test id split kept disjoint.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from albench.data.index import Annotation, DetectionDataset, ImageStore, validate_boxes
from albench.errors import DatasetError

VERIFY_LIMIT = 20000  # at most this many images: full PIL verify(); above: header only
CLIP_TOLERANCE = 1.0  # pixels a box may pass its image's edge before the clip is counted
COCO_ENV = "ALBENCH_COCO_ROOT"
COCO_DEFAULT_ROOT = Path("data/coco")
COCO_DOWNLOAD = (
    "Download train2017.zip, val2017.zip and annotations_trainval2017.zip from the official "
    "COCO 2017 download page (https://cocodataset.org/#download) and unzip all three into one "
    "folder, so that it holds annotations/instances_train2017.json, "
    "annotations/instances_val2017.json, train2017/ and val2017/"
)

Size = tuple[int, int]  # (width, height)


# --------------------------------------------------------------------------- shared checks


def resolve_root(data_root: str | os.PathLike | None, env: str,
                 default: Path) -> tuple[Path, str]:
    """The dataset root and a phrase saying where it came from (for messages)."""
    if data_root:
        return Path(data_root).expanduser().absolute(), "given with --data-root"
    if os.environ.get(env):
        return Path(os.environ[env]).expanduser().absolute(), f"from ${env}"
    return default.absolute(), f"the default, as neither --data-root nor {env} is set"


@dataclass
class BoxTally:
    """Counts boxes clipped to, and dropped at, their image's edges for one source file."""

    source: str
    clipped: int = 0
    dropped: int = 0  # outside their image: no area left after clipping
    degenerate: int = 0  # zero or negative width or height as given

    def clean(self, boxes: np.ndarray, labels: np.ndarray, ignore: np.ndarray,
              size: Size) -> Annotation:
        """Clip ``boxes`` (xyxy) to the image and drop those left with no area."""
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        before = boxes.copy()
        flat = (before[:, 2] - before[:, 0] <= 1e-3) | (before[:, 3] - before[:, 1] <= 1e-3)
        keep = validate_boxes(boxes, *size)
        moved = np.abs(before - boxes).max(axis=1, initial=0.0) > CLIP_TOLERANCE
        self.clipped += int((moved & keep).sum())
        self.degenerate += int((~keep & flat).sum())
        self.dropped += int((~keep & ~flat).sum())
        return Annotation(boxes[keep], np.asarray(labels, np.int64)[keep],
                          np.asarray(ignore, bool)[keep])

    def messages(self) -> list[str]:
        out = []
        if self.degenerate:
            out.append(f"{self.source}: dropped {self.degenerate} boxes of zero or negative "
                       "width or height")
        if self.dropped:
            out.append(f"{self.source}: dropped {self.dropped} boxes lying outside their image "
                       "(no area left after clipping to it)")
        if self.clipped:
            out.append(f"{self.source}: clipped {self.clipped} boxes reaching more than "
                       f"{CLIP_TOLERANCE:g} px past their image")
        return out


def require_files(files: Mapping[int, Path], source: str, fix: str,
                  what: str = "image files") -> None:
    """Raise naming the first missing file and how many are missing."""
    listings: dict[Path, set[str]] = {}

    def exists(path: Path) -> bool:
        if path.parent not in listings:
            try:
                listings[path.parent] = set(os.listdir(path.parent))
            except OSError:
                listings[path.parent] = set()
        return path.name in listings[path.parent]

    missing = [files[i] for i in sorted(files) if not exists(files[i])]
    if missing:
        raise DatasetError(
            f"{len(missing)} of {len(files)} {what} listed in {source} are missing; the "
            f"first is {missing[0]}. {fix}"
        )


def _inspect(path: Path, verify: bool) -> Size | str:
    from PIL import Image

    try:
        with Image.open(path) as im:
            size = im.size
            if verify:
                im.verify()
        return int(size[0]), int(size[1])
    except Exception as exc:  # PIL raises many kinds for a bad file
        return f"{type(exc).__name__}: {exc}"


def inspect_images(files: Mapping[int, Path], source: str, verify: bool) -> dict[int, Size]:
    """Open every image (``verify()`` it too when asked): sizes from the file headers.

    A file that does not open raises a :class:`DatasetError` naming it.
    """
    ids = sorted(files)
    chunks = [ids[k:k + 256] for k in range(0, len(ids), 256)]
    with ThreadPoolExecutor(max_workers=8) as pool:  # threads overlap slow (network) reads
        results = [r for chunk in pool.map(lambda c: [_inspect(files[i], verify) for i in c],
                                           chunks) for r in chunk]
    sizes: dict[int, Size] = {}
    for image_id, result in zip(ids, results):
        if isinstance(result, str):
            raise DatasetError(
                f"Image file {files[image_id]} (listed in {source}) cannot be decoded "
                f"({result}). The file is corrupt, truncated or not an image: re-download or "
                f"re-export it, or remove its entry from {source}."
            )
        sizes[image_id] = result
    return sizes


def merge_sizes(declared: Mapping[int, Size | None], actual: Mapping[int, Size],
                source: str, warnings: list[str]) -> dict[int, Size]:
    """Declared sizes where given, the file's otherwise; count the ones that disagree."""
    sizes, differ = {}, 0
    for image_id, real in actual.items():
        size = declared.get(image_id)
        differ += size is not None and size != real
        sizes[image_id] = size or real
    if differ:
        warnings.append(f"{source}: {differ} images whose declared width/height differ from "
                        "the image file (the declared size was used)")
    return sizes


@dataclass
class Split:
    """Images, sizes and ground truth read from one annotation source."""

    source: str
    files: dict[int, Path]
    sizes: dict[int, Size]
    annotations: dict[int, Annotation]

    def keep(self, ids: Iterable[int]) -> "Split":
        ids = set(ids)
        return Split(self.source, {i: p for i, p in self.files.items() if i in ids},
                     {i: s for i, s in self.sizes.items() if i in ids},
                     {i: a for i, a in self.annotations.items() if i in ids})

    def renumbered(self, mapping: Mapping[int, int]) -> "Split":
        return Split(self.source, {mapping[i]: p for i, p in self.files.items()},
                     {mapping[i]: s for i, s in self.sizes.items()},
                     {mapping[i]: a for i, a in self.annotations.items()})


FEW_WITH_BOXES = 0.5  # below this share of pool images with boxes, a warning


def check_pool(pool: Split, test: Split, warnings: list[str],
               allow_test_in_pool: bool = False) -> None:
    """A pool that can give a learning curve, and a test split that does not leak into it."""
    with_boxes = sum(a.n_boxes > 0 for a in pool.annotations.values())
    if not with_boxes:
        raise DatasetError(
            f"{pool.source}: none of its {len(pool.files)} pool images has a box, so no "
            "detector can learn from it. Check that the annotation file's 'annotations' "
            "list is filled and that its image_id values match the 'images' ids."
        )
    if with_boxes < FEW_WITH_BOXES * len(pool.files):
        warnings.append(f"{pool.source}: only {with_boxes} of {len(pool.files)} pool images "
                        "have boxes; most labels a strategy buys will be empty images")
    pool_files = {os.path.realpath(p) for p in pool.files.values()}
    shared = sorted(os.path.realpath(p) for p in test.files.values()
                    if os.path.realpath(p) in pool_files)
    if shared and not allow_test_in_pool:
        raise DatasetError(
            f"{len(shared)} test images are also pool images (the same files, e.g. "
            f"{shared[0]}): the detector would be tested on images it may be trained on. "
            "Make the test annotation file list other images than the pool's, or pass "
            "--dataset-opt allow_test_in_pool=true to accept the leak knowingly."
        )
    if shared:
        warnings.append(f"{len(shared)} test images are also pool images "
                        "(allow_test_in_pool=true)")


def assemble(name: str, classes: list[str], category_ids: list[int], pool: Split,
             test: Split, warnings: list[str], params: dict,
             allow_test_in_pool: bool = False) -> DetectionDataset:
    """One dataset from a pool and a test split; test ids that clash get fresh ids."""
    check_pool(pool, test, warnings, allow_test_in_pool)
    clash = sorted(set(pool.files) & set(test.files))
    if clash:
        start = max(max(pool.files), max(test.files)) + 1
        fresh = dict(zip(clash, range(start, start + len(clash))))
        test = test.renumbered({i: fresh.get(i, i) for i in test.files})
        warnings.append(f"{test.source}: {len(clash)} image ids are also used by "
                        f"{pool.source}; those test images were given fresh ids from {start}")
    files = {**pool.files, **test.files}
    sizes = {**pool.sizes, **test.sizes}
    annotations = {**pool.annotations, **test.annotations}
    return DetectionDataset(
        name=name, classes=classes, category_ids=category_ids,
        images=ImageStore(files, sizes), annotations=annotations,
        pool_ids=np.array(sorted(pool.files), np.int64),
        test_ids=np.array(sorted(test.files), np.int64),
        warnings=warnings, params=params,
    )


# --------------------------------------------------------------------------- COCO format


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_size(entry: dict) -> Size | None:
    w, h = entry.get("width"), entry.get("height")
    if isinstance(w, (int, float)) and isinstance(h, (int, float)) and w > 0 and h > 0:
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
            categories[cid] = str(cat.get("name", cid))
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
        for k, ann in enumerate(data["annotations"]):
            if not isinstance(ann, dict):
                raise bad(f"annotation #{k} is not an object")
            aid = ann.get("id", f"#{k}")
            if ann.get("image_id") not in files:
                raise bad(f"annotation {aid} refers to image_id {ann.get('image_id')!r}, "
                          "which is not in 'images'")
            if ann.get("category_id") not in categories:
                raise bad(f"annotation {aid} has category_id {ann.get('category_id')!r}, "
                          "which is not in 'categories'")
            box = ann.get("bbox")
            if (not isinstance(box, list) or len(box) != 4
                    or not all(isinstance(v, (int, float)) for v in box)):
                raise bad(f"annotation {aid} has bbox {box!r}, not [x, y, width, height]")
        return CocoFile(path, image_dir, files, declared, categories, data["annotations"])

    def split(self, label_of: Mapping[int, int], verify: bool,
              warnings: list[str]) -> Split:
        """Check the image files and turn the annotations into clipped xyxy boxes."""
        sizes = merge_sizes(self.declared, inspect_images(self.files, self.source, verify),
                            self.source, warnings)
        grouped: dict[int, list[dict]] = {i: [] for i in self.files}
        for ann in self.annotations:
            grouped[ann["image_id"]].append(ann)
        tally = BoxTally(self.source)
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
        warnings.extend(tally.messages())
        return Split(self.source, dict(self.files), sizes, annotations)


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
    ids = sorted(names)
    return {cid: k for k, cid in enumerate(ids)}, ids, [names[c][0] for c in ids]


def load_coco_files(name: str, train: CocoFile, test: CocoFile, verify_limit: int,
                    fixes: tuple[str, str], params: dict, keep_empty: bool = True,
                    allow_test_in_pool: bool = False) -> DetectionDataset:
    """The dataset of a pool file and a test file (``fixes``: advice for missing images)."""
    label_of, category_ids, classes = category_index([train, test])
    require_files(train.files, str(train.path), fixes[0])
    require_files(test.files, str(test.path), fixes[1])
    verify = len(train.files) + len(test.files) <= verify_limit
    warnings: list[str] = []
    pool = train.split(label_of, verify, warnings)
    if not keep_empty:
        with_boxes = [i for i, a in pool.annotations.items() if a.n_boxes > 0]
        params = dict(params, pool_images_without_boxes=len(pool.files) - len(with_boxes))
        pool = pool.keep(with_boxes)
    ds = assemble(name, classes, category_ids, pool, test.split(label_of, verify, warnings),
                  warnings, params, allow_test_in_pool)
    ds.sources = [str(train.path.resolve()), str(test.path.resolve())]
    return ds


def load_coco(data_root: str | os.PathLike | None = None, keep_empty: bool = False,
              verify_limit: int = VERIFY_LIMIT) -> DetectionDataset:
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
    return load_coco_files("coco", train, val, verify_limit, (train_fix, val_fix), params,
                           keep_empty=keep_empty)


def load_coco_json(ann_train: str | os.PathLike | None = None,
                   ann_test: str | os.PathLike | None = None,
                   images: str | os.PathLike | None = None,
                   images_test: str | os.PathLike | None = None,
                   verify_limit: int = VERIFY_LIMIT,
                   allow_test_in_pool: bool = False) -> DetectionDataset:
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
    return load_coco_files("coco-json", train, test, verify_limit, (train_fix, test_fix), params,
                           allow_test_in_pool=allow_test_in_pool)
