"""The --deterministic setting: parsing, what auto resolves to, the torch state it sets,
the config hash and the manifest record, and how old manifests are read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from albench import determinism
from albench.cli import build_parser, main, setting_overrides
from albench.config import RunConfig, resolve
from albench.errors import ConfigError
from albench.sweep import read_config

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def restore_torch_state(monkeypatch):
    """Every test leaves torch's global determinism and the cuBLAS variable as it found them."""
    before = torch.are_deterministic_algorithms_enabled()
    bench = torch.backends.cudnn.benchmark
    monkeypatch.delenv(determinism.CUBLAS_VAR, raising=False)
    yield
    torch.use_deterministic_algorithms(before)
    torch.backends.cudnn.benchmark = bench


@pytest.mark.parametrize("mode,backend,device,effective,reproducible", [
    ("auto", "yolo", "cpu", "off", True),
    ("auto", "frcnn", "cpu", "off", True),
    ("on", "frcnn", "cpu", "on", True),
    ("off", "yolo", "cpu", "off", True),
    ("auto", "yolo", "cuda", "on", True),
    ("auto", "yolo", "cuda:1", "on", True),
    ("auto", "frcnn", "cuda", "off", False),
    ("on", "frcnn", "cuda", "on", True),
    ("off", "yolo", "cuda", "off", False),
    ("auto", "yolo", "mps", "off", False),
])
def test_decide(mode, backend, device, effective, reproducible):
    d = determinism.decide(mode, backend, device)
    assert (d.requested, d.effective, d.reproducible) == (mode, effective, reproducible)
    assert d.reason


def test_frcnn_auto_on_cuda_says_why_it_is_off():
    reason = determinism.decide("auto", "frcnn", "cuda").reason
    assert "not bit-reproducible" in reason and "--deterministic on" in reason


def _declaring(monkeypatch, declared: str) -> str:
    from albench.backends import BACKENDS, BackendInfo
    from albench.backends.adapter import BackendBase

    cls = type("Declared", (BackendBase,), {"name": "declared", "deterministic_on_cuda": declared})
    monkeypatch.setitem(BACKENDS, "declared", BackendInfo("declared", "a test backend", cls, {}))
    return "declared"


@pytest.mark.parametrize("declared,effective", [("cheap: measured small", "on"),
                                                ("slow: measured large", "off"), ("", "off")])
def test_auto_on_cuda_follows_what_the_backend_declares(monkeypatch, declared, effective):
    d = determinism.decide("auto", _declaring(monkeypatch, declared), "cuda")
    assert (d.effective, d.reproducible) == (effective, effective == "on")
    if declared:
        assert d.reason == "declared on CUDA: " + declared.partition(": ")[2]
    else:
        assert "not measured" in d.reason
    assert determinism.decide("auto", "declared", "cpu").effective == "off"


def test_a_malformed_declaration_is_refused(monkeypatch):
    with pytest.raises(ValueError, match="cheap|slow"):
        determinism.decide("auto", _declaring(monkeypatch, "fast, trust me"), "cuda")


def test_unknown_mode_is_a_config_error():
    with pytest.raises(ConfigError, match="--deterministic must be one of auto, on, off"):
        resolve("smoke", deterministic="sometimes")
    with pytest.raises(ConfigError, match="one of auto, on, off"):
        determinism.decide("sometimes", "yolo", "cpu")


def test_cli_flag_reaches_the_config():
    for argv, expected in ((["run"], "auto"), (["run", "--deterministic", "on"], "on"),
                           (["run", "--deterministic", "off"], "off")):
        args = build_parser().parse_args(argv)
        assert resolve("smoke", **setting_overrides(args)).deterministic == expected


def test_cli_rejects_an_unknown_mode(capsys):
    assert main(["run", "--deterministic", "maybe"]) == 2
    assert "--deterministic must be one of auto, on, off" in capsys.readouterr().err


def test_sweep_file_takes_the_setting(tmp_path):
    spec = tmp_path / "sweep.yaml"
    spec.write_text("strategies: random\ndeterministic: on\nsettings:\n  - {deterministic: off}\n")
    data = read_config(spec)
    assert data["deterministic"] == "on" and data["settings"][0]["deterministic"] == "off"


def test_hash_covers_explicit_modes_and_auto_keeps_old_run_ids():
    auto, on, off = (resolve("smoke", deterministic=m) for m in ("auto", "on", "off"))
    assert len({auto.config_hash(), on.config_hash(), off.config_hash()}) == 3
    assert len({auto.setting_hash(), on.setting_hash(), off.setting_hash()}) == 3
    # runs recorded before the setting existed keep their ids (auto is the default)
    manifests = sorted((ROOT / "results" / "reference").glob("*/manifest.json"))
    assert manifests
    for path in manifests[:3]:
        cfg = RunConfig.from_dict(json.loads(path.read_text())["config"])
        assert cfg.deterministic == "auto"
        assert cfg.run_id() == path.parent.name


def test_apply_on_sets_strict_mode_and_off_clears_it():
    rec = determinism.apply(resolve("smoke", deterministic="on"))
    assert rec["effective"] == "on" and torch.are_deterministic_algorithms_enabled()
    assert not torch.is_deterministic_algorithms_warn_only_enabled()
    rec = determinism.apply(resolve("smoke", deterministic="off"))
    assert rec == {"requested": "off", "effective": "off", "reproducible": True,
                   "reason": rec["reason"]}
    assert not torch.are_deterministic_algorithms_enabled()


def test_apply_for_cuda_sets_the_cublas_workspace_before_cuda_starts():
    import os

    cfg = resolve("smoke", device="cuda", backend="yolo")  # apply itself needs no GPU
    if torch.cuda.is_initialized():
        pytest.skip("CUDA already started in this process")
    rec = determinism.apply(cfg)
    assert os.environ[determinism.CUBLAS_VAR] == ":4096:8"
    assert rec[determinism.CUBLAS_VAR] == ":4096:8" and rec["effective"] == "on"
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.backends.cudnn.benchmark is False


def test_frcnn_on_cuda_under_auto_leaves_torch_alone():
    import os

    rec = determinism.apply(resolve("smoke", device="cuda", backend="frcnn"))
    assert rec["effective"] == "off" and rec["reproducible"] is False
    assert determinism.CUBLAS_VAR not in os.environ
    assert not torch.are_deterministic_algorithms_enabled()


def test_reproducible_reads_the_record_and_old_manifests():
    assert determinism.reproducible({"determinism": {"reproducible": False},
                                     "config": {"device": "cpu"}}) is False
    assert determinism.reproducible({"config": {"device": "cpu"}}) is True
    assert determinism.reproducible({"config": {"device": "cuda:0"}}) is False
    assert determinism.reproducible({}) is True


def test_manifest_records_the_determinism(tiny_cfg, tmp_path):
    from albench.loop import ActiveLearningLoop

    cfg = tiny_cfg(rounds=0, deterministic="on",
                   backend_options={"epochs": 1}, dataset_options={"pool_size": 40})
    result = ActiveLearningLoop(cfg, tmp_path).run()
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["config"]["deterministic"] == "on"
    assert manifest["determinism"]["requested"] == "on"
    assert manifest["determinism"]["effective"] == "on"
    assert determinism.reproducible(manifest) is True


def test_regress_says_when_runs_are_not_bit_reproducible(tmp_path):
    from albench.regress import compare, format_result
    from tests.helpers.runs import make_reference

    ref, fresh = make_reference(tmp_path / "ref"), make_reference(tmp_path / "fresh")
    assert "NOT bit-reproducible" not in format_result(compare(ref, fresh))  # CPU runs
    path = fresh / "entropy-s1" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["config"]["device"] = "cuda"
    manifest["determinism"] = determinism.decide("auto", "frcnn", "cuda").as_dict()
    path.write_text(json.dumps(manifest))
    text = format_result(compare(ref, fresh))
    assert "fresh: 1 of 9 run(s) are NOT bit-reproducible" in text and "entropy-s1" in text
    assert "reference:" not in text
