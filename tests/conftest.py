"""Shared fixtures: every test that takes `backend` runs on each backend present."""
from __future__ import annotations

import os
import re

import numpy as np
import pytest

import gpugrad as tf
from gpugrad import backends
from gpugrad.backends.cupy_backend import cupy_unavailable_reason
from gpugrad.backends.emulated import EmulatedCudaBackend, compiler_available

os.environ.setdefault("HYPOTHESIS_PROFILE", "ci")

try:
    from hypothesis import HealthCheck, settings

    settings.register_profile("ci", max_examples=40, deadline=None,
                              suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile(os.environ["HYPOTHESIS_PROFILE"])
except ImportError:  # pragma: no cover
    pass

BACKENDS = ["numpy"] + (["cupy"] if not cupy_unavailable_reason() else [])


@pytest.fixture(params=BACKENDS)
def backend(request):
    previous = tf.get_backend()
    tf.set_backend(request.param)
    yield request.param
    tf.set_backend(previous)


@pytest.fixture
def gpu():
    reason = cupy_unavailable_reason()
    if reason:
        pytest.skip(f"no GPU: {reason}")
    previous = tf.get_backend()
    tf.set_backend("cupy")
    yield
    tf.set_backend(previous)


@pytest.fixture
def emulated(monkeypatch):
    """The generated CUDA as the current backend, run on the CPU by the threaded emulator."""
    if not compiler_available():
        pytest.skip("g++ is not installed")
    previous = tf.get_backend()
    tf.set_backend("numpy")
    monkeypatch.setattr(backends, "_current", EmulatedCudaBackend())
    yield
    tf.set_backend(previous)


@pytest.fixture
def in_place_targets():
    """in_place_targets(fn): the temporaries a generated group function's ufunc calls write
    into, i.e. the argument after the operands (positional, or out= for maximum/minimum)."""
    def targets(fn) -> set:
        found = set()
        for callee, args in re.findall(r"= (c\d+)\(([^()]*)\)$", fn.source, re.M):
            ufunc, args = fn.__globals__[callee], [a.strip() for a in args.split(",")]
            if isinstance(ufunc, np.ufunc) and len(args) == ufunc.nin + 1:
                found.add(args[-1].removeprefix("out="))
        return found
    return targets


@pytest.fixture
def example():
    """example(name): a fresh module of examples/<name>.py, loaded from its file."""
    import importlib.util
    from pathlib import Path

    def load(name: str):
        path = Path(__file__).resolve().parents[1] / "examples" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(f"{name}_example", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return load


@pytest.fixture
def numpy_main():
    """numpy_main(module, *args): module.main(["--backend", "numpy", *args]), the backend
    restored after."""
    def run(module, *args):
        previous = tf.get_backend()
        try:
            return module.main(["--backend", "numpy", *args])
        finally:
            tf.set_backend(previous)
    return run


@pytest.fixture
def variables():
    """variables(values, **kw): a float32 tf.variable, disposed after the test."""
    import numpy as np
    made = []

    def make(values, **kw):
        v = tf.variable(tf.tensor(np.asarray(values, np.float32)), **kw)
        made.append(v)
        return v
    yield make
    for v in made:
        v.dispose()
