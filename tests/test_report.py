"""The report over synthetic run folders: files, numbers, marks and skipped runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from albench.errors import ConfigError
from albench.report import write_report

ROUNDS = 5
OFFSETS = {"random": 0.0, "entropy": 0.05, "oracle": 0.10}


def curve(strategy: str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_labeled = 100 + 50 * np.arange(ROUNDS)
    ap50 = 0.6 * (1 - np.exp(-n_labeled / 200)) + OFFSETS.get(strategy, 0.02) + 0.01 * ((seed * 7) % 5 - 2)
    return n_labeled, ap50, ap50 * 0.55


def write_run(root: Path, strategy: str, seed: int, status: str = "complete", rounds: int = ROUNDS,
              options: dict | None = None) -> Path:
    run_id = f"{strategy}-s{seed}" + "".join(f"-{k}{v}" for k, v in (options or {}).items())
    folder = root / "runs" / run_id
    folder.mkdir(parents=True)
    config = {"dataset": "toy", "backend": "fake", "strategy": strategy, "strategy_options": options or {},
              "preset": "quick", "seed": seed, "initial": 100, "budget": 50, "rounds": ROUNDS - 1}
    manifest = {"run_id": run_id, "status": status, "config": config, "config_hash": run_id,
                "label": strategy,
                "setting_hash": "abc123def456", "upper_bound": strategy == "oracle",
                "versions": {}, "git_commit": "0" * 40, "hardware": {},
                "dataset": {"name": "toy", "fingerprint": "f", "params": {}, "warnings": []}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    n_labeled, ap50, ap = curve(strategy, seed)
    frame = pd.DataFrame({
        "dataset": "toy", "backend": "fake", "strategy": strategy, "preset": "quick", "seed": seed,
        "round": np.arange(ROUNDS), "n_labeled": n_labeled, "n_boxes_labeled": n_labeled * 3,
        "ap": ap, "ap50": ap50, "ap75": ap * 0.9, "per_class_ap": json.dumps({"a": 0.1}),
        "t_train_s": 10.0, "t_infer_s": 2.0, "t_eval_s": 1.0,
        "t_select_s": 0.5 if strategy == "random" else 1.5,
        "t_strategy_train_s": 0.0, "peak_rss_mb": 1000.0 + seed,
    }).iloc[:rounds]
    frame.to_csv(folder / "rounds.csv", index=False)
    return folder


@pytest.fixture
def results(tmp_path: Path) -> Path:
    root = tmp_path / "results"
    for strategy in OFFSETS:
        for seed in range(3):
            write_run(root, strategy, seed)
    write_run(root, "entropy", 9, status="running", rounds=2)
    return root


def aubc_table(md: str) -> dict[str, list[str]]:
    section = md.split("## Label efficiency")[1].split("##")[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")][1:]
    return {cells[0]: cells for cells in ([c.strip() for c in r.strip("|").split("|")] for r in rows)}


def test_report_files_numbers_and_marks(results: Path, tmp_path: Path) -> None:
    index = write_report(results, tmp_path / "report")
    assert index == tmp_path / "report" / "index.md"
    text = index.read_text()
    links = re.findall(r"\]\(([^)]+)\)", text)
    for link in links:
        assert not Path(link).is_absolute() and (index.parent / link).exists(), link
    setting = index.parent / "toy_fake_quick_abc123de"
    assert {"report.md", "curves.png", "curves.svg"} <= {p.name for p in setting.iterdir()}
    with Image.open(setting / "curves.png") as image:
        image.verify()
        assert image.format == "PNG" and image.size[0] > 500
    assert (setting / "curves.svg").read_text().lstrip().startswith("<?xml")

    md = (setting / "report.md").read_text()
    table = aubc_table(md)
    assert set(table) == {"random", "entropy", "oracle †"}  # upper bound marked
    expected = {}
    for strategy in OFFSETS:
        per_seed = []
        for seed in range(3):
            x, y, _ = curve(strategy, seed)
            area = sum((y[i] + y[i + 1]) / 2 * (x[i + 1] - x[i]) for i in range(ROUNDS - 1))
            per_seed.append(area / (x[-1] - x[0]))
        expected[strategy] = np.array(per_seed)
    for strategy, label in (("random", "random"), ("entropy", "entropy"), ("oracle", "oracle †")):
        row = table[label]
        assert row[1] == "3"
        assert row[2] == f"{expected[strategy].mean():.3f}"
    # Same seeds, constant per-seed gain: the paired difference and its CI are exact.
    gain = (expected["entropy"] - expected["random"]).mean()
    assert table["entropy"][4] == f"{gain:+.3f}"
    assert table["entropy"][5] == f"[{gain:.3f}, {gain:.3f}]"
    wins = np.mean([[e > r for r in expected["random"]] for e in expected["entropy"]])
    assert wins == 1.0 and table["entropy"][6] == "1.00"  # every entropy run beats every random run
    assert table["random"][4] == "—"
    assert "† upper bound" in md and "oracle †" in md.split("## Compute cost")[1]

    cost = md.split("## Compute cost")[1]
    random_row = next(line for line in cost.splitlines() if line.startswith("| random "))
    entropy_row = next(line for line in cost.splitlines() if line.startswith("| entropy "))
    assert "13.50" in random_row and "1.00×" in random_row and "1002" in random_row
    assert "14.50" in entropy_row and f"{14.5 / 13.5:.2f}×" in entropy_row

    assert "Read 10 run(s)" in text and "9 reported, 1 skipped" in text
    assert "entropy-s9" in text and "not complete" in text


def test_report_can_include_incomplete_runs(results: Path, tmp_path: Path) -> None:
    index = write_report(results, tmp_path / "report", include_incomplete=True)
    assert "10 reported, 0 skipped" in index.read_text()
    md = (index.parent / "toy_fake_quick_abc123de" / "report.md").read_text()
    assert aubc_table(md)["entropy"][1] == "4"
    assert "cut to the 2 round(s)" in md and "not complete" in md


def test_report_without_runs_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="python -m albench run"):
        write_report(tmp_path / "empty", tmp_path / "out")
    with pytest.raises(ConfigError, match="does not exist"):
        write_report(tmp_path / "nowhere", tmp_path / "out")
    write_run(tmp_path / "busy", "random", 0, status="running")
    with pytest.raises(ConfigError, match="none can be used"):
        write_report(tmp_path / "busy", tmp_path / "out")


def test_label_shared_by_different_options_is_split(tmp_path: Path) -> None:
    root = tmp_path / "results"
    for seed in range(2):
        write_run(root, "random", seed)
        write_run(root, "entropy", seed)
        write_run(root, "entropy", seed, options={"agg": "max"})
    index = write_report(root, tmp_path / "report")
    md = (index.parent / "toy_fake_quick_abc123de" / "report.md").read_text()
    assert set(aubc_table(md)) == {"random", "entropy", "entropy (agg=max)"}
    assert "0 skipped" in index.read_text()


def test_options_at_their_legacy_value_are_not_another_variant(tmp_path: Path) -> None:
    """A run recorded before an option existed and one recorded after it, at the option's
    declared legacy value, ran the same strategy (their config hashes agree): one label,
    which names that legacy value. The same option at another value is another variant."""
    root = tmp_path / "results"
    old = {"groups": 4, "ladder": "1,2"}
    for seed in range(2):
        write_run(root, "random", seed)
    write_run(root, "mgral", 0, options=old)
    write_run(root, "mgral", 1, options={**old, "eval_set": "holdout", "replicates": 1})
    for seed in range(2):
        write_run(root, "mgral", seed, options={**old, "eval_set": "crossfit", "replicates": 1})
    index = write_report(root, tmp_path / "report")
    table = aubc_table((index.parent / "toy_fake_quick_abc123de" / "report.md").read_text())
    assert set(table) == {"random", "mgral (eval_set=holdout)", "mgral (eval_set=crossfit)"}
    assert table["mgral (eval_set=holdout)"][1] == "2" and table["mgral (eval_set=crossfit)"][1] == "2"


def test_one_seed_prints_no_interval(tmp_path: Path) -> None:
    root = tmp_path / "results"
    for strategy in ("random", "entropy"):
        write_run(root, strategy, 0)
    index = write_report(root, tmp_path / "report")
    table = aubc_table((index.parent / "toy_fake_quick_abc123de" / "report.md").read_text())
    assert table["entropy"][1] == "1"
    assert table["entropy"][3] == "n/a" and table["entropy"][5] == "n/a"
    assert table["random"][3] == "n/a"
    # one paired seed is one trial: the Wilson interval of 1 win in 1 is wide, not absent
    low, high = (float(v) for v in table["entropy"][8].strip("[]").split(","))
    assert table["entropy"][7] == "1.00" and 0.1 < low < 0.3 and high == 1.0


def test_settings_with_the_same_title_are_told_apart(tmp_path: Path) -> None:
    root = tmp_path / "results"
    for seed in range(2):
        write_run(root, "random", seed)
        other = write_run(root, "random", seed, options={"b": 1})  # another setting
        manifest = json.loads((other / "manifest.json").read_text())
        manifest["setting_hash"] = "fff999"
        manifest["config"]["budget"] = 80
        (other / "manifest.json").write_text(json.dumps(manifest))
    text = write_report(root, tmp_path / "report").read_text()
    assert "setting abc123de: budget = 50" in text and "setting fff999: budget = 80" in text


def _declare_section(monkeypatch, tmp_path: Path, spec: str) -> None:
    """Register a strategy ``oracle`` (the fixture's upper bound) declaring ``spec`` as its
    report section, with a section module ``toy_section`` importable from ``tmp_path``."""
    from albench.strategy import STRATEGIES, Strategy

    (tmp_path / "toy_section.py").write_text(
        "def section(runs, root, folder, stem=None):\n"
        "    names = sorted({r.config['strategy'] for r in runs})\n"
        "    return ['## Toy', '', f'{len(runs)} runs of {names} under {root.name}', '']\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cls = type("Oracle", (Strategy,), {"name": "oracle", "description": "test", "report_section": spec,
                                       "select": lambda self, ctx, budget: None})
    monkeypatch.setitem(STRATEGIES, "oracle", cls)


def test_a_declared_strategy_section_gets_that_strategys_runs(results, tmp_path, monkeypatch):
    _declare_section(monkeypatch, tmp_path, "toy_section:section")
    index = write_report(results, tmp_path / "report")
    md = (index.parent / "toy_fake_quick_abc123de" / "report.md").read_text()
    assert "## Toy" in md and "3 runs of ['oracle'] under results" in md
    assert md.index("## Compute cost") < md.index("## Toy")


def test_a_malformed_section_declaration_is_a_config_error(results, tmp_path, monkeypatch):
    _declare_section(monkeypatch, tmp_path, "toy_section.section")
    with pytest.raises(ConfigError, match="package.module:function"):
        write_report(results, tmp_path / "report")
    _declare_section(monkeypatch, tmp_path, "toy_section:nothing_here")
    with pytest.raises(ConfigError, match="cannot be imported"):
        write_report(results, tmp_path / "report")


def test_intervals_are_t_intervals_named_with_n(results: Path, tmp_path: Path) -> None:
    from scipy.stats import t as student_t

    md = (write_report(results, tmp_path / "r") .parent / "toy_fake_quick_abc123de"
          / "report.md").read_text()
    assert "95% t-interval, n = 3 seeds" in md and "bootstrap CI" not in md
    aubcs = []
    for seed in range(3):
        x, y, _ = curve("random", seed)
        aubcs.append(sum((y[i] + y[i + 1]) / 2 * (x[i + 1] - x[i]) for i in range(ROUNDS - 1))
                     / (x[-1] - x[0]))
    aubcs = np.array(aubcs)
    half = student_t.ppf(0.975, 2) * aubcs.std(ddof=1) / np.sqrt(3)
    row = aubc_table(md)["random"]
    assert row[3] == f"[{aubcs.mean() - half:.3f}, {aubcs.mean() + half:.3f}]"
    # per-round cells are mean ± SD over seeds
    by_round = md.split("## AP50 by round")[1].split("##")[0]
    ap50 = np.array([curve("random", s)[1] for s in range(3)])
    assert f"{ap50[:, 0].mean():.3f} ± {ap50[:, 0].std(ddof=1):.3f}" in by_round
    # the paired Δ table and the CSV copies of the tables
    assert "## Δ AP50 vs random by round" in md
    folder = tmp_path / "r" / "toy_fake_quick_abc123de"
    frame = pd.read_csv(folder / "label_efficiency.csv")
    assert list(frame["Strategy"]) == ["random", "entropy", "oracle †"]
    assert {"cost.csv", "ap50_by_round.csv", "delta_ap50.csv", "curves.pdf"} <= {
        p.name for p in folder.iterdir()}


def _figure_colors(svg: str) -> set[str]:
    return set(re.findall(r"stroke: ?(#[0-9a-f]{6})", svg))


def test_strategy_keeps_its_colour_and_figures_are_byte_stable(tmp_path: Path) -> None:
    from albench.report.plots import strategy_styles

    both, alone = tmp_path / "both", tmp_path / "alone"
    for seed in range(2):
        for strategy in ("random", "entropy", "coreset"):
            write_run(both, strategy, seed)
        write_run(alone, "random", seed)
        write_run(alone, "coreset", seed)
    slug = "toy_fake_quick_abc123de"
    svg_both = (write_report(both, tmp_path / "a").parent / slug / "curves.svg").read_text()
    svg_alone = (write_report(alone, tmp_path / "b").parent / slug / "curves.svg").read_text()
    coreset = strategy_styles().color("coreset").lower()
    entropy = strategy_styles().color("entropy").lower()
    assert coreset != entropy
    assert coreset in _figure_colors(svg_both) and coreset in _figure_colors(svg_alone)
    assert entropy in _figure_colors(svg_both) and entropy not in _figure_colors(svg_alone)
    write_report(both, tmp_path / "c")
    for ext in ("svg", "pdf"):
        first = (tmp_path / "a" / slug / f"curves.{ext}").read_bytes()
        assert first == (tmp_path / "c" / slug / f"curves.{ext}").read_bytes(), ext


def test_two_variants_of_one_strategy_get_lines_of_their_own(tmp_path: Path) -> None:
    from albench import style
    from albench.report.plots import strategy_styles

    root = tmp_path / "results"
    for seed in range(2):
        write_run(root, "random", seed)
        write_run(root, "mgral", seed, options={"estimator": "consistency"})
        write_run(root, "mgral", seed, options={"estimator": "oracle"})
    slug = "toy_fake_quick_abc123de"
    svg = (write_report(root, tmp_path / "r").parent / slug / "curves.svg").read_text()
    palette = {c.lower() for c in style.STRATEGY_COLORS}
    drawn = _figure_colors(svg) & palette
    # the first variant keeps mgral's colour in every figure; the second has one of its own
    assert strategy_styles().color("mgral").lower() in drawn
    assert len(drawn) == 2


def test_cost_table_shows_a_shared_round0_once(tmp_path: Path) -> None:
    root = tmp_path / "results"
    for seed in range(3):
        for strategy in ("random", "entropy"):
            folder = write_run(root, strategy, seed)
            frame = pd.read_csv(folder / "rounds.csv")
            cached = strategy == "entropy"  # entropy reused random's round-0 model
            frame["round0_cached"] = [int(cached)] + [0] * (len(frame) - 1)
            frame.loc[0, "t_train_s"] = 500.0 if cached else 300.0  # the cache's seconds
            frame.to_csv(folder / "rounds.csv", index=False)
    md = (write_report(root, tmp_path / "r").parent / "toy_fake_quick_abc123de"
          / "report.md").read_text()
    cost = md.split("## Compute cost")[1].split("##")[0]
    rows = [line for line in cost.splitlines() if line.startswith("| ")]
    shared = [r for r in rows if "round 0, shared" in r]
    assert len(shared) == 1 and "| 300.00 |" in shared[0] and "500.00" not in cost
    random_row = next(r for r in rows if r.startswith("| random "))
    entropy_row = next(r for r in rows if r.startswith("| entropy "))
    assert "| 10.00 |" in random_row and "13.50" in random_row and "1.00×" in random_row
    assert "| 10.00 |" in entropy_row and f"{14.5 / 13.5:.2f}×" in entropy_row


def test_learned_nothing_warning(tmp_path: Path) -> None:
    learning, flat = tmp_path / "learning", tmp_path / "flat"
    for seed in range(2):
        for strategy in ("random", "entropy"):
            write_run(learning, strategy, seed)
            folder = write_run(flat, strategy, seed)
            frame = pd.read_csv(folder / "rounds.csv")
            frame["ap50"] = 0.002 + 0.0005 * frame["round"]
            frame["ap"] = frame["ap50"] / 2
            frame.to_csv(folder / "rounds.csv", index=False)
    slug = "toy_fake_quick_abc123de"
    md_flat = (write_report(flat, tmp_path / "a").parent / slug / "report.md").read_text()
    md_ok = (write_report(learning, tmp_path / "b").parent / slug / "report.md").read_text()
    head = md_flat.split("## Label efficiency")[0]
    assert "learned nothing" in head and "below 0.01" in head and "weights=PATH" in head
    assert "learned nothing" not in md_ok
    assert "learned nothing" in (tmp_path / "a" / "index.md").read_text()
