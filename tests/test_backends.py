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
