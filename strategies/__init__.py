"""The built-in active-learning strategies, one module (or small package) each.

Importing this package imports every module in it, and each registers its strategy with
:func:`albench.strategy.register_strategy`: adding a strategy is adding a file. The
contract (``Strategy``, ``SelectionContext``, the registry) lives in :mod:`albench.strategy`.
"""

from __future__ import annotations

import importlib
import pkgutil

from albench.strategy import available, build_strategy, get_strategy  # noqa: F401

for _info in pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")
