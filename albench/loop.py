"""The active-learning loop: one class, whose ``run`` reads as the game's steps.

Random streams are derived from one seed with ``numpy.random.SeedSequence``:
``(seed, 0)`` draws the initial labeled set, ``(seed, 1, r)`` seeds round r's model,
``(seed, 2, r)`` is round r's strategy generator. So the initial set and the round-0
model are the same for every strategy at a seed, and a resumed run draws exactly what an
uninterrupted one would.
"""

from __future__ import annotations

import errno
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from albench import _offline, determinism
from albench.backends import build_backend
from albench.config import RunConfig, check_device, check_subsample, count, plan_rounds
from albench.data import DetectionDataset, load_dataset
from albench.lab import FINETUNE_THREADS, Lab, LabWorkers, default_workers
from albench.lock import run_lock
from albench.pool import LabelState, Oracle, ids_sha256
from albench.progress import Reporter
from albench.results import (atomic_write_json, command_line, git_commit, hardware,
                             machine_signature, now_iso,
                             package_versions, round_row)
from albench.runfolder import RunFolder, out_of_space
from albench.runstate import check_fingerprint, source_stats, sources_unchanged
from albench.strategy import Meter, ModelView, Selection, SelectionContext, build_strategy


REPRODUCIBLE_ON = ("bit-reproducible on this processor and build (hardware: processor, "
                   "cpu_capability, torch, torch_build) at the same torch_threads; another "
                   "processor or build gives other round-0 models")


def stream(seed: int, *key: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(entropy=seed, spawn_key=key)


def model_seed(seed: int, round_: int) -> int:
    return int(stream(seed, 1, round_).generate_state(1)[0])


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
    5. commit the round atomically (:class:`~albench.runfolder.RunFolder`): the point a
       crashed run resumes from.
    """

    def __init__(self, cfg: RunConfig, out: Path, *, force: bool = False,
                 reporter: Reporter | None = None, dataset: DetectionDataset | None = None,
                 wait: bool = False, lab_workers: int | None = None):
        self.cfg = cfg  # resolved and immutable (albench.config.resolve)
        self.lab_workers = LabWorkers(default_workers() if lab_workers is None else lab_workers)
        self.strategy = build_strategy(cfg.strategy, cfg.strategy_options)
        self.folder = RunFolder(Path(out) / cfg.run_id())
        self.run_dir = self.folder.path
        self.force, self.wait = force, wait
        self.started_at = now_iso()
        self.report = reporter or Reporter(quiet=True)
        self._dataset = dataset

    # ------------------------------------------------------------------ set-up
    def _setup(self) -> None:
        cfg = self.cfg
        check_device(cfg.device)  # before the data load
        self.determinism = determinism.apply(cfg)  # before any CUDA work
        ds = self._dataset or load_dataset(cfg.dataset, **cfg.dataset_options)
        if cfg.pool_subsample:
            check_subsample(cfg.pool_subsample, len(ds.pool_ids), ds.name)
            ds = ds.subsample_pool(cfg.pool_subsample, seed=0)
        self.ds = ds
        n_pool = len(ds.pool_ids)
        self.initial = count(cfg.initial, n_pool, "--initial")
        self.budget = count(cfg.budget, n_pool, "--budget")
        self.last_round, note = plan_rounds(self.initial, self.budget, cfg.rounds, n_pool, ds.name)
        for text in ds.warnings + ([note] if note else []):
            self.report.console.print(f"[yellow]warning:[/yellow] {text}", highlight=False)
        self.backend = build_backend(cfg.backend, ds.images, ds.num_classes,
                                     cfg.backend_options, cfg.device)
        if self.strategy.requires:
            self.backend.enable(self.strategy.requires)
        transfers = getattr(self.backend, "weights", list)()  # refuses a file that does not fit
        self.weights = [t.as_dict() for t in transfers]
        for t in transfers:
            self.report.console.print(f"[green]pretrained[/green] {t.describe()}", highlight=False)

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
            "determinism": {**self.determinism, "reproducible_on": REPRODUCIBLE_ON},
            "label": self.cfg.strategy,
            "upper_bound": bool(self.strategy.uses_true_labels),
            "lab": {"workers": self.lab_workers.workers,
                    "threads_per_finetune": FINETUNE_THREADS},
            "strategy_requires": sorted(self.strategy.requires),
            "resolved": {"initial": self.initial, "budget": self.budget,
                         "pool": int(len(ds.pool_ids)), "test": int(len(ds.test_ids)),
                         "last_round": self.last_round},
            "command": command_line(), "started_at": self.started_at,
            "recipe": self.backend.recipe(), "weights": self.weights,
            "versions": package_versions(),
            "git_commit": git_commit(), "hardware": hardware(),
            "dataset": {"name": ds.name, "fingerprint": ds.fingerprint(), "params": ds.params,
                        "warnings": ds.warnings, "classes": ds.classes,
                        "sources": source_stats(ds.sources)},
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
        epochs = self.backend.epochs(warm)
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
        parts = {"dataset": self.ds.fingerprint(), "recipe": self.backend.recipe(),
                 "labeled": ids_sha256(np.fromiter(labeled, np.int64)),
                 "seed": model_seed(self.cfg.seed, 0), "device": self.cfg.device,
                 "machine": machine_signature()}  # CPU kernels differ by processor and build
        if self.determinism.get("effective") == "on" and self.cfg.device != "cpu":
            parts["deterministic"] = "on"  # a strict run never loads a non-strict model
        key = json.dumps(parts, sort_keys=True)
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
        try:
            with run_lock(self.run_dir, wait=self.wait):  # one process per run folder
                return self._run()
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise out_of_space(self.run_dir, exc) from None
            raise

    def _run(self) -> RunResult:
        cfg, folder = self.cfg, self.folder
        if not self.force and folder.complete():  # before any loading, unless data changed
            if not sources_unchanged(folder.path):
                self._setup()
                check_fingerprint(folder.path, self.ds.fingerprint(), cfg.dataset)
            self.report.note(f"{folder.path} is already complete; nothing to do (--force reruns it).")
            return RunResult(folder.path, folder.rows(), "already complete")
        self._setup()
        state, start, rows, selections, diagnostics = self._initial_state(), 0, [], [], []
        if self.force:
            folder.reset()
        else:
            check_fingerprint(folder.path, self.ds.fingerprint(), cfg.dataset)
            saved = folder.resume(self.ds.pool_ids)  # checked: rows, selections, state agree
            if saved is not None:
                state = LabelState(self.ds.pool_ids, saved.labeled_round)
                start, rows, selections = saved.next_round, saved.rows, saved.selections
                diagnostics = saved.diagnostics
                if start > 0 and saved.model is not None:
                    self.backend.load(saved.model)
                if saved.strategy_state is not None:
                    self.strategy.load_state_dict(saved.strategy_state)
                self.report.note(f"resuming {folder.path.name} at round {start}")
        folder.write_manifest(self._manifest("running"))
        oracle = Oracle(self.ds.annotations, state)

        finished = bool(rows) and int(rows[-1]["n_selected"]) == 0  # the final round is saved
        for r in range(start, start if finished else cfg.rounds + 1):
            t_round = time.perf_counter()
            labeled = oracle.label(state.labeled)
            t_train, t_aux, cached = self._fit(r, labeled)
            metrics, t_infer, t_eval = self._evaluate()
            last = r == cfg.rounds or not len(state.unlabeled)  # train and evaluate, then stop
            ids, timing = None, {}
            if not last:
                sel, meter, wall = self._select(r, state, oracle)
                ids, scores = sel.ids, sel.scores
                state.mark(ids, r + 1)
                infer, own = meter.seconds.get("infer", 0.0), meter.seconds.get("strategy_train", 0.0)
                t_infer += infer
                timing = {"t_select": max(0.0, wall - infer - own), "t_strategy_train": own}
                selections.append({"round": r, "ids": ids.tolist(),
                                   "scores": None if scores is None else [float(s) for s in scores],
                                   "sha256": ids_sha256(ids)})
                if sel.diagnostics:
                    diagnostics.append({**sel.diagnostics, "round": r, "strategy": cfg.strategy})
            row = round_row(cfg, r, labeled, metrics, t_train=t_train, t_train_aux=t_aux,
                            t_infer=t_infer, t_eval=t_eval, t_round=time.perf_counter() - t_round,
                            cached=cached, selected=ids, peak_gpu_mb=_peak_gpu_mb(), **timing)
            rows.append(row)
            folder.commit(r, state.labeled_round, rows, selections, diagnostics,
                          save_model=self.backend.save, strategy_state=self.strategy.state_dict(),
                          config_hash=cfg.config_hash())
            self.report.round_done(row)
            if last:
                break

        self.lab_workers.close()
        folder.write_manifest(self._manifest(
            "complete", {"rounds_done": len(rows), "finished_at": now_iso()}))
        return RunResult(folder.path, folder.rows(), "complete")


def _peak_gpu_mb() -> float:
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return torch.cuda.max_memory_allocated() / 2**20
    return 0.0
