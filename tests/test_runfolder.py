"""A run folder's rounds commit atomically: a crash (``os._exit``) or a full disk (ENOSPC)
at any write of a round, then the same command, ends with exactly the rows, selections and
diagnostics of an uninterrupted run. Completion is checked, not trusted, and ``--force``
never leaves a half-deleted folder.

The every-write sweeps run on a fake detector (deterministic outputs from a salt that each
fit derives from the model it starts from, the seed and the labels) and a strategy with
state and diagnostics, behind the real loop, data, evaluator and run folder; one case runs
the real yolo detector.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from albench.backends import BACKENDS, register_backend
from albench.backends.base import Detections, FitReport
from albench.cli import main
from albench.config import resolve
from albench.errors import RunFolderError
from albench.loop import ActiveLearningLoop
from albench.options import Option
from albench.results import atomic_torch_save, read_jsonl, read_rows
from albench.runfolder import RunFolder
from albench.strategy import STRATEGIES, Selection, Strategy

ROOT = Path(__file__).resolve().parent.parent
DATA = {"pool_size": 60, "test_size": 12, "image_size": 64}
SETTING = dict(dataset="shapes", backend="test-fake", strategy="test-stateful", initial=10,
               budget=6, rounds=3, dataset_options=DATA)
TIMING = ("t_", "peak_")
needs_proc = pytest.mark.skipif(not Path("/proc/self/fd").is_dir() or not hasattr(os, "fork"),
                                reason="write points are found through /proc/self/fd and fork")


class FakeDetector:
    """Boxes and scores derived from a salt; ``fit`` derives the next salt from the salt it
    starts from (when warm), the seed and the labels, so a round trained again on top of
    its own model gives another model."""

    capabilities: frozenset[str] = frozenset()

    def __init__(self, images, num_classes, options, device="cpu"):
        self.images, self.num_classes, self.opts = images, num_classes, dict(options)
        self.features: frozenset[str] = frozenset()
        self.salt = 0

    def enable(self, features):
        self.features = self.features | frozenset(features)

    def recipe(self) -> dict:
        return {"backend": "test-fake", **self.opts}

    def epochs(self, warm: bool) -> int:
        return self.opts["warm_epochs" if warm else "epochs"]

    def fit(self, labeled, seed, *, epochs=None, warm_start=False, progress=None, **_):
        h = hashlib.sha256(f"{self.salt if warm_start else 0}|{seed}".encode())
        for i in sorted(labeled):
            h.update(str(i).encode() + labeled[i].boxes.tobytes())
        self.salt = int.from_bytes(h.digest()[:4], "little")
        return FitReport(1, 1, 0.0, [0.5])

    truth: dict = {}  # the data's boxes, so that AP depends on the model (set by `fake`)

    def predict(self, ids) -> list[Detections]:
        out = []
        for i in ids:
            rng, c = np.random.default_rng([self.salt, int(i)]), self.num_classes
            true = self.truth[int(i)]
            keep = rng.random(len(true.labels)) < rng.uniform(0.3, 1.0)
            boxes = true.boxes[keep] + rng.normal(0, rng.uniform(0.5, 6.0), (int(keep.sum()), 4))
            boxes = np.concatenate([np.minimum(boxes[:, :2], boxes[:, 2:]),
                                    np.maximum(boxes[:, :2], boxes[:, 2:])], 1)
            extra = rng.uniform(0, 40, (int(rng.integers(0, 4)), 2))
            boxes = np.concatenate([boxes, np.concatenate([extra, extra + rng.uniform(
                6, 24, extra.shape)], 1)])
            k = len(boxes)
            probs = rng.dirichlet(np.full(c, 0.5), k).astype(np.float32).reshape(k, c)
            labels = np.concatenate([true.labels[keep], probs[len(true.labels[keep]):].argmax(1)])
            probs[np.arange(k), labels] += rng.uniform(0.5, 3.0, k).astype(np.float32)
            probs /= probs.sum(1, keepdims=True)
            out.append(Detections(boxes.astype(np.float32), probs.max(1), labels.astype(np.int64),
                                  probs))
        return out

    def save(self, path: Path) -> None:
        atomic_torch_save({"salt": self.salt}, path)

    def load(self, path: Path) -> None:
        import torch

        self.salt = int(torch.load(path, weights_only=False)["salt"])


class Stateful(Strategy):
    """Scores from the model's predictions plus noise scaled by a count it carries across
    rounds; reports that count and a running sum as diagnostics."""

    name = "test-stateful"

    def __init__(self, **options):
        super().__init__(**options)
        self.calls, self.total = 0, 0.0

    def select(self, ctx, budget):
        preds = ctx.model.predictions(ctx.unlabeled)
        scores = np.array([float(p.scores.sum()) for p in preds])
        scores = scores + self.calls * ctx.rng.random(len(scores))
        self.calls += 1
        self.total += float(scores.max())
        order = np.lexsort((ctx.unlabeled, -scores))[:budget]
        return Selection(ctx.unlabeled[order], scores[order],
                         {"calls": self.calls, "total": self.total})

    def state_dict(self):
        return {"calls": self.calls, "total": self.total}

    def load_state_dict(self, state):
        self.calls, self.total = state["calls"], state["total"]


@pytest.fixture(scope="module")
def fake():
    """The fake detector and the stateful strategy registered; the data made once."""
    from albench.data import load_dataset

    register_backend("test-fake", "a fake detector for tests",
                     {"epochs": Option(2, "epochs"), "warm_epochs": Option(1, "warm epochs")})(
        FakeDetector)
    STRATEGIES[Stateful.name] = Stateful
    ds = load_dataset("shapes", **DATA)
    FakeDetector.truth = ds.annotations
    yield ds
    BACKENDS.pop("test-fake", None)
    STRATEGIES.pop(Stateful.name, None)


def comparable(run_dir: Path) -> tuple:
    """What must equal an uninterrupted run's: rows without timing, selections, diagnostics."""
    rows = [{k: v for k, v in r.items() if not k.startswith(TIMING) and k != "round0_cached"}
            for r in read_rows(run_dir / "rounds.csv")]
    return rows, read_jsonl(run_dir / "selections.jsonl"), read_jsonl(run_dir / "diagnostics.jsonl")


def run(ds, out: Path):
    return ActiveLearningLoop(resolve("smoke", **SETTING), out, dataset=ds).run()


def assert_clean(run_dir: Path) -> None:
    """Only the committed round is kept: one model, no leftovers of a cut-short write."""
    assert sorted(p.name for p in (run_dir / "state").iterdir()) == ["round-0003", "state.json"]
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]


# ------------------------------------------------------------------ write points
class WritePoints:
    """Every call of the os functions that change files, on paths inside ``root``, counted;
    ``action(k, op, path)`` runs before each (it may exit the process or raise)."""

    OPS = ("replace", "rename", "fsync", "mkdir", "unlink", "rmdir")

    def __init__(self, root: Path, action):
        self.root, self.action, self.calls = str(root), action, []
        self.originals = {op: getattr(os, op) for op in self.OPS}

    def install(self, monkeypatch=None) -> None:
        for op, fn in self.originals.items():
            if monkeypatch is None:
                setattr(os, op, self._wrap(op, fn))
            else:
                monkeypatch.setattr(os, op, self._wrap(op, fn))

    def _wrap(self, op, fn):
        def call(*args, **kwargs):
            path = _target(op, args, kwargs)
            inside = path == self.root or path.startswith(self.root + os.sep)
            if inside and not (op == "mkdir" and os.path.isdir(path)):
                self.calls.append((op, path))
                self.action(len(self.calls) - 1, op, path)
            return fn(*args, **kwargs)
        return call


def _target(op: str, args: tuple, kwargs: dict) -> str:
    if op == "fsync":
        return os.readlink(f"/proc/self/fd/{args[0]}")
    path = os.fspath(args[0])
    if kwargs.get("dir_fd") is not None:  # inside shutil.rmtree
        return os.path.join(os.readlink(f"/proc/self/fd/{kwargs['dir_fd']}"), path)
    return os.path.abspath(path)


def round_points(ds, out: Path, monkeypatch) -> tuple[tuple, list[tuple[int, str]]]:
    """An uninterrupted run into ``out``: what it ends with, and the write points (index and
    operation) of its round 1 (from the start of its commit to the start of the next) and
    of its end (after the last commit: the manifest, the lock)."""
    marks: list[int] = []
    points = WritePoints(out, lambda *a: None)
    commit = RunFolder.commit

    def marked(self, round_, *args, **kwargs):
        marks.append(len(points.calls))
        commit(self, round_, *args, **kwargs)
        marks.append(len(points.calls))

    with monkeypatch.context() as m:
        points.install(m)
        m.setattr(RunFolder, "commit", marked)
        result = run(ds, out)
    assert len(marks) == 8, "rounds 0..3 commit once each"
    chosen = [*range(marks[2], marks[4]), *range(marks[-1], len(points.calls))]
    return comparable(result.run_dir), [(k, points.calls[k][0]) for k in chosen]


def crash_at(ds, out: Path, k: int) -> int:
    """Run into ``out`` in a forked process that dies (``os._exit``) just before write point
    ``k``; returns its exit status."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            import torch

            torch.set_num_threads(1)

            def die(i, op, path):
                if i == k:
                    os._exit(17)

            WritePoints(out, die).install()
            run(ds, out)
            code = 0
        finally:
            os._exit(code)
    deadline = time.time() + 120
    while time.time() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    raise AssertionError(f"the run crashing at write point {k} hung")


@needs_proc
def test_a_crash_at_any_write_of_a_round_then_a_rerun_equals_an_uninterrupted_run(
        fake, tmp_path, monkeypatch):
    whole, points = round_points(fake, tmp_path / "whole", monkeypatch)
    assert {"replace", "rename", "fsync", "unlink"} <= {op for _, op in points}
    for k, op in points:
        out = tmp_path / f"crash-{k}"
        assert crash_at(fake, out, k) == 17, f"write point {k} ({op}) was not reached"
        result = run(fake, out)
        assert comparable(result.run_dir) == whole, f"a crash before write point {k} ({op})"
        assert_clean(result.run_dir)
        shutil.rmtree(out)


NO_SPACE = ("replace", "rename", "fsync", "mkdir")  # what a full disk can fail


@needs_proc
def test_a_full_disk_at_any_write_of_a_round_is_a_clear_error_and_the_rerun_equals(
        fake, tmp_path, monkeypatch):
    whole, points = round_points(fake, tmp_path / "whole", monkeypatch)
    for k, op in points:
        if op not in NO_SPACE:
            continue
        out = tmp_path / f"full-{k}"

        def no_space(i, op, path, k=k):
            if i >= k and op in NO_SPACE:  # the disk stays full until the run stops
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        with monkeypatch.context() as m:
            WritePoints(out, no_space).install(m)
            with pytest.raises(RunFolderError, match="ran out of space") as err:
                run(fake, out)
        text = " ".join(str(err.value).split())
        assert str(out) in text and "Free space" in text and "run the same command again" in text
        result = run(fake, out)  # space freed
        assert comparable(result.run_dir) == whole, f"a full disk at write point {k} ({op})"
        assert_clean(result.run_dir)
        shutil.rmtree(out)


@needs_proc
def test_a_full_disk_is_exit_status_2_without_a_traceback_and_the_rerun_equals(
        fake, tmp_path, monkeypatch, capsys):
    whole = comparable(run(fake, tmp_path / "whole").run_dir)
    out = tmp_path / "full"
    args = ["run", "--preset", "smoke", "--backend", SETTING["backend"], "--strategy",
            SETTING["strategy"], "--initial", "10", "--budget", "6", "--rounds", "3",
            *[f"--dataset-opt={k}={v}" for k, v in DATA.items()], "--quiet", "--out", str(out)]
    rows_csv = out / resolve("smoke", **SETTING).run_id() / "rounds.csv"

    def no_space(i, op, path):  # the disk fills up while rounds.csv is written
        if op == "fsync" and Path(path).name.startswith(".rounds.csv."):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as m:
        WritePoints(out, no_space).install(m)
        code = main(args)
    text = " ".join("".join(capsys.readouterr()).split())
    assert code == 2 and "ran out of space" in text and "Traceback" not in text
    assert not rows_csv.exists()  # it failed at the first round's commit
    assert main(args) == 0
    assert comparable(rows_csv.parent) == whole


# ------------------------------------------------------------------ completion, older folders
def stopped_after(ds, out: Path, round_: int, monkeypatch) -> Path:
    """A run into ``out`` whose strategy raises in round ``round_``: rounds 0..round_-1 are
    committed, the manifest says running."""
    select = Stateful.select

    def crash(self, ctx, budget):
        if ctx.round == round_:
            raise RuntimeError("simulated crash")
        return select(self, ctx, budget)

    with monkeypatch.context() as m:
        m.setattr(Stateful, "select", crash)
        with pytest.raises(RuntimeError, match="simulated crash"):
            run(ds, out)
    return out / resolve("smoke", **SETTING).run_id()


def test_a_manifest_saying_complete_over_missing_rounds_is_damaged(fake, tmp_path, monkeypatch):
    from albench.results import run_complete

    whole = comparable(run(fake, tmp_path / "whole").run_dir)
    run_dir = stopped_after(fake, tmp_path / "edited", 2, monkeypatch)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    (run_dir / "manifest.json").write_text(json.dumps({**manifest, "status": "complete"}))
    assert not run_complete(run_dir)
    with pytest.raises(RunFolderError, match="damaged.*says the run is complete.*rounds 0..1 "
                                             "of 0..3.*--force"):
        run(fake, tmp_path / "edited")
    cfg = resolve("smoke", **SETTING)
    forced = ActiveLearningLoop(cfg, tmp_path / "edited", force=True, dataset=fake).run()
    assert forced.status == "complete" and comparable(forced.run_dir) == whole
    rows = (run_dir / "rounds.csv").read_text().splitlines()
    (run_dir / "rounds.csv").write_text("\n".join(rows[:-1]) + "\n")  # the last row cut off
    assert not run_complete(run_dir)
    with pytest.raises(RunFolderError, match="rounds.csv holds rounds 0..2 of 0..3"):
        run(fake, tmp_path / "edited")


def test_committed_results_read_as_finished_runs():
    from albench.results import run_complete

    manifests = sorted((ROOT / "results").rglob("manifest.json"))
    assert manifests
    for path in manifests:
        assert run_complete(path.parent), path.parent
        assert RunFolder(path.parent).complete()


def test_a_folder_of_the_older_layout_resumes_and_moves_to_the_committed_layout(
        fake, tmp_path, monkeypatch):
    whole = comparable(run(fake, tmp_path / "whole").run_dir)
    run_dir = stopped_after(fake, tmp_path / "old", 2, monkeypatch)
    state = run_dir / "state"
    record = json.loads((state / "state.json").read_text())
    for name in ("model.pt", "strategy.pt"):  # rows at the top, model in state/
        (state / record["folder"] / name).rename(state / name)
    shutil.rmtree(state / record.pop("folder"))
    (state / "state.json").write_text(json.dumps(record))
    assert RunFolder(run_dir).model_path() == state / "model.pt"
    result = run(fake, tmp_path / "old")
    assert comparable(result.run_dir) == whole
    assert_clean(result.run_dir)
    assert RunFolder(run_dir).model_path() == state / "round-0003" / "model.pt"


@pytest.mark.parametrize("lost, phrase", [
    ("round-0001", "names the committed round state/round-0001, which is missing"),
    ("round-0001/model.pt", "the committed round state/round-0001 lacks model.pt"),
])
def test_a_commit_record_naming_a_missing_round_is_damaged(lost, phrase, fake, tmp_path,
                                                          monkeypatch):
    run_dir = stopped_after(fake, tmp_path / "lost", 2, monkeypatch)
    path = run_dir / "state" / lost
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()
    before = {p.relative_to(run_dir): p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    with pytest.raises(RunFolderError, match=f"{phrase}.*--force"):
        run(fake, tmp_path / "lost")
    assert {p.relative_to(run_dir): p.read_bytes() for p in run_dir.rglob("*")
            if p.is_file()} == before


# ------------------------------------------------------------------ --force
def reset_as_an_ordinary_user(base: Path) -> dict:
    """In a forked process (as user ``nobody`` when the tests run as root, who may delete
    anything): make a run folder with a read-only subfolder in ``base``, ``--force`` it,
    and return the error and what is left."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
            run_dir = base / "some-run"
            (run_dir / "state" / "kept").mkdir(parents=True)
            (run_dir / "manifest.json").write_text("{}")
            (run_dir / "state" / "kept" / "model.pt").write_text("weights")
            os.chmod(run_dir / "state" / "kept", 0o555)
            error = ""
            try:
                RunFolder(run_dir).reset()
            except RunFolderError as exc:
                error = " ".join(str(exc).split())
            left = sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*"))
            os.write(write, json.dumps({"error": error, "left": left}).encode())
        except BaseException as exc:  # noqa: BLE001  (said to the parent)
            os.write(write, json.dumps({"error": repr(exc), "left": None}).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        text = f.read()
    os.waitpid(pid, 0)
    return json.loads(text)


@needs_proc
def test_force_on_a_folder_it_cannot_delete_is_an_error_before_anything_is_deleted():
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="albench-reset-"))  # reachable by another user
    try:
        base.chmod(0o777)
        got = reset_as_an_ordinary_user(base)
        assert "cannot be deleted" in got["error"] and "Nothing was deleted" in got["error"]
        assert str(base / "some-run" / "state" / "kept") in got["error"]
        assert got["left"] == ["manifest.json", "state", "state/kept", "state/kept/model.pt"]
    finally:
        if (base / "some-run" / "state" / "kept").exists():
            (base / "some-run" / "state" / "kept").chmod(0o755)
        shutil.rmtree(base)


def test_force_whose_delete_fails_midway_leaves_no_half_deleted_run_folder(
        fake, tmp_path, monkeypatch):
    whole = comparable(run(fake, tmp_path / "whole").run_dir)
    run_dir = stopped_after(fake, tmp_path / "out", 2, monkeypatch)
    rmtree = shutil.rmtree

    def fails_midway(path, ignore_errors=False, **kwargs):
        files = sorted(p for p in Path(path).rglob("*") if p.is_file())
        if not files:
            return rmtree(path, ignore_errors=ignore_errors, **kwargs)
        files[0].unlink()
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(files[-1]))

    cfg = resolve("smoke", **SETTING)
    with monkeypatch.context() as m:
        m.setattr(shutil, "rmtree", fails_midway)
        with pytest.raises(RunFolderError, match="moved the run folder .* aside") as err:
            ActiveLearningLoop(cfg, tmp_path / "out", force=True, dataset=fake).run()
    aside = run_dir.with_name(f".{run_dir.name}.deleting")
    assert f"Delete {aside} yourself" in " ".join(str(err.value).split())
    assert not run_dir.exists() and aside.is_dir()  # the run folder is whole or gone
    assert not (aside / "manifest.json").exists()  # no report counts the rest
    again = run(fake, tmp_path / "out")  # starts over
    assert again.status == "complete" and comparable(again.run_dir) == whole


# ------------------------------------------------------------------ the real detector
DIE_AT_COMMIT = """
import os, sys
from albench.cli import main
out, n, replace, seen = sys.argv[1], int(sys.argv[2]), os.replace, []
def replace_or_die(src, dst, *args, **kwargs):
    if str(dst).startswith(out) and str(dst).endswith(os.path.join("state", "state.json")):
        seen.append(dst)
        if len(seen) == n:
            os._exit(17)
    return replace(src, dst, *args, **kwargs)
os.replace = replace_or_die
sys.exit(main(sys.argv[3:]))
"""


@pytest.mark.slow
def test_yolo_killed_between_its_model_and_its_commit_resumes_to_the_uninterrupted_run(
        tiny_cfg, tmp_path):
    """The case that once trained round 1 again on top of its own model: the process dies
    after round 1's model is written, before the round is committed."""
    import torch

    cfg = tiny_cfg(strategy="entropy", seed=3)
    out = tmp_path / "killed"
    setting = [f"--{k}={getattr(cfg, k)}" for k in ("preset", "initial", "budget", "rounds")]
    setting += [f"--dataset-opt={k}={v}" for k, v in cfg.dataset_options.items()]
    setting += [f"--backend-opt={k}={v}" for k, v in cfg.backend_options.items()]
    # the uninterrupted run in a process of its own, like the killed one: the same torch
    # threads (part of the round-0 cache key), whatever earlier tests set in this process
    subprocess.run([sys.executable, "-m", "albench", "run", "--strategy", "entropy", "--seed",
                    "3", "--quiet", "--out", str(tmp_path / "whole"), *setting],
                   env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True, capture_output=True)
    whole = ActiveLearningLoop(cfg, tmp_path / "whole").run()  # finished: read back as it is
    cmd = [sys.executable, "-c", DIE_AT_COMMIT, str(out), "2", "run", "--strategy", "entropy",
           "--seed", "3", "--quiet", "--out", str(out), *setting]
    proc = subprocess.run(cmd, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                          text=True)
    assert proc.returncode == 17, proc.stderr
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    assert run_dir.name == cfg.run_id()  # the command is the config's
    state = run_dir / "state"
    assert json.loads((state / "state.json").read_text())["next_round"] == 1
    assert (state / "round-0001" / "model.pt").is_file()  # written, not committed
    subprocess.run([sys.executable, "-m", "albench", "run", "--strategy", "entropy", "--seed",
                    "3", "--quiet", "--out", str(out), *setting],
                   env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True, capture_output=True)
    resumed = ActiveLearningLoop(cfg, out).run()  # finished by the rerun: read back as it is
    assert comparable(resumed.run_dir) == comparable(whole.run_dir)
    a, b = (torch.load(RunFolder(r.run_dir).model_path(), weights_only=False)["state_dict"]
            for r in (whole, resumed))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
