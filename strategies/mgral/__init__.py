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

Reconstructed (each an option, default in brackets):
``reward_split`` [0.2] share of the initial labeled set held out as R, the only data
that scores variants (never the test split); ``candidates`` [0: min(pool, 8B)];
``groups`` [8] k-means groups of the L2-normalised embeddings; ``ladder`` ["1,2,4"]
multiples of B/G per group; ``variant_epochs`` [3] epochs of each variant fine-tune (on
the labeled set minus R plus the group's images); ``estimator`` [consistency |
pseudo | oracle (true labels: an upper bound, marked †)]; ``agent`` [lstm | greedy (no
RL: fill by marginal table gain)]; ``iterations`` [300] policy iterations per round;
``carry_agent`` [true] weights kept across rounds; ``budget_penalty`` [-1: the table's
scale]; ``entropy_bonus`` [0.01]; ``hidden`` [128]; ``samples`` [16] trajectories per
policy iteration; ``lr`` [1e-3]; ``prior_rate`` [true: a new agent's output bias starts
at logit(B/M)].
"""

from __future__ import annotations

import copy
import time
from typing import Any

import numpy as np

from albench.errors import ConfigError
from albench.strategy import (FinetuneJob, Option, Selection, SelectionContext, Strategy,
                              register_strategy)

ESTIMATOR_JOB = {"consistency": "consistency", "pseudo": "pseudo", "oracle": "labels"}


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
        "reward_split": Option(0.2, "share of the initial labeled set held out to score variants",
                               low=0, high=1, exclusive=True),
        "candidates": Option(0, "candidates per round (0: min(pool, 8 x budget))", low=0),
        "groups": Option(8, "k-means groups of the candidates", low=1),
        "ladder": Option("1,2,4", "variant sizes per group, as multiples of budget/groups"),
        "variant_epochs": Option(3, "epochs of each variant fine-tune", low=1),
        "iterations": Option(300, "policy iterations per round", low=0),
        "agent": Option("lstm", "lstm (RL agent) or greedy (fill by marginal table gain)",
                        ("lstm", "greedy")),
        "carry_agent": Option(True, "keep the agent's weights across rounds"),
        "budget_penalty": Option(-1.0, "lambda of the batch-size penalty (<0: the table's scale)"),
        "entropy_bonus": Option(0.01, "entropy bonus of the policy loss", low=0),
        "hidden": Option(128, "LSTM hidden size", low=1),
        "samples": Option(16, "sampled batches per policy iteration", low=1),
        "lr": Option(1e-3, "Adam learning rate of the agent", low=0, exclusive=True),
        "prior_rate": Option(True, "start a new agent's output bias at logit(B/M), so that its "
                             "samples hold about B candidates rather than M/2"),
        "unsup_weight": Option(1.0, "weight of the consistency term in variant fine-tunes", low=0),
        "pseudo_threshold": Option(0.5, "score threshold of pseudo-labels (estimator=pseudo)",
                                   low=0, high=1),
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._multipliers = _parse_ladder(self.opts["ladder"])
        self.reward_ids: np.ndarray | None = None
        self._agent_state: dict | None = None

    @property
    def uses_true_labels(self) -> bool:
        return self.opts["estimator"] == "oracle"

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        """The reward split and the agent (weights and Adam state), as copies."""
        return copy.deepcopy({"reward_ids": None if self.reward_ids is None else self.reward_ids.tolist(),
                              "agent": self._agent_state})

    def load_state_dict(self, state: dict) -> None:
        ids = state.get("reward_ids")
        self.reward_ids = None if ids is None else np.asarray(ids, np.int64)
        self._agent_state = copy.deepcopy(state.get("agent"))

    # ------------------------------------------------------------------ select
    def select(self, ctx: SelectionContext, budget: int) -> Selection:
        from strategies.mgral.lut import GainTable, greedy_select, ladder

        o, rng, lab = self.opts, ctx.rng, ctx.lab
        if self.reward_ids is None:  # drawn once, from the round-0 labeled (initial) set
            n_r = max(1, int(round(o["reward_split"] * len(ctx.labeled))))
            self.reward_ids = np.sort(rng.choice(ctx.labeled, size=n_r, replace=False))
        reward = self.reward_ids
        train_ids = np.setdiff1d(ctx.labeled, reward)
        m = o["candidates"] or min(len(ctx.unlabeled), 8 * budget)
        m = int(min(len(ctx.unlabeled), max(m, budget)))
        cand = np.sort(rng.choice(ctx.unlabeled, size=m, replace=False))
        feats = ctx.model.embeddings(cand).astype(np.float32)
        feats /= np.linalg.norm(feats, axis=1, keepdims=True).clip(1e-12)
        group_of = _kmeans(feats, min(o["groups"], m), int(rng.integers(2**31)))
        n_groups = int(group_of.max()) + 1
        members = [rng.permutation(np.flatnonzero(group_of == g)) for g in range(n_groups)]
        sizes = ladder(budget, n_groups, [len(x) for x in members], self._multipliers)

        t0 = time.perf_counter()
        seed = int(rng.integers(2**31))
        base = lab.current()
        mode = ESTIMATOR_JOB[o["estimator"]]
        common = dict(epochs=o["variant_epochs"], seed=seed, base=base,
                      weight=o["unsup_weight"], pseudo_threshold=o["pseudo_threshold"])
        jobs = [FinetuneJob(train_ids, (), unsup="none", tag="baseline", **common)]
        for g, ns in enumerate(sizes):
            jobs += [FinetuneJob(train_ids, cand[members[g][:n]], unsup=mode, tag=f"{g}:{n}", **common)
                     for n in ns]
        models = lab.finetune_many(jobs)
        ap50 = [lab.score(h, reward).ap50 for h in models]
        t_lut = time.perf_counter() - t0
        base_ap = ap50[0]
        gains, k = [], 1
        for ns in sizes:
            gains.append(np.array([a - base_ap for a in ap50[k:k + len(ns)]], np.float64))
            k += len(ns)
        table = GainTable([np.asarray(ns, np.int64) for ns in sizes], gains, group_of)
        model_ap = lab.score(None, reward).ap50

        # the agent
        t1 = time.perf_counter()
        curve: list[float] = []
        with ctx.meter.timed("strategy_train"):  # the agent's training is the strategy's own
            if o["agent"] == "greedy":
                picked = np.asarray(greedy_select(table, budget, rng), np.int64)
                probs = np.ones(len(picked))
            else:
                picked, probs, curve = self._run_agent(feats, table, budget, rng)
        t_agent = time.perf_counter() - t1

        lookup_us = _lookup_microseconds(table, picked)
        t_variant = t_lut / max(1, len(jobs))
        counts = np.bincount(group_of[picked], minlength=n_groups)
        diagnostics = {
            "estimator": o["estimator"], "agent": o["agent"], "candidates": int(m),
            "groups": n_groups, "group_sizes": [int(len(x)) for x in members],
            "ladder": [[int(n) for n in ns] for ns in sizes],
            "lut": [[float(v) for v in g] for g in gains], "baseline_ap50": float(base_ap),
            "model_ap50_R": float(model_ap), "reward_split_size": int(len(reward)),
            "variants": len(jobs), "t_lut_s": t_lut, "t_agent_s": t_agent,
            "t_variant_s": t_variant, "lookup_us": lookup_us,
            "lookup_speedup": t_variant / max(lookup_us * 1e-6, 1e-12),
            "iterations": len(curve), "reward_curve": [float(v) for v in curve],
            "estimated_gain": float(table.estimate(picked)),
            "chosen_per_group": [int(c) for c in counts],
        }
        return Selection(cand[picked], np.asarray(probs, np.float64), diagnostics)

    def _run_agent(self, feats: np.ndarray, table, budget: int, rng: np.random.Generator):
        import torch

        from strategies.mgral.agent import (SamplingAgent, agent_state, load_agent_state,
                                            make_optimizer, select, train_agent)

        o = self.opts
        gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
        if o["carry_agent"] and self._agent_state is not None:
            agent, optimizer = load_agent_state(self._agent_state, lr=o["lr"])
        else:
            prior = min(0.5, budget / len(feats)) if o["prior_rate"] else None
            agent = SamplingAgent(feats.shape[1], hidden=o["hidden"], generator=gen, prior_rate=prior)
            optimizer = make_optimizer(agent, o["lr"])
        order = rng.permutation(len(feats))
        out = train_agent(agent, feats, table, budget, iterations=o["iterations"], lr=o["lr"],
                          budget_penalty=None if o["budget_penalty"] < 0 else o["budget_penalty"],
                          entropy_bonus=o["entropy_bonus"], samples_per_iter=o["samples"],
                          generator=gen, order=order, optimizer=optimizer)
        picked, probs = select(agent, feats, order, budget)
        self._agent_state = agent_state(agent, optimizer)
        return np.asarray(picked, np.int64), np.asarray(probs, np.float64), list(out["reward_curve"])


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
