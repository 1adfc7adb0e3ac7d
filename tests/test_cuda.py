"""The CUDA path: every backend on a GPU, exact reruns, LL4AL, mixed precision.

Marked ``cuda`` and skipped without a CUDA device; ``scripts/gpu-check`` runs them
(``pytest -m cuda``) together with a timed quick run. Settings are the tiny ones of the
CPU tests, so the whole file takes a minute or two on one GPU.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

# Strict deterministic mode needs this before CUDA starts; the loop sets it too, but other
# tests of this process may start CUDA first.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

from albench.backends import backend_options, build_backend  # noqa: E402
from albench.data import load_dataset  # noqa: E402
from albench.loop import ActiveLearningLoop  # noqa: E402
from albench.results import read_rows  # noqa: E402
from tests.helpers.settings import TINY_CLI, TINY_FRCNN, TINY_YOLO  # noqa: E402

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ("yolo", "frcnn")
# Tiny per-backend options (frcnn: few proposals and RoIs), those of the CPU tests.
OPTS = {"yolo": dict(TINY_YOLO), "frcnn": dict(TINY_FRCNN)}


@pytest.fixture(autouse=True)
def torch_defaults():
    """Runs set strict determinism process-wide; each test starts and ends without it."""
    torch.use_deterministic_algorithms(False)
    yield
    torch.use_deterministic_algorithms(False)


@pytest.fixture(scope="module")
def ds():
    return load_dataset("shapes", pool_size=40, test_size=12, image_size=64)


def labeled(ds, n):
    return {int(i): ds.annotations[int(i)] for i in ds.pool_ids[:n]}


def params_device(backend) -> torch.device:
    return next(backend.model.parameters()).device


@pytest.mark.parametrize("name", BACKENDS)
def test_backend_fits_predicts_and_embeds_on_cuda(ds, name):
    b = build_backend(name, ds.images, ds.num_classes, OPTS[name], "cuda")
    torch.cuda.reset_peak_memory_stats()
    report = b.fit(labeled(ds, 8), seed=0, epochs=2)
    assert params_device(b).type == "cuda"
    assert report.iterations > 0 and np.isfinite(report.losses).all()
    assert torch.cuda.max_memory_allocated() > 0
    test = list(ds.test_ids)
    dets = b.predict(test)
    assert len(dets) == len(test)
    for d in dets:
        assert d.boxes.shape == (len(d), 4) and d.probs.shape == (len(d), ds.num_classes)
        assert np.isfinite(d.boxes).all()
        if len(d):
            np.testing.assert_allclose(d.probs.sum(1), 1.0, atol=1e-3)
    emb = b.embed(test)
    assert emb.shape[0] == len(test) and emb.ndim == 2 and np.isfinite(emb).all()


def run_cli(out: Path, cache: Path, strategy: str = "entropy", *extra: str) -> Path:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ALBENCH_CACHE": str(cache)}
    env.pop("CUBLAS_WORKSPACE_CONFIG", None)  # the run must set it itself
    proc = subprocess.run(
        [sys.executable, "-m", "albench", "run", "--strategy", strategy, *TINY_CLI,
         "--device", "cuda", "--out", str(out), "--quiet", *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (run_dir,) = [p for p in out.iterdir() if (p / "manifest.json").exists()]
    return run_dir


@pytest.mark.parametrize("name", ["yolo"])
def test_deterministic_repeat_is_identical(tmp_path, name):
    """Two fresh processes, each training its own round-0 model (separate caches):
    the same selections and the same metrics, bit for bit."""
    import json

    runs = [run_cli(tmp_path / f"out{i}", tmp_path / f"cache{i}", "entropy",
                    "--backend", name, "--deterministic", "auto") for i in (0, 1)]
    manifest = json.loads((runs[0] / "manifest.json").read_text())
    assert manifest["determinism"]["effective"] == "on", manifest.get("determinism")
    a, b = (read_rows(r / "rounds.csv") for r in runs)
    cols = ("round", "n_labeled", "ap", "ap50", "ap75", "selection_sha256")
    assert [[r[c] for c in cols] for r in a] == [[r[c] for c in cols] for r in b]
    assert (runs[0] / "selections.jsonl").read_text() == (runs[1] / "selections.jsonl").read_text()


@pytest.mark.parametrize("name", BACKENDS)
def test_ll4al_trains_and_selects_on_cuda(tiny_cfg, tmp_path, name):
    cfg = tiny_cfg(strategy="ll4al", backend=name, device="cuda", backend_options=OPTS[name])
    result = ActiveLearningLoop(cfg, tmp_path).run()
    rows = result.rows
    assert [int(r["round"]) for r in rows] == [0, 1, 2]
    assert [int(r["n_selected"]) for r in rows[:-1]] == [8, 8]
    assert all(float(r["peak_gpu_mb"]) > 0 for r in rows)
    assert all(np.isfinite(float(r["ap50"])) for r in rows)


@pytest.mark.parametrize("name", BACKENDS)
def test_amp_on_and_off_both_run(ds, name):
    if "amp" not in backend_options(name):
        pytest.skip(f"backend {name!r} has no 'amp' option yet (bf16 autocast is not built)")
    results = {}
    for amp in (False, True):
        b = build_backend(name, ds.images, ds.num_classes, {**OPTS[name], "amp": amp}, "cuda")
        report = b.fit(labeled(ds, 8), seed=0, epochs=2)
        assert np.isfinite(report.losses).all()
        assert b.recipe()["amp"] == amp  # the recipe (and so the round-0 cache key) records it
        dets = b.predict(list(ds.test_ids))
        assert len(dets) == len(ds.test_ids)
        assert all(d.probs.dtype == np.float32 for d in dets)
        results[amp] = report.losses
    assert results[False] != results[True]  # autocast really changed the arithmetic
