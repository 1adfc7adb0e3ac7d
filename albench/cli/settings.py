"""The setting flags that ``run``, ``sweep`` and ``regress`` share, and their translation
into :func:`albench.config.resolve` overrides. The flags stay text here: the one option
policy (:mod:`albench.options`) parses and checks them, once, in ``resolve``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


DEFAULT_OUT = Path("results/runs")


def add_setting_args(p: argparse.ArgumentParser) -> None:
    """Flags shared by ``run``, ``sweep`` and ``regress``: the setting of a run. Their help
    comes from :data:`albench.config.SETTINGS`; the values stay text here and are parsed,
    once, by :func:`albench.config.resolve`."""
    from albench.config import SETTINGS, flag

    g = p.add_argument_group("setting (a preset, then flags override it field by field)")
    for key in ("dataset", "backend", "preset", "initial", "budget", "rounds", "train_mode",
                "pool_subsample", "device", "eval_engine", "deterministic"):
        option = SETTINGS[key]
        default = {"preset": "quick", "device": "cpu"}.get(key)  # as given when left out
        g.add_argument(flag(key), default=default, metavar=key.upper(), help=option_help(option))
    g.add_argument("--backend-opt", action="append", metavar="KEY=VALUE",
                   help="backend option, repeatable (e.g. epochs=20, weights=/path/model.pt)")
    d = p.add_argument_group("data")
    d.add_argument("--data-root",
                   help="COCO 2017 root, VOCdevkit root or single VOC folder (Annotations/ + "
                        "JPEGImages/), or a data.yaml for --dataset yolo (or ALBENCH_COCO_ROOT / "
                        "ALBENCH_VOC_ROOT)")
    d.add_argument("--ann-train", help="coco-json: pool annotation file")
    d.add_argument("--ann-test", help="coco-json: test annotation file")
    d.add_argument("--images", help="coco-json: image folder")
    d.add_argument("--images-test", help="coco-json: test image folder (default: --images)")
    d.add_argument("--dataset-opt", action="append", metavar="KEY=VALUE",
                   help="dataset option, repeatable (e.g. pool_size=2000 for shapes)")
    d.add_argument("--cache-dir",
                   help="where generated datasets go (default: $ALBENCH_CACHE or ./.albench-cache)")


def option_help(option: Any) -> str:
    """An option's help line for argparse (which needs '%' doubled)."""
    text = f"{option.help}; {option.allowed()} (default {option.default_text()})"
    return text.replace("%", "%%")


def setting_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The setting flags as :func:`albench.config.resolve` overrides (None = not given);
    resolve parses and checks them all, before any data is loaded."""
    from albench.options import parse_kv

    dataset_opts: dict[str, Any] = parse_kv(args.dataset_opt, "--dataset-opt")
    for name in ("data_root", "ann_train", "ann_test", "images", "images_test", "cache_dir"):
        if getattr(args, name, None):
            dataset_opts[name] = getattr(args, name)
    return dict(dataset=args.dataset, backend=args.backend, initial=args.initial,
                budget=args.budget, rounds=args.rounds, train_mode=args.train_mode,
                pool_subsample=args.pool_subsample, device=args.device,
                eval_engine=args.eval_engine, deterministic=getattr(args, "deterministic", None),
                dataset_options=dataset_opts,
                backend_options=parse_kv(args.backend_opt, "--backend-opt"))
