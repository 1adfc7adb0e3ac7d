"""Bad input, one row each: the exit code, a phrase the one-paragraph message must hold, no
traceback, and every file already in the results folder byte-identical afterwards.

Rows that are arguments fail before any data is loaded; rows that damage a run folder
write it by hand (no training); rows of bad data write a small dataset that the load
refuses, before any training, so the whole table runs in seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from albench.cli import main
from albench.config import resolve
from tests.helpers.settings import TINY, TINY_CLI

EARLIER_ID = "shapes-yolo-random-s9-00000000"


def cli(args: list[str], capsys) -> tuple[int, str]:
    try:
        code = main(args)
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    out = capsys.readouterr()
    return code, out.out + out.err


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """A results folder that already holds a finished run."""
    folder = tmp_path / "results"
    run = folder / EARLIER_ID
    run.mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps({"status": "complete"}))
    (run / "rounds.csv").write_text("round,n_labeled,ap50\n0,16,0.5\n")
    return folder


# ------------------------------------------------------------------ arguments
ARGUMENT_ROWS = [
    # (arguments, phrase the message must contain)
    (["--seed", "-1"], "--seed must be a whole number of at least 0"),
    (["--lab-workers", "0"], "--lab-workers must be a whole number of at least 1"),
    (["--device", "tpu"], "--device 'tpu' is not a device"),
    (["--device", "meta"], "--device 'meta' is not a device"),
    (["--device", "cuda:99"], "--device cuda:99 was asked for"),
    (["--pool-subsample", "-5"], "--pool-subsample must be a whole number of at least 1"),
    (["--pool-subsample", "5000"], "--pool-subsample 5000 is more than the 80 pool images"),
    (["--initial", "1.5"], "--initial must be a count (a whole number of at least 1) or a share "
                           "of the pool in (0, 1] (0.05 or 5%), not '1.5'"),
    (["--initial", "150%"], "share of the pool in (0, 1] (0.05 or 5%), not '150%'"),
    (["--initial", "0"], "--initial must be a count (a whole number of at least 1) or a share"),
    (["--budget", "0.001"], "--budget 0.001 of a 80-image pool"),
    (["--initial", "abc"], "--initial must be a count"),
    (["--rounds", "two"], "--rounds must be a whole number of at least 0, not 'two'"),
    (["--seed", "x"], "--seed must be a whole number of at least 0, not 'x'. Give it as --seed 0"),
    (["--train-mode", "fast"], "--train-mode must be one of warm, scratch, not 'fast'"),
    (["--deterministic", "maybe"], "--deterministic must be one of auto, on, off"),
    (["--eval-engine", "coco"], "--eval-engine must be one of faster, pycocotools"),
    (["--rounds", "-1"], "--rounds must be a whole number of at least 0"),
    (["--budget", "5000"], "does not fit the pool"),
    (["--backend-opt", "imgsz=abc"], "--backend-opt imgsz must be a whole number of at least 1, "
                                     "not 'abc'. Give it as --backend-opt imgsz=128 (default 128)"),
    (["--backend-opt", "optimizer=adam"], "--backend-opt optimizer must be one of sgd, adamw"),
    (["--backend-opt", "amp=maybe"], "--backend-opt amp must be true or false (yes/no, on/off"),
    (["--backend-opt", "hflip=2"], "--backend-opt hflip must be a number in [0, 1], not '2'"),
    (["--backend-opt", "epochs=0"], "--backend-opt epochs must be a whole number of at least 1"),
    (["--backend-opt", "warm_epochs=-2"], "--backend-opt warm_epochs must be a whole number"),
    (["--backend-opt", "batch=0"], "--backend-opt batch must be a whole number"),
    (["--backend-opt", "epoch=3"], "Unknown --backend-opt 'epoch' for backend 'yolo'. Did you "
                                   "mean 'epochs'?"),
    (["--dataset-opt", "pool_sise=2000"], "Unknown --dataset-opt 'pool_sise' for dataset "
                                          "'shapes'. Did you mean 'pool_size'?"),
    (["--dataset-opt", "pool_size=many"], "--dataset-opt pool_size must be a whole number of at "
                                          "least 1, not 'many'"),
    (["--dataset-opt", "image_size=16"], "--dataset-opt image_size must be a whole number of at "
                                         "least 32, not '16'"),
    (["--data-root", "/somewhere"], "drop --data-root"),
    (["--strategy", "nope"], "Unknown strategy 'nope'"),
    (["--opt", "k=3"], "Unknown --opt 'k' for strategy 'random'. Known: none."),
    (["--strategy", "mgral", "--opt", "iterations=-1"], "--opt iterations must be a whole number "
                                                        "of at least 0, not '-1'"),
    (["--strategy", "mgral", "--opt", "reward_split=1"], "--opt reward_split must be a number in "
                                                         "(0, 1), not '1'"),
    (["--strategy", "mgral", "--opt", "iteratons=5"], "Did you mean 'iterations'?"),
    (["--preset", "nope"], "Unknown preset 'nope'"),
    (["--dataset", "nope"], "Unknown dataset 'nope'"),
]


@pytest.mark.parametrize("args, phrase", ARGUMENT_ROWS, ids=[" ".join(r[0]) for r in ARGUMENT_ROWS])
def test_bad_argument(args, phrase, out, capsys):
    before = snapshot(out)
    code, text = cli(["run", *TINY_CLI, *args, "--out", str(out), "--quiet"], capsys)
    assert code == 2
    assert phrase in " ".join(text.split()), text
    assert "Traceback" not in text
    assert snapshot(out) == before


def test_sweep_argument_rows(out, capsys):
    for args, phrase in ((["--strategies", "nope"], "Pass them with --strategies"),
                         (["--strategies", "random", "--seeds", "3-1"], "'3-1' is reversed"),
                         (["--strategies", "random", "--seeds", "-1"], "at least 0")):
        before = snapshot(out)
        code, text = cli(["sweep", *args, "--out", str(out), "--quiet"], capsys)
        assert code == 2 and phrase in " ".join(text.split()), text
        assert "Traceback" not in text and snapshot(out) == before


@pytest.mark.parametrize("where", ["parent is a file", "cannot be created"])
def test_out_that_cannot_be_created(where, tmp_path, capsys):
    if where == "parent is a file":
        (tmp_path / "afile").write_text("x")
        target = tmp_path / "afile" / "results"
    else:
        target = Path("/proc/albench-results")  # a filesystem that refuses new folders
    code, text = cli(["run", *TINY_CLI, "--out", str(target), "--quiet"], capsys)
    assert code == 2 and "cannot be created" in text and "--out" in text
    assert "Traceback" not in text


# ------------------------------------------------------------------ damaged run folders
def tiny_run_dir(out: Path) -> Path:
    return out / resolve("smoke", strategy="random", seed=0, **TINY).run_id()


def tiny_fingerprint() -> str:
    from albench.data import load_dataset

    return load_dataset("shapes", **TINY["dataset_options"]).fingerprint()


def write_run(run: Path, status: str, rows: bytes, state: object | None = None,
              fingerprint: str | None = None) -> None:
    run.mkdir(parents=True, exist_ok=True)
    manifest = {"status": status, "dataset": {"fingerprint": fingerprint, "sources": {}}}
    (run / "manifest.json").write_text(json.dumps(manifest))
    (run / "rounds.csv").write_bytes(rows)
    if state is not None:
        (run / "state").mkdir(exist_ok=True)
        text = state if isinstance(state, str) else json.dumps(state)
        (run / "state" / "state.json").write_text(text)


HEADER = (b"dataset,backend,strategy,preset,seed,round,n_labeled,n_boxes_labeled,ap,ap50,ap75,"
          b"per_class_ap,t_train_s,t_infer_s,t_eval_s,t_select_s,t_strategy_train_s,t_round_s,"
          b"peak_rss_mb,peak_gpu_mb,n_selected,selection_sha256,round0_cached\n")
TWO_ROUNDS = {"next_round": 2, "labeled_round": [0] * 16 + [1] * 8 + [2] * 8 + [-1] * 48}

DAMAGED_ROWS = [
    # (id, status, rounds.csv bytes, state.json, right fingerprint?, phrase)
    ("finished, binary garbage in rounds.csv", "complete", b"\xff\xfe\x00garbage\x81", None,
     True, "rounds.csv cannot be read"),
    ("finished, rounds.csv of another program", "complete", b"a,b\n1,2\n", None, True,
     "rounds.csv lacks the column(s) round, n_labeled, ap50"),
    ("finished, a cut-off row", "complete", HEADER + b"shapes,yolo\n", None, True,
     "line 2 of rounds.csv is not a complete round row"),
    ("interrupted, rounds.csv emptied", "running", b"", TWO_ROUNDS, True,
     "the state says rounds 0..1 are done but rounds.csv holds rounds none"),
    ("interrupted, state.json garbage", "running", HEADER, "{not json", True,
     "state/state.json cannot be read"),
    ("interrupted, state of another pool", "running", HEADER,
     {"next_round": 1, "labeled_round": [0] * 5}, True, "the label state covers 5 images"),
    ("interrupted, data changed", "running", HEADER, TWO_ROUNDS, False,
     "on different data"),
]


@pytest.mark.parametrize("status, rows, state, same_data, phrase",
                         [r[1:] for r in DAMAGED_ROWS], ids=[r[0] for r in DAMAGED_ROWS])
def test_damaged_run_folder(status, rows, state, same_data, phrase, out, capsys):
    run = tiny_run_dir(out)
    write_run(run, status, rows, state, tiny_fingerprint() if same_data else "0" * 64)
    before = snapshot(out)
    code, text = cli(["run", *TINY_CLI, "--out", str(out), "--quiet"], capsys)
    assert code == 2
    flat = " ".join(text.split())
    assert phrase in flat and "--force" in flat, text
    assert "Traceback" not in text
    assert snapshot(out) == before


# ------------------------------------------------------------------ bad data, refused at load
def _image(path: Path, k: int, size=(64, 48)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (40 * k % 256, 90, 200 - 10 * k)).save(path)


def _coco(tmp: Path, test_images=("t.jpg",), declared=(64, 48), crowd=False) -> list[str]:
    """A 4-image coco-json pool and a test split; returns the CLI flags that load it."""
    names = ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]
    for k, name in enumerate(names + list(test_images)):
        _image(tmp / "img" / name, k)
    cats = [{"id": 1, "name": "cell"}]

    def doc(files, first, iscrowd=0):
        images = [{"id": first + k, "file_name": n, "width": declared[0], "height": declared[1]}
                  for k, n in enumerate(files)]
        anns = [{"id": first + k, "image_id": first + k, "category_id": 1,
                 "bbox": [40, 30, 10, 10], "iscrowd": iscrowd} for k in range(len(files))]
        return {"images": images, "annotations": anns, "categories": cats}

    (tmp / "train.json").write_text(json.dumps(doc(names, 1)))
    (tmp / "test.json").write_text(json.dumps(doc(list(test_images), 100, int(crowd))))
    return ["--dataset", "coco-json", "--ann-train", str(tmp / "train.json"),
            "--ann-test", str(tmp / "test.json"), "--images", str(tmp / "img")]


def _truncated(tmp: Path) -> list[str]:
    args = _coco(tmp)
    path = tmp / "img" / "b.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (240, 320, 3), np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:4000])
    return args


def _copied_test(tmp: Path) -> list[str]:
    args = _coco(tmp)
    (tmp / "img" / "t.jpg").write_bytes((tmp / "img" / "a.jpg").read_bytes())
    return args


def _float_image(tmp: Path) -> list[str]:
    args = _coco(tmp, test_images=("t.tif",))
    Image.fromarray(np.ones((48, 64), np.float32)).save(tmp / "img" / "t.tif")
    return args


def _voc_folder(tmp: Path) -> list[str]:
    for k in range(4):
        _image(tmp / "cells" / "JPEGImages" / f"c{k}.jpg", k)
        (tmp / "cells" / "Annotations").mkdir(parents=True, exist_ok=True)
        (tmp / "cells" / "Annotations" / f"c{k}.xml").write_text(
            "<annotation><object><name>rbc</name><bndbox><xmin>1</xmin><ymin>1</ymin>"
            "<xmax>9</xmax><ymax>9</ymax></bndbox></object></annotation>")
    (tmp / "cells" / "Annotations" / "c2.xml").write_text("<annotation><object>")
    return ["--dataset", "voc", "--data-root", str(tmp / "cells"),
            "--dataset-opt", "test_share=0.25"]


def _yolo(tmp: Path) -> list[str]:
    for split in ("train", "val"):
        for k in range(3):
            _image(tmp / "ds" / "images" / split / f"{split}{k}.png", k + 3 * (split == "val"))
            (tmp / "ds" / "labels" / split).mkdir(parents=True, exist_ok=True)
            (tmp / "ds" / "labels" / split / f"{split}{k}.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (tmp / "ds" / "labels" / "train" / "train1.txt").write_text("0 32 24 12 12\n")
    (tmp / "ds" / "data.yaml").write_text("train: images/train\nval: images/val\nnames: [cell]\n")
    return ["--dataset", "yolo", "--data-root", str(tmp / "ds" / "data.yaml")]


DATA_ROWS = [
    # (id, writes the bad data and returns the dataset flags, phrase of the message)
    ("a truncated JPEG in the pool", _truncated, "image file is truncated"),
    ("a test image that is a byte copy of a pool image", _copied_test,
     "1 test images are byte-for-byte copies of pool images"),
    ("an empty test set", lambda t: _coco(t, test_images=()), "the test split holds no image"),
    ("an all-crowd test set", lambda t: _coco(t, crowd=True),
     "none of its 1 test images has a box that counts"),
    ("declared sizes half the real ones", lambda t: _coco(t, declared=(32, 24)),
     "4 of its 4 boxes (100%) would be dropped"),
    ("a float image", _float_image, "no agreed 8-bit display range"),
    ("a VOC folder with a malformed XML file", _voc_folder, "c2.xml cannot be parsed"),
    ("a YOLO label in pixels", _yolo, "train1.txt, line 1"),
]


@pytest.mark.parametrize("write, phrase", [r[1:] for r in DATA_ROWS], ids=[r[0] for r in DATA_ROWS])
def test_bad_data_stop_the_run_before_any_training(write, phrase, out, tmp_path, capsys):
    data_flags = write(tmp_path / "data")
    before = snapshot(out)
    code, text = cli(["run", "--preset", "smoke", "--initial", "2", "--budget", "1", "--rounds",
                      "1", "--backend-opt", "imgsz=64", "--backend-opt", "epochs=1",
                      *data_flags, "--out", str(out), "--quiet"], capsys)
    assert code == 2
    assert phrase in " ".join(text.split()), text
    assert "Traceback" not in text
    assert snapshot(out) == before  # no run folder, no model: refused before any training


# ------------------------------------------------------------------ damaged results folders
def _cell(folder: Path, column: str, value: str) -> None:
    import pandas as pd

    frame = pd.read_csv(folder / "rounds.csv")
    frame[column] = frame[column].astype(object)
    frame.loc[1, column] = value
    frame.to_csv(folder / "rounds.csv", index=False)


RESULT_ROWS = [
    # (id, damage one run folder, phrase the warning must hold)
    ("non-numeric ap50", lambda f: _cell(f, "ap50", "abc"), "non-numeric or missing ap50 (row 2 'abc')"),
    ("empty ap cell", lambda f: _cell(f, "ap", ""), "non-numeric or missing ap (row 2"),
    ("manifest not JSON", lambda f: (f / "manifest.json").write_text("{oops"),
     "manifest.json unreadable"),
    ("rounds.csv lacks ap50", lambda f: (f / "rounds.csv").write_text("round,n_labeled,ap\n0,1,0.1\n"),
     "rounds.csv lacks column(s) ap50"),
    ("seed not a number", lambda f: (f / "manifest.json").write_text(json.dumps(
        {**json.loads((f / "manifest.json").read_text()),
         "config": {**json.loads((f / "manifest.json").read_text())["config"], "seed": "x"}})),
     "seed 'x' is not a whole number"),
]


@pytest.mark.parametrize("command", ["report", "regress"])
@pytest.mark.parametrize("damage, phrase", [r[1:] for r in RESULT_ROWS], ids=[r[0] for r in RESULT_ROWS])
def test_damaged_results_are_skipped_with_a_warning(command, damage, phrase, tmp_path, capsys):
    from tests.helpers.runs import make_reference

    reference = make_reference(tmp_path / "reference")
    runs = make_reference(tmp_path / "runs")
    damage(runs / "entropy-s1")
    args = (["report", str(runs), "--out", str(tmp_path / "rep")] if command == "report"
            else ["regress", "--reference", str(reference), "--runs", str(runs)])
    with pytest.warns(UserWarning) as caught:
        code, text = cli(args, capsys)
    messages = " ".join(str(w.message) for w in caught)
    assert code == 0 and "Traceback" not in text
    assert str(runs / "entropy-s1") in messages and phrase in " ".join(messages.split())
    for other in runs.iterdir():  # every other folder is left as it was and still counted
        if other.name != "entropy-s1":
            assert str(other) not in messages


def test_nothing_left_after_skipping_damaged_runs_is_exit_2(tmp_path, capsys):
    from tests.helpers.runs import make_reference

    runs = make_reference(tmp_path / "runs")
    for folder in runs.iterdir():
        _cell(folder, "ap50", "abc")
    with pytest.warns(UserWarning):
        code, text = cli(["report", str(runs), "--out", str(tmp_path / "rep")], capsys)
    assert code == 2 and "none can be used" in " ".join(text.split()) and "Traceback" not in text


def test_report_out_that_is_a_file_is_exit_2(tmp_path, capsys):
    from tests.helpers.runs import make_reference

    runs = make_reference(tmp_path / "runs")
    target = tmp_path / "report.md"
    target.write_text("keep me")
    code, text = cli(["report", str(runs), "--out", str(target)], capsys)
    assert code == 2 and "is an existing file" in " ".join(text.split()) and "Traceback" not in text
    assert target.read_text() == "keep me"


# ------------------------------------------------------------------ regress arguments and references
def _other_settings(tmp: Path) -> list[str]:
    from tests.helpers.runs import SEED_NOISE, STRATEGIES, make_reference, write_run

    for strategy in STRATEGIES:  # the same preset name, other resolved settings (hash)
        for seed in SEED_NOISE:
            write_run(tmp / "runs", strategy, seed, setting_hash="other-pool-and-epochs")
    return ["--reference", str(make_reference(tmp / "reference")), "--runs", str(tmp / "runs")]


def _one_seed(tmp: Path) -> list[str]:
    from tests.helpers.runs import STRATEGIES, write_run

    for strategy in STRATEGIES:
        write_run(tmp / "reference", strategy, 0)
    return ["--reference", str(tmp / "reference"), "--runs", str(tmp / "reference")]


def _args(*extra: str):
    def write(tmp: Path) -> list[str]:
        from tests.helpers.runs import make_reference

        ref = str(make_reference(tmp / "reference"))
        return ["--reference", ref, "--runs", ref, *extra]
    return write


REGRESS_ROWS = [
    ("other settings, same preset", _other_settings, "other resolved settings than the reference"),
    ("reference of one seed", _one_seed, "fewer than 2 complete seeds"),
    ("--k -1", _args("--k", "-1"), "--k must be a finite number above 0"),
    ("--k nan", _args("--k", "nan"), "--k must be a finite number above 0"),
    ("--floor -1", _args("--floor", "-1"), "--floor must be a finite number of at least 0"),
]


@pytest.mark.parametrize("write, phrase", [r[1:] for r in REGRESS_ROWS], ids=[r[0] for r in REGRESS_ROWS])
def test_regress_refuses(write, phrase, tmp_path, capsys):
    args = write(tmp_path)
    before = snapshot(tmp_path)
    code, text = cli(["regress", *args], capsys)
    assert code == 2 and phrase in " ".join(text.split()) and "Traceback" not in text
    assert snapshot(tmp_path) == before
