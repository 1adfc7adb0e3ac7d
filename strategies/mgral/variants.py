"""The detector variants behind MGRAL's table (``recipe``) and their replicate gains.

For each replicate r (its own seed, shared by every entry: common random numbers), each
fold of the :class:`~strategies.mgral.evalset.EvalPlan` and each table entry (group g, size
n; plus the baseline, n = 0), one fine-tune of the fold's base model:

- ``crn`` (default): every variant replays the baseline variant's labeled batches and step
  count (the fold's training ids, ``variant_epochs`` epochs, the replicate's seed); its n
  candidates come as an extra per-step stream of ``min(n, stream_cap)`` images (the
  consistency term, or the supervised loss of pseudo or true labels), weighted per image
  like a labeled one, so the dose grows with n; at a continuation learning rate
  (``variant_lr`` x the backend's).
- ``legacy``: a fresh optimiser at the full learning rate; pseudo- or true-labelled
  candidates join the epoch (so they change the batch order and step count); consistency
  candidates cycle through the 8-image flip term whatever n. The committed runs' recipe.

Entry (g, n)'s gain in replicate r is the pooled AP50 of its fold variants minus that of
the replicate's baseline variants. Returns per group an [R, n_g] array, the baselines' AP
per replicate, and the jobs (for tests and cost accounting).
"""

from __future__ import annotations

import numpy as np

from albench.strategy import FinetuneJob
from strategies.mgral.evalset import EvalPlan, safe_ap50

RECIPES = ("crn", "legacy")


def variant_jobs(plan: EvalPlan, cand: np.ndarray, members: list[np.ndarray],
                 sizes: list[list[int]], *, mode: str, recipe: str, seeds: list[int],
                 epochs: int, lr_scale: float, stream_cap: int, weight: float,
                 pseudo_threshold: float) -> list[tuple[int, int, int, int, FinetuneJob]]:
    """``(replicate, fold, group, n, job)`` for every fine-tune; group -1 is the baseline."""
    out = []
    crn = recipe == "crn"
    for r, seed in enumerate(seeds):
        for f, fold in enumerate(plan.folds):
            common = dict(epochs=epochs, seed=seed, base=fold.base, weight=weight,
                          pseudo_threshold=pseudo_threshold)
            if crn:
                common["lr_scale"] = lr_scale
            out.append((r, f, -1, 0, FinetuneJob(fold.train, (), unsup="none",
                                                 tag=f"r{r}f{f}:baseline", **common)))
            for g, ns in enumerate(sizes):
                for n in ns:
                    extra = {"stream_batch": int(min(n, stream_cap))} if crn else {}
                    out.append((r, f, g, n, FinetuneJob(fold.train, cand[members[g][:n]], unsup=mode,
                                                        tag=f"r{r}f{f}:{g}:{n}", **common, **extra)))
    return out


def replicate_gains(lab, plan: EvalPlan, jobs: list, sizes: list[list[int]],
                    replicates: int) -> tuple[list[np.ndarray], list[float | None]]:
    """Run ``jobs`` and turn them into gains: per group [R, n_g], and the baseline AP50 per
    replicate (None where the scored set has no AP: the replicate's gains are then 0)."""
    models = lab.finetune_many([j for *_, j in jobs])
    by_key: dict[tuple[int, int, int], list] = {}
    for (r, f, g, n, _), model in zip(jobs, models):
        by_key.setdefault((r, g, n), [None] * len(plan.folds))[f] = model

    def pooled(r: int, g: int, n: int) -> float | None:
        return safe_ap50(lab, list(zip(by_key[(r, g, n)], [fold.score for fold in plan.folds])),
                         plan.truth)

    gains = [np.zeros((replicates, len(ns))) for ns in sizes]
    base_aps: list[float | None] = []
    for r in range(replicates):
        base = pooled(r, -1, 0)
        base_aps.append(base)
        if base is None:
            continue
        for g, ns in enumerate(sizes):
            for k, n in enumerate(ns):
                ap = pooled(r, g, n)
                gains[g][r, k] = 0.0 if ap is None else ap - base
    return gains, base_aps
