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


def _legacy_line(round_: int, chosen: list[int]) -> dict:
    # two groups of 10; group 0 gains 0.1 by 5 images then nothing, group 1 0.004 an image
    return {"strategy": "mgral", "round": round_, "group_sizes": [10, 10], "ladder": [[5, 10], [5, 10]],
            "lut": [[0.1, 0.1], [0.02, 0.04]], "chosen_per_group": chosen,
            "estimated_gain": 0.1 if chosen == [10, 0] else 0.12,
            "model_ap50_R": 0.50, "baseline_ap50": 0.30 + 0.02 * round_}


def _expected_random_gain() -> float:
    # k of a random 10 out of 20 fall in group 0 (hypergeometric)
    total = math.comb(20, 10)
    return sum(math.comb(10, k) * math.comb(10, 10 - k) / total * (0.02 * min(k, 5) + 0.004 * (10 - k))
               for k in range(11))


def test_round_by_round_table_recomputes_the_batch_values_of_a_recorded_table():
    from strategies.mgral.report_data import MgralRun
    from strategies.mgral.report_validity import validity_lines, validity_rows

    runs = [MgralRun("mgral", s, f"r{s}", [_legacy_line(0, [10, 0]), _legacy_line(1, [5, 5])], None, [])
            for s in range(2)]
    rows = validity_rows(runs)
    assert [(r["round"], r["seeds"]) for r in rows] == [(0, 2), (1, 2)]
    first, second = rows
    assert first["optimum"] == pytest.approx(0.12)  # 5 + 5: the exact optimum of 10
    random = _expected_random_gain()
    assert first["random"] == pytest.approx(random, abs=0.004)
    assert first["gap"] == pytest.approx((0.12 - 0.1) / (0.12 - first["random"]))
    assert second["gap"] == pytest.approx(0.0)  # the agent took the optimum
    assert first["stability"] == pytest.approx(-0.20) and second["stability"] == pytest.approx(-0.18)
    assert first["top_share"] == 1.0 and second["top_share"] == 0.5
    assert first["recomputed"] and math.isnan(first["reliability"])
    text = "\n".join(validity_lines(runs))
    assert "| mgral | 0 | 2 | holdout | 0.500 | 0.300 | -0.200 |" in text and "+0.120 *" in text


def test_round_by_round_table_keeps_recorded_batch_values_and_reliability():
    from strategies.mgral.report_data import MgralRun
    from strategies.mgral.report_validity import validity_rows

    line = {**_legacy_line(0, [10, 0]), "optimum_gain": 0.5, "random_gain": 0.3, "agent_gap": 0.25,
            "estimated_gain": 0.45, "reliability": 0.8, "shrinkage": 0.6, "eval_set": "crossfit",
            "model_ap50_eval": 0.40, "baseline_sd": 0.01}
    (row,) = validity_rows([MgralRun("mgral", 0, "r0", [line], None, [])])
    assert (row["optimum"], row["random"], row["estimated"]) == (0.5, 0.3, 0.45)
    assert row["gap"] == pytest.approx(0.25)
    assert not row["recomputed"] and row["eval_set"] == "crossfit"
    assert (row["reliability"], row["shrinkage"], row["baseline_sd"]) == (0.8, 0.6, 0.01)
    assert row["stability"] == pytest.approx(0.30 - 0.40)  # model_ap50_eval wins over model_ap50_R


def test_agent_gap_over_seeds_is_a_ratio_of_sums_not_a_mean_of_exploding_ratios():
    from strategies.mgral.report_data import MgralRun
    from strategies.mgral.report_validity import validity_rows

    def line(opt, rnd, est):
        return {**_legacy_line(0, [5, 5]), "optimum_gain": opt, "random_gain": rnd,
                "estimated_gain": est, "agent_gap": (opt - est) / (opt - rnd)}

    # seed 0: a near-blank table (its own gap 50); seed 1: gap 0.2 on a real spread
    runs = [MgralRun("mgral", 0, "r0", [line(0.010002, 0.010000, 0.009902)], None, []),
            MgralRun("mgral", 1, "r1", [line(0.030, 0.010, 0.026)], None, [])]
    (row,) = validity_rows(runs)
    assert row["gap"] == pytest.approx((0.0001 + 0.004) / (0.000002 + 0.020))
    blank = [MgralRun("mgral", 0, "r0", [line(0.010002, 0.010000, 0.009902)], None, [])]
    assert math.isnan(validity_rows(blank)[0]["gap"])
