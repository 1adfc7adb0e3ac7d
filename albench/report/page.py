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
from albench.report.tables import (TARGET_FRACTION, cost_table, label_efficiency_table, md_table,
                                   plural, seed_text)

UPPER_NOTE = (
    f"{UPPER_MARK} upper bound: the strategy uses labels the real setting would not have "
    "(e.g. ground truth of unlabeled images). It shows what is attainable, not a fair "
    "competitor; its curves are dashed."
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
