"""Run configuration: the run settings, :class:`RunConfig` and :func:`resolve`.

A preset (:mod:`albench.presets`) fixes a data protocol (pool and test sizes, initial set, budget per round,
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
from albench.presets import (PRESETS, RECIPES, Preset, require_weights,  # noqa: F401
                             register_preset)


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
        require_weights(p, backend, values["backend_options"])
    values["dataset_options"] = dataset_options(dataset, values["dataset_options"])
    return RunConfig(**values)
