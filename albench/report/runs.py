"""Reading runs: every folder below a results folder that holds a ``manifest.json`` (and its
``rounds.csv``) is one run; runs are grouped into settings (:class:`SettingKey`), and
what cannot be used is kept as a :class:`SkippedRun` with the reason."""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from albench.errors import ConfigError
from albench.report.labels import disambiguate

REQUIRED_COLUMNS = ("round", "n_labeled", "ap", "ap50")
HOW_TO_RUN = (
    "Produce runs with `python -m albench run ...` (one run) or `python -m albench sweep ...` "
    "(strategies x seeds), then point the report at the folder they were written to "
    "(by default results/runs)."
)


@dataclass(frozen=True, order=True)
class SettingKey:
    """What makes runs comparable: the same data, detector, preset and setting hash."""

    dataset: str
    backend: str
    preset: str
    setting_hash: str

    @property
    def slug(self) -> str:
        raw = f"{self.dataset}_{self.backend}_{self.preset}_{self.setting_hash[:8] or 'nohash'}"
        return re.sub(r"[^A-Za-z0-9._-]+", "-", raw).strip("-")

    @property
    def title(self) -> str:
        return f"{self.dataset} · {self.backend} · preset {self.preset}"

    @property
    def name(self) -> str:
        return f"{self.dataset}/{self.backend}/{self.preset}"


@dataclass
class Run:
    """One run as read from its folder."""

    run_id: str
    path: Path
    status: str
    key: SettingKey
    strategy: str  # display label: manifest "label", else config strategy
    seed: int
    upper_bound: bool
    config: dict[str, Any]
    rounds: pd.DataFrame  # sorted by round
    round0: str | None = None  # see round0_fingerprint
    requires: tuple[str, ...] = ()  # strategy_requires: these change the round-0 model
    machine: str = "an unrecorded machine"


@dataclass(frozen=True)
class SkippedRun:
    path: Path
    run_id: str
    reason: str
    damaged: bool = False  # the folder is broken (not merely unfinished or a duplicate)


def _bad_cells(rounds: pd.DataFrame) -> str:
    """'' when every required cell of ``rounds`` is a finite number, else what is wrong
    (the column and the first rows), converting the required columns in place."""
    problems = []
    for column in REQUIRED_COLUMNS:
        values = pd.to_numeric(rounds[column], errors="coerce")
        wrong = rounds.index[~np.isfinite(values.to_numpy(float))]
        if len(wrong):
            shown = ", ".join(f"row {i + 1} {rounds[column].iloc[i]!r}" for i in wrong[:3])
            problems.append(f"non-numeric or missing {column} ({shown})")
        rounds[column] = values
    return "; ".join(problems)


def warn_damaged(runset: "RunSet") -> None:
    """One warning paragraph per damaged run folder of ``runset`` (the others are used)."""
    for s in runset.skipped:
        if s.damaged:
            warnings.warn(
                f"Skipped the damaged run folder {runset.root / s.path}: {s.reason}. The other "
                "runs are used. Re-run that run (the same `python -m albench run` command; "
                "delete the folder first if its files are broken) or move it out of "
                f"{runset.root}.", stacklevel=3)


@dataclass
class RunSet:
    """Everything found under a results folder: usable runs and skipped ones with reasons."""

    root: Path
    runs: list[Run]
    skipped: list[SkippedRun]

    @property
    def found(self) -> int:
        return len(self.runs) + len(self.skipped)


def _read_run(manifest_path: Path, root: Path) -> Run | SkippedRun:
    folder = manifest_path.parent
    rel = folder.relative_to(root) if folder != root else Path(".")
    try:
        manifest = json.loads(manifest_path.read_text())
        if not isinstance(manifest, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        return SkippedRun(rel, folder.name, f"manifest.json unreadable ({exc})", damaged=True)
    run_id = str(manifest.get("run_id") or folder.name)
    status = str(manifest.get("status", "missing"))
    config = manifest.get("config") or {}
    csv = folder / "rounds.csv"
    if not csv.exists():
        return SkippedRun(rel, run_id, f"status '{status}', no rounds.csv")
    try:
        rounds = pd.read_csv(csv)
    except (OSError, ValueError) as exc:  # pandas' EmptyDataError/ParserError are ValueErrors
        return SkippedRun(rel, run_id, f"rounds.csv unreadable ({exc})", damaged=True)
    missing = [c for c in REQUIRED_COLUMNS if c not in rounds.columns]
    if missing:
        return SkippedRun(rel, run_id, f"rounds.csv lacks column(s) {', '.join(missing)}",
                          damaged=True)
    if rounds.empty:
        return SkippedRun(rel, run_id, f"status '{status}', rounds.csv has no rounds yet")
    bad = _bad_cells(rounds)
    if bad:
        return SkippedRun(rel, run_id, f"rounds.csv has {bad}", damaged=True)

    def field_of(name: str) -> Any:
        value = config.get(name)
        if value is None and name in rounds.columns:
            value = rounds[name].iloc[0]
        return value

    seed = field_of("seed")
    dataset = config.get("dataset")
    if isinstance(dataset, dict):  # tolerate a structured dataset entry
        dataset = dataset.get("name")
    dataset = dataset or (manifest.get("dataset") or {}).get("name") or field_of("dataset")
    strategy = manifest.get("label") or config.get("label") or field_of("strategy")
    if seed is None or dataset is None or strategy is None:
        return SkippedRun(rel, run_id, "manifest names no dataset, strategy or seed", damaged=True)
    try:
        seed = int(seed)
    except (TypeError, ValueError):
        return SkippedRun(rel, run_id, f"seed {seed!r} is not a whole number", damaged=True)
    key = SettingKey(
        str(dataset),
        str(field_of("backend") or "?"),
        str(field_of("preset") or "?"),
        str(manifest.get("setting_hash") or ""),
    )
    rounds = rounds.sort_values("round").reset_index(drop=True)
    return Run(
        run_id=run_id,
        round0=round0_fingerprint(rounds) if manifest.get("hardware") else None,
        requires=tuple(str(r) for r in manifest.get("strategy_requires") or ()),
        machine=_machine(manifest.get("hardware")),
        path=rel,
        status=status,
        key=key,
        strategy=str(strategy),
        seed=seed,
        upper_bound=bool(manifest.get("upper_bound", False)),
        config=config,
        rounds=rounds,
    )


def round0_fingerprint(rounds: pd.DataFrame) -> str | None:
    """sha256 of round 0's ``ap``, ``ap50`` and ``per_class_ap`` as rounds.csv holds them:
    runs of one setting and seed start from the same round-0 model (unless a strategy's
    ``requires`` changes its training), so they share it; another processor or torch build
    gives another. None when the run has no round 0 or no ``per_class_ap`` column (not
    written by albench); :func:`load_runs` also leaves it None for a run whose manifest
    records no ``hardware`` (a synthetic run, not made by the loop)."""
    import hashlib

    first = rounds[rounds["round"] == 0]
    if first.empty or "per_class_ap" not in rounds.columns:
        return None
    row = first.iloc[0]
    text = f"{float(row['ap'])!r}|{float(row['ap50'])!r}|{row['per_class_ap']}"
    return hashlib.sha256(text.encode()).hexdigest()


def _machine(hw: Any) -> str:
    if not isinstance(hw, dict):
        return "an unrecorded machine"
    if "processor" in hw:
        return (f"{hw['processor']} ({hw.get('cpu_capability', '?')}, torch {hw.get('torch', '?')}, "
                f"{hw.get('torch_threads', '?')} threads)")
    return f"{hw.get('platform', 'an unrecorded platform')}, {hw.get('torch_threads', '?')} threads"


def check_paired(runs: Iterable[Run], root: Path) -> None:
    """Raise :class:`ConfigError` when runs of one setting and seed (and the same strategy
    ``requires``) started from different round-0 models: they were made on different
    machines or builds, so comparing them seed by seed compares machines, not strategies."""
    groups: dict[tuple, list[Run]] = {}
    for run in runs:
        if run.round0 is not None:
            groups.setdefault((run.key, run.seed, run.requires), []).append(run)
    for (key, seed, _), group in sorted(groups.items(), key=lambda kv: str(kv[0])):
        prints = {run.round0 for run in group}
        if len(prints) < 2:
            continue
        by_print: dict[str, list[Run]] = {}
        for run in group:
            by_print.setdefault(str(run.round0), []).append(run)
        sides = "; ".join(
            f"{', '.join(str(r.path) for r in rs[:3])}{' ...' if len(rs) > 3 else ''} "
            f"(round-0 AP50 {float(rs[0].rounds['ap50'].iloc[0]):.4f}, made on {rs[0].machine})"
            for rs in by_print.values())
        raise ConfigError(
            f"The runs of {key.name} seed {seed} in {root} did not start from the same round-0 "
            f"model, so they cannot be compared strategy against strategy: {sides}. CPU "
            "kernels differ by processor and torch build, so runs made on different machines "
            "differ from round 0 on. Re-run the baselines on this machine into another folder "
            "(`python -m albench sweep ... --out DIR`) and pass that folder, or pass a folder "
            "whose runs were all made on one machine."
        )


def load_runs(results_dir: str | Path, include_incomplete: bool = False) -> RunSet:
    """Read every run below ``results_dir`` (any folder holding a ``manifest.json``).

    Runs whose status is not ``complete`` are skipped unless ``include_incomplete``; runs
    without readable rounds are always skipped. Runs of one setting that share a label but
    differ in strategy options get the options appended to the label. Of two runs with the
    same setting, strategy and seed the first by path is kept. Damaged folders give a warning
    each. Raises :class:`ConfigError` when the folder does not exist, holds no run at all,
    or holds runs of one setting and seed that started from different round-0 models
    (:func:`check_paired`).
    """
    root = Path(results_dir)
    if not root.is_dir():
        raise ConfigError(
            f"The results folder {root} does not exist, so there are no runs to read. "
            f"Check the path, or create runs first: {HOW_TO_RUN}"
        )
    manifests = sorted(root.rglob("manifest.json"))
    if not manifests:
        raise ConfigError(
            f"No runs found: no manifest.json in {root} or any folder below it. {HOW_TO_RUN}"
        )
    runs: list[Run] = []
    skipped: list[SkippedRun] = []
    candidates: list[Run] = []
    for path in manifests:
        run = _read_run(path, root)
        if isinstance(run, SkippedRun):
            skipped.append(run)
        elif run.status != "complete" and not include_incomplete:
            skipped.append(SkippedRun(run.path, run.run_id, f"status '{run.status}' (not complete)"))
        else:
            candidates.append(run)
    disambiguate(candidates)
    seen: dict[tuple[SettingKey, str, int], Run] = {}
    for run in candidates:
        if (run.key, run.strategy, run.seed) in seen:
            first = seen[(run.key, run.strategy, run.seed)]
            skipped.append(
                SkippedRun(run.path, run.run_id, f"same setting, strategy and seed as {first.run_id}")
            )
        else:
            seen[(run.key, run.strategy, run.seed)] = run
            runs.append(run)
    runset = RunSet(root, runs, skipped)
    warn_damaged(runset)
    check_paired(runs, root)
    return runset


def require_runs(runset: RunSet, include_incomplete: bool) -> None:
    """Raise :class:`ConfigError` when a run set has nothing usable, saying why."""
    if runset.runs:
        return
    reasons = "; ".join(f"{s.path}: {s.reason}" for s in runset.skipped[:5])
    more = f" (and {len(runset.skipped) - 5} more)" if len(runset.skipped) > 5 else ""
    hint = (
        "Wait for the runs to finish (re-running the same `python -m albench run` command "
        "resumes an interrupted one), or include unfinished runs in a report with "
        "--include-incomplete."
        if not include_incomplete
        else "Check that the runs wrote rounds.csv."
    )
    raise ConfigError(
        f"Found {runset.found} run folder(s) in {runset.root} but none can be used: "
        f"{reasons}{more}. {hint} {HOW_TO_RUN}"
    )


def group_settings(runs: Iterable[Run]) -> dict[SettingKey, list[Run]]:
    """Runs by setting, settings sorted."""
    groups: dict[SettingKey, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.key, []).append(run)
    return dict(sorted(groups.items()))

