"""Drawing of the ``shapes`` dataset's scenes: class outlines, textured cluttered
backgrounds, and near-duplicate frames of one scene (objects shifted by a few pixels,
brightness and noise changed). Pure functions of a numpy generator: the same draws in the
same order give the same pixels. :mod:`albench.data.shapes` plans, writes and loads them.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("circle", "square", "triangle", "cross", "star", "crescent", "hexagon", "arrow")
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


def make_scene(rng: np.random.Generator, labels: np.ndarray, size: int) -> dict:
    """A base scene: background, distractors and labelled objects (rendered by :func:`render_frame`)."""
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


def render_frame(scene: dict, rng: np.random.Generator, noise: np.ndarray) -> tuple[np.ndarray, list]:
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
