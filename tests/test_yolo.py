"""The yolo backend on the real shapes data at the tiniest scale (CPU, random init)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from albench.backends import build_backend
from albench.data import load_dataset
from albench.errors import ConfigError
from albench.loop import ActiveLearningLoop
from albench.results import read_rows
from tests.helpers.settings import TINY_YOLO

TINY = TINY_YOLO


@pytest.fixture(scope="module")
def ds():
    return load_dataset("shapes", pool_size=40, test_size=12, image_size=64)


def labeled(ds, n):
    return {int(i): ds.annotations[int(i)] for i in ds.pool_ids[:n]}


def backend(ds, **opts):
    return build_backend("yolo", ds.images, ds.num_classes, {**TINY, **opts})


@pytest.fixture(scope="module")
def trained(ds):
    b = backend(ds)
    report = b.fit(labeled(ds, 16), seed=0, epochs=12)
    return b, report


def test_training_loss_falls(trained):
    _, report = trained
    assert report.epochs == 12 and report.iterations == 24 and np.isfinite(report.losses).all()
    # YOLO's assigner finds few positives at initialisation: the loss rises, then falls
    assert np.mean(report.losses[-3:]) < 0.8 * max(report.losses), report.losses


def test_predictions_are_valid_with_probability_rows(ds, trained):
    b, _ = trained
    for image_id, det in zip(ds.test_ids, b.predict(ds.test_ids)):
        w, h = ds.images.size(image_id)
        assert det.boxes.dtype == np.float32 and det.probs.shape == (len(det), ds.num_classes)
        assert (det.boxes[:, [0, 2]] <= w).all() and (det.boxes[:, [1, 3]] <= h).all()
        assert (det.boxes[:, 2] >= det.boxes[:, 0]).all()
        if len(det):
            np.testing.assert_allclose(det.probs.sum(1), 1, rtol=1e-4)
            assert (det.labels < ds.num_classes).all()


def test_save_load_gives_identical_predictions_and_embeddings(ds, trained, tmp_path):
    b, _ = trained
    b.save(tmp_path / "m.pt")
    other = backend(ds)
    other.load(tmp_path / "m.pt")
    for x, y in zip(b.predict(ds.test_ids), other.predict(ds.test_ids)):
        for field in ("boxes", "scores", "labels", "probs"):
            np.testing.assert_array_equal(getattr(x, field), getattr(y, field))
    np.testing.assert_array_equal(b.embed(ds.test_ids), other.embed(ds.test_ids))


def test_in_memory_state_round_trip_and_clone_independence(ds, trained):
    b, _ = trained
    before = b.state()
    twin = b.clone()
    twin.fit(labeled(ds, 8), seed=3, epochs=1, warm_start=True)
    assert all(torch.equal(before[k], v) for k, v in b.state().items())  # the clone trained alone
    other = backend(ds)
    other.load_state(before)
    np.testing.assert_array_equal(b.embed(ds.test_ids), other.embed(ds.test_ids))


def test_same_seed_same_weights_other_seed_differs(ds):
    states = []
    for seed in (7, 7, 8):
        b = backend(ds)
        b.fit(labeled(ds, 8), seed=seed, epochs=1)
        states.append(b.state())
    assert all(torch.equal(v, states[1][k]) for k, v in states[0].items())
    assert not all(torch.equal(v, states[2][k]) for k, v in states[0].items())


def test_local_weights_are_loaded_and_missing_ones_are_clear_errors(ds, trained, tmp_path):
    b, _ = trained
    torch.save({"model": b.model}, tmp_path / "ckpt.pt")  # an ultralytics-style checkpoint
    other = backend(ds, weights=str(tmp_path / "ckpt.pt"))
    other.model = other._build(seed=123)
    np.testing.assert_allclose(other.embed(ds.test_ids), b.embed(ds.test_ids), rtol=1e-5, atol=1e-5)
    with pytest.raises(ConfigError, match="does not exist"):
        backend(ds, weights=str(tmp_path / "nope.pt"))._build(0)


def test_scratch_mode_retrains_from_initialisation_each_round(tiny_cfg, tmp_path):
    """The papers' protocol (every paper preset) end to end: round 1's model is exactly a
    training from initialisation (round 1's seed, ``epochs``) on round 1's labeled set."""
    import json

    from albench.loop import model_seed
    from albench.runfolder import RunFolder

    cfg = tiny_cfg(strategy="random", train_mode="scratch", rounds=1, seed=5)
    result = ActiveLearningLoop(cfg, tmp_path).run()
    rows = read_rows(result.run_dir / "rounds.csv")
    assert [int(r["n_labeled"]) for r in rows] == [16, 24]
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["config"]["train_mode"] == "scratch" and manifest["status"] == "complete"
    state = json.loads((result.run_dir / "state" / "state.json").read_text())
    data = load_dataset("shapes", **cfg.dataset_options)
    ids = data.pool_ids[np.asarray(state["labeled_round"]) >= 0]
    fresh = build_backend("yolo", data.images, data.num_classes, dict(cfg.backend_options))
    fresh.fit({int(i): data.annotations[int(i)] for i in ids}, model_seed(5, 1))
    saved = torch.load(RunFolder(result.run_dir).model_path(), weights_only=False)["state_dict"]
    assert all(torch.equal(v, saved[k]) for k, v in fresh.state().items())
