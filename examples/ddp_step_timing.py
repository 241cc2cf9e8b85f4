"""Time one data-parallel training step on the CPU with 1 and with 2 MPI processes, and the
share of the step spent averaging gradients.

    python examples/ddp_step_timing.py [--steps 60] [--ranks 2]

The model is examples/mlp_step_timing.py's (256 -> 256 -> 256 -> 10 MLP, Adam, float32) at a
global batch of 64 rows. It measures, per step (median over --steps, after warm-up steps):
  alone       one process, tf.train.adam's minimize on all 64 rows;
  local       each of N ranks: the same minimize on its 64/N rows, no communication;
  ddp         each of N ranks: DistributedOptimizer.minimize on its 64/N rows;
  reduction   each of N ranks: the averaging alone (pack, status exchange, gather, sum in rank
              order, unpack) of buffers shaped like the gradients.
The all-reduce's share is reduction / ddp. Ranks share this machine's cores with each other
(and, on a shared machine, with everything else), so read the numbers as what they are.
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

# One BLAS thread per process, set before numpy loads BLAS: the 1-process row then measures
# the same per-core work as each rank of the N-process rows.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import gpugrad as tf  # noqa: E402
from gpugrad import distributed as dist  # noqa: E402
from gpugrad.distributed import _state  # noqa: E402
from gpugrad.distributed.packing import Entry, PackedReduction, layout_digest  # noqa: E402

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
        world = _state.world()
        grads = [np.zeros(v.shape, np.float32) for v in variables]

        def reduction():
            entries = [Entry(v.name, g) for v, g in zip(variables, grads)]
            packed = PackedReduction(entries, world.rank, world.size)
            world.agree(None, layout_digest(entries), "timing")
            packed.run(world.host_transport(), "mean")

        out["reduction_ms"] = _median_ms(reduction, steps)
        out["gradient_bytes"] = int(sum(g.nbytes for g in grads))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    tf.set_backend("numpy")
    if args.worker:   # one of the ranks started below by mpiexec
        result = measure(args.steps)
        if dist.rank() == 0:
            print("RESULT " + json.dumps(result), flush=True)
        return 0
    alone = measure(args.steps)
    mpiexec = Path(sys.executable).parent / "mpiexec"
    mpiexec = str(mpiexec) if mpiexec.exists() else shutil.which("mpiexec")
    if not mpiexec:
        print("mpiexec not found: pip install \"gpugrad[dist]\"", file=sys.stderr)
        return 1
    env = dict(os.environ, GPUGRAD_BACKEND="numpy")
    proc = subprocess.run([mpiexec, "-n", str(args.ranks), sys.executable, __file__, "--worker",
                           "--steps", str(args.steps)], env=env, capture_output=True, text=True,
                          timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        print(proc.stdout + proc.stderr, file=sys.stderr)
        return 1
    ddp = json.loads(lines[0][len("RESULT "):])
    print(f"MLP {' -> '.join(map(str, SIZES))}, Adam, float32, global batch {BATCH}, numpy backend, "
          f"median of {args.steps} steps, {os.cpu_count()} CPU cores")
    print(f"  1 process,  {BATCH} rows:          step {alone['local_ms']:7.2f} ms")
    print(f"  {ddp['ranks']} processes, {ddp['rows_per_rank']} rows each, no communication: "
          f"step {ddp['local_ms']:7.2f} ms")
    print(f"  {ddp['ranks']} processes, {ddp['rows_per_rank']} rows each, DistributedOptimizer: "
          f"step {ddp['ddp_ms']:7.2f} ms")
    print(f"  averaging {ddp['gradient_bytes'] / 2**20:.2f} MiB of gradients alone: "
          f"{ddp['reduction_ms']:7.2f} ms = {100 * ddp['reduction_ms'] / ddp['ddp_ms']:.0f}% of the "
          f"distributed step")
    return 0


if __name__ == "__main__":
    sys.exit(main())
