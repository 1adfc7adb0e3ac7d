"""The file-based loaders (coco, coco-json, voc) on tiny datasets written into tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from albench.data import load_dataset
from albench.data.index import DetectionDataset
from albench.errors import ConfigError, DatasetError


def write_image(path: Path, size: tuple[int, int] = (64, 48)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (90, 120, 30)).save(path)


def coco_doc(images: list[tuple[int, str]], anns: list[dict],
             cats: tuple[tuple[int, str], ...] = ((3, "cat"), (7, "dog"), (12, "owl")),
             size: tuple[int, int] | None = (64, 48)) -> dict:
    def image(i: int, name: str) -> dict:
        entry = {"id": i, "file_name": name}
        if size is not None:
            entry.update(width=size[0], height=size[1])
        return entry

    anns = [{"id": k + 1, "iscrowd": 0, **a} for k, a in enumerate(anns)]
    return {"images": [image(i, n) for i, n in images], "annotations": anns,
            "categories": [{"id": c, "name": n} for c, n in cats]}


def write_coco_json(tmp: Path, train: dict, test: dict, images: tuple[str, ...] = ()) -> dict:
    for name in images:
        write_image(tmp / "img" / name)
    (tmp / "train.json").write_text(json.dumps(train))
    (tmp / "test.json").write_text(json.dumps(test))
    return {"ann_train": tmp / "train.json", "ann_test": tmp / "test.json",
            "images": tmp / "img"}


@pytest.fixture
def user_coco(tmp_path: Path) -> dict:
    """A pool of 3 images (one without boxes) and a test split of 1, categories 3, 7, 12."""
    train = coco_doc([(1, "a.png"), (2, "b.png"), (5, "c.png")], [
        {"image_id": 1, "category_id": 7, "bbox": [10, 5, 20, 10]},
        {"image_id": 1, "category_id": 12, "bbox": [0, 0, 8, 8], "iscrowd": 1},
        {"image_id": 2, "category_id": 3, "bbox": [50, 40, 30, 30]},  # past the edge
        {"image_id": 2, "category_id": 3, "bbox": [5, 5, 0, 10]},  # zero width
    ])
    test = coco_doc([(9, "d.png")], [{"image_id": 9, "category_id": 12, "bbox": [1, 2, 3, 4]}])
    return write_coco_json(tmp_path, train, test, ("a.png", "b.png", "c.png", "d.png"))


def test_coco_json_loads_contiguous_labels_and_xyxy_boxes(user_coco: dict) -> None:
    ds = load_dataset("coco-json", **user_coco)
    assert isinstance(ds, DetectionDataset)
    assert ds.classes == ["cat", "dog", "owl"] and ds.category_ids == [3, 7, 12]
    assert ds.pool_ids.tolist() == [1, 2, 5] and ds.test_ids.tolist() == [9]
    one = ds.annotations[1]
    np.testing.assert_allclose(one.boxes[0], [10, 5, 30, 15])
    assert one.labels.tolist() == [1, 2]
    assert ds.annotations[9].labels.tolist() == [2]
    assert len(ds.annotations[5].boxes) == 0  # images without boxes stay in the pool
    assert ds.images.size(2) == (64, 48)
    assert ds.images.load(1).shape == (48, 64, 3)
    assert ds.params["ann_train"].endswith("train.json")


def test_crowd_boxes_are_ignored(user_coco: dict) -> None:
    ann = load_dataset("coco-json", **user_coco).annotations[1]
    assert ann.ignore.tolist() == [False, True] and ann.n_boxes == 1


def test_boxes_are_clipped_and_zero_area_ones_dropped_and_counted(user_coco: dict) -> None:
    ds = load_dataset("coco-json", **user_coco)
    np.testing.assert_allclose(ds.annotations[2].boxes, [[50, 40, 64, 48]])
    assert "train.json: dropped 1 boxes of zero or negative width or height" in ds.warnings
    assert any(w.startswith("train.json: clipped 1 boxes") for w in ds.warnings)


def test_sizes_missing_from_the_json_are_read_from_the_image(tmp_path: Path) -> None:
    train = coco_doc([(1, "a.png")], [{"image_id": 1, "category_id": 3,
                                       "bbox": [0, 0, 100, 100]}], size=None)
    test = coco_doc([(2, "b.png")], [], size=None)
    opts = write_coco_json(tmp_path, train, test, ("a.png", "b.png"))
    ds = load_dataset("coco-json", **opts)
    assert ds.images.size(1) == (64, 48)
    np.testing.assert_allclose(ds.annotations[1].boxes, [[0, 0, 64, 48]])


def test_shared_image_ids_give_the_test_split_fresh_ids(tmp_path: Path) -> None:
    train = coco_doc([(1, "a.png"), (2, "b.png")],
                     [{"image_id": 1, "category_id": 3, "bbox": [1, 1, 5, 5]}])
    test = coco_doc([(2, "c.png")], [{"image_id": 2, "category_id": 7, "bbox": [1, 1, 5, 5]}])
    ds = load_dataset("coco-json", **write_coco_json(tmp_path, train, test,
                                                     ("a.png", "b.png", "c.png")))
    assert ds.pool_ids.tolist() == [1, 2] and ds.test_ids.tolist() == [3]
    assert ds.images.files[3].name == "c.png" and ds.annotations[3].labels.tolist() == [1]
    assert any("fresh ids" in w for w in ds.warnings)


def test_unknown_option_is_an_error_suggesting_the_near_one(user_coco: dict) -> None:
    with pytest.raises(ConfigError, match=r"Unknown --dataset-opt 'verify_limt' for dataset "
                       r"'coco-json'. Did you mean 'verify_limit'\? Known: .*images_test"):
        load_dataset("coco-json", **user_coco, verify_limt=5)
    with pytest.raises(ConfigError, match=r"'pool_sise' for dataset 'shapes'. Did you mean "
                       r"'pool_size'\? Known: .*test_size"):
        load_dataset("shapes", pool_sise=2000)


def test_declared_options_are_the_loaders_keyword_parameters() -> None:
    """A loader's registered options name exactly its keyword parameters, with their defaults
    (the declarations replace reading the signature, so they must not drift from it)."""
    import inspect

    from albench.data import available
    from albench.data.shapes import CLASSES

    for name, info in available().items():
        params = {p.name: p.default for p in inspect.signature(info.load).parameters.values()}
        assert {k: o.default for k, o in info.options.items()} == params, name
    assert available()["shapes"].options["num_classes"].high == len(CLASSES)


def test_a_pool_without_any_box_is_an_error(tmp_path: Path) -> None:
    train = coco_doc([(1, "a.png"), (2, "b.png")], [])
    test = coco_doc([(3, "c.png")], [{"image_id": 3, "category_id": 7, "bbox": [1, 1, 5, 5]}])
    opts = write_coco_json(tmp_path, train, test, ("a.png", "b.png", "c.png"))
    with pytest.raises(DatasetError, match=r"none of its 2 pool images has a box"):
        load_dataset("coco-json", **opts)


def test_a_pool_with_few_boxed_images_warns(tmp_path: Path) -> None:
    names = [f"{i}.png" for i in range(5)]
    train = coco_doc(list(enumerate(names[:4])),
                     [{"image_id": 0, "category_id": 3, "bbox": [1, 1, 5, 5]}])
    test = coco_doc([(9, names[4])], [{"image_id": 9, "category_id": 3, "bbox": [1, 1, 5, 5]}])
    ds = load_dataset("coco-json", **write_coco_json(tmp_path, train, test, tuple(names)))
    assert "train.json: only 1 of 4 pool images have boxes" in " ".join(ds.warnings)


def test_test_images_that_are_pool_images_are_a_leak(tmp_path: Path) -> None:
    box = {"category_id": 3, "bbox": [1, 1, 5, 5]}
    train = coco_doc([(1, "a.png"), (2, "b.png")], [{"image_id": 1, **box},
                                                    {"image_id": 2, **box}])
    test = coco_doc([(70, "b.png")], [{"image_id": 70, **box}])  # same file, another id
    opts = write_coco_json(tmp_path, train, test, ("a.png", "b.png"))
    with pytest.raises(DatasetError, match=r"1 test images are also pool images.*b\.png"):
        load_dataset("coco-json", **opts)
    ds = load_dataset("coco-json", **opts, allow_test_in_pool=True)
    assert any("also pool images" in w for w in ds.warnings)


def test_dropped_boxes_are_counted_per_kind(tmp_path: Path) -> None:
    train = coco_doc([(1, "a.png")], [
        {"image_id": 1, "category_id": 3, "bbox": [1, 1, 5, 5]},
        {"image_id": 1, "category_id": 3, "bbox": [1, 1, -4, 5]},  # negative width
        {"image_id": 1, "category_id": 3, "bbox": [1, 1, 5, 0]},  # zero height
        {"image_id": 1, "category_id": 3, "bbox": [200, 200, 5, 5]},  # outside the image
    ])
    test = coco_doc([(2, "b.png")], [{"image_id": 2, "category_id": 3, "bbox": [1, 1, 5, 5]}])
    ds = load_dataset("coco-json", **write_coco_json(tmp_path, train, test, ("a.png", "b.png")))
    assert "train.json: dropped 2 boxes of zero or negative width or height" in ds.warnings
    assert ("train.json: dropped 1 boxes lying outside their image (no area left after "
            "clipping to it)") in ds.warnings
    assert ds.annotations[1].boxes.shape == (1, 4)


def test_unknown_category_id_is_fatal(tmp_path: Path) -> None:
    train = coco_doc([(1, "a.png")], [{"image_id": 1, "category_id": 99, "bbox": [1, 1, 5, 5]}])
    opts = write_coco_json(tmp_path, train, coco_doc([(2, "b.png")], []), ("a.png", "b.png"))
    with pytest.raises(DatasetError, match=r"train\.json.*annotation 1 .*category_id 99"):
        load_dataset("coco-json", **opts)


def test_unknown_image_id_is_fatal(tmp_path: Path) -> None:
    train = coco_doc([(1, "a.png")], [{"image_id": 4, "category_id": 3, "bbox": [1, 1, 5, 5]}])
    opts = write_coco_json(tmp_path, train, coco_doc([(2, "b.png")], []), ("a.png", "b.png"))
    with pytest.raises(DatasetError, match=r"train\.json.*image_id 4"):
        load_dataset("coco-json", **opts)


@pytest.mark.parametrize("text, problem", [
    ('{"images": [', "not valid JSON"),
    ('{"images": [], "annotations": []}', "'categories'"),
])
def test_malformed_json_names_the_file(user_coco: dict, text: str, problem: str) -> None:
    Path(user_coco["ann_test"]).write_text(text)
    with pytest.raises(DatasetError, match="test.json") as err:
        load_dataset("coco-json", **user_coco)
    assert problem in str(err.value)


def test_missing_options_name_their_flags(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="--ann-train, --images"):
        load_dataset("coco-json", ann_test=tmp_path / "t.json")


def test_missing_image_file_is_named_and_counted(user_coco: dict) -> None:
    (Path(user_coco["images"]) / "b.png").unlink()
    with pytest.raises(DatasetError, match=r"1 of 3 image files .* first is \S*b\.png"):
        load_dataset("coco-json", **user_coco)


def test_corrupt_image_is_named(tmp_path: Path) -> None:
    train = coco_doc([(1, "a.png"), (2, "broken.jpg")], [])
    opts = write_coco_json(tmp_path, train, coco_doc([(3, "c.png")], []), ("a.png", "c.png"))
    (tmp_path / "img/broken.jpg").write_bytes(np.random.default_rng(0).bytes(500))
    with pytest.raises(DatasetError, match=r"broken\.jpg.*cannot be decoded"):
        load_dataset("coco-json", **opts)


def test_coco_gt_is_accepted_by_pycocotools(user_coco: dict) -> None:
    from pycocotools.coco import COCO

    ds = load_dataset("coco-json", **user_coco)
    gt = COCO()
    gt.dataset = ds.coco_gt(np.concatenate([ds.pool_ids, ds.test_ids]))
    gt.createIndex()
    assert sorted(gt.getImgIds()) == [1, 2, 5, 9]
    assert len(gt.getAnnIds(iscrowd=False)) == 3


# --------------------------------------------------------------------------------- coco 2017


def test_coco_2017_tree(tmp_path: Path) -> None:
    train = coco_doc([(1, "000000000001.jpg"), (2, "000000000002.jpg"),
                      (3, "000000000003.jpg")], [
        {"image_id": 1, "category_id": 3, "bbox": [1, 1, 10, 10]},
        {"image_id": 3, "category_id": 7, "bbox": [1, 1, 10, 10], "iscrowd": 1},
    ])
    val = coco_doc([(10, "000000000010.jpg"), (11, "000000000011.jpg")],
                   [{"image_id": 10, "category_id": 12, "bbox": [2, 2, 4, 4]}])
    (tmp_path / "annotations").mkdir()
    for split, doc in (("train", train), ("val", val)):
        (tmp_path / f"annotations/instances_{split}2017.json").write_text(json.dumps(doc))
        for image in doc["images"]:
            write_image(tmp_path / f"{split}2017" / image["file_name"])
    ds = load_dataset("coco", data_root=str(tmp_path))
    assert ds.pool_ids.tolist() == [1]  # 2 has no box, 3 only a crowd box
    assert ds.test_ids.tolist() == [10, 11]
    assert set(ds.annotations) == {1, 10, 11}
    assert ds.classes == ["cat", "dog", "owl"]
    assert ds.params["keep_empty"] is False and ds.params["pool_images_without_boxes"] == 2
    assert load_dataset("coco", data_root=tmp_path, keep_empty=True).pool_ids.tolist() \
        == [1, 2, 3]


def test_coco_root_from_the_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ALBENCH_COCO_ROOT", str(tmp_path / "nowhere"))
    with pytest.raises(DatasetError) as err:
        load_dataset("coco")
    message = str(err.value)
    for needle in ("nowhere", "ALBENCH_COCO_ROOT", "--data-root", "cocodataset.org",
                   "instances_train2017.json"):
        assert needle in message


# --------------------------------------------------------------------------------------- voc


def voc_xml(name: str, objects: list[tuple[str, tuple[int, int, int, int], int]],
            size: tuple[int, int] = (64, 48)) -> str:
    objs = "".join(
        f"<object><name>{c}</name><difficult>{d}</difficult><bndbox><xmin>{b[0]}</xmin>"
        f"<ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for c, b, d in objects)
    return (f"<annotation><filename>{name}.jpg</filename><size><width>{size[0]}</width>"
            f"<height>{size[1]}</height><depth>3</depth></size>{objs}</annotation>")


def write_voc_year(devkit: Path, year: int, sets: dict[str, list[str]]) -> None:
    base = devkit / f"VOC{year}"
    (base / "Annotations").mkdir(parents=True)
    (base / "ImageSets/Main").mkdir(parents=True)
    for split, names in sets.items():
        (base / f"ImageSets/Main/{split}.txt").write_text("".join(n + "\n" for n in names))
        for name in names:
            write_image(base / "JPEGImages" / f"{name}.jpg")
            (base / "Annotations" / f"{name}.xml").write_text(voc_xml(name, [
                ("dog", (1, 1, 10, 20), 0), ("person", (5, 5, 30, 30), 1)]))


@pytest.fixture
def devkit(tmp_path: Path) -> Path:
    root = tmp_path / "VOCdevkit"
    write_voc_year(root, 2007, {"trainval": ["000005", "000007"], "test": ["000001"]})
    write_voc_year(root, 2012, {"trainval": ["2008_000002"]})
    return root


def test_voc_devkit_pool_is_07_12_trainval_and_test_is_07_test(devkit: Path) -> None:
    ds = load_dataset("voc", data_root=devkit)
    assert ds.pool_ids.tolist() == [2007000005, 2007000007, 2008000002]
    assert ds.test_ids.tolist() == [2007000001]
    assert ds.images.files[2008000002].name == "2008_000002.jpg"
    assert ds.num_classes == 20 and ds.classes[0] == "aeroplane" and ds.classes[-1] == "tvmonitor"
    ann = ds.annotations[2007000005]
    np.testing.assert_allclose(ann.boxes, [[0, 0, 10, 20], [4, 4, 30, 30]])
    assert ann.labels.tolist() == [ds.classes.index("dog"), ds.classes.index("person")]
    assert ann.ignore.tolist() == [False, True]
    assert ds.params["years"] == [2007, 2012] and ds.warnings == []


def test_voc_root_may_be_the_devkit_parent_and_years_select(devkit: Path) -> None:
    ds = load_dataset("voc", data_root=devkit.parent, years="2007")
    assert ds.pool_ids.tolist() == [2007000005, 2007000007]


def test_voc_malformed_xml_names_the_file(devkit: Path) -> None:
    (devkit / "VOC2012/Annotations/2008_000002.xml").write_text("<annotation><object>")
    with pytest.raises(DatasetError, match=r"2008_000002\.xml"):
        load_dataset("voc", data_root=devkit)


def test_voc_missing_root_names_env_flag_and_download(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("ALBENCH_VOC_ROOT", raising=False)
    with pytest.raises(DatasetError) as err:
        load_dataset("voc", data_root=tmp_path / "missing")
    message = str(err.value)
    for needle in ("missing", "ALBENCH_VOC_ROOT", "--data-root", "VOCtrainval_06-Nov-2007.tar",
                   "VOCtest_06-Nov-2007.tar", "VOCtrainval_11-May-2012.tar"):
        assert needle in message


def test_voc_coco_gt_is_accepted_by_pycocotools(devkit: Path) -> None:
    from pycocotools.coco import COCO

    ds = load_dataset("voc", data_root=devkit)
    gt = COCO()
    gt.dataset = ds.coco_gt(ds.test_ids)
    gt.createIndex()
    assert gt.getImgIds() == [2007000001] and len(gt.getAnnIds(iscrowd=True)) == 1
