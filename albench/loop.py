"""The active-learning loop: one class, whose ``run`` reads as the game's steps.

Random streams are derived from one seed with ``numpy.random.SeedSequence``:
``(seed, 0)`` draws the initial labeled set, ``(seed, 1, r)`` seeds round r's model,
``(seed, 2, r)`` is round r's strategy generator. So the initial set and the round-0
model are the same for every strategy at a seed, and a resumed run draws exactly what an
uninterrupted one would.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from albench import _offline
from albench.backends import build_backend
from albench.config import RunConfig
from albench.data import DetectionDataset, load_dataset
from albench.errors import ConfigError
from albench.lab import FINETUNE_THREADS, Lab, LabWorkers, default_workers
from albench.pool import LabelState, Oracle, ids_sha256
from albench.progress import Reporter
from albench.results import (atomic_torch_save, atomic_write_json, git_commit, hardware,
                             package_versions, peak_rss_mb, read_jsonl, read_rows, run_complete,
                             write_jsonl, write_rows)
from strategies import build_strategy
from strategies.base import Meter, ModelView, Selection, SelectionContext


def stream(seed: int, *key: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(entropy=seed, spawn_key=key)


def model_seed(seed: int, round_: int) -> int:
    return int(stream(seed, 1, round_).generate_state(1)[0])


def count(value: int | float, total: int) -> int:
    """An absolute count, or a share of ``total`` when 0 < value < 1."""
    return int(round(value * total)) if isinstance(value, float) and 0 < value < 1 else int(value)


@dataclass
class RunResult:
    run_dir: Path
    rows: list[dict]
    status: str  # "complete" | "already complete"


class ActiveLearningLoop:
    """One AL run (strategy x seed x setting). Each round:

    1. fit the detector on the labeled set (round 0 from a shared cache when possible),
    2. evaluate it on the test split (one COCO path for every backend),
    3. let the strategy select a batch from the unlabeled pool,
    4. check the selection against the invariants and reveal its labels,
    5. save the round atomically: the point a crashed run resumes from.
    """

    def __init__(self, cfg: RunConfig, out: Path, *, force: bool = False,
                 reporter: Reporter | None = None, dataset: DetectionDataset | None = None,
                 lab_workers: int | None = None):
        self.cfg = cfg
        self.lab_workers = LabWorkers(lab_workers or default_workers())
        self.strategy = build_strategy(cfg.strategy, cfg.strategy_options)
        cfg.strategy_options = dict(self.strategy.opts)  # defaults filled in before hashing
        self.run_dir = Path(out) / cfg.run_id()
        self.force = force
        self.report = reporter or Reporter(quiet=True)
        self._dataset = dataset

    # ------------------------------------------------------------------ set-up
    def _setup(self) -> None:
        cfg = self.cfg
        ds = self._dataset or load_dataset(cfg.dataset, **cfg.dataset_options)
        if cfg.pool_subsample:
            ds = ds.subsample_pool(cfg.pool_subsample, seed=0)
        self.ds = ds
        n_pool = len(ds.pool_ids)
        self.initial, self.budget = count(cfg.initial, n_pool), count(cfg.budget, n_pool)
        if self.initial < 1 or self.budget < 1:
            raise ConfigError(f"--initial and --budget must be at least 1 image "
                              f"(got {self.initial} and {self.budget}).")
        if self.initial + self.budget > n_pool:
            raise ConfigError(
                f"The budget does not fit the pool: {self.initial} initial + {self.budget} per "
                f"round > {n_pool} pool images of {ds.name!r}. Lower --initial/--budget, or use "
                "a larger pool (a bigger dataset or no --pool-subsample)."
            )
        self.backend = build_backend(cfg.backend, ds.images, ds.num_classes,
                                     cfg.backend_options, cfg.device)
        if self.strategy.requires:
            self.backend.enable(self.strategy.requires)

    def _initial_state(self) -> LabelState:
        state = LabelState(self.ds.pool_ids)
        rng = np.random.default_rng(stream(self.cfg.seed, 0))
        state.mark(rng.choice(self.ds.pool_ids, size=self.initial, replace=False), 0)
        return state

    def _manifest(self, status: str, extra: dict | None = None) -> dict:
        ds = self.ds
        return {
            "run_id": self.cfg.run_id(), "status": status, "config": self.cfg.to_dict(),
            "config_hash": self.cfg.config_hash(), "setting_hash": self.cfg.setting_hash(),
            "label": self.cfg.strategy, "upper_bound": bool(self.strategy.uses_true_labels),
            "lab": {"workers": self.lab_workers.workers,
                    "threads_per_finetune": FINETUNE_THREADS},
            "strategy_requires": sorted(self.strategy.requires),
            "resolved": {"initial": self.initial, "budget": self.budget,
                         "pool": int(len(ds.pool_ids)), "test": int(len(ds.test_ids))},
            "recipe": self.backend.recipe(), "versions": package_versions(),
            "git_commit": git_commit(), "hardware": hardware(),
            "dataset": {"name": ds.name, "fingerprint": ds.fingerprint(), "params": ds.params,
                        "warnings": ds.warnings, "classes": ds.classes},
            **(extra or {}),
        }

    # ------------------------------------------------------------------ steps
    def _fit(self, round_: int, labeled: dict) -> tuple[float, float, bool]:
        """Train round ``round_``'s model; returns (seconds, seconds of them in extra
        heads, came from the round-0 cache)."""
        seed = model_seed(self.cfg.seed, round_)
        warm = self.cfg.train_mode == "warm" and round_ > 0
        cache = self._round0_path(labeled) if round_ == 0 else None
        if cache is not None and cache.with_suffix(".json").exists():
            self.backend.load(cache)
            meta = json.loads(cache.with_suffix(".json").read_text())
            return meta["t_train_s"], meta.get("t_train_aux_s", 0.0), True
        epochs = self.backend.opts["warm_epochs" if warm else "epochs"]
        t0 = time.perf_counter()
        with self.report.phase(f"round {round_}: train", total=epochs) as tick:
            rep = self.backend.fit(labeled, seed, warm_start=warm,
                                   progress=lambda e, n, loss: tick(1, f"loss {loss:.2f}"))
        seconds = time.perf_counter() - t0  # the whole fit, model construction included
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            self.backend.save(cache)
            atomic_write_json(cache.with_suffix(".json"), {
                "t_train_s": seconds, "t_train_aux_s": rep.aux_seconds, "losses": rep.losses})
        return seconds, rep.aux_seconds, False

    def _round0_path(self, labeled: dict) -> Path:
        key = json.dumps({"dataset": self.ds.fingerprint(), "recipe": self.backend.recipe(),
                          "labeled": ids_sha256(np.fromiter(labeled, np.int64)),
                          "seed": model_seed(self.cfg.seed, 0), "device": self.cfg.device},
                         sort_keys=True)
        return _offline.cache_root() / "models" / (hashlib.sha256(key.encode()).hexdigest()[:24] + ".pt")

    def _evaluate(self) -> tuple[dict, float, float]:
        from albench.eval import evaluate

        test = self.ds.test_ids
        t0 = time.perf_counter()
        with self.report.phase("predict test split", total=None):
            dets = self.backend.predict(test)
        t1 = time.perf_counter()
        result = evaluate(self.ds, test, dets, engine=self.cfg.eval_engine)
        return result.as_row(), t1 - t0, time.perf_counter() - t1

    def _select(self, round_: int, state: LabelState, oracle: Oracle) -> tuple[Selection, Meter, float]:
        meter = Meter()
        lab = Lab(self.backend, oracle.label, self.ds.classes, meter=meter,
                  engine=self.cfg.eval_engine, workers=self.lab_workers,
                  true_labels=oracle.reveal_for_upper_bound if self.strategy.uses_true_labels else None)
        ctx = SelectionContext(
            unlabeled=state.unlabeled, labeled=state.labeled, round=round_,
            rng=np.random.default_rng(stream(self.cfg.seed, 2, round_)),
            model=ModelView(self.backend, meter), meter=meter, device=self.cfg.device, lab=lab)
        budget = min(self.budget, len(ctx.unlabeled))
        t0 = time.perf_counter()
        with self.report.phase(f"round {round_}: select ({self.cfg.strategy})", total=None):
            sel = self.strategy.select(ctx, budget)
        wall = time.perf_counter() - t0
        state.check_selection(sel.ids, budget, self.cfg.strategy)
        return sel, meter, wall

    # ------------------------------------------------------------------ run
    def run(self) -> RunResult:
        cfg, run_dir = self.cfg, self.run_dir
        if not self.force and run_complete(run_dir):  # before any loading
            self.report.note(f"{run_dir} is already complete; nothing to do (--force reruns it).")
            return RunResult(run_dir, read_rows(run_dir / "rounds.csv"), "already complete")
        self._setup()
        manifest_path, state_dir = run_dir / "manifest.json", run_dir / "state"
        rows = read_rows(run_dir / "rounds.csv")
        selections = read_jsonl(run_dir / "selections.jsonl")
        diagnostics = read_jsonl(run_dir / "diagnostics.jsonl")
        if self.force and run_dir.exists():
            shutil.rmtree(run_dir)
            rows, selections, diagnostics = [], [], []

        state, start = self._initial_state(), 0
        saved = state_dir / "state.json"
        if saved.exists():
            blob = json.loads(saved.read_text())
            state = LabelState(self.ds.pool_ids, np.array(blob["labeled_round"]))
            start = int(blob["next_round"])
            rows = [r for r in rows if int(r["round"]) < start]
            selections = [s for s in selections if int(s["round"]) < start]
            diagnostics = [d for d in diagnostics if int(d["round"]) < start]
            if start > 0 and (state_dir / "model.pt").exists():
                self.backend.load(state_dir / "model.pt")
            if (state_dir / "strategy.pt").exists():
                import torch

                self.strategy.load_state_dict(torch.load(state_dir / "strategy.pt", weights_only=False))
            self.report.note(f"resuming {run_dir.name} at round {start}")
        atomic_write_json(manifest_path, self._manifest("running"))
        oracle = Oracle(self.ds.annotations, state)

        for r in range(start, cfg.rounds + 1):
            t_round = time.perf_counter()
            labeled = oracle.label(state.labeled)
            t_train, t_aux, cached = self._fit(r, labeled)
            metrics, t_pred, t_eval = self._evaluate()
            row = {"dataset": cfg.dataset, "backend": cfg.backend, "strategy": cfg.strategy,
                   "preset": cfg.preset, "seed": cfg.seed, "round": r,
                   "n_labeled": len(labeled),
                   "n_boxes_labeled": sum(a.n_boxes for a in labeled.values()),
                   **metrics, "t_train_s": t_train, "t_train_aux_s": t_aux, "t_eval_s": t_eval,
                   "round0_cached": int(cached),
                   "t_select_s": 0.0, "t_strategy_train_s": 0.0, "n_selected": 0,
                   "selection_sha256": ""}
            t_infer = t_pred
            if r < cfg.rounds and len(state.unlabeled):
                sel, meter, wall = self._select(r, state, oracle)
                ids, scores = sel.ids, sel.scores
                state.mark(ids, r + 1)
                t_infer += meter.seconds.get("infer", 0.0)
                own = meter.seconds.get("strategy_train", 0.0)
                row.update(t_select_s=max(0.0, wall - meter.seconds.get("infer", 0.0) - own),
                           t_strategy_train_s=own, n_selected=len(ids),
                           selection_sha256=ids_sha256(ids))
                selections.append({"round": r, "ids": ids.tolist(),
                                   "scores": None if scores is None else [float(s) for s in scores],
                                   "sha256": row["selection_sha256"]})
                if sel.diagnostics:
                    diagnostics.append({**sel.diagnostics, "round": r, "strategy": cfg.strategy})
            row.update(t_infer_s=t_infer, t_round_s=time.perf_counter() - t_round,
                       peak_rss_mb=peak_rss_mb(), peak_gpu_mb=_peak_gpu_mb())
            rows.append(row)
            self._save(r, state, rows, selections, diagnostics)
            self.report.round_done(row)
            if not len(state.unlabeled):
                break

        self.lab_workers.close()
        atomic_write_json(manifest_path, self._manifest("complete", {"rounds_done": len(rows)}))
        return RunResult(run_dir, read_rows(run_dir / "rounds.csv"), "complete")

    def _save(self, round_: int, state: LabelState, rows: list[dict], selections: list[dict],
              diagnostics: list[dict]) -> None:
        """Commit a finished round: model and strategy state, rows, then the state marker."""
        state_dir = self.run_dir / "state"
        state_dir.mkdir(parents=True, exist_ok=True)
        self.backend.save(state_dir / "model.pt")
        atomic_torch_save(self.strategy.state_dict(), state_dir / "strategy.pt")
        write_rows(self.run_dir / "rounds.csv", rows)
        write_jsonl(self.run_dir / "selections.jsonl", selections)
        if diagnostics or (self.run_dir / "diagnostics.jsonl").exists():
            write_jsonl(self.run_dir / "diagnostics.jsonl", diagnostics)
        atomic_write_json(state_dir / "state.json", {
            "next_round": round_ + 1, "labeled_round": state.labeled_round.tolist(),
            "config_hash": self.cfg.config_hash()})


def _peak_gpu_mb() -> float:
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return torch.cuda.max_memory_allocated() / 2**20
    return 0.0
