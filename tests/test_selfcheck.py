"""`gpugrad selfcheck`: it runs, reports every check with a status, fails loudly (one line per
failed check) when a kernel is wrong, keeps going past a check that raises; and ci/gpu.sh parses."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gpugrad import selfcheck
from gpugrad.selfcheck import graphs, numerics
from gpugrad.selfcheck.core import mismatch
from gpugrad.selfcheck.targets import gpu_reason, kernel_target

ROOT = Path(__file__).resolve().parents[1]
GPU_ONLY = {"stream-capture", "peak-memory", "kernel-cache", "timing", "determinism/cupy"}


def test_quick_selfcheck_passes_and_reports_every_check(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("GPUGRAD_BACKEND", None)
    out = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "gpugrad", "selfcheck", "--quick", "--out", str(out)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    report = json.loads((out / "report.json").read_text())
    markdown = (out / "report.md").read_text()
    checks = {c["name"]: c for c in report["checks"]}
    _, planned = selfcheck.plan_checks(quick=True)
    assert set(checks) == {c.name for c in planned}
    for name, check in checks.items():
        assert check["status"] in ("passed", "skipped"), check
        assert f"| {name} | {check['status']} |" in markdown
        assert f"{name}" in proc.stdout
    for name in GPU_ONLY:
        if gpu_reason():
            assert checks[name]["status"] == "skipped" and checks[name]["summary"] == "skipped: no GPU"
    kernels = kernel_target()
    if kernels is not None:
        for kind in ("seed-programs", "primitives", "random-graphs", "reductions", "optimizers"):
            assert checks[f"{kind}/{kernels.name}"]["status"] == "passed"
    assert report["environment"]["numpy"] == np.__version__
    assert "gpu" in report["environment"] and "nvrtc (gpugrad's kernel compiler)" in report["environment"]
    assert report["exit_code"] == 0 and report["mode"] == "quick"


def test_a_broken_kernel_fails_the_check_in_one_line(tmp_path, monkeypatch):
    """exp's snippet made wrong in the generated kernels only: the primitives check, run on
    the emulator (or the GPU), must fail and name the check and the primitive in one line."""
    if kernel_target() is None:
        pytest.skip("no GPU and no g++: the generated kernels cannot run here")
    from gpugrad.core import snippets
    original = snippets.snippet
    monkeypatch.setattr("gpugrad.compile.codegen.snippet",
                        lambda name: "exp(x) * T(1.01)" if name == "exp" else original(name))
    lines: list[str] = []
    code = selfcheck.run(tmp_path, quick=True, only=["primitives/"], echo=lines.append)
    assert code == 1
    failures = [ln for ln in lines if ln.startswith("FAILED ")]
    assert len(failures) == 1 and "\n" not in failures[0], lines
    assert failures[0].startswith("FAILED primitives/") and "exp float32 forward" in failures[0]
    report = json.loads((tmp_path / "report.json").read_text())
    (check,) = report["checks"]
    assert check["status"] == "failed" and any("exp float64 forward" in d for d in check["details"])


def test_a_check_that_raises_is_that_checks_failure_only(tmp_path, monkeypatch):
    if kernel_target() is None:
        pytest.skip("no GPU and no g++: the reductions check is skipped here")

    def broken(*args, **kwargs):
        raise RuntimeError("boom in reductions")
    monkeypatch.setattr(numerics, "reductions", broken)
    lines: list[str] = []
    code = selfcheck.run(tmp_path, quick=True, only=["reductions", "seed-programs"], echo=lines.append)
    assert code == 1
    report = json.loads((tmp_path / "report.json").read_text())
    status = {c["name"]: c for c in report["checks"]}
    (name,) = [n for n in status if n.startswith("reductions/")]
    assert status[name]["status"] == "failed"
    assert status[name]["summary"] == "RuntimeError: boom in reductions"
    assert any("Traceback" in d for d in status[name]["details"])
    assert f"FAILED {name}: RuntimeError: boom in reductions" in lines
    seeds = [c for n, c in status.items() if n.startswith("seed-programs/")]
    assert seeds and all(c["status"] == "passed" for c in seeds)


def test_the_timing_check_runs_against_a_stand_in_for_cupy(monkeypatch):
    """The GPU-only timing check's own logic (no GPU here): CUDA events and copies stood in by
    host clocks and numpy, variable_grads on the numpy backend, small sizes."""
    import time
    from types import SimpleNamespace

    from gpugrad.backends.numpy_backend import NumpyBackend
    from gpugrad.selfcheck import gpu_checks
    from gpugrad.selfcheck.targets import Target

    class Event:
        def record(self):
            self.t = time.perf_counter()

        def synchronize(self):
            pass
    fake = SimpleNamespace(ones=np.ones, empty_like=np.empty_like, copyto=np.copyto, float32=np.float32,
                           cuda=SimpleNamespace(Event=Event, get_elapsed_time=lambda a, b: (b.t - a.t) * 1e3))
    backend = NumpyBackend()
    backend.cupy = fake
    monkeypatch.setattr(gpu_checks, "TIMING_LOG2", (6, 10))
    data: dict = {}
    summary = gpu_checks.timing(Target("cupy", backend, False), True, data)
    assert [(r["workload"], r["log2_size"]) for r in data["rows"]] == \
        [("seed", 6), ("chain", 6), ("seed", 10), ("chain", 10)]
    assert all(r["time_us"] > 0 and r["x_floor"] > 0 and r["copy_gbps"] > 0 for r in data["rows"])
    assert "seed 2^6" in summary and "x floor" in summary


def test_random_graphs_are_reproducible_and_varied():
    assert graphs.generate(17).describe() == graphs.generate(17).describe()
    kinds = {s.kind for seed in range(200) for s in graphs.generate(seed).steps}
    every = set(graphs.UNARY) | set(graphs.BINARY) | set(graphs.REDUCE) | set(graphs.OTHER)
    assert kinds == every, every - kinds
    assert {graphs.generate(seed).dtype for seed in range(8)} == {"float32", "float64"}


def test_mismatch_tolerances_nan_and_shapes():
    want = np.array([1.0, np.nan, np.inf, 0.0])
    assert mismatch(want.copy(), want, 1e-12) is None
    assert "NaN" in mismatch(np.array([1.0, 2.0, np.inf, 0.0]), want, 1e-3)
    assert "off" in mismatch(np.array([1.01, np.nan, np.inf, 0.0]), want, 1e-3)
    assert mismatch(np.array([1.0005, np.nan, np.inf, 0.0]), want, 1e-3) is None
    assert "shape" in mismatch(np.zeros(3), np.zeros(4), 1.0)
    assert "differ" in mismatch(np.array([1, 2], np.int32), np.array([1, 3], np.int32), 1.0)


def test_ci_gpu_script_parses():
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    proc = subprocess.run([bash, "-n", str(ROOT / "ci" / "gpu.sh")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
