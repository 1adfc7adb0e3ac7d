"""Hand-checked behaviour of the entropy, coreset and ll4al strategies."""

from __future__ import annotations

import numpy as np
import pytest

from albench.backends import backend_options, build_backend
from albench.backends.base import Detections
from albench.errors import ConfigError
from albench.strategy import build_strategy
from strategies.coreset import k_center_greedy
from strategies.entropy import entropy_scores
from tests.helpers.fakes import FakeBackend
from tests.helpers.fakes import fixed_context as context
from tests.helpers.naive import naive_k_center_greedy

UNIFORM, PEAKED = [0.25, 0.25, 0.25, 0.25], [0.97, 0.01, 0.01, 0.01]
H = {"u": np.log(4.0), "p": -(0.97 * np.log(0.97) + 3 * 0.01 * np.log(0.01))}


def dets(*rows: list[float], scores: list[float] | None = None) -> Detections:
    probs = np.array(rows, np.float32).reshape(len(rows), 4)
    sc = np.array(scores if scores is not None else [0.9] * len(rows), np.float32)
    return Detections(np.zeros((len(rows), 4), np.float32), sc, probs.argmax(1), probs)


def stub(preds=None, feats=None, losses=None) -> FakeBackend:
    """The fake backend with these outputs per id (4 classes)."""
    return FakeBackend(num_classes=4, preds=preds, feats=feats, losses=losses)


# ------------------------------------------------------------------ entropy
def test_entropy_prefers_uniform_over_peaked_probabilities():
    backend = stub({1: dets(PEAKED), 2: dets(UNIFORM), 3: dets(PEAKED, PEAKED)})
    sel = build_strategy("entropy").select(context(backend, [1, 2, 3]), 2)
    assert sel.ids.tolist() == [2, 1]  # 1 and 3 tie: lower id first
    assert sel.scores == pytest.approx([H["u"], H["p"]], rel=1e-5)


def test_entropy_aggregates_differ_and_empty_images_rank_as_documented():
    images = [
        dets(UNIFORM, PEAKED, PEAKED, PEAKED),  # 1: highest max, low mean, high sum
        dets(UNIFORM),                          # 2: highest mean
        dets(*[PEAKED] * 12),                   # 3: highest sum
        Detections.empty(4),                    # 4: no detection
        dets(UNIFORM, scores=[0.01]),           # 5: only a detection below min_score
    ]
    got = {agg: entropy_scores(images, 0.05, agg) for agg in ("max", "mean", "sum")}
    u, p = H["u"], H["p"]
    assert got["max"] == pytest.approx([u, u, p, 0, 0], rel=1e-5)
    assert got["mean"] == pytest.approx([(u + 3 * p) / 4, u, p, -1, -1], rel=1e-5)
    assert got["sum"] == pytest.approx([u + 3 * p, u, 12 * p, 0, 0], rel=1e-5)
    backend = stub(dict(zip(range(1, 6), images)))
    order = {agg: build_strategy("entropy", {"aggregate": agg}).select(
        context(backend, range(1, 6)), 5).ids.tolist() for agg in ("max", "mean", "sum")}
    assert order == {"max": [1, 2, 3, 4, 5], "mean": [2, 1, 3, 4, 5], "sum": [3, 1, 2, 4, 5]}
    # min_score=0 counts image 5's detection
    assert entropy_scores(images, 0.0, "max")[4] == pytest.approx(u, rel=1e-5)


def test_entropy_scores_blocks_agree():
    rng = np.random.default_rng(1)
    images = [dets(*rng.dirichlet(np.ones(4), k), scores=rng.random(k).tolist())
              if (k := int(rng.integers(0, 6))) else Detections.empty(4) for _ in range(300)]
    for agg in ("max", "mean", "sum"):
        assert np.allclose(entropy_scores(images, 0.3, agg, block=7),
                           entropy_scores(images, 0.3, agg, block=1000))


# ------------------------------------------------------------------ coreset
def test_k_center_hand_checked_1d():
    x = np.array([[0.0], [1.0], [2.0], [10.0]])
    picks, dist = k_center_greedy(x, np.array([True, False, False, False]), 3,
                                  return_distances=True)
    assert picks.tolist() == [3, 2, 1] and dist.tolist() == [10.0, 2.0, 1.0]


def test_k_center_ties_go_to_the_lowest_index():
    x = np.array([[5.0], [-1.0], [0.0], [1.0], [5.0]])
    # -1 and 1 are both 1 from the center 0; 5 and 5 are duplicates
    assert k_center_greedy(x[1:4], np.array([False, True, False]), 2).tolist() == [0, 2]
    assert k_center_greedy(x, np.array([False, False, True, False, False]), 2).tolist() == [0, 1]


def test_k_center_without_labeled_points_starts_at_the_lowest_position():
    x = np.array([[3.0], [0.0], [10.0], [4.0]])
    picks, dist = k_center_greedy(x, np.zeros(4, bool), 4, return_distances=True)
    assert picks.tolist() == [0, 2, 1, 3]
    assert dist[0] == np.inf and dist[1:].tolist() == [7.0, 3.0, 1.0]
    assert k_center_greedy(x, np.zeros(4, bool), 10).tolist() == [0, 2, 1, 3]


@pytest.mark.parametrize("seed", range(5))
def test_k_center_equals_the_naive_implementation(seed: int):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((500, 16))
    mask = np.zeros(500, bool) if seed == 0 else rng.random(500) < 0.1
    fast = k_center_greedy(x, mask, 120, chunk=64)  # several blocks each way
    assert fast.tolist() == naive_k_center_greedy(x, mask, 120).tolist()


def test_coreset_strategy_normalises_embeddings_and_maps_ids():
    # labeled id 10 at direction (1, 0); 11 has a large norm but the same direction
    feats = {10: [1, 0], 11: [50, 0], 12: [0, 1], 13: [-1, 0.01], 14: [1, 1]}
    sel = build_strategy("coreset").select(context(stub(feats=feats), [11, 12, 13, 14], [10]), 2)
    assert sel.ids.tolist() == [13, 12]
    assert sel.scores[0] == pytest.approx(2.0, abs=1e-3)


# ------------------------------------------------------------------ ll4al
def test_ll4al_picks_the_highest_predicted_losses():
    losses = {1: 0.3, 2: 2.5, 3: -1.0, 4: 2.5, 5: 0.9}
    sel = build_strategy("ll4al").select(context(stub(losses=losses), [1, 2, 3, 4, 5]), 3)
    assert sel.ids.tolist() == [2, 4, 5] and sel.scores.tolist() == [2.5, 2.5, 0.9]


def test_yolo_loss_head_trains_saves_and_predicts(tmp_path, monkeypatch):
    import albench.backends.adapter as adapter
    from albench.data import load_dataset

    ds = load_dataset("shapes", pool_size=40, test_size=8, image_size=64)
    opts = backend_options("yolo", {"imgsz": 64, "epochs": 3, "batch": 8})
    labeled = {int(i): ds.annotations[int(i)] for i in ds.pool_ids[:16]}
    ids = ds.pool_ids[16:24]

    def backend(features=frozenset({"loss_head"})):
        b = build_backend("yolo", ds.images, ds.num_classes, opts)
        b.enable(features)
        return b

    epochs_seen, original = [], adapter.head_inputs

    def head_inputs(feats, epoch, epochs):
        epochs_seen.append((epoch, epochs))
        return original(feats, epoch, epochs)

    monkeypatch.setattr(adapter, "head_inputs", head_inputs)
    ll4al, plain = backend(), backend(frozenset())
    assert ll4al.recipe() == {**plain.recipe(), "features": ["loss_head"]}
    report = ll4al.fit(labeled, 0)
    assert epochs_seen == [(0, 3), (0, 3), (1, 3), (1, 3), (2, 3), (2, 3)]  # 2 batches an epoch
    assert report.head_seconds > 0 and np.isfinite(report.losses).all()
    predicted = ll4al.predict_loss(ids)
    assert predicted.shape == (8,) and np.isfinite(predicted).all()
    ll4al.save(tmp_path / "ll4al.pt")
    again = backend()
    again.load(tmp_path / "ll4al.pt")
    assert np.array_equal(again.predict_loss(ids), predicted)
    plain.fit(labeled, 0)
    with pytest.raises(ConfigError):
        plain.predict_loss(ids)
    plain.save(tmp_path / "plain.pt")
    with pytest.raises(ConfigError, match="without the loss-prediction head"):
        backend().load(tmp_path / "plain.pt")
