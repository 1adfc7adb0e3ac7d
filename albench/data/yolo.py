"""Ultralytics YOLO datasets (``yolo``): a ``data.yaml`` and its YOLO txt labels.

- **data.yaml**: ``path`` (the dataset root; relative to the yaml's folder, else to the
  current folder; the yaml's folder when absent), ``train`` / ``val`` / ``test`` (each a
  folder searched recursively for images, a ``.txt`` list of image paths (relative ones are
  relative to the list's folder), an image, or a list of those, relative to ``path``), and
  ``names`` (a list, or a dict ``{index: name}`` over ``0..n-1``; ``nc`` must agree).
- **Labels**: for ``.../images/.../x.jpg`` the file ``.../labels/.../x.txt`` (the last
  ``images`` folder of the path becomes ``labels``); one line per box,
  ``class cx cy w h`` normalised to 0..1 by the image's (displayed) width and height, or
  ``class x1 y1 x2 y2 ...`` (a polygon, whose bounding box is used). An image without a
  label file has no boxes (counted in the load warnings).
- **Splits**: pool = ``train``; test = ``test`` when the yaml names one, else ``val``
  (option ``test_split``). Ids are 1.. over the pool, then on over the test split.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from albench.data.checks import (MAX_DROPPED_SHARE, BoxTally, Split, assemble,
                                 check_max_dropped, merge_sizes, require_files)
from albench.data.images import inspect_images
from albench.data.index import DetectionDataset
from albench.errors import DatasetError

IMAGE_SUFFIXES = frozenset({"bmp", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp"})
SLACK = 1e-3  # normalised coordinates may pass 0..1 by this much (rounding in exports)
FORMAT_HINT = ("See https://docs.ultralytics.com/datasets/detect/ for the data.yaml and label "
               "format")


def _read_yaml(path: Path) -> dict:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"The data file {path} cannot be read ({exc}): pass a readable "
                           "ultralytics data.yaml with --data-root.") from None
    except yaml.YAMLError as exc:
        raise DatasetError(f"The data file {path} is not valid YAML ({' '.join(str(exc).split())})"
                           f": fix the syntax. {FORMAT_HINT}.") from None
    if not isinstance(data, dict):
        raise DatasetError(f"The data file {path} is not a YAML mapping with 'train', 'val' "
                           f"and 'names' keys. {FORMAT_HINT}.")
    return data


def class_names(data: dict, path: Path) -> list[str]:
    """``names`` as a list (``nc`` alone gives ``class_0..``), checked."""
    names, nc = data.get("names"), data.get("nc")

    def bad(what: str) -> DatasetError:
        return DatasetError(f"The data file {path}: {what}. Give 'names' as a list of class "
                            "names, or as a mapping {0: name, 1: name, ...}.")

    if names is None:
        if not isinstance(nc, int) or isinstance(nc, bool) or nc < 1:
            raise bad("it has no 'names' (nor a positive integer 'nc')")
        names = [f"class_{k}" for k in range(nc)]
    if isinstance(names, dict):
        try:
            index = {int(k): v for k, v in names.items()}
        except (TypeError, ValueError):
            raise bad(f"the keys of 'names' ({', '.join(map(repr, names))}) are not "
                      "integers") from None
        if sorted(index) != list(range(len(index))):
            raise bad(f"the indices of 'names' are {sorted(index)}, not 0..{len(index) - 1}")
        names = [index[k] for k in range(len(index))]
    if not isinstance(names, list) or not names:
        raise bad(f"'names' is {names!r}")
    names = [str(n) for n in names]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise bad(f"the class name(s) {', '.join(map(repr, twice))} appear more than once, "
                  "so their per-class AP could not be told apart; merge or rename them")
    if nc is not None and nc != len(names):
        raise bad(f"'nc' is {nc!r} but 'names' holds {len(names)} classes")
    return names


def dataset_root(data: dict, path: Path) -> Path:
    given = data.get("path")
    if given in (None, ""):
        return path.parent
    for base in (path.parent, Path.cwd()):
        root = (base / Path(str(given)).expanduser())
        if root.is_dir():
            return root
    raise DatasetError(f"The data file {path} names the dataset root path: {given!r}, which is "
                       f"a folder neither beside {path.name} nor in the current folder. Make "
                       "'path' point at the dataset folder (absolute, or relative to the yaml).")


def split_images(root: Path, entries, key: str, path: Path) -> tuple[list[Path], list[Path]]:
    """The image files of one split entry (sorted) and the list files read for it."""
    items = entries if isinstance(entries, list) else [entries]
    images: list[Path] = []
    lists: list[Path] = []
    for item in items:
        target = root / str(item)
        if not target.exists() and str(item).startswith("../"):
            target = root / str(item)[3:]
        if target.is_dir():
            images += [p for p in target.rglob("*")
                       if p.suffix[1:].lower() in IMAGE_SUFFIXES and p.is_file()]
        elif target.is_file() and target.suffix.lower() == ".txt":
            lists.append(target)
            text = target.read_text(encoding="utf-8-sig")
            for line in (ln.strip() for ln in text.splitlines()):
                if line:
                    rel = line[2:] if line.startswith("./") else line
                    images.append(Path(rel) if Path(rel).is_absolute() else target.parent / rel)
        elif target.is_file() and target.suffix[1:].lower() in IMAGE_SUFFIXES:
            images.append(target)
        else:
            raise DatasetError(
                f"The data file {path}: the {key!r} entry {item!r} is {target}, which is "
                "neither a folder of images, a .txt list of images nor an image. Fix the entry "
                f"(relative entries are relative to the dataset root {root}). {FORMAT_HINT}."
            )
    return sorted(images, key=str), lists


def label_file(image: Path) -> Path:
    """Ultralytics' rule: the last ``/images/`` of the path becomes ``/labels/``, and ``.txt``."""
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    return Path(sb.join(str(image).rsplit(sa, 1))).with_suffix(".txt")


def read_labels(path: Path, n_classes: int, size: tuple[int, int]
                ) -> tuple[np.ndarray, np.ndarray]:
    """xyxy pixel boxes and class indices of one label file (a :class:`DatasetError` naming
    the file and line for a line that is not a box)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"YOLO label file {path} cannot be read ({exc}): re-export it.") \
            from None
    w, h = size
    boxes, labels = [], []
    for number, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue

        def bad(what: str, number: int = number, line: str = line) -> DatasetError:
            return DatasetError(
                f"YOLO label file {path}, line {number} ({line.strip()[:60]!r}): {what}. A line "
                f"is 'class cx cy w h': the class an index 0..{n_classes - 1} into the names of "
                "the data.yaml, the four numbers normalised to 0..1 by the image's width and "
                "height (or 'class x1 y1 x2 y2 ...', a polygon). Fix the line."
            )

        try:
            values = [float(v) for v in parts]
        except ValueError:
            raise bad("it holds a value that is not a number") from None
        if not all(math.isfinite(v) for v in values):
            raise bad("it holds a value that is not a finite number")
        cls, coords = values[0], values[1:]
        if cls != int(cls) or not 0 <= cls < n_classes:
            raise bad(f"class {parts[0]} is not one of the {n_classes} class indices")
        if len(coords) != 4 and (len(coords) < 6 or len(coords) % 2):
            raise bad(f"it has {len(parts)} values, neither 5 (a box) nor an odd number of 7 "
                      "or more (a polygon)")
        if max(coords) > 1 + SLACK or min(coords) < -SLACK:
            raise bad("its coordinates are not normalised to 0..1 (pixel coordinates? divide "
                      "them by the image's width and height)")
        if len(coords) == 4:
            cx, cy, bw, bh = coords
            box = (cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2)
        else:
            xs, ys = coords[0::2], coords[1::2]
            box = (min(xs), min(ys), max(xs), max(ys))
        boxes.append((box[0] * w, box[1] * h, box[2] * w, box[3] * h))
        labels.append(int(cls))
    return (np.array(boxes, np.float64).reshape(-1, 4).astype(np.float32),
            np.array(labels, np.int64))


def read_split(images: list[Path], first_id: int, source: str, n_classes: int,
               warnings: list[str], max_dropped: float,
               cache_dir: str | os.PathLike | None) -> tuple[Split, list[Path]]:
    files = {first_id + k: p for k, p in enumerate(images)}
    require_files(files, source, "Fix the paths in the list file, or remove the lines of "
                  "images you do not have.")
    facts = inspect_images(files, source, cache_dir)
    sizes, differ = merge_sizes({}, facts, source, warnings)
    tally = BoxTally(source, size_mismatch=differ)
    annotations, read, missing = {}, [], []
    for image_id, image in files.items():
        labels_path = label_file(image)
        if labels_path.is_file():
            read.append(labels_path)
            boxes, labels = read_labels(labels_path, n_classes, sizes[image_id])
        else:
            missing.append(labels_path)
            boxes, labels = np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
        annotations[image_id] = tally.clean(boxes, labels, np.zeros(len(labels), bool),
                                            sizes[image_id])
    tally.finish(warnings, max_dropped)
    if missing:
        warnings.append(f"{source}: {len(missing)} of {len(files)} images have no label file "
                        f"(e.g. {missing[0]}); they count as images without boxes")
    return Split(source, files, sizes, annotations, facts), read


def load_yolo(data_root: str | os.PathLike | None = None, test_split: str = "auto",
              allow_test_in_pool: bool = False, max_dropped: float = MAX_DROPPED_SHARE,
              cache_dir: str | os.PathLike | None = None) -> DetectionDataset:
    max_dropped = check_max_dropped(max_dropped)
    if not data_root:
        raise DatasetError("The yolo dataset needs --data-root: the path of an ultralytics "
                           "data.yaml (or of the folder holding it).")
    path = Path(data_root).expanduser().absolute()
    if path.is_dir():
        path = next((path / n for n in ("data.yaml", "data.yml") if (path / n).is_file()),
                    path / "data.yaml")
    if not path.is_file():
        raise DatasetError(f"The data file {path} (--data-root) does not exist: pass the path "
                           "of an ultralytics data.yaml, or of the folder holding it.")
    data = _read_yaml(path)
    names = class_names(data, path)
    root = dataset_root(data, path)
    if test_split not in ("auto", "test", "val"):
        raise DatasetError(f"--dataset-opt test_split={test_split!r} is not a split: give "
                           "test, val, or auto (test when the data file names one, else val).")
    test_key = ("test" if data.get("test") else "val") if test_split == "auto" else test_split
    for key in ("train", test_key):
        if not data.get(key):
            raise DatasetError(f"The data file {path} has no {key!r} entry, which the "
                               f"{'pool' if key == 'train' else 'test split'} is read from. "
                               f"Add it (or choose another test_split). {FORMAT_HINT}.")
    warnings: list[str] = []
    pool_images, pool_lists = split_images(root, data["train"], "train", path)
    test_images, test_lists = split_images(root, data[test_key], test_key, path)
    for key, found in (("train", pool_images), (test_key, test_images)):
        if not found:
            raise DatasetError(f"The data file {path}: its {key!r} entry ({data[key]!r}) holds "
                               "no image. Point it at the folder (or list) of that split's "
                               "images.")
    pool, pool_labels = read_split(pool_images, 1, f"{path.name} train", len(names), warnings,
                                   max_dropped, cache_dir)
    test, test_labels = read_split(test_images, len(pool_images) + 1, f"{path.name} {test_key}",
                                   len(names), warnings, max_dropped, cache_dir)
    params = {"data_yaml": str(path.resolve()), "root": str(root.resolve()),
              "pool_split": "train", "test_split": test_key}
    ds = assemble("yolo", names, list(range(len(names))), pool, test, warnings, params,
                  allow_test_in_pool)
    folders = sorted({p.parent for p in [*pool_images, *test_images, *pool_labels, *test_labels]})
    ds.sources = [str(p.resolve()) for p in [path, *pool_lists, *test_lists, *folders,
                                             *pool_labels, *test_labels]]
    return ds
