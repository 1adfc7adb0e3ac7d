"""Local pretrained weights: a file's digest, the architecture an ultralytics checkpoint
declares, and loading what transfers into a model, with the count of what did.

Nothing here downloads anything: a user passes a local file (``--backend-opt
weights=PATH``). A file is accepted as a bare state_dict, a module, or a checkpoint dict
holding one under ``ema``, ``model`` or ``state_dict`` (the ultralytics and torchvision
forms). Every tensor whose name and shape match the model is loaded; the rest are left at
their random initialisation. A file from which less than :data:`MIN_TRANSFER` of the model's
tensors transfer is refused: that is an architecture mismatch, not a pretrained model.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from albench.errors import ConfigError

MIN_TRANSFER = 0.5  # share of the model's tensors that must come from the file

_DIGESTS: dict[tuple[str, int, int], str] = {}


@dataclass(frozen=True)
class Transfer:
    """What one weights file gave a model."""

    option: str  # the backend option that named the file (weights, weights_backbone)
    path: str
    sha256: str
    transferred: int  # model tensors loaded from the file
    total: int  # tensors of the model
    file_tensors: int  # tensors in the file
    architecture: str | None = None  # as the checkpoint declares it (ultralytics), if it does

    @property
    def share(self) -> float:
        return self.transferred / max(1, self.total)

    def describe(self) -> str:
        arch = f", a {self.architecture} checkpoint" if self.architecture else ""
        return (f"{self.option}: {self.transferred} of {self.total} model tensors "
                f"({self.share:.0%}) transferred from {self.path}{arch} "
                f"(sha256 {self.sha256[:12]}…); the rest start from random initialisation")

    def as_dict(self) -> dict:
        return asdict(self)


def sha256_file(path: Path | str) -> str:
    """The file's sha256 (hex), computed once per path, size and modification time."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with p.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


def require_file(path: Path | str, option: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{option} file {path} does not exist. Pass a local file with "
                          f"--backend-opt {option}=PATH; albench never downloads weights.")
    return p


def _read(path: Path, option: str) -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a truncated or foreign file: one paragraph, not a traceback
        raise ConfigError(f"{option} file {path} is not a torch checkpoint torch can read "
                          f"({type(exc).__name__}: {str(exc)[:160]}). Pass a .pt file holding a "
                          "state_dict or an ultralytics/torchvision checkpoint.") from None


def _inner(blob: object) -> object:
    for key in ("ema", "model", "state_dict"):
        if isinstance(blob, dict) and blob.get(key) is not None:
            return blob[key]
    return blob


def checkpoint_architecture(path: Path | str, option: str = "weights") -> tuple[str, str, str] | None:
    """``(family, scale, name)`` of an ultralytics checkpoint, read from the ``yaml_file``
    its model records (``yolo11n-pose.yaml`` -> ``("yolo11", "n", "yolo11n")``;
    ``yolov10n.yaml`` -> ``("yolov10", "n", "yolov10n")``), or None for a file that does not
    say. The task suffix (-pose, -seg, -obb) is dropped: the backbone, neck and box head of
    such a model are a detector's."""
    inner = _inner(_read(require_file(path, option), option))
    yaml = getattr(inner, "yaml", None)
    if not isinstance(yaml, dict):
        return None
    name = Path(str(yaml.get("yaml_file") or "")).stem
    m = re.fullmatch(r"(yolo(?:v)?\d+)([nsmlxbt])?(?:-[a-z0-9]+)?", name)
    scale = (yaml.get("scale") or m.group(2)) if m else None
    if not m or not scale:
        return None
    return m.group(1), scale, m.group(1) + scale


def load_weights_file(module: torch.nn.Module, path: Path | str, option: str = "weights",
                      *, configured: str = "", min_share: float = MIN_TRANSFER) -> Transfer:
    """Load every tensor of the local file ``path`` whose name and shape match ``module``
    and return the count. Refuses (:class:`ConfigError`) a missing or unreadable file and
    one from which less than ``min_share`` of the module's tensors transfer; ``configured``
    names the model the options built, for that message."""
    p = require_file(path, option)
    inner = _inner(_read(p, option))
    yaml = getattr(inner, "yaml", None)
    arch = Path(str(yaml.get("yaml_file"))).stem if isinstance(yaml, dict) and yaml.get("yaml_file") else None
    if isinstance(inner, torch.nn.Module):
        inner = inner.float().state_dict()
    if not isinstance(inner, dict):
        raise ConfigError(f"{option} file {path} holds a {type(inner).__name__}, not weights. "
                          "Pass a state_dict or an ultralytics/torchvision checkpoint.")
    own = module.state_dict()
    match = {k: v for k, v in inner.items()
             if k in own and hasattr(v, "shape") and tuple(v.shape) == tuple(own[k].shape)}
    report = Transfer(option, str(path), sha256_file(p), len(match), len(own), len(inner), arch)
    if report.share < min_share:
        made = f" (the options built {configured})" if configured else ""
        declared = f"; the file is a {arch} checkpoint" if arch else ""
        raise ConfigError(
            f"Only {report.transferred} of the model's {report.total} tensors "
            f"({report.share:.0%}) transfer from {option} file {path}{declared}: its "
            f"architecture does not match the configured model{made}. Leave the architecture "
            "options out to read them from an ultralytics checkpoint, or give ones that match "
            f"the file (less than {min_share:.0%} transferring is refused, as it would train "
            "a mostly random model while the run records a pretrained one).")
    module.load_state_dict(match, strict=False)
    return report
