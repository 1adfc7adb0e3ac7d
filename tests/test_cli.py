"""CLI behaviour a user meets first: errors for bad input, `list`, a tiny run."""

from __future__ import annotations

import subprocess
import sys

import pytest

from albench.cli import main
from tests.helpers.settings import TINY_CLI


def run_cli(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out + out.err


def test_unknown_strategy_lists_known_ones(capsys, tmp_path):
    code, text = run_cli(["run", "--strategy", "nope", "--out", str(tmp_path)], capsys)
    assert code == 2
    assert "Unknown strategy 'nope'" in text and "random" in text
    assert not any(tmp_path.iterdir())


def test_budget_larger_than_pool(capsys, tmp_path):
    code, text = run_cli(["run", *TINY_CLI, "--budget", "5000", "--out", str(tmp_path)], capsys)
    assert code == 2 and "does not fit the pool" in text


@pytest.mark.parametrize("dataset, env", [("coco", "ALBENCH_COCO_ROOT"), ("voc", "ALBENCH_VOC_ROOT")])
def test_missing_dataset_root_names_flag_and_env(capsys, tmp_path, monkeypatch, dataset, env):
    monkeypatch.delenv(env, raising=False)
    code, text = run_cli(["run", "--dataset", dataset, "--data-root", str(tmp_path / "nowhere"),
                          "--out", str(tmp_path / "out")], capsys)
    assert code == 2
    assert env in text and "--data-root" in text
    assert "Traceback" not in text


def test_unknown_backend_option_suggests_the_near_key(capsys, tmp_path):
    code, text = run_cli(["run", "--backend-opt", "epoch=3", "--out", str(tmp_path)], capsys)
    text = " ".join(text.split())
    assert code == 2 and "Unknown --backend-opt 'epoch' for backend 'yolo'" in text
    assert "Did you mean 'epochs'?" in text and "warm_epochs" in text  # the known keys


def test_list_shows_every_registered_name_and_every_option(capsys):
    from albench.backends import available as backends
    from albench.config import PRESETS, SETTINGS, flag
    from albench.data import available as datasets
    from albench.strategy import available as strategies

    code, text = run_cli(["list"], capsys)
    assert code == 0
    for name in [*strategies(), *backends(), *datasets(), *PRESETS]:
        assert name in text
    rows = [" ".join(line.replace("│", " ").split()) for line in text.splitlines()]
    declared = [(flag(k), o) for k, o in SETTINGS.items()]
    for registry in (strategies(), backends(), datasets()):
        declared += [(k, o) for item in registry.values() for k, o in item.options.items()]
    assert len(declared) > 60
    for key, option in declared:  # one row: the key, its default, what it takes, its help
        want = " ".join(f"{key} {option.default_text()} {option.allowed()} {option.help}".split())
        assert any(row.startswith(want) for row in rows), want


def test_module_entry_point_runs_and_prints_the_round_table(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "albench", "run", *TINY_CLI, "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "AP50" in proc.stdout and "complete" in proc.stdout
    # two epochs at 64 px learn nothing (AP50 ~0 every round): run says so and what to change
    assert "learned nothing" in proc.stderr and "weights=PATH" in proc.stderr


def test_version_flag_prints_the_package_version(capsys):
    import albench

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"albench {albench.__version__}"
