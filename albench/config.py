"""Run configuration and named presets.

A preset fixes a data protocol (pool and test sizes, initial set, budget per round,
rounds, training recipe); explicit flags override it field by field, and the resolved
values are what the run manifest records and the config hash covers.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from albench.errors import ConfigError


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    initial: int | float  # images, or a share of the pool when < 1
    budget: int | float
    rounds: int
    train_mode: str = "warm"
    dataset_options: dict = field(default_factory=dict)  # per dataset name
    backend_options: dict = field(default_factory=dict)  # per backend name
    seeds: int = 3
    pool_subsample: int | None = None
    dataset: str | None = None  # the preset's dataset unless --dataset is given (None: shapes)


PRESETS: dict[str, Preset] = {}


def register_preset(preset: Preset) -> Preset:
    PRESETS[preset.name] = preset
    return preset


register_preset(Preset(
    "smoke", "Smallest real run: 300-image shapes pool, 40 + 2 x 20 labels, few epochs "
    "(under a minute on a 2-core CPU; the starting point of the end-to-end tests).",
    initial=40, budget=20, rounds=2, train_mode="warm",
    dataset_options={"shapes": {"pool_size": 300, "test_size": 120}},
    backend_options={"yolo": {"epochs": 12, "warm_epochs": 4},
                     "frcnn": {"epochs": 1, "warm_epochs": 1}},
    seeds=2,
))
register_preset(Preset(
    "quick", "A whole AL experiment on a CPU in minutes: 1,000-image shapes pool, "
    "100 + 4 x 50 labels, warm-started rounds.",
    initial=100, budget=50, rounds=4, train_mode="warm",
    dataset_options={"shapes": {"pool_size": 1000, "test_size": 250}},
    backend_options={"yolo": {"epochs": 40, "warm_epochs": 15},
                     "frcnn": {"epochs": 4, "warm_epochs": 2}},
    seeds=3,
))
register_preset(Preset(
    "regress", "The CI regression setting: 400-image shapes pool, 50 + 2 x 25 labels, "
    "short warm-started training (about half a minute a run on a CPU).",
    initial=50, budget=25, rounds=2, train_mode="warm",
    dataset_options={"shapes": {"pool_size": 400, "test_size": 150}},
    backend_options={"yolo": {"epochs": 25, "warm_epochs": 8},
                     "frcnn": {"epochs": 1, "warm_epochs": 1}},
    seeds=3,
))


# Published protocols (see docs/presets.md). A preset fixes the paper's data protocol; the
# detector recipe is albench's own per backend: yolo trains from initialisation (weights
# are never downloaded), hence the long schedule; frcnn gets the 26-epoch R50-FPN schedule
# with torchvision's standard proposal and RoI sampling numbers (GPU-sized).
def _paper_recipe(yolo_scale: str, frcnn_imgsz: int) -> dict:
    return {
        "yolo": {"scale": yolo_scale, "imgsz": 640, "epochs": 300, "warm_epochs": 50},
        "frcnn": {"arch": "resnet50_fpn", "imgsz": frcnn_imgsz, "batch": 8, "epochs": 26,
                  "warm_epochs": 8, "rpn_batch_size_per_image": 256,
                  "box_batch_size_per_image": 512, "rpn_post_nms_top_n_train": 2000,
                  "rpn_pre_nms_top_n_test": 1000, "rpn_post_nms_top_n_test": 1000},
    }


_VOC_0712 = {"voc": {"years": "2007,2012"}}
register_preset(Preset(
    "voc-ll4al", "LL4AL (CVPR'19), CDAL: voc, VOC07+12 trainval (16,551) -> VOC07 test; "
    "1,000 -> 10,000 images; AP50.",
    initial=1000, budget=1000, rounds=9, train_mode="scratch", dataset="voc",
    dataset_options=_VOC_0712, backend_options=_paper_recipe("n", 600), seeds=3,
))
register_preset(Preset(
    "voc-miaod", "MI-AOD (CVPR'21), PPAL: voc, VOC07+12 trainval -> VOC07 test; 5% -> 20% "
    "(828 + 6 x 414 images); AP50.",
    initial=0.05, budget=0.025, rounds=6, train_mode="scratch", dataset="voc",
    dataset_options=_VOC_0712, backend_options=_paper_recipe("n", 600), seeds=3,
))
register_preset(Preset(
    "coco-miaod", "MI-AOD (CVPR'21), PPAL: coco, train2017 (117,266) -> val2017; 2% -> 10% "
    "(5 x 2,345 images); AP.",
    initial=0.02, budget=0.02, rounds=4, train_mode="scratch", dataset="coco",
    backend_options=_paper_recipe("s", 800), seeds=3,
))
register_preset(Preset(
    "voc07-almdn", "AL-MDN (ICCV'21): voc, VOC07 trainval (5,011) -> VOC07 test; "
    "2,000 -> 5,000 images; AP50.",
    initial=2000, budget=1000, rounds=3, train_mode="scratch", dataset="voc",
    dataset_options={"voc": {"years": "2007"}}, backend_options=_paper_recipe("n", 600),
    seeds=3,
))


@dataclass
class RunConfig:
    """Everything that defines one run (strategy x seed x setting)."""

    dataset: str = "shapes"
    backend: str = "yolo"
    strategy: str = "random"
    preset: str = "quick"
    seed: int = 0
    initial: int | float = 100
    budget: int | float = 50
    rounds: int = 4
    train_mode: str = "warm"
    pool_subsample: int | None = None
    device: str = "cpu"
    eval_engine: str = "faster"
    deterministic: str = "auto"  # auto | on | off, see albench.determinism
    dataset_options: dict = field(default_factory=dict)
    backend_options: dict = field(default_factory=dict)
    strategy_options: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def hashed_dict(self) -> dict:
        """The config without the dataset cache path, which does not change results."""
        d = self.to_dict()
        d["dataset_options"] = {k: v for k, v in d["dataset_options"].items() if k != "cache_dir"}
        if d.get("deterministic") == "auto":  # auto follows from backend and device: the
            d.pop("deterministic")             # default keeps the run ids it had before
        return d

    def config_hash(self) -> str:
        return _hash(self.hashed_dict())

    def setting_hash(self) -> str:
        """Hash of everything but strategy, its options and the seed: comparable runs."""
        d = self.hashed_dict()
        for k in ("strategy", "strategy_options", "seed"):
            d.pop(k)
        return _hash(d)

    def run_id(self) -> str:
        return f"{self.dataset}-{self.backend}-{self.strategy}-s{self.seed}-{self.config_hash()[:8]}"

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def _hash(d: dict) -> str:
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()


def resolve(preset: str = "quick", **overrides: Any) -> RunConfig:
    """A :class:`RunConfig` from a preset plus explicit overrides (None = not given)."""
    if preset not in PRESETS:
        raise ConfigError(
            f"Unknown preset {preset!r}. Known presets: {', '.join(PRESETS)}. "
            "Pass one of them with --preset (see `python -m albench list`)."
        )
    p = PRESETS[preset]
    given = {k: v for k, v in overrides.items() if v is not None}
    dataset = given.get("dataset", p.dataset or "shapes")
    backend = given.get("backend", "yolo")
    cfg = RunConfig(
        dataset=dataset, backend=backend, preset=preset,
        initial=p.initial, budget=p.budget, rounds=p.rounds, train_mode=p.train_mode,
        pool_subsample=p.pool_subsample,
        dataset_options=dict(p.dataset_options.get(dataset, {})),
        backend_options=dict(p.backend_options.get(backend, {})),
    )
    for key, value in given.items():
        if key in ("dataset_options", "backend_options", "strategy_options"):
            getattr(cfg, key).update(value)
        elif hasattr(cfg, key):
            setattr(cfg, key, value)
        else:
            raise ConfigError(f"Unknown run setting {key!r}.")
    if cfg.train_mode not in ("warm", "scratch"):
        raise ConfigError(f"--train-mode must be 'warm' or 'scratch', not {cfg.train_mode!r}.")
    if cfg.deterministic not in ("auto", "on", "off"):
        raise ConfigError(f"--deterministic must be auto, on or off, not {cfg.deterministic!r}.")
    return cfg


def parse_kv(pairs: list[str] | None, flag: str) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; a pair without '=' is an error."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"{flag} takes KEY=VALUE, got {pair!r}. Example: {flag} epochs=10.")
        out[key.strip()] = value.strip()
    return out


def coerce(value: str, like: Any) -> Any:
    """Parse a command-line string as the type of ``like`` (the option's default)."""
    if not isinstance(value, str) or isinstance(like, str):
        return value
    if like is None:
        return None if value.lower() in ("", "none", "null") else value
    if isinstance(like, bool):
        return value.lower() in ("1", "true", "yes", "on")
    try:
        return type(like)(value)
    except ValueError:
        raise ConfigError(f"{value!r} is not a valid {type(like).__name__}.") from None
