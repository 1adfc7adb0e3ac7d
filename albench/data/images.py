"""Image files as they are: decoded to 8-bit RGB the way a viewer shows them, checked in
full when a dataset loads, and identified by the hash of their bytes.

- **Orientation**: a photo's EXIF orientation tag is applied (rotate / mirror), so pixels
  and boxes share the frame an annotation tool displays; sizes are the displayed ones.
- **Depth**: 16-bit greyscale (microscopy, thermal, medical) keeps its top 8 bits
  (``value >> 8``, as Pillow does for 16-bit RGB); 32-bit integer and float images have no
  agreed display range and are refused with a message saying how to convert them.
- **Check at load**: every file is decoded completely (a truncated JPEG fails here, before
  any training), in threads, and the result (displayed size, orientation, depth, sha256 of
  the bytes) is cached by path, size and modification time under
  ``<cache_dir>/image-checks/`` (``cache_dir`` defaults to ``$ALBENCH_CACHE/datasets``), so
  a dataset is decoded in full once and then only ``stat``-ed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from albench.errors import DatasetError

EXIF_ORIENTATION = 0x0112
SIXTEEN_BIT = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
CHECK_FORMAT = 1  # part of the cache file name: bump it when ImageFacts changes meaning


class ImageModeError(ValueError):
    """The pixels decode but have no 8-bit RGB reading albench can stand behind."""


@dataclass(frozen=True)
class ImageFacts:
    """What the full check of one image file found."""

    width: int  # as displayed: after the EXIF orientation
    height: int
    sha256: str  # of the file's bytes
    orientation: int  # EXIF orientation tag (1 = none or upright)
    depth: int  # bits per value of the source pixels (8, or 16 for 16-bit greyscale)

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    @property
    def raw_size(self) -> tuple[int, int]:
        """(width, height) of the stored pixels, before the orientation is applied."""
        turned = self.orientation in (5, 6, 7, 8)
        return (self.height, self.width) if turned else (self.width, self.height)


def _decode(source) -> tuple[np.ndarray, int, int]:
    """Fully decode ``source``: the ``(h, w, 3)`` uint8 RGB array as displayed, the EXIF
    orientation and the source depth."""
    from PIL import Image, ImageOps

    with Image.open(source) as im:
        try:
            orientation = int(im.getexif().get(EXIF_ORIENTATION, 1) or 1)
        except (TypeError, ValueError):
            orientation = 1
        orientation = orientation if 1 <= orientation <= 8 else 1
        im.load()  # decodes every byte: truncated or corrupt data raise here
        wide = im.mode in SIXTEEN_BIT or (im.mode == "I" and im.format == "PNG")
        if im.mode in ("I", "F") and not wide:
            raise ImageModeError(
                f"its pixels are {'32-bit integers' if im.mode == 'I' else 'floats'} (mode "
                f"{im.mode}), which have no agreed 8-bit display range; convert the images "
                "to 8- or 16-bit PNG or TIFF, scaling the values the way you want them seen")
        if orientation > 1:
            im = ImageOps.exif_transpose(im)
        if wide:
            grey = (np.asarray(im).astype(np.uint32) >> 8).astype(np.uint8)
            return np.repeat(grey[:, :, None], 3, axis=2), orientation, 16
        try:
            rgb = im.convert("RGB")
        except ValueError as exc:
            raise ImageModeError(f"its mode {im.mode} has no conversion to RGB ({exc}); "
                                 "convert the images to 8-bit RGB") from None
        return np.asarray(rgb), orientation, 8


def decode_image(path: Path) -> np.ndarray:
    """The image at ``path`` as an ``(h, w, 3)`` uint8 RGB array, as displayed."""
    from PIL import UnidentifiedImageError

    try:
        return _decode(path)[0]
    except FileNotFoundError:
        raise DatasetError(
            f"Image file {path} does not exist. The annotation file lists it but the image "
            "folder does not hold it: check that --images (or the dataset root) points at "
            "the folder the annotations were written for, or remove the entry."
        ) from None
    except ImageModeError as exc:
        raise DatasetError(f"Image file {path} cannot be used: {exc}.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DatasetError(
            f"Image file {path} cannot be decoded ({exc}). The file is corrupt or not an "
            "image: re-download or re-export it, or remove its entry from the annotations."
        ) from None


def check_image(path: Path) -> ImageFacts | str:
    """The facts of one image file, or the reason it cannot be used."""
    try:
        data = Path(path).read_bytes()
        array, orientation, depth = _decode(io.BytesIO(data))
    except ImageModeError as exc:
        return str(exc)
    except Exception as exc:  # PIL raises many kinds for a bad file
        return f"it cannot be decoded ({type(exc).__name__}: {exc}); the file is corrupt, " \
               "truncated or not an image"
    h, w = array.shape[:2]
    return ImageFacts(int(w), int(h), hashlib.sha256(data).hexdigest(), orientation, depth)


def default_cache_dir(cache_dir: str | os.PathLike | None) -> Path:
    from albench import _offline

    if cache_dir is not None:
        return Path(cache_dir).expanduser().absolute()
    return _offline.cache_root() / "datasets"


def _cache_file(cache_dir: Path, files: Mapping[int, Path]) -> Path:
    folders = sorted({os.path.dirname(os.path.realpath(p)) for p in files.values()})
    key = hashlib.sha256(json.dumps([CHECK_FORMAT, folders]).encode()).hexdigest()[:16]
    return cache_dir / "image-checks" / f"{key}.json"


def _read_cache(path: Path) -> dict[str, list]:
    try:
        blob = json.loads(path.read_text(encoding="utf-8"))
        return blob if isinstance(blob, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_cache(path: Path, entries: dict[str, list]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
        tmp.write_text(json.dumps(entries), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:  # a read-only cache only costs the next load its time
        pass


def inspect_images(files: Mapping[int, Path], source: str,
                   cache_dir: str | os.PathLike | None = None) -> dict[int, ImageFacts]:
    """Decode every image in full (cached): the facts of each, or a :class:`DatasetError`
    naming the first file that cannot be used and how many cannot."""
    cache_path = _cache_file(default_cache_dir(cache_dir), files)
    cached = _read_cache(cache_path)
    facts: dict[int, ImageFacts] = {}
    todo: list[tuple[int, str, list[int]]] = []
    for image_id in sorted(files):
        real = os.path.realpath(files[image_id])
        try:
            st = os.stat(real)
            stamp = [st.st_size, st.st_mtime_ns]
        except OSError:
            stamp = [-1, -1]
        hit = cached.get(real)
        if isinstance(hit, list) and hit[:2] == stamp and len(hit) == 7:
            facts[image_id] = ImageFacts(*hit[2:])
        else:
            todo.append((image_id, real, stamp))
    workers = max(1, min(32, 2 * (os.cpu_count() or 1), len(todo)))
    with ThreadPoolExecutor(max_workers=workers) as pool:  # PIL decodes without the GIL
        results = list(pool.map(lambda t: check_image(Path(t[1])), todo))
    bad = [(image_id, why) for (image_id, _, _), why in zip(todo, results)
           if isinstance(why, str)]
    if bad:
        image_id, why = bad[0]
        raise DatasetError(
            f"{len(bad)} of {len(files)} image files listed in {source} cannot be used; the "
            f"first is {files[image_id]}: {why}. Re-download or re-export the file(s), or "
            f"remove their entries from {source}."
        )
    for (image_id, real, stamp), result in zip(todo, results):
        facts[image_id] = result  # type: ignore[assignment]
        cached[real] = [*stamp, *astuple(result)]
    if todo:
        _write_cache(cache_path, cached)
    return facts


def image_warnings(facts: Mapping[int, ImageFacts], declared: Mapping[int, tuple | None],
                   source: str) -> list[str]:
    """Load warnings for images that were turned by their EXIF tag or reduced from 16 bits."""
    out = []
    turned = [i for i, f in facts.items() if f.orientation > 1]
    if turned:
        raw = sum(declared.get(i) == facts[i].raw_size != facts[i].size for i in turned)
        out.append(f"{source}: {len(turned)} images carry an EXIF orientation tag; their "
                   "pixels were rotated or mirrored to it, as viewers show them, and boxes are "
                   "read in that frame"
                   + (f" ({raw} of them declare the unrotated size: check that their boxes "
                      "were drawn on the rotated view)" if raw else ""))
    deep = sum(f.depth == 16 for f in facts.values())
    if deep:
        out.append(f"{source}: {deep} images are 16-bit greyscale; their top 8 bits are used "
                   "(data that use fewer bits, e.g. 12-bit, look dark: rescale them first if "
                   "that matters)")
    return out
