"""MGRAL's table round by round, as its diagnostics record it: what the report shows next
to MGRAL's curve (issue: the table must be valid before its choices mean anything).

Per MGRAL label and round, averaged over the seeds that have that round:

- **stability**: the scored set's AP50 of the model the variants start from
  (``model_ap50_eval``; ``model_ap50_R`` for runs that predate it) and of the baseline
  variant (``baseline_ap50``, the variant trained on no candidates); their difference is
  what the variant recipe itself does to the detector, before any candidate is added;
- **reliability**: the replicate tables' reliability (its one-sided 95% lower bound, the
  shrinkage factor lambda) where the run had replicates and ``shrink=true``;
- **batch values**: the table's estimated gain of the chosen batch, of the table's exact
  optimum and of random batches of the same size, and the agent's gap
  ``(optimum - chosen) / (optimum - random)`` (0 at the optimum, 1 at random), summed over
  seeds before the ratio is taken. Runs whose
  diagnostics predate these fields get them recomputed from the recorded table (``lut``,
  ``ladder``, ``group_sizes``, ``chosen_per_group``) with the legacy flat extrapolation;
  ``recomputed`` says so;
- **concentration**: the largest share of the batch one group took.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from strategies.mgral.report_data import MgralRun, _finite, by_label

_DRAWS = 200


def recorded_batch_values(d: dict) -> dict | None:
    """Batch values of one diagnostics line: recorded, else recomputed from its table;
    None when the line holds no table."""
    if all(_finite(d.get(k)) for k in ("optimum_gain", "random_gain", "estimated_gain")):
        return {k: d.get(k) for k in ("estimated_gain", "optimum_gain", "random_gain", "agent_gap")
                } | {"recomputed": False}
    try:
        from strategies.mgral.lut import GainTable
        from strategies.mgral.shrink import batch_values

        sizes = [np.asarray(s, np.int64) for s in d["ladder"]]
        counts = np.asarray(d["chosen_per_group"], np.int64)
        group_of = np.repeat(np.arange(len(d["group_sizes"])), d["group_sizes"])
        table = GainTable(sizes, [np.asarray(v, np.float64) for v in d["lut"]], group_of)
    except (KeyError, TypeError, ValueError):
        return None
    picked = np.concatenate([np.flatnonzero(group_of == g)[:c] for g, c in enumerate(counts)])
    out = batch_values(table, int(counts.sum()), picked, np.random.default_rng(0), draws=_DRAWS)
    return out | {"recomputed": True}


def _mean(values: list) -> float:
    vals = [float(v) for v in values if _finite(v)]
    return float(np.mean(vals)) if vals else math.nan


def _pooled_gap(values: list[dict]) -> float:
    """The agent's gap over seeds as a ratio of sums, (optimum - chosen) / (optimum - random)
    summed over the seeds that have all three: a seed whose table values every batch nearly
    alike (optimum - random ~ 0) would make its own ratio, and a mean of ratios, explode.
    NaN when the summed optimum - random is below 1e-4 AP50 (a blank table: no gap to
    measure)."""
    vals = [v for v in values if all(_finite(v.get(k)) for k in
                                     ("optimum_gain", "random_gain", "estimated_gain"))]
    above = sum(float(v["optimum_gain"]) - float(v["random_gain"]) for v in vals)
    if not vals or above < 1e-4:
        return math.nan
    return sum(float(v["optimum_gain"]) - float(v["estimated_gain"]) for v in vals) / above


def validity_rows(runs: list[MgralRun]) -> list[dict[str, Any]]:
    """One row per (label, round) with the means over seeds described in the module."""
    rows = []
    for label, group in by_label(runs).items():
        rounds = sorted({int(d["round"]) for r in group for d in r.diagnostics if "round" in d})
        for t in rounds:
            lines = [d for r in group for d in r.diagnostics if d.get("round") == t]
            base = [d.get("model_ap50_eval", d.get("model_ap50_R")) for d in lines]
            variant = [d.get("baseline_ap50") for d in lines]
            values = [v for v in (recorded_batch_values(d) for d in lines) if v is not None]
            shares = [max(d["chosen_per_group"]) / max(1, sum(d["chosen_per_group"]))
                      for d in lines if d.get("chosen_per_group")]
            rows.append({
                "label": label, "round": t, "seeds": len(lines),
                "eval_set": ", ".join(sorted({str(d.get("eval_set", "holdout")) for d in lines})),
                "base_ap50": _mean(base), "baseline_ap50": _mean(variant),
                "stability": _mean([b - a for a, b in zip(base, variant) if _finite(a) and _finite(b)]),
                "baseline_sd": _mean([d.get("baseline_sd") for d in lines]),
                "reliability": _mean([d.get("reliability") for d in lines]),
                "shrinkage": _mean([d.get("shrinkage") for d in lines]),
                "estimated": _mean([v["estimated_gain"] for v in values]),
                "optimum": _mean([v["optimum_gain"] for v in values]),
                "random": _mean([v["random_gain"] for v in values]),
                "gap": _pooled_gap(values),
                "recomputed": any(v["recomputed"] for v in values),
                "top_share": _mean(shares),
            })
    return rows


def _cell(value: float, fmt: str) -> str:
    return "—" if not _finite(value) else format(value, fmt)


def validity_lines(runs: list[MgralRun]) -> list[str]:
    """The Markdown of the round-by-round table (no lines without diagnostics)."""
    rows = validity_rows(runs)
    if not rows:
        return []
    header = ["Strategy", "Round", "Seeds", "Eval set", "Base AP50 (eval)", "Baseline variant",
              "Δ variant − base", "Variant SD", "Reliability", "Shrinkage λ", "Est. gain chosen",
              "Table optimum", "Random batch", "Agent gap", "Largest group share"]
    out = ["### MGRAL's table, round by round", "",
           "| " + " | ".join(header) + " |", "|:---|" + "---:|" * (len(header) - 1)]
    for r in rows:
        mark = " *" if r["recomputed"] else ""
        cells = [r["label"], str(r["round"]), str(r["seeds"]), r["eval_set"],
                 _cell(r["base_ap50"], ".3f"), _cell(r["baseline_ap50"], ".3f"),
                 _cell(r["stability"], "+.3f"), _cell(r["baseline_sd"], ".3f"),
                 _cell(r["reliability"], ".2f"), _cell(r["shrinkage"], ".2f"),
                 _cell(r["estimated"], "+.3f"), _cell(r["optimum"], "+.3f") + mark,
                 _cell(r["random"], "+.3f") + mark, _cell(r["gap"], ".2f") + mark,
                 _cell(r["top_share"], ".2f")]
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    out += [
        "",
        "Means over the seeds that reached each round. Base AP50 (eval): the scored set's "
        "AP50 of the model the table's variants start from (the round's detector on the "
        "reward split R for `eval_set=holdout`, which that detector trained on; its cross-"
        "fitted shadows on the folds they did not train on for `crossfit`; the round's "
        "detector against its own pseudo-labels for `pseudo`, 1.000 by construction). "
        "Baseline variant: the variant trained on no candidates, on the same set; Δ variant −"
        " base is what the variant recipe does to the detector by itself (stability; the "
        "validity gate asks for |Δ| <= 0.01). Variant SD: the baseline variant's SD over "
        "replicate seeds (`replicates` >= 2). Reliability: of the mean of the replicate "
        "tables' group effects; shrinkage λ: its one-sided 95% lower bound, the factor the "
        "effects were shrunk by (`shrink=true`). Est. gain chosen, table optimum, random "
        "batch: the table's estimate for the agent's batch, for the table's exact optimum of "
        "the same size and for the mean of 200 random batches; agent gap: (optimum − chosen) "
        "/ (optimum − random), each summed over the seeds before the ratio is taken (one seed"
        " whose table values every batch nearly alike would make a mean of ratios explode); 0"
        " at the optimum, 1 at random, — where the summed optimum is worth less than 0.0001 "
        "AP50 over a random batch. Entries marked * were recomputed here from the recorded "
        "table (runs whose diagnostics predate these fields; flat extrapolation, as they "
        "ran). These are the table's own numbers: whether they predict realised gains is the "
        "calibration above and the validity gate (`python -m strategies.mgral.gate`).",
        "",
    ]
    return out
