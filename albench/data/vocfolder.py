"""A single VOC-style folder of a user's own: ``Annotations/*.xml`` + ``JPEGImages/``
(+ optional ``ImageSets/Main/*.txt`` lists), e.g. an export of labelImg, CVAT or Roboflow.

- **Images**: ``JPEGImages/<name>`` with the XML file's name and an image suffix (``.jpg``
  first), else the file the XML's ``<filename>`` names. Ids are 1.. in name order.
- **Classes**: the ``classes=a,b,c`` option in that order; else the 20 VOC classes, in VOC's
  order, when every name in the XML files is one of them; else the names found, sorted.
- **Split**: the list files named by ``train=`` / ``test=`` (a name in ``ImageSets/Main/``
  or a path; one given, the other is the rest); with neither, ``trainval`` + ``test`` when
  both lists exist; else a share ``test_share`` of the images drawn with ``seed``, recorded
  in the dataset's params (so in the run manifest).
- **Boxes**: the VOC convention (1-based inclusive, ``difficult`` ignored). A box whose
  corners share an x or a y (``xmin = xmax``) is degenerate here: dropped and counted.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from albench.data.checks import BoxTally, Split, assemble, merge_sizes, require_files
from albench.data.images import inspect_images
from albench.data.index import DetectionDataset
from albench.data.vocxml import VOC_CLASSES, parse_xml, read_image_set
from albench.errors import DatasetError

FOLDER_DEFAULTS = {"classes": None, "train": None, "test": None, "test_share": 0.2, "seed": 0,
                   "allow_test_in_pool": False}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
SPLIT_STREAM = 104729  # mixed into the split seed: the share split has a stream of its own


def is_voc_folder(root: Path) -> bool:
    return (root / "Annotations").is_dir() and (root / "JPEGImages").is_dir()


def _list_file(root: Path, name: str, option: str) -> Path:
    main = root / "ImageSets" / "Main"
    for candidate in (main / f"{name}.txt", main / name, Path(name).expanduser(), root / name):
        if candidate.is_file():
            return candidate
    have = sorted(p.stem for p in main.glob("*.txt")) if main.is_dir() else []
    raise DatasetError(
        f"The list file {name!r} (--dataset-opt {option}={name}) is neither in {main} nor a "
        f"file. Lists there: {', '.join(have) or 'none'}. Name one of them (without .txt), "
        "give the path of a file with one image name per line, or drop the option to split "
        "by test_share."
    )


def _read_list(path: Path, warnings: list[str]) -> list[str]:
    names = read_image_set(path, "Name an existing list.")
    unique = list(dict.fromkeys(names))
    if len(unique) < len(names):
        warnings.append(f"{path.name}: {len(names) - len(unique)} names are listed more than "
                        "once (each image is used once)")
    return unique


def choose_split(root: Path, names: list[str], train: str | None, test: str | None,
                 test_share: float, seed: int, warnings: list[str]
                 ) -> tuple[list[str], list[str], dict, list[Path]]:
    """(pool names, test names, what the split was made from, list files read)."""
    main = root / "ImageSets" / "Main"
    if train is None and test is None and all((main / f"{s}.txt").is_file()
                                              for s in ("trainval", "test")):
        train, test = "trainval", "test"
    if train is None and test is None:
        if not (isinstance(test_share, (int, float)) and 0 < test_share < 1):
            raise DatasetError(f"--dataset-opt test_share={test_share!r} is not a share: give "
                               "a number between 0 and 1 (e.g. 0.2), or name list files with "
                               "train= and test=.")
        if not (isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0):
            raise DatasetError(f"--dataset-opt seed={seed!r} is not a seed: give a whole number "
                               "of at least 0.")
        n_test = int(round(test_share * len(names)))
        if not 1 <= n_test < len(names):
            raise DatasetError(
                f"test_share={test_share} of the {len(names)} annotated images in {root} "
                f"gives {n_test} test images: pick a share that leaves at least one image in "
                "each split, or add images."
            )
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), SPLIT_STREAM]))
        chosen = set(rng.permutation(len(names))[:n_test].tolist())
        test_names = [n for k, n in enumerate(names) if k in chosen]
        pool_names = [n for k, n in enumerate(names) if k not in chosen]
        return pool_names, test_names, {"split": "share", "test_share": float(test_share),
                                        "seed": int(seed)}, []
    files = {k: _list_file(root, v, k) for k, v in (("train", train), ("test", test)) if v}
    lists = {k: _read_list(p, warnings) for k, p in files.items()}
    known = set(names)
    for key, listed in lists.items():
        unknown = [n for n in listed if n not in known]
        if unknown:
            raise DatasetError(
                f"{files[key]}: {len(unknown)} of its {len(listed)} names have no XML file in "
                f"{root / 'Annotations'}; the first is {unknown[0]!r}. Remove them from the "
                "list or add their annotations."
            )
    rest = [n for n in names if n not in set(lists.get("train", [])) | set(lists.get("test", []))]
    pool_names = lists.get("train", rest)
    test_names = lists.get("test", rest)
    unused = len(set(names) - set(pool_names) - set(test_names))
    if unused:
        warnings.append(f"{unused} annotated images in {root} are in neither "
                        f"{' nor '.join(p.name for p in files.values())} and are not used")
    params = {"split": "lists", **{f"{k}_list": str(p.resolve()) for k, p in files.items()}}
    return pool_names, test_names, params, list(files.values())


def _class_list(classes: str | list | None, found: list[str]) -> tuple[list[str], str]:
    if classes not in (None, ""):
        items = list(classes) if isinstance(classes, (list, tuple)) else str(classes).split(",")
        names = [str(c).strip() for c in items if str(c).strip()]
        if len(set(names)) < len(names):
            raise DatasetError(f"--dataset-opt classes={classes!r} names a class twice: give "
                               "each class once, comma-separated.")
        return names, "option"
    if found and set(found) <= set(VOC_CLASSES):
        return list(VOC_CLASSES), "voc"
    return sorted(found), "xml"


def image_file(folder: Path, listing: set[str], name: str, filename: str) -> Path:
    for suffix in IMAGE_SUFFIXES:
        for candidate in (name + suffix, name + suffix.upper()):
            if candidate in listing:
                return folder / candidate
    if filename and filename in listing:
        return folder / filename
    return folder / f"{name}.jpg"  # absent: reported by require_files


def load_folder(root: Path, *, classes: str | list | None, train: str | None,
                test: str | None, test_share: float, seed: int, allow_test_in_pool: bool,
                max_dropped: float, cache_dir: str | os.PathLike | None) -> DetectionDataset:
    train, test = (None if v in (None, "") else str(v) for v in (train, test))
    annotations_dir, images_dir = root / "Annotations", root / "JPEGImages"
    names = sorted(p.stem for p in annotations_dir.glob("*.xml"))
    if not names:
        raise DatasetError(f"{annotations_dir} holds no .xml file: a VOC folder has one XML "
                           "annotation file per image there. Export the annotations in "
                           "Pascal VOC format into it.")
    warnings: list[str] = []
    pool_names, test_names, params, lists = choose_split(root, names, train, test,
                                                         test_share, seed, warnings)
    used = sorted(set(pool_names) | set(test_names))
    ids = {n: k + 1 for k, n in enumerate(used)}
    records = {ids[n]: parse_xml(annotations_dir / f"{n}.xml") for n in used}
    class_names, classes_from = _class_list(
        classes, sorted({c for r in records.values() for c in r.names}))
    listing = {p.name for p in images_dir.iterdir()}
    files = {i: image_file(images_dir, listing, r.path.stem, r.filename)
             for i, r in records.items()}
    unannotated = sum(Path(f).suffix.lower() in IMAGE_SUFFIXES
                      for f in listing - {p.name for p in files.values()})
    if unannotated:
        warnings.append(f"{unannotated} images in {images_dir} have no XML file in "
                        f"{annotations_dir} and are not used")
    fix_class = ("add the class to --dataset-opt classes, or fix the name in the file."
                 if classes_from == "option" else "fix the name in the file.")

    def split(split_names: list[str], source: str) -> Split:
        part = {ids[n]: files[ids[n]] for n in split_names}
        require_files(part, source, f"Put the images into {images_dir} (named like their "
                      "XML files), or remove their XML files.")
        facts = inspect_images(part, source, cache_dir)
        sizes, differ = merge_sizes({i: records[i].size for i in part}, facts, source, warnings)
        tally = BoxTally(source, size_mismatch=differ)
        anns = {}
        for i in part:
            rec = records[i]
            flat = (rec.boxes[:, 2] <= rec.boxes[:, 0]) | (rec.boxes[:, 3] <= rec.boxes[:, 1])
            anns[i] = tally.clean(rec.xyxy(), rec.labels(class_names, fix_class),
                                  rec.difficult, sizes[i], flat=flat)
        tally.finish(warnings, max_dropped)
        return Split(source, part, sizes, anns, facts)

    def label(key: str, other: str) -> str:
        if params["split"] == "share":
            return f"{root.name} {'pool' if key == 'train' else 'test'}"
        listed = params.get(f"{key}_list")
        return f"{root.name} {Path(listed).stem if listed else 'all but ' + other}"

    pool = split(pool_names, label("train", Path(params.get("test_list", "")).stem))
    test_split = split(test_names, label("test", Path(params.get("train_list", "")).stem))
    params = {"root": str(root.resolve()), "layout": "folder", "classes_from": classes_from,
              **params}
    ds = assemble("voc", class_names, list(range(1, len(class_names) + 1)), pool, test_split,
                  warnings, params, allow_test_in_pool)
    ds.sources = [str(p.resolve()) for p in [*lists, annotations_dir, images_dir,
                                             *(r.path for _, r in sorted(records.items()))]]
    return ds
