"""The CuPy backend (CUDA GPUs)."""
from __future__ import annotations


def cupy_unavailable_reason() -> str:
    """Why CuPy cannot run here, or '' when it can."""
    try:
        import cupy
    except ImportError:
        return "CuPy is not installed"
    try:
        if not cupy.cuda.is_available():
            return "CuPy is installed but no CUDA GPU or driver is usable"
    except Exception as exc:  # a broken driver install raises from is_available
        return f"CuPy cannot reach a CUDA GPU ({exc})"
    return "the CuPy backend is not implemented yet"


class CupyBackend:
    name = "cupy"
