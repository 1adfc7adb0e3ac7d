"""The lab: copies, fine-tunes with a semi-supervised term, labeled-subset scores.

Real backends on the tiniest shapes setting; every test names the property it guards.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from albench.backends import build_backend
from albench.backends.semi import UnsupConfig, consistency_loss, pseudo_annotations, ramp_weight
from albench.data import load_dataset
from albench.data.index import Annotation
from albench.errors import OracleError
from albench.eval import evaluate
from albench.lab import FinetuneJob, Lab, LabWorkers
from albench.pool import LabelState, Oracle

OPTS = {"yolo": {"imgsz": 64, "epochs": 2, "batch": 8},
        "frcnn": {"imgsz": 64, "epochs": 1, "batch": 4, "box_batch_size_per_image": 16,
                  "rpn_post_nms_top_n_train": 50}}


@pytest.fixture(scope="module")
def ds():
    return load_dataset("shapes", pool_size=80, test_size=40, image_size=64)


def trained(ds, name: str, n_labeled: int = 24):
    backend = build_backend(name, ds.images, ds.num_classes, OPTS[name], "cpu")
    state = LabelState(ds.pool_ids)
    state.mark(ds.pool_ids[:n_labeled], 0)
    oracle = Oracle(ds.annotations, state)
    backend.fit(oracle.label(state.labeled), 0)
    return backend, state, oracle


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("name", ["yolo", "frcnn"])
def test_finetuning_copies_leaves_the_round_model_bitwise_unchanged(ds, name):
    backend, state, oracle = trained(ds, name)
    before = backend.state()
    preds_before = backend.predict(ds.test_ids[:4])
    lab = Lab(backend, oracle.label, ds.classes, threads=1)
    copy = lab.current()
    tuned = lab.finetune(FinetuneJob(state.labeled[:12], state.unlabeled[:6], epochs=1, seed=1))
    lab.score(tuned, state.labeled[12:])
    assert same(backend.state(), before) and same(copy.state, before)
    assert not same(tuned.state, before), "the fine-tune changed nothing"
    after = backend.predict(ds.test_ids[:4])
    assert all(np.array_equal(a.boxes, b.boxes) for a, b in zip(preds_before, after))


def test_lab_reaches_labels_only_through_the_oracle(ds):
    backend, state, oracle = trained(ds, "yolo")
    lab = Lab(backend, oracle.label, ds.classes, threads=1)
    with pytest.raises(OracleError):  # unlabeled ids named as labeled
        lab.finetune(FinetuneJob(state.unlabeled[:4], epochs=1))
    with pytest.raises(OracleError):  # scoring needs labels
        lab.score(None, state.unlabeled[:4])
    with pytest.raises(OracleError, match="uses_true_labels"):
        lab.finetune(FinetuneJob(state.labeled[:8], state.unlabeled[:4], unsup="labels", epochs=1))
    upper = Lab(backend, oracle.label, ds.classes, threads=1,
                true_labels=oracle.reveal_for_upper_bound)
    upper.finetune(FinetuneJob(state.labeled[:8], state.unlabeled[:4], unsup="labels", epochs=1))
    with pytest.raises(OracleError):  # the test split is never revealed
        oracle.reveal_for_upper_bound(ds.test_ids[:2])


def test_unlabeled_images_are_used_without_their_labels(ds):
    """Changing the ground truth of the unlabeled ids changes no fine-tuned weight."""
    backend, state, oracle = trained(ds, "yolo")
    unl = state.unlabeled[:8]
    results = []
    for blank in (False, True):
        anns = dict(ds.annotations)
        if blank:
            anns.update({int(i): Annotation.empty() for i in unl})
        orc = Oracle(anns, state)
        lab = Lab(backend, orc.label, ds.classes, threads=1)
        results.append([lab.finetune(FinetuneJob(state.labeled[:12], unl, unsup=m, epochs=1, seed=2)).state
                        for m in ("consistency", "pseudo")])
    assert all(same(a, b) for a, b in zip(*results))


def test_parallel_finetunes_equal_sequential_ones(ds):
    backend, state, oracle = trained(ds, "yolo")
    jobs = [FinetuneJob(state.labeled[:16], state.unlabeled[i * 4:(i + 1) * 4], unsup=m, epochs=1, seed=5)
            for i, m in enumerate(("consistency", "pseudo", "none"))]
    seq = Lab(backend, oracle.label, ds.classes, threads=1).finetune_many(jobs)
    workers = LabWorkers(2)
    try:
        par = Lab(backend, oracle.label, ds.classes, workers=workers, threads=1).finetune_many(jobs)
    finally:
        workers.close()
    assert all(same(a.state, b.state) for a, b in zip(seq, par))
    assert not same(seq[0].state, seq[2].state)


def test_worker_results_hold_no_file_descriptors_in_this_process():
    """A table's dozens of fine-tuned models come back from the workers and are kept: their
    tensors must not each hold a file descriptor here (a real-data MGRAL table of 52
    yolo11n variants ran out of them: 'Too many open files')."""
    import os

    from tests.helpers.fakes import many_tensors

    workers = LabWorkers(2)
    try:
        workers.map(many_tensors, [1, 1])  # start the pool before counting
        before = len(os.listdir("/proc/self/fd"))
        results = workers.map(many_tensors, [200, 200, 200])
        after = len(os.listdir("/proc/self/fd"))
    finally:
        workers.close()
    assert [len(r) for r in results] == [200, 200, 200]
    assert float(results[2]["t199"][0]) == 199.0
    assert after - before < 50, f"{after - before} descriptors held by 600 returned tensors"


def test_score_is_the_one_evaluator_on_a_labeled_subset(ds):
    backend, state, oracle = trained(ds, "yolo")
    ids = state.labeled[:10]
    lab = Lab(backend, oracle.label, ds.classes, threads=1)
    direct = evaluate(ds, ids, backend.predict(ids))
    scored = lab.score(None, ids)
    assert (scored.ap, scored.ap50) == (direct.ap, direct.ap50)
    assert lab.score(lab.current(), ids).ap50 == direct.ap50


# ------------------------------------------------------------------ the semi-supervised terms

def test_consistency_math_is_zero_for_agreeing_views_and_grows_with_disagreement():
    g = torch.Generator().manual_seed(0)
    probs = torch.rand(50, 5, generator=g).softmax(-1)
    box = torch.randn(50, 4, generator=g)
    assert float(consistency_loss(probs, probs, box, box)) < 1e-6
    small = consistency_loss(probs, (probs + 0.1 * probs.roll(1, 0)) / 1.1, box, box + 0.1)
    large = consistency_loss(probs, probs.roll(7, 1), box, box + 1.0)
    assert 0 < float(small) < float(large)
    w = [ramp_weight(it, 100, 2.0, 0.25) for it in (0, 10, 25, 90)]
    assert w[0] < w[1] < w[2] == w[3] == 2.0


class _Symmetrised(torch.nn.Module):
    """A YOLO model made exactly flip-equivariant: its raw outputs averaged with the
    mirrored outputs of the flipped input (grid cells mirrored, left/right distances
    swapped)."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    @staticmethod
    def _mirror(p: dict) -> dict:
        b, reg4, _ = p["boxes"].shape
        boxes, scores, start = [], [], 0
        for f in p["feats"]:
            h, w = f.shape[-2:]
            sl = slice(start, start + h * w)
            bx = p["boxes"][:, :, sl].reshape(b, 4, reg4 // 4, h, w).flip(-1)[:, [2, 1, 0, 3]]
            boxes.append(bx.reshape(b, reg4, h * w))
            scores.append(p["scores"][:, :, sl].reshape(b, -1, h, w).flip(-1).reshape(b, -1, h * w))
            start += h * w
        return {"boxes": torch.cat(boxes, -1), "scores": torch.cat(scores, -1), "feats": p["feats"]}

    def _raw(self, x):
        out = self.inner(x)
        return out[1] if isinstance(out, (tuple, list)) else out  # eval mode: (decoded, raw)

    def forward(self, x):
        a, m = self._raw(x), self._mirror(self._raw(x.flip(-1)))
        return {"boxes": (a["boxes"] + m["boxes"]) / 2, "scores": (a["scores"] + m["scores"]) / 2,
                "feats": a["feats"]}


def test_yolo_consistency_is_zero_for_a_flip_equivariant_model_and_not_otherwise(ds):
    backend, state, _ = trained(ds, "yolo")
    ids = state.unlabeled[:6]
    backend.model.eval()
    with torch.no_grad():
        plain = float(backend.consistency(ids))
    backend.model = _Symmetrised(backend.model).eval()  # eval: batch norm uses fixed statistics
    with torch.no_grad():
        symmetric = float(backend.consistency(ids))
    assert symmetric < 1e-3 * plain


@pytest.mark.parametrize("name", ["yolo", "frcnn"])
def test_a_finetune_with_the_consistency_term_lowers_it(ds, name):
    """The same fine-tune (data, seed, epochs) with the term on ends with a lower term on
    the unlabeled images than with it off (measured as trained: batch statistics)."""
    backend, state, oracle = trained(ds, name)
    unl = state.unlabeled[:8]
    labeled = oracle.label(state.labeled[:8])

    def term(b) -> float:
        b.model.train()
        with torch.no_grad():
            return float(b.consistency(unl))

    ends = {}
    for mode in ("none", "consistency"):
        twin = backend.clone()
        twin.fit(labeled, 3, epochs=4 if name == "yolo" else 2, warm_start=True, unlabeled=unl,
                 unsup=UnsupConfig(mode, weight=20.0, ramp=0.0, batch=8))
        ends[mode] = term(twin)
    assert ends["consistency"] < ends["none"]


def test_pseudo_targets_come_only_from_model_outputs(ds):
    backend, state, oracle = trained(ds, "yolo")
    unl = [int(i) for i in state.unlabeled[:10]]
    dets = dict(zip(unl, backend.predict(unl)))
    expected = pseudo_annotations(dets, 0.01)
    targets, extra = backend._with_unlabeled(oracle.label(state.labeled[:4]), unl,
                                             UnsupConfig("pseudo", pseudo_threshold=0.01))
    assert extra == []
    for i in unl:
        assert np.array_equal(targets[i].boxes, expected[i].boxes)
        assert (dets[i].scores[dets[i].scores >= 0.01] >= 0.01).all()
        assert len(targets[i].labels) == int((dets[i].scores >= 0.01).sum())


def test_workers_end_when_the_run_is_killed(tmp_path):
    """kill -9 of a run leaves no fine-tune worker behind."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    script = tmp_path / "run.py"
    script.write_text(
        "import threading, time\n"
        "from albench.lab import LabWorkers\n"
        "if __name__ == '__main__':\n"
        "    w = LabWorkers(2)\n"
        "    threading.Thread(target=w.map, args=(time.sleep, [120, 120]), daemon=True).start()\n"
        "    while w._pool is None or len(w._pool._processes) < 2:\n"
        "        time.sleep(0.1)\n"
        "    print(*w._pool._processes, flush=True)\n"
        "    time.sleep(120)\n")
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(root)})
    pids = [int(p) for p in proc.stdout.readline().split()]
    assert len(pids) == 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    def alive(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] != "Z"
        except (FileNotFoundError, IndexError):
            return False

    deadline = time.time() + 15
    while any(alive(p) for p in pids) and time.time() < deadline:
        time.sleep(0.2)
    assert not any(alive(p) for p in pids)
