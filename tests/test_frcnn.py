"""The frcnn backend on the real shapes data at the tiniest scale (CPU, random init)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from albench.backends import build_backend
from albench.data import load_dataset
from albench.errors import ConfigError
from albench.eval import evaluate
from albench.loop import ActiveLearningLoop
from albench.results import read_jsonl, read_rows
from tests.helpers.settings import TINY_FRCNN

# 64 px images, few RoIs and proposals: each step is a fraction of a second on a CPU.
TINY = TINY_FRCNN


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small convolutions gain little from threads, and on a busy CPU several threads
    oversubscribe it (ten times slower here); the previous setting is restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def ds():
    return load_dataset("shapes", pool_size=40, test_size=12, image_size=64)


def labeled(ds, n):
    return {int(i): ds.annotations[int(i)] for i in ds.pool_ids[:n]}


def backend(ds, **opts):
    return build_backend("frcnn", ds.images, ds.num_classes, {**TINY, **opts})


@pytest.fixture(scope="module")
def trained(ds):
    b = backend(ds)
    report = b.fit(labeled(ds, 4), seed=0, epochs=10)  # one step per epoch
    return b, report


def test_training_loss_falls(trained):
    _, report = trained
    assert report.epochs == 10 and report.iterations == 10 and report.seconds > 0
    assert np.isfinite(report.losses).all()
    first, last = np.mean(report.losses[:2]), np.mean(report.losses[-2:])
    assert last < 0.7 * first, report.losses


def test_predict_gives_valid_detections_with_probability_rows(ds, trained):
    b, _ = trained
    dets = b.predict(ds.test_ids)
    assert len(dets) == len(ds.test_ids) and sum(len(d) for d in dets) > 0
    for image_id, d in zip(ds.test_ids, dets):
        w, h = ds.images.size(image_id)
        k = len(d)
        assert k <= 100
        assert d.boxes.shape == (k, 4) and d.probs.shape == (k, ds.num_classes)
        assert d.boxes.dtype == np.float32 and d.labels.dtype == np.int64
        assert (d.boxes[:, [0, 2]] >= 0).all() and (d.boxes[:, [0, 2]] <= w).all()
        assert (d.boxes[:, [1, 3]] >= 0).all() and (d.boxes[:, [1, 3]] <= h).all()
        assert ((d.labels >= 0) & (d.labels < ds.num_classes)).all()
        np.testing.assert_allclose(d.probs.sum(1), 1.0, atol=1e-5)
        # score = softmax of the label incl. background <= the renormalised foreground share
        assert (d.probs[np.arange(k), d.labels] >= d.scores - 1e-6).all()
    result = evaluate(ds, ds.test_ids, dets)
    assert np.isfinite(result.ap) and np.isfinite(result.ap50)


def test_predictions_match_torchvision_postprocessing(ds, trained):
    b, _ = trained
    ids = [int(i) for i in ds.test_ids[:4]]
    ours = b.predict(ids)
    with torch.no_grad():
        ref = b.model.eval()([b._image(i).float() / 255.0 for i in ids])
    for d, r in zip(ours, ref):
        np.testing.assert_array_equal(d.labels, r["labels"].numpy() - 1)
        np.testing.assert_allclose(d.scores, r["scores"].numpy(), rtol=1e-6)
        np.testing.assert_allclose(d.boxes, r["boxes"].numpy().clip(0, 64), atol=1e-4)


def test_embed_is_fixed_width_and_finite(ds, trained):
    b, _ = trained
    a = b.embed(ds.test_ids[:5])
    c = b.embed(ds.pool_ids[:3])
    assert a.dtype == np.float32 and a.shape[0] == 5 and c.shape == (3, a.shape[1])
    assert a.shape[1] == 256 * 3  # three FPN levels of the MobileNet FPN, 256 channels each
    assert np.isfinite(a).all() and np.isfinite(c).all()


def test_save_load_gives_identical_predictions(ds, trained, tmp_path):
    b, _ = trained
    b.save(tmp_path / "m.pt")
    other = backend(ds)
    other.load(tmp_path / "m.pt")
    for x, y in zip(b.predict(ds.test_ids), other.predict(ds.test_ids)):
        for field in ("boxes", "scores", "labels", "probs"):
            np.testing.assert_array_equal(getattr(x, field), getattr(y, field))
    np.testing.assert_array_equal(b.embed(ds.test_ids), other.embed(ds.test_ids))


def test_same_seed_same_weights(ds):
    states = []
    for _ in range(2):
        b = backend(ds)
        b.fit(labeled(ds, 4), seed=7, epochs=2)
        states.append(b.model.state_dict())
    for k, v in states[0].items():
        assert torch.equal(v, states[1][k]), k


def test_local_weights_are_loaded(ds, trained, tmp_path):
    b, _ = trained
    torch.save(b.model.state_dict(), tmp_path / "det.pt")
    other = backend(ds, weights=str(tmp_path / "det.pt"))
    other.model = other._build(seed=123)  # initialised from the file, not trained further
    np.testing.assert_allclose(other.embed(ds.test_ids), b.embed(ds.test_ids), rtol=1e-4, atol=1e-4)
    for x, y in zip(b.predict(ds.test_ids), other.predict(ds.test_ids)):
        np.testing.assert_allclose(x.scores[:5], y.scores[:5], rtol=1e-3, atol=1e-5)
        np.testing.assert_allclose(x.boxes[:5], y.boxes[:5], atol=1e-2)


def test_local_backbone_weights_are_loaded(ds, tmp_path):
    from torchvision.models import mobilenet_v3_large

    torch.manual_seed(5)
    net = mobilenet_v3_large(weights=None)
    torch.save(net.state_dict(), tmp_path / "bb.pt")
    model = backend(ds, weights_backbone=str(tmp_path / "bb.pt"))._build(seed=0)
    assert torch.equal(model.backbone.body["16"][0].weight, net.features[16][0].weight)


def test_missing_weights_or_unknown_feature_is_a_config_error(ds, tmp_path):
    for key in ("weights", "weights_backbone"):
        with pytest.raises(ConfigError, match="nope.pt does not exist.*never downloads"):
            backend(ds, **{key: str(tmp_path / "nope.pt")})
    with pytest.raises(ConfigError):
        backend(ds).enable(frozenset({"consistency"}))
    with pytest.raises(ConfigError):
        backend(ds, arch="vgg16")


def test_loss_head_trains_and_predicts_losses(ds, tmp_path):
    b = backend(ds)
    b.enable(frozenset({"loss_head"}))
    assert "loss_head" in b.recipe()["features"] and backend(ds).recipe()["features"] == []
    b.fit(labeled(ds, 4), seed=0, epochs=1)
    before = copy.deepcopy(b.model.loss_head.state_dict())
    report = b.fit(labeled(ds, 8), seed=1, warm_start=True, epochs=2)
    assert np.isfinite(report.losses).all() and report.head_seconds > 0
    after = b.model.loss_head.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    pred = b.predict_loss(ds.test_ids)
    assert pred.shape == (len(ds.test_ids),) and np.isfinite(pred).all()
    b.save(tmp_path / "ll.pt")
    other = backend(ds)
    other.enable(frozenset({"loss_head"}))
    other.load(tmp_path / "ll.pt")
    np.testing.assert_array_equal(other.predict_loss(ds.test_ids), pred)


def test_active_learning_loop_end_to_end(tiny_cfg, tmp_path):
    cfg = tiny_cfg(backend="frcnn", strategy="random", initial=8, budget=4,
                   dataset_options={"pool_size": 40, "test_size": 12}, backend_options=TINY)
    result = ActiveLearningLoop(cfg, tmp_path).run()
    rows = read_rows(result.run_dir / "rounds.csv")
    assert [int(r["round"]) for r in rows] == [0, 1, 2]
    assert [int(r["n_labeled"]) for r in rows] == [8, 12, 16]
    sels = read_jsonl(result.run_dir / "selections.jsonl")
    assert [len(s["ids"]) for s in sels] == [4, 4]
    assert all(np.isfinite(float(r["ap50"])) for r in rows)
