"""The grid of a sweep: seeds, strategies, per-strategy options and run settings expanded
into resolved :class:`~albench.config.RunConfig` s (:func:`expand_grid`)."""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from albench.config import PRESETS, RunConfig, parse_kv, resolve
from albench.errors import ConfigError
from albench.strategy import available as strategy_classes

SETTING_KEYS = ("preset", "dataset", "backend", "initial", "budget", "rounds", "train_mode",
                "pool_subsample", "device", "eval_engine", "deterministic", "dataset_options",
                "backend_options")
SWEEP_KEYS = ("strategies", "seeds", "strategy_options", "settings", "out", "executor",
              "workers", "ray_address", "gpu_mem_per_run", "gpus_per_run")
_DICT_KEYS = ("dataset_options", "backend_options")


def parse_amount(text: str) -> int | float:
    """``100`` -> 100 images; ``5%`` or ``0.05`` -> a share of the pool. ValueError otherwise."""
    try:
        if text.endswith("%"):
            return float(text[:-1]) / 100
        return float(text) if "." in text else int(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither a count nor a share such as 5%") from None


def parse_seeds(spec: str | int | Sequence[int]) -> list[int]:
    """``"0-4"`` -> [0..4]; ``"0,2,5"`` -> [0, 2, 5]; ranges and lists mix (``"0-2,7"``)."""
    if isinstance(spec, int):
        return [spec]
    if not isinstance(spec, str):
        return list(dict.fromkeys(int(s) for s in spec))
    seeds: list[int] = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        low, dash, high = part.partition("-")
        if not low.strip().isdigit() or (dash and not high.strip().isdigit()):
            raise ConfigError(f"Seeds {spec!r} are not seeds: give whole numbers of at least 0 "
                              "as a range 0-4, a list 0,2,5 or a mix such as 0-2,7.")
        lo, hi = (int(low), int(high)) if dash else (int(low), int(low))
        if hi < lo:
            raise ConfigError(f"The seed range {part!r} is reversed: write it low to high, "
                              f"as {hi}-{lo}.")
        seeds.extend(range(lo, hi + 1))
    if not seeds:
        raise ConfigError("No seeds given: pass --seeds 0-4 (or leave it out for the preset's).")
    return list(dict.fromkeys(seeds))


def parse_strategies(spec: str | Sequence[str]) -> list[str]:
    """A comma list (or sequence) of registered names, or ``all``."""
    names = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    names = [n for n in names if n]
    if names == ["all"]:
        return list(strategy_classes())
    if not names:
        raise ConfigError("No strategies given: pass --strategies random,entropy (or all).")
    known = strategy_classes()
    for name in names:
        if name not in known:
            raise ConfigError(f"Unknown strategy {name!r}. Known strategies: "
                              f"{', '.join(known)}. Pass them with --strategies "
                              "(a comma list, or all; see `python -m albench list`).")
    return list(dict.fromkeys(names))


def parse_opts(pairs: Iterable[str] | None) -> dict[str, dict[str, str]]:
    """``["entropy:aggregate=max"]`` -> ``{"entropy": {"aggregate": "max"}}``."""
    out: dict[str, dict[str, str]] = {}
    for pair in pairs or []:
        strategy, sep, rest = pair.partition(":")
        if not sep or not strategy or "=" not in rest:
            raise ConfigError(f"--opt takes STRATEGY:KEY=VALUE in a sweep, got {pair!r}. "
                              "Example: --opt entropy:aggregate=max.")
        out.setdefault(strategy.strip(), {}).update(parse_kv([rest], "--opt"))
    return out


def merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``; None means not given; option dicts merge key by key."""
    out = dict(base)
    for key, value in top.items():
        if value is None:
            continue
        out[key] = {**out.get(key, {}), **value} if key in _DICT_KEYS else value
    return out


def _check_option_names(strategy_options: Mapping[str, Mapping[str, Any]],
                        names: list[str]) -> None:
    for name in strategy_options:
        if name not in names:
            raise ConfigError(f"Options are given for strategy {name!r}, which is not in the "
                              f"sweep ({', '.join(names)}): add it to the strategies or drop "
                              "its options.")


def expand_grid(strategies: str | Sequence[str], seeds: str | Sequence[int] | None = None,
                preset: str | None = None, settings: Sequence[Mapping[str, Any]] | None = None,
                strategy_options: Mapping[str, Mapping[str, Any]] | None = None,
                **overrides: Any) -> list[RunConfig]:
    """Every (setting, seed, strategy) as a resolved :class:`RunConfig`, duplicates dropped.

    ``overrides`` are run settings (as for :func:`albench.config.resolve`) shared by all
    settings; each entry of ``settings`` overrides them (it may name its own ``preset``).
    ``seeds=None`` takes each preset's seed count (0 .. n-1).
    """
    names = parse_strategies(strategies)
    options = dict(strategy_options or {})
    _check_option_names(options, names)
    grid: dict[str, RunConfig] = {}
    for setting in settings or [{}]:
        params = merge(overrides, setting)
        name = params.pop("preset", None) or preset or "quick"
        if name not in PRESETS:
            resolve(name)  # the unknown-preset error
        for seed in parse_seeds(seeds) if seeds is not None else range(PRESETS[name].seeds):
            for strategy in names:
                cfg = resolve(name, strategy=strategy, seed=seed,
                              strategy_options=dict(options.get(strategy, {})), **params)
                grid.setdefault(cfg.run_id(), cfg)
    return list(grid.values())
