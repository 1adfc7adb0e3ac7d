"""The regression rule on synthetic reference and fresh run folders."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from albench.cli.regress import add_parser
from albench.errors import ConfigError
from albench.regress import compare, format_result
from tests.helpers.runs import ROUNDS, SEED_NOISE, STRATEGIES, make_reference, write_run


def shift(root: Path, strategy: str, delta: float) -> None:
    for csv in root.glob(f"{strategy}-s*/rounds.csv"):
        frame = pd.read_csv(csv)
        frame["ap50"] += delta
        frame.to_csv(csv, index=False)


def half_width(strategy: str, k: float = 3.0, floor: float = 0.002) -> float:
    # AUBC of a curve shifted by a constant moves by that constant: per-seed AUBCs differ by the noise.
    per_seed = np.array(list(SEED_NOISE.values()))
    return max(k * per_seed.std(ddof=1) / np.sqrt(per_seed.size), floor)


@pytest.fixture
def reference(tmp_path: Path) -> Path:
    return make_reference(tmp_path / "reference")


def fresh_copy(reference: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(reference, tmp_path / "fresh"))


def test_identical_copy_passes(reference: Path, tmp_path: Path) -> None:
    result = compare(reference, fresh_copy(reference, tmp_path))
    assert result.ok and result.exit_code == 0 and result.warnings == []
    assert [r["status"] for r in result.rows] == ["ok"] * 3
    for row in result.rows:
        assert row["fresh_mean"] == pytest.approx(row["ref_mean"])
        assert row["max_round_diff"] == pytest.approx(0.0)
        assert row["band_high"] - row["ref_mean"] == pytest.approx(half_width(row["strategy"]))
        assert row["ref_se"] == pytest.approx(0.02 / np.sqrt(3))
    assert format_result(result).startswith("Regression check: PASS")


def test_shift_beyond_band_fails_for_that_strategy_only(reference: Path, tmp_path: Path) -> None:
    fresh = fresh_copy(reference, tmp_path)
    delta = -1.5 * half_width("entropy")
    shift(fresh, "entropy", delta)
    result = compare(reference, fresh)
    assert not result.ok and result.exit_code == 1
    statuses = {r["strategy"]: r["status"] for r in result.rows}
    assert statuses == {"random": "ok", "entropy": "outside", "oracle": "ok"}
    entropy = next(r for r in result.rows if r["strategy"] == "entropy")
    assert entropy["fresh_mean"] - entropy["ref_mean"] == pytest.approx(delta)
    assert entropy["round_diffs"] == pytest.approx([delta] * ROUNDS)
    assert entropy["max_round_diff"] == pytest.approx(abs(delta))
    text = format_result(result)
    assert text.startswith("Regression check: FAIL") and "OUTSIDE" in text


def test_shift_inside_band_passes(reference: Path, tmp_path: Path) -> None:
    fresh = fresh_copy(reference, tmp_path)
    shift(fresh, "entropy", -0.5 * half_width("entropy"))
    assert compare(reference, fresh).ok


def test_floor_covers_zero_variance_reference(tmp_path: Path) -> None:
    reference = make_reference(tmp_path / "reference", noise=0.0)  # seeds agree exactly
    fresh = fresh_copy(reference, tmp_path)
    shift(fresh, "random", 0.005)
    result = compare(reference, fresh, floor=0.01)
    assert result.ok and all(r["ref_se"] == 0 for r in result.rows)
    shift(fresh, "random", 0.01)  # now 0.015 away
    assert [r["strategy"] for r in compare(reference, fresh, floor=0.01).failures] == ["random"]
    assert [r["strategy"] for r in compare(reference, fresh).failures] == ["random"]


def test_missing_strategy_fails_and_new_one_is_reported(reference: Path, tmp_path: Path) -> None:
    fresh = fresh_copy(reference, tmp_path)
    for folder in fresh.glob("oracle-s*"):
        shutil.rmtree(folder)
    for seed in SEED_NOISE:
        write_run(fresh, "coreset", seed)
    result = compare(reference, fresh)
    statuses = {r["strategy"]: r["status"] for r in result.rows}
    assert statuses == {"random": "ok", "entropy": "ok", "oracle": "missing", "coreset": "new"}
    assert not result.ok and [r["strategy"] for r in result.failures] == ["oracle"]
    assert "MISSING" in format_result(result)


def test_new_strategy_alone_is_not_a_failure(reference: Path, tmp_path: Path) -> None:
    fresh = fresh_copy(reference, tmp_path)
    for seed in SEED_NOISE:
        write_run(fresh, "coreset", seed)
    assert compare(reference, fresh).ok


def test_setting_hash_change_is_refused(tmp_path: Path) -> None:
    reference = make_reference(tmp_path / "reference")
    fresh = tmp_path / "fresh"
    for strategy in STRATEGIES:
        for seed in SEED_NOISE:
            write_run(fresh, strategy, seed, setting_hash="h2")
    with pytest.raises(ConfigError, match="other resolved settings than the reference"):
        compare(reference, fresh)


def test_reference_with_one_seed_is_refused(tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    for strategy in STRATEGIES:
        write_run(reference, strategy, 0)
    with pytest.raises(ConfigError, match="fewer than 2 complete seeds"):
        compare(reference, fresh_copy(reference, tmp_path))


def test_strategy_that_became_random_fails(reference: Path, tmp_path: Path) -> None:
    """The oracle's reference lies well above random; fresh oracle runs that select like
    random (its curves equal random's) must fail, at the default k and floor."""
    fresh = fresh_copy(reference, tmp_path)
    for seed in SEED_NOISE:
        shutil.copy(fresh / f"random-s{seed}" / "rounds.csv", fresh / f"oracle-s{seed}" / "rounds.csv")
    result = compare(reference, fresh)
    assert [r["strategy"] for r in result.failures] == ["oracle"]
    assert result.exit_code == 1


@pytest.mark.parametrize("k, floor, phrase", [
    (-1, 0.002, "--k must be a finite number above 0"),
    (0, 0.002, "--k must be a finite number above 0"),
    (float("nan"), 0.002, "--k must be a finite number above 0"),
    (3, -1, "--floor must be a finite number of at least 0"),
    (3, float("inf"), "--floor must be a finite number of at least 0"),
])
def test_invalid_k_or_floor_is_refused(reference: Path, k: float, floor: float, phrase: str) -> None:
    with pytest.raises(ConfigError, match=phrase):
        compare(reference, reference, k=k, floor=floor)


def test_empty_folders_are_config_errors(reference: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="python -m albench"):
        compare(reference, tmp_path / "empty")


def test_command_exit_status(reference: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    fresh = fresh_copy(reference, tmp_path)
    out = tmp_path / "regress.md"
    args = parser.parse_args(["regress", "--reference", str(reference), "--runs", str(fresh),
                              "--out", str(out)])
    assert args.func(args) == 0 and "PASS (3 rows, seeds reference/fresh 3/3)" in out.read_text()
    shift(fresh, "random", -0.2)
    assert args.func(args) == 1 and "FAIL" in capsys.readouterr().out


@pytest.mark.parametrize("flag, value", [("--k", "-1"), ("--k", "nan"), ("--k", "x"),
                                         ("--floor", "-1")])
def test_command_refuses_bad_k_and_floor(reference: Path, flag: str, value: str,
                                         capsys: pytest.CaptureFixture) -> None:
    from albench.cli import main

    code = main(["regress", "--reference", str(reference), "--runs", str(reference), flag, value])
    err = capsys.readouterr().err
    assert code == 2 and f"{flag} must be" in err and "Traceback" not in err


def test_fresh_runs_of_another_machine_are_named_in_a_warning(reference: Path, tmp_path: Path) -> None:
    import json

    fresh = fresh_copy(reference, tmp_path)
    for path in fresh.glob("*/manifest.json"):
        manifest = json.loads(path.read_text())
        path.write_text(json.dumps({**manifest, "hardware": {"processor": "Another CPU"}}))
    result = compare(reference, fresh)
    assert result.ok and any("Another CPU" in w and "round-0 models differ" in w
                             for w in result.warnings)
