"""``yolo``: an ultralytics detection model trained by albench's own plain loop.

The model is built from an ultralytics model yaml (random init, or local weights a user
names; nothing is downloaded) and trained with ultralytics' own detection loss
(``v8DetectionLoss``) inside :func:`albench.backends.training.train`, so training is
seeded and extra loss terms can be added. ``predict`` runs the raw model and
ultralytics' NMS with kept-anchor indices, which gives the full class-score row of
every detection; YOLO scores classes with independent sigmoids, so the probability
row is those scores normalised to sum to one. ``embed`` average-pools the output of the
last backbone layer (SPPF).

With ``enable({"loss_head"})`` (LL4AL) a :class:`LossPredictionHead` reads the neck
outputs that feed the Detect head (P3/P4/P5). Training then needs the detection loss of
every image: ultralytics' criterion gives one normalised loss per batch, so it is called
once per image on that image's slice of the predictions and targets. That is B criterion
calls per batch instead of one (label assignment image by image): at 128 px on one CPU
thread about 10 ms per image against 20 ms for a whole batch of 16, so a fit takes
roughly 10 % longer; ``FitReport.head_seconds`` records the time spent in the per-image
losses and the head. The step minimises the mean per-image loss plus the margin ranking
loss of the head's predictions against the detached per-image losses (ultralytics'
batch loss, used without the head, is the batch-normalised loss times the batch size);
the head's gradient into the detector stops after 60 % of the epochs. The head is a
submodule (``model.loss_head``), so it is saved and loaded with the model;
``predict_loss`` gives its output per image in eval mode.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Mapping, Sequence

import numpy as np
import torch
import yaml

from albench.backends import register_backend
from albench.backends.base import BackendBase, Detections, FitReport, load_weights_file
from albench.backends.loss_head import LossPredictionHead, head_inputs, margin_ranking_loss
from albench.backends.semi import UnsupConfig, consistency_loss
from albench.backends.training import autocast, letterbox, train
from albench.data.index import Annotation, ImageStore
from albench.errors import ConfigError
from albench.options import Option

# A CPU-sized scale next to ultralytics' n/s/m/l/x: depth 0.33, width 0.125.
EXTRA_SCALES = {"t": [0.33, 0.125, 1024]}

OPTIONS = {
    "model": Option("yolov8", "ultralytics model family yaml (yolov8, yolo11) or a .yaml path"),
    "scale": Option("t", "model scale: t (CPU-sized), n, s, m, l, x",
                    ("t", "n", "s", "m", "l", "x")),
    "weights": Option(None, "local .pt (ultralytics checkpoint or state_dict); never downloaded",
                      kind=str),
    "imgsz": Option(128, "square letterboxed input size", low=1),
    "batch": Option(16, "training batch size", low=1),
    "epochs": Option(40, "epochs of a training from initialisation", low=1),
    "warm_epochs": Option(15, "epochs of a warm-started round", low=1),
    "lr": Option(0.005, "learning rate", low=0, exclusive=True),
    "weight_decay": Option(0.0005, "weight decay", low=0),
    "optimizer": Option("adamw", "optimizer", ("sgd", "adamw")),
    "hflip": Option(0.5, "probability of a horizontal flip in training", low=0, high=1),
    "conf": Option(0.001, "score threshold of predictions (evaluation needs a low one)",
                   low=0, high=1),
    "iou": Option(0.6, "NMS IoU threshold", low=0, high=1),
    "max_det": Option(100, "detections kept per image", low=1),
    "infer_batch": Option(64, "inference batch size", low=1),
    "amp": Option(False, "bf16 autocast in training and inference (a GPU option)"),
}


def _model_cfg(model: str, scale: str, num_classes: int) -> dict:
    import ultralytics

    path = Path(model)
    if path.suffix not in {".yaml", ".yml"}:
        root = Path(ultralytics.__file__).parent / "cfg" / "models"
        found = sorted(root.glob(f"*/{model}.yaml"))
        if not found:
            raise ConfigError(
                f"No ultralytics model yaml named {model!r}. Use a family such as yolov8 or "
                "yolo11 (--backend-opt model=yolov8), or a path to your own model .yaml."
            )
        path = found[0]
    cfg = yaml.safe_load(path.read_text())
    cfg["nc"] = num_classes
    scales = dict(cfg.get("scales") or {}, **EXTRA_SCALES)
    if scale not in scales:
        raise ConfigError(f"Model {model!r} has no scale {scale!r}; choose one of {sorted(scales)}.")
    cfg["scales"], cfg["scale"] = scales, scale
    return cfg


@register_backend("yolo", "ultralytics YOLO (v8/11 yaml, random init or local weights), "
                  "trained by albench's plain loop with ultralytics' detection loss", OPTIONS)
class YoloBackend(BackendBase):
    capabilities = frozenset({"loss_head"})

    def __init__(self, images: ImageStore, num_classes: int, options: dict, device: str = "cpu"):
        super().__init__(images, num_classes, options, device)
        self.cfg = _model_cfg(self.opts["model"], self.opts["scale"], num_classes)
        self.model: torch.nn.Module | None = None
        self._tensors: dict[int, tuple[torch.Tensor, float, float, float]] = {}
        self._emb_cache: dict[int, np.ndarray] = {}

    # ------------------------------------------------------------------ model
    def _build(self, seed: int, load_files: bool = True) -> torch.nn.Module:
        from ultralytics.nn.tasks import DetectionModel

        torch.manual_seed(seed)
        model = DetectionModel(copy.deepcopy(self.cfg), ch=3, nc=self.num_classes, verbose=False)
        if self.opts["weights"] and load_files:
            load_weights_file(model, Path(self.opts["weights"]))
        model.args = SimpleNamespace(box=7.5, cls=0.5, dfl=1.5)
        if "loss_head" in self.features:
            self._attach_head(model)
        return model.to(self.device)

    def _attach_head(self, model: torch.nn.Module) -> None:
        detect = model.model[-1]
        channels = [detect.cv2[i][0].conv.in_channels for i in range(detect.nl)]
        model.loss_head = LossPredictionHead(channels).to(next(model.parameters()).device)

    def _clear_caches(self) -> None:
        self._emb_cache.clear()

    def _fresh_caches(self) -> None:
        self._emb_cache = {}

    def recipe(self) -> dict:
        """Everything that determines a trained model besides data and seed."""
        keys = ("model", "scale", "weights", "imgsz", "batch", "epochs", "warm_epochs", "lr",
                "weight_decay", "optimizer", "hflip")
        extra = {"features": sorted(self.features)} if self.features else {}
        extra["amp"] = bool(self.opts["amp"])
        return {"backend": "yolo", **{k: self.opts[k] for k in keys}, **extra}

    # ------------------------------------------------------------------ data
    def _tensor(self, image_id: int) -> tuple[torch.Tensor, float, float, float]:
        hit = self._tensors.get(image_id)
        if hit is None:
            hit = letterbox(self.images.load(image_id), self.opts["imgsz"])
            if len(self._tensors) < 50_000:
                self._tensors[image_id] = hit
        return hit

    def _batch(self, ids: list[int], labeled: Mapping[int, Annotation],
               rng: np.random.Generator) -> tuple[torch.Tensor, dict]:
        size = self.opts["imgsz"]
        imgs, idx, cls, boxes = [], [], [], []
        for j, image_id in enumerate(ids):
            img, scale, px, py = self._tensor(image_id)
            ann = labeled[image_id]
            keep = ~ann.ignore
            b = ann.boxes[keep] * scale + np.array([px, py, px, py], np.float32)
            if rng.random() < self.opts["hflip"]:
                img = img.flip(-1)
                b = b.copy()
                b[:, [0, 2]] = size - b[:, [2, 0]]
            imgs.append(img)
            xywh = np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2,
                             b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1) / size if len(b) else np.zeros((0, 4))
            boxes.append(torch.as_tensor(xywh, dtype=torch.float32))
            cls.append(torch.as_tensor(ann.labels[keep], dtype=torch.float32))
            idx.append(torch.full((len(b),), float(j)))
        x = torch.stack(imgs).to(self.device).float() / 255.0
        batch = {"batch_idx": torch.cat(idx), "cls": torch.cat(cls), "bboxes": torch.cat(boxes)}
        return x, {k: v.to(self.device) for k, v in batch.items()}

    # ------------------------------------------------------------------ API
    def fit(self, labeled: Mapping[int, Annotation], seed: int, *, epochs: int | None = None,
            warm_start: bool = False, progress=None, unlabeled: Sequence[int] = (),
            unsup: UnsupConfig | None = None) -> FitReport:
        from ultralytics.utils.loss import v8DetectionLoss

        targets, extra_ids = self._with_unlabeled(labeled, unlabeled, unsup)
        if self.model is None or not warm_start:
            self.model = self._build(seed)
        self._clear_caches()
        epochs = epochs or self.opts["warm_epochs" if warm_start else "epochs"]
        crit = v8DetectionLoss(self.model)
        use_head = "loss_head" in self.features
        head_s = [0.0]

        def step(batch_ids: list[int], rng: np.random.Generator, epoch: int) -> torch.Tensor:
            x, batch = self._batch(batch_ids, targets, rng)
            preds = self.model(x)
            if not use_head:
                return crit(preds, batch)[0].sum()
            # LL4AL: mean per-image detection loss + margin ranking loss of the head
            t0 = time.perf_counter()
            losses = torch.stack([crit.loss(*_image_slice(preds, batch, j))[0].sum()
                                  for j in range(len(batch_ids))])
            feats = head_inputs(preds["feats"], epoch, epochs)
            rank = margin_ranking_loss(self.model.loss_head(feats), losses.detach())
            head_s[0] += time.perf_counter() - t0
            return losses.mean() + 1.0 * rank

        extra = self._consistency_hook(extra_ids, unsup, seed)
        torch.manual_seed(seed)
        report = train(self.model, sorted(targets), step, epochs=epochs,
                       batch_size=self.opts["batch"], lr=self.opts["lr"],
                       weight_decay=self.opts["weight_decay"], seed=seed,
                       optimizer=self.opts["optimizer"], progress=progress, extra=extra,
                       amp=self.opts["amp"])
        report.head_seconds = head_s[0]
        return report

    def consistency(self, ids: Sequence[int]) -> torch.Tensor:
        """CSD flip consistency of ``ids`` (unlabeled) at mirrored grid cells of the dense
        head: binary JS of the class sigmoids plus the squared error of the expected
        left/top/right/bottom distances (grid units) with left and right swapped."""
        assert self.model is not None
        x = torch.stack([self._tensor(int(i))[0] for i in ids]).to(self.device).float() / 255.0
        b = len(ids)
        preds = self.model(torch.cat([x, x.flip(-1)]))
        preds = preds[1] if isinstance(preds, (tuple, list)) else preds
        reg_max = preds["boxes"].shape[1] // 4
        bins = torch.arange(reg_max, device=x.device, dtype=x.dtype).view(1, 1, -1, 1)
        dist = (preds["boxes"].view(2 * b, 4, reg_max, -1).softmax(2) * bins).sum(2)
        scores = preds["scores"].sigmoid()
        cls_a, cls_b, box_a, box_b, start = [], [], [], [], 0
        for f in preds["feats"]:
            h, w = f.shape[-2:]
            sl = slice(start, start + h * w)
            s_lvl = scores[:, :, sl].reshape(2 * b, -1, h, w)
            d_lvl = dist[:, :, sl].reshape(2 * b, 4, h, w)
            s_mir = s_lvl[b:].flip(-1)
            d_mir = d_lvl[b:].flip(-1)[:, [2, 1, 0, 3]]  # left <-> right
            nc = s_lvl.shape[1]
            cls_a.append(s_lvl[:b].permute(0, 2, 3, 1).reshape(-1, nc))
            cls_b.append(s_mir.permute(0, 2, 3, 1).reshape(-1, nc))
            box_a.append(d_lvl[:b].permute(0, 2, 3, 1).reshape(-1, 4))
            box_b.append(d_mir.permute(0, 2, 3, 1).reshape(-1, 4))
            start += h * w
        return consistency_loss(torch.cat(cls_a), torch.cat(cls_b), torch.cat(box_a),
                                torch.cat(box_b), kind="sigmoid")

    @torch.no_grad()
    def _forward(self, ids: Sequence[int]):
        """Yield (ids, raw inference output, pooled features, letterbox params) per batch."""
        assert self.model is not None, "fit() or load() first"
        self.model.eval()
        feats: list[torch.Tensor] = []
        layer = self.model.model[len(self.cfg["backbone"]) - 1]
        hook = layer.register_forward_hook(lambda m, i, o: feats.append(o.mean((2, 3))))
        try:
            step = self.opts["infer_batch"]
            for s in range(0, len(ids), step):
                chunk = [int(i) for i in ids[s:s + step]]
                items = [self._tensor(i) for i in chunk]
                x = torch.stack([t[0] for t in items]).to(self.device).float() / 255.0
                feats.clear()
                with autocast(self.model, self.opts["amp"]):
                    y = self.model(x)
                y = (y[0] if isinstance(y, (tuple, list)) else y).float()
                pooled = feats[0].float().cpu().numpy()
                for i, f in zip(chunk, pooled):
                    self._emb_cache[i] = f
                yield chunk, y, items
        finally:
            hook.remove()

    def predict(self, ids: Sequence[int]) -> list[Detections]:
        from ultralytics.utils.nms import non_max_suppression

        out: list[Detections] = []
        nc = self.num_classes
        for chunk, y, items in self._forward(ids):
            kept, keep_idx = non_max_suppression(
                y, self.opts["conf"], self.opts["iou"], max_det=self.opts["max_det"], nc=nc,
                return_idxs=True, max_time_img=60.0)
            for b, (image_id, det, k) in enumerate(zip(chunk, kept, keep_idx)):
                _, scale, px, py = items[b]
                if len(det) == 0:
                    out.append(Detections.empty(nc))
                    continue
                scores = y[b, 4:4 + nc, k.long().view(-1)].T.clamp_min(1e-9)
                probs = (scores / scores.sum(1, keepdim=True)).cpu().numpy().astype(np.float32)
                boxes = det[:, :4].cpu().numpy()
                boxes = (boxes - np.array([px, py, px, py], np.float32)) / scale
                w, h = self.images.size(image_id)
                boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
                boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
                out.append(Detections(boxes.astype(np.float32), det[:, 4].cpu().numpy().astype(np.float32),
                                      det[:, 5].cpu().numpy().astype(np.int64), probs))
        return out

    @torch.no_grad()
    def predict_loss(self, ids: Sequence[int]) -> np.ndarray:
        """The loss-prediction head's output per image (eval mode)."""
        if self.model is None or not hasattr(self.model, "loss_head"):
            raise ConfigError("This yolo model has no loss-prediction head: a strategy that "
                              "requires 'loss_head' must enable it before training.")
        self.model.eval()
        out = []
        for s in range(0, len(ids), self.opts["infer_batch"]):
            items = [self._tensor(int(i)) for i in ids[s:s + self.opts["infer_batch"]]]
            x = torch.stack([t[0] for t in items]).to(self.device).float() / 255.0
            with autocast(self.model, self.opts["amp"]):
                out.append(self.model.loss_head(self.model(x)[1]["feats"]).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def embed(self, ids: Sequence[int]) -> np.ndarray:
        missing = [int(i) for i in ids if int(i) not in self._emb_cache]
        for _ in self._forward(missing):
            pass
        return np.stack([self._emb_cache[int(i)] for i in ids]).astype(np.float32)


def _image_slice(preds: dict, batch: dict, j: int) -> tuple[dict, dict]:
    """Image ``j``'s predictions and targets, as a batch of one for ultralytics' criterion."""
    one = {"boxes": preds["boxes"][j:j + 1], "scores": preds["scores"][j:j + 1],
           "feats": [f[j:j + 1] for f in preds["feats"]]}
    sel = batch["batch_idx"] == j
    return one, {"batch_idx": torch.zeros_like(batch["batch_idx"][sel]),
                 "cls": batch["cls"][sel], "bboxes": batch["bboxes"][sel]}
