"""Bit-reproducible runs: the ``--deterministic {auto,on,off}`` setting.

``on`` makes torch use deterministic algorithms only (strict: an op without a
deterministic implementation raises instead of running) and gives cuBLAS the fixed
workspace it needs for that (``CUBLAS_WORKSPACE_CONFIG=:4096:8``, set before CUDA starts).
``off`` leaves torch's defaults. ``auto`` picks per backend and device:

- CPU: nothing to do. The CPU kernels albench uses give the same bits on a rerun with the
  same thread count, so runs are reproducible without strict mode.
- CUDA: what the backend declares in its ``deterministic_on_cuda`` attribute (see
  :class:`~albench.backends.base.Backend`): ``"cheap: <why>"`` turns strict mode on,
  ``"slow: <why>"`` leaves it off and the run is recorded as not bit-reproducible. The
  built-ins: ``yolo`` is cheap (measured on one H100: two smoke runs were bitwise
  identical and training took ~2.8 s per round instead of ~2.1-2.5 s); ``frcnn`` is slow
  (test-split inference went from 1.5 s to ~20 s and a smoke run more than doubled: some
  op falls back to a very slow deterministic kernel, which one is not known yet);
  ``--deterministic on`` forces it.
- a backend that declares nothing, or any other device: ``off`` (its cost is not measured).

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
VERDICTS = {"cheap": True, "slow": False}  # a backend's deterministic_on_cuda -> auto turns it on?


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
    declared = cuda_declaration(backend) if kind == "cuda" else None
    if declared is not None:
        on, why = declared
        return Decision(mode, "on" if on else "off", on, f"{backend} on CUDA: {why}")
    return Decision(mode, "off", False, f"{backend} on {device}: the cost of deterministic "
                                        "mode is not measured, so auto leaves it off")


def cuda_declaration(backend: str) -> tuple[bool, str] | None:
    """What the registered ``backend`` declares about strict mode on CUDA (its
    ``deterministic_on_cuda``): (``auto`` turns it on?, why), or None when it declares
    nothing or is not registered."""
    from albench.backends import BACKENDS

    info = BACKENDS.get(backend)
    declared = str(getattr(info.cls, "deterministic_on_cuda", "") or "") if info else ""
    if not declared:
        return None
    verdict, _, why = declared.partition(":")
    if verdict.strip() not in VERDICTS or not why.strip():
        raise ValueError(f"backend {backend!r} declares deterministic_on_cuda={declared!r}; "
                         f"it must read '<{'|'.join(VERDICTS)}>: <why>' (or be empty: not measured)")
    return VERDICTS[verdict.strip()], why.strip()


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
