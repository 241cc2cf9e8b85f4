"""Backend selection and the CuPy backend's refusal where it cannot run."""
from __future__ import annotations

import sys
import types

import pytest

import gpugrad as tf
from gpugrad import backends


def _fake_cupy(monkeypatch, available: bool):
    fake = types.ModuleType("cupy")
    fake.cuda = types.SimpleNamespace(is_available=lambda: available)
    monkeypatch.setitem(sys.modules, "cupy", fake)


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown backend 'tpu': choose one of numpy, cupy"):
        tf.set_backend("tpu")
    assert tf.get_backend() in ("numpy", "cupy")


def test_cupy_without_cupy_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy raises ImportError
    with pytest.raises(RuntimeError, match=r"CuPy is not installed.*gpugrad\[cuda12\]"):
        tf.set_backend("cupy")


def test_cupy_without_a_driver_says_so(monkeypatch):
    # import cupy succeeds on a machine without a driver: only is_available() tells
    _fake_cupy(monkeypatch, available=False)
    with pytest.raises(RuntimeError, match="no CUDA GPU or driver"):
        tf.set_backend("cupy")


def test_default_is_numpy_where_no_gpu_is_usable(monkeypatch):
    _fake_cupy(monkeypatch, available=False)
    monkeypatch.delenv("GPUGRAD_BACKEND", raising=False)
    monkeypatch.setattr(backends, "_current", None)
    assert tf.get_backend() == "numpy"


def test_env_variable_picks_the_backend(monkeypatch):
    monkeypatch.setenv("GPUGRAD_BACKEND", "numpy")
    monkeypatch.setattr(backends, "_current", None)
    assert tf.get_backend() == "numpy"
    monkeypatch.setenv("GPUGRAD_BACKEND", "nonsense")
    monkeypatch.setattr(backends, "_current", None)
    with pytest.raises(ValueError, match="Unknown backend"):
        tf.get_backend()
    monkeypatch.setattr(backends, "_current", None)


def test_kernels_that_take_their_launch_dims_as_tuples(monkeypatch):
    """CuPy's RawKernels are called as they are, (grid,), (block,), args (dims_as_tuples): on
    the first run's loop and through the generated launchers alike."""
    import numpy as np

    from gpugrad.backends.emulated import EmulatedCudaBackend, compiler_available
    if not compiler_available():
        pytest.skip("g++ is not installed")
    seen = set()

    class TupleDims(EmulatedCudaBackend):
        name = "cuda-emulated-tuple-dims"
        dims_as_tuples = True

        def compile(self, program):
            inner = super().compile(program)

            def wrap(fn):
                def kernel(grid, block, args):
                    assert isinstance(grid, tuple) and isinstance(block, tuple)
                    seen.add((grid, block))
                    return fn(grid[0], block[0], args)
                return kernel
            return {name: wrap(fn) for name, fn in inner.items()}

    previous = tf.get_backend()
    tf.set_backend("numpy")
    monkeypatch.setattr(backends, "_current", TupleDims())
    try:
        p = tf.variable(tf.tensor(np.linspace(-1, 1, 300, dtype=np.float32)))
        for _ in range(3):   # the loop, then the compiled runner
            value, grads = tf.variable_grads(lambda: tf.sum(tf.exp(p) * p), [p])
            x = np.linspace(-1, 1, 300, dtype=np.float32)
            np.testing.assert_allclose(value.numpy(), np.sum(np.exp(x) * x), rtol=1e-5)
            np.testing.assert_allclose(grads[p.name].numpy(), np.exp(x) * (x + 1), rtol=1e-5)
        # a plan of one group runs as its launcher, returning the outputs (no slot list)
        from gpugrad.api.autodiff import _hot_plans
        runners = [r for entry in _hot_plans.values() for k, r in entry[0].runners.items()
                   if k[0] == TupleDims.name and r is not None]
        assert runners and all("return [" in r.source and "slots[3] =" not in r.source for r in runners)
        p.dispose()
    finally:
        tf.set_backend(previous)
    assert seen
