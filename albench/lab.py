"""The lab: what a strategy that trains may do with the current round's detector.

Through ``ctx.lab`` a strategy can

- take an in-memory copy of the current model (:meth:`Lab.current`): a
  :class:`ModelHandle` holding CPU weights; the round's own model is never touched;
- fine-tune a copy (:meth:`Lab.finetune`, :meth:`Lab.finetune_many`) for some epochs on
  labeled ids it names (they must be labeled: the oracle refuses anything else) plus
  unlabeled ids used without labels, through a semi-supervised term
  (:mod:`albench.backends.semi`: ``consistency``, ``pseudo`` or ``none``);
- score any model on a subset of the labeled set (:meth:`Lab.score`) through the one
  evaluator (:func:`albench.eval.evaluate_annotations`).

Labels reach the lab only through the oracle. A strategy instance whose options need
true labels of unlabeled images (an upper-bound ablation) declares ``uses_true_labels``;
only then does the loop give its lab the privileged reader and may a job use
``unsup="labels"``.

Several fine-tunes run at once in worker processes when ``workers > 1`` (spawned). Every
fine-tune runs with ``threads`` torch threads (default 1) whether it runs in a worker or
in this process, and is seeded by its job alone, so a batch of jobs gives bitwise the same
weights run in parallel or one by one, whatever the number of workers (CPU arithmetic
depends on the thread count, hence a fixed count rather than cores / workers).
Everything the lab does is timed into the round's ``t_strategy_train_s``.
"""

from __future__ import annotations

import os
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch

from albench.backends.base import BackendSpec
from albench.backends.semi import UNSUP_MODES, UnsupConfig
from albench.data.index import Annotation
from albench.errors import ConfigError, OracleError
from albench.procs import exit_with_parent

JOB_MODES = UNSUP_MODES + ("labels",)


@dataclass(frozen=True)
class ModelHandle:
    """A model's weights held in memory (CPU tensors), opaque to strategies."""

    state: Mapping[str, torch.Tensor] = field(repr=False)
    tag: str = ""


@dataclass(frozen=True)
class FinetuneJob:
    """One fine-tune of a copy: ``labeled`` ids with their labels plus ``unlabeled`` ids
    used through ``unsup`` (``none`` | ``consistency`` | ``pseudo``; ``labels`` uses their
    true labels and is allowed only to strategies that declare ``uses_true_labels``)."""

    labeled: Sequence[int]
    unlabeled: Sequence[int] = ()
    unsup: str = "consistency"
    epochs: int = 3
    seed: int = 0
    base: ModelHandle | None = None  # start from this model (default: the round's)
    weight: float = 1.0
    ramp: float = 0.25
    pseudo_threshold: float = 0.5
    tag: str = ""
    lr_scale: float = 1.0  # the backend's learning rate times this (a continuation rate)
    stream_batch: int = 0  # > 0: ``unlabeled`` come as an extra per-step stream of this many
    fresh: bool = False    # start from a fresh initialisation (``base`` ignored)

    def __post_init__(self) -> None:
        if self.unsup not in JOB_MODES:
            raise ConfigError(f"Fine-tune mode {self.unsup!r} is not one of {list(JOB_MODES)}.")
        if self.epochs < 1:
            raise ConfigError(f"A fine-tune needs at least one epoch (got {self.epochs}).")
        if not self.lr_scale > 0 or self.stream_batch < 0:
            raise ConfigError(f"A fine-tune needs lr_scale > 0 and stream_batch >= 0 (got "
                              f"{self.lr_scale}, {self.stream_batch}).")


@dataclass(frozen=True)
class _Payload:
    """What a worker process needs to run one fine-tune (all picklable)."""

    spec: BackendSpec
    files: dict
    sizes: dict
    state: dict
    targets: dict
    unlabeled: list
    unsup: UnsupConfig | None
    epochs: int
    seed: int
    threads: int
    deterministic: bool = False  # torch's strict deterministic algorithms, as in the run
    options: dict = field(default_factory=dict)  # fit's lr_scale/stream, only when set
    warm: bool = True

    def fit(self, backend: Any) -> None:
        backend.fit(self.targets, self.seed, epochs=self.epochs, warm_start=self.warm,
                    unlabeled=self.unlabeled, unsup=self.unsup, **self.options)


@contextmanager
def _threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _run_payload(p: _Payload) -> dict:
    """A fine-tune in a fresh process (or this one): returns the trained weights."""
    from albench.backends import build_from_spec
    from albench.data.index import ImageStore

    if p.deterministic and not torch.are_deterministic_algorithms_enabled():
        torch.use_deterministic_algorithms(True)  # CUBLAS_WORKSPACE_CONFIG came with the environment
    with _threads(p.threads):
        backend = build_from_spec(p.spec, ImageStore(p.files, p.sizes))
        backend.load_state(p.state)
        p.fit(backend)
        return backend.state()


def _call_by_value(job: tuple[Callable, Any]) -> bytes:
    """Worker side of :meth:`LabWorkers.map`: ``fn(item)`` serialised to bytes."""
    import io

    fn, item = job
    buf = io.BytesIO()
    torch.save(fn(item), buf)
    return buf.getvalue()


def _from_bytes(data: bytes) -> Any:
    import io

    return torch.load(io.BytesIO(data), weights_only=False)  # our own worker's result


class LabWorkers:
    """A pool of spawned worker processes kept for a whole run (``workers`` > 1)."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ConfigError(f"--lab-workers must be a whole number of at least 1 (got {workers}): "
                              "the processes that run a training strategy's fine-tunes. Leave it "
                              "out for one per core (at most 4).")
        self.workers = workers
        self._pool: futures.ProcessPoolExecutor | None = None

    def map(self, fn: Callable, items: list) -> list:
        if self.workers == 1 or len(items) < 2:
            return [fn(i) for i in items]
        if self._pool is None:
            import multiprocessing as mp

            self._pool = futures.ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"),
                                                     initializer=exit_with_parent,
                                                     initargs=(os.getpid(),))
        # results come back as bytes: tensors pickled across processes would each keep a
        # file descriptor open in this process while they live (torch's file_descriptor
        # sharing), and a table of dozens of fine-tuned models runs out of them
        return [_from_bytes(b) for b in self._pool.map(_call_by_value, [(fn, i) for i in items])]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


FINETUNE_THREADS = 1


def default_workers() -> int:
    """Worker processes for fine-tunes: one per core, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


class Lab:
    """Copies, fine-tunes and labeled-subset scores of one round's detector."""

    def __init__(self, backend: Any, label: Callable[[np.ndarray], dict[int, Annotation]],
                 classes: Sequence[str], *, meter: Any = None, engine: str = "faster",
                 true_labels: Callable[[np.ndarray], dict[int, Annotation]] | None = None,
                 workers: LabWorkers | None = None, threads: int | None = None) -> None:
        self._backend = backend
        self._label = label
        self._true = true_labels
        self._classes = list(classes)
        self._meter = meter
        self._engine = engine
        self._workers = workers or LabWorkers(1)
        self.threads = threads or FINETUNE_THREADS
        self._scratch: Any = None
        self.finetunes = 0

    @property
    def workers(self) -> int:
        return self._workers.workers

    @contextmanager
    def _timed(self) -> Iterator[None]:
        if self._meter is None:
            yield
        else:
            with self._meter.timed("strategy_train"):
                yield

    def _twin(self) -> Any:
        if self._scratch is None:
            self._scratch = self._backend.clone()
        return self._scratch

    # ------------------------------------------------------------------ copies
    def current(self) -> ModelHandle:
        """An in-memory copy of the round's model."""
        with self._timed():
            return ModelHandle(self._backend.state(), "current")

    # ------------------------------------------------------------------ fine-tunes
    def _payload(self, job: FinetuneJob) -> _Payload:
        labeled = np.asarray(job.labeled, np.int64)
        unlabeled = np.asarray(job.unlabeled, np.int64)
        targets = dict(self._label(labeled))  # the oracle refuses ids that are not labeled
        unsup: UnsupConfig | None = None
        extra: list[int] = []
        options: dict = {} if job.lr_scale == 1.0 else {"lr_scale": float(job.lr_scale)}
        streamed = job.stream_batch > 0
        if len(unlabeled) and job.unsup == "labels":
            if self._true is None:
                raise OracleError(
                    "A fine-tune asked for true labels of unlabeled images, but this strategy "
                    "instance does not declare uses_true_labels. Only an upper-bound ablation "
                    "may do that, and it must say so (its runs are then marked as such).")
            if streamed:
                options["stream"] = dict(self._true(unlabeled))
                unsup = UnsupConfig("none", batch=job.stream_batch, stream=True)
            else:
                targets.update(self._true(unlabeled))
        elif len(unlabeled) and job.unsup != "none":
            unsup = (UnsupConfig(job.unsup, job.weight, job.ramp, job.pseudo_threshold,
                                 batch=job.stream_batch, stream=True) if streamed else
                     UnsupConfig(job.unsup, job.weight, job.ramp, job.pseudo_threshold))
            extra = [int(i) for i in unlabeled]
        b = self._backend
        state = dict(job.base.state) if job.base is not None else b.state()
        used = set(targets) | set(extra) | set(options.get("stream", ()))  # a worker reads only these
        files = {i: b.images.files[i] for i in used}
        sizes = {i: b.images.sizes[i] for i in used}
        return _Payload(b.spec(), files, sizes, state, targets,
                        extra, unsup, job.epochs, job.seed, self.threads,
                        torch.are_deterministic_algorithms_enabled(), options, not job.fresh)

    def finetune(self, job: FinetuneJob) -> ModelHandle:
        """One fine-tuned copy (in this process)."""
        return self.finetune_many([job])[0]

    def finetune_many(self, jobs: Sequence[FinetuneJob]) -> list[ModelHandle]:
        """Fine-tuned copies, one per job, in worker processes when the lab has several."""
        with self._timed():
            payloads = [self._payload(j) for j in jobs]
            if self.workers > 1 and len(payloads) > 1:
                states = self._workers.map(_run_payload, payloads)
            else:
                states = [self._local(p) for p in payloads]
            self.finetunes += len(jobs)
            return [ModelHandle(s, j.tag) for s, j in zip(states, jobs)]

    def _local(self, p: _Payload) -> dict:
        twin = self._twin()
        with _threads(p.threads):
            twin.load_state(p.state)
            p.fit(twin)
            return twin.state()

    # ------------------------------------------------------------------ scores
    def score(self, model: ModelHandle | None, ids: Sequence[int],
              truth: Mapping[int, Annotation] | None = None):
        """COCO AP (:class:`~albench.eval.EvalResult`) of ``model`` (None: the round's own)
        on ``ids``, which must be labeled, or against ``truth`` (e.g. :meth:`pseudo_truth`)."""
        return self.score_parts([(model, ids)], truth)

    def score_parts(self, parts: Sequence[tuple[ModelHandle | None, Sequence[int]]],
                    truth: Mapping[int, Annotation] | None = None):
        """One COCO AP over the union of ``parts``' ids, each part's ids predicted by its own
        model (None: the round's); e.g. cross-fitted models, each on the images it did not
        train on. Ground truth: the oracle's labels, or ``truth`` when given."""
        from albench.eval import evaluate_annotations

        with self._timed():
            all_ids, dets = [], []
            for model, ids in parts:
                ids = np.asarray(ids, np.int64)
                if model is None:
                    dets += self._backend.predict(ids)
                else:
                    twin = self._twin()
                    twin.load_state(model.state)
                    dets += twin.predict(ids)
                all_ids += [int(i) for i in ids]
            ids = np.asarray(all_ids, np.int64)
            gt = self._label(ids) if truth is None else {int(i): truth[int(i)] for i in ids}
            return evaluate_annotations(gt, self._backend.images.size, self._classes, ids,
                                        dets, self._engine)

    def pseudo_truth(self, ids: Sequence[int], threshold: float) -> dict[int, Annotation]:
        """Label-free ground truth of ``ids``: the round model's detections with score >=
        ``threshold`` (:func:`~albench.backends.semi.pseudo_annotations`)."""
        from albench.backends.semi import pseudo_annotations

        ids = [int(i) for i in ids]
        with self._timed():
            return pseudo_annotations(dict(zip(ids, self._backend.predict(ids))), threshold)

    def epochs(self, warm: bool) -> int:
        """The backend's epochs of a warm-started fit or of one from initialisation."""
        return int(self._backend.epochs(warm))

    def embeddings(self, model: ModelHandle, ids: Sequence[int]) -> np.ndarray:
        """Pooled features of ``ids`` under ``model`` (for the round's own model use
        ``ctx.model.embeddings``, which is cached)."""
        with self._timed():
            twin = self._twin()
            twin.load_state(model.state)
            return twin.embed(ids)
