"""The Strategy protocol, its selection context, declared options and the registry.

A strategy is a small class: ``select(ctx, budget) -> Selection``. Everything it may use
comes through the :class:`SelectionContext`: the unlabeled and labeled ids, the round, a
generator of its own, a :class:`ModelView` of the current detector (predictions, pooled
embeddings and, for strategies that declare ``requires={"loss_head"}``, predicted losses),
computed once per round and cached, and a :class:`~albench.lab.Lab` for strategies that
train (copies of the current model, fine-tunes on labeled ids plus unlabeled ids used
without labels, scores on labeled subsets). The context holds no ground truth: labels
reach a strategy only through the lab's oracle, and only for labeled ids, unless the
strategy instance declares ``uses_true_labels`` (an upper-bound ablation).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Sequence

import numpy as np

from albench.errors import ConfigError


@dataclass
class Selection:
    """Ids chosen for labeling (in the order chosen), the score each got, and optional
    per-round diagnostics (a JSON-able dict the loop appends to ``diagnostics.jsonl``)."""

    ids: np.ndarray
    scores: np.ndarray | None = None
    diagnostics: dict | None = None

    def __post_init__(self) -> None:
        self.ids = np.asarray(self.ids, dtype=np.int64).reshape(-1)
        if self.scores is not None:
            self.scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)


@dataclass(frozen=True)
class Option:
    """A declared strategy option: default, help text and (optionally) allowed values."""

    default: Any
    help: str
    choices: tuple | None = None

    def parse(self, name: str, raw: Any) -> Any:
        value = raw
        if isinstance(raw, str) and not isinstance(self.default, str):
            kind = type(self.default)
            try:
                if kind is bool:
                    if raw.lower() not in {"1", "0", "true", "false", "yes", "no"}:
                        raise ValueError(raw)
                    value = raw.lower() in {"1", "true", "yes"}
                else:
                    value = kind(raw)
            except ValueError:
                raise ConfigError(
                    f"Option {name}={raw!r} is not a valid {kind.__name__}. "
                    f"Give it as --opt {name}=<{kind.__name__}> (default {self.default!r})."
                ) from None
        if self.choices is not None and value not in self.choices:
            raise ConfigError(
                f"Option {name}={value!r} is not one of {list(self.choices)}. "
                f"Pick one of them with --opt {name}=VALUE (default {self.default!r})."
            )
        return value


class Meter:
    """Accumulates seconds by category ("infer", "strategy_train") during one selection."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def add(self, key: str, seconds: float) -> None:
        self.seconds[key] = self.seconds.get(key, 0.0) + seconds

    def timed(self, key: str) -> "_Timer":
        return _Timer(self, key)


class _Timer:
    def __init__(self, meter: Meter, key: str) -> None:
        self.meter, self.key = meter, key

    def __enter__(self) -> "_Timer":
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.meter.add(self.key, time.perf_counter() - self.t0)


class ModelView:
    """The current round's detector as strategies see it: cached, timed, label-free."""

    def __init__(self, backend: Any, meter: Meter) -> None:
        self._backend = backend
        self._meter = meter
        self._pred: dict[int, Any] = {}
        self._emb: dict[int, np.ndarray] = {}
        self._loss: dict[int, float] = {}

    @property
    def num_classes(self) -> int:
        return self._backend.num_classes

    @property
    def capabilities(self) -> frozenset[str]:
        return self._backend.capabilities

    def _cached(self, store: dict, ids: Sequence[int], compute: Callable) -> list:
        ids = [int(i) for i in ids]
        missing = [i for i in dict.fromkeys(ids) if i not in store]
        if missing:
            with self._meter.timed("infer"):
                for i, value in zip(missing, compute(missing)):
                    store[i] = value
        return [store[i] for i in ids]

    def predictions(self, ids: Sequence[int]) -> list:
        """Post-NMS :class:`~albench.backends.base.Detections` per id."""
        return self._cached(self._pred, ids, self._backend.predict)

    def embeddings(self, ids: Sequence[int]) -> np.ndarray:
        """Pooled backbone features, one row per id (not normalised)."""
        rows = self._cached(self._emb, ids, self._backend.embed)
        return np.stack(rows) if rows else np.zeros((0, 0), np.float32)

    def predicted_loss(self, ids: Sequence[int]) -> np.ndarray:
        """The loss-prediction head's output per id (strategies requiring ``loss_head``)."""
        if "loss_head" not in self._backend.features:
            raise ConfigError("The loss-prediction head is not enabled: a strategy reading "
                              "predicted losses must declare requires={'loss_head'}.")
        return np.asarray(self._cached(self._loss, ids, self._backend.predict_loss), np.float64)


@dataclass
class SelectionContext:
    """What a strategy may look at in one round. There is no ground truth in here."""

    unlabeled: np.ndarray
    labeled: np.ndarray
    round: int
    rng: np.random.Generator
    model: ModelView
    meter: Meter = field(default_factory=Meter)
    device: str = "cpu"
    lab: Any = None  # albench.lab.Lab: copies, fine-tunes, scores on labeled subsets


class Strategy:
    """Base class. Subclasses set ``name``, ``description``, ``options`` and ``select``.

    ``requires`` names backend features the strategy needs at training time (e.g.
    ``{"loss_head"}``); the loop passes them to ``Backend.fit`` without knowing why.
    ``uses_true_labels`` (an instance property: it may depend on the options) marks a
    strategy that uses labels the real setting would not have; only then may its lab
    fine-tune on true labels of unlabeled ids, and every report marks its runs †.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    options: ClassVar[dict[str, Option]] = {}
    requires: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, **options: Any) -> None:
        self.opts = resolve_options(type(self), options)

    @property
    def uses_true_labels(self) -> bool:
        """True when these options make the strategy read labels of unlabeled images."""
        return False

    def select(self, ctx: SelectionContext, budget: int) -> Selection:
        raise NotImplementedError

    def state_dict(self) -> dict:
        """State carried across rounds (saved for resume). Stateless strategies: {}."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def resolve_options(cls: type[Strategy], given: dict[str, Any]) -> dict[str, Any]:
    """Defaults updated with ``given``; unknown keys are an error listing the valid ones."""
    unknown = sorted(set(given) - set(cls.options))
    if unknown:
        valid = ", ".join(f"{k}={o.default!r}" for k, o in sorted(cls.options.items())) or "none"
        raise ConfigError(
            f"Strategy {cls.name!r} has no option {', '.join(map(repr, unknown))}. "
            f"Its options and defaults: {valid}. Fix the --opt key."
        )
    return {k: o.parse(k, given[k]) if k in given else o.default for k, o in cls.options.items()}


def top_k(ids: np.ndarray, scores: np.ndarray, k: int) -> Selection:
    """The ``k`` highest-scoring ids; ties broken by the lower id (deterministic)."""
    ids = np.asarray(ids, np.int64)
    scores = np.asarray(scores, np.float64)
    order = np.lexsort((ids, -scores))[:k]
    return Selection(ids[order], scores[order])


STRATEGIES: dict[str, type[Strategy]] = {}


def register_strategy(cls: type[Strategy]) -> type[Strategy]:
    """Class decorator: makes the strategy available by its ``name``."""
    if not cls.name:
        raise TypeError(f"{cls.__qualname__} needs a non-empty `name`")
    STRATEGIES[cls.name] = cls
    return cls
