"""The backend registry and the surface every backend shares: lazy built-ins, the protocol
the loop and lab call, the picklable spec that rebuilds a backend, and one fit template."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from albench.backends import BACKENDS, Backend, build_backend, build_from_spec
from albench.backends.adapter import BackendBase
from albench.data import load_dataset

OPTS = {"yolo": {"imgsz": 64, "epochs": 1, "warm_epochs": 1, "batch": 8},
        "frcnn": {"imgsz": 64, "epochs": 1, "warm_epochs": 1, "batch": 4,
                  "box_batch_size_per_image": 16, "rpn_post_nms_top_n_train": 50}}


@pytest.fixture(scope="module")
def ds():
    return load_dataset("shapes", pool_size=24, test_size=8, image_size=64)


def test_listing_the_backends_imports_no_detector_framework():
    code = ("import sys\nfrom albench import backends\n"
            "names = sorted((n, i.description) for n, i in backends.available().items())\n"
            "assert [n for n, _ in names] == ['frcnn', 'yolo'], names\n"
            "loaded = [m for m in ('ultralytics', 'torchvision') if m in sys.modules]\n"
            "assert not loaded, loaded\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_a_registered_backend_is_the_protocol_under_its_own_name(ds, name):
    info = BACKENDS[name]
    assert info.cls.name == name and issubclass(info.cls, BackendBase)
    b = build_backend(name, ds.images, ds.num_classes, OPTS[name])
    assert isinstance(b, Backend)
    assert b.images is ds.images and b.device == torch.device("cpu")
    assert (b.epochs(False), b.epochs(True)) == (b.opts["epochs"], b.opts["warm_epochs"])
    verdict = b.deterministic_on_cuda.partition(":")[0]
    assert verdict in ("cheap", "slow")


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_backends_implement_only_their_hooks_not_the_shared_sequence(name):
    own = vars(BACKENDS[name].cls)
    shared = ("fit", "predict", "embed", "predict_loss", "load_state", "clone", "_run")
    assert not [m for m in shared if m in own]
    assert all(m in own for m in ("_build", "_attach_head", "_loss_fn", "_infer", "consistency"))


def test_a_spec_survives_pickling_and_rebuilds_the_same_backend(ds):
    b = build_backend("yolo", ds.images, ds.num_classes, OPTS["yolo"])
    b.enable(frozenset({"loss_head"}))
    b.fit({int(i): ds.annotations[int(i)] for i in ds.pool_ids[:8]}, 0)
    spec = pickle.loads(pickle.dumps(b.spec()))
    assert spec == b.spec() and spec.features == frozenset({"loss_head"})
    twin = build_from_spec(spec, ds.images)
    assert twin.recipe() == b.recipe() and twin.opts == b.opts and twin.model is None
    twin.load_state(b.state())
    ids = ds.test_ids[:4]
    assert np.array_equal(twin.predict_loss(ids), b.predict_loss(ids))
    assert np.array_equal(twin.embed(ids), b.embed(ids))


def test_predicted_losses_and_embeddings_are_forgotten_when_the_model_changes(ds):
    b = build_backend("yolo", ds.images, ds.num_classes, OPTS["yolo"])
    b.enable(frozenset({"loss_head"}))
    labeled = {int(i): ds.annotations[int(i)] for i in ds.pool_ids[:8]}
    b.fit(labeled, 0)
    ids = ds.test_ids[:4]
    first, emb = b.predict_loss(ids), b.embed(ids)
    b.fit(labeled, 1)
    assert not np.array_equal(b.predict_loss(ids), first)
    assert not np.array_equal(b.embed(ids), emb)
