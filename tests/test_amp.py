"""The ``amp`` backend option (bf16 autocast) on the CPU: it trains, changes the
arithmetic, keeps every output float32, and the recipe records it. (GPU figures: see
scripts/gpu-check.)"""

from __future__ import annotations

import numpy as np
import pytest

from albench.backends import build_backend
from albench.data import load_dataset

OPTS = {"yolo": {"imgsz": 64, "epochs": 1, "batch": 8},
        "frcnn": {"imgsz": 64, "epochs": 1, "batch": 4, "box_batch_size_per_image": 16,
                  "rpn_post_nms_top_n_train": 50}}


@pytest.mark.parametrize("name", ["yolo", "frcnn"])
def test_amp_trains_and_keeps_outputs_float32(name):
    ds = load_dataset("shapes", pool_size=80, test_size=40, image_size=64)
    labeled = {int(i): ds.annotations[int(i)] for i in ds.pool_ids[:8]}
    losses = {}
    for amp in (False, True):
        b = build_backend(name, ds.images, ds.num_classes, {**OPTS[name], "amp": amp}, "cpu")
        losses[amp] = b.fit(labeled, 0).losses
        assert b.recipe()["amp"] == amp
        det = b.predict(ds.test_ids[:3])
        assert all(d.probs.dtype == np.float32 and d.boxes.dtype == np.float32 for d in det)
        assert b.embed(ds.test_ids[:3]).dtype == np.float32
    assert np.isfinite(losses[True]).all() and losses[True] != losses[False]
