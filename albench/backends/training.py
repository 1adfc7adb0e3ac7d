"""The plain training loop both backends share: a function that trains, nothing more.

``train(model, ids, step, ...)`` shuffles ``ids`` with a seeded generator, calls
``step(batch_ids, rng, epoch) -> loss`` per mini-batch, and handles the optimiser, warm-up,
cosine decay and gradient clipping. Loss terms of the labeled batch live in the backend's
``step``; a term on other data (the semi-supervised terms of :mod:`albench.backends.semi`)
comes in through the ``extra(it, total) -> loss`` hook, added to every step's loss.
"""

from __future__ import annotations

import math
import time
from typing import Callable, Sequence

import numpy as np
import torch

from albench.backends.base import FitReport


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """No weight decay on biases and norm weights (1-d parameters)."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def warmup_cosine(total: int, warmup: int, final: float = 0.05) -> Callable[[int], float]:
    def factor(it: int) -> float:
        if it < warmup:
            return (it + 1) / warmup
        progress = (it - warmup) / max(1, total - warmup)
        return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return factor


def train(model: torch.nn.Module, ids: Sequence[int],
          step: Callable[[list[int], np.random.Generator, int], torch.Tensor], *,
          epochs: int, batch_size: int, lr: float, weight_decay: float, seed: int,
          optimizer: str = "adamw", warmup_iters: int = 50, clip: float = 10.0,
          progress: Callable[[int, int, float], None] | None = None,
          after_step: Callable[[int, int], None] | None = None,
          extra: Callable[[int, int], torch.Tensor] | None = None,
          amp: bool = False) -> FitReport:
    """Train ``model`` for ``epochs`` over ``ids``; ``progress(epoch, epochs, loss)``.

    ``extra(it, total)``, when given, returns a loss term added to iteration ``it``'s loss
    (its seconds are reported as ``FitReport.extra_seconds``). ``amp``: the forward passes
    and losses run under bf16 autocast (:func:`autocast`); backward and the optimiser step
    stay in float32.
    """
    rng = np.random.default_rng(seed)
    ids = list(ids)
    batch_size = max(1, min(batch_size, len(ids)))
    per_epoch = math.ceil(len(ids) / batch_size)
    total = per_epoch * epochs
    groups = param_groups(model, weight_decay)
    opt = (torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999)) if optimizer == "adamw"
           else torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(total, min(warmup_iters, total // 3 + 1)))
    model.train()
    t0, it, losses, extra_s = time.perf_counter(), 0, [], 0.0
    for epoch in range(epochs):
        order = rng.permutation(len(ids))
        running = 0.0
        for b in range(per_epoch):
            batch = [ids[i] for i in order[b * batch_size:(b + 1) * batch_size]]
            with autocast(model, amp):
                loss = step(batch, rng, epoch)
                if extra is not None:
                    t_extra = time.perf_counter()
                    loss = loss + extra(it, total)
                    extra_s += time.perf_counter() - t_extra
            loss = loss.float()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            sched.step()
            running += float(loss.detach())
            it += 1
            if after_step is not None:
                after_step(epoch, it)
        losses.append(running / per_epoch)
        if progress is not None:
            progress(epoch + 1, epochs, losses[-1])
    return FitReport(epochs=epochs, iterations=it, seconds=time.perf_counter() - t0,
                     losses=losses, extra_seconds=extra_s)


def autocast(model: torch.nn.Module, enabled: bool):
    """bf16 mixed precision on the model's device when ``enabled`` (the ``amp`` backend
    option); a no-op context otherwise. Outputs that leave the model are cast back to
    float32 by the backends before NMS, probabilities or numpy."""
    device = next(model.parameters()).device.type
    return torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bool(enabled))


def letterbox(image: np.ndarray, size: int) -> tuple[torch.Tensor, float, float, float]:
    """Resize keeping aspect ratio and pad to ``size`` x ``size`` (value 114).

    Returns the uint8 CHW tensor, the scale, and the x and y padding in pixels.
    """
    h, w = image.shape[:2]
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    t = torch.from_numpy(np.array(image, dtype=np.uint8, copy=True)).permute(2, 0, 1)
    if (nh, nw) != (h, w):
        t = torch.nn.functional.interpolate(t[None].float(), size=(nh, nw), mode="bilinear",
                                            align_corners=False)[0].round().clamp(0, 255).byte()
    px, py = (size - nw) / 2, (size - nh) / 2
    out = torch.full((3, size, size), 114, dtype=torch.uint8)
    out[:, int(py):int(py) + nh, int(px):int(px) + nw] = t
    return out, scale, float(int(px)), float(int(py))


def resolve_device(device: str) -> torch.device:
    from albench.errors import ConfigError

    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"--device {device} was asked for but torch sees no CUDA device on this machine. "
            "Use --device cpu, or install a CUDA build of torch on a machine with a GPU."
        )
    return dev
