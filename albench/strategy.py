"""The strategy contract: the one boundary between the harness and the strategies.

A strategy is a small class: ``select(ctx, budget) -> Selection``. Everything it may use
comes through the :class:`SelectionContext`: the unlabeled and labeled ids, the round, a
generator of its own, a :class:`ModelView` of the current detector (predictions, pooled
embeddings and, for strategies that declare ``requires={"loss_head"}``, predicted losses),
computed once per round and cached, and a :class:`~albench.lab.Lab` for strategies that
train (copies of the current model, fine-tunes on labeled ids plus unlabeled ids used
without labels, scores on labeled subsets). The context holds no ground truth: labels
reach a strategy only through the lab's oracle, and only for labeled ids, unless the
strategy instance declares ``uses_true_labels`` (an upper-bound ablation).

Strategies import this module (and :mod:`albench.options`, :mod:`albench.errors`), never
the other way round; it also names what a strategy handles: :class:`Detections` (what
``ctx.model.predictions`` returns) and :class:`FinetuneJob` (what ``ctx.lab`` runs).

The registry finds strategies in two places: the built-in package named ``strategies``
(imported by name, so the harness has no import of it) and installed distributions that
declare an entry point in the group ``albench.strategies`` (a :class:`Strategy` subclass,
or a module whose import registers strategies).
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Sequence

import numpy as np

from albench.backends.base import Detections
from albench.errors import ConfigError
from albench.lab import FinetuneJob
from albench.options import NO_LEGACY, Option, check_options, hashed_values, parse_options

if TYPE_CHECKING:
    from albench.backends.base import Backend
    from albench.lab import Lab

BUILTIN_PACKAGE = "strategies"
ENTRY_POINT_GROUP = "albench.strategies"


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


class Meter:
    """Accumulates seconds by category ("infer", "strategy_train") during one selection."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def add(self, key: str, seconds: float) -> None:
        self.seconds[key] = self.seconds.get(key, 0.0) + seconds

    def timed(self, key: str) -> _Timer:
        return _Timer(self, key)


class _Timer:
    def __init__(self, meter: Meter, key: str) -> None:
        self.meter, self.key = meter, key

    def __enter__(self) -> _Timer:
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.meter.add(self.key, time.perf_counter() - self.t0)


class ModelView:
    """The current round's detector as strategies see it: cached, timed, label-free."""

    def __init__(self, backend: Backend, meter: Meter) -> None:
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
    """What a strategy may look at in one round. There is no ground truth in here.

    Attributes:
        unlabeled: pool ids not labeled yet (int64, ascending): the ids ``select`` picks from.
        labeled: pool ids labeled so far (int64, ascending), the initial set included.
        round: the AL round (0 = the selection after the initial training).
        rng: the strategy's own generator for this round, derived from the run seed and the
            round (the only randomness a strategy may use).
        model: the current round's detector (predictions, embeddings, predicted losses),
            computed once per round and cached.
        meter: seconds by category; ``meter.timed("strategy_train")`` books a strategy's own
            training (inference through ``model`` is booked as ``infer`` already).
        device: the run's torch device (``cpu``, ``cuda:0`` ...) for a strategy's own tensors.
        lab: copies, fine-tunes and labeled-subset scores of the current model. The loop
            always gives one; it is None only in a context built by hand for a strategy
            that does not train.
    """

    unlabeled: np.ndarray
    labeled: np.ndarray
    round: int
    rng: np.random.Generator
    model: ModelView
    meter: Meter = field(default_factory=Meter)
    device: str = "cpu"
    lab: Lab | None = None


class Strategy:
    """Base class. Subclasses set ``name``, ``description``, ``options`` and ``select``.

    ``options`` declares the strategy's ``--opt`` keys (:class:`albench.options.Option`,
    with bounds and choices: :func:`albench.config.resolve` refuses a bad value before any
    data is loaded). ``requires`` names backend features the strategy needs at training
    time (e.g. ``{"loss_head"}``); the loop passes them to ``Backend.fit`` without knowing
    why. ``uses_true_labels`` (an instance property: it may depend on the options) marks a
    strategy that uses labels the real setting would not have; only then may its lab
    fine-tune on true labels of unlabeled ids, and every report marks its runs †.
    ``report_section`` optionally names a ``"module:function"`` that writes a strategy's
    own section of a report (resolved only when a report asks for it).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    options: ClassVar[dict[str, Option]] = {}
    requires: ClassVar[frozenset[str]] = frozenset()
    report_section: ClassVar[str | None] = None

    def __init__(self, **options: Any) -> None:
        """``options``: resolved values (:func:`strategy_options` parses text; resolve does
        it once); they are checked against the declarations, defaults fill the rest."""
        self.opts = check_options(self.options, options, "--opt", f"strategy {self.name!r}")

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


def top_k(ids: np.ndarray, scores: np.ndarray, k: int) -> Selection:
    """The ``k`` highest-scoring ids; ties broken by the lower id (deterministic)."""
    ids = np.asarray(ids, np.int64)
    scores = np.asarray(scores, np.float64)
    order = np.lexsort((ids, -scores))[:k]
    return Selection(ids[order], scores[order])


# ---------------------------------------------------------------------- the registry
STRATEGIES: dict[str, type[Strategy]] = {}
_ORIGIN: dict[str, str] = {}  # name -> what registered it (named in a clash)
_discovered = False


def _where(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def register_strategy(cls: type[Strategy], origin: str | None = None) -> type[Strategy]:
    """Class decorator: makes the strategy available by its ``name``. A second class under
    a taken name is an error (the same class registered again replaces itself)."""
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise TypeError(f"register_strategy takes a Strategy subclass, not {cls!r}")
    if not cls.name:
        raise TypeError(f"{cls.__qualname__} needs a non-empty `name`")
    old = STRATEGIES.get(cls.name)
    if old is not None and _where(old) != _where(cls):
        raise ConfigError(
            f"Two strategies are named {cls.name!r}: {_ORIGIN.get(cls.name, _where(old))} and "
            f"{origin or _where(cls)}. Rename one (its `name`), or uninstall the package that "
            "brings the one you do not want.")
    STRATEGIES[cls.name] = cls
    _ORIGIN[cls.name] = origin or _where(cls)
    return cls


def _load_entry_point(ep: metadata.EntryPoint) -> None:
    dist = getattr(getattr(ep, "dist", None), "name", None) or "an unknown distribution"
    where = f"entry point {ep.name} = {ep.value!r} of distribution {dist!r}"
    fix = (f"Fix the [project.entry-points.\"{ENTRY_POINT_GROUP}\"] table of {dist!r} and "
           f"reinstall it, or uninstall it (pip uninstall {dist}).")
    try:
        target = ep.load()
    except ConfigError as exc:  # a clash while its module registered
        raise ConfigError(f"The strategy {where} cannot be registered: {exc}") from None
    except Exception as exc:
        raise ConfigError(f"The strategy {where} cannot be loaded ({type(exc).__name__}: "
                          f"{exc}). {fix}") from exc
    if isinstance(target, ModuleType):
        return  # importing it registered its strategies
    if not (isinstance(target, type) and issubclass(target, Strategy)):
        raise ConfigError(f"The strategy {where} names {target!r}, which is neither a Strategy "
                          f"subclass nor a module. {fix}")
    if target.name != ep.name:
        raise ConfigError(f"The strategy {where} names a class whose `name` is "
                          f"{target.name!r}: the entry point's name and the strategy's name must "
                          f"be the same. {fix}")
    register_strategy(target, origin=where)


def discover(refresh: bool = False) -> None:
    """Import the built-in strategies and those of installed entry points (once)."""
    global _discovered
    if _discovered and not refresh:
        return
    try:
        importlib.import_module(BUILTIN_PACKAGE)
    except ModuleNotFoundError as exc:
        if exc.name != BUILTIN_PACKAGE:
            raise
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        _load_entry_point(ep)
    _discovered = True


def available() -> dict[str, type[Strategy]]:
    discover()
    return dict(sorted(STRATEGIES.items()))


def get_strategy(name: str) -> type[Strategy]:
    discover()
    if name not in STRATEGIES:
        raise ConfigError(
            f"Unknown strategy {name!r}. Known strategies: {', '.join(sorted(STRATEGIES))}. "
            "Pass one of them with --strategy (see `python -m albench list`)."
        )
    return STRATEGIES[name]


def strategy_options(strategy: str | type[Strategy], given: dict[str, Any] | None) -> dict:
    """The one parse of a strategy's options: text or typed values checked against its
    declarations (unknown keys, kinds, bounds, choices), every default filled in."""
    cls = get_strategy(strategy) if isinstance(strategy, str) else strategy
    return parse_options(cls.options, given or {}, "--opt", f"strategy {cls.name!r}",
                         defaults=True)


def hashed_strategy_options(strategy: str, values: dict) -> dict:
    """A strategy's options as a config hash sees them: those at their declared legacy
    value left out (:func:`albench.options.hashed_values`); unchanged for an unknown strategy."""
    try:
        cls = get_strategy(strategy)
    except ConfigError:
        return values
    return hashed_values(cls.options, values)


def legacy_options(strategy: str) -> dict:
    """The declared legacy value of each of a strategy's options that has one: what a
    recorded config that predates those options ran with."""
    return {k: o.legacy for k, o in get_strategy(strategy).options.items()
            if o.legacy is not NO_LEGACY}


def build_strategy(name: str, options: dict | None = None) -> Strategy:
    """An instance of strategy ``name`` with resolved ``options`` (missing ones default)."""
    return get_strategy(name)(**(options or {}))


__all__ = ["Strategy", "Selection", "SelectionContext", "ModelView", "Meter", "Option",
           "Detections", "FinetuneJob",
           "register_strategy", "top_k", "available", "get_strategy", "build_strategy",
           "strategy_options", "discover", "STRATEGIES", "ENTRY_POINT_GROUP"]
