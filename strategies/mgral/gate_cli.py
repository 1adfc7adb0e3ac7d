"""The gate's command line on a real setting: the loop's data, backend and round-0 model
(its round-0 cache), a lab whose fine-tunes may read true labels only for the oracle
estimator, and the audit's own lab (true labels of every image, test split included: the
audit is not a strategy). See :mod:`strategies.mgral.gate`."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from albench.errors import ConfigError
from strategies.mgral.gate import Audit, run_gate, write_report


def gate_from_args(a) -> None:
    from albench.config import resolve
    from albench.lab import Lab, LabWorkers, default_workers
    from albench.loop import ActiveLearningLoop, model_seed, stream
    from albench.options import parse_kv
    from albench.pool import Oracle
    from albench.strategy import Meter, ModelView, SelectionContext

    if a.round != 0:
        raise ConfigError(f"The MGRAL gate measures round 0 only (got --round {a.round}); run it "
                          "with --round 0.")
    estimators = [e for e in a.estimators.split(",") if e]
    eval_sets = [e for e in a.eval_sets.split(",") if e]
    dataset_options = parse_kv(a.dataset_opt, "--dataset-opt")
    if a.data_root:
        dataset_options["data_root"] = a.data_root
    over = {"strategy": "mgral", "seed": a.seed, "dataset": a.dataset, "backend": a.backend,
            "device": a.device, "dataset_options": dataset_options or None,
            "backend_options": parse_kv(a.backend_opt, "--backend-opt") or None,
            "strategy_options": {**parse_kv(a.opt, "--opt"), "estimator": estimators[0],
                                 "eval_set": eval_sets[0]}}
    cfg = resolve(a.preset, **{k: v for k, v in over.items() if v is not None})
    options = parse_kv(a.opt, "--opt")
    out = Path(a.out)
    loop = ActiveLearningLoop(cfg, out / "loop", lab_workers=1)
    loop._setup()
    state = loop._initial_state()
    truth = loop.ds.annotations
    oracle = Oracle(truth, state)
    t0 = time.perf_counter()
    loop._fit(0, oracle.label(state.labeled))
    workers = LabWorkers(default_workers())

    def everything(ids):
        return {int(i): truth[int(i)] for i in ids}

    audit_lab = Lab(loop.backend, everything, loop.ds.classes, engine=cfg.eval_engine,
                    true_labels=everything, workers=workers)
    audit = Audit(audit_lab, state.labeled, np.asarray(loop.ds.test_ids, np.int64),
                  model_seed(cfg.seed, 1))

    def make_ctx(strategy):
        meter = Meter()
        lab = Lab(loop.backend, oracle.label, loop.ds.classes, meter=meter, engine=cfg.eval_engine,
                  workers=workers,
                  true_labels=oracle.reveal_for_upper_bound if strategy.uses_true_labels else None)
        return SelectionContext(state.unlabeled, state.labeled, 0,
                                np.random.default_rng(stream(cfg.seed, 2, 0)),
                                ModelView(loop.backend, meter), meter, cfg.device, lab)

    budget = min(loop.budget, len(state.unlabeled))
    rows = run_gate(make_ctx, budget, audit, estimators, eval_sets, options,
                    random_batches=a.random, seed=a.seed)
    workers.close()
    write_report(rows, out, {"setting": f"{a.preset} seed {a.seed} round 0 ({cfg.dataset}, "
                                        f"{cfg.backend})", "config": cfg.to_dict(),
                             "options": options, "seconds": time.perf_counter() - t0,
                             "audit_base_ap50": audit.base})
    for r in rows:
        print(f"{r['estimator']:>11} {r['eval_set']:>8}  stability {r['stability']}  "
              f"ICC {r['icc']}  rho {r['rho']}  {'PASS' if r['pass'] else 'FAIL'}")
    print(f"report: {out / 'gate.md'}")
