"""albench: a benchmark suite for active learning in object detection."""

from albench import _offline

_offline.configure()

__version__ = "0.1.0"
