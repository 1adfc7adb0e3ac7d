"""The one in-memory dataset form every loader produces: COCO-like, split into pool and test.

Boxes are ``xyxy`` in pixels, labels are contiguous class indices ``0..C-1`` (the original
category ids are kept in ``category_ids`` for export). Images stay on disk; the
:class:`ImageStore` decodes them on demand (:func:`~albench.data.images.decode_image`: EXIF
orientation applied, 16-bit greyscale reduced to 8 bits) and keeps a bounded in-memory cache.
Ground truth lives in ``annotations`` and is handed to the AL loop's oracle only; backends
and strategies get the :class:`ImageStore`, never the annotations.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from albench.data.images import decode_image


@dataclass(frozen=True)
class Annotation:
    """Ground truth of one image."""

    boxes: np.ndarray  # (k, 4) float32, xyxy pixels
    labels: np.ndarray  # (k,) int64, contiguous class index
    ignore: np.ndarray  # (k,) bool: COCO iscrowd / VOC difficult, neither rewarded nor punished

    @staticmethod
    def empty() -> "Annotation":
        return Annotation(np.zeros((0, 4), np.float32), np.zeros(0, np.int64), np.zeros(0, bool))

    @property
    def n_boxes(self) -> int:
        return int((~self.ignore).sum())


class ImageStore:
    """Reads images by id; decoded RGB arrays are cached up to ``cache_mb`` megabytes."""

    def __init__(self, files: dict[int, Path], sizes: dict[int, tuple[int, int]],
                 cache_mb: float = 2048.0) -> None:
        self.files = files
        self.sizes = sizes  # id -> (width, height)
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._budget = int(cache_mb * 2**20)
        self._used = 0

    def __contains__(self, image_id: int) -> bool:
        return int(image_id) in self.files

    def size(self, image_id: int) -> tuple[int, int]:
        return self.sizes[int(image_id)]

    def load(self, image_id: int) -> np.ndarray:
        """The image as an ``(h, w, 3)`` uint8 RGB array."""
        image_id = int(image_id)
        hit = self._cache.get(image_id)
        if hit is not None:
            self._cache.move_to_end(image_id)
            return hit
        array = decode_image(self.files[image_id])
        if array.nbytes <= self._budget:
            self._cache[image_id] = array
            self._used += array.nbytes
            while self._used > self._budget:
                _, old = self._cache.popitem(last=False)
                self._used -= old.nbytes
        return array


@dataclass
class DetectionDataset:
    """A detection dataset split into an AL pool and a test split."""

    name: str
    classes: list[str]
    category_ids: list[int]
    images: ImageStore
    annotations: dict[int, Annotation]
    pool_ids: np.ndarray
    test_ids: np.ndarray
    warnings: list[str] = field(default_factory=list)
    params: dict = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)  # annotation files read (run manifests)
    _fingerprint: str | None = None

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def fingerprint(self) -> str:
        """sha256 over the split, file names and every box: changes when the data does."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            h.update(json.dumps([self.name, self.classes], sort_keys=True).encode())
            for split in (self.pool_ids, self.test_ids):
                h.update(np.asarray(split, np.int64).tobytes())
            for image_id in sorted(self.annotations):
                ann = self.annotations[image_id]
                h.update(str(image_id).encode())
                h.update(Path(self.images.files[image_id]).name.encode())
                h.update(np.round(ann.boxes, 2).astype(np.float32).tobytes())
                h.update(ann.labels.astype(np.int64).tobytes())
                h.update(ann.ignore.astype(np.uint8).tobytes())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def subsample_pool(self, n: int, seed: int) -> "DetectionDataset":
        """A copy whose pool is ``n`` images drawn with ``seed`` (for quick looks)."""
        if n >= len(self.pool_ids):
            return self
        rng = np.random.default_rng(np.random.SeedSequence([seed, 7919]))
        keep = np.sort(rng.choice(self.pool_ids, size=n, replace=False))
        params = dict(self.params, pool_subsample=n, pool_subsample_seed=seed)
        return DetectionDataset(self.name, self.classes, self.category_ids, self.images,
                                self.annotations, keep, self.test_ids, list(self.warnings),
                                params, list(self.sources))

    def coco_gt(self, ids: Iterable[int]) -> dict:
        """COCO-format ground truth for ``ids`` (category id = contiguous index + 1)."""
        return coco_ground_truth(self.annotations, self.images.size, self.classes, ids)

    def class_counts(self, ids: Iterable[int]) -> np.ndarray:
        counts = np.zeros(self.num_classes, np.int64)
        for image_id in ids:
            ann = self.annotations[int(image_id)]
            np.add.at(counts, ann.labels[~ann.ignore], 1)
        return counts


def coco_ground_truth(annotations: Mapping[int, Annotation], size: Callable[[int], tuple[int, int]],
                      classes: Sequence[str], ids: Iterable[int]) -> dict:
    """COCO-format ground truth of ``ids`` from ``annotations`` (category id = index + 1);
    ``size(id)`` gives (width, height). Ignored boxes become ``iscrowd``."""
    images, anns = [], []
    for image_id in ids:
        image_id = int(image_id)
        w, h = size(image_id)
        images.append({"id": image_id, "width": int(w), "height": int(h)})
        ann = annotations[image_id]
        for box, label, ign in zip(ann.boxes, ann.labels, ann.ignore):
            x1, y1, x2, y2 = (float(v) for v in box)
            anns.append({
                "id": len(anns) + 1, "image_id": image_id, "category_id": int(label) + 1,
                "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1),
                "iscrowd": int(bool(ign)),
            })
    cats = [{"id": i + 1, "name": n} for i, n in enumerate(classes)]
    return {"images": images, "annotations": anns, "categories": cats}


def validate_boxes(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Clip boxes to the image; return the mask of boxes with positive area after clipping."""
    if len(boxes) == 0:
        return np.zeros(0, bool)
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
    return (boxes[:, 2] - boxes[:, 0] > 1e-3) & (boxes[:, 3] - boxes[:, 1] > 1e-3)
