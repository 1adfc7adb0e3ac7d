"""MGRAL: a reinforced sampling agent trained against a look-up table of mAP gains.

After "Performance-guided Reinforced Active Learning for Object Detection" (Liang, Zeng,
Zhao, Luo; arXiv 2601.15688, a short version of arXiv 2310.08387). No official code is
public; docs/strategies.md separates what the paper states from what is reconstructed here.

Stated by the paper (fixed here): a batch's value is the detector's mAP improvement; a
sampling agent (an LSTM over candidate encodings with the previous decision fed back, a
two-layer MLP to a score, top-B at selection) is trained by policy gradient on that
reward; the reward needs no labels of the candidates (a semi-supervised detector with a
flip-consistency term); rewards come from look-up tables built once per round by
training detector variants, in parallel where the hardware allows.

Reconstructed (each an option, default in brackets; the defaults are the validity
variant, :data:`VALIDITY`; :data:`LEGACY` gives the first reconstruction and reproduces
the committed runs made with it): ``eval_set`` [crossfit | pseudo | holdout; legacy holdout]
where variants are scored (:mod:`strategies.mgral.evalset`); ``folds`` [2; legacy 3];
``eval_pool`` [0: 300] (pseudo); ``recipe`` [crn | legacy] (:mod:`strategies.mgral.variants`);
``replicates`` [2; legacy 1]; ``variant_lr`` [0.1]; ``stream_cap`` [8]; ``shrink`` [true;
legacy false] (:mod:`strategies.mgral.shrink`); ``sampler`` [plackett | bernoulli
(legacy)] (:mod:`strategies.mgral.sampler`); ``gap`` [0.05; legacy 0: train until the
agent's batch is within this share of the way from the table's optimum to a random batch];
``indifferent`` [agent | random: B candidates at random when the table values every
batch alike]; ``pick`` [mode: the agent's top-B | sample: the best by the table of
``samples`` draws from the trained policy (sampler=plackett)]; ``reward_split`` [0.2]
share of the initial labeled set held out as R (holdout only, never the test split);
``candidates`` [0: min(pool, 8B)];
``groups`` [4; legacy 8] k-means groups of the L2-normalised embeddings; ``ladder`` ["1,2,4"]
multiples of B/G per group; ``variant_epochs`` [3] epochs of each variant fine-tune (on
the labeled set minus R plus the group's images); ``estimator`` [consistency |
pseudo | oracle (true labels: an upper bound, marked †)]; ``agent`` [lstm | greedy (no
RL: fill by marginal table gain)]; ``iterations`` [300] policy iterations per round;
``carry_agent`` [false; legacy true] weights kept across rounds;
``budget_penalty`` [-1: the table's scale]; ``entropy_bonus`` [0.01];
``hidden`` [128]; ``samples`` [16] trajectories per policy iteration; ``lr`` [1e-3];
``prior_rate`` [true: a new agent's output bias starts at logit(B/M)].
"""

from __future__ import annotations

import copy
import time
from types import SimpleNamespace
from typing import Any

import numpy as np

from albench.errors import ConfigError
from albench.strategy import Option, Selection, SelectionContext, Strategy, register_strategy
from strategies.mgral.evalset import EVAL_SETS
from strategies.mgral.variants import RECIPES

ESTIMATOR_JOB = {"consistency": "consistency", "pseudo": "pseudo", "oracle": "labels"}
# The options that reproduce the runs made before eval_set, recipe, shrink, sampler, gap
# and replicates existed, and before the defaults became the validity variant's
# (results/quick, results/bccd, results/mgral-ablations*): their run ids too.
LEGACY = {"eval_set": "holdout", "recipe": "legacy", "replicates": 1, "shrink": False,
          "sampler": "bernoulli", "gap": 0.0, "carry_agent": True, "groups": 8, "folds": 3}
# The validity variant, the defaults: an out-of-sample eval set (2-fold cross-fitting),
# the CRN recipe with 2 replicates, a shrunk table, the exact-B sampler, a gap-bounded
# agent re-initialised each round, 4 groups. Chosen from the gate's measurements on
# development seeds (quick seed 100, real-small seed 0: reports/mgral-gate/); 2 folds and
# 4 groups are the cheaper table the gate ran; a quick run alone took about 16 minutes on
# a 2-core CPU, inside its 20-minute budget (docs/strategies.md).
VALIDITY = {"eval_set": "crossfit", "recipe": "crn", "replicates": 2, "shrink": True,
            "sampler": "plackett", "gap": 0.05, "carry_agent": False, "groups": 4, "folds": 2}


@register_strategy
class MGRAL(Strategy):
    name = "mgral"
    description = ("RL sampling agent (LSTM, REINFORCE) trained against a look-up table of "
                   "mAP gains of detector variants fine-tuned on candidate groups (MGRAL)")
    report_section = "strategies.mgral.report:report_section"
    options = {
        "estimator": Option("consistency", "how variants use the candidates: consistency | "
                            "pseudo | oracle (true labels: upper bound)",
                            ("consistency", "pseudo", "oracle")),
        "eval_set": Option("crossfit", "where variants are scored: crossfit (K-fold shadows) | "
                           "pseudo (pool images vs pseudo-labels) | holdout (reward split: "
                           "in-sample)", EVAL_SETS, legacy="holdout"),
        "folds": Option(2, "folds of eval_set=crossfit", low=2, legacy=3),
        "eval_pool": Option(0, "pool images scored by eval_set=pseudo (0: 300)", low=0, legacy=0),
        "recipe": Option("crn", "variant recipe: crn (replay the baseline's batches, candidates "
                         "as a stream sized to n, continuation lr) | legacy", RECIPES,
                         legacy="legacy"),
        "replicates": Option(2, "replicate seeds per table entry (their spread: the noise)",
                             low=1, legacy=1),
        "variant_lr": Option(0.1, "recipe=crn: learning rate of variants, times the backend's",
                             low=0, exclusive=True, legacy=0.1),
        "stream_cap": Option(8, "recipe=crn: most candidates per step of the stream", low=1,
                             legacy=8),
        "shrink": Option(True, "a rung at the largest batch a group takes, concave curves, group "
                         "effects shrunk by their measured reliability", legacy=False),
        "sampler": Option("plackett", "agent's samples: plackett (exactly B, without "
                          "replacement) | bernoulli (with a size penalty)",
                          ("plackett", "bernoulli"), legacy="bernoulli"),
        "gap": Option(0.05, "train the agent until its batch is within this share of the way "
                      "from the table optimum to a random batch (0: all iterations)",
                      low=0, high=1, legacy=0.0),
        "indifferent": Option("agent", "when the table values every batch alike (its exact "
                              "optimum no better than a random batch): agent (the agent's "
                              "top-B, as otherwise) | random (B candidates drawn at random)",
                              ("agent", "random"), legacy="agent"),
        "pick": Option("mode", "sampler=plackett: the agent's batch: mode (its top-B by score, "
                       "the paper's) | sample (the best by the table of `samples` draws "
                       "from the trained policy)", ("mode", "sample"), legacy="mode"),
        "reward_split": Option(0.2, "eval_set=holdout: share of the initial labeled set held out "
                               "to score variants", low=0, high=1, exclusive=True),
        "candidates": Option(0, "candidates per round (0: min(pool, 8 x budget))", low=0),
        "groups": Option(4, "k-means groups of the candidates", low=1),
        "ladder": Option("1,2,4", "variant sizes per group, as multiples of budget/groups"),
        "variant_epochs": Option(3, "epochs of each variant fine-tune", low=1),
        "iterations": Option(300, "policy iterations per round (a cap when gap > 0)", low=0),
        "agent": Option("lstm", "lstm (RL agent) or greedy (fill by marginal table gain)",
                        ("lstm", "greedy")),
        "carry_agent": Option(False, "keep the agent's weights across rounds"),
        "budget_penalty": Option(-1.0, "sampler=bernoulli: lambda of the batch-size penalty "
                                 "(<0: the table's scale)"),
        "entropy_bonus": Option(0.01, "entropy bonus of the policy loss", low=0),
        "hidden": Option(128, "LSTM hidden size", low=1),
        "samples": Option(16, "sampled batches per policy iteration", low=1),
        "lr": Option(1e-3, "Adam learning rate of the agent", low=0, exclusive=True),
        "prior_rate": Option(True, "start a new agent's output bias at logit(B/M), so that its "
                             "samples hold about B candidates rather than M/2"),
        "unsup_weight": Option(1.0, "weight of the consistency term in variant fine-tunes", low=0),
        "pseudo_threshold": Option(0.5, "score threshold of pseudo-labels (estimator=pseudo, "
                                   "eval_set=pseudo)", low=0, high=1),
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._multipliers = _parse_ladder(self.opts["ladder"])
        if self.opts["pick"] == "sample" and self.opts["sampler"] != "plackett":
            raise ConfigError("mgral: --opt pick=sample picks among the exact-B draws of "
                              f"sampler=plackett, but sampler is {self.opts['sampler']!r}; "
                              "add --opt sampler=plackett or leave pick at mode.")
        self.reward_ids: np.ndarray | None = None
        self._agent_state: dict | None = None
        self._fold_of: dict[int, int] = {}
        self._shadows: list | None = None  # crossfit: the shadows' weights (dicts of tensors)

    @property
    def uses_true_labels(self) -> bool:
        return self.opts["estimator"] == "oracle"

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        """The reward split, the agent (weights and Adam state), and crossfit's folds and
        shadows, as copies."""
        state = {"reward_ids": None if self.reward_ids is None else self.reward_ids.tolist(),
                 "agent": self._agent_state}
        if self.opts["eval_set"] == "crossfit":
            state["fold_of"] = {str(k): v for k, v in self._fold_of.items()}
            state["shadows"] = self._shadows
        return copy.deepcopy(state)

    def load_state_dict(self, state: dict) -> None:
        ids = state.get("reward_ids")
        self.reward_ids = None if ids is None else np.asarray(ids, np.int64)
        self._agent_state = copy.deepcopy(state.get("agent"))
        self._fold_of = {int(k): int(v) for k, v in (state.get("fold_of") or {}).items()}
        self._shadows = copy.deepcopy(state.get("shadows"))

    # ------------------------------------------------------------------ select
    def select(self, ctx: SelectionContext, budget: int) -> Selection:
        b = self.build_table(ctx, budget)
        t1 = time.perf_counter()
        curve: list[float] = []
        indifferent = self.opts["indifferent"] == "random" and _indifferent(b.table, budget)
        with ctx.meter.timed("strategy_train"):  # the agent's training is the strategy's own
            if indifferent:  # every batch is optimal by the table: a random one, not an arbitrary one
                picked = np.sort(ctx.rng.choice(len(b.cand), size=min(budget, len(b.cand)),
                                                replace=False)).astype(np.int64)
                probs = np.full(len(picked), len(picked) / len(b.cand))
            elif self.opts["agent"] == "greedy":
                from strategies.mgral.lut import greedy_select

                picked = np.asarray(greedy_select(b.table, budget, ctx.rng), np.int64)
                probs = np.ones(len(picked))
            else:
                picked, probs, curve = self._run_agent(b.feats, b.table, budget, ctx.rng)
        t_agent = time.perf_counter() - t1
        diagnostics = self._diagnostics(
            b.table, b.gains, b.info, b.plan, picked, curve, b.sizes, b.members, b.group_of,
            budget, b.seed, b.t_lut, t_agent, len(b.cand))
        if self.opts["indifferent"] != "agent":
            diagnostics["indifferent"] = bool(indifferent)
        return Selection(b.cand[picked], np.asarray(probs, np.float64), diagnostics)

    def build_table(self, ctx: SelectionContext, budget: int) -> SimpleNamespace:
        """One round's table without the agent: ``cand``, ``feats``, ``group_of``,
        ``members``, ``sizes``, ``plan``, ``table``, ``gains`` (mean per entry), ``reps``
        (per group [R, n_g]), ``info``, ``seed`` and ``t_lut`` (also the gate's entry)."""
        from strategies.mgral import evalset
        from strategies.mgral.lut import ladder

        o, rng, lab = self.opts, ctx.rng, ctx.lab
        kind = o["eval_set"]
        if kind == "holdout" and self.reward_ids is None:  # drawn once, from the initial set
            n_r = max(1, int(round(o["reward_split"] * len(ctx.labeled))))
            self.reward_ids = np.sort(rng.choice(ctx.labeled, size=n_r, replace=False))
        if kind == "crossfit":
            self._fold_of = evalset.assign_folds(self._fold_of, ctx.labeled, o["folds"], rng)
        m = o["candidates"] or min(len(ctx.unlabeled), 8 * budget)
        m = int(min(len(ctx.unlabeled), max(m, budget)))
        if kind == "pseudo":  # leave at least half of the pool to be scored
            m = int(max(min(budget, len(ctx.unlabeled)), min(m, len(ctx.unlabeled) // 2)))
        cand = np.sort(rng.choice(ctx.unlabeled, size=m, replace=False))
        feats = ctx.model.embeddings(cand).astype(np.float32)
        feats /= np.linalg.norm(feats, axis=1, keepdims=True).clip(1e-12)
        group_of = _kmeans(feats, min(o["groups"], m), int(rng.integers(2**31)))
        n_groups = int(group_of.max()) + 1
        members = [rng.permutation(np.flatnonzero(group_of == g)) for g in range(n_groups)]
        sizes = ladder(budget, n_groups, [len(x) for x in members], self._multipliers)
        if o["shrink"]:  # a rung at the largest batch each group can take
            sizes = [sorted(set(ns) | {min(len(x), budget)}) if len(x) else ns
                     for ns, x in zip(sizes, members)]

        t0 = time.perf_counter()
        seed = int(rng.integers(2**31))
        plan = self._plan(ctx, cand, seed, rng)
        table, gains, info, reps = self._table(lab, plan, cand, members, sizes, group_of, seed)
        t_lut = time.perf_counter() - t0
        info["model_ap50_eval"] = evalset.base_ap50(lab, plan)
        return SimpleNamespace(cand=cand, feats=feats, group_of=group_of, members=members,
                               sizes=sizes, plan=plan, table=table, gains=gains, reps=reps,
                               info=info, seed=seed, t_lut=t_lut)

    def _plan(self, ctx: SelectionContext, cand: np.ndarray, seed: int, rng: np.random.Generator):
        from strategies.mgral import evalset

        o, lab = self.opts, ctx.lab
        if o["eval_set"] == "holdout":
            return evalset.holdout_plan(lab, ctx.labeled, self.reward_ids)
        if o["eval_set"] == "pseudo":
            return evalset.pseudo_plan(lab, ctx.labeled, ctx.unlabeled, cand, o["eval_pool"],
                                       o["pseudo_threshold"], rng)
        from albench.lab import ModelHandle

        bases = None if self._shadows is None else [ModelHandle(s) for s in self._shadows]
        shadows = evalset.train_shadows(lab, self._fold_of, ctx.labeled, o["folds"], bases, seed)
        self._shadows = [dict(h.state) for h in shadows]
        return evalset.crossfit_plan(ctx.labeled, self._fold_of, shadows)

    def _table(self, lab, plan, cand, members, sizes, group_of, seed):
        from strategies.mgral.lut import GainTable
        from strategies.mgral.shrink import shrunk_table
        from strategies.mgral.variants import replicate_gains, variant_jobs

        o = self.opts
        more = np.random.default_rng(seed).integers(2**31, size=o["replicates"] - 1)
        seeds = [seed] + [int(s) for s in more]
        jobs = variant_jobs(plan, cand, members, sizes, mode=ESTIMATOR_JOB[o["estimator"]],
                            recipe=o["recipe"], seeds=seeds, epochs=o["variant_epochs"],
                            lr_scale=o["variant_lr"], stream_cap=o["stream_cap"],
                            weight=o["unsup_weight"], pseudo_threshold=o["pseudo_threshold"])
        reps, base_aps = replicate_gains(lab, plan, jobs, sizes, o["replicates"])
        arr = [np.asarray(ns, np.int64) for ns in sizes]
        info: dict = {"variants": len(jobs), "baseline_ap50s": base_aps}
        if o["shrink"]:
            table, more = shrunk_table(arr, reps, group_of)
            info.update(more)
        else:
            table = GainTable(arr, [r.mean(0) for r in reps], group_of)
        return table, [r.mean(0) for r in reps], info, reps

    def _diagnostics(self, table, gains, info, plan, picked, curve, sizes, members, group_of,
                     budget, seed, t_lut, t_agent, m) -> dict:
        from strategies.mgral.shrink import batch_values

        o, n_groups = self.opts, table.groups
        base_aps = [a for a in info.pop("baseline_ap50s") if a is not None]
        lookup_us = _lookup_microseconds(table, picked)
        t_variant = t_lut / max(1, info["variants"])
        counts = np.bincount(group_of[picked], minlength=n_groups)
        d = {
            "estimator": o["estimator"], "agent": o["agent"], "candidates": int(m),
            "groups": n_groups, "group_sizes": [int(len(x)) for x in members],
            "ladder": [[int(n) for n in ns] for ns in sizes],
            "lut": [[float(v) for v in g] for g in gains],
            "baseline_ap50": float(np.mean(base_aps)) if base_aps else None,
            "t_lut_s": t_lut, "t_agent_s": t_agent, "t_variant_s": t_variant,
            "lookup_us": lookup_us, "lookup_speedup": t_variant / max(lookup_us * 1e-6, 1e-12),
            "iterations": len(curve), "reward_curve": [float(v) for v in curve],
            "estimated_gain": float(table.estimate(picked)),
            "chosen_per_group": [int(c) for c in counts], **info,
        }
        if plan.kind == "holdout":
            d["model_ap50_R"] = d["model_ap50_eval"]
            d["reward_split_size"] = int(len(self.reward_ids))
        d.update({"eval_set": plan.kind, "recipe": o["recipe"], "eval_size": int(len(plan.scored_ids())),
                  "baseline_sd": float(np.std(base_aps, ddof=1)) if len(base_aps) > 1 else None})
        if o["shrink"] or o["sampler"] != "bernoulli" or o["gap"] > 0:
            d.update(batch_values(table, budget, picked, np.random.default_rng([seed, 17])))
        return d

    def _run_agent(self, feats: np.ndarray, table, budget: int, rng: np.random.Generator):
        import torch

        from strategies.mgral.agent import (SamplingAgent, agent_state, load_agent_state,
                                            make_optimizer, select, train_agent)
        from strategies.mgral.sampler import select_best_sample, select_plackett, train_plackett

        o = self.opts
        plackett = o["sampler"] == "plackett"
        gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
        if o["carry_agent"] and self._agent_state is not None:
            agent, optimizer = load_agent_state(self._agent_state, lr=o["lr"])
        else:
            prior = min(0.5, budget / len(feats)) if o["prior_rate"] and not plackett else None
            agent = SamplingAgent(feats.shape[1], hidden=o["hidden"], generator=gen, prior_rate=prior)
            optimizer = make_optimizer(agent, o["lr"])
        order = rng.permutation(len(feats))
        choose = (lambda: select_plackett(agent, feats, order, budget)) if plackett else \
            (lambda: select(agent, feats, order, budget))
        if plackett and o["pick"] == "sample":  # one fixed set of draws: CRN across calls
            noise = torch.rand(o["samples"], len(feats), dtype=torch.float64,
                               generator=torch.Generator().manual_seed(int(rng.integers(2**31))))
            choose = lambda: select_best_sample(agent, feats, order, budget, table, noise)  # noqa: E731
        stop = _gap_stop(table, budget, choose, o["gap"]) if o["gap"] > 0 else None
        common = dict(iterations=o["iterations"], lr=o["lr"], entropy_bonus=o["entropy_bonus"],
                      samples_per_iter=o["samples"], generator=gen, order=order,
                      optimizer=optimizer, stop=stop)
        if plackett:
            out = train_plackett(agent, feats, table, budget, **common)
        else:
            out = train_agent(agent, feats, table, budget, **common,
                              budget_penalty=None if o["budget_penalty"] < 0 else o["budget_penalty"])
        picked, probs = choose()
        self._agent_state = agent_state(agent, optimizer)
        return np.asarray(picked, np.int64), np.asarray(probs, np.float64), list(out["reward_curve"])


def _indifferent(table, budget: int, tol: float = 1e-9) -> bool:
    """True when the table's exact optimum is worth no more than a random batch of the same
    size: a shrunk table whose groups all sit on a straight common curve values every batch
    alike, and the agent's top-B is then arbitrary (often one group), not random."""
    from strategies.mgral.shrink import batch_values

    k = min(budget, table.candidates)
    ref = batch_values(table, budget, np.arange(k), np.random.default_rng(0))
    return ref["optimum_gain"] - ref["random_gain"] <= tol


def _gap_stop(table, budget: int, choose, gap: float, every: int = 10):
    """``stop(it)``: every ``every`` iterations, True once the agent's selection is within
    ``gap`` of the way from the table's exact optimum to a random batch."""
    from strategies.mgral.shrink import batch_values

    rng = np.random.default_rng(0)
    ref = batch_values(table, budget, np.arange(min(budget, table.candidates)), rng)
    span = ref["optimum_gain"] - ref["random_gain"]

    def stop(it: int) -> bool:
        if (it + 1) % every or span <= 1e-12:
            return span <= 1e-12
        picked, _ = choose()
        return (ref["optimum_gain"] - table.estimate(picked)) / span <= gap

    return stop


def _parse_ladder(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in str(text).split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or min(values) <= 0:
        raise ConfigError(f"mgral: --opt ladder takes positive multiples of budget/groups such as "
                          f"1,2,4 (got {text!r}).")
    return values


def _kmeans(feats: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Group labels 0..k'-1 (empty clusters dropped and renumbered)."""
    from sklearn.cluster import KMeans

    if k <= 1 or len(feats) <= k:
        return np.zeros(len(feats), np.int64) if k <= 1 else np.arange(len(feats)) % max(k, 1)
    labels = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(feats.astype(np.float64))
    _, dense = np.unique(labels, return_inverse=True)
    return dense.astype(np.int64)


def _lookup_microseconds(table, picked: np.ndarray, repeats: int = 2000) -> float:
    counts = table.counts_of(picked)
    t0 = time.perf_counter()
    for _ in range(repeats):
        table.lookup(counts)
    return (time.perf_counter() - t0) / repeats * 1e6
