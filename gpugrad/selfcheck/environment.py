"""What this install runs on, in the spirit of torch.utils.collect_env and
jax.print_environment_info: every field is asked of the system, never assumed; a field that
cannot be read says why."""
from __future__ import annotations

import platform
import shutil
import subprocess
import sys

import numpy as np


def _cuda_version(v: int) -> str:
    """CUDA encodes versions as 1000 * major + 10 * minor."""
    return f"{v // 1000}.{(v % 1000) // 10}"


def collect() -> dict[str, str]:
    from gpugrad.selfcheck.targets import gpu_reason
    env: dict[str, str] = {
        "gpugrad": _version("gpugrad"),
        "python": f"{platform.python_version()} ({sys.executable})",
        "platform": platform.platform(),
        "numpy": np.__version__,
    }
    try:
        import cupy
        env["cupy"] = cupy.__version__
    except ImportError:
        env["cupy"] = "not installed"
        cupy = None
    reason = gpu_reason()
    if reason:
        env["gpu"] = f"none usable: {reason}"
    else:
        env.update(_gpu_fields(cupy))
    env["nvrtc (gpugrad's kernel compiler)"] = _nvrtc_version()
    env["g++ (CPU emulator of the kernels)"] = _first_line(["g++", "--version"]) if shutil.which("g++") \
        else "not found"
    env["nvcc"] = _first_line(["nvcc", "--version"], last=True) if shutil.which("nvcc") else "not found"
    env["compute-sanitizer"] = shutil.which("compute-sanitizer") or "not found"
    return env


def _gpu_fields(cupy) -> dict[str, str]:
    out = {}
    rt = cupy.cuda.runtime
    dev = cupy.cuda.Device()
    props = rt.getDeviceProperties(dev.id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    out["gpu"] = f"{dev.id}: {name} ({props['totalGlobalMem'] / 2**30:.1f} GiB, {props['multiProcessorCount']} SMs)"
    out["compute capability"] = f"{props['major']}.{props['minor']}"
    out["gpu count"] = str(rt.getDeviceCount())
    out["driver (CUDA version it supports)"] = _cuda_version(rt.driverGetVersion())
    out["driver version"] = _first_line(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]) \
        if shutil.which("nvidia-smi") else "nvidia-smi not found"
    out["cuda runtime"] = _cuda_version(rt.runtimeGetVersion())
    return out


def _nvrtc_version() -> str:
    try:
        from gpugrad.compile import nvrtc
        return nvrtc.version()
    except Exception as exc:  # noqa: BLE001 - reported, not fatal
        return f"unavailable ({type(exc).__name__}: {exc})"


def _version(package: str) -> str:
    try:
        from importlib.metadata import version
        return version(package)
    except Exception:  # noqa: BLE001 - running from a source tree without metadata
        return "source tree (not installed)"


def _first_line(cmd: list[str], last: bool = False) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc})"
    lines = [ln.strip() for ln in proc.stdout.splitlines() if ln.strip()]
    if not lines:
        return f"unavailable (exit {proc.returncode})"
    return lines[-1] if last else lines[0]
