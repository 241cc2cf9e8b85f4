"""The package's layers import downward only, and never inside a function.

LAYERS below is the architecture (docs/ARCHITECTURE.md draws it): a module may import modules
of its own layer or of layers below. The static test reads every module's imports; the dynamic
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

LAYERS = {
    # 0. the graph: dtypes, primitive records, snippets, nodes, caches
    "gpugrad._version": 0, "gpugrad.dtypes": 0, "gpugrad.caches": 0, "gpugrad.primitives": 0,
    "gpugrad.primitives.record": 0, "gpugrad.primitives.elementwise": 0,
    "gpugrad.primitives.structural": 0, "gpugrad.primitives.completeness": 0,
    "gpugrad.snippets": 0, "gpugrad.tensor": 0, "gpugrad.tfjs_names": 0,
    # 1. math over the graph, derivatives, scheduling and code generation
    "gpugrad.lax": 1, "gpugrad.derivatives": 1, "gpugrad.nvrtc": 1, "gpugrad.codegen": 1,
    "gpugrad.schedule": 1, "gpugrad.optim_codegen": 1, "gpugrad.cuda_check": 1,
    # 2. backends: execute plans
    "gpugrad.backends": 2, "gpugrad.backends.interpret": 2, "gpugrad.backends.numpy_backend": 2,
    "gpugrad.backends.generated": 2, "gpugrad.backends.cupy_backend": 2,
    "gpugrad.backends.emulated": 2, "gpugrad.backends.emulated_optim": 2,
    # 3. runtime: realizing tensors, printing values
    "gpugrad.engine": 3, "gpugrad.printing": 3,
    # 4. the public API: ops, variables, autodiff, memory, reading, explain, testing
    "gpugrad.ops": 4, "gpugrad.variables": 4, "gpugrad.autodiff": 4, "gpugrad.memory": 4,
    "gpugrad.reading": 4, "gpugrad.numpy_interop": 4, "gpugrad.methods": 4,
    "gpugrad.explain": 4, "gpugrad.testing": 4,
    # 5. training
    "gpugrad.debug": 5, "gpugrad.optimizers": 5, "gpugrad.optimizers.checks": 5,
    "gpugrad.optimizers.state": 5, "gpugrad.optimizers.base": 5, "gpugrad.optimizers.kinds": 5,
    "gpugrad.optimizers.factories": 5, "gpugrad.loss_ops": 5, "gpugrad.nn": 5,
    "gpugrad.train": 5, "gpugrad.checkpoint": 5, "gpugrad.clipping": 5,
    # 6. the package itself and the tools and extensions on top of it
    "gpugrad": 6, "gpugrad.__main__": 6, "gpugrad.cli": 6,
}
TOP_PACKAGES = ("gpugrad.bench", "gpugrad.selfcheck", "gpugrad.distributed")   # layer 6, whole


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _layer(module: str) -> int:
    if module in LAYERS:
        return LAYERS[module]
    if module.startswith("gpugrad.ops."):
        return LAYERS["gpugrad.ops"]
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
    out = [target] if node.module else []   # `from . import x`: only the modules x count
    for alias in node.names:   # `from . import x` names a module
        candidate = f"{target}.{alias.name}"
        if candidate in LAYERS or candidate.startswith(TOP_PACKAGES) or \
                (PACKAGE.parent / candidate.replace(".", "/")).with_suffix(".py").exists():
            out.append(candidate)
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
    assert not unknown, f"add these modules to LAYERS in tests/test_layers.py: {unknown}"


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
    names = [m for m, _ in _modules() if m in LAYERS and _layer(m) <= 5 and m != "gpugrad"]
    proc = subprocess.run([sys.executable, "-c", _ALONE, str(ROOT), json.dumps(names)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = json.loads(proc.stdout.splitlines()[-1])
    problems = [f"importing {name} alone loads {dep} (layer {_layer(dep)} > {_layer(name)})"
                for name, deps in loaded.items() for dep in deps if _layer(dep) > _layer(name)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", ["gpugrad.tensor", "gpugrad.primitives"])
def test_the_graph_knows_nothing_of_the_layers_above(name):
    proc = subprocess.run([sys.executable, "-c", _ALONE, str(ROOT), json.dumps([name])],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    deps = json.loads(proc.stdout.splitlines()[-1])[name]
    assert all(_layer(d) == 0 for d in deps), deps
