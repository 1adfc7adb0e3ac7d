"""MGRAL's validity gate: does the table measure what it should, at this setting?

    python -m strategies.mgral.gate --preset quick --seed 0 --round 0 --out DIR \\
        [--estimators consistency,pseudo,oracle] [--eval-sets crossfit,pseudo,holdout] \\
        [--opt KEY=VALUE ...] [--data-root ROOT] [--backend-opt KEY=VALUE ...] \\
        [--initial N] [--budget B] [--random N] [--audit-seeds S] [--walk STRATEGY]

No AL loop of MGRAL runs. At the round's model the table is built for every estimator x
eval_set, exactly as the strategy builds it (label-free except ``estimator=oracle``, the
positive control), and measured. The round's model is the loop's: round 0's from its cache
when there; for ``--round N`` the loop of the ``--walk`` strategy (default random) runs
rounds 0..N-1 (its selections, its models: same seeds, warm starts, cache), so the gate
scores the very model and labeled set that strategy's run reaches at round N on this CPU
(``gate.json`` records each walked round's test AP50 and selection hash to check against
that run's ``rounds.csv``):

(a) stability: the baseline variants' AP50 on the evaluation set minus the base models'
    (``model_ap50_eval``), and the SD of the baseline over replicate seeds;
(b) reliability: the ICC of the group effects between replicate tables;
(c) validity: Spearman's rho between the table's estimate of a batch and its *real*
    next-round test gain over the audited batches of the budget's size (smaller ones, from
    groups smaller than the budget, are audited and recorded but left out: fewer images
    gain less whatever the table knows): for each group's largest batch and ``--random``
    random batches,
    the round's model is trained the way the loop trains the next round (warm, true
    labels: an audit, not a strategy) and scored on the test split, minus the same
    training without the batch; with ``--audit-seeds S`` the mean over S training seeds,
    and the audit's own reliability and the rho ceiling it allows are reported beside it.

Thresholds (all must hold): |stability| <= 0.01 AP50, ICC >= 0.5, rho >= 0.4. The report
(``gate.md``, ``gate.json``, ``gate.png``) says PASS or FAIL per row; the exit status is 0
either way (2 on bad input).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from strategies.mgral import VALIDITY

THRESHOLDS = {"stability": 0.01, "icc": 0.5, "rho": 0.4}


def spearman(a, b) -> float | None:
    from scipy.stats import spearmanr

    # table values that differ only by float rounding (one value summed in another order)
    # are ties, not a ranking
    a, b = np.round(np.asarray(a, np.float64), 12), np.round(np.asarray(b, np.float64), 12)
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(spearmanr(a, b).statistic)


def validity_rho(est, real, sizes, budget: int) -> float | None:
    """Spearman's rho over the audited batches of the budget's size only: a group smaller
    than the budget gives a smaller batch, which realises less for its size alone, and every
    table values fewer images less, so counting such batches rewards a table for knowing
    that more labels help (None below three full-size batches)."""
    full = [k for k, n in enumerate(sizes) if n == budget]
    return spearman([est[k] for k in full], [real[k] for k in full])


def verdict(row: dict) -> bool:
    s, i, r = row["stability"], row["icc"], row["rho"]
    return (s is not None and abs(s) <= THRESHOLDS["stability"] and i is not None
            and i >= THRESHOLDS["icc"] and r is not None and r >= THRESHOLDS["rho"])


def audit_seed(seed: int, k: int) -> int:
    """The training seed of audit replicate ``k``: replicate 0 is ``seed`` itself (the
    one-seed audit of the gate reports made before replicates), the others drawn from it."""
    if k == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), 7, k]).generate_state(1)[0] % 2**31)


class Audit:
    """Real next-round test gains of batches (true labels, warm fit like the loop's), from
    ``replicates`` training seeds: each seed's gain is paired with the base trained with the
    same seed, and a batch's real gain is their mean."""

    def __init__(self, lab, labeled: np.ndarray, test: np.ndarray, seed: int,
                 replicates: int = 1) -> None:
        from albench.strategy import FinetuneJob

        if replicates < 1:
            raise ValueError(f"an audit needs 1 or more training seeds, got {replicates}")
        self.lab, self.labeled, self.test, self._cache = lab, labeled, test, {}
        self.seeds = [audit_seed(seed, k) for k in range(replicates)]
        self._job = lambda extra, s: FinetuneJob(labeled, extra, unsup="labels" if len(extra) else "none",
                                                 epochs=lab.epochs(True), seed=s)
        self.bases = self._aps(())
        self.base = float(np.mean(self.bases))

    def _aps(self, batch) -> list[float]:
        """Test AP50 of the fit with ``batch``, one per training seed (the seeds not yet
        cached trained together, in the lab's workers where it has several)."""
        key = tuple(sorted(int(i) for i in batch))
        todo = [s for s in self.seeds if (key, s) not in self._cache]
        if todo:
            extra = np.asarray(key, np.int64)
            models = self.lab.finetune_many([self._job(extra, s) for s in todo])
            for s, model in zip(todo, models):
                self._cache[(key, s)] = float(self.lab.score(model, self.test).ap50)
        return [self._cache[(key, s)] for s in self.seeds]

    def gains(self, batch) -> list[float]:
        """The batch's real gain at each training seed."""
        return [a - b for a, b in zip(self._aps(batch), self.bases)]

    def gain(self, batch) -> float:
        return float(np.mean(self.gains(batch)))


def audit_noise(by_seed: np.ndarray, sizes, budget: int) -> dict:
    """How far the audit itself can be trusted, over the full-size batches: ``by_seed``
    [S, N] real gains per training seed. ``audit_reliability``: of the S-seed mean (ICC
    of the batches' gains between seeds); ``rho_ceiling``: its square root, the highest
    correlation any table, even one that knew every batch's true gain, can expect with the
    audited means (classical test theory; a ceiling below the rho threshold means a FAIL on
    rho cannot tell a wrong table from a noisy audit); ``audit_sd``: one seed's noise;
    ``audit_sd_between``: the spread of the batches' true gains. None below 2 seeds."""
    from strategies.mgral.shrink import icc

    full = [k for k, n in enumerate(sizes) if n == budget]
    m = icc(np.asarray(by_seed, np.float64)[:, full])  # None fields below 2 seeds or 2 batches
    rel = m["reliability"]
    return {"audit_icc": m["icc"], "audit_reliability": rel, "audit_sd": m["sd_within"],
            "audit_sd_between": m["sd_between"],
            "rho_ceiling": None if rel is None else float(np.sqrt(max(rel, 0.0)))}


def measure(strategy, ctx, budget: int, audit: Audit, random_batches: int, seed: int) -> dict:
    """One gate row: the table of ``strategy`` (an MGRAL instance) at ``ctx``, and its
    stability, reliability and validity against ``audit``."""
    b = strategy.build_table(ctx, budget)
    base = [a for a in b.info["baseline_ap50s"] if a is not None]
    model_ap = b.info["model_ap50_eval"]
    batches = [b.cand[m[:min(len(m), budget)]] for m in b.members if len(m)]
    rng = np.random.default_rng([seed, 5])
    batches += [np.sort(rng.choice(b.cand, min(budget, len(b.cand)), replace=False))
                for _ in range(random_batches)]
    index = {int(c): k for k, c in enumerate(b.cand)}
    est = [b.table.estimate(np.array([index[int(i)] for i in x])) for x in batches]
    by_seed = np.asarray([audit.gains(x) for x in batches], np.float64).T  # [S, batches]
    real = list(by_seed.mean(0))
    sizes = [int(len(x)) for x in batches]
    row = {"stability": float(np.mean(base) - model_ap) if base and model_ap is not None else None,
           "seed_sd": float(np.std(base, ddof=1)) if len(base) > 1 else None,
           "icc": b.info.get("icc"), "reliability": b.info.get("reliability"),
           "shrinkage": b.info.get("shrinkage"), "rho": validity_rho(est, real, sizes, budget),
           "rho_all": spearman(est, real), "batch_sizes": sizes, "budget": budget,
           "model_ap50_eval": model_ap, "estimated": [float(v) for v in est],
           "realised": [float(v) for v in real], "variants": b.info["variants"],
           "t_lut_s": b.t_lut, "audit_seeds": int(by_seed.shape[0]),
           "realised_by_seed": by_seed.tolist(), **audit_noise(by_seed, sizes, budget)}
    row["pass"] = verdict(row)
    ceiling = row["rho_ceiling"]
    row["rho_decidable"] = None if ceiling is None else bool(ceiling >= THRESHOLDS["rho"])
    return row


def run_gate(make_ctx, budget: int, audit: Audit, estimators, eval_sets, options: dict,
             random_batches: int = 4, seed: int = 0) -> list[dict]:
    """Rows for every estimator x eval_set; ``make_ctx(strategy)`` gives a fresh context
    at the gated round (its lab may reveal true labels when the strategy declares it)."""
    from albench.strategy import build_strategy, strategy_options

    from albench.progress import Reporter

    rows = []
    cells = [(est, kind) for est in estimators for kind in eval_sets]
    reporter = Reporter(interval=0.0)  # one line per finished row, minutes apart
    with reporter.phase("gate rows", len(cells)) as tick:
        for est, kind in cells:
            opts = strategy_options("mgral", {**options, "estimator": est, "eval_set": kind,
                                              "shrink": True})
            strategy = build_strategy("mgral", opts)
            row = measure(strategy, make_ctx(strategy), budget, audit, random_batches, seed)
            rows.append({"estimator": est, "eval_set": kind, **row})
            tick(1, f"{est}/{kind} {'PASS' if row['pass'] else 'FAIL'} "
                    f"({row['t_lut_s']:.0f} s table)")
    return rows


def _batches(row: dict, budget) -> str:
    """The batch count cell: full-size batches (those rho uses) of all audited, where known;
    the row's own budget (the one its rho used) before the setting's."""
    n = len(row.get("estimated", []))
    sizes, budget = row.get("batch_sizes"), row.get("budget", budget)
    if sizes is None or budget is None:
        return f"{n}"
    return f"{sum(1 for s in sizes if s == budget)} of {n}"


def _verdict(row: dict) -> str:
    if row["pass"]:
        return "PASS"
    return "FAIL, rho undecidable" if row.get("rho_decidable") is False else "FAIL"


def report_lines(rows: list[dict], header: dict) -> list[str]:
    """The Markdown of ``gate.md``: the rows against the thresholds, and what they rest on."""
    budget = (header.get("config") or {}).get("budget")
    f = lambda v: "—" if v is None else f"{v:+.3f}"  # noqa: E731
    lines = [f"# MGRAL validity gate: {header.get('setting', '')}", ""]
    if header.get("command"):
        lines += ["    " + header["command"], ""]
    walk = header.get("walk") or []
    if len(walk) > 1:
        steps = ", ".join(f"{w['ap50_test']:.3f}" for w in walk)
        lines += [f"The gated model is round {walk[-1]['round']}'s of the "
                  f"{header.get('walk_strategy')} loop at this seed ({walk[-1]['n_labeled']} labeled "
                  f"images); its test AP50 in rounds 0..{walk[-1]['round']}: {steps}. That "
                  "strategy's run at this seed and setting on this CPU records the same AP50 and "
                  "selection hashes (`walk` in gate.json).", ""]
    lines += [f"Thresholds: |stability| <= {THRESHOLDS['stability']} AP50, ICC >= "
              f"{THRESHOLDS['icc']}, Spearman rho >= {THRESHOLDS['rho']} (all must hold).", "",
              "| estimator | eval_set | base AP50 (eval) | stability | seed SD | ICC | reliability "
              "| shrinkage | batches | rho | variants | table s | verdict |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        t = r.get("t_lut_s")
        lines.append(f"| {r['estimator']} | {r['eval_set']} | {f(r.get('model_ap50_eval'))} | "
                     f"{f(r['stability'])} | {f(r['seed_sd'])} | {f(r['icc'])} | "
                     f"{f(r.get('reliability'))} | {f(r['shrinkage'])} | "
                     f"{_batches(r, budget)} | {f(r['rho'])} | {r.get('variants', '—')} | "
                     f"{'—' if t is None else f'{t:.0f}'} | {_verdict(r)} |")
    replicated = [r for r in rows if (r.get("audit_seeds") or 1) > 1]
    if replicated:
        lines += ["", "The audit's own noise, over the full-size batches:", "",
                  "| estimator | eval_set | audit seeds | one seed's SD | SD between batches "
                  "| audit reliability | rho ceiling | rho decidable |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in replicated:
            d = r.get("rho_decidable")
            lines.append(f"| {r['estimator']} | {r['eval_set']} | {r['audit_seeds']} | "
                         f"{f(r.get('audit_sd'))} | {f(r.get('audit_sd_between'))} | "
                         f"{f(r.get('audit_reliability'))} | {f(r.get('rho_ceiling'))} | "
                         f"{'—' if d is None else ('yes' if d else 'no')} |")
        lines += ["", "one seed's SD: of a batch's real gain between training seeds; SD between "
                  "batches: of the batches' true gains (both from the ICC's mean squares); audit "
                  "reliability: of the mean over the seeds; rho ceiling: its square root, about "
                  "the highest rho a table that knew every batch's true gain could expect against "
                  "these audited means. Where the ceiling is below the rho threshold, a FAIL on rho "
                  "cannot tell a wrong table from a noisy audit (verdict `FAIL, rho undecidable`)."]
    base, secs = header.get("audit_base_ap50"), header.get("seconds")
    lines += ["", "base AP50 (eval): the models the variants start from, on the scored set "
              "(the round's model on its reward split for holdout, which it trained on; the "
              "shadows on the folds they did not train on for crossfit; the round's model "
              "against its own pseudo-labels for pseudo, so 1.000 by construction). stability: baseline "
              "variants minus those models; seed SD: of the baseline over replicates; ICC: "
              "single-replicate ICC of the group effects, reliability: of their replicate mean, "
              "shrinkage: the factor applied (its one-sided 95% lower bound; 0 = every group on "
              "the common curve). rho: Spearman between the table's estimate and the audited "
              "real test gain over the batches of the budget's size (`batches`: those of all "
              "audited, each group's largest batch, at most the budget, and random batches of "
              "the budget's size; a group smaller than the budget gives a smaller batch, which "
              "any table ranks low for its size alone, so those are audited but left out of "
              "rho; rows without `of` were made before that rule and count every batch): with "
              "shrinkage 0 the table ranks only how a batch spreads over the groups.",
              ""]
    if base is not None:
        k = max((r.get("audit_seeds") or 1 for r in rows), default=1)
        seeds = ("one seed" if k == 1 else
                 f"{k} training seeds, each paired with the base trained at the same seed, averaged")
        lines.append(f"Audit: the round's model warm-trained without a batch scores AP50 "
                     f"{base:.3f} on the test split; each batch's real gain is the same training "
                     f"with it, {seeds}." + (f" The gate took {secs:.0f} s." if secs else ""))
    return lines


def write_report(rows: list[dict], out: Path, header: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "gate.json").write_text(json.dumps({**header, "thresholds": THRESHOLDS, "rows": rows},
                                              indent=1, default=str))
    (out / "gate.md").write_text("\n".join(report_lines(rows, header)) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, max(1, len(rows)), figsize=(3 * max(1, len(rows)), 3), squeeze=False)
    for ax, r in zip(axes[0], rows):
        by_seed = np.asarray(r.get("realised_by_seed") or [r["realised"]], np.float64)
        if by_seed.shape[0] > 1:  # the audit's spread between training seeds
            ax.errorbar(r["estimated"], r["realised"], yerr=by_seed.std(0, ddof=1), fmt="o",
                        ms=3, elinewidth=0.6, capsize=1.5)
        else:
            ax.scatter(r["estimated"], r["realised"], s=12)
        ax.set_title(f"{r['estimator']}/{r['eval_set']}", fontsize=8)
        ax.set_xlabel("table estimate", fontsize=7)
        ax.set_ylabel("real test gain", fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "gate.png", dpi=100)
    plt.close(fig)


def gate_from_args(a, argv_given: list[str] | None = None) -> None:
    """The command on a real setting: the loop's data, backend and the gated round's model
    (round 0's from its cache; later rounds' from the walk strategy's loop), a lab whose
    fine-tunes may read true labels only for the oracle estimator, and the audit's own lab
    (true labels of every image, test split included: the audit is not a strategy)."""
    from albench.config import resolve
    from albench.errors import ConfigError
    from albench.lab import Lab, LabWorkers, default_workers
    from albench.loop import ActiveLearningLoop, model_seed, stream
    from albench.options import parse_kv
    from albench.pool import Oracle
    from albench.strategy import Meter, ModelView, SelectionContext

    from albench.pool import ids_sha256
    from albench.strategy import get_strategy

    if a.round < 0:
        raise ConfigError(f"--round {a.round} is negative; pass the round whose model is gated, "
                          "0 or more (default 0). Nothing was trained or written.")
    get_strategy(a.walk)  # an unknown --walk is refused before any work
    from strategies.mgral import ESTIMATOR_JOB
    from strategies.mgral.evalset import EVAL_SETS

    estimators = [e for e in a.estimators.split(",") if e]
    eval_sets = [e for e in a.eval_sets.split(",") if e]
    for flag, given, allowed in (("--estimators", estimators, tuple(ESTIMATOR_JOB)),
                                 ("--eval-sets", eval_sets, EVAL_SETS)):
        wrong = [g for g in given if g not in allowed]
        if wrong or not given or len(set(given)) != len(given):
            raise ConfigError(
                f"{flag} {','.join(given) or '(empty)'} is not a comma-separated list of distinct "
                f"names from {', '.join(allowed)}" + (f" ({', '.join(wrong)} unknown)" if wrong else "")
                + f"; pass e.g. {flag} {allowed[0]}. Nothing was trained or written.")
    if a.audit_seeds < 1:
        raise ConfigError(f"--audit-seeds {a.audit_seeds} is below 1; pass the number of training "
                          "seeds each audited batch is trained with, 1 or more (default 1). "
                          "Nothing was trained or written.")
    if a.random < 0:
        raise ConfigError(f"--random {a.random} is negative; pass the number of random batches to "
                          "audit, 0 or more (default 4). Nothing was trained or written.")
    dataset_options = parse_kv(a.dataset_opt, "--dataset-opt")
    if a.data_root:
        dataset_options["data_root"] = a.data_root
    over = {"strategy": "mgral", "seed": a.seed, "dataset": a.dataset, "backend": a.backend,
            "initial": a.initial, "budget": a.budget,
            "device": a.device, "dataset_options": dataset_options or None,
            "backend_options": parse_kv(a.backend_opt, "--backend-opt") or None,
            "strategy_options": {**VALIDITY, **parse_kv(a.opt, "--opt"),
                                 "estimator": estimators[0], "eval_set": eval_sets[0]}}
    cfg = resolve(a.preset, **{k: v for k, v in over.items() if v is not None})
    options = {**VALIDITY, **parse_kv(a.opt, "--opt")}  # the validity variant unless --opt
    out = Path(a.out)
    sized = f"; {cfg.initial} labels, budget {cfg.budget}" if a.initial or a.budget else ""
    walked = f", after {a.round} round(s) of {a.walk}" if a.round else ""
    setting = (f"{a.preset} seed {a.seed} round {a.round} ({cfg.dataset}, {cfg.backend}{sized}"
               f"{walked})")
    walk_cfg = resolve(a.preset, **{k: v for k, v in {**over, "strategy": a.walk,
                                                      "strategy_options": None}.items()
                                    if v is not None})
    loop = ActiveLearningLoop(walk_cfg, out / "loop", lab_workers=1)  # the walk's own loop
    loop._setup()
    if a.round >= loop.last_round:
        raise ConfigError(f"--round {a.round} has no selection to gate: the loop of {a.preset} "
                          f"ends at round {loop.last_round} (rounds 0..{loop.last_round}, the last "
                          f"one only trained and evaluated); pass --round 0..{loop.last_round - 1}."
                          " Nothing was trained or written.")
    state = loop._initial_state()
    truth = loop.ds.annotations
    oracle = Oracle(truth, state)
    t0 = time.perf_counter()
    walk = []
    for r in range(a.round + 1):  # the walk's loop up to the gated round's model
        loop._fit(r, oracle.label(state.labeled))
        step = {"round": r, "n_labeled": int(len(state.labeled)),
                "ap50_test": float(loop._evaluate()[0]["ap50"])}
        if r < a.round:
            sel = loop._select(r, state, oracle)[0]
            state.mark(sel.ids, r + 1)
            step["selection_sha256"] = ids_sha256(sel.ids)
        walk.append(step)
    workers = LabWorkers(default_workers())

    def everything(ids):
        return {int(i): truth[int(i)] for i in ids}

    audit_lab = Lab(loop.backend, everything, loop.ds.classes, engine=cfg.eval_engine,
                    true_labels=everything, workers=workers)
    audit = Audit(audit_lab, state.labeled, np.asarray(loop.ds.test_ids, np.int64),
                  model_seed(cfg.seed, a.round + 1), replicates=a.audit_seeds)

    def make_ctx(strategy):
        meter = Meter()
        lab = Lab(loop.backend, oracle.label, loop.ds.classes, meter=meter, engine=cfg.eval_engine,
                  workers=workers,
                  true_labels=oracle.reveal_for_upper_bound if strategy.uses_true_labels else None)
        return SelectionContext(state.unlabeled, state.labeled, a.round,
                                np.random.default_rng(stream(cfg.seed, 2, a.round)),
                                ModelView(loop.backend, meter), meter, cfg.device, lab)

    budget = min(loop.budget, len(state.unlabeled))
    rows = run_gate(make_ctx, budget, audit, estimators, eval_sets, options,
                    random_batches=a.random, seed=a.seed)
    workers.close()
    write_report(rows, out, {"setting": setting, "config": cfg.to_dict(),
                             "command": "python -m strategies.mgral.gate " + " ".join(
                                 sys.argv[1:] if argv_given is None else argv_given),
                             "options": options, "seconds": time.perf_counter() - t0,
                             "audit_base_ap50": audit.base, "round": a.round,
                             "walk_strategy": a.walk, "walk": walk})
    for r in rows:
        print(f"{r['estimator']:>11} {r['eval_set']:>8}  stability {r['stability']}  "
              f"ICC {r['icc']}  rho {r['rho']}  {'PASS' if r['pass'] else 'FAIL'}")
    print(f"report: {out / 'gate.md'}")


def main(argv: list[str] | None = None) -> int:
    from albench.errors import ConfigError, DatasetError

    p = argparse.ArgumentParser(prog="python -m strategies.mgral.gate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="quick",
                   help="the setting whose round's model is gated (default: quick)")
    p.add_argument("--seed", type=int, default=0,
                   help="the seed of that setting; gate development seeds, not reported ones "
                        "(default: 0)")
    p.add_argument("--round", type=int, default=0,
                   help="the round whose model and labeled set are gated: rounds before it are "
                        "run by the --walk strategy's loop (default: 0)")
    p.add_argument("--walk", default="random",
                   help="the strategy whose loop selects rounds 0..N-1 before the gated round "
                        "N, at its default options (default: random)")
    p.add_argument("--initial", type=int, default=None,
                   help="labeled images at round 0 (default: the preset's)")
    p.add_argument("--budget", type=int, default=None,
                   help="images the gated round selects (default: the preset's); a larger "
                        "budget asks whether one batch's gain rises above the noise")
    p.add_argument("--out", required=True,
                   help="folder for gate.md, gate.json and gate.png (created; files in it "
                        "are replaced)")
    p.add_argument("--estimators", default="consistency,pseudo,oracle",
                   help="comma-separated estimators to build the table with; oracle (true "
                        "labels) is the positive control (default: all three)")
    p.add_argument("--eval-sets", default="crossfit,pseudo,holdout",
                   help="comma-separated evaluation sets the variants are scored on "
                        "(default: all three); every estimator x eval_set is one row")
    p.add_argument("--random", type=int, default=4,
                   help="random batches of the budget's size audited beside each group's "
                        "largest batch (default: 4)")
    p.add_argument("--audit-seeds", type=int, default=1,
                   help="training seeds each audited batch's real gain is averaged over, each "
                        "paired with the base at the same seed; 2 or more also measure the "
                        "audit's own noise and the highest rho it allows (default: 1)")
    p.add_argument("--opt", action="append", default=[],
                   help="mgral option KEY=VALUE, repeatable (docs/strategies.md lists them)")
    p.add_argument("--dataset", default=None, help="dataset, as for `albench run`")
    p.add_argument("--data-root", default=None,
                   help="local folder of the dataset (needed by real-small, voc, coco and folder)")
    p.add_argument("--backend", default=None, help="detector backend, as for `albench run`")
    p.add_argument("--backend-opt", action="append", default=[],
                   help="backend option KEY=VALUE, repeatable, e.g. weights=FILE")
    p.add_argument("--dataset-opt", action="append", default=[],
                   help="dataset option KEY=VALUE, repeatable")
    p.add_argument("--device", default=None, help="cpu or cuda[:N] (default: the preset's)")
    a = p.parse_args(argv)
    try:
        gate_from_args(a, argv)
    except (ConfigError, DatasetError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
