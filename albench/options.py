"""One option policy: every setting a user can give is declared once as an :class:`Option`.

The four families of settings all use it: run settings (:data:`albench.config.SETTINGS`,
flags such as ``--seed``), backend options (each backend's ``OPTIONS``, ``--backend-opt
KEY=VALUE``), strategy options (each strategy's ``options``, ``--opt KEY=VALUE``) and dataset
options (each loader's ``OPTIONS``, ``--dataset-opt KEY=VALUE``). One parser reads them:

- text becomes the option's kind, taken from its default (``kind=`` when the default is
  None): whole numbers as ``int("12")``, numbers as ``float("0.5")``, booleans from one
  vocabulary, case-insensitive: true/false, yes/no, on/off, 1/0; ``none``/``null`` (or
  nothing) is None where the default is None; an ``AMOUNT`` is a count (``100``) or a share
  of the pool (``0.05`` or ``5%``);
- typed values (from a preset, a YAML sweep file, Python) are checked, not converted (an
  int given for a number stays an int, so config hashes keep what was given); a number
  given for a text option becomes its text;
- bounds (``low``/``high``, inclusive unless ``exclusive``) and ``choices`` are checked with
  one paragraph naming the option, its flag, what it takes and its default;
- an unknown key is one error that suggests the near matches (:func:`difflib.get_close_matches`)
  and lists the known keys.
"""

from __future__ import annotations

import difflib
import numbers
import os
import re
from dataclasses import dataclass
from typing import Any, Mapping

from albench.errors import ConfigError

AMOUNT = "amount"  # the kind of --initial/--budget: a count (int >= 1) or a share in (0, 1]
TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")
NONE_WORDS = ("none", "null", "")
KINDS = (bool, int, float, str, AMOUNT)
NO_LEGACY = type("NoLegacy", (), {"__repr__": lambda self: "NO_LEGACY"})()  # Option.legacy unset
_PLACEHOLDER = {int: "N", float: "X", str: "TEXT", bool: "true", AMOUNT: "N"}


@dataclass(frozen=True)
class Option:
    """A declared option: its default, a help line and what it accepts.

    ``kind`` is the default's type unless given (it must be given for a None default, which
    makes ``none`` a valid value); ``choices`` closes the set of values; ``low``/``high``
    bound numbers (inclusive, or both open with ``exclusive=True``).
    """

    default: Any
    help: str
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    kind: Any = None
    exclusive: bool = False
    default_note: str | None = None  # shown instead of the default (e.g. "the preset's")
    legacy: Any = NO_LEGACY  # the value that reproduces runs made before the option existed

    def __post_init__(self) -> None:
        kind = self.kind if self.kind is not None else (
            None if self.default is None else type(self.default))
        if kind not in KINDS:
            raise TypeError(f"Option {self.help!r}: kind must be one of bool, int, float, str or "
                            f"AMOUNT (give kind= for a None default), not {kind!r}")
        object.__setattr__(self, "kind", kind)
        if self.choices is not None:
            object.__setattr__(self, "choices", tuple(self.choices))
        if self.default is not None:
            self.check(self.default, "the default")

    def is_legacy(self, value: Any) -> bool:
        """True when ``value`` is this option's declared legacy value: the behaviour runs had
        before the option existed, so a config hash leaves it out (see :func:`hashed_values`)."""
        return self.legacy is not NO_LEGACY and type(value) is type(self.legacy) and value == self.legacy

    @property
    def nullable(self) -> bool:
        return self.default is None

    # ------------------------------------------------------------------ parsing
    def parse(self, value: Any, label: str) -> Any:
        """``value`` (text from a flag, or a typed value) as this option's value; ``label``
        (``--seed``, ``--backend-opt epochs``) names it in the error."""
        if not isinstance(value, str):
            return self.check(value, label)
        try:
            return self.check(self.from_text(value, label), label)
        except ConfigError:
            raise self.error(value, label) from None  # name the text as it was given

    def from_text(self, text: str, label: str) -> Any:
        """``text`` read as this option's kind (not yet checked against bounds or choices)."""
        word = text.strip().lower()
        if self.nullable and word in NONE_WORDS:
            return None
        try:
            if self.kind is bool:
                if word not in TRUE_WORDS + FALSE_WORDS:
                    raise ValueError(text)
                return word in TRUE_WORDS
            if self.kind is int:
                return int(text)
            if self.kind is float:
                return float(text)
            if self.kind == AMOUNT:
                text = text.strip()
                if text.endswith("%"):
                    return float(text[:-1]) / 100
                return float(text) if "." in text else int(text)
        except ValueError:
            raise self.error(text, label) from None
        return text

    def check(self, value: Any, label: str) -> Any:
        """A typed value checked against kind, choices and bounds (returned; a number given
        for a text option comes back as its text)."""
        if value is None:
            if self.nullable:
                return None
            raise self.error(value, label)
        real = isinstance(value, numbers.Real) and not isinstance(value, bool)
        whole = real and isinstance(value, numbers.Integral)
        if self.kind is str:
            value = str(value) if real else value
            ok = isinstance(value, (str, os.PathLike))  # a path is kept as given
        elif self.kind == AMOUNT:
            ok = (whole and value >= 1) or (real and not whole and 0 < value <= 1)
        else:
            ok = {bool: isinstance(value, bool), int: whole, float: real}[self.kind]
        if ok and self.choices is not None:
            ok = value in self.choices
        if ok and self.kind in (int, float):
            ok = self._in_bounds(value)
        if not ok:
            raise self.error(value, label)
        return value

    def _in_bounds(self, value: float) -> bool:
        if self.exclusive:
            return ((self.low is None or value > self.low)
                    and (self.high is None or value < self.high))
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    # ------------------------------------------------------------------ text
    def allowed(self) -> str:
        """What the option takes, in words (for errors and ``python -m albench list``)."""
        if self.choices is not None:
            text = "one of " + ", ".join(map(str, self.choices))
        elif self.kind is bool:
            text = "true or false (yes/no, on/off, 1/0)"
        elif self.kind == AMOUNT:
            text = ("a count (a whole number of at least 1) or a share of the pool in (0, 1] "
                    "(0.05 or 5%)")
        elif self.kind is str:
            text = "text"
        else:
            noun, lo, hi = ("a whole number" if self.kind is int else "a number"), self.low, self.high
            if lo is not None and hi is not None:
                text = (f"{noun} in ({lo}, {hi})" if self.exclusive else
                        f"{noun} from {lo} to {hi}" if self.kind is int else f"{noun} in [{lo}, {hi}]")
            elif lo is not None:
                text = f"{noun} {'greater than' if self.exclusive else 'of at least'} {lo}"
            elif hi is not None:
                text = f"{noun} {'less than' if self.exclusive else 'of at most'} {hi}"
            else:
                text = noun
        return text + (", or none" if self.nullable else "")

    def example(self) -> str:
        if self.default is not None:
            return str(self.default).lower() if self.kind is bool else str(self.default)
        if self.choices:
            return str(self.choices[0])
        return str(self.low) if self.low is not None else _PLACEHOLDER[self.kind]

    def default_text(self) -> str:
        return self.default_note or repr(self.default)

    def error(self, value: Any, label: str) -> ConfigError:
        return ConfigError(
            f"{label} must be {self.allowed()}, not {value!r}. Give it as "
            f"{given(label, self.example())} (default {self.default_text()}).")


def given(label: str, value: Any) -> str:
    """How a value is written on the command line: ``--seed 3``, ``--opt lr=0.01``."""
    return f"{label}={value}" if " " in label else f"{label} {value}"


# ---------------------------------------------------------------------- option dicts
def check_keys(given_keys: Any, declared: Mapping[str, Any], flag: str, owner: str | None = None,
               hint: str = "") -> None:
    """Unknown keys are one error suggesting near matches and listing the known keys."""
    unknown = [k for k in given_keys if k not in declared]
    if not unknown:
        return
    close = {k: m[0] for k in unknown if (m := difflib.get_close_matches(str(k), list(declared), 1))}
    text = f"Unknown {flag} {', '.join(map(repr, unknown))}" + (f" for {owner}." if owner else ".")
    if len(unknown) == 1 and close:
        text += f" Did you mean {close[unknown[0]]!r}?"
    elif close:
        text += " Did you mean " + ", ".join(f"{m!r} for {k!r}" for k, m in close.items()) + "?"
    text += f" Known: {', '.join(sorted(declared)) or 'none'}. "
    raise ConfigError(text + (hint or "Fix the key (see `python -m albench list`)."))


def parse_options(declared: Mapping[str, Option], values: Mapping[str, Any], flag: str,
                  owner: str | None = None, *, defaults: bool = False, hint: str = "") -> dict:
    """``values`` (text or typed) parsed against ``declared``; with ``defaults``, every
    declared option is filled in (in declared order), else only the given ones come back."""
    check_keys(values, declared, flag, owner, hint)
    out = {k: declared[k].parse(v, f"{flag} {k}") for k, v in values.items()}
    if defaults:
        out = {k: out[k] if k in out else o.default for k, o in declared.items()}
    return out


def hashed_values(declared: Mapping[str, Option], values: Mapping[str, Any]) -> dict:
    """``values`` without the options set to their declared legacy value: an option added
    later keeps the config hashes (and run ids) of the runs made before it, when given the
    value that reproduces them."""
    return {k: v for k, v in values.items() if not (k in declared and declared[k].is_legacy(v))}


def check_options(declared: Mapping[str, Option], values: Mapping[str, Any], flag: str,
                  owner: str | None = None) -> dict:
    """Already-parsed ``values`` checked (no text parsing) and completed with defaults."""
    check_keys(values, declared, flag, owner)
    return {k: o.check(values[k], f"{flag} {k}") if k in values else o.default
            for k, o in declared.items()}


def parse_kv(pairs: list[str] | None, flag: str) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; a pair without '=' is an error."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"{flag} takes KEY=VALUE, got {pair!r}. Example: {flag} epochs=10.")
        out[key.strip()] = value.strip()
    return out


def coerce(value: Any, like: Any, name: str = "the value") -> Any:
    """Text parsed as the kind of ``like`` (a default) by the one parser; anything that is
    not text, or text for a text default, comes back as it is."""
    if not isinstance(value, str) or isinstance(like, str):
        return value
    kind = str if like is None else type(like)
    if kind not in KINDS:
        return value
    return Option(like, name, kind=kind).parse(value, name)


# ---------------------------------------------------------------------- the device
DEVICE_FORMS = "cpu, cuda, cuda:N (N = 0, 1, ...) or mps"
_DEVICE = re.compile(r"^(cpu|mps|cuda(:\d+)?)$")


def check_device(device: Any, present: bool = True) -> str:
    """``device`` is a form torch knows and, with ``present``, one this machine has."""
    if not isinstance(device, str) or not _DEVICE.match(device):
        raise ConfigError(f"--device {device!r} is not a device albench can train on. Use "
                          f"{DEVICE_FORMS}.")
    if not present or device == "cpu":
        return device
    import torch

    if device.startswith("cuda"):
        n = torch.cuda.device_count()
        if int(device.partition(":")[2] or 0) >= n:
            raise ConfigError(
                f"--device {device} was asked for but torch sees {n} CUDA device(s) on this "
                "machine. Use --device cpu, a CUDA index below the count, or install a CUDA "
                "build of torch on a machine with a GPU.")
    elif not torch.backends.mps.is_available():
        raise ConfigError("--device mps was asked for but torch has no MPS device here. Use "
                          "--device cpu.")
    return device
