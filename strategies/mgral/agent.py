"""MGRAL's sampling agent: an LSTM over the candidates, trained with REINFORCE against a
:class:`~strategies.mgral.lut.GainTable`, and its deterministic selection.

Policy. The candidates are read in a given order. Step k's input is
``x_k = [f_k ; E(a_{k-1})]``: the candidate's (L2-normalised) feature and a learned
embedding of the previous decision (0, 1, or a start token at k = 0). A unidirectional
LSTM gives ``h_k``; a two-layer MLP (Linear-ReLU-Linear) gives the score ``s_k`` and
``p_k = sigmoid(s_k)`` is the probability of selecting candidate k.

Training (:func:`train_agent`). Each policy iteration samples ``samples_per_iter``
trajectories at once as a batch, ``a_k ~ Bernoulli(p_k)``, each sampled decision fed back
into the next step. The sampling pass runs without autograd, stepping the LSTM's own
weights; the log-probabilities and entropies of the sampled decisions are then recomputed
in one teacher-forced pass of the same ``nn.LSTM`` over the whole sequence (all its inputs
are known once the decisions are), which gives the same policy at a fraction of the
autograd cost of a step-by-step graph. Reward of a sample S:
``R = LUT(S) - lambda * | |S| - B | / B``, with ``lambda = budget_penalty`` or, when None,
the table's scale (its largest |gain|, at least 1e-3). Loss:
``mean_i [ -(R_i - b) / scale * sum_k log pi(a_ik) ] - eta * mean_i sum_k H(p_ik)``, where
``b`` is an exponential moving average (``ema``, 0.9) of the iteration's mean reward,
started at the first iteration's mean, and ``scale`` is the table's scale: rewards enter
the gradient in units of the table's scale, so ``entropy_bonus`` means the same whatever
the AP units of the table (our choice; the paper does not say). Adam, lr 1e-3.

Selection (:func:`select`). One deterministic pass with ``a_{k-1} := 1[p_{k-1} > 0.5]``
fed back, then the top-B candidates by ``p_k`` (ties: the lower candidate index).

Randomness: the order is given by the caller; every random draw (initial weights, Bernoulli
draws) comes from the given ``torch.Generator``. The global
RNG is never used, so the same generator seed gives the same training and selection.
Training and selection run with 1 torch thread by default (``threads``): the same result
whatever torch's thread setting, and much faster on shared cores for these small operations.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from strategies.mgral.lut import GainTable

START = 2  # decision-embedding index of the start token (0 and 1 are the decisions)


class SamplingAgent(nn.Module):
    """LSTM policy over candidates. ``feature_dim``: D, the candidates' feature size (fixed
    for a run); ``hidden``: LSTM hidden size; ``decision_dim``: size of the previous
    decision's embedding; ``mlp_hidden``: hidden width of the score MLP (default: hidden).
    The initial weights are drawn from ``generator`` (None: a generator seeded 0); the
    global RNG is never touched. ``prior_rate`` (optional, e.g. B / M): the score's output
    bias starts at ``logit(prior_rate)``, so that a fresh agent's samples hold about
    ``prior_rate * M`` candidates instead of M / 2 (our choice, off by default; the paper
    does not say how the controller is initialised).
    """

    def __init__(self, feature_dim: int, hidden: int = 128, decision_dim: int = 16,
                 mlp_hidden: int | None = None, *, generator: torch.Generator | None = None,
                 prior_rate: float | None = None) -> None:
        super().__init__()
        self.feature_dim, self.hidden = int(feature_dim), int(hidden)
        self.decision_dim = int(decision_dim)
        self.mlp_hidden = int(mlp_hidden or hidden)
        with torch.device("meta"):  # no global-RNG draws: weights come from `generator`
            self.decision = nn.Embedding(3, self.decision_dim)
            self.lstm = nn.LSTM(self.feature_dim + self.decision_dim, self.hidden, batch_first=True)
            self.head = nn.Sequential(nn.Linear(self.hidden, self.mlp_hidden), nn.ReLU(),
                                      nn.Linear(self.mlp_hidden, 1))
        self.to_empty(device="cpu")
        self.reset_parameters(generator if generator is not None else torch.Generator().manual_seed(0))
        if prior_rate is not None:
            if not 0.0 < float(prior_rate) < 1.0:
                raise ValueError(f"prior_rate must lie in (0, 1), got {prior_rate}")
            with torch.no_grad():
                self.head[2].bias.fill_(math.log(prior_rate / (1.0 - prior_rate)))

    def config(self) -> dict:
        return {"feature_dim": self.feature_dim, "hidden": self.hidden,
                "decision_dim": self.decision_dim, "mlp_hidden": self.mlp_hidden}

    def reset_parameters(self, generator: torch.Generator) -> None:
        """Re-draw every weight from ``generator`` (PyTorch's default schemes: uniform
        +-1/sqrt(fan) for the LSTM and linear layers, N(0, 1) for the embedding)."""
        with torch.no_grad():
            self.decision.weight.normal_(generator=generator)
            bound = 1.0 / math.sqrt(self.hidden)
            for p in self.lstm.parameters():
                p.uniform_(-bound, bound, generator=generator)
            for layer in (self.head[0], self.head[2]):
                bound = 1.0 / math.sqrt(layer.in_features)
                layer.weight.uniform_(-bound, bound, generator=generator)
                layer.bias.uniform_(-bound, bound, generator=generator)

    def scores(self, feats: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Teacher-forced scores: ``feats`` [M, D] in reading order, ``actions`` [K, M]
        (0/1, the decisions taken) -> logits ``s`` [K, M] of the policy that took them."""
        k, m = actions.shape
        prev = torch.cat([torch.full((k, 1), START, dtype=torch.long),
                          actions[:, :-1].long()], dim=1)
        x = torch.cat([feats.unsqueeze(0).expand(k, m, -1), self.decision(prev)], dim=2)
        h, _ = self.lstm(x)
        return self.head(h).squeeze(-1)

    @torch.no_grad()
    def rollout(self, feats: torch.Tensor, uniforms: torch.Tensor | None = None,
                samples: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Step the LSTM over ``feats`` [M, D] (reading order) for a batch of trajectories.

        With ``uniforms`` [K, M] (draws in [0, 1)): sampling, ``a_k = 1[u_k < p_k]``, i.e.
        ``a_k ~ Bernoulli(p_k)``. Without: the deterministic pass, ``a_k = 1[p_k > 0.5]``,
        for ``samples`` identical rows. Each decision is fed back into the next step.
        Returns the decisions [K, M] (float 0/1) and the logits [K, M].
        """
        m = feats.shape[0]
        k = uniforms.shape[0] if uniforms is not None else int(samples)
        w_ih, w_hh = self.lstm.weight_ih_l0, self.lstm.weight_hh_l0
        bias = self.lstm.bias_ih_l0 + self.lstm.bias_hh_l0
        d = self.feature_dim
        feat_in = torch.addmm(bias, feats, w_ih[:, :d].T)               # [M, 4H]
        dec_in = self.decision.weight @ w_ih[:, d:].T                   # [3, 4H]
        w_hh_t = w_hh.T.contiguous()
        w1, b1 = self.head[0].weight.T.contiguous(), self.head[0].bias
        w2, b2 = self.head[2].weight[0], self.head[2].bias
        # Threshold on the logit: u < sigmoid(s) <=> s > logit(u); p > 0.5 <=> s > 0.
        thresholds = torch.logit(uniforms.double()).float() if uniforms is not None \
            else torch.zeros(k, m)
        hsz = self.hidden
        h = torch.zeros(k, hsz)
        c = torch.zeros(k, hsz)
        prev = dec_in[START].expand(k, -1)
        actions = torch.empty(k, m)
        logits = torch.empty(k, m)
        for t in range(m):
            gates = torch.addmm(prev + feat_in[t], h, w_hh_t)
            sig = torch.sigmoid(gates)
            c = sig[:, hsz:2 * hsz] * c + sig[:, :hsz] * torch.tanh(gates[:, 2 * hsz:3 * hsz])
            h = sig[:, 3 * hsz:] * torch.tanh(c)
            s = torch.relu(torch.addmm(b1, h, w1)).mv(w2) + b2
            a = s > thresholds[:, t]
            logits[:, t] = s
            actions[:, t] = a
            prev = torch.where(a[:, None], dec_in[1], dec_in[0])
        return actions, logits


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` torch intra-op threads (None: leave the setting)."""
    before = torch.get_num_threads()
    if threads is not None and int(threads) != before:
        torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def make_optimizer(agent: SamplingAgent, lr: float = 1e-3) -> torch.optim.Adam:
    return torch.optim.Adam(agent.parameters(), lr=lr)


def _check_inputs(agent: SamplingAgent, feats: np.ndarray, order: np.ndarray) -> tuple[torch.Tensor,
                                                                                       np.ndarray]:
    f = np.asarray(feats, np.float32)
    if f.ndim != 2 or f.shape[1] != agent.feature_dim:
        raise ValueError(f"feats need shape [M, {agent.feature_dim}], got {f.shape}")
    o = np.asarray(order, np.int64).reshape(-1)
    if len(o) != len(f) or not np.array_equal(np.sort(o), np.arange(len(f))):
        raise ValueError(f"order must be a permutation of 0..{len(f) - 1}")
    return torch.from_numpy(np.ascontiguousarray(f[o])), o


def train_agent(agent: SamplingAgent, feats: np.ndarray, table: GainTable, budget: int, *,
                iterations: int = 300, lr: float = 1e-3, budget_penalty: float | None = None,
                entropy_bonus: float = 0.01, ema: float = 0.9, samples_per_iter: int = 16,
                generator: torch.Generator, order: np.ndarray,
                optimizer: torch.optim.Optimizer | None = None,
                progress: Callable[[int, float], None] | None = None,
                threads: int | None = 1, stop: Callable[[int], bool] | None = None) -> dict:
    """REINFORCE against ``table`` (see the module docstring). ``feats`` [M, D] are the
    candidates' features (row i = candidate i of ``table.group_of``); ``order`` the
    reading order (a permutation of 0..M-1). ``optimizer``: an Adam over ``agent``'s
    parameters to continue (its state carries over rounds); None makes a fresh one with
    ``lr``. ``progress(iteration, mean_reward)`` is called after each iteration.
    ``threads``: torch intra-op threads while training (default 1: the policy's operations
    are small, gain little from more threads and slow down badly when the cores are
    shared; None leaves torch's setting). ``stop(iteration)``, when given, is asked after
    each iteration and ends training when it returns True (``iterations`` is then a cap).

    Returns ``reward_curve`` (mean sampled reward per iteration, in table units),
    ``size_curve`` (mean sampled batch size per iteration), ``final_mean_size``,
    ``final_mean_reward``, ``budget_penalty`` (the lambda used), ``scale``, ``iterations``,
    ``samples_per_iter``, ``seconds`` and ``seconds_per_iteration``.
    """
    x, _ = _check_inputs(agent, feats, order)
    m = x.shape[0]
    if table.candidates != m:
        raise ValueError(f"the table has {table.candidates} candidates but feats has {m}")
    budget, iterations, k = int(budget), int(iterations), int(samples_per_iter)
    if budget < 1 or iterations < 0 or k < 1:
        raise ValueError("train_agent needs budget >= 1, iterations >= 0 and samples_per_iter >= 1")
    scale = table.scale()
    lam = scale if budget_penalty is None else float(budget_penalty)
    opt = optimizer if optimizer is not None else make_optimizer(agent, lr)
    onehot = torch.zeros(m, table.groups, dtype=torch.float64)  # reading position -> group
    onehot[torch.arange(m), torch.from_numpy(table.group_of[np.asarray(order, np.int64)])] = 1.0
    with torch_threads(threads):
        return _reinforce(agent, x, table, budget, onehot, iterations=iterations, lam=lam,
                          scale=scale, entropy_bonus=entropy_bonus, ema=ema, samples=k,
                          generator=generator, optimizer=opt, progress=progress, stop=stop)


def _reinforce(agent: SamplingAgent, x: torch.Tensor, table: GainTable, budget: int,
               onehot: torch.Tensor, *, iterations: int, lam: float, scale: float,
               entropy_bonus: float, ema: float, samples: int, generator: torch.Generator,
               optimizer: torch.optim.Optimizer,
               progress: Callable[[int, float], None] | None,
               stop: Callable[[int], bool] | None = None) -> dict:
    m, k, opt = x.shape[0], samples, optimizer
    baseline = None
    rewards_curve, size_curve = [], []
    start = time.perf_counter()
    agent.train()
    for it in range(iterations):
        uniforms = torch.rand(k, m, generator=generator, dtype=torch.float64)
        actions, _ = agent.rollout(x, uniforms)
        counts = (actions.double() @ onehot).numpy()
        sizes = counts.sum(1)
        rewards = table.lookup_batch(counts) - lam * np.abs(sizes - budget) / budget
        mean = float(rewards.mean())
        if baseline is None:
            baseline = mean
        advantage = torch.as_tensor((rewards - baseline) / scale, dtype=torch.float32)
        logits = agent.scores(x, actions)
        logp = -nn.functional.binary_cross_entropy_with_logits(logits, actions, reduction="none")
        entropy = nn.functional.softplus(logits) - logits * torch.sigmoid(logits)  # H(p_k)
        loss = -(advantage * logp.sum(1)).mean() - entropy_bonus * entropy.sum(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        baseline = ema * baseline + (1.0 - ema) * mean
        rewards_curve.append(mean)
        size_curve.append(float(sizes.mean()))
        if progress is not None:
            progress(it, mean)
        if stop is not None and stop(it):
            break
    seconds = time.perf_counter() - start
    agent.eval()
    iterations = len(rewards_curve)
    return {"reward_curve": rewards_curve, "size_curve": size_curve,
            "final_mean_reward": rewards_curve[-1] if rewards_curve else None,
            "final_mean_size": size_curve[-1] if size_curve else None,
            "budget_penalty": lam, "scale": scale, "iterations": iterations,
            "samples_per_iter": k, "seconds": seconds,
            "seconds_per_iteration": seconds / iterations if iterations else None}


def select(agent: SamplingAgent, feats: np.ndarray, order: np.ndarray,
           budget: int, threads: int | None = 1) -> tuple[np.ndarray, np.ndarray]:
    """One deterministic pass over ``feats[order]`` (``a_{k-1} := 1[p_{k-1} > 0.5]`` fed
    back), then the top ``min(budget, M)`` candidates by ``p_k`` (ties: the lower candidate
    index). Returns candidate indices (rows of ``feats``), best first, and their
    probabilities. ``threads`` as in :func:`train_agent`."""
    x, o = _check_inputs(agent, feats, order)
    with torch_threads(threads):
        _, logits = agent.rollout(x, None, samples=1)
    probs = np.empty(len(o), np.float64)
    probs[o] = torch.sigmoid(logits[0].double()).numpy()
    # Rank by logit (exact; the sigmoid can round distinct logits to the same value).
    key = np.empty(len(o), np.float64)
    key[o] = logits[0].double().numpy()
    ranked = np.lexsort((np.arange(len(o)), -key))[:max(0, min(int(budget), len(o)))]
    return ranked.astype(np.int64), probs[ranked]


def agent_state(agent: SamplingAgent, optimizer: torch.optim.Optimizer | None = None) -> dict:
    """What carries over rounds: the agent's config and weights, and the optimiser's state."""
    return {"config": agent.config(),
            "agent": {k: v.detach().clone() for k, v in agent.state_dict().items()},
            "optimizer": optimizer.state_dict() if optimizer is not None else None}


def load_agent_state(state: dict, lr: float = 1e-3) -> tuple[SamplingAgent, torch.optim.Adam]:
    """Rebuild the agent and its Adam optimiser from :func:`agent_state`'s output (a fresh
    Adam with ``lr`` when no optimiser state was saved)."""
    agent = SamplingAgent(**state["config"])
    agent.load_state_dict(state["agent"])
    optimizer = make_optimizer(agent, lr)
    if state.get("optimizer") is not None:
        optimizer.load_state_dict(state["optimizer"])
    return agent, optimizer
