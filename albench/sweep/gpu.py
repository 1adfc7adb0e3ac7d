"""Runs sharing a GPU: the free memory of a CUDA device, and a clear error before anything
runs when the runs that would share it do not fit (:func:`check_gpu_fit`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from albench.config import RunConfig
from albench.errors import ConfigError

# GPU memory one run is assumed to take (MB) when several share a GPU: an estimate, not a
# measurement of every recipe. A quick-preset yolo run peaked at 116 MB of tensors on an
# H100; each worker process also holds its own CUDA context (some hundreds of MB) and the
# caching allocator keeps freed blocks. Paper recipes need far more: measure yours
# (scripts/protocol-cost, the peak GPU MB column of rounds.csv) and pass --gpu-mem-per-run.
GPU_MEM_PER_RUN_MB = 1024


@dataclass(frozen=True)
class GpuMemory:
    name: str
    free_mb: float
    total_mb: float


def _gpu(device: str) -> str | None:
    """``cuda`` -> ``cuda:0``; None for a device that is not CUDA."""
    kind, _, index = str(device).partition(":")
    return f"cuda:{index or 0}" if kind == "cuda" else None


_QUERY = """import json, sys, torch
if not torch.cuda.is_available():
    print(json.dumps({"count": 0})); sys.exit()
i, n = int(sys.argv[1]), torch.cuda.device_count()
if i >= n:
    print(json.dumps({"count": n})); sys.exit()
free, total = torch.cuda.mem_get_info(i)
print(json.dumps({"count": n, "name": torch.cuda.get_device_name(i),
                  "free": free / 2**20, "total": total / 2**20}))
"""


def gpu_memory(device: str) -> GpuMemory:
    """Free and total memory of a CUDA device, asked in a child process so that this one
    does not start CUDA (runs set up their determinism before CUDA starts)."""
    import json
    import subprocess
    import sys

    index = int(device.partition(":")[2] or 0)
    try:
        proc = subprocess.run([sys.executable, "-c", _QUERY, str(index)], capture_output=True,
                              text=True, timeout=300)
        info = json.loads(proc.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        raise ConfigError(f"Could not ask torch for the memory of {device} (a child python "
                          "process failed). Check that `python -c 'import torch; "
                          "print(torch.cuda.mem_get_info())'` works, or use --device cpu.") from None
    if not info["count"]:
        raise ConfigError(f"--device {device} was asked for but torch sees no CUDA device on this "
                          "machine. Use --device cpu, or install a CUDA build of torch on a "
                          "machine with a GPU.")
    if "free" not in info:
        raise ConfigError(f"--device {device} does not exist: torch sees {info['count']} CUDA "
                          f"device(s), cuda:0 .. cuda:{info['count'] - 1}. Pick one of them.")
    return GpuMemory(info["name"], info["free"], info["total"])


def check_gpus_per_run(value: float) -> float:
    if not 0 < value <= 1:
        raise ConfigError(f"--gpus-per-run must be in (0, 1], not {value}: the share of one GPU "
                          "a Ray task asks for (0.25 lets four runs share a GPU).")
    return float(value)


def runs_at_once(executor: str, workers: int, gpus_per_run: float, runs: int) -> int:
    """How many of ``runs`` runs can be on one GPU at the same time."""
    if executor == "ray":
        return min(runs, workers, int(1 / gpus_per_run + 1e-9))
    return min(runs, workers)


def check_gpu_fit(configs: Sequence[RunConfig], executor: str = "local", workers: int = 1,
                  mem_per_run_mb: float | None = None, gpus_per_run: float = 1.0,
                  query: Callable[[str], GpuMemory] = gpu_memory) -> None:
    """A clear error, before anything runs, when the runs that would share a GPU do not fit
    in its free memory at ``mem_per_run_mb`` each (default :data:`GPU_MEM_PER_RUN_MB`)."""
    check_gpus_per_run(gpus_per_run)
    mem = GPU_MEM_PER_RUN_MB if mem_per_run_mb is None else float(mem_per_run_mb)
    if mem <= 0:
        raise ConfigError(f"--gpu-mem-per-run must be a positive number of MB, not {mem_per_run_mb}.")
    per_device: dict[str, int] = {}
    for cfg in configs:
        device = _gpu(cfg.device)
        if device:
            per_device[device] = per_device.get(device, 0) + 1
    for device, runs in sorted(per_device.items()):
        gpu = query(device)
        at_once = runs_at_once(executor, workers, gpus_per_run, runs)
        need = at_once * mem
        if need <= gpu.free_mb:
            continue
        fit = int(gpu.free_mb // mem)
        how = (f"ask Ray for --gpus-per-run {1 / fit:.3g} or more" if executor == "ray"
               else f"use --workers {fit}") if fit else "free some GPU memory"
        raise ConfigError(
            f"{at_once} runs at once on {device} need about {at_once} x {mem:,.0f} MB = "
            f"{need:,.0f} MB of GPU memory (--gpu-mem-per-run, an estimate per run), but "
            f"{gpu.name} has {gpu.free_mb:,.0f} MB free of {gpu.total_mb:,.0f} MB, room for "
            f"{fit}. To fix it, {how}, or, if your runs need less (see the peak_gpu_mb "
            "column of rounds.csv or scripts/protocol-cost), pass a smaller --gpu-mem-per-run.")
