"""The smallest real settings: a tiny shapes pool, tiny detectors, a couple of epochs."""

from __future__ import annotations

TINY_YOLO = {"imgsz": 64, "epochs": 2, "warm_epochs": 1, "batch": 8}

# 64 px images, few RoIs and proposals: each step is a fraction of a second on a CPU.
TINY_FRCNN = {"imgsz": 64, "batch": 4, "epochs": 2, "warm_epochs": 1, "rpn_batch_size_per_image": 64,
              "box_batch_size_per_image": 32, "rpn_post_nms_top_n_train": 200,
              "rpn_pre_nms_top_n_test": 100, "rpn_post_nms_top_n_test": 50, "infer_batch": 8}

# The loop's tiniest setting (``resolve("smoke", **TINY)``; the ``tiny_cfg`` fixture).
TINY = dict(
    dataset="shapes", backend="yolo", initial=16, budget=8, rounds=2,
    dataset_options={"pool_size": 80, "test_size": 40, "image_size": 64},
    backend_options=dict(TINY_YOLO),
)

# The same setting as command-line arguments (after ``run --strategy S``).
TINY_CLI = ["--preset", "smoke", "--initial", "16", "--budget", "8", "--rounds", "2",
            "--dataset-opt", "pool_size=80", "--dataset-opt", "test_size=40",
            "--dataset-opt", "image_size=64", "--backend-opt", "imgsz=64",
            "--backend-opt", "epochs=2", "--backend-opt", "warm_epochs=1",
            "--backend-opt", "batch=8"]
