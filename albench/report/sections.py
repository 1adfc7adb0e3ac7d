"""Strategy sections: what a strategy writes about its own runs in a report, and draws as
its diagnostics figure on a paper page.

A strategy class may declare ``report_section = "package.module:function"``. The function
is imported only when a report meets runs of that strategy (so the harness never imports
a strategy's report code by name) and is called as::

    function(runs, root, folder, stem=None) -> list[str]

``runs`` are that strategy's runs of one setting (:class:`albench.report.Run`), ``root``
the results folder they were read from, ``folder`` where figures go. It returns Markdown
lines whose first line is its heading (``## Name``); no lines when it has nothing to say.
With ``stem=None`` it writes the section of a setting's ``report.md`` (figures named as it
likes); with a stem, the figure of a paper page: one figure, ``<folder>/<stem>.png`` and
``.svg``, with the same table.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Iterable

from albench.errors import ConfigError
from albench.strategy import available as strategy_classes
from albench.report.runs import Run

SectionHook = Callable[..., list[str]]


def section_hook(cls: type) -> SectionHook | None:
    """The section function a strategy class declares, imported now; None when it declares none."""
    spec = getattr(cls, "report_section", None)
    if not spec:
        return None
    module, sep, name = str(spec).partition(":")
    where = f"{cls.__module__}.{cls.__name__}.report_section"
    if not (sep and module and name):
        raise ConfigError(f"{where} is {spec!r}; it must name a function as 'package.module:function' "
                          "(or be None for a strategy without a report section).")
    try:
        hook: Any = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{where} names {spec!r}, which cannot be imported ({exc}). Fix the "
                          "module or function name in the strategy class.") from None
    if not callable(hook):
        raise ConfigError(f"{where} names {spec!r}, which is not a function.")
    return hook


def strategy_of(run: Run) -> str:
    """The registered strategy a run ran (its config's ``strategy``, not its display label)."""
    return str(run.config.get("strategy", run.strategy))


def strategy_sections(runs: Iterable[Run]) -> list[tuple[str, SectionHook, list[Run]]]:
    """(name, section function, its runs) for each strategy among ``runs`` that declares a
    section, in the registry's order."""
    runs = list(runs)
    present = {strategy_of(r) for r in runs}
    out = []
    for name, cls in strategy_classes().items():
        if name in present and (hook := section_hook(cls)) is not None:
            out.append((name, hook, [r for r in runs if strategy_of(r) == name]))
    return out
