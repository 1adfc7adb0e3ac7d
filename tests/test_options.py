"""The one option policy: one declaration, one parser, one boolean vocabulary, bounds and
unknown keys checked the same way for run settings, backend, strategy and dataset options,
and config hashes that stay what the committed results were keyed by."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from albench.backends import available as backends
from albench.config import SETTINGS, RunConfig, flag, resolve
from albench.data import available as datasets
from albench.errors import ConfigError
from albench.options import AMOUNT, Option, check_device, parse_options
from albench.strategy import available as strategies
from albench.strategy import legacy_options

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = sorted((ROOT / "results").rglob("manifest.json"))
NOWHERE = {"dataset": "coco", "dataset_options": {"data_root": "/nonexistent/coco"}}


def families():
    """(flag, owner kwargs for resolve, declared options) of every option family."""
    out = [("run", None, SETTINGS)]
    out += [("--backend-opt", {"backend": n}, i.options) for n, i in backends().items()]
    out += [("--opt", {"strategy": n}, c.options) for n, c in strategies().items()]
    out += [("--dataset-opt", {"dataset": n}, i.options) for n, i in datasets().items()]
    return out


def resolve_one(family: str, owner: dict | None, key: str, value):
    """resolve() with one option set (a run setting, or a key of one option dict)."""
    if family == "run":
        return getattr(resolve("quick", **{key: value}), key)
    where = {"--backend-opt": "backend_options", "--opt": "strategy_options",
             "--dataset-opt": "dataset_options"}[family]
    cfg = resolve("quick", **owner, **{where: {key: value}})
    return getattr(cfg, where)[key]


def label(family: str, key: str) -> str:
    return flag(key) if family == "run" else f"{family} {key}"


# ---------------------------------------------------------------------- hashes
def test_there_are_committed_manifests_to_check():
    assert len(MANIFESTS) >= 40


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(ROOT / "results")))
def test_committed_manifests_keep_their_config_hash_and_run_id(path: Path):
    m = json.loads(path.read_text())
    cfg = RunConfig.from_dict(m["config"])
    assert cfg.config_hash() == m["config_hash"] and cfg.setting_hash() == m["setting_hash"]
    assert cfg.run_id() == m["run_id"] == path.parent.name
    # and resolving the recorded config again (the way a sweep re-plans it) gives the same
    given = {k: v for k, v in m["config"].items() if k != "preset"}
    # options declared after the run was made take their legacy value (what it ran with)
    given["strategy_options"] = {**legacy_options(given["strategy"]), **given["strategy_options"]}
    assert resolve(m["config"]["preset"], **given).config_hash() == m["config_hash"]


def test_defaults_fill_strategy_options_but_not_backend_or_dataset_options():
    cfg = resolve("smoke", strategy="entropy", backend_options={"lr": "0.01"})
    assert dict(cfg.strategy_options) == {"min_score": 0.05, "aggregate": "max"}
    assert dict(cfg.backend_options) == {"epochs": 12, "warm_epochs": 4, "lr": 0.01}
    assert dict(cfg.dataset_options) == {"pool_size": 300, "test_size": 120}


def test_typed_values_are_kept_as_given_and_text_is_parsed_once():
    cfg = resolve("quick", strategy="mgral", strategy_options={"lr": 1, "iterations": "20"},
                  backend_options={"lr": 1, "hflip": "0"})
    assert type(cfg.strategy_options["lr"]) is int and cfg.strategy_options["iterations"] == 20
    assert type(cfg.backend_options["lr"]) is int and type(cfg.backend_options["hflip"]) is float


# ---------------------------------------------------------------------- one parser
@pytest.mark.parametrize("word, value", [(w, True) for w in ("true", "YES", "On", "1")]
                         + [(w, False) for w in ("False", "no", "OFF", "0")])
def test_one_boolean_vocabulary_for_every_family(word: str, value: bool):
    assert resolve_one("--opt", {"strategy": "mgral"}, "carry_agent", word) is value
    assert resolve_one("--backend-opt", {"backend": "yolo"}, "amp", word) is value
    assert resolve_one("--dataset-opt", {"dataset": "coco"}, "keep_empty", word) is value


def test_every_declared_default_round_trips_through_its_text():
    for family, _, declared in families():
        for key, option in declared.items():
            if option.default is not None:
                text = str(option.default).lower() if option.kind is bool else str(option.default)
                assert option.parse(text, label(family, key)) == option.default, (family, key)


@pytest.mark.parametrize("option, text, want", [
    (Option(1, "n"), "12", 12), (Option(0.5, "x"), "1e-3", 0.001), (Option(0.5, "x"), "2", 2.0),
    (Option(None, "n", kind=int), "none", None), (Option(None, "p", kind=str), "NULL", None),
    (Option(None, "p", kind=str), "/a b", "/a b"), (Option("a", "t"), "none", "none"),
    (Option(1, "a", kind=AMOUNT), "5%", 0.05), (Option(1, "a", kind=AMOUNT), "0.05", 0.05),
    (Option(1, "a", kind=AMOUNT), "100", 100), (Option(1, "a", kind=AMOUNT), "1.0", 1.0),
])
def test_text_becomes_the_kind_of_the_option(option: Option, text: str, want):
    got = option.parse(text, "--x")
    assert got == want and type(got) is type(want)


@pytest.mark.parametrize("option, value", [
    (Option(1, "n"), "1.5"), (Option(1, "n"), 2.0), (Option(1, "n"), True), (Option(1, "n"), "none"),
    (Option(0.5, "x"), "half"), (Option(0.5, "x"), False), (Option(True, "b"), "maybe"),
    (Option(True, "b"), 1), (Option("a", "t"), ["a"]), (Option(1, "a", kind=AMOUNT), "150%"),
    (Option(1, "a", kind=AMOUNT), 0), (Option(1, "a", kind=AMOUNT), 5.0),
])
def test_a_value_of_the_wrong_kind_is_refused(option: Option, value):
    with pytest.raises(ConfigError, match=r"--x must be .*, not .*Give it as --x "):
        option.parse(value, "--x")


def test_bad_declarations_fail_when_declared():
    with pytest.raises(TypeError, match="kind"):
        Option(None, "no kind")
    with pytest.raises(ConfigError, match="must be a whole number of at least 1"):
        Option(0, "default below its bound", low=1)
    with pytest.raises(ConfigError, match="one of a, b"):
        Option("c", "default not a choice", ("a", "b"))


# ---------------------------------------------------------------------- bounds and choices
def _outside(option: Option) -> list:
    """Values just outside each bound (the bound itself too where it is open)."""
    out = []
    step = 1 if option.kind is int else 1e-6
    for bound, sign in ((option.low, -1), (option.high, 1)):
        if bound is not None:
            out.append(bound + sign * step)
            if option.exclusive:
                out.append(bound)
    return out


def test_every_bound_and_choice_is_refused_by_resolve_naming_flag_and_range():
    checked = 0
    for family, owner, declared in families():
        for key, option in declared.items():
            bad = _outside(option) + (["not-a-choice"] if option.choices else [])
            for value in bad:
                with pytest.raises(ConfigError) as err:
                    resolve_one(family, owner, key, str(value))
                text = str(err.value)
                assert text.startswith(f"{label(family, key)} must be {option.allowed()}"), text
                assert f"not {str(value)!r}" in text and "Give it as" in text
                checked += 1
            for bound in (option.low, option.high):  # an inclusive bound is a valid value
                if bound is not None and not option.exclusive:
                    assert resolve_one(family, owner, key, str(bound)) == bound
    assert checked > 60


def test_the_declared_bounds_cover_what_the_code_relies_on():
    mgral = strategies()["mgral"].options
    assert (mgral["iterations"].low, mgral["groups"].low, mgral["candidates"].low) == (0, 1, 0)
    split = mgral["reward_split"]
    assert split.exclusive and (split.low, split.high) == (0, 1)
    for name in ("yolo", "frcnn"):
        opts = backends()[name].options
        assert opts["optimizer"].choices == ("sgd", "adamw")
        assert all(opts[k].low == 1 for k in ("epochs", "warm_epochs", "imgsz", "batch", "infer_batch"))


# ---------------------------------------------------------------------- unknown keys
@pytest.mark.parametrize("overrides, phrase", [
    ({"backend_options": {"epoch": "3"}}, "Unknown --backend-opt 'epoch' for backend 'yolo'. "
                                          "Did you mean 'epochs'? Known: amp, batch, conf,"),
    ({"backend": "frcnn", "backend_options": {"ancor_sizes": "8"}}, "Did you mean 'anchor_sizes'?"),
    ({"strategy": "mgral", "strategy_options": {"iteration": "3"}},
     "Unknown --opt 'iteration' for strategy 'mgral'. Did you mean 'iterations'?"),
    ({"dataset_options": {"pool_sise": "3"}}, "Unknown --dataset-opt 'pool_sise' for dataset "
                                              "'shapes'. Did you mean 'pool_size'?"),
    ({"dataset_options": {"data_root": "/x"}}, "or drop --data-root, which 'shapes' does not use"),
    ({"seeed": 3}, "Unknown run setting 'seeed'. Did you mean 'seed'?"),
    ({"backend_options": {"zzz": "1", "bach": "2"}}, "Did you mean 'batch' for 'bach'? Known:"),
])
def test_unknown_keys_suggest_the_near_ones(overrides: dict, phrase: str):
    with pytest.raises(ConfigError) as err:
        resolve("quick", **overrides)
    assert phrase in str(err.value)


def test_parse_options_fills_defaults_in_declared_order_only_when_asked():
    declared = {"b": Option(1, "b"), "a": Option("x", "a")}
    assert parse_options(declared, {"a": "y"}, "--opt") == {"a": "y"}
    assert list(parse_options(declared, {"a": "y"}, "--opt", defaults=True).items()) == [
        ("b", 1), ("a", "y")]


# ---------------------------------------------------------------------- the device
@pytest.mark.parametrize("device", ["tpu", "cuda:x", "CPU", "", 0])
def test_a_device_of_no_known_form_is_refused_by_resolve(device):
    with pytest.raises(ConfigError, match="is not a device albench can train on"):
        resolve("quick", device=device, **NOWHERE)


def test_a_device_this_machine_lacks_is_refused_only_where_it_is_used():
    assert resolve("quick", device="cuda:7").device == "cuda:7"  # a sweep may plan for a GPU
    with pytest.raises(ConfigError, match="cuda:99 was asked for"):
        check_device("cuda:99")
    assert check_device("cpu") == "cpu"
