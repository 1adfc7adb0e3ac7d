"""Sweep files: a YAML mapping of the sweep's fields and run settings (docs/presets.md),
checked field by field before anything runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from albench.errors import ConfigError
from albench.sweep.grid import SETTING_KEYS, SWEEP_KEYS, parse_amount


def read_config(path: str | Path) -> dict[str, Any]:
    """A sweep file (YAML): the sweep's fields and run settings, see docs/presets.md."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"Cannot read the sweep file {path}: {exc}. Give --config a "
                          "readable YAML file.") from None
    if not isinstance(data, dict):
        raise ConfigError(f"The sweep file {path} must hold a mapping "
                          "(strategies: ..., seeds: ...).")

    def check(entry: dict, allowed: tuple[str, ...], where: str) -> dict:
        unknown = sorted(set(entry) - set(allowed))
        if unknown:
            raise ConfigError(f"{where} in {path} has unknown field(s) {', '.join(unknown)}. "
                              f"Known fields: {', '.join(allowed)}.")
        if isinstance(entry.get("deterministic"), bool):  # YAML reads a bare on/off as a bool
            entry["deterministic"] = "on" if entry["deterministic"] else "off"
        for key in ("initial", "budget"):
            if isinstance(entry.get(key), str):
                try:
                    entry[key] = parse_amount(entry[key])
                except ValueError as exc:
                    raise ConfigError(f"{key} in {path}: {exc}.") from None
        return entry

    check(data, SETTING_KEYS + SWEEP_KEYS, "The sweep file")
    settings = data.get("settings") or []
    if not isinstance(settings, list) or not all(isinstance(s, dict) for s in settings):
        raise ConfigError(f"settings in {path} must be a list of mappings (- backend: frcnn ...).")
    data["settings"] = [check(dict(s), SETTING_KEYS, "An entry of settings") for s in settings]
    return data
