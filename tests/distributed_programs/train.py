"""Trains a small MLP data-parallel and saves this rank's final variables and costs.

    mpiexec -n 2 python train.py OUT_DIR [--bucket-bytes N]    # or without mpiexec: one process

tests/test_distributed.py compares the ranks with each other (bitwise) and with one process.
Rank 1 starts from different weights on purpose: broadcast_variables must fix that.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

import gpugrad as tf
from gpugrad import distributed as dist

parser = argparse.ArgumentParser()
parser.add_argument("out")
parser.add_argument("--bucket-bytes", type=int, default=None)
args = parser.parse_args()

dist.init(timeout=60, bucket_bytes=args.bucket_bytes)
rng = np.random.default_rng(0)
x = rng.standard_normal((96, 8)).astype(np.float32)
y = (x[:, :3].sum(axis=1) > 0).astype(np.int32) + (x[:, 3] > 1).astype(np.int32)

model = tf.nn.Sequential([tf.nn.Dense(8, 16, "tanh", seed=10 + dist.rank(), name="hidden"),
                          tf.nn.Dense(16, 3, seed=20 + dist.rank(), name="out")])
# A float64 variable too, so that the step reduces two dtypes (two collectives).
temperature = tf.variable(tf.scalar(1.0, "float64"), name="temperature")
variables = model.trainable_variables + [temperature]
dist.broadcast_variables(variables, root=0)

opt = dist.DistributedOptimizer(tf.train.adam(0.01), var_list=variables)
costs = []
for epoch in range(3):
    for xb, yb in tf.nn.batches(x, y, 32, shuffle=True, seed=epoch, shard=(dist.rank(), dist.size())):
        cost = opt.minimize(lambda: tf.losses.softmax_cross_entropy(
            yb, model(xb) * tf.cast(temperature, "float32")), return_cost=True)
        costs.append(cost.item())

out = Path(args.out)
np.savez(out / f"rank{dist.rank()}.npz", costs=np.array(costs),
         **{v.name.replace("/", "."): v.numpy() for v in variables})
print(f"rank {dist.rank()} of {dist.size()}: {len(costs)} steps, last cost {costs[-1]:.6f}")
sys.exit(0)
