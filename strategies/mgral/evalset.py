"""Where MGRAL's variants are scored (``eval_set``), as a list of folds.

A fold is ``(train, score, base)``: the variants of the fold start from ``base``, train on
``train`` (plus their candidates) and are scored on ``score``; a table entry's AP pools
the predictions of every fold's variant over the union of the ``score`` ids, against
``truth`` (None: the oracle's labels of labeled images).

- ``crossfit`` (default): the labeled set is split into K folds, each image keeping its
  fold across rounds (new labeled images join the smallest folds, in a random order).
  Shadow detector k is trained the way the loop trains its own model, from initialisation
  at the first round (the backend's epochs) and warm-started from shadow k after it (its
  warm epochs), but on the labeled set minus fold k: no model a fold-k variant descends
  from has seen fold k. The loop's model is untouched. Shadows are kept across rounds.
- ``pseudo``: label-free. A random subset of the pool outside the candidates (``eval_pool``
  images, default 300; the candidates then take at most half of the pool) is scored
  against the round model's pseudo-labels (its detections with score >=
  ``pseudo_threshold``); variants start from the round model and train on the labeled set.
- ``holdout``: a share ``reward_split`` of the initial labeled set, held out of the
  variants, is the scored set. In-sample: the round model trained on it, so a table built
  on it measures forgetting of memorised images as much as gains (the behaviour of the
  committed runs).

The AP of the scored set under the base models is ``model_ap50_eval``. A scored set with
no boxes (e.g. a tiny reward split of empty images) has no AP: :func:`safe_ap50` gives
None, and the table is then all zeros (no evidence: an even spread).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from albench.errors import DatasetError
from albench.strategy import FinetuneJob

EVAL_SETS = ("crossfit", "pseudo", "holdout")


@dataclass
class Fold:
    train: np.ndarray
    score: np.ndarray
    base: object  # a ModelHandle


@dataclass
class EvalPlan:
    kind: str
    folds: list[Fold]
    truth: dict | None = None

    def scored_ids(self) -> np.ndarray:
        return np.concatenate([f.score for f in self.folds]) if self.folds else np.zeros(0, np.int64)


def safe_ap50(lab, parts, truth=None) -> float | None:
    """Pooled AP50 of ``parts`` ((model, ids) pairs), or None when the scored set holds no
    box (COCO AP is undefined there)."""
    try:
        return float(lab.score_parts(parts, truth).ap50)
    except DatasetError:
        return None


def assign_folds(fold_of: dict[int, int], labeled: np.ndarray, k: int,
                 rng: np.random.Generator) -> dict[int, int]:
    """``fold_of`` extended to every labeled id: new ids, in a random order, each join the
    fold with the fewest members (ties: the lower fold)."""
    out = dict(fold_of)
    counts = np.bincount(np.fromiter(out.values(), np.int64, len(out)), minlength=k)[:k]
    for i in rng.permutation([int(i) for i in labeled if int(i) not in out]):
        f = int(np.argmin(counts))
        out[int(i)] = f
        counts[f] += 1
    return out


def train_shadows(lab, fold_of: dict[int, int], labeled: np.ndarray, k: int,
                  shadows: list | None, seed: int) -> list:
    """Shadow k trained on the labeled set minus fold k: from initialisation when
    ``shadows`` is None, else warm from shadow k. Returns K model handles."""
    jobs = []
    for f in range(k):
        train = np.array([i for i in labeled if fold_of[int(i)] != f], np.int64)
        if shadows is None:
            jobs.append(FinetuneJob(train, (), unsup="none", epochs=lab.epochs(False),
                                    seed=seed + f, fresh=True, tag=f"shadow{f}"))
        else:
            jobs.append(FinetuneJob(train, (), unsup="none", epochs=lab.epochs(True),
                                    seed=seed + f, base=shadows[f], tag=f"shadow{f}"))
    return lab.finetune_many(jobs)


def holdout_plan(lab, labeled: np.ndarray, reward: np.ndarray) -> EvalPlan:
    return EvalPlan("holdout", [Fold(np.setdiff1d(labeled, reward), reward, lab.current())])


def pseudo_plan(lab, labeled: np.ndarray, unlabeled: np.ndarray, cand: np.ndarray, size: int,
                threshold: float, rng: np.random.Generator) -> EvalPlan:
    rest = np.setdiff1d(unlabeled, cand)
    n = int(min(len(rest), size or 300))
    scored = np.sort(rng.choice(rest, size=n, replace=False)) if n else np.zeros(0, np.int64)
    truth = lab.pseudo_truth(scored, threshold)
    return EvalPlan("pseudo", [Fold(np.asarray(labeled, np.int64), scored, lab.current())], truth)


def crossfit_plan(labeled: np.ndarray, fold_of: dict[int, int], shadows: list) -> EvalPlan:
    folds = []
    for f, shadow in enumerate(shadows):
        score = np.array([i for i in labeled if fold_of[int(i)] == f], np.int64)
        train = np.array([i for i in labeled if fold_of[int(i)] != f], np.int64)
        folds.append(Fold(train, score, shadow))
    return EvalPlan("crossfit", folds)


def base_ap50(lab, plan: EvalPlan) -> float | None:
    """``model_ap50_eval``: the base models (the round's, or the shadows) on the scored set."""
    own = plan.kind != "crossfit"  # the round's model itself (None), as the lab scores it
    return safe_ap50(lab, [(None if own else f.base, f.score) for f in plan.folds], plan.truth)
