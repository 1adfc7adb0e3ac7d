"""Pretrained weights as a setting: what transfers is counted, recorded and checked.

Local files written by the tests (a tiny yolo, an ultralytics-style checkpoint that names
its architecture, a faster r-cnn) and, where ``../shared/weights`` exists, the two real
pretrained checkpoints."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from albench.backends import build_backend
from albench.backends.weights import checkpoint_architecture, sha256_file
from albench.backends.yolo import architecture
from albench.config import PRESETS, resolve
from albench.data import load_dataset
from albench.errors import ConfigError
from albench.loop import ActiveLearningLoop
from tests.helpers.settings import TINY, TINY_FRCNN, TINY_YOLO

WEIGHTS = Path(__file__).resolve().parents[1] / "../shared/weights"
needs_weights = pytest.mark.skipif(
    not (WEIGHTS / "yolo11n-pose.pt").is_file(),
    reason=f"the pretrained checkpoints are not at {WEIGHTS} (../shared/weights from the "
           "repository root); they are inputs from outside the project")


@pytest.fixture(scope="module")
def ds():
    return load_dataset("shapes", pool_size=24, test_size=8, image_size=64)


def yolo(ds, **opts):
    return build_backend("yolo", ds.images, ds.num_classes, {**TINY_YOLO, **opts})


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_matching_file_transfers_every_tensor_and_its_digest_is_in_the_recipe(ds, tmp_path):
    source = yolo(ds)
    source.model = source._build(seed=7)
    torch.save(source.model.state_dict(), tmp_path / "w.pt")
    b = yolo(ds, weights=str(tmp_path / "w.pt"))
    (t,) = b.weights()
    total = len(source.model.state_dict())
    assert (t.option, t.transferred, t.total, t.file_tensors) == ("weights", total, total, total)
    assert t.sha256 == digest(tmp_path / "w.pt") == b.recipe()["weights_sha256"]
    assert "weights_sha256" not in yolo(ds).recipe()  # no file, no digest: old recipes kept
    model = b._build(seed=123)  # the file's tensors, not seed 123's initialisation
    assert all(torch.equal(v, source.model.state_dict()[k]) for k, v in model.state_dict().items())


def test_other_bytes_at_the_same_path_change_the_recipe(ds, tmp_path):
    path = tmp_path / "w.pt"
    recipes = []
    for seed in (1, 2):
        b = yolo(ds)
        torch.save(b._build(seed).state_dict(), path)
        recipes.append(yolo(ds, weights=str(path)).recipe())
    assert recipes[0]["weights"] == recipes[1]["weights"]
    assert recipes[0]["weights_sha256"] != recipes[1]["weights_sha256"]


def test_a_file_from_another_architecture_is_refused_naming_both(ds, tmp_path):
    other = yolo(ds, scale="n")  # same layer names, other widths: little fits scale t
    torch.save(other._build(0).state_dict(), tmp_path / "n.pt")
    with pytest.raises(ConfigError, match=r"Only \d+ of the model's \d+ tensors .* transfer "
                                          r".*yolov8 scale t.*less than 50% transferring"):
        yolo(ds, weights=str(tmp_path / "n.pt")).weights()
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="not a torch checkpoint"):
        yolo(ds, weights=str(tmp_path / "junk.pt")).weights()
    with pytest.raises(ConfigError, match="does not exist.*never downloads"):
        yolo(ds, weights=str(tmp_path / "nope.pt"))


def test_the_architecture_is_read_from_an_ultralytics_checkpoint(ds, tmp_path):
    from ultralytics.nn.tasks import DetectionModel

    from albench.backends.yolo import _model_cfg

    cfg = _model_cfg("yolo11", "n", 80)
    model = DetectionModel(cfg, ch=3, nc=80, verbose=False)
    model.yaml = {**model.yaml, "yaml_file": "yolo11n-pose.yaml", "scale": "n"}
    torch.save({"model": model, "train_args": {}}, tmp_path / "ckpt.pt")
    assert checkpoint_architecture(tmp_path / "ckpt.pt") == ("yolo11", "n", "yolo11n")
    b = yolo(ds, weights=str(tmp_path / "ckpt.pt"))
    assert (b.opts["model"], b.opts["scale"]) == ("yolo11", "n")
    (t,) = b.weights()
    # all but the class branch of the head (its widths follow the 80 classes)
    assert t.architecture == "yolo11n-pose" and 0.85 < t.share < 1
    # given options win; a family with one yaml per scale is named by that yaml
    assert architecture({"weights": str(tmp_path / "ckpt.pt"), "scale": "s"}) == ("yolo11", "s")
    stub = torch.nn.Linear(1, 1)
    stub.yaml = {"yaml_file": "yolov10n.yaml", "scale": "n"}
    torch.save({"model": stub}, tmp_path / "v10.pt")
    assert architecture({"weights": str(tmp_path / "v10.pt")}) == ("yolov10n", "n")
    torch.save(model.state_dict(), tmp_path / "bare.pt")  # a bare state_dict says nothing
    assert architecture({"weights": str(tmp_path / "bare.pt")}) == ("yolov8", "t")


def test_end_to_end_heads_are_refused_with_the_models_that_work(ds):
    with pytest.raises(ConfigError, match=r"end-to-end .*yolov8 or yolo11"):
        yolo(ds, model="yolov10n", scale="n")


def test_frcnn_counts_both_of_its_files(ds, tmp_path):
    from torchvision.models import mobilenet_v3_large

    base = build_backend("frcnn", ds.images, ds.num_classes, TINY_FRCNN)
    torch.save(base._build(3).state_dict(), tmp_path / "det.pt")
    torch.save(mobilenet_v3_large(weights=None).state_dict(), tmp_path / "bb.pt")
    b = build_backend("frcnn", ds.images, ds.num_classes,
                      {**TINY_FRCNN, "weights": str(tmp_path / "det.pt"),
                       "weights_backbone": str(tmp_path / "bb.pt")})
    det, bb = b.weights()
    assert (det.option, bb.option) == ("weights", "weights_backbone")
    assert det.transferred == det.total and bb.transferred == bb.total
    assert b.recipe()["weights_backbone_sha256"] == digest(tmp_path / "bb.pt")


def test_a_run_records_the_transfer_and_keys_its_round0_model_by_the_bytes(tmp_path, monkeypatch):
    monkeypatch.setenv("ALBENCH_CACHE", str(tmp_path / "cache"))
    ds = load_dataset("shapes", **TINY["dataset_options"])
    path = tmp_path / "w.pt"
    torch.save(yolo(ds)._build(1).state_dict(), path)
    cfg = resolve("smoke", **{**TINY, "rounds": 0,
                              "backend_options": {**TINY_YOLO, "weights": str(path)}})
    result = ActiveLearningLoop(cfg, tmp_path / "out", dataset=ds).run()
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    (w,) = manifest["weights"]
    assert w["sha256"] == digest(path) == manifest["recipe"]["weights_sha256"]
    assert w["transferred"] == w["total"] > 0

    keys = []
    for seed in (1, 2):
        torch.save(yolo(ds)._build(seed).state_dict(), path)
        loop = ActiveLearningLoop(cfg, tmp_path / "out2", dataset=ds)
        loop._setup()
        keys.append(loop._round0_path({int(i): None for i in ds.pool_ids[:4]}))
    assert keys[0] != keys[1]


def test_a_pretrained_preset_needs_weights_and_paper_presets_say_they_run_from_scratch():
    with pytest.raises(ConfigError, match=r"'real-small' is a pretrained recipe.*--backend-opt "
                                          r"weights=PATH"):
        resolve("real-small", dataset="shapes")
    cfg = resolve("real-small", dataset="shapes", backend_options={"weights": "w.pt"})
    assert cfg.backend_options["lr"] == 0.001 and cfg.initial == 20
    frcnn = resolve("real-small", dataset="shapes", backend="frcnn",
                    backend_options={"weights_backbone": "bb.pt"})
    assert frcnn.backend == "frcnn"
    for name in ("voc-ll4al", "voc-miaod", "coco-miaod", "voc07-almdn"):
        assert PRESETS[name].recipe == "scratch"
        assert "ImageNet-pretrained" in PRESETS[name].recipe_note()
    assert "refused without them" in PRESETS["real-small"].recipe_note()


@needs_weights
def test_the_shared_checkpoints_transfer_as_their_readme_says(ds):
    sums = dict(line.split()[::-1] for line in (WEIGHTS / "SHA256SUMS").read_text().splitlines()
                if line.strip())
    b = yolo(ds, weights=str(WEIGHTS / "yolo11n-pose.pt"))
    (t,) = b.weights()
    assert (b.opts["model"], b.opts["scale"]) == ("yolo11", "n")
    assert (t.transferred, t.total) == (493, 499) and t.sha256 == sums["yolo11n-pose.pt"]
    assert sha256_file(WEIGHTS / "yolov10n-coco.pt") == sums["yolov10n-coco.pt"]
    with pytest.raises(ConfigError, match="end-to-end"):  # yolov10n: read, then refused
        yolo(ds, weights=str(WEIGHTS / "yolov10n-coco.pt"))
    with pytest.raises(ConfigError, match=r"Only 235 of the model's 499 tensors .*yolov10n"):
        yolo(ds, weights=str(WEIGHTS / "yolov10n-coco.pt"), model="yolo11", scale="n").weights()


BCCD = Path(__file__).resolve().parents[1] / "../shared/data/bccd/BCCD"


@pytest.mark.slow
@needs_weights
@pytest.mark.skipif(not (BCCD / "Annotations").is_dir(),
                    reason=f"the BCCD dataset is not at {BCCD} (../shared/data/bccd/BCCD from the "
                           "repository root); it is an input from outside the project")
def test_a_pretrained_run_on_real_images_ends_far_above_the_same_run_from_scratch(tmp_path):
    """The property the real-data preset rests on: the same protocol, recipe, data and seed,
    once from the shared COCO-trained checkpoint and once from random initialisation."""
    from albench.results import read_rows

    setting = dict(dataset="voc", dataset_options={"data_root": str(BCCD)}, initial=20,
                   budget=10, rounds=0, strategy="random", seed=0)
    recipe = {"imgsz": 160, "epochs": 8, "lr": 0.001}
    pretrained = resolve("real-small", **setting, backend_options={
        **recipe, "weights": str(WEIGHTS / "yolo11n-pose.pt")})
    scratch = resolve("quick", **setting, backend_options={**recipe, "model": "yolo11",
                                                           "scale": "n"})
    ds = load_dataset("voc", data_root=BCCD)
    final = {}
    for name, cfg in (("pretrained", pretrained), ("scratch", scratch)):
        result = ActiveLearningLoop(cfg, tmp_path / name, dataset=ds).run()
        rows = read_rows(result.run_dir / "rounds.csv")
        assert [int(r["n_labeled"]) for r in rows] == [20]
        final[name] = float(rows[-1]["ap50"])
    assert final["pretrained"] > final["scratch"] + 0.15, final
