"""Exact-B sampling for MGRAL's agent (``sampler=plackett``, the default): Plackett-Luce
over the LSTM's scores, drawn with the Gumbel-top-B trick, trained by REINFORCE.

The policy is the :class:`~strategies.mgral.agent.SamplingAgent` (LSTM over the candidates,
two-layer MLP head); a batch is a set drawn jointly, so the previous-decision input is the
start token at every step (the decision is not sequential). Scores ``s_k`` give a
Plackett-Luce distribution over orderings; a sample is the top B of ``s_k + Gumbel_k``,
which is an exact draw of the first B places, without replacement: every sample holds
exactly B distinct candidates and no size penalty is needed. Its log-probability is
``sum_j [s_{i_j} - logsumexp(s over the candidates not yet drawn)]``. Loss: ``-(R - b) /
scale * log pi(S) - eta * H(softmax(s))``, ``b`` an exponential moving average of the mean
reward (0.9), Adam. Selection (``pick``): ``mode``, the top B by ``s`` (ties: the lower
candidate index), the paper's top-B; or ``sample``, the best by the table of K draws made
with one fixed set of Gumbel noises (:func:`select_best_sample`): one of the policy's own
samples rather than its mode, which a Plackett-Luce policy need not resemble.

Randomness: the Gumbel draws come from the given ``torch.Generator``; the global RNG is
never used, so the same seed gives the same training and the same ids.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch

from strategies.mgral.agent import START, SamplingAgent, _check_inputs, make_optimizer, torch_threads
from strategies.mgral.lut import GainTable


def plackett_scores(agent: SamplingAgent, x: torch.Tensor) -> torch.Tensor:
    """Scores [M] of candidates ``x`` [M, D] (reading order), start token as the decision."""
    prev = torch.full((1, x.shape[0]), START, dtype=torch.long)
    h, _ = agent.lstm(torch.cat([x.unsqueeze(0), agent.decision(prev)], dim=2))
    return agent.head(h).squeeze(-1)[0]


def gumbel_top(scores: torch.Tensor, budget: int, samples: int,
               generator: torch.Generator) -> torch.Tensor:
    """``samples`` Plackett-Luce draws of the first ``budget`` places: indices [K, B] in
    the order drawn."""
    u = torch.rand(samples, scores.shape[0], generator=generator, dtype=torch.float64)
    return _top_of(scores, u, budget)


def _top_of(scores: torch.Tensor, uniforms: torch.Tensor, budget: int) -> torch.Tensor:
    keys = scores.detach().double().unsqueeze(0) - torch.log(-torch.log(uniforms.clamp(1e-300, 1 - 1e-16)))
    return torch.topk(keys, budget, dim=1).indices


def plackett_logp(scores: torch.Tensor, picks: torch.Tensor) -> torch.Tensor:
    """log pi of each ordered draw ``picks`` [K, B] under Plackett-Luce with ``scores`` [M]."""
    top = scores.max().detach()
    e = torch.exp(scores - top)
    chosen = e[picks]                                            # [K, B]
    before = torch.cumsum(chosen, 1) - chosen                    # mass drawn before place j
    rest = (e.sum() - before).clamp_min(1e-30)
    return (scores[picks] - top - torch.log(rest)).sum(1)


def train_plackett(agent: SamplingAgent, feats: np.ndarray, table: GainTable, budget: int, *,
                   iterations: int = 300, lr: float = 1e-3, entropy_bonus: float = 0.01,
                   ema: float = 0.9, samples_per_iter: int = 16, generator: torch.Generator,
                   order: np.ndarray, optimizer: torch.optim.Optimizer | None = None,
                   stop: Callable[[int], bool] | None = None, threads: int | None = 1) -> dict:
    """REINFORCE of the Plackett-Luce policy against ``table`` (see the module docstring);
    ``stop(iteration)`` ends training early. Returns ``reward_curve``, ``iterations``,
    ``scale`` and ``seconds``."""
    x, o = _check_inputs(agent, feats, order)
    m, k = x.shape[0], int(samples_per_iter)
    b = max(1, min(int(budget), m))
    if table.candidates != m:
        raise ValueError(f"the table has {table.candidates} candidates but feats has {m}")
    scale = table.scale()
    opt = optimizer if optimizer is not None else make_optimizer(agent, lr)
    group = torch.from_numpy(table.group_of[o])                  # reading position -> group
    curve: list[float] = []
    baseline = None
    start = time.perf_counter()
    with torch_threads(threads):
        agent.train()
        for it in range(int(iterations)):
            s = plackett_scores(agent, x)
            picks = gumbel_top(s, b, k, generator)
            counts = np.zeros((k, table.groups))
            np.add.at(counts, (np.repeat(np.arange(k), b), group[picks].reshape(-1).numpy()), 1)
            rewards = table.lookup_batch(counts)
            mean = float(rewards.mean())
            baseline = mean if baseline is None else baseline
            adv = torch.as_tensor((rewards - baseline) / scale, dtype=torch.float32)
            p = torch.softmax(s, 0)
            entropy = -(p * torch.log(p.clamp_min(1e-30))).sum()
            loss = -(adv * plackett_logp(s, picks)).mean() - entropy_bonus * entropy
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            baseline = ema * baseline + (1.0 - ema) * mean
            curve.append(mean)
            if stop is not None and stop(it):
                break
        agent.eval()
    return {"reward_curve": curve, "iterations": len(curve), "scale": scale,
            "seconds": time.perf_counter() - start}


@torch.no_grad()
def select_plackett(agent: SamplingAgent, feats: np.ndarray, order: np.ndarray, budget: int,
                    threads: int | None = 1) -> tuple[np.ndarray, np.ndarray]:
    """The top ``min(budget, M)`` candidates by score (ties: the lower candidate index):
    candidate indices, best first, and their scores."""
    x, o = _check_inputs(agent, feats, order)
    with torch_threads(threads):
        s = plackett_scores(agent, x).double().numpy()
    key = np.empty(len(o))
    key[o] = s
    ranked = np.lexsort((np.arange(len(o)), -key))[:max(0, min(int(budget), len(o)))]
    return ranked.astype(np.int64), key[ranked]


@torch.no_grad()
def select_best_sample(agent: SamplingAgent, feats: np.ndarray, order: np.ndarray, budget: int,
                       table: GainTable, uniforms: torch.Tensor,
                       threads: int | None = 1) -> tuple[np.ndarray, np.ndarray]:
    """``pick=sample``: the Plackett-Luce draws that ``uniforms`` [K, M] (reading order)
    make from the policy, each exactly ``min(budget, M)`` distinct candidates, and the one
    the table values most (ties: the first draw). The same uniforms give the same draws for
    the same scores, so the gap stop and the final pick see one function of the policy.
    Returns candidate indices, sorted, and their scores."""
    x, o = _check_inputs(agent, feats, order)
    b = max(0, min(int(budget), len(o)))
    if uniforms.shape != (uniforms.shape[0], len(o)) or uniforms.shape[0] < 1:
        raise ValueError(f"uniforms need shape [K, {len(o)}], got {tuple(uniforms.shape)}")
    with torch_threads(threads):
        s = plackett_scores(agent, x).double()
    if b == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    draws = o[_top_of(s, uniforms, b).numpy()]                   # candidate indices [K, B]
    values = [table.estimate(row) for row in draws]
    best = np.sort(draws[int(np.argmax(values))])
    key = np.empty(len(o))
    key[o] = s.numpy()
    return best.astype(np.int64), key[best]
