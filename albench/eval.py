"""COCO box evaluation: the one path every backend's detections are scored through.

Two engines compute the same numbers: ``"faster"`` (faster-coco-eval, C++) and
``"pycocotools"`` (the reference implementation). Both run on in-memory COCO dicts with
area range "all" and at most :data:`MAX_DETS` detections per image (the top-scoring ones).
Ground-truth boxes flagged ``iscrowd`` (COCO crowd, VOC difficult) are ignored: a
detection matched to one is neither a true nor a false positive.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from albench.backends.base import Detections
from albench.data.index import Annotation, DetectionDataset, coco_ground_truth
from albench.errors import DatasetError

MAX_DETS = 100
ENGINES = ("faster", "pycocotools")


@dataclass
class EvalResult:
    """COCO AP of one evaluation; per-class values are ``nan`` for classes without GT."""

    ap: float  # AP@[.5:.95]
    ap50: float  # AP at IoU 0.5 (101-point interpolation)
    ap75: float
    per_class_ap: dict[str, float]
    per_class_ap50: dict[str, float]
    n_images: int
    n_detections: int

    def as_row(self) -> dict[str, Any]:
        """Flat record for a results table; per-class AP is a JSON object (nan -> null)."""
        per_class = {k: None if math.isnan(v) else v for k, v in self.per_class_ap.items()}
        return {"ap": self.ap, "ap50": self.ap50, "ap75": self.ap75,
                "per_class_ap": json.dumps(per_class)}


def detections_to_coco(ids: Sequence[int], detections: Sequence[Detections],
                       num_classes: int | None = None) -> list[dict]:
    """COCO result dicts (``category_id = label + 1``, ``bbox`` as xywh) for each image.

    Raises ``ValueError`` when ``ids`` and ``detections`` differ in length or a
    :class:`Detections` is malformed (shapes, non-finite values, inverted boxes, labels
    outside ``0..num_classes-1``).
    """
    if len(ids) != len(detections):
        raise ValueError(f"Got {len(ids)} image ids but {len(detections)} Detections: "
                         "pass exactly one Detections per image, in the same order.")
    out: list[dict] = []
    for image_id, det in zip(ids, detections):
        boxes = np.asarray(det.boxes, np.float64)
        scores = np.asarray(det.scores, np.float64)
        labels = np.asarray(det.labels)
        k = len(scores) if scores.ndim == 1 else -1
        where = f"Detections of image {int(image_id)}"
        if k < 0 or boxes.shape != (k, 4) or labels.shape != (k,):
            raise ValueError(f"{where}: expected boxes (k, 4), scores (k,), labels (k,); got "
                             f"{boxes.shape}, {scores.shape}, {labels.shape}.")
        if k == 0:
            continue
        if not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"{where}: labels must be integer class indices, got {labels.dtype}.")
        if labels.min() < 0 or (num_classes is not None and labels.max() >= num_classes):
            span = "0..C-1" if num_classes is None else f"0..{num_classes - 1}"
            raise ValueError(f"{where}: labels must lie in {span} (contiguous class indices), "
                             f"got values in [{labels.min()}, {labels.max()}].")
        if not (np.isfinite(boxes).all() and np.isfinite(scores).all()):
            raise ValueError(f"{where}: boxes and scores must be finite (found nan or inf).")
        wh = boxes[:, 2:] - boxes[:, :2]
        if (wh < 0).any():
            raise ValueError(f"{where}: boxes must be xyxy with x2 >= x1 and y2 >= y1.")
        xywh = np.concatenate([boxes[:, :2], wh], axis=1).tolist()
        out.extend({"image_id": int(image_id), "category_id": lab + 1, "bbox": b, "score": s}
                   for b, s, lab in zip(xywh, scores.tolist(), labels.tolist()))
    return out


def evaluate(dataset: DetectionDataset, ids: Sequence[int], detections: Sequence[Detections],
             engine: str = "faster") -> EvalResult:
    """COCO AP of ``detections`` (one per id, in order) against the GT of ``ids``."""
    return evaluate_annotations(dataset.annotations, dataset.images.size, dataset.classes,
                                ids, detections, engine)


def evaluate_annotations(annotations: Mapping[int, Annotation], size: Callable[[int], tuple[int, int]],
                         classes: Sequence[str], ids: Sequence[int],
                         detections: Sequence[Detections], engine: str = "faster") -> EvalResult:
    """COCO AP of ``detections`` against ``annotations`` of ``ids``: the one path, used on
    the test split by the loop and on labeled subsets by the lab. ``annotations`` needs
    to hold only ``ids`` (the lab passes what the oracle revealed)."""
    dt = detections_to_coco(ids, detections, len(classes))
    gt = coco_ground_truth(annotations, size, classes, ids)
    return evaluate_coco(gt, dt, list(classes), engine)


def evaluate_coco(gt: dict, dt: list[dict], class_names: list[str],
                  engine: str = "faster") -> EvalResult:
    """COCO AP from COCO dicts; category ``i + 1`` is ``class_names[i]``. Inputs are not mutated."""
    if engine not in ENGINES:
        raise ValueError(f"Unknown evaluation engine {engine!r}: choose one of {ENGINES}.")
    n_cls = len(class_names)
    image_ids = {int(im["id"]) for im in gt["images"]}
    anns = [dict(a) for a in gt["annotations"]]
    _check_categories(anns, n_cls, "ground-truth annotation")
    _check_categories(dt, n_cls, "detection")
    n_gt = np.bincount([a["category_id"] - 1 for a in anns if not a.get("iscrowd", 0)],
                       minlength=n_cls)
    if n_gt.sum() == 0:
        raise DatasetError(
            f"The evaluation split ({len(image_ids)} images) holds no ground-truth box that "
            "counts (boxes marked crowd/difficult are ignored), so AP is undefined. Evaluate "
            "on a test split with annotated objects, or check that the annotations were loaded.")
    dt = _top_per_image(dt, MAX_DETS, image_ids)
    gt = {**gt, "annotations": anns,
          "categories": [{"id": i + 1, "name": n} for i, n in enumerate(class_names)]}
    if dt:
        precision = _precision(gt, dt, n_cls, engine)  # (T, R, K)
    else:  # nothing detected: precision is 0 wherever GT exists
        precision = np.broadcast_to(np.where(n_gt > 0, 0.0, -1.0), (10, 101, n_cls))

    def mean_valid(p: np.ndarray) -> float:
        return float(p[p > -1].mean()) if (p > -1).any() else math.nan

    return EvalResult(
        ap=mean_valid(precision), ap50=mean_valid(precision[0]), ap75=mean_valid(precision[5]),
        per_class_ap={n: mean_valid(precision[:, :, k]) for k, n in enumerate(class_names)},
        per_class_ap50={n: mean_valid(precision[0, :, k]) for k, n in enumerate(class_names)},
        n_images=len(image_ids), n_detections=len(dt))


def _check_categories(anns: Sequence[dict], n_cls: int, what: str) -> None:
    bad = {a["category_id"] for a in anns if not 1 <= a["category_id"] <= n_cls}
    if bad:
        raise ValueError(f"Every {what} needs a category_id in 1..{n_cls} "
                         f"(class index + 1); found {sorted(bad)[:5]}.")


def _top_per_image(dt: list[dict], k: int, image_ids: set[int]) -> list[dict]:
    """Copies of the ``k`` highest-scoring detections of each image, in input order, with
    the fields a COCO result object carries (``id``, ``area``, ``iscrowd``)."""
    if not dt:
        return []
    img = np.fromiter((d["image_id"] for d in dt), np.int64, len(dt))
    if not np.isin(img, np.fromiter(image_ids, np.int64, len(image_ids))).all():
        raise ValueError("Some detections refer to images that are not in the ground truth.")
    score = np.fromiter((d["score"] for d in dt), np.float64, len(dt))
    order = np.lexsort((-score, img))  # stable: ties keep input order
    sorted_img = img[order]
    starts = np.flatnonzero(np.r_[True, sorted_img[1:] != sorted_img[:-1]])
    rank = np.arange(len(dt)) - np.repeat(starts, np.diff(np.r_[starts, len(dt)]))
    keep = np.sort(order[rank < k]).tolist()
    return [{**dt[i], "id": n, "area": dt[i]["bbox"][2] * dt[i]["bbox"][3], "iscrowd": 0}
            for n, i in enumerate(keep, 1)]


def _precision(gt: dict, dt: list[dict], n_cls: int, engine: str) -> np.ndarray:
    """COCO's interpolated precision, shape (IoU thresholds, recall thresholds, classes)."""
    dt_set = {"images": gt["images"], "annotations": dt, "categories": gt["categories"]}
    with contextlib.redirect_stdout(io.StringIO()):
        if engine == "faster":
            from faster_coco_eval import COCO, COCOeval_faster

            def quiet(*_: object, **__: object) -> None:
                return None

            ev: Any = COCOeval_faster(COCO(gt, print_function=quiet),
                                      COCO(dt_set, print_function=quiet), "bbox",
                                      print_function=quiet)
        else:
            from pycocotools.coco import COCO as PyCOCO
            from pycocotools.cocoeval import COCOeval

            coco_gt, coco_dt = PyCOCO(), PyCOCO()
            coco_gt.dataset, coco_dt.dataset = gt, dt_set
            coco_gt.createIndex()
            coco_dt.createIndex()
            ev = COCOeval(coco_gt, coco_dt, "bbox")
        p = ev.params
        p.catIds = list(range(1, n_cls + 1))
        p.areaRng, p.areaRngLbl, p.maxDets = [[0.0, 1e5**2]], ["all"], [MAX_DETS]
        ev.evaluate()
        ev.accumulate()
    precision = np.asarray(ev.eval["precision"], np.float64)  # T x R x K x A x M
    return precision[:, :, :, 0, -1]
