"""The checks only a GPU can answer: no host sync under stream capture, peak pool memory,
the kernel disk cache, and timings against the copy floor. Each needs the cupy target."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import numpy as np

import gpugrad as tf

from gpugrad.backends.cupy_backend import pool_peak
from gpugrad.selfcheck.core import CheckFailed, Problems, mismatch, scaled_atol
from gpugrad.selfcheck.numerics import package_root, seed_function
from gpugrad.selfcheck.targets import Target, active

MIB = 1 << 20
TIMING_LOG2 = (12, 20, 26)   # launch-bound, L2-resident, memory-bound


def stream_capture(target: Target, data: dict) -> str:
    """variable_grads of the seed function recorded into a CUDA graph: a device-to-host copy
    or a synchronization inside raises (CUDA forbids them while a stream captures). The
    replayed graph's gradients must be right."""
    cupy = target.backend.cupy
    n = 1 << 16
    rng = np.random.default_rng(4)
    arrays = [rng.uniform(-1, 1, n).astype(np.float32) for _ in range(3)]
    with active(target):
        f, (p, q) = seed_function(arrays)
        tf.variable_grads(f, [p, q])   # compile and warm the pool outside the capture
        stream = cupy.cuda.Stream(non_blocking=True)
        with stream:
            stream.begin_capture()
            try:
                value, grads = tf.variable_grads(f, [p, q])
            finally:
                graph = stream.end_capture()
        graph.launch(stream)
        stream.synchronize()
        problems = Problems()
        # p + r*r may be one fused multiply-add on the GPU: compare to the gradients' scale
        for var, want_grad in ((p, arrays[1] + arrays[2]), (q, arrays[0] + arrays[2] ** 2)):
            problems.case(f"grad {var.name}", mismatch(grads[var.name].numpy(), want_grad, 1e-6,
                                                       scaled_atol(want_grad, 1e-6)))
        want = np.sum((arrays[0].astype(np.float64) + arrays[2] ** 2) * (arrays[1] + arrays[2]))
        problems.case("value", mismatch(np.float64(value.numpy()), np.float64(want), 1e-5, 1e-3))
        p.dispose()
        q.dispose()
    problems.raise_if_any()
    return f"variable_grads (n={n}) captured into a CUDA graph without a host sync or D2H copy; replay is right"


def peak_memory(target: Target, data: dict) -> str:
    """Peak memory-pool use of the seed function's variable_grads at 2^24 elements: at most
    its inputs + its gradients + 1 MiB (no materialized intermediates)."""
    n = 1 << 24
    rng = np.random.default_rng(6)
    arrays = [rng.uniform(-1, 1, n).astype(np.float32) for _ in range(3)]
    with active(target):
        f, (p, q) = seed_function(arrays)
        tf.variable_grads(f, [p, q])   # compile first: the measured call allocates only results
        results = []
        inputs, peak_bytes = pool_peak(lambda: results.append(tf.variable_grads(f, [p, q])))
        p.dispose()
        q.dispose()
    gradients = 2 * n * 4
    extra = peak_bytes - inputs
    data.update(n=n, inputs_bytes=inputs, peak_bytes=peak_bytes, beyond_inputs_bytes=extra,
                allowed_beyond_inputs_bytes=gradients + MIB)
    if inputs < 3 * n * 4:
        raise CheckFailed(f"the pool held {inputs} bytes before the call, less than the inputs' "
                          f"{3 * n * 4}: the measurement is not of what it claims")
    if extra > gradients + MIB:
        raise CheckFailed(f"peak {extra / MIB:.2f} MiB beyond the inputs, allowed {(gradients + MIB) / MIB:.2f} "
                          f"MiB (gradients + 1 MiB)")
    return f"n=2^24: {extra / MIB:.2f} MiB beyond the inputs (allowed {(gradients + MIB) / MIB:.2f} MiB)"


# The probe run in a fresh process: how long the first variable_grads takes (CUDA context
# and CuPy already up, so the time is tracing + compiling or loading kernels + running).
_CACHE_PROBE = r"""
import json, time, sys
import numpy as np, cupy
cupy.zeros(1).sum(); cupy.cuda.Device().synchronize()
import gpugrad as tf
tf.set_backend("cupy")
r = np.random.default_rng(0).uniform(-1, 1, (3, 4096)).astype(np.float32)
p, q, x = tf.variable(tf.tensor(r[0])), tf.variable(tf.tensor(r[1])), tf.tensor(r[2])
cupy.cuda.Device().synchronize()
t0 = time.perf_counter()
v, g = tf.variable_grads(lambda: tf.sum(tf.exp(-tf.tanh(tf.sigmoid(x * p + q) * x - q) ** 2) * p))
v.numpy()
t1 = time.perf_counter()
v, g = tf.variable_grads(lambda: tf.sum(tf.exp(-tf.tanh(tf.sigmoid(x * p + q) * x - q) ** 2) * p))
v.numpy()
t2 = time.perf_counter()
print(json.dumps({"first_s": t1 - t0, "second_s": t2 - t1}))
"""


def kernel_cache(target: Target, data: dict) -> str:
    """The first call of a function in a fresh process, with an empty kernel cache and then
    with the disk cache the first process left: the second must load what the first compiled
    (no new cache files) and be faster. The caches are fresh directories, named through
    GPUGRAD_CACHE_DIR (gpugrad's cubins, gpugrad/backends/cupy_backend.py) and CUPY_CACHE_DIR
    (CuPy's own kernels), so "empty" is real."""
    with tempfile.TemporaryDirectory(prefix="gpugrad-selfcheck-cache-") as cache:
        env = dict(os.environ, GPUGRAD_CACHE_DIR=os.path.join(cache, "gpugrad"),
                   CUPY_CACHE_DIR=os.path.join(cache, "cupy"),
                   PYTHONPATH=os.pathsep.join(p for p in (package_root(), os.environ.get("PYTHONPATH", "")) if p))
        env.pop("GPUGRAD_BACKEND", None)
        runs, files = [], []
        for _ in range(2):
            proc = subprocess.run([sys.executable, "-c", _CACHE_PROBE], capture_output=True, text=True,
                                  env=env, timeout=240)
            if proc.returncode:
                last = (proc.stderr.strip().splitlines() or ["(no stderr)"])[-1]
                raise CheckFailed(f"probe process failed (exit {proc.returncode}): {last}",
                                  proc.stderr.splitlines()[-30:])
            runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            files.append(sorted(os.path.relpath(os.path.join(d, f), cache)
                                for d, _, fs in os.walk(cache) for f in fs))
    cold, warm = runs[0]["first_s"], runs[1]["first_s"]
    data.update(cold_first_call_s=cold, warm_first_call_s=warm, steady_call_s=runs[1]["second_s"],
                cache_files=len(files[0]))
    if not any(f.startswith("gpugrad") for f in files[0]):
        raise CheckFailed(f"the first process wrote no kernel under GPUGRAD_CACHE_DIR (cold first call "
                          f"{cold * 1e3:.1f} ms): compiled kernels are not cached on disk there")
    added = sorted(set(files[1]) - set(files[0]))
    if added:
        raise CheckFailed(f"the warm process compiled again: {len(added)} new cache files ({added[0]}, ...)")
    if warm >= cold:
        raise CheckFailed(f"the warm first call ({warm * 1e3:.1f} ms) is not faster than the cold one "
                          f"({cold * 1e3:.1f} ms)")
    return (f"first call {cold * 1e3:.1f} ms with an empty cache, {warm * 1e3:.1f} ms from the disk cache "
            f"({len(files[0])} files), {runs[1]['second_s'] * 1e6:.0f} us steady")


def timing(target: Target, quick: bool, data: dict) -> str:
    """Median time per variable_grads call of the seed and chain functions at 2^12, 2^20 and
    2^26 elements, and its ratio to the copy floor: a device copy of the same 5n elements'
    worth of traffic, timed in the same rounds. A measurement, not a pass mark: it fails only
    if a call fails or a value is not finite."""
    from gpugrad.selfcheck.numerics import chain_function
    cupy = target.backend.cupy
    rounds = 5 if quick else 9
    rows = []
    rng = np.random.default_rng(8)
    with active(target):
        for log2 in TIMING_LOG2:
            n = 1 << log2
            src = cupy.ones(n, dtype=cupy.float32)
            dst = cupy.empty_like(src)
            for name, make in (("seed", seed_function), ("chain", chain_function)):
                f, variables = make([rng.uniform(-1, 1, n).astype(np.float32) for _ in range(3)])
                value, _ = tf.variable_grads(f, variables)
                if not np.isfinite(value.numpy()):
                    raise CheckFailed(f"{name} at 2^{log2} gave a non-finite value {value.numpy()}")
                medians = _interleaved({"copy": lambda: cupy.copyto(dst, src),
                                        "gpugrad": lambda: tf.variable_grads(f, variables)}, cupy, rounds)
                copy_gbps = 2 * n * 4 / medians["copy"] / 1e9
                floor = 5 * n * 4 / (copy_gbps * 1e9)   # read 3 inputs, write 2 gradients
                rows.append({"workload": name, "log2_size": log2, "time_us": medians["gpugrad"] * 1e6,
                             "copy_gbps": copy_gbps, "x_floor": medians["gpugrad"] / floor})
                for v in variables:
                    v.dispose()
            del src, dst
    data["rows"] = rows
    return "; ".join(f"{r['workload']} 2^{r['log2_size']}: {r['time_us']:.1f} us = {r['x_floor']:.2f}x floor"
                     for r in rows)


def _interleaved(fns: dict, cupy, rounds: int) -> dict[str, float]:
    """Median seconds per call of each function, timed with CUDA events in batches of about
    20 ms, one batch of each per round so that all meet the same clocks and caches."""
    batch = {}
    for name, fn in fns.items():
        for _ in range(3):
            fn()
        start, end = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        fn()
        end.record()
        end.synchronize()
        one = max(cupy.cuda.get_elapsed_time(start, end) / 1e3, 1e-6)
        batch[name] = int(min(max(1, 0.02 / one), 2000))
    samples: dict[str, list] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start, end = cupy.cuda.Event(), cupy.cuda.Event()
            start.record()
            for _ in range(batch[name]):
                fn()
            end.record()
            end.synchronize()
            samples[name].append(cupy.cuda.get_elapsed_time(start, end) / 1e3 / batch[name])
    return {name: float(np.median(s)) for name, s in samples.items()}
