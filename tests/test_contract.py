"""The strategy contract (albench.strategy): the registry, discovery of the built-in package
by name, and strategies from other distributions through the ``albench.strategies``
entry-point group, real packages with real ``*.dist-info`` metadata on ``sys.path``."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import albench.strategy as contract
from albench.config import resolve
from albench.errors import ConfigError
from albench.strategy import (ENTRY_POINT_GROUP, Meter, ModelView, SelectionContext, Strategy,
                              available, build_strategy, get_strategy, register_strategy,
                              strategy_options)

LOWEST = '''
from albench.options import Option
from albench.strategy import Selection, Strategy


class Lowest(Strategy):
    name = "ext-lowest"
    description = "The lowest unlabeled ids after skipping some (from another package)."
    options = {"skip": Option(0, "unlabeled ids passed over first", low=0)}

    def select(self, ctx, budget):
        ids = ctx.unlabeled[self.opts["skip"]:][:budget]
        return Selection(ids, -ids.astype(float))
'''


@pytest.fixture
def registry(monkeypatch):
    """The real registry with the built-ins, restored afterwards; discovery runs again."""
    contract.discover()
    monkeypatch.setattr(contract, "STRATEGIES", dict(contract.STRATEGIES))
    monkeypatch.setattr(contract, "_ORIGIN", dict(contract._ORIGIN))
    monkeypatch.setattr(contract, "_discovered", False)
    before = set(sys.modules)
    yield contract
    for name in set(sys.modules) - before:
        if name.startswith("ext"):
            del sys.modules[name]


def install(root: Path, dist: str, modules: dict[str, str], entry_points: dict[str, str],
            monkeypatch) -> None:
    """An installed distribution: its modules, and ``<dist>-0.1.dist-info`` with METADATA and
    entry_points.txt, in a folder put on sys.path (what ``pip install`` leaves behind)."""
    root.mkdir(parents=True, exist_ok=True)
    for name, text in modules.items():
        (root / f"{name}.py").write_text(textwrap.dedent(text))
    info = root / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{lines}")
    monkeypatch.syspath_prepend(str(root))


class _Nothing:
    """A backend with nothing to offer: the external strategy reads only ids."""

    num_classes, capabilities, features = 1, frozenset(), frozenset()


def context(unlabeled, labeled) -> SelectionContext:
    meter = Meter()
    return SelectionContext(np.asarray(unlabeled, np.int64), np.asarray(labeled, np.int64), 0,
                            np.random.default_rng(0), ModelView(_Nothing(), meter), meter)


def test_the_built_ins_come_from_the_package_named_strategies(registry):
    names = available()
    assert {"random", "entropy", "coreset", "ll4al", "mgral"} <= set(names)
    assert all(cls.__module__.startswith("strategies.") for cls in names.values())
    with pytest.raises(ConfigError, match="Unknown strategy 'nope'. Known strategies: coreset"):
        get_strategy("nope")


def test_a_strategy_of_another_distribution_is_listed_resolved_and_selects(registry, tmp_path,
                                                                          monkeypatch):
    install(tmp_path / "site", "extlowest", {"extlowest": LOWEST},
            {"ext-lowest": "extlowest:Lowest"}, monkeypatch)
    assert "ext-lowest" in available() and available()["ext-lowest"].__module__ == "extlowest"
    assert strategy_options("ext-lowest", {"skip": "2"}) == {"skip": 2}
    with pytest.raises(ConfigError, match="--opt skip must be a whole number of at least 0"):
        resolve("quick", strategy="ext-lowest", strategy_options={"skip": "-1"})
    cfg = resolve("quick", strategy="ext-lowest", strategy_options={"skip": "2"})
    pool = np.arange(10, 30)
    sel = build_strategy(cfg.strategy, cfg.strategy_options).select(context(pool, pool[:0]), 5)
    assert sel.ids.tolist() == [12, 13, 14, 15, 16]
    assert build_strategy("ext-lowest").select(context(pool, pool[:0]), 3).ids.tolist() == [10, 11, 12]


def test_an_entry_point_may_name_a_module_that_registers(registry, tmp_path, monkeypatch):
    module = LOWEST.replace("from albench.strategy import Selection, Strategy",
                            "from albench.strategy import Selection, Strategy, register_strategy")
    module = module.replace("class Lowest(Strategy):", "@register_strategy\nclass Lowest(Strategy):")
    install(tmp_path / "site", "extmodule", {"extmodule": module},
            {"whatever": "extmodule"}, monkeypatch)
    assert available()["ext-lowest"].__module__ == "extmodule"


@pytest.mark.parametrize("case, modules, target, phrase", [
    ("import fails", {"extbroken": "import no_such_module_anywhere\n"}, "extbroken:Lowest",
     "cannot be loaded (ModuleNotFoundError: No module named 'no_such_module_anywhere')"),
    ("missing attribute", {"extbroken": LOWEST}, "extbroken:Highest", "cannot be loaded (AttributeError"),
    ("not a strategy", {"extbroken": "Lowest = 3\n"}, "extbroken:Lowest",
     "names 3, which is neither a Strategy subclass nor a module"),
    ("other name", {"extbroken": LOWEST.replace('"ext-lowest"', '"ext-other"')}, "extbroken:Lowest",
     "names a class whose `name` is 'ext-other'"),
    ("clash", {"extbroken": LOWEST.replace('"ext-lowest"', '"random"')}, "extbroken:Lowest",
     "Two strategies are named 'random': strategies.random.RandomStrategy and entry point"),
])
def test_a_broken_or_clashing_entry_point_is_a_clear_error(registry, tmp_path, monkeypatch, case,
                                                          modules, target, phrase):
    name = "random" if case == "clash" else "ext-lowest"
    install(tmp_path / "site", "extbroken", modules, {name: target}, monkeypatch)
    for call in (available, lambda: resolve("quick", strategy="random")):
        with pytest.raises(ConfigError) as err:
            call()
        text = str(err.value)
        assert phrase in text, text
        assert "distribution 'extbroken'" in text and f"{name} = {target!r}" in text
        assert "uninstall" in text  # the fix


def test_a_second_class_under_a_taken_name_is_refused(registry):
    class Impostor(Strategy):
        name = "entropy"

    with pytest.raises(ConfigError, match="Two strategies are named 'entropy'"):
        register_strategy(Impostor)
    assert available()["entropy"].__module__ == "strategies.entropy"
    register_strategy(available()["entropy"])  # the same class again is fine


def test_the_context_names_every_field_and_types_the_lab():
    import dataclasses
    import typing

    from albench.lab import Lab

    doc = SelectionContext.__doc__
    for f in dataclasses.fields(SelectionContext):
        assert f"{f.name}:" in doc, f.name
    hints = typing.get_type_hints(SelectionContext, {**vars(contract), "Lab": Lab})
    assert hints["lab"] == Lab | None and hints["model"] is ModelView


@pytest.mark.slow
def test_an_external_strategy_runs_a_real_loop(registry, tmp_path, monkeypatch, tiny_cfg):
    from albench.loop import ActiveLearningLoop

    install(tmp_path / "site", "extlowest", {"extlowest": LOWEST},
            {"ext-lowest": "extlowest:Lowest"}, monkeypatch)
    cfg = tiny_cfg(strategy="ext-lowest", rounds=1, strategy_options={"skip": "1"},
                   dataset_options={"test_size": 16})
    result = ActiveLearningLoop(cfg, tmp_path / "runs").run()
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    (sel,) = [json.loads(line) for line in (result.run_dir / "selections.jsonl").read_text().splitlines()]
    assert manifest["status"] == "complete" and manifest["config"]["strategy_options"] == {"skip": 1}
    assert len(sel["ids"]) == 8 and sel["ids"] == sorted(sel["ids"])
