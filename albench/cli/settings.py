"""The setting flags that ``run``, ``sweep`` and ``regress`` share, and their translation
into :func:`albench.config.resolve` overrides."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from albench.sweep.grid import parse_amount

DEFAULT_OUT = Path("results/runs")


def _amount(text: str) -> int | float:
    """``100`` -> 100 images; ``5%`` or ``0.05`` -> a share of the pool (an argparse type)."""
    try:
        return parse_amount(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _auto(value: str) -> Any:
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(value.lower(), value)


def add_setting_args(p: argparse.ArgumentParser) -> None:
    """Flags shared by ``run``, ``sweep`` and ``regress``: the setting of a run."""
    g = p.add_argument_group("setting (a preset, then flags override it field by field)")
    g.add_argument("--dataset", help="shapes, coco, voc or coco-json (default: the preset's, else shapes)")
    g.add_argument("--backend", help="yolo (default) or frcnn")
    g.add_argument("--preset", default="quick", help="named protocol (default: quick)")
    g.add_argument("--initial", type=_amount,
                   help="initial labeled images: a count (100) or a share of the pool in (0, 1] "
                        "(0.05 or 5%%)")
    g.add_argument("--budget", type=_amount,
                   help="images labeled per round: a count or a share, as --initial")
    g.add_argument("--rounds", type=int, help="selection rounds after the initial training (0 or more)")
    g.add_argument("--train-mode", choices=["warm", "scratch"],
                   help="warm: fine-tune last round's model; scratch: retrain from init (papers)")
    g.add_argument("--pool-subsample", type=int,
                   help="use a random subset of N >= 1 pool images (quick looks)")
    g.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or mps")
    g.add_argument("--eval-engine", choices=["faster", "pycocotools"], help="COCO evaluation engine")
    g.add_argument("--deterministic", choices=["auto", "on", "off"],
                   help="bit-reproducible GPU runs (default auto: on for yolo on CUDA, off for "
                        "frcnn on CUDA where it is slow; CPU runs are reproducible anyway)")
    g.add_argument("--backend-opt", action="append", metavar="KEY=VALUE",
                   help="backend option, repeatable (e.g. epochs=20, weights=/path/model.pt)")
    d = p.add_argument_group("data")
    d.add_argument("--data-root",
                   help="COCO 2017 or VOCdevkit root (or ALBENCH_COCO_ROOT / ALBENCH_VOC_ROOT)")
    d.add_argument("--ann-train", help="coco-json: pool annotation file")
    d.add_argument("--ann-test", help="coco-json: test annotation file")
    d.add_argument("--images", help="coco-json: image folder")
    d.add_argument("--images-test", help="coco-json: test image folder (default: --images)")
    d.add_argument("--dataset-opt", action="append", metavar="KEY=VALUE",
                   help="dataset option, repeatable (e.g. pool_size=2000 for shapes)")
    d.add_argument("--cache-dir",
                   help="where generated datasets go (default: $ALBENCH_CACHE or ./.albench-cache)")


def setting_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The setting flags as :func:`albench.config.resolve` overrides (None = not given);
    resolve checks them all, before any data is loaded."""
    from albench.config import parse_kv

    dataset_opts = {k: _auto(v) for k, v in parse_kv(args.dataset_opt, "--dataset-opt").items()}
    for flag in ("data_root", "ann_train", "ann_test", "images", "images_test", "cache_dir"):
        if getattr(args, flag, None):
            dataset_opts[flag] = getattr(args, flag)
    return dict(dataset=args.dataset, backend=args.backend, initial=args.initial,
                budget=args.budget, rounds=args.rounds, train_mode=args.train_mode,
                pool_subsample=args.pool_subsample, device=args.device,
                eval_engine=args.eval_engine, deterministic=getattr(args, "deterministic", None),
                dataset_options=dataset_opts,
                backend_options=parse_kv(args.backend_opt, "--backend-opt"))

