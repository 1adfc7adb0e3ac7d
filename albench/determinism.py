"""Bit-reproducible runs: the ``--deterministic {auto,on,off}`` setting.

``on`` makes torch use deterministic algorithms only (strict: an op without a
deterministic implementation raises instead of running) and gives cuBLAS the fixed
workspace it needs for that (``CUBLAS_WORKSPACE_CONFIG=:4096:8``, set before CUDA starts).
``off`` leaves torch's defaults. ``auto`` picks per backend and device:

- CPU: nothing to do. The CPU kernels albench uses give the same bits on a rerun with the
  same thread count, so runs are reproducible without strict mode.
- ``yolo`` on CUDA: ``on``. Measured on one H100, two smoke runs were bitwise identical
  (selection fingerprints and AP50) and training took ~2.8 s per round instead of
  ~2.1-2.5 s.
- ``frcnn`` on CUDA: ``off``. With strict mode, test-split inference went from 1.5 s to
  ~20 s and a smoke run more than doubled: some op falls back to a very slow deterministic
  kernel. Which one is not known yet (the torch profiler on a GPU shows it), so ``auto``
  keeps it off and the run is recorded as not bit-reproducible; ``--deterministic on``
  forces it.
- any other backend or device: ``off`` (its cost is not measured).

:func:`apply` is called once when a run is set up, before any CUDA work; the dict it
returns goes into the run manifest under ``determinism``. Reports and the regression check
read :func:`reproducible` back from a manifest.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

from albench.errors import ConfigError

MODES = ("auto", "on", "off")
CUBLAS_VAR = "CUBLAS_WORKSPACE_CONFIG"
CUBLAS_VALUE = ":4096:8"
CUBLAS_OK = (":4096:8", ":16:8")  # the two settings cuBLAS documents as deterministic

# What ``auto`` does on CUDA, per backend: (strict mode on?, why).
CUDA_AUTO: dict[str, tuple[bool, str]] = {
    "yolo": (True, "yolo on CUDA: deterministic kernels cost little (measured ~2.8 s vs "
                   "~2.1-2.5 s of training per smoke round on one H100)"),
    "frcnn": (False, "frcnn on CUDA: deterministic mode is off under auto because an op not "
                     "yet identified falls back to a very slow deterministic kernel (test "
                     "inference 1.5 s -> ~20 s on one H100); runs are not bit-reproducible. "
                     "--deterministic on forces it"),
}


@dataclass(frozen=True)
class Decision:
    """What a run's determinism setting resolved to."""

    requested: str  # auto | on | off
    effective: str  # on (strict deterministic algorithms) | off
    reproducible: bool  # a rerun gives the same bits (same machine, versions, threads)
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ConfigError(f"--deterministic must be one of {', '.join(MODES)}, not {mode!r}. "
                          "auto (the default) is on wherever its cost is small.")
    return mode


def decide(mode: str, backend: str, device: str) -> Decision:
    """Resolve ``mode`` for ``backend`` on ``device`` (no side effects)."""
    check_mode(mode)
    kind = str(device).split(":")[0]
    if kind == "cpu":
        if mode == "on":
            return Decision(mode, "on", True, "asked for; on the CPU runs are reproducible anyway")
        return Decision(mode, "off", True, "CPU kernels are deterministic at a fixed thread "
                                           "count; strict mode is not needed")
    if mode == "on":
        return Decision(mode, "on", True, f"asked for ({backend} on {device})")
    if mode == "off":
        return Decision(mode, "off", False, f"asked off: {backend} on {device} may differ "
                                            "between reruns")
    if kind == "cuda" and backend in CUDA_AUTO:
        on, why = CUDA_AUTO[backend]
        return Decision(mode, "on" if on else "off", on, why)
    return Decision(mode, "off", False, f"{backend} on {device}: the cost of deterministic "
                                        "mode is not measured, so auto leaves it off")


def apply(cfg: Any) -> dict[str, Any]:
    """Set torch's determinism for the run ``cfg`` (a RunConfig); the manifest's record.

    Call once at set-up, before the run touches CUDA. Each call sets the process-wide
    state for its own run, so runs one after another in one process do not leak into each
    other (only the cuBLAS variable, harmless when off, stays set).
    """
    import torch

    decision = decide(getattr(cfg, "deterministic", "auto"), cfg.backend, cfg.device)
    record = decision.as_dict()
    on = decision.effective == "on"
    if on and str(cfg.device).startswith("cuda"):
        if os.environ.get(CUBLAS_VAR) not in CUBLAS_OK:
            if torch.cuda.is_initialized():
                raise ConfigError(
                    f"--deterministic on needs {CUBLAS_VAR}={CUBLAS_VALUE} before CUDA starts, "
                    "but CUDA was already started in this process. Set it in the environment "
                    f"({CUBLAS_VAR}={CUBLAS_VALUE} python -m albench ...) or start the run in "
                    "a fresh process.")
            os.environ[CUBLAS_VAR] = CUBLAS_VALUE
        record[CUBLAS_VAR] = os.environ[CUBLAS_VAR]
    torch.use_deterministic_algorithms(on, warn_only=False)
    if on:
        torch.backends.cudnn.benchmark = False  # the same convolution algorithm every run
    return record


def reproducible(manifest: dict) -> bool:
    """Whether the run a manifest describes is bit-reproducible.

    Runs recorded before the setting existed count as reproducible on the CPU and not on
    any other device.
    """
    record = manifest.get("determinism")
    if isinstance(record, dict) and "reproducible" in record:
        return bool(record["reproducible"])
    device = str((manifest.get("config") or {}).get("device") or "cpu")
    return device.split(":")[0] == "cpu"


def not_reproducible(run_dirs: Iterable[Path]) -> list[str]:
    """Names of the run folders whose manifest says they are not bit-reproducible."""
    import json

    out = []
    for folder in run_dirs:
        try:
            manifest = json.loads((Path(folder) / "manifest.json").read_text())
        except (OSError, ValueError):
            continue
        if isinstance(manifest, dict) and not reproducible(manifest):
            out.append(Path(folder).name)
    return out
