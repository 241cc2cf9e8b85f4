"""Backend selection: numpy everywhere, CuPy where a CUDA GPU is usable."""
from __future__ import annotations

import os

import numpy as np

from gpugrad.backends.cupy_backend import CupyBackend, cupy_unavailable_reason
from gpugrad.backends.numpy_backend import NumpyBackend

_BACKENDS = ("numpy", "cupy")
# TF.js calls its CPU backend 'cpu'; here that is the numpy backend. get_backend() keeps
# answering with gpugrad's own name ('numpy'), the name that says what actually runs.
_TFJS_NAMES = {"cpu": "numpy"}
_current = None


def _make(name: str):
    name = _TFJS_NAMES.get(name, name)
    if name == "numpy":
        return NumpyBackend()
    if name == "cupy":
        reason = cupy_unavailable_reason()
        if reason:
            raise RuntimeError(
                f"The cupy backend cannot run here: {reason}. Install CuPy for your CUDA version "
                "(pip install \"gpugrad[cuda12]\" or \"gpugrad[cuda13]\") on a machine with an NVIDIA "
                "GPU and driver, or use set_backend('numpy').")
        return CupyBackend()
    raise ValueError(f"Unknown backend {name!r}: choose one of {', '.join(_BACKENDS)} "
                     "('cpu', TF.js's name for its CPU backend, selects numpy).")


def _default():
    """GPUGRAD_BACKEND if set; else CuPy where a GPU is usable (import cupy succeeds without a
    driver, so availability is asked), numpy otherwise."""
    env = os.environ.get("GPUGRAD_BACKEND", "").strip().lower()
    if env:
        return _make(env)
    return _make("cupy") if not cupy_unavailable_reason() else NumpyBackend()


def current():
    global _current
    if _current is None:
        _current = _default()
    return _current


def set_backend(name: str) -> None:
    """Use the numpy or the CuPy backend from now on (process-wide). TF.js's 'cpu' selects
    numpy; get_backend() then returns 'numpy'."""
    global _current
    _current = _make(str(name).lower())


def get_backend() -> str:
    return current().name


def to_numpy(buf) -> np.ndarray:
    if isinstance(buf, np.ndarray):
        return buf
    return buf.get()
