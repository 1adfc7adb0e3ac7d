"""PASCAL VOC (``voc``): pool = trainval of VOC2007 and VOC2012, test = VOC2007 test.

Boxes in the XML files are 1-based inclusive pixel coordinates and become 0-based ``xyxy``
(``x1 - 1, y1 - 1, x2, y2``). ``difficult`` objects are kept with ``ignore=True``.
Image ids are ``YYYYNNNNNN`` from the image name (VOC2007's ``000005`` is read as
``2007_000005``, VOC2012's ``2008_000002`` as is); the file path keeps the original name.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from albench.data.coco import (VERIFY_LIMIT, BoxTally, Size, Split, assemble, inspect_images,
                               merge_sizes, require_files, resolve_root)
from albench.data.index import DetectionDataset
from albench.errors import DatasetError

VOC_CLASSES = [
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
]
VOC_ENV = "ALBENCH_VOC_ROOT"
VOC_DEFAULT_ROOT = Path("data/VOCdevkit")
VOC_DOWNLOAD = (
    "Download VOCtrainval_06-Nov-2007.tar, VOCtest_06-Nov-2007.tar and "
    "VOCtrainval_11-May-2012.tar from the PASCAL VOC site "
    "(http://host.robots.ox.ac.uk/pascal/VOC/) and extract all three in one folder: each "
    "unpacks into VOCdevkit/, which then holds VOC2007/ and VOC2012/"
)
FRESH_IDS = 10**10  # above every YYYYNNNNNN id: where names of another form are numbered


@dataclass(frozen=True)
class VocImage:
    year: int
    name: str

    @property
    def folder(self) -> str:
        return f"VOC{self.year}"

    def standard_id(self) -> int | None:
        if re.fullmatch(r"\d{4}_\d{6}", self.name):
            return int(self.name.replace("_", ""))
        if re.fullmatch(r"\d{6}", self.name):
            return self.year * 10**6 + int(self.name)
        return None


def parse_years(years: str | int | list | tuple) -> list[int]:
    items = years.split(",") if isinstance(years, str) else (
        [years] if isinstance(years, int) else list(years))
    try:
        out = sorted({int(str(y).strip()) for y in items if str(y).strip()})
    except ValueError:
        out = []
    if not out:
        raise DatasetError(f"VOC years {years!r} are not a comma-separated list of years: "
                           "give the years option as e.g. 2007,2012.")
    return out


def find_devkit(root: Path, years: list[int]) -> Path | None:
    """``root`` or ``root/VOCdevkit``, whichever holds a requested ``VOC<year>`` folder."""
    for candidate in (root, root / "VOCdevkit"):
        if any((candidate / f"VOC{y}").is_dir() for y in years):
            return candidate
    return None


def read_image_set(path: Path) -> list[str]:
    if not path.is_file():
        raise DatasetError(
            f"VOC image set {path} does not exist. {VOC_DOWNLOAD}; VOC2007 test.txt comes "
            "from VOCtest_06-Nov-2007.tar, extracted in the same folder as the trainval tars."
        )
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]


def _coord(obj: ET.Element, tag: str, path: Path) -> float:
    try:
        return float(obj.findtext(f"bndbox/{tag}", ""))
    except ValueError:
        raise DatasetError(f"VOC annotation {path} has an object without a numeric "
                           f"<bndbox>/<{tag}>: fix or re-extract the file.") from None


def parse_xml(path: Path) -> tuple[Size | None, np.ndarray, np.ndarray, np.ndarray]:
    """Declared size, 0-based xyxy boxes, labels and the difficult flags of one XML file."""
    try:
        tree = ET.parse(path)
    except (ET.ParseError, OSError) as exc:
        raise DatasetError(f"VOC annotation {path} cannot be parsed ({exc}): the file is "
                           "missing or malformed; re-extract it from the VOC tar.") from None
    xml = tree.getroot()
    try:
        w, h = (int(float(xml.findtext(f"size/{k}", ""))) for k in ("width", "height"))
        size: Size | None = (w, h) if w > 0 and h > 0 else None
    except ValueError:
        size = None
    boxes, labels, difficult = [], [], []
    for obj in xml.iter("object"):
        name = (obj.findtext("name") or "").strip()
        if name not in VOC_CLASSES:
            raise DatasetError(
                f"VOC annotation {path} has an object of class {name!r}, which is not one of "
                f"the 20 VOC classes ({', '.join(VOC_CLASSES)}): fix the name in the file."
            )
        x1, y1, x2, y2 = (_coord(obj, t, path) for t in ("xmin", "ymin", "xmax", "ymax"))
        boxes.append((x1 - 1, y1 - 1, x2, y2))
        labels.append(VOC_CLASSES.index(name))
        difficult.append((obj.findtext("difficult") or "0").strip() not in ("", "0"))
    return (size, np.array(boxes, np.float32).reshape(-1, 4), np.array(labels, np.int64),
            np.array(difficult, bool))


def image_ids(images: list[VocImage]) -> tuple[dict[VocImage, int], int]:
    """Ids for ``images``; names of another form, or that clash, get fresh ids in order."""
    ids: dict[VocImage, int] = {}
    taken: set[int] = set()
    fresh = []
    for image in sorted(images, key=lambda im: (im.year, im.name)):
        image_id = image.standard_id()
        if image_id is None or image_id in taken:
            fresh.append(image)
            continue
        ids[image] = image_id
        taken.add(image_id)
    clashes = sum(im.standard_id() is not None for im in fresh)
    ids.update({im: FRESH_IDS + k for k, im in enumerate(fresh)})
    return ids, clashes


def read_split(devkit: Path, images: list[VocImage], ids: dict[VocImage, int], source: str,
               verify: bool, warnings: list[str]) -> Split:
    files = {ids[im]: devkit / im.folder / "JPEGImages" / f"{im.name}.jpg" for im in images}
    xmls = {ids[im]: devkit / im.folder / "Annotations" / f"{im.name}.xml" for im in images}
    fix = (f"Re-extract the VOC tar files into {devkit.parent} so that every image named in "
           f"{source} is present.")
    require_files(xmls, source, fix, what="annotation files")
    require_files(files, source, fix)
    parsed = {i: parse_xml(path) for i, path in xmls.items()}
    sizes = merge_sizes({i: p[0] for i, p in parsed.items()},
                        inspect_images(files, source, verify), source, warnings)
    tally = BoxTally(source)
    annotations = {i: tally.clean(boxes, labels, ignore, sizes[i])
                   for i, (_, boxes, labels, ignore) in parsed.items()}
    warnings.extend(tally.messages())
    return Split(source, files, sizes, annotations)


def load_voc(data_root: str | os.PathLike | None = None, years: str | list = "2007,2012",
             verify_limit: int = VERIFY_LIMIT) -> DetectionDataset:
    wanted = parse_years(years)
    root, origin = resolve_root(data_root, VOC_ENV, VOC_DEFAULT_ROOT)
    devkit = find_devkit(root, wanted + [2007])
    if devkit is None:
        folders = " or ".join(f"VOC{y}/" for y in wanted)
        raise DatasetError(
            f"PASCAL VOC was not found: neither {root} nor {root / 'VOCdevkit'} ({origin}) "
            f"holds {folders}. {VOC_DOWNLOAD}. Then pass that VOCdevkit folder with "
            f"--data-root or set {VOC_ENV}."
        )
    found = [y for y in wanted if (devkit / f"VOC{y}").is_dir()]
    if not found:
        raise DatasetError(
            f"None of the requested VOC years ({', '.join(map(str, wanted))}) is in {devkit}: "
            "give only years present there in the years option, or add the missing ones. "
            f"{VOC_DOWNLOAD}."
        )
    warnings = [f"VOC{y} is not in {devkit}: the pool uses "
                f"{'+'.join(f'VOC{f}' for f in found) or 'no'} trainval only"
                for y in wanted if y not in found]
    pool_images = [VocImage(y, n) for y in found
                   for n in read_image_set(devkit / f"VOC{y}/ImageSets/Main/trainval.txt")]
    test_images = [VocImage(2007, n)
                   for n in read_image_set(devkit / "VOC2007/ImageSets/Main/test.txt")]
    pool_images = list(dict.fromkeys(pool_images))
    test_images = list(dict.fromkeys(test_images))
    overlap = set(pool_images) & set(test_images)
    if overlap:
        pool_images = [im for im in pool_images if im not in overlap]
        warnings.append(f"VOC2007 trainval and test share {len(overlap)} images; they were "
                        "removed from the pool")
    ids, clashes = image_ids(pool_images + test_images)
    if clashes:
        warnings.append(f"{clashes} VOC image names map to an id already taken; they were "
                        f"given fresh ids from {FRESH_IDS}")
    verify = len(ids) <= verify_limit
    pool = read_split(devkit, pool_images, ids,
                      "+".join(f"VOC{y}" for y in found) + " trainval", verify, warnings)
    test = read_split(devkit, test_images, ids, "VOC2007 test", verify, warnings)
    params = {"root": str(devkit.resolve()), "years": found, "years_requested": wanted,
              "pool_sets": [f"VOC{y}/trainval" for y in found], "test_set": "VOC2007/test"}
    ds = assemble("voc", list(VOC_CLASSES), list(range(1, len(VOC_CLASSES) + 1)), pool, test,
                  warnings, params)
    ds.sources = [str((devkit / s).resolve()) for s in
                  [f"VOC{y}/ImageSets/Main/trainval.txt" for y in found]
                  + ["VOC2007/ImageSets/Main/test.txt"]]
    return ds
