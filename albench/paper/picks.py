"""Figure 3: what the strategies pick at one round.

The map places pool images by t-SNE (scikit-learn) of their embeddings and marks each
strategy's batch. Embeddings come from a run's saved model (``state/round-NNNN/model.pt``, the run's
latest model) when one is present; otherwise from a documented proxy, downsampled pixels
(each image resized to 16 x 16 RGB, standardised, reduced by PCA to at most 50
dimensions), which shows how the picks spread over image appearance rather than over the
detector's features. The grid shows each strategy's first picks with the model's boxes
(or, without a saved model, the ground-truth boxes, drawn dashed and said so).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from albench.errors import AlbenchError  # noqa: E402
from albench.runfolder import RunFolder  # noqa: E402

PROXY = "downsampled pixels (16 × 16 RGB, standardised, PCA to ≤ 50 dimensions)"


@dataclass
class Picks:
    """Each strategy's selected ids at one round and seed, and how the map was made."""

    round: int
    seed: int
    selections: dict[str, list[int]]  # strategy label -> ids in selection order
    embedding: str = PROXY
    model_run: str | None = None
    notes: list[str] = field(default_factory=list)


def read_selection(run_dir: Path, round_: int) -> list[int] | None:
    path = Path(run_dir) / "selections.jsonl"
    if not path.is_file():
        return None
    for line in path.read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            if int(rec.get("round", -1)) == round_:
                return [int(i) for i in rec["ids"]]
    return None


def choose(data: Any, round_: int) -> Picks | None:
    """The seed every strategy of the panel ran (the smallest such), and their picks."""
    by_seed: dict[int, dict[str, list[int]]] = {}
    for run in data.runs:
        ids = read_selection(data.root / run.path, round_)
        if ids:
            by_seed.setdefault(run.seed, {})[run.strategy] = ids
    if not by_seed:
        return None
    seed = max(sorted(by_seed), key=lambda s: len(by_seed[s]))
    return Picks(round_, seed, dict(sorted(by_seed[seed].items())))


def _load_dataset(cfg: dict):
    from albench.data import load_dataset

    ds = load_dataset(cfg["dataset"], **(cfg.get("dataset_options") or {}))
    if cfg.get("pool_subsample"):
        ds = ds.subsample_pool(int(cfg["pool_subsample"]), seed=0)
    return ds


def _model(data: Any, seed: int, ds: Any, picks: Picks) -> Any:
    """A backend holding a saved model of one of the panel's runs at ``seed``, or None."""
    runs = sorted((r for r in data.runs if r.seed == seed),
                  key=lambda r: r.config.get("strategy") != "random")
    for run in runs:
        path = RunFolder(data.root / run.path).model_path()
        if path is None:
            continue
        try:
            from albench.backends import build_backend

            cfg = run.config
            backend = build_backend(cfg["backend"], ds.images, ds.num_classes,
                                    cfg.get("backend_options") or {}, "cpu")
            backend.load(path)
            picks.model_run = run.run_id
            where = path.relative_to(data.root / run.path)
            picks.embedding = f"the saved model of {run.run_id} ({where}: its latest model)"
            return backend
        except Exception as exc:  # noqa: BLE001  (fall back to the proxy, say why)
            picks.notes.append(f"The saved model of {run.run_id} could not be used ({exc}); "
                               "the map uses the pixel proxy.")
    return None


def _proxy_features(ds: Any, ids: np.ndarray) -> np.ndarray:
    from PIL import Image

    rows = [np.asarray(Image.fromarray(ds.images.load(int(i))).convert("RGB").resize((16, 16)),
                       np.float32).ravel() / 255.0 for i in ids]
    return np.stack(rows)


def tsne_2d(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D t-SNE of ``features`` (standardised, PCA-reduced first), seeded."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    x = np.asarray(features, np.float64)
    x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-8)
    n = x.shape[0]
    dims = min(50, n - 1, x.shape[1])
    if dims >= 2 and dims < x.shape[1]:
        x = PCA(n_components=dims, random_state=seed).fit_transform(x)
    perplexity = float(min(30, max(2, (n - 1) // 3)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)


def draw(data: Any, settings: dict, out: Path, colors: dict[str, Any]) -> tuple[Picks | None, list[str]]:
    """Write fig3_picks_map and fig3_picks_grid (PNG, SVG); return the picks and notes."""
    round_ = int(settings.get("round", 0))
    picks = choose(data, round_)
    if picks is None:
        return None, [f"Figure 3: no run of panel {data.panel.id} has a selection at round {round_}."]
    cfg = next(r.config for r in data.runs if r.seed == picks.seed)
    try:
        ds = _load_dataset(cfg)
    except AlbenchError as exc:
        return None, [f"Figure 3 needs the images of {cfg.get('dataset')}: {exc}"]
    backend = _model(data, picks.seed, ds, picks)
    picked = sorted({i for ids in picks.selections.values() for i in ids})
    rng = np.random.default_rng(0)
    others = np.setdiff1d(np.asarray(ds.pool_ids), picked)
    room = max(0, int(settings.get("max_points", 2000)) - len(picked))
    if len(others) > room:
        others = np.sort(rng.choice(others, room, replace=False))
        picks.notes.append(f"The map shows every pick and a seeded sample of {room} other pool images.")
    ids = np.concatenate([np.asarray(picked, int), others.astype(int)])
    feats = backend.embed(ids.tolist()) if backend is not None else _proxy_features(ds, ids)
    xy = tsne_2d(feats)
    where = {int(i): k for k, i in enumerate(ids)}
    _map(picks, xy, where, out / "fig3_picks_map", colors, data)
    _grid(picks, ds, backend, int(settings.get("per_strategy", 6)), out / "fig3_picks_grid", colors)
    return picks, picks.notes


def _base(label: str, data: Any) -> str:
    for r in data.runs:
        if r.strategy == label:
            return str(r.config.get("strategy", label))
    return label


def _map(picks: Picks, xy: np.ndarray, where: dict[int, int], stem: Path, colors: dict, data: Any) -> None:
    fig = Figure(figsize=(7.2, 6.2), layout="constrained")
    ax = fig.subplots()
    ax.scatter(xy[:, 0], xy[:, 1], s=6, color="lightgrey", label="pool")
    from albench.report.plots import strategy_styles

    styles = strategy_styles([_base(label, data) for label in picks.selections])
    for label, ids in picks.selections.items():
        pts = xy[[where[i] for i in ids if i in where]]
        look = styles[_base(label, data)]
        ax.scatter(pts[:, 0], pts[:, 1], s=40, marker=look.marker, facecolors="none",
                   edgecolors=[look.color], linewidths=1.3, label=f"{label} ({len(ids)})")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize="small", loc="best")
    ax.set_title(f"Batches picked at round {picks.round}, seed {picks.seed}\n"
                 f"t-SNE of {'model embeddings' if picks.model_run else 'a pixel proxy'}",
                 fontsize="medium")
    from albench import style

    style.save(fig, stem)


def _grid(picks: Picks, ds: Any, backend: Any, per: int, stem: Path, colors: dict) -> None:
    rows = list(picks.selections.items())
    fig = Figure(figsize=(1.7 * per + 1.0, 1.8 * len(rows) + 0.6), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(rows), per, squeeze=False))
    box_colors = matplotlib.colormaps["tab10"].colors
    for r, (label, ids) in enumerate(rows):
        first = ids[:per]
        dets = backend.predict(first) if backend is not None else None
        for c in range(per):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, fontsize="small")
            if c >= len(first):
                ax.set_axis_off()
                continue
            ax.imshow(ds.images.load(first[c]), interpolation="nearest")
            if dets is not None:
                d = dets[c]
                keep = np.argsort(-d.scores)[:10]
                boxes = [(d.boxes[k], int(d.labels[k])) for k in keep if d.scores[k] >= 0.25]
                style = "-"
            else:
                ann = ds.annotations[first[c]]
                boxes = [(b, int(lab)) for b, lab in zip(ann.boxes, ann.labels)]
                style = "--"
            for box, lab in boxes:
                x0, y0, x1, y1 = (float(v) for v in box)
                ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, lw=1, ls=style,
                                       edgecolor=box_colors[lab % len(box_colors)]))
            ax.set_title(f"#{first[c]}", fontsize="x-small")
    what = ("boxes: the saved model's detections (score ≥ 0.25)" if backend is not None
            else "dashed boxes: ground truth (no saved model)")
    fig.suptitle(f"First {per} picks per strategy at round {picks.round}, seed {picks.seed}; {what}",
                 fontsize="small")
    _save_raster(fig, stem)
    from albench import style

    style.save(fig, stem, formats=("pdf",))


def _save_raster(fig: Figure, stem: Path) -> None:
    """PNG as a 256-colour palette (photos compress poorly otherwise); the SVG embeds it.

    The grid is pictures, so a vector copy would only wrap the same pixels at several
    times the size."""
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    image = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    png = io.BytesIO()
    image.quantize(256, dither=Image.Dither.NONE).save(png, format="PNG", optimize=True)
    stem.with_suffix(".png").write_bytes(png.getvalue())
    w, h = image.size
    data = base64.b64encode(png.getvalue()).decode()
    stem.with_suffix(".svg").write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'width="{w}" height="{h}" viewBox="0 0 {w} {h}">'
        f'<image width="{w}" height="{h}" xlink:href="data:image/png;base64,{data}"/></svg>\n')
