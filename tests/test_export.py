"""The tidy export over the committed results folders: one row per (run, round), no two
configurations merged, the promised columns, and damaged folders skipped by name."""

from __future__ import annotations

import csv
import importlib.util
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from albench import export
from albench.errors import ConfigError
from albench.results import ROUND_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ["quick", "reference", "mgral-ablations", "mgral-ablations-quick"]


def _rounds_lines(folder: Path) -> int:
    return sum(len(list(csv.DictReader(p.open()))) for p in folder.rglob("rounds.csv"))


@pytest.mark.parametrize("name", COMMITTED)
def test_committed_results_round_trip_through_csv_without_merging_configs(
        name: str, tmp_path: Path) -> None:
    folder = ROOT / "results" / name
    frame = export.runs_frame(folder)
    assert len(frame) == _rounds_lines(folder)  # every round row of every run, once
    assert not frame.duplicated(["run_id", "round"]).any()
    assert (frame.groupby("run_id")["config_hash"].nunique() == 1).all()
    assert frame["run_id"].nunique() == frame["config_hash"].nunique()
    # The columns a configuration differs in identify it: no two config hashes share them.
    opts = [c for c in frame.columns if c.startswith("opt.")]
    by_identity = frame.groupby(["setting_hash", "strategy", "seed", *opts], dropna=False)
    assert (by_identity["config_hash"].nunique() == 1).all()
    assert by_identity.ngroups == frame["config_hash"].nunique()

    path = export.write_export(frame, tmp_path / "runs.csv")
    back = export.read_export(path)
    pd.testing.assert_frame_equal(back, frame, check_exact=True)
    assert not back.duplicated(["run_id", "round"]).any()


def test_columns_are_those_the_docstring_promises() -> None:
    frame = export.runs_frame(ROOT / "results" / "quick")
    opts = sorted(c for c in frame.columns if c.startswith("opt."))
    rounds = [c for c in ROUND_COLUMNS if c not in export.RUN_COLUMNS]
    assert list(frame.columns) == export.RUN_COLUMNS + opts + rounds
    for name in export.RUN_COLUMNS + rounds:
        assert f"``{name}``" in export.__doc__, name
    assert {"opt.aggregate", "opt.min_score", "opt.estimator"} <= set(opts)
    entropy = frame[frame["strategy"] == "entropy"]
    assert set(entropy["opt.aggregate"]) == {"max"} and set(entropy["opt.min_score"]) == {0.05}
    assert frame.loc[frame["strategy"] == "random", "opt.aggregate"].isna().all()
    assert frame["seed"].dtype.kind == "i" and frame["ap50"].dtype.kind == "f"
    assert frame["upper_bound"].dtype == bool
    ordered = frame.sort_values(["run_id", "round"]).reset_index(drop=True)
    assert ordered[["run_id", "round"]].equals(frame[["run_id", "round"]])
    first = frame.iloc[0]
    manifest = json.loads((ROOT / "results" / "quick" / first["run_id"] / "manifest.json").read_text())
    assert first["config_hash"] == manifest["config_hash"]
    assert first["setting_hash"] == manifest["setting_hash"]


def test_ablation_variants_stay_distinct_by_their_options() -> None:
    frame = export.runs_frame(ROOT / "results" / "mgral-ablations")
    runs = frame.drop_duplicates("run_id")
    variants = runs[runs["strategy"] == "mgral"].groupby(["opt.estimator", "opt.agent"])
    # consistency/lstm, pseudo/lstm, oracle/lstm (upper bound), consistency/greedy: 3 seeds each
    assert sorted(variants.groups) == [("consistency", "greedy"), ("consistency", "lstm"),
                                       ("oracle", "lstm"), ("pseudo", "lstm")]
    assert (variants["seed"].nunique() == 3).all() and (variants.size() == 3).all()
    assert set(runs.loc[runs["opt.estimator"] == "oracle", "upper_bound"]) == {True}
    # rounds.csv alone would merge the four variants: 4 runs share each (strategy, seed)
    per_seed = runs[runs["strategy"] == "mgral"].groupby("seed")["config_hash"].nunique()
    assert (per_seed == 4).all()


def test_a_run_copied_into_two_folders_is_kept_once() -> None:
    both = export.runs_frame([ROOT / "results" / "reference", ROOT / "results" / "mgral-ablations"])
    alone = [export.runs_frame(ROOT / "results" / n) for n in ("reference", "mgral-ablations")]
    assert both["run_id"].nunique() == len(set(alone[0]["run_id"]) | set(alone[1]["run_id"]))
    assert not both.duplicated(["run_id", "round"]).any()


def _copy_runs(tmp_path: Path, names: list[str], source: str = "quick") -> Path:
    out = tmp_path / "results"
    for name in names:
        dest = out / name
        dest.mkdir(parents=True)
        for file in ("manifest.json", "rounds.csv"):
            shutil.copy(ROOT / "results" / source / name / file, dest / file)
    return out


def test_a_damaged_run_is_skipped_with_a_warning_naming_it(tmp_path: Path) -> None:
    good, bad, broken = ("shapes-yolo-random-s0-74146254", "shapes-yolo-entropy-s0-a8ef8293",
                         "shapes-yolo-coreset-s0-681f2cfc")
    root = _copy_runs(tmp_path, [good, bad, broken])
    rows = (root / bad / "rounds.csv").read_text().splitlines()
    (root / bad / "rounds.csv").write_text("\n".join(rows[:2] + [rows[2][:40]]) + "\n")
    (root / broken / "manifest.json").write_text("{not json")
    with pytest.warns(UserWarning) as caught:
        frame = export.runs_frame(root)
    messages = " ".join(str(w.message) for w in caught)
    assert bad in messages and broken in messages and good not in messages
    assert set(frame["run_id"]) == {good}

    (root / good / "rounds.csv").write_text("not,a,rounds,file\n1,2,3,4\n")
    with pytest.warns(UserWarning), pytest.raises(ConfigError, match="No usable run"):
        export.runs_frame(root)
    with pytest.raises(ConfigError, match="does not exist"):
        export.runs_frame(tmp_path / "nowhere")


def test_rows_that_disagree_with_their_manifest_are_damaged(tmp_path: Path) -> None:
    name = "shapes-yolo-entropy-s0-a8ef8293"
    root = _copy_runs(tmp_path, [name, "shapes-yolo-random-s0-74146254"])
    csv_path = root / name / "rounds.csv"
    csv_path.write_text(csv_path.read_text().replace(",entropy,", ",random,"))
    with pytest.warns(UserWarning, match="disagrees with the manifest"):
        frame = export.runs_frame(root)
    assert name not in set(frame["run_id"])


def test_unfinished_runs_only_on_request_and_conflicting_copies_fail(tmp_path: Path) -> None:
    name = "shapes-yolo-entropy-s0-a8ef8293"
    root = _copy_runs(tmp_path, [name, "shapes-yolo-random-s0-74146254"])
    manifest = json.loads((root / name / "manifest.json").read_text())
    (root / name / "manifest.json").write_text(json.dumps({**manifest, "status": "running"}))
    assert name not in set(export.runs_frame(root)["run_id"])
    assert name in set(export.runs_frame(root, include_incomplete=True)["run_id"])

    other = _copy_runs(tmp_path / "other", [name], source="mgral-ablations-quick")
    csv_path = other / name / "rounds.csv"
    rows = csv_path.read_text().splitlines()
    cells = rows[1].split(",")
    cells[ROUND_COLUMNS.index("ap50")] = "0.5"
    csv_path.write_text("\n".join([rows[0], ",".join(cells), *rows[2:]]) + "\n")
    with pytest.raises(ConfigError, match="different contents"):
        export.runs_frame([ROOT / "results" / "quick", other])


def test_write_export_formats(tmp_path: Path) -> None:
    frame = export.runs_frame(ROOT / "results" / "mgral-ablations-quick")
    with pytest.raises(ConfigError, match=r"\.csv or \.parquet"):
        export.write_export(frame, tmp_path / "runs.xlsx")
    target = tmp_path / "runs.parquet"
    if importlib.util.find_spec("pyarrow") is None:
        with pytest.raises(ConfigError, match="pip install pyarrow"):
            export.write_export(frame, target)
        assert not target.exists()
    else:
        back = export.read_export(export.write_export(frame, target))
        assert not back.duplicated(["run_id", "round"]).any()
        assert list(back.columns) == list(frame.columns)


def test_export_command_writes_every_folder_without_merging_settings(
        tmp_path: Path, capsys) -> None:
    from albench.cli import main

    folders = [ROOT / "results" / "mgral-ablations-quick", ROOT / "results" / "quick"]
    out = tmp_path / "all.csv"
    assert main(["export", *map(str, folders), "--out", str(out)]) == 0
    assert "exported" in capsys.readouterr().out
    back = export.read_export(out)
    pd.testing.assert_frame_equal(back, export.runs_frame(folders), check_exact=True)
    assert list(back.columns[:3]) == ["run_id", "config_hash", "setting_hash"]
    # one config per run (a run copied into both folders is kept once), none merged
    assert back["run_id"].nunique() == back["config_hash"].nunique() > 12
    assert not back.duplicated(["run_id", "round"]).any()
    assert (back.groupby("run_id")["setting_hash"].nunique() == 1).all()
    assert main(["export", str(folders[0]), "--out", str(tmp_path / "x.xlsx")]) == 2
    assert main(["export", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
