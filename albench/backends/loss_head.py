"""LL4AL's loss-prediction module (Yoo & Kweon, 2019), shared by every backend.

Per intermediate feature map: global average pool -> FC(width) -> ReLU; the pieces are
concatenated and a last FC gives one scalar per image, the predicted detection loss.
Trained jointly with the detector by the pairwise margin ranking loss on the detached
per-image detection losses; after ``stop_grad_after`` of the epochs the module's
gradient into the backbone is stopped (the paper's detection setting: 240 of 300).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class LossPredictionHead(nn.Module):
    def __init__(self, in_channels: Sequence[int], width: int = 128) -> None:
        super().__init__()
        self.branches = nn.ModuleList(nn.Sequential(nn.Linear(c, width), nn.ReLU())
                                      for c in in_channels)
        self.out = nn.Linear(width * len(in_channels), 1)

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        pooled = [b(f.mean((2, 3))) for b, f in zip(self.branches, feats)]
        return self.out(torch.cat(pooled, 1)).squeeze(1)


def margin_ranking_loss(pred: torch.Tensor, target: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """LL4AL's pairwise loss: the batch is split into pairs (i, B-1-i); the predicted
    losses must order each pair as the true (detached) losses do, by ``margin``."""
    target = target.detach()
    n = pred.shape[0] // 2 * 2
    if n < 2:
        return pred.sum() * 0.0
    pred, target = pred[:n], target[:n]
    p = pred - pred.flip(0)
    t = target - target.flip(0)
    p, t = p[: n // 2], t[: n // 2]
    sign = 2 * torch.sign(torch.clamp(t, min=0)) - 1
    return torch.clamp(margin - sign * p, min=0).mean()


def head_inputs(feats: Sequence[torch.Tensor], epoch: int, epochs: int,
                stop_grad_after: float = 0.6) -> list[torch.Tensor]:
    """The feature maps the head sees: detached once ``epoch >= stop_grad_after * epochs``."""
    if epoch >= stop_grad_after * epochs:
        return [f.detach() for f in feats]
    return list(feats)
