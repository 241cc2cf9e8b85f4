"""Time one training step of a small MLP (batch 64, 256 -> 256 -> 256, relu, softmax
cross-entropy, Adam) with gpugrad, next to the same step written by hand in numpy, in one run.

    python examples/mlp_step_timing.py [--backend numpy] [--steps 300]

The hand-written step is what a careful numpy user writes: forward, the closed-form backward,
and an in-place Adam. Both run in float32; the first steps (plan building) are not timed.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path


try:
    import gpugrad as tf
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import gpugrad as tf

from gpugrad.bench.workloads import _mlp_data, mlp_gpugrad_step, mlp_numpy_step  # noqa: E402

BATCH, D_IN, HIDDEN, D_OUT = 64, 256, 256, 256


def _time(steps_by_name: dict, steps: int, warmup: int = 10) -> dict:
    """Median seconds per step of each, interleaved so that both see the same machine load."""
    for step in steps_by_name.values():
        for _ in range(warmup):
            step()
    times = {name: [] for name in steps_by_name}
    for _ in range(steps):
        for name, step in steps_by_name.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["numpy", "cupy"])
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args(argv)
    if args.backend:
        tf.set_backend(args.backend)
    data = _mlp_data(BATCH, D_IN, HIDDEN, D_OUT)
    print(f"MLP step, batch {BATCH}, {D_IN} -> {HIDDEN} -> {D_OUT}, Adam, float32; "
          f"median of {args.steps} interleaved steps")
    steps = {"gpugrad": mlp_gpugrad_step(*data)}
    if tf.get_backend() == "numpy":
        steps["numpy"] = mlp_numpy_step(*data)
    t = _time(steps, args.steps)
    print(f"  gpugrad ({tf.get_backend()} backend): {t['gpugrad'] * 1e3:.3f} ms")
    if "numpy" in t:
        print(f"  hand-written numpy:      {t['numpy'] * 1e3:.3f} ms  "
              f"(gpugrad / numpy = {t['gpugrad'] / t['numpy']:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
