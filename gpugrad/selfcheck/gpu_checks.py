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

from .core import CheckFailed, Problems, mismatch
from .numerics import _package_root, _seed_function
from .targets import Target, active

MIB = 1 << 20


def stream_capture(target: Target, data: dict) -> str:
    """variable_grads of the seed function recorded into a CUDA graph: a device-to-host copy
    or a synchronization inside raises (CUDA forbids them while a stream captures). The
    replayed graph's gradients must be right."""
    cupy = target.backend.cupy
    n = 1 << 16
    rng = np.random.default_rng(4)
    arrays = [rng.uniform(-1, 1, n).astype(np.float32) for _ in range(3)]
    with active(target):
        f, (p, q) = _seed_function(arrays)
        tf.variable_grads(f)   # compile and warm the pool outside the capture
        stream = cupy.cuda.Stream(non_blocking=True)
        with stream:
            stream.begin_capture()
            try:
                value, grads = tf.variable_grads(f)
            finally:
                graph = stream.end_capture()
        graph.launch(stream)
        stream.synchronize()
        problems = Problems()
        problems.case("grad p", mismatch(grads[p.name].numpy(), arrays[1] + arrays[2], 1e-6))
        problems.case("grad q", mismatch(grads[q.name].numpy(), arrays[0] + arrays[2] ** 2, 1e-6))
        want = np.sum((arrays[0].astype(np.float64) + arrays[2] ** 2) * (arrays[1] + arrays[2]))
        problems.case("value", mismatch(np.float64(value.numpy()), np.float64(want), 1e-5, 1e-3))
        p.dispose()
        q.dispose()
    problems.raise_if_any()
    return f"variable_grads (n={n}) captured into a CUDA graph without a host sync or D2H copy; replay is right"


def peak_memory(target: Target, data: dict) -> str:
    """Peak memory-pool use of the seed function's variable_grads at 2^24 elements: at most
    its inputs + its gradients + 1 MiB (no materialized intermediates)."""
    cupy = target.backend.cupy
    n = 1 << 24
    rng = np.random.default_rng(6)
    arrays = [rng.uniform(-1, 1, n).astype(np.float32) for _ in range(3)]
    pool = cupy.get_default_memory_pool()
    with active(target):
        f, (p, q) = _seed_function(arrays)
        tf.variable_grads(f, [p, q])   # compile first: the measured call allocates only results
        pool.free_all_blocks()
        inputs = pool.used_bytes()
        peak = [inputs]

        def tracking_malloc(size):
            mem = pool.malloc(size)
            peak[0] = max(peak[0], pool.used_bytes())
            return mem

        cupy.cuda.set_allocator(tracking_malloc)
        try:
            value, grads = tf.variable_grads(f, [p, q])
            target.sync()
        finally:
            cupy.cuda.set_allocator(pool.malloc)
        del value, grads
        p.dispose()
        q.dispose()
    gradients = 2 * n * 4
    extra = peak[0] - inputs
    data.update(n=n, inputs_bytes=inputs, peak_bytes=peak[0], beyond_inputs_bytes=extra,
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
                   PYTHONPATH=os.pathsep.join(p for p in (_package_root(), os.environ.get("PYTHONPATH", "")) if p))
        env.pop("GPUGRAD_BACKEND", None)
        runs, files = [], []
        for _ in range(2):
            proc = subprocess.run([sys.executable, "-c", _CACHE_PROBE], capture_output=True, text=True,
                                  env=env, timeout=240)
            if proc.returncode:
                raise CheckFailed(f"probe process failed: {proc.stderr.strip().splitlines()[-1:]}",
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
    2^26 elements, and its ratio to the copy floor (read + write bandwidth measured in the same
    run). A measurement, not a pass mark: it fails only if a call fails or a result is not finite."""
    from ..bench import timing as T
    from ..bench import workloads as W
    budget = 0.05 if quick else 0.2
    rows = []
    with active(target):
        for log2 in (12, 20, 26):
            n = 1 << log2
            copy_s = T.steady_state(W.copy_floor(n, "float32"), "cupy", budget)
            bandwidth = 2 * n * 4 / copy_s
            for make in (W.seed, W.chain):
                work = make(n, "float32", set())
                value, _ = work.run()
                if not np.isfinite(value.numpy()):
                    raise CheckFailed(f"{work.name} at 2^{log2} gave a non-finite value")
                t = T.steady_state(work.run, "cupy", budget)
                floor = work.bytes / bandwidth
                rows.append({"workload": work.name, "log2_size": log2, "time_us": t * 1e6,
                             "copy_gbps": bandwidth / 1e9, "x_floor": t / floor})
                for v in list(tf.variables.registered_variables()):
                    v.dispose()
    data["rows"] = rows
    return "; ".join(f"{r['workload']} 2^{r['log2_size']}: {r['time_us']:.1f} us = {r['x_floor']:.2f}x floor"
                     for r in rows)
