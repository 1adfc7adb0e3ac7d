"""Active-learning strategies. Every module in this package that registers a strategy
with :func:`register_strategy` is picked up automatically: adding a strategy is adding
a file."""

from __future__ import annotations

import importlib
import pkgutil

from albench.errors import ConfigError
from strategies.base import (STRATEGIES, Meter, ModelView, Option, Selection,
                             SelectionContext, Strategy, register_strategy, top_k)

_loaded = False


def _discover() -> None:
    global _loaded
    if _loaded:
        return
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_") and info.name != "base":
            importlib.import_module(f"{__name__}.{info.name}")
    _loaded = True


def available() -> dict[str, type[Strategy]]:
    _discover()
    return dict(sorted(STRATEGIES.items()))


def get_strategy(name: str) -> type[Strategy]:
    _discover()
    if name not in STRATEGIES:
        raise ConfigError(
            f"Unknown strategy {name!r}. Known strategies: {', '.join(sorted(STRATEGIES))}. "
            "Pass one of them with --strategy (see `python -m albench list`)."
        )
    return STRATEGIES[name]


def build_strategy(name: str, options: dict | None = None) -> Strategy:
    return get_strategy(name)(**(options or {}))


__all__ = ["Strategy", "Selection", "SelectionContext", "ModelView", "Meter", "Option",
           "register_strategy", "top_k", "available", "get_strategy", "build_strategy"]
