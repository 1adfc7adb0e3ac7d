"""MGRAL's validity gate on a backend whose gains are known (tests/helpers/mgral_gains.py):
PASS where a group's images are planted to be worth more, FAIL under pure noise; and the
crossfit evaluation set, checked through what every scored model trained on."""

from __future__ import annotations

import numpy as np
import pytest

from albench.lab import Lab
from albench.pool import Oracle
from albench.strategy import Meter, ModelView, SelectionContext, build_strategy
from strategies.mgral import VALIDITY
from strategies.mgral.gate import Audit, audit_noise, main, run_gate, spearman, write_report
from tests.helpers.fakes import POOL, annotations, label_state
from tests.helpers.mgral_gains import GainBackend, planted

SMALL = {**VALIDITY, "iterations": 10, "hidden": 8, "groups": 3, "samples": 4, "folds": 2,
         "replicates": 3, "reward_split": 0.5}
CLASSES = [f"c{k}" for k in range(5)]


def setting(worth, noise, audit_seeds=1):
    state = label_state(24)
    truth = annotations(0)
    backend = GainBackend(worth, noise)
    backend.fit(Oracle(truth, state).label(state.labeled), seed=1)  # the round's model

    def make_ctx(strategy):
        meter = Meter()
        oracle = Oracle(truth, state)
        lab = Lab(backend, oracle.label, CLASSES, meter=meter, threads=1,
                  true_labels=oracle.reveal_for_upper_bound if strategy.uses_true_labels else None)
        return SelectionContext(state.unlabeled, state.labeled, 0, np.random.default_rng(3),
                                ModelView(backend, meter), meter, "cpu", lab)

    everything = lambda ids: {int(i): truth[int(i)] for i in ids}  # noqa: E731
    audit = Audit(Lab(backend, everything, CLASSES, true_labels=everything, threads=1),
                  state.labeled, POOL, seed=11, replicates=audit_seeds)
    make_ctx.state = state
    return make_ctx, audit


ESTIMATORS = ("consistency", "oracle")
EVAL_SETS = ("crossfit", "holdout")  # pseudo scores agreement with the round model: on this
# fake, whose gains are in confidence, that agreement does not move (its row is reported)


def test_gate_passes_a_planted_signal_and_writes_its_report(tmp_path):
    make_ctx, audit = setting(planted(0.3), noise=0.002)
    rows = run_gate(make_ctx, 6, audit, ESTIMATORS, EVAL_SETS, SMALL, random_batches=4)
    assert len(rows) == len(ESTIMATORS) * len(EVAL_SETS)
    for r in rows:
        assert r["pass"], r
        assert r["rho"] >= 0.4 and r["icc"] >= 0.5 and abs(r["stability"]) <= 0.01
    rows += run_gate(make_ctx, 6, audit, ("consistency",), ("pseudo",), SMALL, random_batches=4)
    write_report(rows, tmp_path, {"setting": "fake"})
    text = (tmp_path / "gate.md").read_text()
    assert text.count("| consistency | pseudo |") == 1 and (tmp_path / "gate.png").stat().st_size > 0
    assert text.count("PASS") == sum(r["pass"] for r in rows) >= len(ESTIMATORS) * len(EVAL_SETS)


def test_gate_fails_pure_noise():
    make_ctx, audit = setting({}, noise=0.3)
    rows = run_gate(make_ctx, 6, audit, ESTIMATORS, ("crossfit", "holdout"), SMALL, random_batches=4)
    assert rows and not any(r["pass"] for r in rows)
    assert all(r["icc"] is None or r["icc"] < 0.5 for r in rows)
    assert all(r["shrinkage"] < 0.5 for r in rows)


def spy(lab) -> tuple[list, list]:
    """Record the jobs the lab runs and the (model, ids) parts it scores."""
    jobs, scored = [], []
    finetune_many, score_parts = lab.finetune_many, lab.score_parts
    lab.finetune_many = lambda js: (jobs.extend(js), finetune_many(js))[1]
    lab.score_parts = lambda parts, truth=None: (scored.append(list(parts)),
                                                 score_parts(parts, truth))[1]
    return jobs, scored


def test_crossfit_never_scores_an_image_with_a_model_that_trained_on_it():
    make_ctx, _ = setting(planted(0.3), noise=0.01)
    strategy = build_strategy("mgral", {**SMALL, "eval_set": "crossfit"})
    state = make_ctx.state
    for rnd in range(2):  # round 1 warm-starts the shadows kept from round 0
        ctx = make_ctx(strategy)
        jobs, scored = spy(ctx.lab)
        sel = strategy.select(ctx, 6)
        shadows = [j for j in jobs if j.tag.startswith("shadow")]
        assert len(shadows) == 2 and all(j.fresh for j in shadows) == (rnd == 0)
        folds = strategy._fold_of
        for j in jobs:  # every job trains on the labeled set minus one fold
            trained = {folds[int(i)] for i in j.labeled}
            assert len(trained) == 1  # K = 2: the other fold only
        assert scored
        for parts in scored:
            assert len(parts) == 2  # pooled over both folds, all of L
            for model, ids in parts:
                assert model is not None  # never the round's model (it trained on every fold)
                seen = set(model.state["seen"].tolist())
                assert not seen & {int(i) for i in ids}
            assert sorted(int(i) for _, ids in parts for i in ids) == sorted(state.labeled.tolist())
        state.mark(sel.ids, rnd + 1)


def test_validity_rho_leaves_out_batches_smaller_than_the_budget():
    from strategies.mgral.gate import validity_rho

    # two small groups (3 images) realise least and every table ranks them last: counted,
    # they would make a table that ranks the full batches backwards look valid
    est = [0.1, 0.1, 0.5, 0.4, 0.3, 0.2]
    real = [0.01, 0.02, 0.10, 0.20, 0.30, 0.40]
    sizes = [3, 3, 10, 10, 10, 10]
    assert spearman(est, real) > 0
    assert validity_rho(est, real, sizes, 10) == pytest.approx(-1.0)
    assert validity_rho(est, real, [3, 3, 3, 3, 10, 10], 10) is None  # below three batches


def test_spearman_needs_spread():
    assert spearman([1, 2, 3], [1, 1, 1]) is None
    # one table value summed in two orders is a tie, not a rank (quick seed 101's table)
    assert spearman([0.0056755677216600055, 0.005675567721660006, 0.0056755677216600055], [1, 2, 3]) is None
    assert spearman([1, 2, 3, 4], [2, 4, 6, 9]) == pytest.approx(1.0)


@pytest.mark.parametrize("extra, phrase", [
    (["--round", "-1"], "--round -1 is negative"),
    (["--round", "2"], "--round 2 has no selection to gate"),  # smoke: rounds 0..2
    (["--walk", "randm"], "Unknown strategy 'randm'"),
    (["--estimators", "consistency,orcale"], "orcale unknown"),
    (["--estimators", ""], "--estimators (empty)"),
    (["--eval-sets", "crossfit,crossfit"], "distinct names from crossfit, pseudo, holdout"),
    (["--random", "-1"], "--random -1 is negative"),
    (["--audit-seeds", "0"], "--audit-seeds 0 is below 1"),
    (["--budget", "100000"], "does not fit the pool"),
])
def test_gate_command_refuses_bad_input_with_status_2_before_any_work(tmp_path, capsys, extra, phrase):
    out = tmp_path / "gate"
    assert main(["--preset", "smoke", "--out", str(out), *extra]) == 2
    assert phrase in capsys.readouterr().err
    assert not out.exists()


def test_gate_report_names_its_command_audit_and_batch_count():
    from strategies.mgral.gate import report_lines

    row = {"estimator": "oracle", "eval_set": "crossfit", "model_ap50_eval": 0.11, "stability": 0.006,
           "seed_sd": 0.007, "icc": -0.19, "reliability": 0.0, "shrinkage": 0.0, "rho": 0.41,
           "estimated": [0.1] * 8, "realised": [0.2] * 8, "variants": 44, "t_lut_s": 199.4, "pass": False}
    text = "\n".join(report_lines([row], {"setting": "quick seed 100", "command": "python -m x --seed 100",
                                          "audit_base_ap50": 0.1214, "seconds": 1512.5}))
    assert "    python -m x --seed 100" in text
    assert ("| oracle | crossfit | +0.110 | +0.006 | +0.007 | -0.190 | +0.000 | +0.000 | 8 | +0.410 "
            "| 44 | 199 | FAIL |") in text
    assert "AP50 0.121 on the test split" in text and "took 1512 s" in text


def test_replicated_audit_pairs_each_seed_with_its_base_and_keeps_the_one_seed_audit():
    make_ctx, one = setting(planted(0.3), noise=0.05)
    _, three = setting(planted(0.3), noise=0.05, audit_seeds=3)
    assert three.seeds[0] == one.seeds[0] == 11 and len(set(three.seeds)) == 3
    batch = make_ctx.state.unlabeled[:6]
    gains = three.gains(batch)
    # seed 0 is the one-seed audit's training: the reports made before replicates stay what they were
    assert gains[0] == pytest.approx(one.gain(batch))
    assert len(set(np.round(gains, 9))) > 1  # the seeds train differently (noise 0.05 a fit)
    assert three.gain(batch) == pytest.approx(np.mean(gains))
    assert np.mean(three.bases) == pytest.approx(three.base)
    with pytest.raises(ValueError, match="1 or more"):
        Audit(one.lab, one.labeled, one.test, seed=1, replicates=0)


def test_audit_noise_sets_a_rho_ceiling_from_the_seeds_agreement():
    rng = np.random.default_rng(0)
    true = np.linspace(0.0, 0.1, 12)
    sizes, budget = [5, 5] + [10] * 12, 10
    clean = np.concatenate([np.zeros((3, 2)), true + 0.002 * rng.standard_normal((3, 12))], 1)
    noisy = np.concatenate([np.zeros((3, 2)), 0.05 + 0.05 * rng.standard_normal((3, 12))], 1)
    c, n = audit_noise(clean, sizes, budget), audit_noise(noisy, sizes, budget)
    assert c["audit_reliability"] > 0.95 and c["rho_ceiling"] > 0.95
    assert c["audit_sd"] == pytest.approx(0.002, rel=0.5)
    assert n["rho_ceiling"] < 0.4 and n["audit_sd"] == pytest.approx(0.05, rel=0.5)
    assert audit_noise(clean[:1], sizes, budget)["rho_ceiling"] is None  # one seed: unknown


def test_gate_with_a_noisy_replicated_audit_says_rho_is_undecidable(tmp_path):
    make_ctx, audit = setting({}, noise=0.3, audit_seeds=3)
    rows = run_gate(make_ctx, 6, audit, ("consistency",), ("crossfit",), SMALL, random_batches=6)
    (r,) = rows
    by_seed = np.asarray(r["realised_by_seed"])
    assert by_seed.shape == (3, len(r["realised"])) and r["audit_seeds"] == 3
    assert np.allclose(by_seed.mean(0), r["realised"])
    assert not r["pass"] and r["rho_ceiling"] < 0.4 and r["rho_decidable"] is False
    write_report(rows, tmp_path, {"setting": "fake", "audit_base_ap50": audit.base})
    text = (tmp_path / "gate.md").read_text()
    assert "| consistency | crossfit | 3 |" in text and "FAIL, rho undecidable" in text
    assert "3 training seeds, each paired with the base" in text

    make_ctx, audit = setting(planted(0.3), noise=0.002, audit_seeds=2)
    (r,) = run_gate(make_ctx, 6, audit, ("oracle",), ("crossfit",), SMALL, random_batches=4)
    assert r["pass"] and r["rho_decidable"] is True and r["rho_ceiling"] > 0.9


@pytest.mark.slow
def test_gate_at_a_later_round_gates_the_model_the_walk_strategys_run_reaches(tmp_path):
    """--round 1 runs random's loop to round 1: the gated model is that strategy's run's
    round-1 model (the same test AP50, bit for bit, after the same selection), on the same
    60 labeled images, and gate.md says which round and walk it gated."""
    import json

    from albench.config import resolve
    from albench.loop import ActiveLearningLoop
    from albench.results import read_rows

    run = ActiveLearningLoop(resolve("smoke", strategy="random", seed=5), tmp_path / "runs",
                             lab_workers=1).run()
    rows = read_rows(run.run_dir / "rounds.csv")
    out = tmp_path / "gate"
    assert main(["--preset", "smoke", "--seed", "5", "--round", "1", "--out", str(out),
                 "--estimators", "oracle", "--eval-sets", "holdout", "--random", "1",
                 "--opt", "groups=2", "--opt", "ladder=1", "--opt", "iterations=10",
                 "--opt", "replicates=2", "--opt", "variant_epochs=1"]) == 0
    gate = json.loads((out / "gate.json").read_text())
    walk = gate["walk"]
    assert [w["round"] for w in walk] == [0, 1] and gate["walk_strategy"] == "random"
    assert [w["ap50_test"] for w in walk] == [float(r["ap50"]) for r in rows[:2]]
    assert walk[0]["selection_sha256"] == rows[0]["selection_sha256"]
    assert walk[1]["n_labeled"] == int(rows[1]["n_labeled"]) == 60
    (row,) = gate["rows"]
    assert row["estimator"] == "oracle" and len(row["estimated"]) == len(row["realised"]) >= 1
    text = (out / "gate.md").read_text()
    assert "smoke seed 5 round 1" in text and "round 1's of the random loop" in text
