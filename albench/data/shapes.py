"""``shapes``: the embedded default dataset, synthetic scenes of filled shapes on clutter
(drawn by :mod:`albench.data.scenes`).

Built to make active learning matter at CPU scale: a Zipf-like long tail of classes,
groups of near-duplicate frames (objects shifted by a few pixels, brightness and noise
changed), objects from 6 px to 45% of the image side, textured noisy backgrounds with
distractors that are not classes (lines, arcs, elongated blobs, hollow outlines) and some
occlusion. The class is the shape; colours are random per object. The test split is made
of its own scenes, with a flatter class distribution and a guaranteed minimum per class.

Generated deterministically from ``seed`` once into ``<cache>/shapes-<hash>/`` (``images/``,
COCO ``annotations.json`` with a per-image ``group`` and ``split``, a completion marker),
written into a temporary sibling folder and moved into place with :func:`os.replace`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from albench import _offline
from albench.data.index import Annotation, DetectionDataset, ImageStore
from albench.data.scenes import CLASSES, make_scene, render_frame
from albench.errors import ConfigError, DatasetError

FORMAT_VERSION = 1  # part of the cache key: bump it whenever the generated data changes
MARKER = "COMPLETE"
STALE_SECONDS = 6 * 3600  # temporary folders older than this are from killed generations
MIN_TEST_INSTANCES = 20  # per class in the test split, whenever the split has room for it
OBJECTS_PER_IMAGE = np.array([0.05, 0.20, 0.22, 0.20, 0.15, 0.10, 0.08])  # P(0..6 objects)
MAX_GROUP = 10  # near-duplicate groups hold 2..MAX_GROUP frames


def _plan(p: dict) -> tuple[list[tuple[int, list[int], np.ndarray]], int]:
    """Scenes as (group id, image ids, labels); pool scenes first. Also the pool's group count."""
    rng = np.random.default_rng(np.random.SeedSequence([p["seed"], 0]))
    ranks = np.arange(1, p["num_classes"] + 1, dtype=float)
    w_pool = ranks ** -p["imbalance"]
    w_test = ranks ** (-p["imbalance"] / 2)
    sizes, left = [], int(round(p["duplication"] * p["pool_size"]))
    while left >= 2:
        k = min(int(rng.integers(2, MAX_GROUP + 1)), left)
        if left - k == 1:
            k = left if left <= MAX_GROUP else k - 1
        sizes.append(k)
        left -= k
    sizes += [1] * (p["pool_size"] - sum(sizes))
    ids = iter(rng.permutation(p["pool_size"]) + 1)  # group members are scattered over the ids
    scenes = []
    for g, k in enumerate(sizes):
        n = rng.choice(len(OBJECTS_PER_IMAGE), p=OBJECTS_PER_IMAGE)
        scenes.append((g + 1, [int(next(ids)) for _ in range(k)],
                       rng.choice(p["num_classes"], n, p=w_pool / w_pool.sum())))
    counts = rng.choice(len(OBJECTS_PER_IMAGE), p["test_size"], p=OBJECTS_PER_IMAGE)
    m = min(MIN_TEST_INSTANCES, int(counts.sum()) // p["num_classes"])
    labels = np.concatenate([np.repeat(np.arange(p["num_classes"]), m),
                             rng.choice(p["num_classes"], int(counts.sum()) - m * p["num_classes"],
                                        p=w_test / w_test.sum())])
    rng.shuffle(labels)
    for j, part in enumerate(np.split(labels, np.cumsum(counts)[:-1])):
        scenes.append((len(sizes) + j + 1, [p["pool_size"] + j + 1], part))
    return scenes, len(sizes)


def _write_scene(folder: Path, p: dict, g: int, ids: list[int], labels: np.ndarray,
                 split: str, noise: np.ndarray) -> list[tuple[dict, list]]:
    """Render the frames of scene ``g`` to ``folder/images``; their image records and truth."""
    rng = np.random.default_rng(np.random.SeedSequence([p["seed"], 1, g]))
    size = p["image_size"]
    scene = make_scene(rng, labels, size)
    out = []
    for image_id in ids:
        arr, truth = render_frame(scene, rng, noise)
        name = f"{image_id:06d}.png"
        Image.fromarray(arr).save(folder / "images" / name, compress_level=1)
        out.append(({"id": image_id, "file_name": name, "width": size, "height": size,
                     "group": g, "split": split}, truth))
    return out


def _generate(folder: Path, p: dict) -> None:
    """Write images and ``annotations.json`` for parameters ``p`` into ``folder``."""
    (folder / "images").mkdir(parents=True)
    scenes, n_pool_groups = _plan(p)
    size = p["image_size"]
    noise = np.random.default_rng(np.random.SeedSequence([p["seed"], 2])).standard_normal(
        (2 * size, 2 * size, 3), dtype=np.float32)
    pool = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1))
    try:  # scenes have their own seeds: the output does not depend on the thread schedule
        jobs = [pool.submit(_write_scene, folder, p, g, ids, labels,
                            "pool" if g <= n_pool_groups else "test", noise)
                for g, ids, labels in scenes]
        records = sorted((r for job in jobs for r in job.result()), key=lambda r: r[0]["id"])
    finally:
        pool.shutdown(cancel_futures=True)
    anns = []
    for image, truth in records:
        for box, label in truth:
            w, h = round(float(box[2] - box[0]), 2), round(float(box[3] - box[1]), 2)
            anns.append({"id": len(anns) + 1, "image_id": image["id"], "category_id": label + 1,
                         "bbox": [float(box[0]), float(box[1]), w, h], "area": round(w * h, 2),
                         "iscrowd": 0})
    cats = [{"id": i + 1, "name": n} for i, n in enumerate(CLASSES[:p["num_classes"]])]
    doc = {"info": {"dataset": "shapes", "format_version": FORMAT_VERSION, "params": p},
           "images": [r[0] for r in records], "annotations": anns, "categories": cats}
    (folder / "annotations.json").write_text(json.dumps(doc))


def cache_folder(root: str | Path, params: dict) -> Path:
    """The folder holding the dataset generated with ``params`` under cache ``root``."""
    key = json.dumps({**params, "format_version": FORMAT_VERSION}, sort_keys=True)
    return Path(root) / f"shapes-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def _build(folder: Path, params: dict) -> None:
    """Generate into a temporary sibling folder, then move it into place atomically."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    if (folder / MARKER).is_file():  # finished meanwhile by a concurrent process
        return
    if folder.exists():  # no marker: an incomplete or foreign folder, never trusted
        shutil.rmtree(folder)
    for stale in folder.parent.glob(f"{folder.name}.tmp-*"):  # left by a killed process
        with contextlib.suppress(OSError):
            if time.time() - stale.stat().st_mtime > STALE_SECONDS:
                shutil.rmtree(stale)
    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        _generate(tmp, params)
        (tmp / MARKER).write_text("complete\n")
        try:
            os.replace(tmp, folder)
        except OSError:
            if not (folder / MARKER).is_file():  # not a concurrent build that finished first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _read(folder: Path, params: dict) -> DetectionDataset:
    try:
        doc = json.loads((folder / "annotations.json").read_text())
        files = {im["id"]: folder / "images" / im["file_name"] for im in doc["images"]}
        split = {im["id"]: im["split"] for im in doc["images"]}
    except (OSError, ValueError, KeyError) as exc:
        raise DatasetError(f"The shapes cache {folder} is unreadable ({exc}). Delete that "
                           "folder; the next run generates it again.") from None
    rows: dict[int, tuple[list, list]] = {i: ([], []) for i in files}
    for a in doc["annotations"]:
        x, y, w, h = a["bbox"]
        rows[a["image_id"]][0].append([x, y, x + w, y + h])
        rows[a["image_id"]][1].append(a["category_id"] - 1)
    annotations = {i: Annotation(np.array(b, np.float32).reshape(-1, 4), np.array(c, np.int64),
                                 np.zeros(len(c), bool)) for i, (b, c) in rows.items()}
    size = params["image_size"]
    return DetectionDataset(
        name="shapes", classes=list(CLASSES[:params["num_classes"]]),
        category_ids=list(range(1, params["num_classes"] + 1)),
        images=ImageStore(files, {i: (size, size) for i in files}), annotations=annotations,
        pool_ids=np.array(sorted(i for i, s in split.items() if s == "pool"), np.int64),
        test_ids=np.array(sorted(i for i, s in split.items() if s == "test"), np.int64),
        warnings=[], params=dict(params))


def load(cache_dir: str | Path | None = None, seed: int = 0, image_size: int = 128,
         pool_size: int = 1000, test_size: int = 250, num_classes: int = 6,
         imbalance: float = 1.8, duplication: float = 0.5) -> DetectionDataset:
    """Generate (once, cached) and load the ``shapes`` dataset.

    ``imbalance``: Zipf exponent of the pool's class frequencies (class k has weight
    ``(k + 1) ** -imbalance``; the test split uses half the exponent). ``duplication``: the
    share of pool images that belong to groups of 2-10 near-duplicate frames.
    ``cache_dir`` defaults to ``$ALBENCH_CACHE/datasets`` (``./.albench-cache/datasets``)."""
    params = {"seed": int(seed), "image_size": int(image_size), "pool_size": int(pool_size),
              "test_size": int(test_size), "num_classes": int(num_classes),
              "imbalance": float(imbalance), "duplication": float(duplication)}
    checks = [(1 <= params["num_classes"] <= len(CLASSES), f"num_classes in 1..{len(CLASSES)}"),
              (params["image_size"] >= 32, "image_size >= 32"),
              (params["pool_size"] >= 1 and params["test_size"] >= 1, "pool_size, test_size >= 1"),
              (params["imbalance"] >= 0, "imbalance >= 0"),
              (0 <= params["duplication"] <= 1, "duplication in [0, 1]")]
    for ok, rule in checks:
        if not ok:
            raise ConfigError(f"shapes: invalid parameters {params}; need {rule}.")
    root = (Path(cache_dir).expanduser().absolute() if cache_dir is not None
            else _offline.cache_root() / "datasets")
    folder = cache_folder(root, params)
    if not (folder / MARKER).is_file():
        _build(folder, params)
    return _read(folder, params)


def write_grid(dataset: DetectionDataset, path: str | Path, n: int = 16,
               ids: Iterable[int] | None = None, scale: int = 2) -> Path:
    """Draw ``n`` pool images (or ``ids``) with their boxes and class names into one PNG.

    Images are enlarged ``scale`` times; the sheet is saved as a 256-colour palette PNG."""
    chosen = [int(i) for i in (ids if ids is not None else dataset.pool_ids[:n])][:n]
    cols = math.ceil(math.sqrt(len(chosen)))
    rows = math.ceil(len(chosen) / cols)
    tiles = [Image.fromarray(dataset.images.load(i)) for i in chosen]
    tw, th = max(t.width for t in tiles) * scale, max(t.height for t in tiles) * scale
    pad = 4
    sheet = Image.new("RGB", (cols * (tw + pad) + pad, rows * (th + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    palette = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
               (145, 30, 180), (70, 240, 240), (240, 50, 230)]
    for k, (image_id, tile) in enumerate(zip(chosen, tiles)):
        ox, oy = pad + (k % cols) * (tw + pad), pad + (k // cols) * (th + pad)
        sheet.paste(tile.resize((tile.width * scale, tile.height * scale), Image.NEAREST), (ox, oy))
        ann = dataset.annotations[image_id]
        for box, label in zip(ann.boxes, ann.labels):
            x0, y0, x1, y1 = (float(v) * scale for v in box)
            color = palette[int(label) % len(palette)]
            draw.rectangle([ox + x0, oy + y0, ox + x1, oy + y1], outline=color, width=2)
            name = dataset.classes[int(label)]
            tx, ty = ox + x0, max(oy, oy + y0 - 11)
            draw.rectangle([tx, ty, tx + draw.textlength(name, font=font) + 2, ty + 10],
                           fill=color)
            draw.text((tx + 1, ty - 1), name, fill=(0, 0, 0), font=font)
        draw.text((ox + 3, oy + th - 12), f"#{image_id}", fill=(255, 255, 255), font=font)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.quantize(256, dither=Image.Dither.NONE).save(path, optimize=True)  # palette: small file
    return path
