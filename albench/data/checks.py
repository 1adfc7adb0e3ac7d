"""The checks every file-based loader shares (coco, coco-json, voc, yolo).

Dataset roots, image files that exist and decode in full, boxes clipped to their image
with every dropped or copied one counted (and a load stopped when too many are dropped),
one picture never under two ids, a test split that is not empty and does not leak into the
pool, and the pool/test id split kept disjoint.

Two strictness levels: a user's own data (``strict=True``) are refused on content copies
and have exact copies of a box removed; the published benchmarks (COCO 2017, VOCdevkit)
are evaluated as their protocol has them, so there the same findings are only counted in
the load warnings.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from albench.data.images import ImageFacts, image_warnings
from albench.data.index import Annotation, DetectionDataset, ImageStore, validate_boxes
from albench.errors import DatasetError

CLIP_TOLERANCE = 1.0  # pixels a box may pass its image's edge before the clip is counted
MAX_DROPPED_SHARE = 0.05  # default of ``max_dropped``: more of a file's boxes lost stops the load
FEW_WITH_BOXES = 0.5  # below this share of pool images with boxes, a warning

Size = tuple[int, int]  # (width, height)


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
    """Counts boxes clipped to, dropped at, and copied within their image for one source."""

    source: str
    drop_copies: bool = True  # exact copies of a box: removed (user data) or only counted
    total: int = 0
    clipped: int = 0
    dropped: int = 0  # outside their image: no area left after clipping
    degenerate: int = 0  # zero or negative width or height as given
    copies: int = 0  # the same class and coordinates as an earlier box of the same image
    size_mismatch: int = 0  # images whose declared size is not the file's (set by the loader)

    def clean(self, boxes: np.ndarray, labels: np.ndarray, ignore: np.ndarray, size: Size,
              flat: np.ndarray | None = None) -> Annotation:
        """Clip ``boxes`` (xyxy) to the image and drop those left with no area; ``flat``
        marks boxes the format itself calls degenerate."""
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        labels, ignore = np.asarray(labels, np.int64), np.asarray(ignore, bool)
        before = boxes.copy()
        given_flat = (before[:, 2] - before[:, 0] <= 1e-3) | (before[:, 3] - before[:, 1] <= 1e-3)
        keep = validate_boxes(boxes, *size)
        if flat is not None:
            given_flat |= flat
            keep &= ~flat
        moved = np.abs(before - boxes).max(axis=1, initial=0.0) > CLIP_TOLERANCE
        copy = np.zeros(len(boxes), bool)
        if len(boxes) > 1:
            key = np.concatenate([before, labels[:, None], ignore[:, None]], 1)
            copy[:] = True
            copy[np.unique(key, axis=0, return_index=True)[1]] = False
            copy &= keep
        self.total += len(boxes)
        self.copies += int(copy.sum())
        self.degenerate += int((~keep & given_flat).sum())
        self.dropped += int((~keep & ~given_flat).sum())
        if self.drop_copies:
            keep &= ~copy
        self.clipped += int((moved & keep).sum())
        return Annotation(boxes[keep], labels[keep], ignore[keep])

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
        if self.copies:
            out.append(f"{self.source}: {self.copies} boxes are exact copies of another box of "
                       "the same image and class "
                       + ("(removed: each would count twice at evaluation)" if self.drop_copies
                          else "(kept, as the benchmark's protocol evaluates them)"))
        return out

    def finish(self, warnings: list[str], max_dropped: float) -> None:
        """Add the counts to ``warnings``; more than ``max_dropped`` of the boxes lost is an
        error (the data and their image sizes do not belong together)."""
        lost = self.dropped + self.degenerate
        if self.total and lost > max_dropped * self.total:
            cause = (f" {self.size_mismatch} of its images declare a width or height other "
                     "than the image file's, which is the likely cause: correct the declared "
                     "sizes (or remove them, so that the file's are used)."
                     if self.size_mismatch else "")
            raise DatasetError(
                f"{self.source}: {lost} of its {self.total} boxes ({lost / self.total:.0%}) "
                f"would be dropped ({self.degenerate} of zero or negative width or height, "
                f"{self.dropped} outside their image), more than the {max_dropped:.0%} a load "
                f"accepts (max_dropped).{cause} Fix the boxes, or pass --dataset-opt "
                "max_dropped=SHARE (0 to 1) to accept the loss knowingly."
            )
        warnings.extend(self.messages())


def check_max_dropped(max_dropped: float) -> float:
    if not (isinstance(max_dropped, (int, float)) and 0 <= max_dropped <= 1):
        raise DatasetError(f"--dataset-opt max_dropped={max_dropped!r} is not a share: give "
                           f"a number from 0 to 1 (default {MAX_DROPPED_SHARE}).")
    return float(max_dropped)


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


def merge_sizes(declared: Mapping[int, Size | None], facts: Mapping[int, ImageFacts],
                source: str, warnings: list[str]) -> tuple[dict[int, Size], int]:
    """Declared sizes where given, the file's (as displayed) otherwise, and the count of
    images whose two disagree; warnings for turned and 16-bit images are added too."""
    sizes, differ = {}, 0
    for image_id, fact in facts.items():
        size = declared.get(image_id)
        differ += size is not None and size != fact.size
        sizes[image_id] = size or fact.size
    warnings.extend(image_warnings(facts, declared, source))
    if differ:
        warnings.append(f"{source}: {differ} images whose declared width/height differ from "
                        "the image file (the declared size was used)")
    return sizes, differ


@dataclass
class Split:
    """Images, sizes and ground truth read from one annotation source."""

    source: str
    files: dict[int, Path]
    sizes: dict[int, Size]
    annotations: dict[int, Annotation]
    facts: dict[int, ImageFacts] = field(default_factory=dict)

    def keep(self, ids: Iterable[int]) -> "Split":
        ids = set(ids)
        return Split(self.source, {i: p for i, p in self.files.items() if i in ids},
                     {i: s for i, s in self.sizes.items() if i in ids},
                     {i: a for i, a in self.annotations.items() if i in ids},
                     {i: f for i, f in self.facts.items() if i in ids})

    def renumbered(self, mapping: Mapping[int, int]) -> "Split":
        return Split(self.source, {mapping[i]: p for i, p in self.files.items()},
                     {mapping[i]: s for i, s in self.sizes.items()},
                     {mapping[i]: a for i, a in self.annotations.items()},
                     {mapping[i]: f for i, f in self.facts.items()})


def _groups(split: Split, key) -> list[list[int]]:
    by: dict[str, list[int]] = defaultdict(list)
    for image_id in sorted(split.files):
        k = key(image_id)
        if k is not None:
            by[k].append(image_id)
    return [ids for ids in by.values() if len(ids) > 1]


def check_copies(split: Split, warnings: list[str], strict: bool) -> None:
    """One file, or one picture, under two ids of ``split`` is an error (a warning for a
    benchmark when the files differ but their bytes are the same)."""
    same_file = _groups(split, lambda i: os.path.realpath(split.files[i]))
    if same_file:
        ids = same_file[0]
        raise DatasetError(
            f"{split.source}: the image file {split.files[ids[0]]} is listed {len(ids)} times, "
            f"under ids {', '.join(map(str, ids))} ({len(same_file)} files are listed more than "
            "once): its boxes would be labelled, and evaluated, more than once. Keep one entry "
            "per image file."
        )
    same_bytes = _groups(split, lambda i: split.facts[i].sha256 if i in split.facts else None)
    if not same_bytes:
        return
    extra = sum(len(g) - 1 for g in same_bytes)
    first = same_bytes[0]
    what = (f"{split.source}: {extra} images are byte-for-byte copies of another image under "
            f"another id (e.g. {split.files[first[0]].name} and {split.files[first[1]].name})")
    if not strict:
        warnings.append(what)
        return
    raise DatasetError(f"{what}: one picture under two ids is labelled, and in a test split "
                       "evaluated, twice. Remove the copies from the annotations (or the "
                       "folder), keeping one entry per picture.")


def check_pool(pool: Split, test: Split, warnings: list[str],
               allow_test_in_pool: bool = False, strict: bool = True) -> None:
    """A pool that can give a learning curve, and a test split that does not leak into it."""
    with_boxes = sum(a.n_boxes > 0 for a in pool.annotations.values())
    if not with_boxes:
        raise DatasetError(
            f"{pool.source}: none of its {len(pool.files)} pool images has a box, so no "
            "detector can learn from it. Check that the annotations are filled and refer to "
            "these images (COCO: 'image_id' values that match the 'images' ids; YOLO: label "
            "files in the labels/ folder beside images/)."
        )
    if with_boxes < FEW_WITH_BOXES * len(pool.files):
        warnings.append(f"{pool.source}: only {with_boxes} of {len(pool.files)} pool images "
                        "have boxes; most labels a strategy buys will be empty images")
    elif strict and with_boxes < len(pool.files):
        warnings.append(f"{pool.source}: {len(pool.files) - with_boxes} of {len(pool.files)} "
                        "pool images have no box (kept: labelled, they are background images)")
    empty_test = sum(a.n_boxes == 0 for a in test.annotations.values())
    if strict and empty_test:
        warnings.append(f"{test.source}: {empty_test} of {len(test.files)} test images have no "
                        "box (kept: their detections count as false positives)")
    for split in (pool, test):
        check_copies(split, warnings, strict)
    pool_files = {os.path.realpath(p) for p in pool.files.values()}
    shared = sorted(os.path.realpath(p) for p in test.files.values()
                    if os.path.realpath(p) in pool_files)
    pool_bytes = {f.sha256: pool.files[i] for i, f in pool.facts.items()}
    copied = [(test.files[i], pool_bytes[f.sha256]) for i, f in sorted(test.facts.items())
              if f.sha256 in pool_bytes and os.path.realpath(test.files[i]) not in pool_files]
    fix = ("Make the test annotations list other images than the pool's, or pass "
           "--dataset-opt allow_test_in_pool=true to accept the leak knowingly.")
    if shared and not allow_test_in_pool:
        raise DatasetError(
            f"{len(shared)} test images are also pool images (the same files, e.g. "
            f"{shared[0]}): the detector would be tested on images it may be trained on. {fix}"
        )
    if copied and strict and not allow_test_in_pool:
        raise DatasetError(
            f"{len(copied)} test images are byte-for-byte copies of pool images under other "
            f"names (e.g. {copied[0][0]} is {copied[0][1]}): the detector would be tested on "
            f"pictures it may be trained on. {fix}"
        )
    if shared:
        warnings.append(f"{len(shared)} test images are also pool images "
                        "(allow_test_in_pool=true)")
    if copied:
        warnings.append(f"{len(copied)} test images are byte-for-byte copies of pool images "
                        f"(e.g. {copied[0][0].name} is {copied[0][1].name})")


def check_test(test: Split, pool: Split, classes: list[str], warnings: list[str],
               strict: bool = True) -> None:
    """A test split that can be evaluated; classes it has but the pool lacks are named (and,
    for a user's data, classes that occur nowhere)."""
    if not test.files:
        raise DatasetError(f"{test.source}: the test split holds no image, so no AP can be "
                           "measured. List the test images in it (or choose another test "
                           "split).")

    def counts(split: Split) -> np.ndarray:
        out = np.zeros(len(classes), np.int64)
        for ann in split.annotations.values():
            np.add.at(out, ann.labels[~ann.ignore], 1)
        return out

    in_test, in_pool = counts(test), counts(pool)
    if not in_test.sum():
        raise DatasetError(f"{test.source}: none of its {len(test.files)} test images has a "
                           "box that counts (crowd and difficult boxes are ignored), so AP "
                           "cannot be measured. Label the test images, or use another split.")
    only_test = [c for c, t, p in zip(classes, in_test, in_pool) if t and not p]
    if only_test:
        warnings.append(f"{test.source}: classes {', '.join(only_test)} occur in the test split "
                        "but never in the pool; no strategy can learn them, and each adds an "
                        "AP of 0 to the mean")
    unused = [c for c, t, p in zip(classes, in_test, in_pool) if not t and not p]
    if unused and strict:
        warnings.append(f"classes {', '.join(unused)} occur neither in the pool nor in the test "
                        "split (they take no part in the mean AP)")


def assemble(name: str, classes: list[str], category_ids: list[int], pool: Split,
             test: Split, warnings: list[str], params: dict,
             allow_test_in_pool: bool = False, strict: bool = True) -> DetectionDataset:
    """One dataset from a pool and a test split; test ids that clash get fresh ids."""
    check_pool(pool, test, warnings, allow_test_in_pool, strict)
    check_test(test, pool, classes, warnings, strict)
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
