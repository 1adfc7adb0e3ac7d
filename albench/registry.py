"""The harness's one look-up of the strategy registry.

Everything in albench that needs the registered strategies (the sweep's names, the figure
sets that strategy packages ship, the report sections strategies declare) asks
:func:`registered`, so the registry can move without touching its callers.
"""

from __future__ import annotations

from typing import Any


def registered() -> dict[str, Any]:
    """Every registered strategy class by name, in the registry's (sorted) order."""
    import strategies

    return strategies.available()
