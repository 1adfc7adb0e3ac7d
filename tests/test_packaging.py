"""What a wheel carries: every package of the tree, every data file an installed albench
reads (the figure sets strategies ship, the regression reference), found without a checkout."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from albench.regress import packaged_reference

ROOT = Path(__file__).resolve().parents[1]
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def package_folder(name: str) -> Path:
    mapped = SETUPTOOLS.get("package-dir", {}).get(name)
    return ROOT / (mapped or name.replace(".", "/"))


def test_the_package_list_names_every_package_of_the_tree():
    tree = {".".join(p.parent.relative_to(ROOT).parts)
            for top in ("albench", "strategies") for p in (ROOT / top).rglob("__init__.py")}
    listed = set(SETUPTOOLS["packages"])
    assert tree - listed == set(), "packages missing from pyproject.toml [tool.setuptools] packages"
    assert {p for p in listed - tree if not package_folder(p).is_dir()} == set()


@pytest.mark.parametrize("package", ["albench._reference", "strategies.mgral"])
def test_package_data_covers_every_data_file(package):
    folder = package_folder(package)
    globs = SETUPTOOLS["package-data"][package]
    carried = {p for g in globs for p in folder.glob(g) if p.is_file()}
    data = {p for p in folder.rglob("*") if p.is_file() and p.suffix != ".py"
            and "__pycache__" not in p.parts}
    if package == "strategies.mgral":
        data = {p for p in data if "paper" in p.relative_to(folder).parts}
    assert data, f"no data files under {folder}"
    assert sorted(str(p.relative_to(folder)) for p in data - carried) == []


def test_the_default_reference_is_the_shipped_one():
    assert packaged_reference() == ROOT / "results" / "reference"
    assert (packaged_reference() / "sweep.yaml").is_file()


def test_regress_defaults_to_the_shipped_reference(tmp_path, capsys, monkeypatch):
    from albench.cli import main

    monkeypatch.chdir(tmp_path)  # no results/reference below the working directory
    assert main(["regress", "--runs", str(ROOT / "results" / "reference")]) == 0
    assert "Regression check: PASS" in capsys.readouterr().out
    assert main(["regress", "--runs", str(tmp_path)]) == 2  # no runs there: exit 2
    assert "No runs found" in capsys.readouterr().err


def test_rebuild_refuses_the_reference_inside_an_installed_albench(tmp_path, monkeypatch, capsys):
    import albench.cli.regress as command
    from albench.cli import main

    installed = tmp_path / "site-packages" / "albench" / "_reference"
    monkeypatch.setattr(command, "packaged_reference", lambda: installed)
    assert main(["regress", "--rebuild"]) == 2
    assert "--reference DIR" in capsys.readouterr().err and not installed.exists()
