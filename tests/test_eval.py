"""COCO evaluation: hand-computed cases, edge cases, and agreement of the two engines."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from albench.backends.base import Detections
from albench.data.index import Annotation, DetectionDataset, ImageStore
from albench.errors import DatasetError
from albench.eval import EvalResult, detections_to_coco, evaluate, evaluate_coco

ENGINES = ["faster", "pycocotools"]
CLASSES = ["cat", "dog"]


def make_dataset(gt: dict[int, list[tuple]], classes: list[str] = CLASSES,
                 size: tuple[int, int] = (640, 480)) -> DetectionDataset:
    """A dataset from ``{image_id: [(xyxy, label[, ignore]), ...]}``; no pixels on disk."""
    anns = {}
    for image_id, objs in gt.items():
        if not objs:
            anns[image_id] = Annotation.empty()
            continue
        anns[image_id] = Annotation(
            np.array([o[0] for o in objs], np.float32), np.array([o[1] for o in objs], np.int64),
            np.array([o[2] if len(o) > 2 else False for o in objs], bool))
    ids = np.array(sorted(gt), np.int64)
    store = ImageStore({i: Path(f"/nonexistent/{i}.jpg") for i in gt}, {i: size for i in gt})
    return DetectionDataset("toy", list(classes), list(range(1, len(classes) + 1)), store, anns,
                            ids[:0], ids)


def dets(*rows: tuple, num_classes: int = len(CLASSES)) -> Detections:
    """Detections from ``(xyxy, score, label)`` rows."""
    if not rows:
        return Detections.empty(num_classes)
    labels = np.array([r[2] for r in rows], np.int64)
    return Detections(np.array([r[0] for r in rows], np.float32),
                      np.array([r[1] for r in rows], np.float32), labels,
                      np.eye(num_classes, dtype=np.float32)[labels])


BOX = (10.0, 10.0, 110.0, 110.0)
BOX2 = (200.0, 200.0, 300.0, 300.0)


def run(gt: dict[int, list[tuple]], det: dict[int, Detections], engine: str) -> EvalResult:
    ds = make_dataset(gt)
    ids = sorted(gt)
    return evaluate(ds, ids, [det.get(i, dets()) for i in ids], engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
class TestHandComputed:
    def test_perfect_detection(self, engine: str) -> None:
        r = run({1: [(BOX, 0)]}, {1: dets((BOX, 0.9, 0))}, engine)
        assert r.ap == pytest.approx(1.0) and r.ap50 == pytest.approx(1.0)
        assert r.per_class_ap["cat"] == pytest.approx(1.0)
        assert math.isnan(r.per_class_ap["dog"])  # no GT of the class: nan, not in the mean
        assert (r.n_images, r.n_detections) == (1, 1)

    def test_half_recall_is_51_of_101(self, engine: str) -> None:
        # Recall 0.5 at precision 1: recall thresholds 0.00..0.50 (51 of 101) score 1.
        r = run({1: [(BOX, 0), (BOX2, 0)]}, {1: dets((BOX, 0.9, 0))}, engine)
        assert r.ap50 == pytest.approx(51 / 101, abs=1e-12)
        assert r.ap == pytest.approx(51 / 101, abs=1e-12)

    def test_iou_between_055_and_06_counts_at_two_thresholds(self, engine: str) -> None:
        # IoU 0.58: a hit at IoU thresholds 0.50 and 0.55 only -> AP = 2/10.
        r = run({1: [(BOX, 0)]}, {1: dets(((10.0, 10.0, 110.0, 68.0), 0.9, 0))}, engine)
        assert r.ap == pytest.approx(0.2, abs=1e-12)
        assert r.ap50 == pytest.approx(1.0) and r.ap75 == 0.0

    def test_iou_065_counts_at_four_thresholds(self, engine: str) -> None:
        r = run({1: [(BOX, 0)]}, {1: dets(((10.0, 10.0, 110.0, 75.0), 0.9, 0))}, engine)
        assert r.ap == pytest.approx(0.4, abs=1e-12)  # IoU 0.65: 0.50, 0.55, 0.60, 0.65

    def test_higher_scored_false_positive_halves_precision(self, engine: str) -> None:
        r = run({1: [(BOX, 0)]}, {1: dets((BOX2, 0.9, 0), (BOX, 0.5, 0))}, engine)
        assert r.ap50 == pytest.approx(0.5, abs=1e-12) and r.ap == pytest.approx(0.5, abs=1e-12)

    def test_lower_scored_false_positive_is_free(self, engine: str) -> None:
        r = run({1: [(BOX, 0)]}, {1: dets((BOX2, 0.3, 0), (BOX, 0.5, 0))}, engine)
        assert r.ap == pytest.approx(1.0)

    def test_wrong_class_is_a_false_positive(self, engine: str) -> None:
        r = run({1: [(BOX, 0)], 2: [(BOX, 1)]},
                {1: dets((BOX, 0.9, 1), (BOX, 0.5, 0)), 2: dets((BOX, 0.8, 1))}, engine)
        assert r.per_class_ap["cat"] == pytest.approx(1.0)
        # dog: FP (0.9) then TP (0.8): precision 0.5 at recall 1
        assert r.per_class_ap["dog"] == pytest.approx(0.5, abs=1e-12)
        assert r.ap == pytest.approx(0.75, abs=1e-12)

    def test_detection_on_ignored_box_is_neither_tp_nor_fp(self, engine: str) -> None:
        gt = {1: [(BOX, 0), (BOX2, 0, True)]}
        r = run(gt, {1: dets((BOX2, 0.9, 0), (BOX, 0.5, 0))}, engine)
        assert r.ap == pytest.approx(1.0)  # not a FP above the TP
        r = run(gt, {1: dets((BOX2, 0.9, 0))}, engine)
        assert r.ap == 0.0  # not a TP either: the one counted box is missed

    def test_class_with_only_ignored_boxes_is_nan(self, engine: str) -> None:
        r = run({1: [(BOX, 0), (BOX2, 1, True)]}, {1: dets((BOX, 0.9, 0), (BOX2, 0.8, 1))},
                engine)
        assert math.isnan(r.per_class_ap["dog"]) and math.isnan(r.per_class_ap50["dog"])
        assert r.ap == pytest.approx(1.0)

    def test_false_positives_on_images_without_gt_count(self, engine: str) -> None:
        r = run({1: [(BOX, 0)], 2: []}, {1: dets((BOX, 0.5, 0)), 2: dets((BOX, 0.9, 0))},
                engine)
        assert r.ap == pytest.approx(0.5, abs=1e-12) and r.n_images == 2

    def test_no_detections_gives_zero(self, engine: str) -> None:
        r = run({1: [(BOX, 0)], 2: [(BOX2, 1)], 3: []}, {}, engine)
        assert (r.ap, r.ap50, r.ap75) == (0.0, 0.0, 0.0) and r.n_detections == 0
        assert r.per_class_ap == {"cat": 0.0, "dog": 0.0}

    def test_only_top_100_per_image_count(self, engine: str) -> None:
        # 100 false positives outscore the true positive, which falls past maxDets.
        fps = [((300.0 + i, 300.0, 340.0 + i, 340.0), 0.9, 0) for i in range(100)]
        r = run({1: [(BOX, 0)]}, {1: dets(*fps, (BOX, 0.5, 0))}, engine)
        assert r.ap == 0.0 and r.n_detections == 100
        # The cap is per image, not per class: dog detections also take slots.
        dog = [((300.0 + i, 300.0, 340.0 + i, 340.0), 0.9, 1) for i in range(100)]
        r = run({1: [(BOX, 0)]}, {1: dets(*dog, (BOX, 0.5, 0))}, engine)
        assert r.per_class_ap["cat"] == 0.0


def test_no_counted_gt_raises_dataset_error() -> None:
    with pytest.raises(DatasetError, match="no ground-truth box"):
        run({1: [], 2: [(BOX, 0, True)]}, {1: dets((BOX, 0.9, 0))}, "faster")


@pytest.mark.parametrize("bad, match", [
    (Detections(np.zeros((1, 4), np.float32), np.ones(1, np.float32), np.array([2]),
                np.zeros((1, 2), np.float32)), "labels must lie in 0..1"),
    (Detections(np.zeros((1, 4), np.float32), np.ones(1, np.float32), np.array([-1]),
                np.zeros((1, 2), np.float32)), "labels must lie"),
    (Detections(np.zeros((1, 5), np.float32), np.ones(1, np.float32), np.array([0]),
                np.zeros((1, 2), np.float32)), "expected boxes"),
    (Detections(np.zeros((2, 4), np.float32), np.ones(1, np.float32), np.array([0]),
                np.zeros((1, 2), np.float32)), "expected boxes"),
    (Detections(np.zeros(4, np.float32), np.ones(1, np.float32), np.array([0]),
                np.zeros((1, 2), np.float32)), "expected boxes"),
    (Detections(np.zeros((1, 4), np.float32), np.array(1.0, np.float32), np.array([0]),
                np.zeros((1, 2), np.float32)), "expected boxes"),
    (Detections(np.array([[10, 10, 5, 20]], np.float32), np.ones(1, np.float32),
                np.array([0]), np.zeros((1, 2), np.float32)), "x2 >= x1"),
    (Detections(np.zeros((1, 4), np.float32), np.array([np.nan], np.float32), np.array([0]),
                np.zeros((1, 2), np.float32)), "finite"),
    (Detections(np.zeros((1, 4), np.float32), np.ones(1, np.float32), np.array([0.0]),
                np.zeros((1, 2), np.float32)), "integer"),
])
def test_malformed_detections_raise_value_error(bad: Detections, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        run({1: [(BOX, 0)]}, {1: bad}, "faster")


def test_misuse_raises_value_error() -> None:
    ds = make_dataset({1: [(BOX, 0)], 2: [(BOX, 1)]})
    with pytest.raises(ValueError, match="one Detections per image"):
        evaluate(ds, [1, 2], [dets()])
    with pytest.raises(ValueError, match="Unknown evaluation engine"):
        evaluate(ds, [1, 2], [dets(), dets()], engine="detectron")
    gt = ds.coco_gt([1])
    with pytest.raises(ValueError, match="not in the ground truth"):
        evaluate_coco(gt, [{"image_id": 2, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1.0}],
                      CLASSES)


def test_detections_to_coco_format() -> None:
    out = detections_to_coco([7], [dets(((1.0, 2.0, 11.0, 22.0), 0.75, 1))])
    assert out == [{"image_id": 7, "category_id": 2, "bbox": [1.0, 2.0, 10.0, 20.0],
                    "score": 0.75}]


def test_inputs_not_mutated_and_row_is_flat() -> None:
    ds = make_dataset({1: [(BOX, 0)]})
    gt, dt = ds.coco_gt([1]), detections_to_coco([1], [dets((BOX, 0.9, 0))])
    before = json.dumps([gt, dt], sort_keys=True)
    row = evaluate_coco(gt, dt, CLASSES, engine="pycocotools").as_row()
    assert json.dumps([gt, dt], sort_keys=True) == before
    assert set(row) == {"ap", "ap50", "ap75", "per_class_ap"}
    assert json.loads(row["per_class_ap"]) == {"cat": pytest.approx(1.0), "dog": None}


def random_case(seed: int, n_images: int = 200, classes: int = 4
                ) -> tuple[DetectionDataset, list[int], list[Detections]]:
    """GT boxes with ~10 % crowd, images without GT, an unused class; detections that are
    jittered GT (sometimes mislabelled), random false positives and duplicates, noisy
    scores (higher on average for the jittered GT), and a few images with more than 100 detections."""
    rng = np.random.default_rng(seed)
    names = [f"c{i}" for i in range(classes)] + ["never"]
    gt: dict[int, list[tuple]] = {}
    det: list[Detections] = []
    for image_id in range(1, n_images + 1):
        k = int(rng.poisson(2.5)) if rng.random() > 0.1 else 0
        xy = rng.uniform(0, 500, (k, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(8, 140, (k, 2))], 1)
        labels = rng.integers(0, classes, k)
        gt[image_id] = [(b, lab, rng.random() < 0.1) for b, lab in zip(boxes, labels)]
        hit = rng.random(k) < 0.8
        wh = boxes[hit, 2:] - boxes[hit, :2]
        jit = boxes[hit] + rng.normal(0, 0.08, (hit.sum(), 4)) * np.tile(wh, 2)
        lab = np.where(rng.random(hit.sum()) < 0.9, labels[hit], rng.integers(0, classes, hit.sum()))
        n_fp = int(rng.poisson(3)) + (rng.integers(101, 160) if rng.random() < 0.03 else 0)
        fxy = rng.uniform(0, 560, (n_fp, 2))
        fp = np.concatenate([fxy, fxy + rng.uniform(5, 80, (n_fp, 2))], 1)
        all_boxes = np.concatenate([jit, jit[: len(jit) // 3] + 2.0, fp])
        all_boxes[:, 2:] = np.maximum(all_boxes[:, 2:], all_boxes[:, :2] + 1.0)
        all_labels = np.concatenate([lab, lab[: len(jit) // 3], rng.integers(0, classes, n_fp)])
        scores = np.concatenate([rng.uniform(0.2, 1.0, len(lab)),
                                 rng.uniform(0.0, 0.8, len(all_labels) - len(lab))])
        det.append(Detections(all_boxes.astype(np.float32), scores.astype(np.float32),
                              all_labels.astype(np.int64),
                              np.eye(len(names), dtype=np.float32)[all_labels]))
    return make_dataset(gt, names), list(gt), det


@pytest.mark.parametrize("seed", [0, 1])
def test_engines_agree_on_random_data(seed: int) -> None:
    ds, ids, det = random_case(seed)
    fast = evaluate(ds, ids, det, engine="faster")
    ref = evaluate(ds, ids, det, engine="pycocotools")
    # Same matching and accumulation in both: they agree to float rounding (~1e-16).
    assert 0.1 < ref.ap < 0.9 and ref.n_detections == fast.n_detections
    for a, b in [(fast.ap, ref.ap), (fast.ap50, ref.ap50), (fast.ap75, ref.ap75)]:
        assert a == pytest.approx(b, abs=1e-9)
    for table in ("per_class_ap", "per_class_ap50"):
        f, r = getattr(fast, table), getattr(ref, table)
        assert list(f) == list(r) and math.isnan(f["never"]) and math.isnan(r["never"])
        for name in ds.classes[:-1]:
            assert f[name] == pytest.approx(r[name], abs=1e-9), (table, name)
