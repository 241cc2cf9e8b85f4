"""Data-parallel training-step timing for `gpugrad bench --workloads train`: the MLP step
(256 -> 256 -> 256 -> 10, Adam, float32, global batch 64) in one process and in N MPI ranks on
this machine's CPU, and the share of the distributed step spent averaging gradients.

Ranks are started with the mpiexec of the `dist` extra (pip install "gpugrad[dist]"); each runs
this module with --worker. Per step, the median over the steps after warm-up:
  local_ms      minimize on this process's rows, no communication;
  ddp_ms        DistributedOptimizer.minimize on this rank's rows;
  reduction_ms  the averaging alone (pack, status exchange, gather, sum in rank order, unpack)
                of buffers shaped like the gradients.
Ranks share the machine's cores with each other (and, on a shared machine, with everything
else): read the numbers as what they are.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import gpugrad as tf
from gpugrad import distributed as dist
from gpugrad.distributed import state
from gpugrad.distributed.packing import Entry, PackedReduction, layout_digest

BATCH, SIZES = 64, (256, 256, 256, 10)


def _model(seed: int = 0):
    rng = np.random.default_rng(seed)
    return tf.nn.Sequential([tf.nn.Dense(a, b, "relu" if k < len(SIZES) - 2 else None, seed=rng)
                             for k, (a, b) in enumerate(zip(SIZES, SIZES[1:]))])


def _median_ms(step, steps: int, warmup: int = 5) -> float:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        dist.barrier()               # every rank starts the step together
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def measure(steps: int) -> dict:
    dist.init()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((BATCH, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], BATCH)
    (xb, yb), = list(tf.nn.batches(x, y, BATCH, shard=(dist.rank(), dist.size())))
    model = _model()
    variables = model.trainable_variables

    def loss():
        return tf.losses.softmax_cross_entropy(yb, model(xb))

    local_opt = tf.train.adam(1e-4, var_list=variables)
    ddp_opt = dist.DistributedOptimizer(tf.train.adam(1e-4, var_list=variables), var_list=variables)
    out = {"ranks": dist.size(), "rows_per_rank": int(xb.shape[0]),
           "local_ms": _median_ms(lambda: local_opt.minimize(loss, var_list=variables), steps),
           "ddp_ms": _median_ms(lambda: ddp_opt.minimize(loss, var_list=variables), steps)}
    if dist.size() > 1:
        world = state.world()
        grads = [np.zeros(v.shape, np.float32) for v in variables]

        def reduction():
            entries = [Entry(v.name, g) for v, g in zip(variables, grads)]
            packed = PackedReduction(entries, world.rank, world.size)
            world.agree(None, layout_digest(entries), "timing")
            packed.run(world.host_transport(), "mean")

        out["reduction_ms"] = _median_ms(reduction, steps)
        out["gradient_bytes"] = int(sum(g.nbytes for g in grads))
    return out



def mpiexec_path() -> str | None:
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


def measure_processes(steps: int = 30, ranks: int = 2) -> dict:
    """{'alone': one process's timings, 'ddp': rank 0's timings with `ranks` ranks} or
    {'error': why not}. Each process uses one BLAS thread, so the rows compare per-core work."""
    mpiexec = mpiexec_path()
    if not mpiexec:
        return {"error": "mpiexec not found: pip install \"gpugrad[dist]\""}
    env = dict(os.environ, GPUGRAD_BACKEND="numpy", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    runs = {}
    for key, cmd in (("alone", [sys.executable, "-m", "gpugrad.bench.ddp", "--worker"]),
                     ("ddp", [mpiexec, "-n", str(ranks), sys.executable, "-m", "gpugrad.bench.ddp",
                              "--worker"])):
        try:
            proc = subprocess.run(cmd + ["--steps", str(steps)], env=env, capture_output=True,
                                  text=True, timeout=600)
        except subprocess.TimeoutExpired:
            return {"error": f"{key}: timed out after 600 s"}
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode or not lines:
            return {"error": f"{key}: exit {proc.returncode}: {(proc.stderr or proc.stdout)[-400:]}"}
        runs[key] = json.loads(lines[0][len("RESULT "):])
    return runs


def format_lines(result: dict) -> list[str]:
    if "error" in result:
        return [f"data-parallel training step: not measured ({result['error']})"]
    alone, ddp = result["alone"], result["ddp"]
    return [
        f"data-parallel training step (MLP {' -> '.join(map(str, SIZES))}, Adam, float32, global "
        f"batch {BATCH}, numpy backend, one BLAS thread per process, median step):",
        f"  1 process, {BATCH} rows: {alone['local_ms']:.2f} ms",
        f"  {ddp['ranks']} ranks, {ddp['rows_per_rank']} rows each, no communication: {ddp['local_ms']:.2f} ms",
        f"  {ddp['ranks']} ranks, {ddp['rows_per_rank']} rows each, DistributedOptimizer: {ddp['ddp_ms']:.2f} ms",
        f"  averaging {ddp['gradient_bytes'] / 2**20:.2f} MiB of gradients alone: "
        f"{ddp['reduction_ms']:.2f} ms = {100 * ddp['reduction_ms'] / ddp['ddp_ms']:.0f}% of the "
        "distributed step",
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    tf.set_backend("numpy")
    if args.worker:   # this process, alone or as one of the ranks mpiexec started
        result = measure(args.steps)
        if dist.rank() == 0:
            print("RESULT " + json.dumps(result), flush=True)
        return 0
    result = measure_processes(args.steps, args.ranks)
    print("\n".join(format_lines(result)))
    return 1 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(main())
