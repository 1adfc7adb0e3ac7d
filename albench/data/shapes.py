"""``shapes``: the embedded default dataset, synthetic scenes of filled shapes on clutter.

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
from albench.errors import ConfigError, DatasetError

CLASSES = ("circle", "square", "triangle", "cross", "star", "crescent", "hexagon", "arrow")
FORMAT_VERSION = 1  # part of the cache key: bump it whenever the generated data changes
MARKER = "COMPLETE"
STALE_SECONDS = 6 * 3600  # temporary folders older than this are from killed generations
MIN_TEST_INSTANCES = 20  # per class in the test split, whenever the split has room for it
OBJECTS_PER_IMAGE = np.array([0.05, 0.20, 0.22, 0.20, 0.15, 0.10, 0.08])  # P(0..6 objects)
MAX_GROUP = 10  # near-duplicate groups hold 2..MAX_GROUP frames
SUPERSAMPLE = 2  # drawing resolution factor (anti-aliasing)
SIZE_BETA = (2.2, 1.2)  # object diameter = lo * (hi / lo) ** Beta(a, b): log-scale spread
MAX_OVERLAP = 0.3  # of the smaller box: bounds how much one object occludes another


def _ring(n: int, start: float = 0.0) -> np.ndarray:
    a = start + 2 * np.pi * np.arange(n) / n
    return np.stack([np.cos(a), np.sin(a)], 1)


def _crescent() -> np.ndarray:
    d, r2 = 0.45, 0.85  # the inner disc (centre (d, 0), radius r2) is cut out of the unit disc
    x = (1 - r2**2 + d**2) / (2 * d)
    top, inner_top = math.atan2(math.sqrt(1 - x * x), x), math.atan2(math.sqrt(1 - x * x), x - d)
    outer = np.linspace(top, 2 * np.pi - top, 20)
    inner = np.linspace(2 * np.pi - inner_top, inner_top, 16)
    return np.concatenate([np.stack([np.cos(outer), np.sin(outer)], 1),
                           np.stack([d + r2 * np.cos(inner), r2 * np.sin(inner)], 1)])


_W = 0.32  # half-width of the cross's arms
UNIT = {  # outlines inside the unit circle, centred at the origin
    "circle": _ring(32),
    "square": _ring(4, np.pi / 4),
    "triangle": _ring(3, -np.pi / 2),
    "cross": np.array([(-_W, -1), (_W, -1), (_W, -_W), (1, -_W), (1, _W), (_W, _W), (_W, 1),
                       (-_W, 1), (-_W, _W), (-1, _W), (-1, -_W), (-_W, -_W)], float),
    "star": _ring(10, -np.pi / 2) * np.tile([1.0, 0.42], 5)[:, None],
    "crescent": _crescent(),
    "hexagon": _ring(6),
    "arrow": np.array([(-1, -0.25), (0.15, -0.25), (0.15, -0.62), (1, 0), (0.15, 0.62),
                       (0.15, 0.25), (-1, 0.25)], float),
    "pentagon": _ring(5, -np.pi / 2),  # distractor outlines only
}


def _place(unit: np.ndarray, cx: float, cy: float, r: float, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return unit @ (r * np.array([[c, s], [-s, c]])) + (cx, cy)


def _upsample(grid: np.ndarray, size: int) -> np.ndarray:
    img = Image.fromarray(grid.clip(0, 255).astype(np.uint8)).resize((size, size), Image.BICUBIC)
    return np.asarray(img, np.float32)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A gradient between two muted colours with coarse blotches, fine texture, maybe stripes."""
    k, a = int(rng.integers(3, 8)), rng.uniform(0, 2 * np.pi)
    u = np.linspace(0, 1, k)
    t = u[None, :] * math.cos(a) + u[:, None] * math.sin(a)
    t = (t - t.min()) / (t.max() - t.min())
    c0, c1 = rng.uniform(30, 200, 3), rng.uniform(30, 200, 3)
    coarse = c0 + (c1 - c0) * t[..., None] + rng.uniform(-1, 1, (k, k, 3)) * rng.uniform(10, 35)
    m = int(rng.integers(16, 40))
    out = _upsample(coarse, size) + _upsample(128 + rng.uniform(-1, 1, (m, m, 3))
                                              * rng.uniform(0, 18), size) - 128
    if rng.random() < 0.3:  # stripes
        axis = np.arange(size, dtype=np.float32) / size
        f, b = rng.uniform(4, 20), rng.uniform(0, 2 * np.pi)
        wave = np.sin(2 * np.pi * f * (axis[None, :] * math.cos(b) + axis[:, None] * math.sin(b)))
        out += (np.float32(rng.uniform(5, 20)) * wave)[..., None]
    return out.clip(0, 255).astype(np.uint8)


def _color(rng: np.random.Generator, local: np.ndarray, far: float = 100.0) -> np.ndarray:
    for _ in range(20):
        c = rng.integers(0, 256, 3).astype(float)
        if np.linalg.norm(c - local) >= far:
            break
    return c


def _scene(rng: np.random.Generator, labels: np.ndarray, size: int) -> dict:
    """A base scene: background, distractors and labelled objects (rendered by :func:`_frame`)."""
    bg = _background(rng, size)
    lo, hi = max(4.0, 6.0 * size / 128), 0.45 * size
    under: list[dict] = []
    for _ in range(int(rng.integers(1, 6))):
        kind = rng.choice(["line", "arc", "blob", "outline"], p=[0.3, 0.25, 0.2, 0.25])
        item = {"kind": str(kind), "color": rng.integers(0, 256, 3).astype(float),
                "width": int(rng.integers(1, 4)), "top": bool(rng.random() < 0.25)}
        if kind == "line":
            item["pts"] = rng.uniform(0, size, (2, 2))
        elif kind == "arc":
            cx, cy, r = *rng.uniform(0, size, 2), rng.uniform(5, 0.3 * size)
            start = rng.uniform(0, 360)
            item.update(box=np.array([cx - r, cy - r, cx + r, cy + r]), start=start,
                        end=start + rng.uniform(60, 270))
        else:
            outline = kind == "outline"
            if outline:  # a hollow class shape (or pentagon): filled ones are the classes
                shape = UNIT[str(rng.choice(CLASSES + ("pentagon",)))]
            else:  # an elongated ellipse
                shape = _ring(24) * (1.0, 1.0 / rng.uniform(2.5, 4.0))
            width = int(rng.integers(1, 3))
            geom = np.array([*rng.uniform(0, size, 2), rng.uniform(lo, 0.35 * size) / 2,
                             rng.uniform(0, 2 * np.pi)])
            item.update(kind="poly", unit=shape, label=-1, fill=not outline, width=width,
                        geom=geom, top=False)
        under.append(item)
    objects: list[dict] = []
    boxes: list[np.ndarray] = []
    for label in labels:
        for _ in range(30):  # limit occlusion: reject placements overlapping a placed object
            r = lo * (hi / lo) ** rng.beta(*SIZE_BETA) / 2
            geom = np.array([*rng.uniform(0.6 * r, size - 0.6 * r, 2), r,
                             rng.uniform(0, 2 * np.pi)])
            pts = _place(UNIT[CLASSES[label]], *geom)
            box = np.concatenate([pts.min(0), pts.max(0)]).clip(0, size)
            if all(_overlap(box, b) <= MAX_OVERLAP for b in boxes):
                break
        boxes.append(box)
        x0, y0, x1, y1 = box.astype(int)
        local = bg[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)].reshape(-1, 3).mean(0)
        objects.append({"kind": "poly", "unit": UNIT[CLASSES[label]], "label": int(label),
                        "fill": True, "width": 0, "geom": geom, "color": _color(rng, local),
                        "top": False})
    items = [i for i in under if not i["top"]] + objects + [i for i in under if i["top"]]
    return {"bg": bg, "items": items, "noise": rng.uniform(3, 12)}


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over the smaller box's area."""
    w, h = np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2])
    area = min(np.prod(a[2:] - a[:2]), np.prod(b[2:] - b[:2]))
    return float(max(w, 0) * max(h, 0) / max(area, 1e-6))


def _frame(scene: dict, rng: np.random.Generator, noise: np.ndarray) -> tuple[np.ndarray, list]:
    """One jittered rendering of ``scene``: (uint8 image, [(xyxy box, label), ...]).

    Drawn at ``SUPERSAMPLE`` times the size and reduced, so edges are anti-aliased and small
    shapes keep their outline (a 6 px circle stays distinguishable from a square)."""
    size, ss = scene["bg"].shape[0], SUPERSAMPLE
    img = Image.fromarray(scene["bg"]).resize((size * ss, size * ss), Image.NEAREST)
    draw = ImageDraw.Draw(img)
    shift = rng.normal(0, 1.0, 2)
    truth = []
    for item in scene["items"]:
        d = shift + rng.normal(0, 1.2, 2)  # every object moves by a few pixels per frame
        color = tuple(int(v) for v in (item["color"] + rng.normal(0, 6, 3)).clip(0, 255))
        width = item["width"] * ss
        if item["kind"] == "line":
            draw.line([tuple(q) for q in (item["pts"] + d) * ss], fill=color, width=width)
        elif item["kind"] == "arc":
            box = (item["box"] + np.tile(d, 2)) * ss
            draw.arc(list(box), item["start"], item["end"], fill=color, width=width)
        else:
            cx, cy, r, angle = item["geom"]
            pts = _place(item["unit"], cx + d[0], cy + d[1], r * (1 + rng.normal(0, 0.03)),
                         angle + rng.normal(0, 0.05))
            xy = [tuple(q) for q in pts * ss]
            if item["fill"]:
                draw.polygon(xy, fill=color)
            else:
                draw.line(xy + xy[:1], fill=color, width=width, joint="curve")
            if item["label"] >= 0:
                box = np.concatenate([pts.min(0), pts.max(0)]).clip(0, size)
                if box[2] - box[0] > 1 and box[3] - box[1] > 1:
                    truth.append((np.round(box, 2), item["label"]))
    img = img.reduce(ss)
    oy, ox = rng.integers(0, size + 1, 2)  # a fresh window of the shared Gaussian noise bank
    arr = np.asarray(img, np.float32) * np.float32(rng.uniform(0.9, 1.1))
    arr += noise[oy:oy + size, ox:ox + size] * np.float32(scene["noise"] * rng.uniform(0.7, 1.3))
    arr += np.float32(rng.uniform(-8, 8))
    return arr.clip(0, 255).astype(np.uint8), truth


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
    scene = _scene(rng, labels, size)
    out = []
    for image_id in ids:
        arr, truth = _frame(scene, rng, noise)
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
