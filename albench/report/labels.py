"""Labels of runs in a report: runs of one strategy and setting that differ in options get
the options that tell them apart appended to their label."""

from __future__ import annotations

import json
from typing import Any

from albench.errors import ConfigError

def _options_text(options: Any) -> str:
    if not isinstance(options, dict) or not options:
        return ""
    return ", ".join(f"{k}={options[k]}" for k in sorted(options))


def _hashed_options(run: Any) -> dict:
    """A run's strategy options as its config hash sees them: an option recorded at its
    declared legacy value is left out, so a run made before the option existed and one
    made after it at that value are the same variant."""
    from albench.strategy import hashed_strategy_options

    options = run.config.get("strategy_options") or {}
    if not isinstance(options, dict):
        return {}
    return hashed_strategy_options(str(run.config.get("strategy", "")), options)


def _legacy_values(strategy: str) -> dict:
    """The declared legacy value of each of ``strategy``'s options ({} for a strategy that
    is not installed here)."""
    from albench.strategy import legacy_options

    try:
        return legacy_options(strategy)
    except ConfigError:
        return {}


def disambiguate(runs: list[Any]) -> None:
    """Append to labels shared by runs of one setting with different options the options
    that tell them apart (only those: the ones every run shares are left out). Options are
    compared as the config hash sees them; a run whose hash leaves a differing option out
    (recorded at, or made before, its declared legacy value) is labelled with that legacy
    value, so no variant of an ablation reads as the strategy's plain name."""
    groups: dict[tuple[Any, str], list[Any]] = {}
    for run in runs:
        groups.setdefault((run.key, run.strategy), []).append(run)
    for group in groups.values():
        options = [_hashed_options(run) for run in group]
        keys = sorted({k for o in options for k in o})
        differ = [k for k in keys if len({json.dumps(o.get(k), sort_keys=True) for o in options}) > 1]
        if not differ:
            continue
        legacy = _legacy_values(str(group[0].config.get("strategy", "")))
        for run, opts in zip(group, options):
            shown = {k: opts[k] if k in opts else legacy[k] for k in differ if k in opts or k in legacy}
            text = _options_text(shown)
            run.strategy = f"{run.strategy} ({text})" if text else run.strategy
