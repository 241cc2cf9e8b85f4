"""The package's layers import downward only, and never inside a function.

The layers are folders of gpugrad/ (FOLDERS below; docs/ARCHITECTURE.md draws them): a module
may import modules of its own layer or of layers below. The static test reads every module's imports; the dynamic
one imports each module alone (the package's __init__ not run) in a fresh interpreter and
checks that nothing above it was loaded."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gpugrad"

# The folders are the layers (docs/ARCHITECTURE.md draws them).
FOLDERS = {"gpugrad.core": 0, "gpugrad.compile": 1, "gpugrad.backends": 2, "gpugrad.runtime": 3,
           "gpugrad.api": 4, "gpugrad.training": 5}
# Outside the folders: the package itself, its version, the CLI, gpugrad.testing, and the tools
# and extensions on top (layer 6, may import anything below; _version imports nothing).
TOP = {"gpugrad": 6, "gpugrad.__main__": 6, "gpugrad.cli": 6, "gpugrad.testing": 6, "gpugrad._version": 0}
TOP_PACKAGES = ("gpugrad.bench", "gpugrad.selfcheck", "gpugrad.distributed")   # layer 6, whole


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _layer(module: str) -> int:
    for folder, layer in FOLDERS.items():
        if module == folder or module.startswith(folder + "."):
            return layer
    if module in TOP:
        return TOP[module]
    if module.startswith(TOP_PACKAGES):
        return 6
    raise KeyError(module)


def _modules() -> list[tuple[str, Path]]:
    return sorted((_module_name(p), p) for p in PACKAGE.rglob("*.py"))


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> list[str]:
    """The gpugrad modules an import statement reads."""
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if not target.startswith("gpugrad"):
        return []
    out = []
    for alias in node.names:   # `from pkg import x` names a module, or something in pkg
        candidate = f"{target}.{alias.name}"
        if (PACKAGE.parent / candidate.replace(".", "/")).with_suffix(".py").exists() or \
                (PACKAGE.parent / candidate.replace(".", "/") / "__init__.py").exists():
            out.append(candidate)
        elif target not in out:
            out.append(target)
    return out


def _imports(module: str, path: Path):
    """(line, target module, at module level?) for every import of a gpugrad module."""
    tree = ast.parse(path.read_text())
    is_package = path.name == "__init__.py"
    top = set()
    for stmt in tree.body:
        top.add(id(stmt))
        if isinstance(stmt, ast.If) and "TYPE_CHECKING" in ast.unparse(stmt.test):
            top.update(id(s) for s in ast.walk(stmt))
        if isinstance(stmt, ast.Try):   # optional-dependency fallbacks at module level
            top.update(id(s) for s in ast.walk(stmt))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            targets = _resolve(module, is_package, node)
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names if a.name.startswith("gpugrad")]
        else:
            continue
        for target in targets:
            yield node.lineno, target, id(node) in top


def test_every_module_has_a_layer():
    unknown = []
    for module, _ in _modules():
        try:
            _layer(module)
        except KeyError:
            unknown.append(module)
    assert not unknown, (f"put these modules in a layer's folder ({', '.join(FOLDERS)}) or, if they "
                         f"are tools on top, in TOP of tests/test_layers.py: {unknown}")


def test_imports_go_downward_and_never_inside_functions():
    problems = []
    for module, path in _modules():
        if module.startswith(TOP_PACKAGES) or module in ("gpugrad", "gpugrad.cli", "gpugrad.__main__"):
            continue   # the tools on top may import anything, lazily (a CLI loads what it runs)
        for line, target, at_top in _imports(module, path):
            where = f"{path.relative_to(ROOT)}:{line}"
            if not at_top:
                problems.append(f"{where}: imports {target} inside a function")
            elif _layer(target) > _layer(module):
                problems.append(f"{where}: {module} (layer {_layer(module)}) imports {target} "
                                f"(layer {_layer(target)}), a layer above it")
    assert not problems, "\n".join(problems)


_ALONE = r"""
import importlib, json, sys, types
root, names = sys.argv[1], json.loads(sys.argv[2])
loaded = {}
for name in names:
    for m in [m for m in sys.modules if m == "gpugrad" or m.startswith("gpugrad.")]:
        del sys.modules[m]
    pkg = types.ModuleType("gpugrad")    # the package without running its __init__
    pkg.__path__ = [root + "/gpugrad"]
    sys.modules["gpugrad"] = pkg
    importlib.import_module(name)
    loaded[name] = sorted(m for m in sys.modules if m.startswith("gpugrad."))
print(json.dumps(loaded))
"""


def test_each_layer_imports_alone():
    names = [m for m, _ in _modules() if _layer(m) <= 5]
    proc = subprocess.run([sys.executable, "-c", _ALONE, str(ROOT), json.dumps(names)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = json.loads(proc.stdout.splitlines()[-1])
    problems = [f"importing {name} alone loads {dep} (layer {_layer(dep)} > {_layer(name)})"
                for name, deps in loaded.items() for dep in deps if _layer(dep) > _layer(name)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", ["gpugrad.core.tensor", "gpugrad.core.primitives"])
def test_the_graph_knows_nothing_of_the_layers_above(name):
    proc = subprocess.run([sys.executable, "-c", _ALONE, str(ROOT), json.dumps([name])],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    deps = json.loads(proc.stdout.splitlines()[-1])[name]
    assert all(_layer(d) == 0 for d in deps), deps
