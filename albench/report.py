"""Reports over finished runs: AL curves, label-efficiency and compute-cost tables.

The report reads result *files* only. A results folder holds one folder per run (possibly
nested, e.g. ``results/runs/<run_id>/``), each with ``manifest.json`` and ``rounds.csv``.
Runs are grouped into *settings* by (dataset, backend, preset, setting_hash); runs of one
setting differ only in strategy, strategy options and seed, so they are comparable.
For every setting :func:`write_report` writes a folder with ``curves.png``/``curves.svg``
and ``report.md``; ``index.md`` at the top links them all. Statistics live in
:mod:`albench.stats`; see ``docs/reports.md`` for their definitions.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from albench import mgral_report, stats  # noqa: E402
from albench.errors import ConfigError  # noqa: E402

__all__ = [
    "SettingKey",
    "Run",
    "SkippedRun",
    "RunSet",
    "StrategyCurves",
    "load_runs",
    "require_runs",
    "group_settings",
    "strategy_curves",
    "write_report",
    "REFERENCE",
    "TARGET_FRACTION",
]

REFERENCE = "random"
TARGET_FRACTION = 0.9
REQUIRED_COLUMNS = ("round", "n_labeled", "ap", "ap50")
TIME_COLUMNS = {  # rounds.csv column -> table header
    "t_train_s": "train",
    "t_infer_s": "infer",
    "t_select_s": "select",
    "t_strategy_train_s": "strategy train",
    "t_eval_s": "eval",
}
UPPER_MARK = "†"
UPPER_NOTE = (
    f"{UPPER_MARK} upper bound: the strategy uses labels the real setting would not have "
    "(e.g. ground truth of unlabeled images). It shows what is attainable, not a fair "
    "competitor; its curves are dashed."
)
HOW_TO_RUN = (
    "Produce runs with `python -m albench run ...` (one run) or `python -m albench sweep ...` "
    "(strategies x seeds), then point the report at the folder they were written to "
    "(by default results/runs)."
)
_BOOT_SEED = 20240521


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


@dataclass(frozen=True)
class SkippedRun:
    path: Path
    run_id: str
    reason: str


@dataclass
class RunSet:
    """Everything found under a results folder: usable runs and skipped ones with reasons."""

    root: Path
    runs: list[Run]
    skipped: list[SkippedRun]

    @property
    def found(self) -> int:
        return len(self.runs) + len(self.skipped)


@dataclass
class StrategyCurves:
    """One strategy's runs in one setting, aligned on the rounds every run of the setting reached."""

    name: str
    upper_bound: bool
    seeds: np.ndarray  # (n,)
    rounds: np.ndarray  # (points,)
    x: np.ndarray  # (points,) mean labeled images per round
    ap50: np.ndarray  # (n, points)
    ap: np.ndarray  # (n, points)
    aubc: np.ndarray  # (n,) AUBC of AP50 per run
    runs: list[Run] = field(repr=False)

    @property
    def label(self) -> str:
        return f"{self.name} {UPPER_MARK}" if self.upper_bound else self.name


# ----------------------------------------------------------------------------- reading


def _read_run(manifest_path: Path, root: Path) -> Run | SkippedRun:
    folder = manifest_path.parent
    rel = folder.relative_to(root) if folder != root else Path(".")
    try:
        manifest = json.loads(manifest_path.read_text())
        if not isinstance(manifest, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        return SkippedRun(rel, folder.name, f"manifest.json unreadable ({exc})")
    run_id = str(manifest.get("run_id") or folder.name)
    status = str(manifest.get("status", "missing"))
    config = manifest.get("config") or {}
    csv = folder / "rounds.csv"
    if not csv.exists():
        return SkippedRun(rel, run_id, f"status '{status}', no rounds.csv")
    try:
        rounds = pd.read_csv(csv)
    except (OSError, ValueError) as exc:  # pandas' EmptyDataError/ParserError are ValueErrors
        return SkippedRun(rel, run_id, f"rounds.csv unreadable ({exc})")
    missing = [c for c in REQUIRED_COLUMNS if c not in rounds.columns]
    if missing:
        return SkippedRun(rel, run_id, f"rounds.csv lacks column(s) {', '.join(missing)}")
    if rounds.empty:
        return SkippedRun(rel, run_id, f"status '{status}', rounds.csv has no rounds yet")

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
        return SkippedRun(rel, run_id, "manifest names no dataset, strategy or seed")
    key = SettingKey(
        str(dataset),
        str(field_of("backend") or "?"),
        str(field_of("preset") or "?"),
        str(manifest.get("setting_hash") or ""),
    )
    return Run(
        run_id=run_id,
        path=rel,
        status=status,
        key=key,
        strategy=str(strategy),
        seed=int(seed),
        upper_bound=bool(manifest.get("upper_bound", False)),
        config=config,
        rounds=rounds.sort_values("round").reset_index(drop=True),
    )


def _options_text(options: Any) -> str:
    if not isinstance(options, dict) or not options:
        return ""
    return ", ".join(f"{k}={options[k]}" for k in sorted(options))


def _disambiguate(runs: list[Run]) -> None:
    """Append to labels shared by runs of one setting with different options the options
    that tell them apart (only those: the ones every run shares are left out)."""
    groups: dict[tuple[SettingKey, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.key, run.strategy), []).append(run)
    for group in groups.values():
        options = [run.config.get("strategy_options") or {} for run in group]
        options = [o if isinstance(o, dict) else {} for o in options]
        keys = sorted({k for o in options for k in o})
        differ = [k for k in keys if len({json.dumps(o.get(k), sort_keys=True) for o in options}) > 1]
        if not differ:
            continue
        for run, opts in zip(group, options):
            text = _options_text({k: opts[k] for k in differ if k in opts})
            run.strategy = f"{run.strategy} ({text})" if text else run.strategy


def load_runs(results_dir: str | Path, include_incomplete: bool = False) -> RunSet:
    """Read every run below ``results_dir`` (any folder holding a ``manifest.json``).

    Runs whose status is not ``complete`` are skipped unless ``include_incomplete``; runs
    without readable rounds are always skipped. Runs of one setting that share a label but
    differ in strategy options get the options appended to the label. Of two runs with the
    same setting, strategy and seed the first by path is kept. Raises :class:`ConfigError`
    when the folder does not exist or holds no run at all.
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
    _disambiguate(candidates)
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
    return RunSet(root, runs, skipped)


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


def _order(name: str, upper_bound: bool) -> tuple[int, str]:
    return (0 if name == REFERENCE else 2 if upper_bound else 1, name)


def strategy_curves(runs: list[Run]) -> tuple[list[StrategyCurves], list[str]]:
    """Per-strategy curves of one setting's runs, aligned on the rounds all of them reached.

    Returns the curves (reference first, upper bounds last) and notes about the alignment.
    """
    notes: list[str] = []
    common = sorted(set.intersection(*(set(r.rounds["round"].tolist()) for r in runs)))
    longest = max(len(r.rounds) for r in runs)
    if len(common) < longest:
        notes.append(
            f"Curves are cut to the {len(common)} round(s) every run of this setting reached "
            f"(the longest run has {longest})."
        )
    by_strategy: dict[str, list[Run]] = {}
    for run in runs:
        by_strategy.setdefault(run.strategy, []).append(run)
    out: list[StrategyCurves] = []
    for name, group in by_strategy.items():
        group = sorted(group, key=lambda r: r.seed)
        rows = [r.rounds[r.rounds["round"].isin(common)] for r in group]
        labeled = np.stack([f["n_labeled"].to_numpy(float) for f in rows])
        ap50 = np.stack([f["ap50"].to_numpy(float) for f in rows])
        ap = np.stack([f["ap"].to_numpy(float) for f in rows])
        if np.ptp(labeled, axis=0).max(initial=0) > 0:
            notes.append(f"{name}: runs differ in labeled images at the same round; x is their mean.")
        upper = any(r.upper_bound for r in group)
        out.append(
            StrategyCurves(
                name=name,
                upper_bound=upper,
                seeds=np.array([r.seed for r in group]),
                rounds=np.asarray(common),
                x=labeled.mean(axis=0),
                ap50=ap50,
                ap=ap,
                aubc=np.array([stats.aubc(lx, ly) for lx, ly in zip(labeled, ap50)]),
                runs=group,
            )
        )
    out.sort(key=lambda c: _order(c.name, c.upper_bound))
    return out, notes


def _reference(curves: list[StrategyCurves]) -> StrategyCurves | None:
    for c in curves:
        if c.name == REFERENCE:
            return c
    for c in curves:  # random with a non-default label
        if all(str(r.config.get("strategy")) == REFERENCE for r in c.runs):
            return c
    return None


# ----------------------------------------------------------------------------- formatting


def _f(value: float, digits: int = 3) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _ci(low: float, high: float, digits: int = 3, seeds: int = 2) -> str:
    """An interval; ``n/a`` below two seeds, where a bootstrap interval has no width."""
    if seeds < 2:
        return "n/a"
    if not (math.isfinite(low) and math.isfinite(high)):
        return "—"
    return f"[{low:.{digits}f}, {high:.{digits}f}]"


def _md_table(header: list[str], rows: list[list[str]], align: str = "l") -> str:
    def esc(cell: str) -> str:
        return str(cell).replace("|", "\\|")

    lines = ["| " + " | ".join(esc(h) for h in header) + " |"]
    rule = "---:" if align == "r" else "---"
    lines.append("|" + "|".join([":---"] + [rule] * (len(header) - 1)) + "|")
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _seed_text(curves: list[StrategyCurves]) -> str:
    counts = sorted({len(c.seeds) for c in curves})
    text = str(counts[0]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
    return text + (" seed" if text == "1" else " seeds")


# ----------------------------------------------------------------------------- tables


def label_efficiency_table(
    curves: list[StrategyCurves], rng: np.random.Generator
) -> tuple[str, str, list[str]]:
    """The AUBC table, the mean-AP50-by-round table and notes."""
    notes: list[str] = []
    ref = _reference(curves)
    real = [c for c in curves if not c.upper_bound] or curves
    finals = {c.name: float(c.ap50.mean(axis=0)[-1]) for c in real}
    best_name = max(finals, key=lambda n: finals[n])
    target = TARGET_FRACTION * finals[best_name]
    rows: list[list[str]] = []
    for c in curves:
        point, low, high = stats.stratified_bootstrap_ci(c.aubc, rng=rng)
        diff = ["—", "—", "—", "—"]
        if ref is not None and c is not ref:
            paired = sorted(c.seeds.tolist()) == sorted(ref.seeds.tolist())
            d, dl, dh = stats.mean_difference_ci(c.aubc, ref.aubc, paired=paired, rng=rng)
            p, pl, ph = stats.probability_of_improvement_ci(c.aubc, ref.aubc, rng=rng)
            n = min(len(c.seeds), len(ref.seeds))
            diff = [f"{d:+.3f}", _ci(dl, dh, seeds=n), _f(p, 2), _ci(pl, ph, 2, seeds=n)]
            if not paired:
                notes.append(f"{c.name}: seeds differ from {ref.name}'s, so Δ is bootstrapped unpaired.")
        reach = stats.labels_to_reach(c.x, c.ap50.mean(axis=0), target)
        rows.append(
            [c.label, str(len(c.seeds)), _f(point), _ci(low, high, seeds=len(c.seeds)), *diff,
             "not reached" if math.isnan(reach) else f"{reach:.0f}"]
        )
    ref_name = ref.name if ref is not None else REFERENCE
    header = [
        "Strategy", "Seeds", "AUBC AP50", "95% CI", f"Δ vs {ref_name}", "Δ 95% CI",
        f"P(> {ref_name})", "P 95% CI", f"Labels to {TARGET_FRACTION:.0%} best",
    ]
    if ref is None:
        notes.append(f"No '{REFERENCE}' strategy in this setting: comparisons to it are left out.")
    notes.append(
        f"Target for the last column: {TARGET_FRACTION:.0%} of the best final mean AP50 "
        f"({best_name}: {finals[best_name]:.3f}) = {target:.3f}"
        + ("; upper-bound strategies do not set it." if len(real) < len(curves) else ".")
    )
    xs = curves[0].x
    round_header = ["Strategy"] + [f"{x:.0f}" for x in xs]
    round_rows = [[c.label] + [_f(v) for v in c.ap50.mean(axis=0)] for c in curves]
    return _md_table(header, rows, "r"), _md_table(round_header, round_rows, "r"), notes


def cost_table(curves: list[StrategyCurves]) -> str:
    """Mean seconds per round by phase, total, ratio to the reference and peak memory."""
    ref = _reference(curves)
    per: dict[str, tuple[list[float], float, float]] = {}
    for c in curves:
        frame = pd.concat([r.rounds for r in c.runs], ignore_index=True)
        means = [
            float(frame[col].mean()) if col in frame and frame[col].notna().any() else math.nan
            for col in TIME_COLUMNS
        ]
        total = float(np.nansum(means)) if any(math.isfinite(m) for m in means) else math.nan
        peak = (
            float(frame["peak_rss_mb"].max())
            if "peak_rss_mb" in frame and frame["peak_rss_mb"].notna().any()
            else math.nan
        )
        per[c.name] = (means, total, peak)
    ref_total = per[ref.name][1] if ref is not None else math.nan
    rows = []
    for c in curves:
        means, total, peak = per[c.name]
        ratio = total / ref_total if ref_total and math.isfinite(ref_total) else math.nan
        rows.append(
            [c.label, *(_f(m, 2) for m in means), _f(total, 2),
             "—" if math.isnan(ratio) else f"{ratio:.2f}×", _f(peak, 0)]
        )
    header = ["Strategy", *(f"{h} s" for h in TIME_COLUMNS.values()), "total s",
              f"× {ref.name if ref else REFERENCE}", "peak RSS MB"]
    return _md_table(header, rows, align="r")


# ----------------------------------------------------------------------------- figures


def plot_curves(
    key: SettingKey, curves: list[StrategyCurves], out_stem: Path, rng: np.random.Generator
) -> list[Path]:
    """Mean AP50 and AP against labeled images with 95% bootstrap bands; PNG and SVG."""
    fig = Figure(figsize=(12, 4.8), layout="constrained")
    axes = fig.subplots(1, 2)
    colors = itertools.cycle(matplotlib.colormaps["tab10"].colors)
    seeds = _seed_text(curves)
    ref = _reference(curves)
    for c in curves:
        is_ref = c is ref
        color = "black" if is_ref else next(colors)
        label = c.name + (" (reference)" if is_ref else " (upper bound)" if c.upper_bound else "")
        for ax, values in zip(axes, (c.ap50, c.ap)):
            mean, low, high = stats.stratified_bootstrap_ci(values, rng=rng)
            ax.plot(c.x, mean, color=color, label=label, marker="o", markersize=3,
                    linestyle="--" if c.upper_bound else "-", linewidth=2.2 if is_ref else 1.5,
                    zorder=3 if is_ref else 2)
            ax.fill_between(c.x, low, high, color=color, alpha=0.15, linewidth=0)
    for ax, metric in zip(axes, ("AP50", "AP (IoU 0.50:0.95)")):
        ax.set_xlabel("labeled images")
        ax.set_ylabel(metric)
        ax.set_title(f"Mean {metric.split()[0]}")
        ax.grid(alpha=0.3)
    axes[1].legend(loc="lower right", fontsize="small")
    fig.suptitle(f"{key.title} — {seeds} (bands: 95% bootstrap CI over seeds)")
    paths = [out_stem.with_suffix(".png"), out_stem.with_suffix(".svg")]
    fig.savefig(paths[0], dpi=150)
    fig.savefig(paths[1])
    return paths


# ----------------------------------------------------------------------------- report


def _setting_summary(key: SettingKey, runs: list[Run]) -> str:
    cfg = runs[0].config
    parts = [f"{k} {cfg[k]}" for k in ("initial", "budget", "rounds") if k in cfg]
    return ", ".join(parts + [f"setting hash `{key.setting_hash or '—'}`"])


def _write_setting(key: SettingKey, runs: list[Run], folder: Path, root: Path | None = None) -> str:
    """Write one setting's figures and report.md; return its line for index.md."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(_BOOT_SEED)
    curves, notes = strategy_curves(runs)
    plot_curves(key, curves, folder / "curves", rng)
    aubc_md, rounds_md, table_notes = label_efficiency_table(curves, rng)
    seeds = _seed_text(curves)
    n_strategies = _plural(len(curves), "strategy", "strategies")
    incomplete = [r for r in runs if r.status != "complete"]
    if incomplete:
        notes.append(f"Includes {len(incomplete)} run(s) that are not complete.")
    upper = any(c.upper_bound for c in curves)
    ref = _reference(curves)
    ref_name = ref.name if ref else REFERENCE
    lines = [
        f"# {key.title}",
        "",
        f"{n_strategies}, {seeds}, {len(runs)} runs; {_setting_summary(key, runs)}.",
        "",
        "![AL curves: mean AP50 and AP against labeled images](curves.png)",
        "",
        "Curves: [PNG](curves.png) · [SVG](curves.svg). Lines are means over seeds, bands 95% "
        "stratified-bootstrap confidence intervals over seeds"
        + (", dashed lines upper bounds." if upper else "."),
        "",
        "## Label efficiency",
        "",
        aubc_md,
        "",
        f"AUBC: area under the AP50-vs-labeled-images curve divided by the labeled range (mean "
        f"AP50 over the budget), per seed, then mean and 95% bootstrap CI over seeds. Δ: mean "
        f"AUBC minus {ref_name}'s, CI from bootstrapping per-seed differences when the seeds "
        f"pair up. P(> {ref_name}): probability that a run of the strategy has a higher AUBC "
        f"than a run of {ref_name} (all pairs, ties ½), CI by bootstrap. Labels to "
        f"{TARGET_FRACTION:.0%} best: labeled images at which the strategy's mean AP50 curve "
        f"first reaches the target, interpolated linearly between rounds.",
        "",
        *(f"- {n}" for n in table_notes + notes),
        "",
        "## Mean AP50 by round",
        "",
        "Columns are labeled images (mean over seeds at each round).",
        "",
        rounds_md,
        "",
        "## Compute cost",
        "",
        "Mean seconds per round over all rounds and seeds, by phase; total is their sum; "
        f"× {ref_name} divides the total by {ref_name}'s; peak RSS is the largest over all "
        "rounds and seeds.",
        "",
        cost_table(curves),
        "",
    ]
    lines += mgral_report.report_section(runs, root, folder)  # only when MGRAL runs are present
    if upper:
        lines += [UPPER_NOTE, ""]
    (folder / "report.md").write_text("\n".join(lines))
    slug = folder.name
    mark = f" ({UPPER_MARK} includes an upper bound)" if upper else ""
    return (
        f"- [{key.title}]({slug}/report.md) — {n_strategies}, {seeds}{mark}; "
        f"curves [PNG]({slug}/curves.png) · [SVG]({slug}/curves.svg)"
    )


def write_report(
    results_dir: str | Path, out_dir: str | Path, include_incomplete: bool = False
) -> Path:
    """Write the report for every setting found under ``results_dir``; return ``index.md``.

    Raises :class:`ConfigError` when ``results_dir`` holds no usable run.
    """
    runset = load_runs(results_dir, include_incomplete)
    require_runs(runset, include_incomplete)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    entries: list[str] = []
    groups = group_settings(runset.runs)
    for key, runs in groups.items():
        entries.append(_write_setting(key, runs, out / key.slug, runset.root)
                       + _distinction(key, groups))
    lines = [
        "# albench report",
        "",
        f"Read {runset.found} run(s) from `{runset.root}`: {len(runset.runs)} reported, "
        f"{len(runset.skipped)} skipped"
        + (" (runs that are not complete are included)." if include_incomplete else "."),
        "",
        "## Settings",
        "",
        *entries,
        "",
    ]
    if any(UPPER_MARK in e for e in entries):
        lines += [UPPER_NOTE, ""]
    if runset.skipped:
        lines += ["## Skipped runs", ""]
        lines.append(
            _md_table(["Run", "Folder", "Why"], [[s.run_id, f"`{s.path}`", s.reason] for s in runset.skipped])
        )
        lines.append("")
    index = out / "index.md"
    index.write_text("\n".join(lines))
    return index


_NOT_SETTING = ("strategy", "strategy_options", "seed")


def _distinction(key: SettingKey, groups: dict[SettingKey, list[Run]]) -> str:
    """For settings sharing a title: a line naming what sets this one apart ('' if none)."""
    same = [k for k in groups if k.title == key.title]
    if len(same) < 2:
        return ""
    configs = {k: groups[k][0].config for k in same}
    fields = sorted({f for c in configs.values() for f in c} - set(_NOT_SETTING))
    differ = [f for f in fields if len({json.dumps(c.get(f), sort_keys=True, default=str)
                                         for c in configs.values()}) > 1]
    own = configs[key]
    text = "; ".join(f"{f} = {json.dumps(own.get(f), sort_keys=True, default=str)}"
                     for f in differ) or "the same recorded settings"
    return f"\n  - setting {key.setting_hash[:8]}: {text}"
