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

import numpy as np

try:
    import gpugrad as tf
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import gpugrad as tf

BATCH, D_IN, HIDDEN, D_OUT = 64, 256, 256, 256


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(BATCH, D_IN)).astype(np.float32)
    labels = rng.integers(0, D_OUT, BATCH)
    w1 = (rng.normal(size=(D_IN, HIDDEN)) * np.sqrt(2 / D_IN)).astype(np.float32)
    w2 = (rng.normal(size=(HIDDEN, D_OUT)) * np.sqrt(1 / HIDDEN)).astype(np.float32)
    return x, labels, [w1, np.zeros(HIDDEN, np.float32), w2, np.zeros(D_OUT, np.float32)]


def gpugrad_step(x, labels, params):
    w1, b1, w2, b2 = (tf.variable(tf.tensor(p)) for p in params)
    xt, yt = tf.tensor(x), tf.tensor(labels.astype(np.int32), dtype="int32")
    opt = tf.train.adam(1e-3, var_list=[w1, b1, w2, b2])

    def loss():
        return tf.losses.softmax_cross_entropy(yt, tf.relu(xt @ w1 + b1) @ w2 + b2)

    def step():
        opt.minimize(loss)
        w2.data_buffer()   # numpy runs eagerly; on a GPU this would not wait for the kernels
    return step


def numpy_step(x, labels, params):
    w1, b1, w2, b2 = (p.copy() for p in params)
    ps = [w1, b1, w2, b2]
    ms = [np.zeros_like(p) for p in ps]
    vs = [np.zeros_like(p) for p in ps]
    onehot = np.eye(D_OUT, dtype=np.float32)[labels]
    lr, b1_, b2_, eps = np.float32(1e-3), np.float32(0.9), np.float32(0.999), np.float32(1e-7)
    t = [0]

    def step():
        h_pre = x @ w1 + b1
        h = np.maximum(h_pre, 0)
        z = h @ w2 + b2
        z -= z.max(1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(1, keepdims=True)
        dz = (p - onehot) / np.float32(BATCH)
        dh = dz @ w2.T
        dh[h_pre <= 0] = 0
        grads = [x.T @ dh, dh.sum(0), h.T @ dz, dz.sum(0)]
        t[0] += 1
        bc1, bc2 = np.float32(1 - 0.9 ** t[0]), np.float32(1 - 0.999 ** t[0])
        for w, g, m, v in zip(ps, grads, ms, vs):
            m *= b1_
            m += (1 - b1_) * g
            v *= b2_
            v += (1 - b2_) * g * g
            w -= lr * (m / bc1) / (np.sqrt(v / bc2) + eps)
    return step


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
    data = _data()
    print(f"MLP step, batch {BATCH}, {D_IN} -> {HIDDEN} -> {D_OUT}, Adam, float32; "
          f"median of {args.steps} interleaved steps")
    steps = {"gpugrad": gpugrad_step(*data)}
    if tf.get_backend() == "numpy":
        steps["numpy"] = numpy_step(*data)
    t = _time(steps, args.steps)
    print(f"  gpugrad ({tf.get_backend()} backend): {t['gpugrad'] * 1e3:.3f} ms")
    if "numpy" in t:
        print(f"  hand-written numpy:      {t['numpy'] * 1e3:.3f} ms  "
              f"(gpugrad / numpy = {t['gpugrad'] / t['numpy']:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
