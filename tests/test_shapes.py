"""The embedded ``shapes`` dataset: determinism, caching, and the properties AL relies on."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from albench.data import available, load_dataset, shapes
from albench.data.index import DetectionDataset
from albench.errors import ConfigError

SMALL = {"pool_size": 40, "test_size": 20, "image_size": 64}


@pytest.fixture(scope="module")
def default_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("shapes-default")


@pytest.fixture(scope="module")
def ds(default_root: Path) -> DetectionDataset:
    return shapes.load(cache_dir=default_root)


def _doc(root: Path, dataset: DetectionDataset) -> dict:
    return json.loads((shapes.cache_folder(root, dataset.params) / "annotations.json").read_text())


def test_registered_and_loadable_by_name(tmp_path: Path) -> None:
    assert "shapes" in available()
    dataset = load_dataset("shapes", cache_dir=tmp_path, **SMALL)
    assert dataset.name == "shapes" and dataset.num_classes == 6
    with pytest.raises(ConfigError, match="unknown_option"):
        load_dataset("shapes", cache_dir=tmp_path, unknown_option=1, **SMALL)


def test_default_cache_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALBENCH_CACHE", str(tmp_path))
    dataset = shapes.load(**SMALL)
    folder = shapes.cache_folder(tmp_path / "datasets", dataset.params)
    assert (folder / shapes.MARKER).is_file() and (folder / "images").is_dir()
    assert all(Path(f).parent == folder / "images" for f in dataset.images.files.values())


def test_same_seed_same_data(tmp_path: Path) -> None:
    a = shapes.load(cache_dir=tmp_path / "a", seed=3, **SMALL)
    b = shapes.load(cache_dir=tmp_path / "b", seed=3, **SMALL)
    assert a.fingerprint() == b.fingerprint()
    assert a.params == b.params and a.params["seed"] == 3
    for i in a.annotations:
        np.testing.assert_array_equal(a.annotations[i].boxes, b.annotations[i].boxes)
        np.testing.assert_array_equal(a.annotations[i].labels, b.annotations[i].labels)
    for i in a.pool_ids[:5]:
        np.testing.assert_array_equal(a.images.load(i), b.images.load(i))


def test_different_seed_differs(tmp_path: Path) -> None:
    a = shapes.load(cache_dir=tmp_path, seed=0, **SMALL)
    b = shapes.load(cache_dir=tmp_path, seed=1, **SMALL)
    assert a.fingerprint() != b.fingerprint()
    assert not np.array_equal(a.images.load(1), b.images.load(1))


def test_cache_is_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = shapes.load(cache_dir=tmp_path, **SMALL)
    folder = shapes.cache_folder(tmp_path, first.params)
    assert (folder / shapes.MARKER).is_file() and folder.name.startswith("shapes-")
    stamps = {p: p.stat().st_mtime_ns for p in folder.rglob("*")}

    def no_generation(*_args, **_kwargs):
        raise AssertionError("the cache should have been reused")

    monkeypatch.setattr(shapes, "_generate", no_generation)
    second = shapes.load(cache_dir=tmp_path, **SMALL)
    assert second.fingerprint() == first.fingerprint()
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*")} == stamps
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]


def test_incomplete_cache_is_regenerated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = shapes.load(cache_dir=tmp_path, **SMALL)
    folder = shapes.cache_folder(tmp_path, good.params)
    (folder / shapes.MARKER).unlink()  # as if a non-atomic writer had stopped half-way
    stale = tmp_path / f"{folder.name}.tmp-999999999-deadbeef"  # from a killed process
    (stale / "images").mkdir(parents=True)
    os.utime(stale, (0, 0))
    (folder / "annotations.json").write_text("{")
    for png in sorted((folder / "images").glob("*.png"))[:10]:
        png.unlink()
    calls = []
    real = shapes._generate
    monkeypatch.setattr(shapes, "_generate", lambda *a: calls.append(1) or real(*a))
    again = shapes.load(cache_dir=tmp_path, **SMALL)
    assert calls == [1]
    assert (folder / shapes.MARKER).is_file()
    assert again.fingerprint() == good.fingerprint()
    assert all(again.images.files[i].exists() for i in again.annotations)
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]


def test_interrupted_generation_leaves_nothing_behind(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    real, count = shapes.render_frame, [0]

    def failing(*args):
        count[0] += 1
        if count[0] > 5:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(shapes, "render_frame", failing)
    with pytest.raises(KeyboardInterrupt):
        shapes.load(cache_dir=tmp_path, **SMALL)
    assert list(tmp_path.iterdir()) == []  # neither a final folder nor a temporary one
    monkeypatch.setattr(shapes, "render_frame", real)
    assert len(shapes.load(cache_dir=tmp_path, **SMALL).pool_ids) == SMALL["pool_size"]


def test_invalid_parameters_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        shapes.load(cache_dir=tmp_path, num_classes=9)
    with pytest.raises(ConfigError):
        shapes.load(cache_dir=tmp_path, duplication=1.5)


def test_eight_classes(tmp_path: Path) -> None:
    dataset = shapes.load(cache_dir=tmp_path, num_classes=8, **SMALL)
    assert dataset.classes == list(shapes.CLASSES) and dataset.category_ids == list(range(1, 9))
    assert dataset.class_counts(dataset.test_ids).min() >= 1


def test_splits(ds: DetectionDataset) -> None:
    assert len(ds.pool_ids) == 1000 and len(ds.test_ids) == 250
    assert not set(ds.pool_ids.tolist()) & set(ds.test_ids.tolist())
    assert set(ds.pool_ids.tolist()) | set(ds.test_ids.tolist()) == set(ds.annotations)
    assert np.all(np.diff(ds.pool_ids) > 0) and np.all(np.diff(ds.test_ids) > 0)
    assert ds.params == {"seed": 0, "image_size": 128, "pool_size": 1000, "test_size": 250,
                         "num_classes": 6, "imbalance": 1.8, "duplication": 0.5}


def test_boxes_and_labels(ds: DetectionDataset) -> None:
    size = ds.params["image_size"]
    counts = []
    for ann in ds.annotations.values():
        assert ann.boxes.dtype == np.float32 and ann.labels.dtype == np.int64
        assert ann.boxes.shape == (len(ann.labels), 4) and not ann.ignore.any()
        assert np.all(ann.boxes >= 0) and np.all(ann.boxes <= size)
        assert np.all(ann.boxes[:, 2:] > ann.boxes[:, :2])
        assert np.all((ann.labels >= 0) & (ann.labels < ds.num_classes))
        counts.append(len(ann.labels))
    assert max(counts) <= 6 and min(counts) == 0  # some images hold no object
    boxes = np.concatenate([a.boxes for a in ds.annotations.values()])
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    assert side.min() < 8 and (side < 10).mean() > 0.02 and side.max() > 0.4 * size


def test_long_tailed_pool(ds: DetectionDataset) -> None:
    counts = ds.class_counts(ds.pool_ids)
    # Zipf weights rank**-imbalance: the expected head/tail ratio is 6**1.8 = 25; ask for half.
    assert counts.min() > 0 and counts.max() >= 0.5 * 6 ** ds.params["imbalance"] * counts.min()
    rarest = int(np.argmin(counts))
    present = sum(rarest in ds.annotations[int(i)].labels for i in ds.pool_ids)
    assert present < 0.08 * len(ds.pool_ids)


def test_test_split_covers_every_class(ds: DetectionDataset) -> None:
    test, pool = ds.class_counts(ds.test_ids), ds.class_counts(ds.pool_ids)
    assert test.min() >= shapes.MIN_TEST_INSTANCES
    assert test.max() / test.min() < pool.max() / pool.min()  # flatter than the pool


def test_near_duplicate_groups(ds: DetectionDataset, default_root: Path) -> None:
    images = {im["id"]: im for im in _doc(default_root, ds)["images"]}
    pool_groups = Counter(images[int(i)]["group"] for i in ds.pool_ids)
    in_groups = sum(n for n in pool_groups.values() if n > 1)
    assert in_groups == round(ds.params["duplication"] * len(ds.pool_ids))
    sizes = {n for n in pool_groups.values() if n > 1}
    assert len(sizes) >= 5 and max(sizes) <= shapes.MAX_GROUP
    test_groups = Counter(images[int(i)]["group"] for i in ds.test_ids)
    assert max(test_groups.values()) == 1 and not set(test_groups) & set(pool_groups)
    # members of a group look alike: correlation of 16x16 thumbnails (brightness-invariant)
    def thumb(i: int) -> np.ndarray:
        t = ds.images.load(i).astype(float).reshape(16, 8, 16, 8, 3).mean((1, 3)).ravel()
        return (t - t.mean()) / t.std()

    members = [sorted(i for i in images if images[i]["group"] == g)
               for g, n in pool_groups.items() if n > 1]
    same = [np.mean(thumb(m[0]) * thumb(m[1])) for m in members]
    unrelated = [np.mean(thumb(a[0]) * thumb(b[0])) for a, b in zip(members, members[1:])]
    assert np.median(same) > 0.9 and np.median(unrelated) < 0.4


def test_images_decode(ds: DetectionDataset) -> None:
    for i in list(ds.pool_ids[:3]) + list(ds.test_ids[:3]):
        image = ds.images.load(i)
        assert image.shape == (128, 128, 3) and image.dtype == np.uint8
        assert ds.images.size(i) == (128, 128)


def test_write_grid(ds: DetectionDataset, tmp_path: Path) -> None:
    from PIL import Image

    path = shapes.write_grid(ds, tmp_path / "grid.png", n=4)
    with Image.open(path) as im:
        assert im.width > 2 * 128 and im.height > 2 * 128
    assert path.stat().st_size < 500_000
