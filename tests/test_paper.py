"""The paper figure set: drawn from a committed synthetic results folder, no training."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import pytest
import yaml

from albench.cli import main
from albench.errors import ConfigError
from albench.paper import draw_figures, dry_run, load_figure_set, plan
from albench.paper.spec import REFERENCE_COLUMNS, read_references
from tests.helpers.data import PAPER_DATA, PAPER_RESULTS

DATA, FIXTURE = PAPER_DATA, PAPER_RESULTS
REPO = Path(__file__).resolve().parents[1]
FIGURES = ["fig1_curves", "fig1_delta", "fig2_references", "fig3_picks_map", "fig3_picks_grid",
           "fig4_tiny_mgral", "fig5_cost"]


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    out = tmp_path_factory.mktemp("paper")
    page = draw_figures(load_figure_set(DATA / "figures.yaml"), "tiny", FIXTURE, out)
    return out, page.read_text()


def test_every_figure_is_written_and_embedded(drawn):
    out, page = drawn
    for stem in FIGURES:
        for ext in (".png", ".pdf", ".svg"):
            assert (out / f"{stem}{ext}").stat().st_size > 1000, stem + ext
        assert f"]({stem}.png)" in page, stem


def test_gap_table_is_our_mean_minus_the_published_value(drawn):
    _, page = drawn
    rows = [line for line in page.splitlines() if line.startswith("| tiny | Synthetic test row |")]
    assert len(rows) == 2  # the fixture's AP row is another metric: not compared with AP50
    table = [[x.strip() for x in r.strip("|").split("|")] for r in rows]
    cells = next(c for c in table if c[2] == "random")
    _, _, strategy, labeled, metric, published, exact, detector, ours, interval, gap, source = cells
    assert labeled == "24" and published == "20.00" and metric == "AP50"
    assert exact == "yes" and next(c for c in table if c[2] == "entropy")[6].startswith("no")
    assert detector.startswith("none / ") and "student-t, n = 2" in interval
    interval = interval.split(" (")[0]
    values = []
    for run in FIXTURE.glob("*-random-s*"):
        with open(run / "rounds.csv", newline="") as f:
            values += [float(r["ap50"]) * 100 for r in csv.DictReader(f) if r["n_labeled"] == "24"]
    assert len(values) == 2 and float(ours) == pytest.approx(sum(values) / 2, abs=0.006)
    assert float(gap) == pytest.approx(float(ours) - float(published), abs=0.011)
    low, high = (float(v) for v in interval.strip("[]").split(","))
    assert low <= float(ours) <= high
    assert "make_fixture.py" in source


def test_page_says_the_pixel_proxy_is_used_without_a_saved_model(drawn):
    _, page = drawn
    assert "downsampled pixels" in page and "state/round-NNNN/model.pt" in page


def test_committed_references_parse_and_every_row_names_its_source():
    path = load_figure_set("mgral").references
    with open(path, newline="") as f:
        assert tuple(next(csv.reader(f))) == REFERENCE_COLUMNS
    for ref in read_references(path):
        assert ref.source and ref.where and ref.paper
        assert math.isfinite(ref.value) and ref.images(pool=1000.0) > 0
    refs = read_references(path)
    assert len(refs) == 154  # the published values, with their exact flag kept
    assert sum(r.exact for r in refs) == 61 and not any(r.strategy == "mgral" for r in refs)


def test_a_reference_row_without_source_is_refused(tmp_path):
    bad = tmp_path / "refs.csv"
    bad.write_text(",".join(REFERENCE_COLUMNS) + "\nSome paper,SSD,voc-ll4al,random,1000,AP50,50.0,"
                   "Table 1,exact,\n")
    with pytest.raises(ConfigError, match="source"):
        read_references(bad)


def test_missing_strategy_names_the_sweep_to_run(tmp_path):
    results = tmp_path / "results"
    shutil.copytree(FIXTURE, results, ignore=lambda d, names: [n for n in names if "-coreset-" in n])
    page = draw_figures(load_figure_set(DATA / "figures.yaml"), "tiny", results, tmp_path / "out").read_text()
    line = next(x for x in page.splitlines() if "no finished runs of coreset" in x)
    assert "tests/data/paper/sweeps/tiny.yaml" in line and "python -m albench" in line
    assert (tmp_path / "out" / "fig1_curves.png").stat().st_size > 1000


def test_unregistered_strategy_is_reported_not_dropped(tmp_path):
    spec = yaml.safe_load((DATA / "figures.yaml").read_text())
    sweep = yaml.safe_load((DATA / "sweeps" / "tiny.yaml").read_text())
    sweep["strategies"] = ["random", "entropy", "nosuchstrategy"]
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(sweep))
    spec["scales"]["tiny"]["panels"][0]["sweep"] = "tiny.yaml"
    spec["references"] = str(DATA / "references.csv")
    (tmp_path / "figures.yaml").write_text(yaml.safe_dump(spec))
    figset = load_figure_set(tmp_path / "figures.yaml")
    page = draw_figures(figset, "tiny", FIXTURE, tmp_path / "out").read_text()
    assert "`nosuchstrategy` is not registered" in page
    rows = dry_run(plan(figset, "tiny"), FIXTURE)
    assert {r.status for r in rows if r.strategy == "nosuchstrategy"} == {"not registered"}


def test_results_without_the_panel_setting_name_the_sweep(tmp_path):
    results = tmp_path / "results"
    run = next(FIXTURE.glob("*-random-s0-*"))
    shutil.copytree(run, results / run.name)
    manifest = json.loads((results / run.name / "manifest.json").read_text())
    manifest["setting_hash"] = "another-setting"
    (results / run.name / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match=r"sweep --config .*tiny\.yaml"):
        draw_figures(load_figure_set(DATA / "figures.yaml"), "tiny", results, tmp_path / "out")


def test_dry_run_estimates_the_rest_from_finished_runs(tmp_path):
    results = tmp_path / "results"
    shutil.copytree(FIXTURE, results)
    figset = load_figure_set(DATA / "figures.yaml")
    rows = dry_run(plan(figset, "tiny"), results)
    assert all(r.status == "done" for r in rows if r.strategy != "mgral" or r.run_id != "—")
    (partial,) = results.glob("*-entropy-s1-*")
    manifest = json.loads((partial / "manifest.json").read_text())
    manifest["status"] = "running"
    (partial / "manifest.json").write_text(json.dumps(manifest))
    lines = (partial / "rounds.csv").read_text().splitlines()
    (partial / "rounds.csv").write_text("\n".join(lines[:2]) + "\n")  # header + round 0
    spent = float(next(csv.DictReader(lines[:2]))["t_round_s"])
    (done,) = results.glob("*-entropy-s0-*")
    with open(done / "rounds.csv", newline="") as f:
        total = sum(float(r["t_round_s"]) for r in csv.DictReader(f))
    row = next(r for r in dry_run(plan(figset, "tiny"), results) if r.run_id == partial.name)
    assert row.status == "partial 1/3 rounds"
    assert row.estimate_s == pytest.approx(total - spent)


def test_cli_draws_and_bad_scale_exits_2(tmp_path, capsys):
    spec = str(DATA / "figures.yaml")
    assert main(["paper", spec, "--scale", "tiny", "--results", str(FIXTURE), "--out",
                 str(tmp_path / "out"), "--no-run"]) == 0
    assert (tmp_path / "out" / "index.md").is_file()
    assert main(["paper", spec, "--scale", "paper", "--results", str(FIXTURE), "--dry-run"]) == 2
    assert "has scales tiny" in capsys.readouterr().err


def test_shapes_scale_reuses_the_committed_baseline_runs():
    rows = dry_run(plan(load_figure_set("mgral"), "shapes"), REPO / "results" / "quick")
    done = {(r.strategy, r.seed) for r in rows if r.status == "done"}
    assert {(s, seed) for s in ("random", "entropy", "coreset", "ll4al") for seed in range(3)} <= done


def test_figure_4_is_the_strategys_own_diagnostics_figure_not_the_reports_files(drawn):
    out, page = drawn
    section = page.split("## Figure 4: strategy diagnostics", 1)[1].split("## Figure 5", 1)[0]
    assert "### shapes · tiny (80-image pool): MGRAL" in section
    assert "| mgral | 2 |" in section and "](fig4_tiny_mgral.png)" in section
    # one combined figure, not copies of the report's three files
    assert not [p.name for p in out.glob("*") if p.stem.endswith(("calibration", "lut", "rewards"))]


def test_figure_4_draws_the_strategies_the_figure_set_declares(tmp_path):
    from albench.paper.page import fig_diagnostics, open_page

    spec = yaml.safe_load((DATA / "figures.yaml").read_text())
    spec["diagnostics"] = []
    spec["references"] = str(DATA / "references.csv")
    spec["scales"]["tiny"]["panels"][0]["sweep"] = str(DATA / "sweeps" / "tiny.yaml")
    (tmp_path / "figures.yaml").write_text(yaml.safe_dump(spec))
    figset = load_figure_set(tmp_path / "figures.yaml")
    assert figset.diagnostics == []
    page = open_page(figset, "tiny", FIXTURE, tmp_path / "out", None)
    fig_diagnostics(page)
    assert "names no strategy whose diagnostics to draw" in "\n".join(page.lines)
    assert not list((tmp_path / "out").glob("fig4_*"))
    spec["diagnostics"] = "mgral"
    (tmp_path / "figures.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(ConfigError, match="diagnostics must be a list"):
        load_figure_set(tmp_path / "figures.yaml")


def test_figure_sets_ship_with_strategy_packages():
    from albench.paper import available

    sets = available()
    assert sets["mgral"].parts[-3:] == ("mgral", "paper", "figures.yaml")
    assert load_figure_set("mgral").name == "mgral"
    assert "random" not in sets  # a strategy module, not a package with paper/figures.yaml
    with pytest.raises(ConfigError, match="Figure sets: mgral"):
        load_figure_set("nosuchset")


def test_strategy_colours_follow_the_registry_order():
    from albench.paper.figures import strategy_colors
    from albench.strategy import available as registered

    names = ["zzz-unregistered", "random", *reversed(list(registered()))]
    colors = strategy_colors(names)
    assert colors["random"] == "#000000"
    others = [n for n in colors if n != "random"]
    assert sorted(others) == sorted([n for n in registered() if n != "random"] + ["zzz-unregistered"])
    # the full registry order fixes a colour: the same alone as with every other strategy
    for name in registered():
        assert strategy_colors([name])[name] == colors[name]
    assert strategy_colors(["entropy", "coreset"]) == {n: colors[n] for n in ("entropy", "coreset")}


def test_published_values_of_other_protocols_are_listed_with_their_exact_flag(tmp_path):
    from albench.paper.page import fig_references, open_page

    spec = yaml.safe_load((DATA / "figures.yaml").read_text())
    spec["references"] = str(load_figure_set("mgral").references)  # no tiny-protocol rows
    spec["scales"]["tiny"]["panels"][0]["sweep"] = str(DATA / "sweeps" / "tiny.yaml")
    (tmp_path / "figures.yaml").write_text(yaml.safe_dump(spec))
    (tmp_path / "out").mkdir()
    page = open_page(load_figure_set(tmp_path / "figures.yaml"), "tiny", FIXTURE, tmp_path / "out",
                     None)
    fig_references(page)
    text = "\n".join(page.lines)
    assert "154 published values (61 exact" in text
    assert "No published value of mgral exists in public text" in text
    refs = [r for r in read_references(spec["references"])
            if r.detector == "RetinaNet-R50-FPN" and r.strategy == "miaod" and r.metric == "AP50"
            and r.protocol == "voc-miaod" and r.paper.startswith("MI-AOD (Yuan")]
    row = next(line for line in text.splitlines() if line.startswith(f"| {refs[0].paper} |")
               and "| voc-miaod | AP50 | miaod |" in line)
    assert row.rstrip().endswith(f"| {sum(r.exact for r in refs)} of {len(refs)} |")
    assert "No published values of the same protocol and metric" in text
    assert not (tmp_path / "out" / "fig2_references.png").exists()
