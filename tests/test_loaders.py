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
from tests.helpers.data import coco_doc, write_coco_json, write_image


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
    opts = write_coco_json(tmp_path, train, test, ("a.png", "b.png", "c.png", "d.png"))
    return {**opts, "max_dropped": 0.5}  # one of the four pool boxes is dropped


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
    test = coco_doc([(2, "b.png")], [{"image_id": 2, "category_id": 3, "bbox": [1, 1, 5, 5]}],
                    size=None)
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
    with pytest.raises(ConfigError, match=r"Unknown --dataset-opt 'max_droped' for dataset "
                       r"'coco-json'. Did you mean 'max_dropped'\? Known: .*images_test"):
        load_dataset("coco-json", **user_coco, max_droped=0.5)
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
    ds = load_dataset("coco-json", **write_coco_json(tmp_path, train, test, ("a.png", "b.png")),
                      max_dropped=1.0)
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


# ------------------------------------------------------------- images and annotations as they are


def photo(path: Path, orientation: int = 1, size: tuple[int, int] = (64, 48)) -> None:
    """A JPEG, dark on its left half and light (and noisy) on its right, with an EXIF
    orientation."""
    from PIL import Image as PILImage

    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    pixels = np.zeros((h, w, 3), np.uint8)
    pixels[:, w // 2:] = np.random.default_rng(0).integers(200, 255, (h, w - w // 2, 3))
    exif = PILImage.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    Image.fromarray(pixels).save(path, quality=95, exif=exif.tobytes())


def one_box(image_id: int, category: int = 3, bbox=(1, 1, 10, 10), **extra) -> dict:
    return {"image_id": image_id, "category_id": category, "bbox": list(bbox), **extra}


def small_coco(tmp: Path, names=("a.png", "b.png", "c.png"), test_names=("t.png",),
               train_anns=None, test_anns=None, size=(64, 48), cats=None) -> dict:
    """A pool of ``names`` (one box each unless ``train_anns``) and a test split."""
    pool = [(k + 1, n) for k, n in enumerate(names)]
    test = [(100 + k, n) for k, n in enumerate(test_names)]
    train_anns = [one_box(i) for i, _ in pool] if train_anns is None else train_anns
    test_anns = [one_box(i) for i, _ in test] if test_anns is None else test_anns
    kw = {"size": size, **({"cats": cats} if cats else {})}
    return write_coco_json(tmp, coco_doc(pool, train_anns, **kw), coco_doc(test, test_anns, **kw),
                           tuple(dict.fromkeys((*names, *test_names))))


def test_16_bit_greyscale_is_reduced_to_its_top_8_bits_not_clipped_white(tmp_path: Path) -> None:
    opts = small_coco(tmp_path)
    deep = (np.arange(48 * 64, dtype=np.uint32).reshape(48, 64) * 65535 // 3071).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "img/b.png")
    assert Image.open(tmp_path / "img/b.png").mode == "I;16"
    ds = load_dataset("coco-json", **opts)
    pixels = ds.images.load(2)
    assert pixels.shape == (48, 64, 3) and pixels.dtype == np.uint8
    np.testing.assert_array_equal(pixels[:, :, 0], deep >> 8)
    assert (pixels[:, :, 0] == pixels[:, :, 2]).all() and pixels.min() == 0 and pixels.max() == 255
    assert "train.json: 1 images are 16-bit greyscale" in " ".join(ds.warnings)


def test_float_images_are_refused_with_the_conversion_to_make(tmp_path: Path) -> None:
    opts = small_coco(tmp_path, names=("a.png", "b.tif"))
    Image.fromarray(np.ones((48, 64), np.float32)).save(tmp_path / "img/b.tif")
    with pytest.raises(DatasetError, match=r"b\.tif: its pixels are floats .*no agreed 8-bit "
                                           r"display range; convert"):
        load_dataset("coco-json", **opts)


def test_exif_orientation_turns_the_pixels_and_the_size(tmp_path: Path) -> None:
    opts = small_coco(tmp_path, names=("a.jpg", "b.png"), size=None, train_anns=[
        one_box(1, bbox=(2, 40, 40, 20)), one_box(2)])  # reaches y=60: inside 48x64 only
    photo(tmp_path / "img/a.jpg", orientation=6)  # stored 64x48, shown turned 90 deg clockwise
    ds = load_dataset("coco-json", **opts)
    assert ds.images.size(1) == (48, 64)
    pixels = ds.images.load(1)
    assert pixels.shape == (64, 48, 3)
    assert pixels[:28].mean() < 30 and pixels[36:].mean() > 200  # the dark left half is on top
    np.testing.assert_allclose(ds.annotations[1].boxes, [[2, 40, 42, 60]])
    assert any("train.json: 1 images carry an EXIF orientation tag" in w for w in ds.warnings)
    assert not any("clipped" in w or "dropped" in w for w in ds.warnings)


def test_a_truncated_jpeg_is_refused_at_load(tmp_path: Path) -> None:
    opts = small_coco(tmp_path, names=("a.png", "b.jpg"), size=None)
    photo(tmp_path / "img/b.jpg", size=(320, 240))
    data = (tmp_path / "img/b.jpg").read_bytes()
    (tmp_path / "img/b.jpg").write_bytes(data[: len(data) * 2 // 3])
    with Image.open(tmp_path / "img/b.jpg") as im:
        im.verify()  # the header reads and verify() passes: only a full decode fails
    with pytest.raises(DatasetError,
                       match=r"1 of 2 image files .*/b\.jpg: .*image file is truncated"):
        load_dataset("coco-json", **opts)


def test_image_checks_are_cached_by_file_stamp(tmp_path: Path, monkeypatch) -> None:
    from albench.data import images

    opts = small_coco(tmp_path)
    first = load_dataset("coco-json", **opts, cache_dir=tmp_path / "cache")
    assert list((tmp_path / "cache/image-checks").glob("*.json"))
    calls = []
    real = images.check_image
    monkeypatch.setattr(images, "check_image", lambda p: calls.append(p) or real(p))
    again = load_dataset("coco-json", **opts, cache_dir=tmp_path / "cache")
    assert calls == [] and again.fingerprint() == first.fingerprint()
    data = (tmp_path / "img/b.png").read_bytes()
    (tmp_path / "img/b.png").write_bytes(data[:40])  # changed: checked again, and refused
    with pytest.raises(DatasetError, match=r"b\.png"):
        load_dataset("coco-json", **opts, cache_dir=tmp_path / "cache")
    assert [p.name for p in calls] == ["b.png"]


def copy_file(tmp: Path, source: str, target: str) -> None:
    (tmp / "img" / target).write_bytes((tmp / "img" / source).read_bytes())


# (id, how the data are spoiled, load options, the phrase of the error)
REFUSED = [
    ("test image is a byte copy of a pool image",
     lambda t: (small_coco(t), copy_file(t, "a.png", "t.png")), {},
     r"1 test images are byte-for-byte copies of pool images .*t\.png is \S*a\.png"),
    ("one file under two pool ids",
     lambda t: small_coco(t, names=("a.png", "b.png", "a.png")), {},
     r"the image file \S*a\.png is listed 2 times, under ids 1, 3"),
    ("one picture under two pool ids",
     lambda t: (small_coco(t), copy_file(t, "a.png", "c.png")), {},
     r"train\.json: 1 images are byte-for-byte copies of another image .*a\.png and c\.png"),
    ("duplicate annotation ids",
     lambda t: small_coco(t, train_anns=[one_box(1, id=4), one_box(2, id=4)]), {},
     r"annotation id 4 appears twice"),
    ("a box of booleans",
     lambda t: small_coco(t, train_anns=[one_box(1, bbox=(True, True, True, True))]), {},
     r"bbox \[True, True, True, True\], not \[x, y, width, height\] of four finite numbers"),
    ("NaN in a box",
     lambda t: small_coco(t, train_anns=[one_box(1, bbox=(1, float("nan"), 4, 4))]), {},
     r"bbox \[1, nan, 4, 4\], not .*four finite numbers"),
    ("infinity in a box",
     lambda t: small_coco(t, train_anns=[one_box(1, bbox=(1, 1, float("inf"), 4))]), {},
     r"four finite numbers"),
    ("text in a box",
     lambda t: small_coco(t, train_anns=[one_box(1, bbox=(1, "2", 4, 4))]), {},
     r"four finite numbers"),
    ("two categories of one name",
     lambda t: small_coco(t, cats=((3, "cat"), (7, "cat"))), {},
     r"two categories are named 'cat' \(ids 3 and 7\)"),
    ("declared sizes half the real ones",
     lambda t: small_coco(t, size=(32, 24), train_anns=[
         one_box(i, bbox=(40, 30, 10, 10)) for i in (1, 2, 3)] + [one_box(1)]), {},
     r"train\.json: 3 of its 4 boxes \(75%\) would be dropped .*more than the 5% .*"
     r"3 of its images declare a width or height other than the image file's"),
    ("an empty test split",
     lambda t: small_coco(t, test_names=()), {}, r"test\.json: the test split holds no image"),
    ("an all-crowd test split",
     lambda t: small_coco(t, test_anns=[one_box(100, iscrowd=1)]), {},
     r"test\.json: none of its 1 test images has a box that counts"),
]


@pytest.mark.parametrize("spoil, options, phrase", [r[1:] for r in REFUSED],
                         ids=[r[0] for r in REFUSED])
def test_bad_data_are_refused_at_load(spoil, options, phrase, tmp_path: Path) -> None:
    result = spoil(tmp_path)
    opts = result[0] if isinstance(result, tuple) else result
    with pytest.raises(DatasetError, match=phrase):
        load_dataset("coco-json", **opts, **options)


def test_a_known_leak_can_be_accepted_with_a_warning(tmp_path: Path) -> None:
    opts = small_coco(tmp_path)
    copy_file(tmp_path, "a.png", "t.png")
    ds = load_dataset("coco-json", **opts, allow_test_in_pool=True)
    assert "1 test images are byte-for-byte copies of pool images (e.g. t.png is a.png)" \
        in ds.warnings


def test_exact_copies_of_a_box_are_removed_and_counted(tmp_path: Path) -> None:
    box = one_box(100, bbox=(2, 3, 10, 10))
    opts = small_coco(tmp_path, test_anns=[box, dict(box), one_box(100, bbox=(2, 3, 10, 11))])
    ds = load_dataset("coco-json", **opts)
    np.testing.assert_allclose(ds.annotations[100].boxes, [[2, 3, 12, 13], [2, 3, 12, 14]])
    assert ("test.json: 1 boxes are exact copies of another box of the same image and class "
            "(removed: each would count twice at evaluation)") in ds.warnings


def test_dropping_up_to_the_stated_share_is_allowed_and_beyond_it_refused(tmp_path: Path) -> None:
    from albench.data.checks import MAX_DROPPED_SHARE

    names = tuple(f"{k}.png" for k in range(20))
    outside = one_box(1, bbox=(100, 100, 5, 5))
    opts = small_coco(tmp_path, names=names,
                      train_anns=[one_box(k + 1) for k in range(20)] + [outside])
    assert MAX_DROPPED_SHARE == 0.05
    ds = load_dataset("coco-json", **opts)  # 1 of 21 boxes: under 5%
    assert "train.json: dropped 1 boxes lying outside their image" in " ".join(ds.warnings)
    opts = small_coco(tmp_path, names=names,
                      train_anns=[one_box(k + 1) for k in range(20)] + [outside, dict(outside)])
    with pytest.raises(DatasetError, match=r"2 of its 22 boxes \(9%\) would be dropped"):
        load_dataset("coco-json", **opts)
    assert load_dataset("coco-json", **opts, max_dropped=0.1).annotations[1].n_boxes == 1
    with pytest.raises(ConfigError, match=r"max_dropped must be a number in \[0, 1\], not 1\.5"):
        load_dataset("coco-json", **opts, max_dropped=1.5)


def test_test_only_classes_are_named_in_a_warning(tmp_path: Path) -> None:
    opts = small_coco(tmp_path, test_anns=[one_box(100, category=12), one_box(100)])
    ds = load_dataset("coco-json", **opts)
    assert ("test.json: classes owl occur in the test split but never in the pool; no strategy "
            "can learn them, and each adds an AP of 0 to the mean") in ds.warnings
    assert "classes dog occur neither in the pool nor in the test split (they take no part in " \
           "the mean AP)" in ds.warnings


def test_category_names_must_be_unique_across_the_two_files(tmp_path: Path) -> None:
    pool, test = [(1, "a.png")], [(2, "b.png")]
    opts = write_coco_json(tmp_path, coco_doc(pool, [one_box(1)], cats=((3, "cat"),)),
                           coco_doc(test, [one_box(2, category=4)], cats=((4, "cat"),)),
                           ("a.png", "b.png"))
    with pytest.raises(DatasetError, match=r"Category 'cat' has id 3 in \S*train\.json but 4"):
        load_dataset("coco-json", **opts)


def test_voc_devkit_sources_cover_its_xml_files_so_a_finished_run_sees_an_edit(
        devkit: Path, tmp_path: Path) -> None:
    from albench.runstate import source_stats, sources_unchanged

    ds = load_dataset("voc", data_root=devkit)
    xml = devkit / "VOC2012/Annotations/2008_000002.xml"
    assert str(xml.resolve()) in ds.sources
    assert str((devkit / "VOC2007/ImageSets/Main/test.txt").resolve()) in ds.sources
    run = tmp_path / "run"
    run.mkdir()
    (run / "manifest.json").write_text(json.dumps({"status": "complete", "dataset": {
        "params": ds.params, "sources": source_stats(ds.sources)}}))
    assert sources_unchanged(run)
    xml.write_text(xml.read_text().replace("<xmax>10</xmax>", "<xmax>12</xmax>") + " ")
    assert not sources_unchanged(run)
    assert load_dataset("voc", data_root=devkit).fingerprint() != ds.fingerprint()


# ------------------------------------------------------------------------ a single VOC folder


def voc_folder(root: Path, objects: dict[str, list], lists: dict[str, list[str]] | None = None,
               size: tuple[int, int] = (64, 48)) -> Path:
    """``Annotations/`` + ``JPEGImages/`` (+ ``ImageSets/Main`` lists) under ``root``."""
    (root / "Annotations").mkdir(parents=True)
    for name, objs in objects.items():
        write_image(root / "JPEGImages" / f"{name}.jpg", size)
        (root / "Annotations" / f"{name}.xml").write_text(voc_xml(name, objs, size))
    for split, names in (lists or {}).items():
        (root / "ImageSets/Main").mkdir(parents=True, exist_ok=True)
        (root / f"ImageSets/Main/{split}.txt").write_text("".join(n + "\n" for n in names))
    return root


def cells(n: int = 6) -> dict[str, list]:
    return {f"img_{k:02d}": [("wbc" if k % 2 else "rbc", (2 + k, 3, 20, 30), 0),
                             ("platelet", (30, 5, 40, 15), int(k == 0))] for k in range(n)}


def test_voc_folder_reads_classes_from_the_xml_and_the_split_from_named_lists(
        tmp_path: Path) -> None:
    root = voc_folder(tmp_path / "cells", cells(), {"train": ["img_00", "img_01", "img_02"],
                                                    "val": ["img_03", "img_04", "img_05"]})
    ds = load_dataset("voc", data_root=root, train="train", test="val")
    assert ds.classes == ["platelet", "rbc", "wbc"] and ds.category_ids == [1, 2, 3]
    assert ds.pool_ids.tolist() == [1, 2, 3] and ds.test_ids.tolist() == [4, 5, 6]
    assert ds.images.files[1].name == "img_00.jpg"
    ann = ds.annotations[1]
    np.testing.assert_allclose(ann.boxes, [[1, 2, 20, 30], [29, 4, 40, 15]])  # 1-based -> 0
    assert ann.labels.tolist() == [1, 0] and ann.ignore.tolist() == [False, True]
    assert ds.params["layout"] == "folder" and ds.params["split"] == "lists"
    assert ds.params["train_list"].endswith("train.txt") and ds.warnings == []
    assert {Path(s).name for s in ds.sources} >= {"train.txt", "val.txt", "img_00.xml"}
    only_train = load_dataset("voc", data_root=root, train="train")  # test: the rest
    assert only_train.test_ids.tolist() == [4, 5, 6]


def test_voc_folder_without_lists_is_split_by_a_seeded_recorded_share(tmp_path: Path) -> None:
    root = voc_folder(tmp_path / "cells", cells(10))
    ds = load_dataset("voc", data_root=root, test_share=0.3, seed=4)
    assert (len(ds.pool_ids), len(ds.test_ids)) == (7, 3)
    assert ds.params["split"] == "share" and ds.params["test_share"] == 0.3
    assert ds.params["seed"] == 4
    again = load_dataset("voc", data_root=root, test_share=0.3, seed=4)
    assert again.test_ids.tolist() == ds.test_ids.tolist()
    assert again.fingerprint() == ds.fingerprint()
    others = {tuple(load_dataset("voc", data_root=root, test_share=0.3, seed=s).test_ids)
              for s in range(5)}
    assert len(others) > 1  # the seed decides the split
    with pytest.raises(ConfigError, match=r"test_share must be a number in \(0, 1\), not 1\.5"):
        load_dataset("voc", data_root=root, test_share=1.5)
    with pytest.raises(ConfigError, match=r"seed must be a whole number of at least 0, not -1"):
        load_dataset("voc", data_root=root, seed=-1)


def test_voc_folder_trainval_and_test_lists_are_used_when_present(tmp_path: Path) -> None:
    root = voc_folder(tmp_path / "cells", cells(), {"trainval": ["img_01", "img_02"],
                                                    "test": ["img_00"]})
    ds = load_dataset("voc", data_root=root)
    assert len(ds.pool_ids) == 2 and len(ds.test_ids) == 1
    assert "3 annotated images in" in " ".join(ds.warnings)  # in neither list


def test_voc_folder_classes_option_and_the_voc_classes(tmp_path: Path) -> None:
    root = voc_folder(tmp_path / "cells", cells())
    ds = load_dataset("voc", data_root=root, classes="wbc,rbc,platelet")
    assert ds.classes == ["wbc", "rbc", "platelet"]
    assert ds.annotations[1].labels.tolist() == [1, 2]
    with pytest.raises(DatasetError, match=r"img_00\.xml has an object of class 'platelet', "
                                           r"which is not one of the classes \(wbc, rbc\)"):
        load_dataset("voc", data_root=root, classes="wbc,rbc")
    pets = voc_folder(tmp_path / "pets", {f"p{k}": [("dog", (1, 1, 9, 9), 0),
                                                    ("cat", (5, 5, 20, 20), 0)] for k in range(4)})
    voc = load_dataset("voc", data_root=pets, test_share=0.25)
    assert voc.num_classes == 20 and voc.classes[11] == "dog"
    assert voc.params["classes_from"] == "voc"


def test_voc_folder_degenerate_boxes_and_bad_files(tmp_path: Path) -> None:
    objs = cells(8)
    objs["img_00"].append(("rbc", (7, 7, 7, 12), 0))  # xmin = xmax: a point, not a box
    root = voc_folder(tmp_path / "cells", objs)
    ds = load_dataset("voc", data_root=root, test_share=0.25, seed=1, max_dropped=0.1)
    assert any(w.endswith("dropped 1 boxes of zero or negative width or height")
               for w in ds.warnings)
    assert sum(len(a.boxes) for a in ds.annotations.values()) == 16
    (root / "Annotations/img_03.xml").write_text("<annotation><object>")
    with pytest.raises(DatasetError, match=r"img_03\.xml cannot be parsed"):
        load_dataset("voc", data_root=root, max_dropped=0.1)
    (root / "Annotations/img_03.xml").write_text(voc_xml("img_03", [("rbc", (1, 1, "nan", 5), 0)]))
    with pytest.raises(DatasetError, match=r"img_03\.xml has an object whose <bndbox>/<xmax> "
                                           r"is 'nan', not a finite number"):
        load_dataset("voc", data_root=root, max_dropped=0.1)
    (root / "Annotations/img_03.xml").unlink()
    (root / "JPEGImages/img_04.jpg").unlink()
    with pytest.raises(DatasetError, match=r"1 of \d image files .* first is \S*img_04\.jpg"):
        load_dataset("voc", data_root=root, max_dropped=0.1)


def test_voc_folder_lists_that_share_images_are_a_leak(tmp_path: Path) -> None:
    root = voc_folder(tmp_path / "cells", cells(), {"a": ["img_00", "img_01", "img_02"],
                                                    "b": ["img_02", "img_03"]})
    with pytest.raises(DatasetError, match=r"1 test images are also pool images .*img_02"):
        load_dataset("voc", data_root=root, train="a", test="b")
    (root / "ImageSets/Main/b.txt").write_text("img_09\n")
    with pytest.raises(DatasetError, match=r"no XML file .* the first is 'img_09'"):
        load_dataset("voc", data_root=root, train="a", test="b")
    with pytest.raises(DatasetError, match=r"'nope' .*Lists there: a, b"):
        load_dataset("voc", data_root=root, train="nope")


def test_folder_options_do_not_apply_to_a_devkit_nor_years_to_a_folder(
        devkit: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"VOCdevkit.*option\(s\) test_share apply only"):
        load_dataset("voc", data_root=devkit, test_share=0.5)
    root = voc_folder(tmp_path / "cells", cells())
    with pytest.raises(DatasetError, match=r"single VOC folder .* years option does not apply"):
        load_dataset("voc", data_root=root, years="2007")


BCCD = Path(__file__).resolve().parents[1] / "../shared/data/bccd/BCCD"


@pytest.mark.skipif(not (BCCD / "Annotations").is_dir(),
                    reason=f"the BCCD dataset is not at {BCCD} (../shared/data/bccd/BCCD from "
                           "the repository root); it is an input from outside the project")
def test_bccd_loads_as_a_voc_folder_with_the_counts_of_its_readme() -> None:
    ds = load_dataset("voc", data_root=BCCD)
    assert ds.classes == ["Platelets", "RBC", "WBC"] and ds.params["classes_from"] == "xml"
    assert (len(ds.pool_ids), len(ds.test_ids)) == (292, 72)  # trainval 292, test 72
    assert len(ds.pool_ids) + len(ds.test_ids) == 364
    counts = ds.class_counts(np.concatenate([ds.pool_ids, ds.test_ids]))
    # 4,888 boxes: RBC 4,155, WBC 372, Platelets 361; the two degenerate ones are dropped
    assert counts.sum() == 4888 - 2 and counts.tolist() == [361, 4155 - 2, 372]
    assert [w for w in ds.warnings if "dropped" in w] == [
        "BCCD trainval: dropped 2 boxes of zero or negative width or height"]
    assert {ds.images.size(int(i)) for i in ds.pool_ids} == {(640, 480)}


# ------------------------------------------------------------------------- ultralytics YOLO


def yolo_tree(root: Path, splits: dict[str, dict[str, list[str]]], yaml_text: str) -> Path:
    """``images/<split>/*.png`` + ``labels/<split>/*.txt`` and ``data.yaml``."""
    for split, labels in splits.items():
        for name, lines in labels.items():
            write_image(root / "images" / split / f"{name}.png")
            if lines is not None:
                (root / "labels" / split).mkdir(parents=True, exist_ok=True)
                (root / "labels" / split / f"{name}.txt").write_text("\n".join(lines) + "\n")
    (root / "data.yaml").write_text(yaml_text)
    return root / "data.yaml"


BOXES = {"a": ["0 0.5 0.5 0.5 0.5", "1 0.25 0.25 0.25 0.5"], "b": ["1 0.5 0.5 0.2 0.2"],
         "c": ["0 0.1 0.1 0.3 0.1 0.2 0.4"]}  # c: a polygon (triangle)


def test_yolo_data_yaml_with_train_and_val_folders(tmp_path: Path) -> None:
    data = yolo_tree(tmp_path / "ds", {"train": BOXES, "val": {"v": ["1 0.5 0.5 1 1"]}},
                     "path: .\ntrain: images/train\nval: images/val\nnames: [car, person]\n")
    ds = load_dataset("yolo", data_root=data)
    assert ds.classes == ["car", "person"]
    assert ds.pool_ids.tolist() == [1, 2, 3] and ds.test_ids.tolist() == [4]
    assert ds.images.files[1].name == "a.png" and ds.params["test_split"] == "val"
    np.testing.assert_allclose(ds.annotations[1].boxes, [[16, 12, 48, 36], [8, 0, 24, 24]])
    assert ds.annotations[1].labels.tolist() == [0, 1]
    np.testing.assert_allclose(ds.annotations[3].boxes, [[6.4, 4.8, 19.2, 19.2]], rtol=1e-6)
    np.testing.assert_allclose(ds.annotations[4].boxes, [[0, 0, 64, 48]])
    assert {Path(s).name for s in ds.sources} >= {"data.yaml", "a.txt", "v.txt"}
    assert load_dataset("yolo", data_root=data.parent).fingerprint() == ds.fingerprint()


def test_yolo_test_split_names_dict_and_list_files(tmp_path: Path) -> None:
    data = yolo_tree(tmp_path / "ds", {"train": BOXES, "val": {"v": ["1 0.5 0.5 1 1"]},
                                       "test": {"t": ["0 0.5 0.5 0.5 0.5"]}},
                     "train: train.txt\nval: images/val\ntest: [images/test]\n"
                     "names: {0: car, 1: person}\nnc: 2\n")
    (tmp_path / "ds/train.txt").write_text("./images/train/a.png\n./images/train/b.png\n")
    ds = load_dataset("yolo", data_root=data)
    assert len(ds.pool_ids) == 2 and ds.params["test_split"] == "test"
    assert ds.images.files[int(ds.test_ids[0])].name == "t.png"
    assert load_dataset("yolo", data_root=data, test_split="val").images.files[3].name == "v.png"


YOLO_BAD = [
    ("malformed line", {"a": ["0 0.5 0.5 0.5"]}, r"a\.txt, line 1 .*neither 5 \(a box\)"),
    ("unknown class index", {"a": ["2 0.5 0.5 0.5 0.5"]}, r"a\.txt, line 1 .*class 2 is not"),
    ("pixel coordinates", {"a": ["0 32 24 10 10"]}, r"not normalised to 0\.\.1"),
    ("text", {"a": ["0 0.5 x 0.5 0.5"]}, r"a value that is not a number"),
    ("NaN", {"a": ["0 0.5 nan 0.5 0.5"]}, r"not a finite number"),
]


@pytest.mark.parametrize("labels, phrase", [r[1:] for r in YOLO_BAD], ids=[r[0] for r in YOLO_BAD])
def test_yolo_bad_label_lines_name_the_file_and_line(labels, phrase, tmp_path: Path) -> None:
    data = yolo_tree(tmp_path / "ds", {"train": {**BOXES, **labels}, "val": {"v": BOXES["b"]}},
                     "train: images/train\nval: images/val\nnames: [car, person]\n")
    with pytest.raises(DatasetError, match=phrase):
        load_dataset("yolo", data_root=data)


def test_yolo_missing_labels_copies_and_degenerate_boxes_are_counted(tmp_path: Path) -> None:
    labels = {**BOXES, "b": BOXES["b"] * 2, "d": None, "e": ["0 0.5 0.5 0 0.2"] + BOXES["a"]}
    data = yolo_tree(tmp_path / "ds", {"train": labels, "val": {"v": BOXES["b"]}},
                     "train: images/train\nval: images/val\nnames: [car, person]\n")
    ds = load_dataset("yolo", data_root=data, max_dropped=0.2)
    text = " ".join(ds.warnings)
    assert "data.yaml train: 1 of 5 images have no label file" in text
    assert "data.yaml train: 1 boxes are exact copies" in text
    assert "data.yaml train: dropped 1 boxes of zero or negative width" in text
    assert len(ds.annotations[2].boxes) == 1 and len(ds.annotations[4].boxes) == 0


def test_yolo_bad_data_yaml(tmp_path: Path) -> None:
    tree = {"train": BOXES, "val": {"v": BOXES["b"]}}
    cases = [
        ("train: images/train\nval: images/val\nnames: [car, car]\n", r"'car' appear more"),
        ("train: images/train\nval: images/val\nnames: [car]\nnc: 2\n", r"'nc' is 2 but"),
        ("train: images/train\nnames: [car, person]\n", r"has no 'val' entry"),
        ("train: images/nope\nval: images/val\nnames: [car, person]\n", r"'train' entry "
         r"'images/nope' .* neither a folder"),
        ("train: images/train\nval: images/train\nnames: [car, person]\n",
         r"3 test images are also pool images"),
        ("train: [images/train\n", r"not valid YAML"),
    ]
    for k, (text, phrase) in enumerate(cases):
        data = yolo_tree(tmp_path / f"ds{k}", tree, text)
        with pytest.raises(DatasetError, match=phrase):
            load_dataset("yolo", data_root=data)
    with pytest.raises(DatasetError, match=r"needs --data-root"):
        load_dataset("yolo")


def test_yolo_fingerprint_follows_the_label_files(tmp_path: Path) -> None:
    data = yolo_tree(tmp_path / "ds", {"train": BOXES, "val": {"v": BOXES["b"]}},
                     "train: images/train\nval: images/val\nnames: [car, person]\n")
    before = load_dataset("yolo", data_root=data).fingerprint()
    (tmp_path / "ds/labels/train/b.txt").write_text("1 0.5 0.5 0.3 0.2\n")
    assert load_dataset("yolo", data_root=data).fingerprint() != before


def test_images_without_boxes_are_counted(tmp_path: Path) -> None:
    opts = small_coco(tmp_path, names=("a.png", "b.png", "c.png"), test_names=("t.png", "u.png"),
                      train_anns=[one_box(1), one_box(2)], test_anns=[one_box(100)])
    ds = load_dataset("coco-json", **opts)
    assert "train.json: 1 of 3 pool images have no box (kept: labelled, they are background " \
           "images)" in ds.warnings
    assert any(w.startswith("test.json: 1 of 2 test images have no box") for w in ds.warnings)
    assert ds.annotations[3].n_boxes == 0 and ds.pool_ids.tolist() == [1, 2, 3]
