"""MGRAL's report statistics (hand-computed cases) and the report's MGRAL section."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest

from strategies.mgral import report as mr
from albench.report import load_runs, write_report
from tests.helpers.data import PAPER_RESULTS

FIXTURE = PAPER_RESULTS


def test_spearman_rho_matches_hand_computed_values():
    # ranks differ by d = [-1, 1, -1, 1, 0]: rho = 1 - 6 * 4 / (5 * 24) = 0.8
    assert mr.spearman_rho([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.8)
    # ties get average ranks: x ranks [1, 2.5, 2.5, 4], y ranks [1, 3, 2, 4]
    # covariance 4.5, variances 4.5 and 5: rho = 4.5 / sqrt(22.5)
    assert mr.spearman_rho([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(4.5 / math.sqrt(22.5))
    assert mr.spearman_rho([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)
    # monotone but not linear: rank correlation is 1
    assert mr.spearman_rho([0.1, 0.2, 0.3, 0.4], [1, 10, 100, 1000]) == pytest.approx(1.0)


def test_spearman_rho_is_nan_without_enough_variation():
    assert math.isnan(mr.spearman_rho([1.0], [2.0]))
    assert math.isnan(mr.spearman_rho([1, 1, 1], [1, 2, 3]))
    assert mr.spearman_rho([1, 2, float("nan"), 3], [1, 2, 5, 3]) == pytest.approx(1.0)


def test_realised_gain_is_next_round_minus_this_round():
    gains = mr.realised_gains([0, 1, 2], [0.10, 0.15, 0.40])
    assert gains == pytest.approx({0: 0.05, 1: 0.25})
    rounds, est, real = mr.calibration_pairs({0: 0.1, 1: 0.3, 2: 0.9}, gains)
    assert rounds.tolist() == [0, 1]  # round 2 has no next round
    assert est.tolist() == [0.1, 0.3] and real.tolist() == pytest.approx([0.05, 0.25])


def test_cost_multiple_skips_rounds_without_detector_training():
    m = mr.cost_multiples([30.0, 31.0, 5.0], [0.0, 26.0, 10.0])
    assert math.isnan(m[0])
    assert m[1:].tolist() == pytest.approx([31 / 26, 0.5])


def test_lut_matrix_pads_short_ladders():
    gains, counts = mr.lut_matrix([[0.1, 0.2, 0.3], [0.05]], [[2, 4, 8], [2]])
    assert gains.shape == (2, 3) and np.isnan(gains[1, 1:]).all()
    assert counts.tolist() == [[2, 4, 8], [2, 0, 0]]


def test_report_has_an_mgral_section_with_the_pooled_rho(tmp_path):
    runset = load_runs(FIXTURE)
    runs = mr.collect(runset.runs, runset.root)
    assert [r.seed for r in runs] == [0, 1] and all(len(r.diagnostics) == 2 for r in runs)
    est, real = mr.pooled_calibration(runs)
    assert est.size == 4  # 2 rounds with a next round x 2 seeds
    expected = f"{mr.spearman_rho(est, real):.2f}"
    write_report(FIXTURE, tmp_path)
    (page,) = tmp_path.glob("*/report.md")
    text = page.read_text()
    assert "## MGRAL" in text
    section = text.split("## MGRAL", 1)[1]
    row = next(line for line in section.splitlines() if line.startswith("| mgral |"))
    from scipy.stats import spearmanr

    p_value = spearmanr(est, real).pvalue  # 4 pairs: a p-value exists and is shown next to rho
    assert f"| {expected} | {p_value:.3f} |" in row
    for name in ("calibration", "lut", "rewards"):
        for ext in (".png", ".pdf", ".svg"):
            assert (page.parent / f"mgral_{name}{ext}").stat().st_size > 1000


def test_report_without_mgral_runs_has_no_mgral_section(tmp_path):
    results = tmp_path / "results"
    shutil.copytree(FIXTURE, results, ignore=lambda d, names: [n for n in names if "-mgral-" in n])
    write_report(results, tmp_path / "report")
    (page,) = (tmp_path / "report").glob("*/report.md")
    assert "## MGRAL" not in page.read_text()
    assert not list(page.parent.glob("mgral_*"))


def test_realised_gain_on_the_reward_split_pairs_with_the_estimate():
    import pandas as pd

    from strategies.mgral.report import MgralRun, pooled_calibration

    diags = [{"round": t, "estimated_gain": e, "model_ap50_R": r}
             for t, e, r in ((0, 0.01, 0.30), (1, 0.05, 0.32), (2, 0.02, 0.40))]
    run = MgralRun("mgral", 0, "x", diags, pd.DataFrame({"round": [0, 1, 2, 3],
                                                         "ap50": [0.1, 0.2, 0.25, 0.3]}))
    assert run.realised_on_reward_split == pytest.approx({0: 0.02, 1: 0.08})
    est, real = pooled_calibration([run], on="R")
    assert est.tolist() == [0.01, 0.05] and real.tolist() == pytest.approx([0.02, 0.08])
    est_t, real_t = pooled_calibration([run])
    assert est_t.tolist() == [0.01, 0.05, 0.02] and real_t.tolist() == pytest.approx([0.1, 0.05, 0.05])
