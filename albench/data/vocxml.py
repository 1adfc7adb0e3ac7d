"""PASCAL VOC XML annotation files and image-set lists, read as they are written.

Boxes in the XML files are 1-based inclusive pixel coordinates; :func:`to_xyxy` makes them
0-based ``xyxy`` (``x1 - 1, y1 - 1, x2, y2``). ``difficult`` objects are flagged, to be kept
with ``ignore=True``. A coordinate that is not a finite number, or a file that does not
parse, is an error naming the file.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from albench.errors import DatasetError

VOC_CLASSES = [
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
]
Size = tuple[int, int]  # (width, height)


@dataclass(frozen=True)
class VocRecord:
    """One XML file: declared size, boxes as written (1-based inclusive), names, flags."""

    path: Path
    size: Size | None
    filename: str
    boxes: np.ndarray  # (k, 4) float64: xmin, ymin, xmax, ymax as written
    names: list[str]
    difficult: np.ndarray  # (k,) bool

    def xyxy(self) -> np.ndarray:
        """0-based ``xyxy`` pixel boxes."""
        return (self.boxes - np.array([1.0, 1.0, 0.0, 0.0])).astype(np.float32)

    def labels(self, classes: list[str], fix: str) -> np.ndarray:
        index = {c: k for k, c in enumerate(classes)}
        for name in self.names:
            if name not in index:
                raise DatasetError(f"VOC annotation {self.path} has an object of class "
                                   f"{name!r}, which is not one of the classes "
                                   f"({', '.join(classes)}): {fix}")
        return np.array([index[n] for n in self.names], np.int64)


def read_image_set(path: Path, missing: str) -> list[str]:
    """The image names of a VOC list file (first column), in order; ``missing``: the fix."""
    if not path.is_file():
        raise DatasetError(f"VOC image set {path} does not exist. {missing}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"VOC image set {path} cannot be read ({exc}): it should hold one "
                           "image name per line; re-create it.") from None
    return [line.split()[0] for line in text.splitlines() if line.strip()]


def _coord(obj: ET.Element, tag: str, path: Path) -> float:
    text = (obj.findtext(f"bndbox/{tag}") or "").strip()
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise DatasetError(f"VOC annotation {path} has an object whose <bndbox>/<{tag}> is "
                           f"{text!r}, not a finite number: fix or re-extract the file.")
    return value


def parse_xml(path: Path) -> VocRecord:
    """Read one VOC XML file (a :class:`DatasetError` naming it when it does not parse)."""
    try:
        tree = ET.parse(path)
    except (ET.ParseError, OSError) as exc:
        raise DatasetError(f"VOC annotation {path} cannot be parsed ({exc}): the file is "
                           "missing or malformed; re-extract or re-export it.") from None
    xml = tree.getroot()
    try:
        w, h = (int(float(xml.findtext(f"size/{k}", ""))) for k in ("width", "height"))
        size: Size | None = (w, h) if w > 0 and h > 0 else None
    except (ValueError, OverflowError):
        size = None
    boxes, names, difficult = [], [], []
    for obj in xml.iter("object"):
        names.append((obj.findtext("name") or "").strip())
        boxes.append([_coord(obj, t, path) for t in ("xmin", "ymin", "xmax", "ymax")])
        difficult.append((obj.findtext("difficult") or "0").strip() not in ("", "0"))
    return VocRecord(path, size, (xml.findtext("filename") or "").strip(),
                     np.array(boxes, np.float64).reshape(-1, 4), names,
                     np.array(difficult, bool))
