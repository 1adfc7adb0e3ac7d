"""PASCAL VOC (``voc``): a VOCdevkit root (pool = trainval of VOC2007 and VOC2012, test =
VOC2007 test), or a single VOC-style folder of a user's own (:mod:`albench.data.vocfolder`).

The two are told apart by their layout: a folder holding ``Annotations/`` and
``JPEGImages/`` is a single folder; one holding ``VOC<year>/`` (itself or in ``VOCdevkit/``)
is a devkit. In a devkit, image ids are ``YYYYNNNNNN`` from the image name (VOC2007's
``000005`` is read as ``2007_000005``, VOC2012's ``2008_000002`` as is); the file path keeps
the original name. ``difficult`` objects are kept with ``ignore=True``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from albench.data.checks import (MAX_DROPPED_SHARE, BoxTally, Split, assemble,
                                 check_max_dropped, merge_sizes, require_files, resolve_root)
from albench.data.images import inspect_images
from albench.data.index import DetectionDataset
from albench.data.vocfolder import FOLDER_DEFAULTS, is_voc_folder, load_folder
from albench.data.vocxml import VOC_CLASSES, parse_xml, read_image_set
from albench.errors import DatasetError

VOC_ENV = "ALBENCH_VOC_ROOT"
VOC_DEFAULT_ROOT = Path("data/VOCdevkit")
VOC_DOWNLOAD = (
    "Download VOCtrainval_06-Nov-2007.tar, VOCtest_06-Nov-2007.tar and "
    "VOCtrainval_11-May-2012.tar from the PASCAL VOC site "
    "(http://host.robots.ox.ac.uk/pascal/VOC/) and extract all three in one folder: each "
    "unpacks into VOCdevkit/, which then holds VOC2007/ and VOC2012/"
)
FRESH_IDS = 10**10  # above every YYYYNNNNNN id: where names of another form are numbered
YEARS_DEFAULT = "2007,2012"


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
               warnings: list[str], max_dropped: float,
               cache_dir: str | os.PathLike | None) -> tuple[Split, list[Path]]:
    """One devkit split and the XML files it was read from."""
    files = {ids[im]: devkit / im.folder / "JPEGImages" / f"{im.name}.jpg" for im in images}
    xmls = {ids[im]: devkit / im.folder / "Annotations" / f"{im.name}.xml" for im in images}
    fix = (f"Re-extract the VOC tar files into {devkit.parent} so that every image named in "
           f"{source} is present.")
    require_files(xmls, source, fix, what="annotation files")
    require_files(files, source, fix)
    parsed = {i: parse_xml(path) for i, path in xmls.items()}
    facts = inspect_images(files, source, cache_dir)
    sizes, differ = merge_sizes({i: p.size for i, p in parsed.items()}, facts, source, warnings)
    tally = BoxTally(source, drop_copies=False, size_mismatch=differ)
    fix_name = "fix the name in the file (a VOCdevkit holds the 20 VOC classes)."
    annotations = {i: tally.clean(p.xyxy(), p.labels(VOC_CLASSES, fix_name), p.difficult,
                                  sizes[i]) for i, p in parsed.items()}
    tally.finish(warnings, max_dropped)
    return Split(source, files, sizes, annotations, facts), [xmls[i] for i in sorted(xmls)]


def load_devkit(devkit: Path, wanted: list[int], max_dropped: float,
                cache_dir: str | os.PathLike | None) -> DetectionDataset:
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
    missing = (f"{VOC_DOWNLOAD}; VOC2007 test.txt comes from VOCtest_06-Nov-2007.tar, "
               "extracted in the same folder as the trainval tars.")
    lists = [devkit / f"VOC{y}/ImageSets/Main/trainval.txt" for y in found]
    test_list = devkit / "VOC2007/ImageSets/Main/test.txt"
    pool_images = [VocImage(y, n) for y, path in zip(found, lists)
                   for n in read_image_set(path, missing)]
    test_images = [VocImage(2007, n) for n in read_image_set(test_list, missing)]
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
    pool, pool_xml = read_split(devkit, pool_images, ids,
                                "+".join(f"VOC{y}" for y in found) + " trainval", warnings,
                                max_dropped, cache_dir)
    test, test_xml = read_split(devkit, test_images, ids, "VOC2007 test", warnings,
                                max_dropped, cache_dir)
    params = {"root": str(devkit.resolve()), "years": found, "years_requested": wanted,
              "pool_sets": [f"VOC{y}/trainval" for y in found], "test_set": "VOC2007/test"}
    ds = assemble("voc", list(VOC_CLASSES), list(range(1, len(VOC_CLASSES) + 1)), pool, test,
                  warnings, params, strict=False)
    ds.sources = [str(p.resolve()) for p in [*lists, test_list, *pool_xml, *test_xml]]
    return ds


def load_voc(data_root: str | os.PathLike | None = None, years: str | list = YEARS_DEFAULT,
             classes: str | None = None, train: str | None = None, test: str | None = None,
             test_share: float = FOLDER_DEFAULTS["test_share"],
             seed: int = FOLDER_DEFAULTS["seed"], allow_test_in_pool: bool = False,
             max_dropped: float = MAX_DROPPED_SHARE,
             cache_dir: str | os.PathLike | None = None) -> DetectionDataset:
    max_dropped = check_max_dropped(max_dropped)
    root, origin = resolve_root(data_root, VOC_ENV, VOC_DEFAULT_ROOT)
    folder_opts = {"classes": classes, "train": train, "test": test, "test_share": test_share,
                   "seed": seed, "allow_test_in_pool": allow_test_in_pool}
    if is_voc_folder(root):
        if years != YEARS_DEFAULT:
            raise DatasetError(f"{root} is a single VOC folder (Annotations/ + JPEGImages/), "
                               "not a VOCdevkit: the years option does not apply to it. Drop "
                               "--dataset-opt years, or pass the VOCdevkit folder.")
        return load_folder(root, max_dropped=max_dropped, cache_dir=cache_dir, **folder_opts)
    wanted = parse_years(years)
    devkit = find_devkit(root, wanted + [2007])
    if devkit is None:
        folders = " or ".join(f"VOC{y}/" for y in wanted)
        raise DatasetError(
            f"PASCAL VOC was not found: neither {root} nor {root / 'VOCdevkit'} ({origin}) "
            f"holds {folders}, and {root} is no VOC folder (Annotations/ and JPEGImages/). "
            f"{VOC_DOWNLOAD}. Then pass that VOCdevkit folder with --data-root or set "
            f"{VOC_ENV}; or pass a folder of your own that holds Annotations/ and JPEGImages/."
        )
    given = sorted(k for k, v in folder_opts.items() if v != FOLDER_DEFAULTS[k])
    if given:
        raise DatasetError(
            f"{devkit} is a VOCdevkit, whose split and classes are fixed by the benchmark: the "
            f"option(s) {', '.join(given)} apply only to a single VOC folder (Annotations/ + "
            "JPEGImages/). Drop them, or pass such a folder with --data-root."
        )
    return load_devkit(devkit, wanted, max_dropped, cache_dir)
