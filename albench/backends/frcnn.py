"""``frcnn``: torchvision Faster R-CNN (FPN), trained by albench's plain loop.

Random init by default (``weights=None, weights_backbone=None``); a user may name local
files: ``weights`` (a whole detector's state_dict or checkpoint; every key whose shape
matches is loaded, so a COCO file serves another class count for all but the box
predictor) and ``weights_backbone`` (a torchvision classification backbone's state_dict).
Nothing is ever downloaded. As in torchvision, pretrained weights switch the backbone to
frozen batch norm and, unless ``trainable_backbone_layers`` says otherwise, train its last
3 stages; from scratch everything trains with ordinary batch norm.

Images go in as float tensors in 0..1 at their own size; torchvision's transform resizes
them so the longer side is ``imgsz`` (``min_size = max_size = imgsz``), and predictions
are mapped back to the original pixels. Input size and proposal counts come from the
options, so the two MobileNet variants, which torchvision tells apart only by those
defaults, build the same network here (both names are accepted, as are their COCO files).

``predict`` reruns torchvision's box post-processing while keeping, for each kept
detection, the box-head softmax row of its proposal: the background entry is dropped and
the foreground row renormalised to sum to one (the score stays torchvision's, the
un-renormalised class probability). ``embed`` is the global average pool of every FPN
level, concatenated (256 x levels values).

With ``loss_head`` enabled (LL4AL), the backbone and FPN run once per batch but the RPN
and box heads run once per image, which gives the per-image detection losses the ranking
loss needs (their mean is the batch loss torchvision would compute when every image fills
its sampling quota); this adds per-image head overhead to each step.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.transform import resize_boxes
from torchvision.ops import boxes as box_ops

from albench.backends.adapter import BackendBase, BatchLoss, LossFn, Taps
from albench.backends.weights import require_file
from albench.backends.base import Detections
from albench.backends.loss_head import LossPredictionHead
from albench.backends.semi import consistency_loss
from albench.backends.training import autocast
from albench.data.index import Annotation, ImageStore
from albench.errors import ConfigError
from albench.backends.options import ARCHS, FRCNN_OPTIONS as OPTIONS  # noqa: F401

TEST_ONLY = ("rpn_pre_nms_top_n_test", "rpn_post_nms_top_n_test", "box_score_thresh",
             "box_detections_per_img", "infer_batch")


def postprocess_with_probs(roi_heads: RoIHeads, class_logits: Tensor, box_regression: Tensor,
                           proposals: list[Tensor], image_shapes: list[tuple[int, int]]
                           ) -> list[tuple[Tensor, Tensor, Tensor, Tensor]]:
    """torchvision's ``RoIHeads.postprocess_detections`` that also returns, per kept
    detection, its proposal's foreground softmax row renormalised to sum to one."""
    nc = class_logits.shape[-1]
    counts = [len(p) for p in proposals]
    all_boxes = roi_heads.box_coder.decode(box_regression, proposals).split(counts)
    all_probs = F.softmax(class_logits, -1).split(counts)
    out = []
    for boxes, probs, shape in zip(all_boxes, all_probs, image_shapes):
        dev, n = probs.device, len(probs)
        boxes = box_ops.clip_boxes_to_image(boxes, shape)[:, 1:].reshape(-1, 4)
        fg = probs[:, 1:]
        scores = fg.reshape(-1)
        labels = torch.arange(1, nc, device=dev).repeat(n)
        rows = torch.arange(n, device=dev).repeat_interleave(nc - 1)
        keep = torch.where(scores > roi_heads.score_thresh)[0]
        keep = keep[box_ops.remove_small_boxes(boxes[keep], min_size=1e-2)]
        keep = keep[box_ops.batched_nms(boxes[keep], scores[keep], labels[keep], roi_heads.nms_thresh)]
        keep = keep[: roi_heads.detections_per_img]
        row = fg[rows[keep]]
        out.append((boxes[keep], scores[keep], labels[keep], row / row.sum(1, keepdim=True).clamp_min(1e-12)))
    return out


class FasterRCNNBackend(BackendBase):
    name = "frcnn"
    options = OPTIONS
    capabilities = frozenset({"loss_head"})
    weight_options = ("weights", "weights_backbone")
    deterministic_on_cuda = (
        "slow: deterministic mode is off under auto because an op not yet identified falls "
        "back to a very slow deterministic kernel (test inference 1.5 s -> ~20 s on one H100); "
        "runs are not bit-reproducible. --deterministic on forces it")

    def __init__(self, images: ImageStore, num_classes: int, options: dict, device: str = "cpu"):
        super().__init__(images, num_classes, options, device)
        for key in self.weight_options:
            if self.opts[key]:
                require_file(self.opts[key], key)

    # ------------------------------------------------------------------ model
    def _build(self, seed: int, load_files: bool = True) -> torch.nn.Module:
        from torchvision.models import mobilenet_v3_large, resnet50
        from torchvision.models.detection import FasterRCNN
        from torchvision.models.detection.anchor_utils import AnchorGenerator
        from torchvision.models.detection.backbone_utils import (_mobilenet_extractor,
                                                                 _resnet_fpn_extractor)
        from torchvision.ops.misc import FrozenBatchNorm2d

        o, arch = self.opts, self.opts["arch"]
        pretrained = bool(o["weights"] or o["weights_backbone"])
        resnet = arch == "resnet50_fpn"
        layers = o["trainable_backbone_layers"]
        if layers is None or str(layers).lower() == "none":
            layers = 3 if pretrained else (5 if resnet else 6)
        layers = int(layers)
        sizes = tuple(int(s) for s in str(o["anchor_sizes"]).split(","))
        if resnet and len(sizes) != 5:
            raise ConfigError("frcnn resnet50_fpn needs 5 anchor_sizes, one per FPN level.")
        torch.manual_seed(seed)
        norm = FrozenBatchNorm2d if pretrained else torch.nn.BatchNorm2d
        net = (resnet50 if resnet else mobilenet_v3_large)(weights=None, norm_layer=norm)
        if o["weights_backbone"] and load_files:
            self._load_weights(net, "weights_backbone", f"{arch}'s backbone")
        backbone = _resnet_fpn_extractor(net, layers) if resnet else _mobilenet_extractor(net, True, layers)
        anchors = tuple((s,) for s in sizes) if resnet else (sizes,) * 3
        kwargs = {k: o[k] for k in OPTIONS if k.startswith(("rpn_", "box_"))}
        if not resnet:
            kwargs["rpn_score_thresh"] = 0.05  # torchvision's setting of both MobileNet variants
        model = FasterRCNN(backbone, self.num_classes + 1, min_size=o["imgsz"], max_size=o["imgsz"],
                           rpn_anchor_generator=AnchorGenerator(anchors, ((0.5, 1.0, 2.0),) * len(anchors)),
                           **kwargs)
        if o["weights"] and load_files:
            self._load_weights(model, "weights", f"Faster R-CNN {arch}")
        return model

    @staticmethod
    def _attach_head(model: torch.nn.Module) -> None:
        if not hasattr(model, "loss_head"):
            levels = len(model.rpn.anchor_generator.sizes)
            device = next(model.parameters()).device
            model.loss_head = LossPredictionHead([model.backbone.out_channels] * levels).to(device)

    def recipe(self) -> dict:
        """Everything that determines a trained model besides data and seed."""
        return {"backend": "frcnn", "features": sorted(self.features),
                **{k: v for k, v in self.opts.items() if k not in TEST_ONLY},
                **self._weights_recipe()}

    # ------------------------------------------------------------------ data
    def _image(self, image_id: int) -> torch.Tensor:
        return torch.from_numpy(np.array(self.images.load(image_id))).permute(2, 0, 1)

    def _batch(self, ids: list[int], labeled: Mapping[int, Annotation], rng: np.random.Generator):
        imgs, targets = [], []
        for image_id in ids:
            img, ann = self._image(image_id), labeled[image_id]
            b = ann.boxes[~ann.ignore].astype(np.float32).reshape(-1, 4)
            lab = ann.labels[~ann.ignore].astype(np.int64) + 1
            ok = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
            b, lab = b[ok], lab[ok]
            if rng.random() < self.opts["hflip"]:
                img, w = img.flip(-1), img.shape[-1]
                b = np.stack([w - b[:, 2], b[:, 1], w - b[:, 0], b[:, 3]], 1)
            imgs.append(img.to(self.device).float() / 255.0)
            targets.append({"boxes": torch.as_tensor(b, dtype=torch.float32, device=self.device),
                            "labels": torch.as_tensor(lab, device=self.device)})
        return imgs, targets

    # ------------------------------------------------------------------ training
    def _loss_fn(self) -> LossFn:
        return self._loss

    def _loss(self, ids: list[int], targets_by_id: Mapping[int, Annotation],
              rng: np.random.Generator, per_image: bool) -> BatchLoss:
        """torchvision's detection loss of a batch (RPN + RoI heads); with ``per_image``
        the backbone runs once and the heads once per image."""
        m = self.model
        imgs, targets = self._batch(ids, targets_by_id, rng)
        il, targets = m.transform(imgs, targets)
        feats = m.backbone(il.tensors)
        if not per_image:
            props, rpn_l = m.rpn(il, feats, targets)
            _, roi_l = m.roi_heads(feats, props, il.image_sizes, targets)
            return BatchLoss(sum(rpn_l.values()) + sum(roi_l.values()))
        t0 = time.perf_counter()
        per = []
        for i, t in enumerate(targets):
            f = OrderedDict((k, v[i:i + 1]) for k, v in feats.items())
            one = ImageList(il.tensors[i:i + 1], [il.image_sizes[i]])
            props, rpn_l = m.rpn(one, f, [t])
            _, roi_l = m.roi_heads(f, props, one.image_sizes, [t])
            per.append(sum(rpn_l.values()) + sum(roi_l.values()))
        per_t = torch.stack(per)
        return BatchLoss(per_t.mean(), per_t, list(feats.values()), time.perf_counter() - t0)

    def consistency(self, ids: Sequence[int]) -> torch.Tensor:
        """CSD flip consistency on the RoI head: proposals of the original image (no
        gradient, RPN in eval mode) and their mirrored boxes on the flipped image; JS of the
        softmax rows plus the squared error of the box deltas with dx mirrored."""
        m = self.model
        assert m is not None
        imgs = [self._image(int(i)).to(self.device).float() / 255.0 for i in ids]
        il, _ = m.transform(imgs)
        il_f = ImageList(il.tensors.flip(-1), il.image_sizes)
        feats = m.backbone(il.tensors)
        feats_f = m.backbone(il_f.tensors)
        with torch.no_grad():
            was = m.rpn.training
            m.rpn.eval()
            props, _ = m.rpn(il, OrderedDict((k, v.detach()) for k, v in feats.items()))
            m.rpn.train(was)
        width = il.tensors.shape[-1]
        # the flipped batch tensor mirrors each image inside the padded width
        props_f = [torch.stack([width - p[:, 2], p[:, 1], width - p[:, 0], p[:, 3]], 1) for p in props]
        rh = m.roi_heads
        logits, reg = rh.box_predictor(rh.box_head(rh.box_roi_pool(feats, props, il.image_sizes)))
        logits_f, reg_f = rh.box_predictor(rh.box_head(rh.box_roi_pool(
            feats_f, props_f, [(h, width) for h, _ in il.image_sizes])))
        n, k = reg.shape[0], reg.shape[1] // 4
        reg_m = reg_f.view(n, k, 4) * torch.tensor([-1.0, 1.0, 1.0, 1.0], device=reg.device)
        return consistency_loss(logits.softmax(-1), logits_f.softmax(-1), reg.view(n, -1),
                                reg_m.view(n, -1), kind="softmax")

    # ------------------------------------------------------------------ inference
    def _infer(self, ids: list[int], detect: bool) -> Taps:
        """The backbone (FPN levels average-pooled, the loss head on them) and, when
        ``detect``, the RPN and box heads with :func:`postprocess_with_probs`."""
        m = self.model
        assert m is not None
        imgs = [self._image(i).to(self.device).float() / 255.0 for i in ids]
        il, _ = m.transform(imgs)
        with autocast(m, self.opts["amp"]):  # the backbone in bf16; heads and boxes in float32
            feats = m.backbone(il.tensors)
        feats = OrderedDict((k, v.float()) for k, v in feats.items())
        pooled = torch.cat([f.mean((2, 3)) for f in feats.values()], 1).cpu().numpy()
        pred = m.loss_head(list(feats.values())).cpu().numpy() if hasattr(m, "loss_head") else None
        taps = Taps(pooled.astype(np.float32), pred)
        if not detect:
            return taps
        props, _ = m.rpn(il, feats)
        rh = m.roi_heads
        x = rh.box_head(rh.box_roi_pool(feats, props, il.image_sizes))
        logits, reg = rh.box_predictor(x)
        kept = postprocess_with_probs(rh, logits, reg, props, il.image_sizes)
        taps.detections = []
        for i, img, size, (b, sc, lab, pr) in zip(ids, imgs, il.image_sizes, kept):
            b = resize_boxes(b, size, tuple(img.shape[-2:])).cpu().numpy()
            w, h = self.images.size(i)
            b[:, [0, 2]] = b[:, [0, 2]].clip(0, w)
            b[:, [1, 3]] = b[:, [1, 3]].clip(0, h)
            taps.detections.append(Detections(b.astype(np.float32), sc.cpu().numpy().astype(np.float32),
                                              (lab - 1).cpu().numpy().astype(np.int64),
                                              pr.cpu().numpy().astype(np.float32)))
        return taps
