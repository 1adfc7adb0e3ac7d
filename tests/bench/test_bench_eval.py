"""Speed of the two COCO engines on 1,000 images, ~2,500 GT boxes, 100,000 detections.

Run with ``pytest tests/bench --benchmark-only``; ``extra_info`` records the sizes, the AP
and, on the pycocotools run, its time relative to the faster engine.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from albench.backends.base import Detections
from albench.data.index import Annotation, DetectionDataset, ImageStore
from albench.eval import EvalResult, evaluate

N_IMAGES, DETS_PER_IMAGE, CLASSES = 1000, 100, 20
_SECONDS: dict[str, float] = {}
_RESULTS: dict[str, EvalResult] = {}


@lru_cache(maxsize=1)
def case() -> tuple[DetectionDataset, list[int], list[Detections]]:
    """Poisson(2.5) GT boxes per image (5 % ignored); 100 detections per image: a jittered
    copy of most GT boxes, the rest random boxes, scores higher on average for the former."""
    rng = np.random.default_rng(0)
    anns, dets = {}, []
    eye = np.eye(CLASSES, dtype=np.float32)
    for image_id in range(1, N_IMAGES + 1):
        k = int(rng.poisson(2.5))
        xy = rng.uniform(0, 500, (k, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(10, 140, (k, 2))], 1)
        labels = rng.integers(0, CLASSES, k)
        anns[image_id] = Annotation(boxes.astype(np.float32), labels, rng.random(k) < 0.05)
        hit = rng.random(k) < 0.85
        wh = boxes[hit, 2:] - boxes[hit, :2]
        tp = boxes[hit] + rng.normal(0, 0.08, (int(hit.sum()), 4)) * np.tile(wh, 2)
        n_fp = DETS_PER_IMAGE - len(tp)
        fxy = rng.uniform(0, 560, (n_fp, 2))
        det_boxes = np.concatenate([tp, np.concatenate([fxy, fxy + rng.uniform(5, 80, (n_fp, 2))], 1)])
        det_boxes[:, 2:] = np.maximum(det_boxes[:, 2:], det_boxes[:, :2] + 1.0)
        det_labels = np.concatenate([labels[hit], rng.integers(0, CLASSES, n_fp)])
        scores = np.concatenate([rng.uniform(0.3, 1.0, len(tp)), rng.uniform(0.0, 0.7, n_fp)])
        dets.append(Detections(det_boxes.astype(np.float32), scores.astype(np.float32),
                               det_labels, eye[det_labels]))
    ids = np.arange(1, N_IMAGES + 1)
    store = ImageStore({i: Path(f"/nonexistent/{i}.jpg") for i in anns},
                       {i: (640, 480) for i in anns})
    ds = DetectionDataset("bench", [f"c{i}" for i in range(CLASSES)], list(range(1, CLASSES + 1)),
                          store, anns, ids[:0], ids)
    return ds, ids.tolist(), dets


@pytest.mark.parametrize("engine", ["faster", "pycocotools"])
def test_bench_evaluate(benchmark, engine: str) -> None:
    ds, ids, dets = case()
    result = benchmark.pedantic(evaluate, args=(ds, ids, dets, engine), rounds=3,
                                warmup_rounds=0, iterations=1)
    _SECONDS[engine] = benchmark.stats.stats.mean
    _RESULTS[engine] = result
    benchmark.extra_info.update(
        engine=engine, n_images=result.n_images, n_detections=result.n_detections,
        n_gt=int(sum(a.n_boxes for a in ds.annotations.values())), ap=result.ap, ap50=result.ap50)
    if engine == "pycocotools" and "faster" in _SECONDS:
        benchmark.extra_info["pycocotools_over_faster"] = _SECONDS[engine] / _SECONDS["faster"]
        assert result.ap == pytest.approx(_RESULTS["faster"].ap, abs=1e-9)
