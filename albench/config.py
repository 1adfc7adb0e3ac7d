"""Run configuration and named presets.

A preset fixes a data protocol (pool and test sizes, initial set, budget per round,
rounds, training recipe); explicit flags override it field by field, and the resolved
values are what the run manifest records and the config hash covers.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field, fields
from typing import Any

from albench.errors import ConfigError
from albench.options import (AMOUNT, DEVICE_FORMS, Option, check_device, check_keys,  # noqa: F401
                             coerce, parse_kv)


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
    # "scratch": the recipe trains from random initialisation; "pretrained": it is a
    # fine-tuning recipe (lower lr, short schedule, larger images) that needs local weights
    recipe: str = "scratch"
    paper_init: str | None = None  # what the published protocol's detector started from

    def __post_init__(self) -> None:
        if self.recipe not in RECIPES:
            raise ValueError(f"Preset {self.name!r}: recipe must be one of {RECIPES}")

    def recipe_note(self) -> str:
        """One line: which recipe the preset means, and where it departs from its paper."""
        if self.recipe == "pretrained":
            return ("pretrained recipe: fine-tunes local weights (--backend-opt weights=PATH; "
                    "frcnn: weights or weights_backbone), refused without them")
        note = "from-scratch recipe: random initialisation unless --backend-opt weights=PATH"
        if self.paper_init:
            note += f"; the paper started from {self.paper_init}, so absolute AP is not the paper's"
        return note


RECIPES = ("scratch", "pretrained")
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

register_preset(Preset(
    "real-small", "A few hundred real images with a pretrained detector (the regime AL papers "
    "study), sized for a 2-core CPU: 20 + 4 x 20 labels, 320 px, 10 epochs at round 0 and 4 "
    "warm epochs a round at lr 0.001 (measured on BCCD: docs/presets.md). Give the data "
    "(--data-root, a VOC folder by default) and the weights (--backend-opt weights=PATH).",
    initial=20, budget=20, rounds=4, train_mode="warm", dataset="voc",
    backend_options={"yolo": {"imgsz": 320, "epochs": 10, "warm_epochs": 4, "lr": 0.001},
                     "frcnn": {"imgsz": 320, "epochs": 4, "warm_epochs": 2, "lr": 0.005}},
    seeds=5, recipe="pretrained",
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
_VGG = "an ImageNet-pretrained VGG16 (SSD300)"
_R50 = "an ImageNet-pretrained ResNet-50 (RetinaNet R50-FPN)"
register_preset(Preset(
    "voc-ll4al", "LL4AL (CVPR'19), CDAL: voc, VOC07+12 trainval (16,551) -> VOC07 test; "
    "1,000 -> 10,000 images; AP50.",
    initial=1000, budget=1000, rounds=9, train_mode="scratch", dataset="voc",
    dataset_options=_VOC_0712, backend_options=_paper_recipe("n", 600), seeds=3,
    paper_init=_VGG,
))
register_preset(Preset(
    "voc-miaod", "MI-AOD (CVPR'21), PPAL: voc, VOC07+12 trainval -> VOC07 test; 5% -> 20% "
    "(828 + 6 x 414 images); AP50.",
    initial=0.05, budget=0.025, rounds=6, train_mode="scratch", dataset="voc",
    dataset_options=_VOC_0712, backend_options=_paper_recipe("n", 600), seeds=3,
    paper_init=_R50,
))
register_preset(Preset(
    "coco-miaod", "MI-AOD (CVPR'21), PPAL: coco, train2017 (117,266) -> val2017; 2% -> 10% "
    "(5 x 2,345 images); AP.",
    initial=0.02, budget=0.02, rounds=4, train_mode="scratch", dataset="coco",
    backend_options=_paper_recipe("s", 800), seeds=3, paper_init=_R50,
))
register_preset(Preset(
    "voc07-almdn", "AL-MDN (ICCV'21): voc, VOC07 trainval (5,011) -> VOC07 test; "
    "2,000 -> 5,000 images; AP50.",
    initial=2000, budget=1000, rounds=3, train_mode="scratch", dataset="voc",
    dataset_options={"voc": {"years": "2007"}}, backend_options=_paper_recipe("n", 600),
    seeds=3, paper_init=_VGG,
))


# ---------------------------------------------------------------------- run settings
# Every run setting, declared once: the flags (albench.cli), `list`, RunConfig's defaults and
# resolve()'s checks (before anything is loaded) all read these.
SETTINGS: dict[str, Option] = {
    "dataset": Option("shapes", "dataset name (see `python -m albench list`)",
                      default_note="the preset's, else 'shapes'"),
    "backend": Option("yolo", "detector backend (see `python -m albench list`)"),
    "strategy": Option("random", "strategy name (see `python -m albench list`)"),
    "preset": Option("quick", "named protocol: it gives the defaults shown as the preset's"),
    "seed": Option(0, "the run's seed: initial set, each round's model and strategy generator",
                   low=0),
    "initial": Option(100, "initial labeled images", kind=AMOUNT, default_note="the preset's"),
    "budget": Option(50, "images labeled per round", kind=AMOUNT, default_note="the preset's"),
    "rounds": Option(4, "selection rounds after the initial training", low=0,
                     default_note="the preset's"),
    "train_mode": Option("warm", "warm: fine-tune last round's model; scratch: retrain from "
                         "init every round (the papers)", ("warm", "scratch"),
                         default_note="the preset's"),
    "pool_subsample": Option(None, "use a random subset of N pool images (quick looks)",
                             kind=int, low=1, default_note="the preset's (all images)"),
    "device": Option("cpu", f"torch device: {DEVICE_FORMS}"),
    "eval_engine": Option("faster", "COCO evaluation engine", ("faster", "pycocotools")),
    "deterministic": Option("auto", "bit-reproducible GPU runs (auto: on for yolo on CUDA, off "
                            "for frcnn on CUDA where it is slow; CPU runs are reproducible "
                            "anyway)", ("auto", "on", "off")),
}


def flag(key: str) -> str:
    """The command-line flag of run setting ``key``: ``pool_subsample`` -> ``--pool-subsample``."""
    return "--" + key.replace("_", "-")


def count(value: int | float, total: int, flag: str = "--initial/--budget") -> int:
    """Images meant by an amount: a share (float) of ``total``, or a count (int)."""
    if isinstance(value, float):
        n = int(round(value * total))
        if n < 1:
            raise ConfigError(f"{flag} {value:.4g} of a {total}-image pool is {value * total:.2f} "
                              "images, less than one. Give a larger share or a count.")
        return n
    return int(value)


def check_subsample(n: int, n_pool: int, dataset: str) -> None:
    if n > n_pool:
        raise ConfigError(f"--pool-subsample {n} is more than the {n_pool} pool images of "
                          f"{dataset!r}. Give at most {n_pool}, or leave the flag out.")


def plan_rounds(initial: int, budget: int, rounds: int, n_pool: int,
                dataset: str) -> tuple[int, str | None]:
    """The last round the pool allows, and a warning when it is before ``rounds``.

    Round r trains on the initial set plus r selections; a selection that empties the pool
    is still trained on and evaluated, and ends the run.
    """
    if initial + budget > n_pool:
        raise ConfigError(
            f"The budget does not fit the pool: {initial} initial + {budget} per round > "
            f"{n_pool} pool images of {dataset!r}. Lower --initial/--budget, or use a larger "
            "pool (a bigger dataset or no --pool-subsample).")
    last = min(rounds, -(-(n_pool - initial) // budget))
    if last == rounds:
        return last, None
    return last, (f"{initial} initial + {rounds} x {budget} images is more than the "
                  f"{n_pool} pool images of {dataset!r}: the pool runs out in round {last}, "
                  f"so the run has rounds 0..{last} ({last + 1} rows, not {rounds + 1}); the "
                  f"last selection takes the remaining {n_pool - initial - (last - 1) * budget} "
                  "images. Lower --rounds or --budget to get a full curve.")


class _Frozen(dict):
    """A dict that refuses changes (the option dicts of a frozen :class:`RunConfig`)."""

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("RunConfig is immutable: build a new one with albench.config.resolve")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _refuse  # type: ignore[assignment]
    __ior__ = _refuse  # type: ignore[assignment]

    def __reduce__(self) -> tuple:
        return (_Frozen, (dict(self),))

    def __deepcopy__(self, memo: dict) -> "_Frozen":
        return _Frozen(copy.deepcopy(dict(self), memo))


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one run (strategy x seed x setting). Immutable: build it
    with :func:`resolve`, which checks every value and fills in option defaults."""

    dataset: str = SETTINGS["dataset"].default
    backend: str = SETTINGS["backend"].default
    strategy: str = SETTINGS["strategy"].default
    preset: str = SETTINGS["preset"].default
    seed: int = SETTINGS["seed"].default
    initial: int | float = SETTINGS["initial"].default
    budget: int | float = SETTINGS["budget"].default
    rounds: int = SETTINGS["rounds"].default
    train_mode: str = SETTINGS["train_mode"].default
    pool_subsample: int | None = SETTINGS["pool_subsample"].default
    device: str = SETTINGS["device"].default
    eval_engine: str = SETTINGS["eval_engine"].default
    deterministic: str = SETTINGS["deterministic"].default  # see albench.determinism
    dataset_options: dict = field(default_factory=dict)
    backend_options: dict = field(default_factory=dict)
    strategy_options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key in ("dataset_options", "backend_options", "strategy_options"):
            object.__setattr__(self, key, _Frozen(getattr(self, key) or {}))

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        for key in ("dataset_options", "backend_options", "strategy_options"):
            d[key] = copy.deepcopy(dict(d[key]))
        return d

    def hashed_dict(self) -> dict:
        """The config without the dataset cache path, which does not change results."""
        d = self.to_dict()
        d["dataset_options"] = {k: v for k, v in d["dataset_options"].items() if k != "cache_dir"}
        if d.get("deterministic") == "auto":  # auto follows from backend and device: the
            d.pop("deterministic")             # default keeps the run ids it had before
        from albench.strategy import hashed_strategy_options  # legacy values leave the hash
        d["strategy_options"] = hashed_strategy_options(self.strategy, d["strategy_options"])
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
    """A checked :class:`RunConfig` from a preset plus explicit overrides (None = not given).

    Every value is parsed and checked here, once, before any data is loaded, by the one
    option policy (:mod:`albench.options`): the run settings against :data:`SETTINGS`
    (text from flags is parsed, typed values are checked), the device's form, and the
    options of the dataset, backend and strategy against their declarations (unknown keys
    are an error suggesting the near ones). Strategy options come back with their defaults
    filled in, as the config hash has always covered them; backend and dataset options
    hold only the keys given (by the preset or the caller).
    """
    from albench.backends import backend_options
    from albench.data import dataset_options
    from albench.strategy import strategy_options

    if preset not in PRESETS:
        raise ConfigError(
            f"Unknown preset {preset!r}. Known presets: {', '.join(PRESETS)}. "
            "Pass one of them with --preset (see `python -m albench list`)."
        )
    p = PRESETS[preset]
    given = {k: v for k, v in overrides.items() if v is not None}
    check_keys(given, {f.name: f for f in fields(RunConfig)}, "run setting")
    dataset = given.get("dataset", p.dataset or "shapes")
    backend = given.get("backend", "yolo")
    values: dict[str, Any] = dict(
        dataset=dataset, backend=backend, preset=preset,
        initial=p.initial, budget=p.budget, rounds=p.rounds, train_mode=p.train_mode,
        pool_subsample=p.pool_subsample,
        dataset_options=dict(p.dataset_options.get(dataset, {})),
        backend_options=dict(p.backend_options.get(backend, {})),
        strategy_options={},
    )
    for key, value in given.items():
        if key in ("dataset_options", "backend_options", "strategy_options"):
            values[key] = {**values[key], **value}
        else:
            values[key] = value
    for key, option in SETTINGS.items():
        if key in values:
            values[key] = option.parse(values[key], flag(key))
    check_device(values.get("device", SETTINGS["device"].default), present=False)
    values["strategy_options"] = strategy_options(values.get("strategy", "random"),
                                                  values["strategy_options"])
    values["backend_options"] = backend_options(backend, values["backend_options"], fill=False)
    if p.recipe == "pretrained":
        _require_weights(p, backend, values["backend_options"])
    values["dataset_options"] = dataset_options(dataset, values["dataset_options"])
    return RunConfig(**values)


def _require_weights(p: Preset, backend: str, options: dict) -> None:
    """A pretrained recipe from random initialisation would be a fine-tuning schedule on an
    untrained detector: refused, naming the option to give."""
    if any(v for k, v in options.items() if k.startswith("weights")):
        return
    raise ConfigError(
        f"Preset {p.name!r} is a pretrained recipe (a short fine-tuning schedule at a low "
        f"learning rate) and needs local weights for backend {backend!r}, but none were "
        "given. Pass --backend-opt weights=PATH (yolo: an ultralytics detection or pose "
        "checkpoint such as yolo11n.pt; frcnn: a detector state_dict, or weights_backbone="
        "PATH for a backbone), or use a from-scratch preset such as quick.")
