"""Regression check: do fresh runs reproduce a stored reference within its seed spread?

Rule. For every (setting, strategy) in the reference, let ``m`` be the reference mean over
seeds of the per-run AUBC of AP50 (see :func:`albench.stats.aubc`) and
``se = s / sqrt(n)`` its standard error (``s`` the sample standard deviation over the
``n`` reference seeds; a reference needs at least 2 seeds per strategy). The fresh runs pass
when their mean AUBC lies in ``[m - h, m + h]`` with ``h = max(k * se, floor)`` (defaults
``k = 3``, ``floor = 0.002``, AP units).

Why: the spread over seeds is the noise a correct re-run shows anyway, so it sets the
band's width; ``k = 3`` standard errors keeps false alarms rare while catching shifts
larger than the seed noise. The floor stops a reference whose seeds agree exactly (zero
spread) from failing on floating-point noise; it is kept below the distances between the
committed reference's strategies (docs/reports.md gives the numbers) so that it never hides a
strategy that became random.

Status per row: ``ok`` (inside the band), ``outside`` (a failure), ``missing`` (the
reference strategy has no fresh complete run: a failure) and ``new`` (a fresh strategy the
reference lacks: reported, not a failure). Settings are matched by (dataset, backend,
preset) and must have the same setting hash: fresh runs of the same preset name made with
another pool, budget or epochs are refused (a ConfigError), not compared. Per-round
differences of the mean AP50 curves (fresh minus reference) are reported alongside, with the
largest in absolute value.
"""

from __future__ import annotations

import importlib.resources
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from albench import stats
from albench.errors import ConfigError
from albench.report import (
    SettingKey,
    StrategyCurves,
    group_settings,
    load_runs,
    require_runs,
    strategy_curves,
)

__all__ = ["RegressResult", "compare", "format_result", "packaged_reference", "reference_configs",
           "rebuild_reference"]

STATUSES = ("ok", "outside", "missing", "new")
FAILING = ("outside", "missing")
DEFAULT_K = 3.0
DEFAULT_FLOOR = 0.002
MIN_SEEDS = 2


@dataclass
class RegressResult:
    """Outcome of :func:`compare`: ``ok`` is False when any row is outside or missing."""

    rows: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)
    k: float = 3.0
    floor: float = DEFAULT_FLOOR

    @property
    def ok(self) -> bool:
        return not any(r["status"] in FAILING for r in self.rows)

    @property
    def exit_code(self) -> int:
        """0 when the check passes, 1 otherwise."""
        return 0 if self.ok else 1

    @property
    def failures(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"] in FAILING]


def _curves(runs: list) -> dict[str, StrategyCurves]:
    return {c.name: c for c in strategy_curves(runs)[0]}


def _round_diffs(ref: StrategyCurves, fresh: StrategyCurves) -> list[float]:
    common, ri, fi = np.intersect1d(ref.rounds, fresh.rounds, return_indices=True)
    return (fresh.ap50.mean(axis=0)[fi] - ref.ap50.mean(axis=0)[ri]).tolist()


def _row(setting: str, strategy: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "setting": setting, "strategy": strategy, "ref_mean": math.nan, "ref_se": math.nan,
        "band_low": math.nan, "band_high": math.nan, "fresh_mean": math.nan, "status": "ok",
        "max_round_diff": math.nan, "round_diffs": [], "n_ref": 0, "n_fresh": 0,
        "upper_bound": False,
    }
    row.update(values)
    return row


def _new_row(setting: str, new: StrategyCurves) -> dict[str, Any]:
    return _row(setting, new.name, status="new", fresh_mean=float(new.aubc.mean()),
                n_fresh=len(new.seeds), upper_bound=new.upper_bound)


def _match(ref_key: SettingKey, fresh_keys: list[SettingKey]) -> SettingKey | None:
    same = [f for f in fresh_keys if f.name == ref_key.name]
    for f in same:
        if f.setting_hash == ref_key.setting_hash:
            return f
    if same:
        hashes = ", ".join(sorted(f.setting_hash or "—" for f in same))
        raise ConfigError(
            f"The fresh runs of {ref_key.name} were made with other resolved settings than the "
            f"reference (setting hash {hashes} against the reference's "
            f"{ref_key.setting_hash or '—'}): the pool, budget, epochs or library versions "
            "differ under the same preset name, so their curves cannot be held to the "
            "reference's band. Re-run the reference's own sweep (`python -m albench regress` "
            "without --runs), or rebuild the reference with --rebuild on these settings."
        )
    return None


def check_arguments(k: float, floor: float) -> None:
    """Raise :class:`ConfigError` unless ``k`` is finite and > 0 and ``floor`` finite, >= 0."""
    if not (isinstance(k, (int, float)) and math.isfinite(k) and k > 0):
        raise ConfigError(f"--k must be a finite number above 0 (standard errors), not {k!r}. "
                          f"Give it as --k 3 (default {DEFAULT_K:g}).")
    if not (isinstance(floor, (int, float)) and math.isfinite(floor) and floor >= 0):
        raise ConfigError(f"--floor must be a finite number of at least 0 (AP units), not "
                          f"{floor!r}. Give it as --floor 0.002 (default {DEFAULT_FLOOR:g}).")


def _check_seeds(ref_key: SettingKey, curves: dict[str, StrategyCurves]) -> None:
    few = {n: len(c.seeds) for n, c in curves.items() if len(c.seeds) < MIN_SEEDS}
    if few:
        names = ", ".join(f"{n} ({s} seed{'s' if s != 1 else ''})" for n, s in sorted(few.items()))
        raise ConfigError(
            f"The reference of {ref_key.name} has fewer than {MIN_SEEDS} complete seeds for "
            f"{names}: with one seed there is no spread to set the band from. Add seeds to "
            "the reference's sweep.yaml and rebuild it with --rebuild."
        )


def _reproducibility_warnings(*sets: Any) -> list[str]:
    """A warning per folder holding runs that are not bit-reproducible (CUDA without
    deterministic mode, see albench.determinism): reruns of a seed differ, so fresh
    curves move by more than the seed spread alone explains."""
    from albench.determinism import not_reproducible

    out = []
    for name, s in zip(("reference", "fresh"), sets):
        bad = not_reproducible(s.root / r.path for r in s.runs)
        if bad:
            out.append(f"{name}: {len(bad)} of {len(s.runs)} run(s) are NOT bit-reproducible "
                       f"(deterministic mode off on a GPU, e.g. {bad[0]}): a rerun of the same "
                       "seed gives a different curve. Use --deterministic on for exact reruns.")
    return out


def compare(
    reference_dir: str | Path, runs_dir: str | Path, k: float = DEFAULT_K,
    floor: float = DEFAULT_FLOOR,
) -> RegressResult:
    """Compare the complete runs in ``runs_dir`` with those in ``reference_dir``.

    See the module docstring for the rule. Raises :class:`albench.errors.ConfigError` when
    either folder holds no usable run, a reference strategy has fewer than 2 seeds, the
    fresh runs' setting hash differs from the reference's, or ``k``/``floor`` are invalid.
    """
    check_arguments(k, floor)
    ref_set, fresh_set = load_runs(reference_dir), load_runs(runs_dir)
    require_runs(ref_set, False)
    require_runs(fresh_set, False)
    warnings = [f"{name}: skipped {len(s.skipped)} run(s) that are not complete or unreadable."
                for name, s in (("reference", ref_set), ("fresh", fresh_set)) if s.skipped]
    warnings += _reproducibility_warnings(ref_set, fresh_set)
    machines = [sorted({r.machine for r in s.runs}) for s in (ref_set, fresh_set)]
    if machines[0] != machines[1]:
        warnings.append(f"The reference was made on {'; '.join(machines[0])} and the fresh runs "
                        f"on {'; '.join(machines[1])}: CPU kernels differ by processor and "
                        "torch build, so their round-0 models differ and the curves move by "
                        "more than seed noise alone.")
    ref_groups, fresh_groups = group_settings(ref_set.runs), group_settings(fresh_set.runs)
    rows: list[dict[str, Any]] = []
    used: set[SettingKey] = set()
    for ref_key, ref_runs in ref_groups.items():
        fresh_key = _match(ref_key, list(fresh_groups))
        ref_curves = _curves(ref_runs)
        _check_seeds(ref_key, ref_curves)
        fresh_curves = _curves(fresh_groups[fresh_key]) if fresh_key else {}
        if fresh_key:
            used.add(fresh_key)
        for name, ref in ref_curves.items():
            mean, se = float(ref.aubc.mean()), stats.standard_error(ref.aubc)
            half = max(k * se, floor)
            base = dict(ref_mean=mean, ref_se=se, band_low=mean - half, band_high=mean + half,
                        n_ref=len(ref.seeds), upper_bound=ref.upper_bound)
            fresh = fresh_curves.get(name)
            if fresh is None:
                rows.append(_row(ref_key.name, name, status="missing", **base))
                continue
            fresh_mean = float(fresh.aubc.mean())
            diffs = _round_diffs(ref, fresh)
            inside = mean - half <= fresh_mean <= mean + half
            rows.append(_row(
                ref_key.name, name, fresh_mean=fresh_mean, n_fresh=len(fresh.seeds),
                status="ok" if inside else "outside", round_diffs=diffs,
                max_round_diff=max((abs(d) for d in diffs), default=math.nan), **base,
            ))
        rows += [_new_row(ref_key.name, c) for n, c in fresh_curves.items() if n not in ref_curves]
    for fresh_key, fresh_runs in fresh_groups.items():
        if fresh_key in used:
            continue
        rows += [_new_row(fresh_key.name, new) for new in _curves(fresh_runs).values()]
    return RegressResult(rows, warnings, k, floor)


def _num(value: float, fmt: str = ".4f") -> str:
    return "—" if value is None or not math.isfinite(value) else format(value, fmt)


def format_result(result: RegressResult) -> str:
    """The result as plain text holding a Markdown table, verdict first."""
    fails = result.failures
    seeds = sorted({(r["n_ref"], r["n_fresh"]) for r in result.rows if r["status"] != "new"})
    seeds_text = ", ".join(f"{a}/{b}" for a, b in seeds) or "—"
    verdict = (f"PASS ({len(result.rows)} rows, seeds reference/fresh {seeds_text})" if result.ok
               else f"FAIL ({len(fails)} of {len(result.rows)} rows)")
    lines = [
        f"Regression check: {verdict}",
        "",
        f"Rule: fresh mean AUBC(AP50) within reference mean ± max({result.k:g} × SE, "
        f"{result.floor:g}); SE = sample std over seeds / sqrt(seeds).",
        "",
        "| Setting | Strategy | Ref mean | Ref SE | Band | Fresh mean | Δ mean "
        "| Max \\|Δ\\| round | Seeds ref/fresh | Status |",
        "|:---|:---|---:|---:|:---:|---:|---:|---:|:---:|:---|",
    ]
    for r in result.rows:
        band = "—" if math.isnan(r["band_low"]) else f"[{r['band_low']:.4f}, {r['band_high']:.4f}]"
        delta = r["fresh_mean"] - r["ref_mean"]
        name = r["strategy"].replace("|", "\\|") + (" †" if r["upper_bound"] else "")
        cells = [
            r["setting"], name, _num(r["ref_mean"]), _num(r["ref_se"]), band,
            _num(r["fresh_mean"]), _num(delta, "+.4f"), _num(r["max_round_diff"]),
            f"{r['n_ref']}/{r['n_fresh']}",
            r["status"].upper() if r["status"] in ("outside", "missing") else r["status"],
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if any(r["upper_bound"] for r in result.rows):
        lines += ["", "† upper bound: the strategy uses labels the real setting would not have."]
    compared = [r for r in result.rows if r["round_diffs"]]
    if compared:
        lines += ["", "Per-round Δ of mean AP50 (fresh − reference), round by round:"]
        lines += [
            f"- {r['setting']} {r['strategy']}: " + " ".join(f"{d:+.4f}" for d in r["round_diffs"])
            for r in compared
        ]
    if result.warnings:
        lines += ["", "Warnings:", *(f"- {w}" for w in result.warnings)]
    return "\n".join(lines) + "\n"


SWEEP_FILE = "sweep.yaml"
INSTALLED_REFERENCE = "_reference"  # the reference's folder inside an installed albench


def packaged_reference() -> Path:
    """The regression reference shipped with albench: ``albench/_reference`` in an installed
    albench (pyproject.toml maps ``results/reference`` there), else ``results/reference`` of
    the source tree albench is imported from."""
    package = Path(str(importlib.resources.files("albench")))
    installed = package / INSTALLED_REFERENCE
    return installed if installed.is_dir() else package.parent / "results" / "reference"


def reference_configs(reference: str | Path) -> list:
    """The grid of runs the reference was made from (``<reference>/sweep.yaml``)."""
    from albench.sweep import SETTING_KEYS, expand_grid, read_config

    spec = Path(reference) / SWEEP_FILE
    if not spec.exists():
        raise ConfigError(
            f"{spec} does not exist, so the reference sweep cannot be re-run. A reference "
            f"folder holds the sweep file it was made from; pass --runs DIR to compare runs "
            "you made yourself, or rebuild the reference with --rebuild."
        )
    file = read_config(spec)
    base = {k: file[k] for k in SETTING_KEYS if k in file}
    return expand_grid(file.get("strategies") or "all", file.get("seeds"),
                       settings=file.get("settings") or None,
                       strategy_options=file.get("strategy_options") or {}, **base)


def rebuild_reference(reference: str | Path, workers: int = 1, quiet: bool = False) -> int:
    """Run the reference sweep into ``reference`` and drop what resume needed (models)."""
    import shutil

    from albench.sweep import exit_code, run_sweep

    reference = Path(reference)
    outcomes = run_sweep(reference_configs(reference), reference, workers=workers, quiet=quiet)
    for state in reference.glob("*/state"):
        shutil.rmtree(state)
    return exit_code(outcomes)
