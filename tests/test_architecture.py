"""The structure the project keeps: no import cycles, modules of one size, a harness that knows
no strategy by name, no model files in the tree, and test modules that do not import each other.

The import graph is read from the source with :mod:`ast`, so function-level imports count as
much as module-level ones (a cycle hidden inside a function is still a cycle).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("albench", "strategies")
MAX_LINES = 350
MODEL_SUFFIXES = (".pt", ".pth", ".ckpt", ".onnx", ".safetensors", ".engine", ".torchscript")


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the project's packages."""
    out = {}
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _imported(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules that ``module`` imports anywhere in its file."""
    targets: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join(pkg + ([base] if base else []))
            for alias in node.names:  # `from pkg import submodule` imports the submodule
                full = f"{base}.{alias.name}"
                targets.append(full if full in known else base)
    out = set()
    for target in targets:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != module:
            out.add(target)
    return out


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    known = project_modules(root)
    return {m: _imported(m, p, known) for m, p in known.items()}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_function_level_cycle(tmp_path):
    (tmp_path / "albench").mkdir()
    (tmp_path / "strategies").mkdir()
    (tmp_path / "albench" / "__init__.py").write_text("")
    (tmp_path / "strategies" / "__init__.py").write_text("")
    (tmp_path / "albench" / "a.py").write_text("def f():\n    from albench import b\n")
    (tmp_path / "albench" / "b.py").write_text("from .a import f\n")
    (tmp_path / "albench" / "c.py").write_text("import albench.b\n")
    assert import_cycles(import_graph(tmp_path)) == [["albench.a", "albench.b"]]


def test_no_import_cycles_between_the_projects_modules():
    cycles = import_cycles(import_graph())
    assert not cycles, "import cycles (function-level imports counted):\n" + "\n".join(
        " <-> ".join(c) for c in cycles)


def test_no_harness_module_is_over_the_line_limit():
    long = {m: n for m, p in project_modules().items()
            if m.startswith("albench") and (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them by concept): {long}"


def test_the_harness_imports_no_strategy_and_names_none():
    builtin = {p.stem for p in (ROOT / "strategies").iterdir()
               if p.stem not in ("__init__", "__pycache__")}
    graph = import_graph()
    crossing = {m: sorted(t for t in ts if t.startswith("strategies"))
                for m, ts in graph.items() if m.startswith("albench")}
    crossing = {m: t for m, t in crossing.items() if t}
    assert not crossing, f"harness modules importing a strategy: {crossing}"
    named = []
    for module, path in project_modules().items():
        if module.startswith("albench"):
            text = path.read_text().lower()
            named += [f"{module}: {s}" for s in sorted(builtin) if s == "mgral"
                      and s in text]
    assert not named, "harness modules that name a strategy: " + ", ".join(named)


def _tracked_files() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file()
                and ".git" not in p.parts and ".venv" not in p.parts]
    return out.stdout.splitlines()


def test_the_tree_carries_no_model_files():
    models = [f for f in _tracked_files()
              if f.lower().endswith(MODEL_SUFFIXES) or "/state/" in f or f.startswith("state/")]
    assert not models, f"model files in the tree (results keep rows, selections, manifests): {models[:5]}"


def test_no_test_module_imports_another():
    tests = ROOT / "tests"
    names = {p.stem for p in tests.rglob("test_*.py")} | {"conftest"}
    offenders = []
    for path in tests.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            mods = []
            if isinstance(node, ast.ImportFrom) and node.module:
                mods = [node.module]
            elif isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            for mod in mods:
                if mod.split(".")[-1] in names:
                    offenders.append(f"{path.relative_to(ROOT)} imports {mod}")
    assert not offenders, offenders


if __name__ == "__main__":  # python tests/test_architecture.py: print the cycles
    for cycle in import_cycles(import_graph()):
        print(" <-> ".join(cycle))
    sys.exit(0)
