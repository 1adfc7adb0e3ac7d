"""Write the synthetic results folder the paper-figure tests draw from (no training).

    PYTHONPATH=. python tests/data/paper/make_fixture.py

Runs of random, entropy, coreset, ll4al and mgral x seeds 0-1 on the tiny setting of
sweeps/tiny.yaml, in the formats the loop writes (manifest.json, rounds.csv,
selections.jsonl; diagnostics.jsonl for mgral in the format of docs/reports.md). The
numbers are made up; the ids are real pool ids of that shapes setting, so figure 3 can
load the images. Deterministic: running it again writes the same files.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from albench.config import resolve
from albench.data import load_dataset
from albench.paper.spec import load_figure_set, plan
from albench.results import atomic_write_json, write_jsonl, write_rows

HERE = Path(__file__).resolve().parent
OUT = HERE / "results"
SLOPE = {"random": 0.004, "entropy": 0.006, "coreset": 0.004, "ll4al": 0.005, "mgral": 0.0055}


def main() -> None:
    figset = load_figure_set(HERE / "figures.yaml")
    (panel,) = plan(figset, "tiny")
    configs = list(panel.configs)
    for seed in sorted({c.seed for c in configs} if "mgral" not in {c.strategy for c in configs} else ()):
        base = next(c for c in configs if c.seed == seed)
        params = {k: v for k, v in base.to_dict().items() if k != "preset"}
        configs.append(resolve(base.preset, **{**params, "strategy": "mgral", "strategy_options": {}}))
    if OUT.exists():
        shutil.rmtree(OUT)
    first = configs[0]
    ds = load_dataset(first.dataset, **first.dataset_options)
    for cfg in configs:
        write_run(cfg, ds)
    print(f"{len(configs)} runs -> {OUT}")


def write_run(cfg, ds) -> None:
    run_dir = OUT / cfg.run_id()
    rng = np.random.default_rng([cfg.seed, sum(map(ord, cfg.strategy))])
    init_rng = np.random.default_rng(cfg.seed)
    pool = np.asarray(ds.pool_ids)
    labeled = list(init_rng.choice(pool, cfg.initial, replace=False))
    rows, selections, diagnostics = [], [], []
    ap50 = 0.10 + 0.01 * cfg.seed
    for round_ in range(cfg.rounds + 1):
        n = len(labeled)
        ap50 = 0.10 + 0.01 * cfg.seed + SLOPE[cfg.strategy] * (n - cfg.initial) + rng.normal(0, 0.005)
        t_train = 0.0 if (round_ == 0 and cfg.strategy != "random") else 20.0 + n / 4
        t_strategy = 30.0 + round_ if cfg.strategy == "mgral" else (1.5 if cfg.strategy == "ll4al" else 0.0)
        times = dict(t_train_s=t_train, t_infer_s=1.2, t_eval_s=0.4, t_select_s=0.05,
                     t_strategy_train_s=t_strategy)
        row = dict(dataset=cfg.dataset, backend=cfg.backend, strategy=cfg.strategy, preset=cfg.preset,
                   seed=cfg.seed, round=round_, n_labeled=n, n_boxes_labeled=3 * n, ap=ap50 * 0.6,
                   ap50=ap50, ap75=ap50 * 0.5, per_class_ap=json.dumps({c: ap50 for c in ds.classes}),
                   **times, t_round_s=sum(times.values()), peak_rss_mb=900.0, peak_gpu_mb=0.0,
                   n_selected=0, selection_sha256="", round0_cached=int(t_train == 0.0))
        if round_ < cfg.rounds:
            free = np.setdiff1d(pool, labeled)
            ids = [int(i) for i in rng.choice(free, cfg.budget, replace=False)]
            selections.append({"ids": ids, "round": round_,
                               "scores": [float(s) for s in np.sort(rng.random(cfg.budget))[::-1]]})
            labeled += ids
            row["n_selected"] = len(ids)
            if cfg.strategy == "mgral":
                diagnostics.append(mgral_line(round_, rng, cfg.budget))
        rows.append(row)
    write_rows(run_dir / "rounds.csv", rows)
    write_jsonl(run_dir / "selections.jsonl", selections)
    if diagnostics:
        write_jsonl(run_dir / "diagnostics.jsonl", diagnostics)
    atomic_write_json(run_dir / "manifest.json", {
        "config": cfg.to_dict(), "config_hash": cfg.config_hash(), "run_id": cfg.run_id(),
        "setting_hash": cfg.setting_hash(), "status": "complete", "label": cfg.strategy,
        "rounds_done": cfg.rounds + 1, "upper_bound": False, "strategy_requires": [],
        "dataset": {"name": ds.name, "classes": ds.classes, "fingerprint": ds.fingerprint(),
                    "params": ds.params, "warnings": []},
        "resolved": {"budget": cfg.budget, "initial": cfg.initial, "pool": len(ds.pool_ids),
                     "test": len(ds.test_ids)},
        "versions": {}, "hardware": {}, "git_commit": "synthetic test fixture",
    })


def mgral_line(round_: int, rng: np.random.Generator, budget: int) -> dict:
    groups = 3
    ladder = [[2, 4, 8], [2, 4], [2, 4, 8]]
    lut = [[round(float(v), 4) for v in np.cumsum(rng.uniform(0.0, 0.01, len(rung)))] for rung in ladder]
    chosen = [3, 2, 3]
    iterations = 20
    reward = np.linspace(-0.02, 0.01, iterations) + rng.normal(0, 0.002, iterations)
    t_variant = 4.0
    lookup_us = 12.0
    return {"round": round_, "strategy": "mgral", "estimator": "consistency", "agent": "lstm",
            "candidates": 24, "groups": groups, "group_sizes": [9, 5, 10], "ladder": ladder,
            "lut": lut, "baseline_ap50": 0.2, "model_ap50_R": 0.21 + 0.02 * round_,
            "variants": 1 + sum(len(r) for r in ladder), "t_lut_s": 9 * t_variant,
            "t_agent_s": 3.0, "t_variant_s": t_variant, "lookup_us": lookup_us,
            "lookup_speedup": t_variant / (lookup_us * 1e-6), "iterations": iterations,
            "reward_curve": [round(float(v), 5) for v in reward],
            "estimated_gain": round(float(sum(float(np.interp(c, [0, *r], [0, *g]))
                                              for c, r, g in zip(chosen, ladder, lut))), 5),
            "chosen_per_group": chosen}


if __name__ == "__main__":
    main()
