"""The declared options of the built-in backends (``--backend-opt`` keys with default, help,
bounds and choices), kept apart from the backends' code so that listing and checking them
imports no detector framework."""

from __future__ import annotations

from albench.options import Option

YOLO_OPTIONS = {
    "model": Option(None, "ultralytics model family yaml (yolov8, yolo11, yolov10n) or a .yaml "
                    "path", kind=str, default_note="the weights file's architecture, else yolov8"),
    "scale": Option(None, "model scale: t (CPU-sized), n, s, m, l, x (b for yolov10)",
                    ("t", "n", "s", "m", "l", "x", "b"), kind=str,
                    default_note="the weights file's, else t"),
    "weights": Option(None, "local .pt: an ultralytics detection or pose checkpoint (its "
                      "architecture is read from it) or a state_dict; at least half the "
                      "model's tensors must transfer; never downloaded", kind=str),
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

ARCHS = ("mobilenet_v3_large_320_fpn", "mobilenet_v3_large_fpn", "resnet50_fpn")

FRCNN_OPTIONS = {
    "arch": Option("mobilenet_v3_large_320_fpn", "backbone + FPN (resnet50_fpn: the paper presets)",
                   ARCHS),
    "weights": Option(None, "local detector state_dict/checkpoint; never downloaded", kind=str),
    "weights_backbone": Option(None, "local backbone (classification model) state_dict",
                               kind=str),
    "trainable_backbone_layers": Option(None, "backbone stages trained (none: all from scratch, "
                                        "3 with pretrained weights)", kind=int, low=0, high=6),
    "imgsz": Option(128, "longer image side the transform resizes to", low=1),
    "anchor_sizes": Option("32,64,128,256,512", "anchor sizes, comma-separated (torchvision's; "
                           "resnet50_fpn takes one per level)"),
    "batch": Option(4, "training batch size", low=1),
    "epochs": Option(30, "epochs of a training from initialisation", low=1),
    "warm_epochs": Option(10, "epochs of a warm-started round", low=1),
    "lr": Option(0.02, "learning rate", low=0, exclusive=True),
    "weight_decay": Option(0.0001, "weight decay", low=0),
    "optimizer": Option("sgd", "sgd (momentum 0.9, nesterov) or adamw", ("sgd", "adamw")),
    "hflip": Option(0.5, "probability of a horizontal flip in training", low=0, high=1),
    "rpn_batch_size_per_image": Option(128, "anchors sampled per image for the RPN loss", low=1),
    "box_batch_size_per_image": Option(64, "RoIs per image: the box head dominates CPU cost",
                                       low=1),
    "rpn_post_nms_top_n_train": Option(500, "proposals per image in training", low=1),
    "rpn_pre_nms_top_n_test": Option(300, "proposals per image before NMS at inference", low=1),
    "rpn_post_nms_top_n_test": Option(150, "proposals per image at inference (torchvision 320: "
                                      "150)", low=1),
    "box_score_thresh": Option(0.001, "score threshold of detections", low=0, high=1),
    "box_detections_per_img": Option(100, "detections kept per image", low=1),
    "infer_batch": Option(16, "inference batch size", low=1),
    "amp": Option(False, "bf16 autocast in training and inference (a GPU option)"),
}
