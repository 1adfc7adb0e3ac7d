"""Offline-by-construction set-up for the third-party libraries albench drives.

ultralytics probes the network when it is imported and reaches for a font download
while checking datasets; matplotlib and ultralytics both write settings under the home
folder by default. :func:`configure` points every one of them at a folder albench owns
and must run before ``ultralytics`` is imported, which is why ``albench/__init__.py``
calls it first thing.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

CACHE_ENV = "ALBENCH_CACHE"


def cache_root() -> Path:
    """The folder albench writes its caches to: ``$ALBENCH_CACHE`` or ``./.albench-cache``."""
    return Path(os.environ.get(CACHE_ENV) or ".albench-cache").resolve()


def _place_font(config_dir: Path) -> None:
    """Put a TTF where ultralytics' ``check_font`` looks, so it never downloads one."""
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or spec.origin is None:
        return
    source = Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
    if not source.exists():
        return
    for folder in (config_dir, config_dir / "Ultralytics"):
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("Arial.ttf", "Arial.Unicode.ttf"):
            target = folder / name
            if not target.exists():
                shutil.copyfile(source, target)


def configure() -> None:
    """Set offline mode and private settings folders before ultralytics is imported."""
    root = cache_root()
    yolo_dir = root / "ultralytics"
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "0")
    os.environ.setdefault("YOLO_VERBOSE", "0")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(yolo_dir))
    os.environ.setdefault("MPLCONFIGDIR", str(root / "matplotlib"))
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("TORCH_HOME", str(root / "torch"))
    try:
        _place_font(Path(os.environ["YOLO_CONFIG_DIR"]))
    except OSError:  # a read-only location: ultralytics then simply has no font
        pass
    if "ultralytics" in sys.modules:  # imported before us: settings may not apply
        import warnings

        warnings.warn(
            "ultralytics was imported before albench; its offline settings may not apply. "
            "Import albench first.",
            stacklevel=2,
        )
