"""A paper's figure set as data: scales, panels (one sweep file each), published references.

A ``figures.yaml`` names the scales (``shapes``: the CPU stand-in; ``paper``: the
published protocols), each scale's results folder and panels, each panel's sweep file
(an ordinary ``albench sweep --config`` file) and metric, the strategies whose diagnostics
figure 4 draws, and the references table (published values with their sources). Figure
sets ship with strategy packages: a registered strategy whose package holds
``paper/figures.yaml`` (package data, read through :mod:`importlib.resources`) has a figure
set named after it (:func:`available`); any other ``figures.yaml`` is loaded by its path.
:func:`plan` expands every panel's sweep with the existing sweep machinery
(:func:`albench.sweep.expand_grid`) into the runs the figures need; strategies the sweep
names that are not registered are reported, not dropped silently.
"""

from __future__ import annotations

import csv
import importlib.resources
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from albench.errors import ConfigError
from albench.strategy import available as strategy_classes
from albench.results import read_rows, run_complete
from albench.sweep import SETTING_KEYS, expand_grid, merge, parse_seeds, read_config

FIGURES_FILE = Path("paper") / "figures.yaml"  # inside a strategy's package
REFERENCE_COLUMNS = ("paper", "detector", "protocol", "strategy", "labeled", "metric", "value",
                     "where", "exact", "source")
METRICS = {"ap50": "AP50", "ap": "AP (IoU 0.50:0.95)"}


@dataclass
class Panel:
    """One panel: a sweep file and the metric its curves show."""

    id: str
    title: str
    sweep: Path
    metric: str = "ap50"
    protocol: str | None = None


@dataclass
class Scale:
    name: str
    description: str
    results: Path  # default results folder, relative to the working directory
    panels: list[Panel]


@dataclass
class FigureSet:
    name: str
    title: str
    paper: str
    path: Path
    references: Path | None
    scales: dict[str, Scale]
    picks: dict[str, Any] = field(default_factory=dict)
    diagnostics: list[str] | None = None  # figure 4's strategies; None: all that declare one

    def rel(self, path: Path) -> str:
        """``path`` as the user would type it from the working directory, when it is below it."""
        try:
            return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
        except ValueError:
            return str(path)


def available() -> dict[str, Path]:
    """The figure sets that registered strategies ship: strategy name -> its figures.yaml."""
    out = {}
    for name, cls in strategy_classes().items():
        module = sys.modules.get(cls.__module__)
        if module is None or not hasattr(module, "__path__"):  # a module, not a package
            continue
        path = Path(str(importlib.resources.files(module.__name__).joinpath(*FIGURES_FILE.parts)))
        if path.is_file():
            out[name] = path
    return out


def load_figure_set(name: str | Path) -> FigureSet:
    """A figure set by name (a registered strategy that ships one) or a ``figures.yaml`` path."""
    import yaml

    path = Path(name)
    if not path.suffix:
        shipped = available()
        if str(name) not in shipped:
            raise ConfigError(f"No figure set {str(name)!r}: no registered strategy of that name "
                              f"ships {FIGURES_FILE}. Figure sets: {', '.join(shipped) or 'none'} "
                              "(python -m albench paper NAME), or give the path of a figures.yaml.")
        path = shipped[str(name)]
    if not path.is_file():
        raise ConfigError(f"No figure set {str(name)!r}: {path} does not exist. Give the path of a "
                          "figures.yaml, or the name of a strategy that ships one.")
    try:
        data = yaml.safe_load(path.read_text()) or {}
        base = path.parent
        scales = {}
        for scale_name, entry in data["scales"].items():
            panels = [Panel(str(p["id"]), str(p.get("title", p["id"])), base / p["sweep"],
                            str(p.get("metric", "ap50")), p.get("protocol"))
                      for p in entry["panels"]]
            for p in panels:
                if p.metric not in METRICS:
                    raise ValueError(f"panel {p.id}: metric {p.metric!r} is not one of {list(METRICS)}")
            scales[scale_name] = Scale(scale_name, str(entry.get("description", "")),
                                       Path(entry.get("results", f"results/paper-{data['name']}")),
                                       panels)
        refs = data.get("references")
        diagnostics = data.get("diagnostics")
        if diagnostics is not None and not (isinstance(diagnostics, list)
                                            and all(isinstance(s, str) for s in diagnostics)):
            raise ValueError(f"diagnostics must be a list of strategy names, not {diagnostics!r}")
        return FigureSet(str(data["name"]), str(data.get("title", data["name"])),
                         str(data.get("paper", "")).strip(), path,
                         (base / refs) if refs else None, scales, dict(data.get("picks") or {}),
                         diagnostics)
    except (KeyError, TypeError, ValueError, AttributeError, yaml.YAMLError) as exc:
        raise ConfigError(f"The figure set {path} is malformed ({exc}). It needs name, scales "
                          "(each with panels: id, sweep, metric) and optionally references, "
                          "picks and diagnostics; see docs/paper.md.") from None


# ----------------------------------------------------------------------------- references


@dataclass(frozen=True)
class Reference:
    paper: str
    detector: str
    protocol: str
    strategy: str
    labeled: float  # labeled images; NaN when the paper gives a share of the pool
    metric: str
    value: float  # in points (percent): the table's fraction x 100
    where: str
    exact: bool
    source: str
    labeled_pct: float = float("nan")  # the share of the pool, for rows given as "5%"

    def images(self, pool: float) -> float:
        """Labeled images of this row, a share of the pool converted with ``pool``."""
        return self.labeled if self.labeled == self.labeled else self.labeled_pct * pool / 100


def read_references(path: Path | None) -> list[Reference]:
    """Rows of a references table; every row must name its source and where in the paper."""
    if path is None or not Path(path).is_file():
        return []
    rows: list[Reference] = []
    with open(path, newline="") as f:
        lines = [line for line in f if not line.startswith("#")]
    reader = csv.DictReader(lines)
    missing = [c for c in REFERENCE_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ConfigError(f"{path} lacks column(s) {', '.join(missing)}. Its header must be: "
                          f"{','.join(REFERENCE_COLUMNS)}.")
    for n, row in enumerate(reader, 2):
        empty = [c for c in ("paper", "protocol", "strategy", "labeled", "metric", "value",
                             "where", "exact", "source") if not (row.get(c) or "").strip()]
        if empty:
            raise ConfigError(f"{path} row {n} leaves {', '.join(empty)} empty: every published "
                              "value needs its paper, where in it, exact/read-off and its source.")
        exact = row["exact"].strip().lower()
        if exact not in ("true", "false", "exact", "read-off"):
            raise ConfigError(f"{path} row {n}: exact must be true (printed in a table, the text "
                              f"or on a figure) or false (read off a plot), not {row['exact']!r}.")
        text = row["labeled"].strip()
        try:
            share = float(text[:-1]) if text.endswith("%") else math.nan
            labeled = math.nan if text.endswith("%") else float(text)
            value = float(row["value"])
        except ValueError:
            raise ConfigError(f"{path} row {n}: labeled must be a number of images or a share "
                              "like 5%, and value a fraction (0.4718 = 47.18 AP).") from None
        rows.append(Reference(row["paper"].strip(), row["detector"].strip(), row["protocol"].strip(),
                              row["strategy"].strip(), labeled, row["metric"].strip(), 100 * value,
                              row["where"].strip(), exact in ("true", "exact"),
                              row["source"].strip(), share))
    return rows


# ----------------------------------------------------------------------------- planning


@dataclass
class PanelPlan:
    panel: Panel
    strategies: list[str]  # as the sweep file names them
    missing: list[str]  # named by the sweep but not registered in this albench
    configs: list  # RunConfig of the registered strategies
    setting_hashes: set[str]


def _sweep_file(panel: Panel) -> dict[str, Any]:
    if not panel.sweep.is_file():
        raise ConfigError(f"Panel {panel.id}: its sweep file {panel.sweep} does not exist.")
    return read_config(panel.sweep)


def plan_panel(panel: Panel, overrides: dict[str, Any] | None = None) -> PanelPlan:
    """The runs one panel needs, with CLI ``overrides`` (device, dataset options) applied."""
    file = _sweep_file(panel)
    names = file.get("strategies") or []
    names = [s.strip() for s in names.split(",")] if isinstance(names, str) else list(names)
    known = strategy_classes()
    present = [n for n in names if n in known]
    missing = [n for n in names if n not in known]
    flags = {k: v for k, v in (overrides or {}).items() if v not in (None, {})}
    base = merge({k: file[k] for k in SETTING_KEYS if k in file}, flags)
    settings = [merge(entry, flags) for entry in file.get("settings") or []] or None
    options = {k: dict(v) for k, v in (file.get("strategy_options") or {}).items() if k in present}
    seeds = file.get("seeds")
    configs = expand_grid(present, parse_seeds(seeds) if seeds is not None else None,
                          settings=settings, strategy_options=options, **base) if present else []
    return PanelPlan(panel, names, missing, configs, {c.setting_hash() for c in configs})


def plan(figset: FigureSet, scale: str, overrides: dict[str, Any] | None = None) -> list[PanelPlan]:
    if scale not in figset.scales:
        raise ConfigError(f"The figure set {figset.name} has no scale {scale!r}; its scales: "
                          f"{', '.join(figset.scales)}.")
    return [plan_panel(p, overrides) for p in figset.scales[scale].panels]


# ----------------------------------------------------------------------------- dry run


@dataclass
class PlannedRun:
    panel: str
    run_id: str
    strategy: str
    seed: int
    status: str  # done, partial k/n, to do, not registered
    estimate_s: float  # seconds still to spend; NaN when nothing to estimate from
    basis: str


def _finished_costs(results: Path) -> dict[tuple[str, str], list[float]]:
    """Total t_round_s of every finished run under ``results``, by (setting hash, strategy)."""
    costs: dict[tuple[str, str], list[float]] = {}
    if not results.is_dir():
        return costs
    for manifest in results.rglob("manifest.json"):
        try:
            m = json.loads(manifest.read_text())
        except (OSError, ValueError):
            continue
        if m.get("status") != "complete":
            continue
        rows = read_rows(manifest.parent / "rounds.csv")
        total = sum(float(r.get("t_round_s") or 0) for r in rows)
        key = (str(m.get("setting_hash", "")), str((m.get("config") or {}).get("strategy", "")))
        costs.setdefault(key, []).append(total)
    return costs


def dry_run(plans: list[PanelPlan], results: Path) -> list[PlannedRun]:
    """Every run of the figure set: done or not, and what the rest should cost.

    The estimate of a run that is not done is the mean total ``t_round_s`` of the finished
    runs of the same setting and strategy, else of the same setting (any strategy), minus
    the rounds it has already done; NaN when neither exists.
    """
    costs = _finished_costs(results)
    out: list[PlannedRun] = []
    for p in plans:
        for cfg in p.configs:
            run_dir = results / cfg.run_id()
            setting = cfg.setting_hash()
            same = costs.get((setting, cfg.strategy), [])
            anyone = [c for (h, _), v in costs.items() if h == setting for c in v]
            if same:
                est, basis = sum(same) / len(same), f"{len(same)} finished {cfg.strategy} run(s)"
            elif anyone:
                est, basis = sum(anyone) / len(anyone), f"{len(anyone)} finished run(s) of other strategies"
            else:
                est, basis = math.nan, "no finished run of this setting"
            if run_complete(run_dir):
                out.append(PlannedRun(p.panel.id, cfg.run_id(), cfg.strategy, cfg.seed, "done", 0.0, ""))
                continue
            rows = read_rows(run_dir / "rounds.csv") if (run_dir / "rounds.csv").exists() else []
            spent = sum(float(r.get("t_round_s") or 0) for r in rows)
            status = f"partial {len(rows)}/{cfg.rounds + 1} rounds" if rows else "to do"
            out.append(PlannedRun(p.panel.id, cfg.run_id(), cfg.strategy, cfg.seed, status,
                                  max(0.0, est - spent) if math.isfinite(est) else math.nan, basis))
        seeds = sorted({c.seed for c in p.configs}) or [-1]
        for name in p.missing:
            for seed in seeds:
                out.append(PlannedRun(p.panel.id, "—", name, seed, "not registered", math.nan,
                                      "strategy not registered in this albench"))
    return out
