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

from albench.backends.adapter import BackendBase, BatchLoss, LossFn, Taps
from albench.backends.base import Detections
from albench.backends.loss_head import LossPredictionHead
from albench.backends.semi import consistency_loss
from albench.backends.training import autocast, letterbox
from albench.data.index import Annotation, ImageStore
from albench.errors import ConfigError
from albench.backends.options import YOLO_OPTIONS as OPTIONS
from albench.backends.weights import checkpoint_architecture, require_file

# A CPU-sized scale next to ultralytics' n/s/m/l/x: depth 0.33, width 0.125.
EXTRA_SCALES = {"t": [0.33, 0.125, 1024]}
DEFAULT_MODEL, DEFAULT_SCALE = "yolov8", "t"  # without weights and without model/scale


def _yaml_root() -> Path:
    import ultralytics

    return Path(ultralytics.__file__).parent / "cfg" / "models"


def architecture(opts: Mapping) -> tuple[str, str]:
    """``(model, scale)``: the options where given, else what the weights file declares
    (an ultralytics checkpoint), else yolov8 scale t. A family with one yaml per scale
    (yolov10n.yaml) is named by that yaml."""
    model, scale = opts.get("model"), opts.get("scale")
    if opts.get("weights") and (model is None or scale is None):
        found = checkpoint_architecture(require_file(opts["weights"], "weights"))
        if found is not None:
            family, own_scale, name = found
            if model is None:
                model = family if sorted(_yaml_root().glob(f"*/{family}.yaml")) else name
            scale = own_scale if scale is None else scale
    return model or DEFAULT_MODEL, scale or DEFAULT_SCALE


def _model_cfg(model: str, scale: str, num_classes: int) -> dict:
    path = Path(model)
    if path.suffix not in {".yaml", ".yml"}:
        found = sorted(_yaml_root().glob(f"*/{model}.yaml"))
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
    if cfg.get("end2end") or "v10Detect" in str(cfg.get("head", [[]])[-1]):
        raise ConfigError(
            f"Model {model!r} has an end-to-end (NMS-free) head (YOLOv10, YOLO26), which the "
            "yolo backend does not train: its loss, per-image losses and NMS path are those of "
            "the v8 detection head. Use a yolov8 or yolo11 model (or weights from one, such as "
            "a yolo11n detection or pose checkpoint), or a model .yaml without end2end.")
    return cfg


class YoloBackend(BackendBase):
    name = "yolo"
    options = OPTIONS
    capabilities = frozenset({"loss_head"})
    weight_options = ("weights",)
    deterministic_on_cuda = ("cheap: deterministic kernels cost little (measured ~2.8 s vs "
                             "~2.1-2.5 s of training per smoke round on one H100)")

    def __init__(self, images: ImageStore, num_classes: int, options: dict, device: str = "cpu"):
        super().__init__(images, num_classes, options, device)
        self.opts["model"], self.opts["scale"] = architecture(self.opts)
        self.cfg = _model_cfg(self.opts["model"], self.opts["scale"], num_classes)
        self._tensors: dict[int, tuple[torch.Tensor, float, float, float]] = {}

    # ------------------------------------------------------------------ model
    def _build(self, seed: int, load_files: bool = True) -> torch.nn.Module:
        from ultralytics.nn.tasks import DetectionModel

        torch.manual_seed(seed)
        model = DetectionModel(copy.deepcopy(self.cfg), ch=3, nc=self.num_classes, verbose=False)
        if self.opts["weights"] and load_files:
            self._load_weights(model, "weights", f"{self.opts['model']} scale {self.opts['scale']}")
        model.args = SimpleNamespace(box=7.5, cls=0.5, dfl=1.5)
        return model

    def _attach_head(self, model: torch.nn.Module) -> None:
        detect = model.model[-1]
        channels = [detect.cv2[i][0].conv.in_channels for i in range(detect.nl)]
        model.loss_head = LossPredictionHead(channels).to(next(model.parameters()).device)

    def recipe(self) -> dict:
        """Everything that determines a trained model besides data and seed."""
        keys = ("model", "scale", "weights", "imgsz", "batch", "epochs", "warm_epochs", "lr",
                "weight_decay", "optimizer", "hflip")
        extra = {"features": sorted(self.features)} if self.features else {}
        extra["amp"] = bool(self.opts["amp"])
        return {"backend": "yolo", **{k: self.opts[k] for k in keys}, **extra,
                **self._weights_recipe()}

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

    # ------------------------------------------------------------------ training
    def _loss_fn(self) -> LossFn:
        """ultralytics' detection loss of a batch; per image (one criterion call each, on
        the image's slice of predictions and targets) when the loss head needs it."""
        from ultralytics.utils.loss import v8DetectionLoss

        crit = v8DetectionLoss(self.model)

        def loss(ids: list[int], targets: Mapping[int, Annotation], rng: np.random.Generator,
                 per_image: bool) -> BatchLoss:
            x, batch = self._batch(ids, targets, rng)
            preds = self.model(x)
            if not per_image:
                return BatchLoss(crit(preds, batch)[0].sum())
            t0 = time.perf_counter()
            losses = torch.stack([crit.loss(*_image_slice(preds, batch, j))[0].sum()
                                  for j in range(len(ids))])
            return BatchLoss(losses.mean(), losses, preds["feats"], time.perf_counter() - t0)

        return loss

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

    # ------------------------------------------------------------------ inference
    def _infer(self, ids: list[int], detect: bool) -> Taps:
        """One forward of the raw model: SPPF's pooled output (a forward hook), the loss
        head on the neck outputs, and ultralytics' NMS with kept-anchor indices."""
        assert self.model is not None
        feats: list[torch.Tensor] = []
        layer = self.model.model[len(self.cfg["backbone"]) - 1]
        hook = layer.register_forward_hook(lambda m, i, o: feats.append(o.mean((2, 3))))
        try:
            items = [self._tensor(i) for i in ids]
            x = torch.stack([t[0] for t in items]).to(self.device).float() / 255.0
            with autocast(self.model, self.opts["amp"]):
                raw = self.model(x)
                losses = (self.model.loss_head(raw[1]["feats"]).float().cpu().numpy()
                          if hasattr(self.model, "loss_head") else None)
        finally:
            hook.remove()
        y = (raw[0] if isinstance(raw, (tuple, list)) else raw).float()
        taps = Taps(feats[0].float().cpu().numpy(), losses)
        if detect:
            taps.detections = self._detections(ids, y, items)
        return taps

    def _detections(self, ids: list[int], y: torch.Tensor, items: list) -> list[Detections]:
        from ultralytics.utils.nms import non_max_suppression

        out: list[Detections] = []
        nc = self.num_classes
        kept, keep_idx = non_max_suppression(
            y, self.opts["conf"], self.opts["iou"], max_det=self.opts["max_det"], nc=nc,
            return_idxs=True, max_time_img=60.0)
        for b, (image_id, det, k) in enumerate(zip(ids, kept, keep_idx)):
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


def _image_slice(preds: dict, batch: dict, j: int) -> tuple[dict, dict]:
    """Image ``j``'s predictions and targets, as a batch of one for ultralytics' criterion."""
    one = {"boxes": preds["boxes"][j:j + 1], "scores": preds["scores"][j:j + 1],
           "feats": [f[j:j + 1] for f in preds["feats"]]}
    sel = batch["batch_idx"] == j
    return one, {"batch_idx": torch.zeros_like(batch["batch_idx"][sel]),
                 "cls": batch["cls"][sel], "bboxes": batch["bboxes"][sel]}
