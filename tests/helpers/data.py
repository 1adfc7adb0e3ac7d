"""Test data: small COCO-format files written into a test's folder, and the committed
synthetic results folder the paper-figure and MGRAL-report tests draw from."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from PIL import Image

# tests/data/paper: figures.yaml, references.csv, sweeps/, and results/ (written by make_fixture.py)
PAPER_DATA = Path(__file__).resolve().parents[1] / "data" / "paper"
PAPER_RESULTS = PAPER_DATA / "results"


def write_image(path: Path, size: tuple[int, int] = (64, 48)) -> None:
    """A plain image whose colour comes from its name: two names, two pictures."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, tuple(hashlib.sha256(path.name.encode()).digest()[:3])).save(path)


def coco_doc(images: list[tuple[int, str]], anns: list[dict],
             cats: tuple[tuple[int, str], ...] = ((3, "cat"), (7, "dog"), (12, "owl")),
             size: tuple[int, int] | None = (64, 48)) -> dict:
    """A COCO annotation document: ``images`` as (id, file name), ``anns`` numbered from 1."""
    def image(i: int, name: str) -> dict:
        entry = {"id": i, "file_name": name}
        if size is not None:
            entry.update(width=size[0], height=size[1])
        return entry

    anns = [{"id": k + 1, "iscrowd": 0, **a} for k, a in enumerate(anns)]
    return {"images": [image(i, n) for i, n in images], "annotations": anns,
            "categories": [{"id": c, "name": n} for c, n in cats]}


def write_coco_json(tmp: Path, train: dict, test: dict, images: tuple[str, ...] = ()) -> dict:
    """``train``/``test`` as ``tmp/train.json``/``tmp/test.json`` and ``images`` under
    ``tmp/img``; returns the coco-json loader's options."""
    for name in images:
        write_image(tmp / "img" / name)
    (tmp / "train.json").write_text(json.dumps(train))
    (tmp / "test.json").write_text(json.dumps(test))
    return {"ann_train": tmp / "train.json", "ann_test": tmp / "test.json",
            "images": tmp / "img"}
