"""The report's pages: per setting a folder with the curves and ``report.md`` (tables, then
the sections of the strategies present), and ``index.md`` linking them all
(:func:`write_report`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from albench.report.curves import REFERENCE, UPPER_MARK, reference_curve, strategy_curves
from albench.report.plots import plot_curves
from albench.report.runs import Run, SettingKey, group_settings, load_runs, require_runs
from albench.report.sections import strategy_sections
from albench.report.tables import (TARGET_FRACTION, cost_table, delta_intervals, delta_table,
                                   label_efficiency_table, md_table, plural, seed_text)
from albench.report.notices import learned_nothing, write_csv_tables

UPPER_NOTE = (
    f"{UPPER_MARK} upper bound: the strategy uses labels the real setting would not have "
    "(e.g. ground truth of unlabeled images). It shows what is attainable, not a fair "
    "competitor; in figures its markers are hollow and its lines thinner."
)
_BOOT_SEED = 20240521


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
    seeds = seed_text(curves)
    n_strategies = plural(len(curves), "strategy", "strategies")
    incomplete = [r for r in runs if r.status != "complete"]
    if incomplete:
        notes.append(f"Includes {len(incomplete)} run(s) that are not complete.")
    upper = any(c.upper_bound for c in curves)
    ref = reference_curve(curves)
    ref_name = ref.name if ref else REFERENCE
    deltas = delta_intervals(curves, rng)
    cost_md = cost_table(curves)
    warning = learned_nothing(curves)
    lines = [
        f"# {key.title}",
        "",
        *([warning, ""] if warning else []),
        f"{n_strategies}, {seeds}, {len(runs)} runs; {_setting_summary(key, runs)}.",
        "",
        "![AL curves: mean AP50, AP and paired Δ AP50 against labeled images](curves.png)",
        "",
        "Curves: [PNG](curves.png) · [PDF](curves.pdf) · [SVG](curves.svg). Lines are means "
        "over seeds; bands are 95% intervals over seeds (Student t-intervals below 30 seeds, "
        "percentile bootstrap from 30; none for one seed); the right panel is Δ AP50 vs "
        f"{ref_name} per round, paired by seed"
        + ("; upper bounds have hollow markers and thinner lines." if upper else "."),
        "",
        "## Label efficiency",
        "",
        aubc_md,
        "",
        f"AUBC: area under the AP50-vs-labeled-images curve divided by the labeled range (mean "
        f"AP50 over the budget), per seed, then mean and 95% interval over seeds. Δ: mean of "
        f"the per-seed AUBC differences to {ref_name} (runs at one seed share the initial "
        f"labeled set and the round-0 model), with its paired interval. P(> {ref_name}): "
        f"share of all (run, {ref_name} run) pairs with a higher AUBC (ties ½); its interval "
        f"is shown only from 30 runs a side. wins: share of paired seeds on which the "
        f"strategy's AUBC is higher, with its Wilson interval. Labels to "
        f"{TARGET_FRACTION:.0%} best: labeled images at which the strategy's mean AP50 curve "
        f"first reaches the target, interpolated linearly between rounds.",
        "",
        *(f"- {n}" for n in table_notes + notes),
        "",
        "## AP50 by round",
        "",
        "Columns are labeled images; cells are mean ± SD over seeds (sample SD).",
        "",
        rounds_md,
        "",
    ]
    if deltas:
        n_pairs = sorted({d.n for d in deltas.values()})
        lines += [
            f"## Δ AP50 vs {ref_name} by round",
            "",
            f"Mean of the per-seed differences with its 95% paired interval "
            f"(t-interval below 30 pairs; n = {', '.join(map(str, n_pairs))} paired seeds).",
            "",
            delta_table(curves, deltas),
            "",
        ]
    lines += [
        "## Compute cost",
        "",
        "Seconds per round by phase. The round-0 model is trained once per seed and shared "
        "by every strategy at that seed, so it is its own row (training and evaluation of the "
        "run that trained it, median over seeds) and is charged to no strategy. Strategy "
        "rows: per run the mean over rounds >= 1, then the median over seeds; total is their "
        f"sum; × {ref_name} divides the total by {ref_name}'s; peak RSS is the largest over "
        "all rounds and seeds. Wall-clock seconds.",
        "",
        cost_md,
        "",
    ]
    write_csv_tables(folder, {"label_efficiency": aubc_md, "ap50_by_round": rounds_md,
                              "cost": cost_md,
                              **({"delta_ap50": delta_table(curves, deltas)} if deltas else {})})
    if root is not None:
        for _name, section, mine in strategy_sections(runs):
            lines += section(mine, root, folder)
    if upper:
        lines += [UPPER_NOTE, ""]
    (folder / "report.md").write_text("\n".join(lines))
    slug = folder.name
    mark = f" ({UPPER_MARK} includes an upper bound)" if upper else ""
    return (
        f"- [{key.title}]({slug}/report.md) — {n_strategies}, {seeds}{mark}; "
        f"curves [PNG]({slug}/curves.png) · [PDF]({slug}/curves.pdf) · [SVG]({slug}/curves.svg)"
        + ("; **learned nothing**" if warning else "")
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
            md_table(["Run", "Folder", "Why"], [[s.run_id, f"`{s.path}`", s.reason] for s in runset.skipped])
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
