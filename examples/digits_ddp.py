"""examples/digits.py, data-parallel: the same MLP and the same global batches (32 rows), each
split across the MPI ranks, with gradients averaged over the ranks before every update.

    mpiexec -n 2 python examples/digits_ddp.py --backend numpy     # 2 processes on the CPU
    mpiexec -n 2 python examples/digits_ddp.py                     # 2 GPUs (NCCL), if present
    python examples/digits_ddp.py                                  # a world of one: digits.py

Rank 0 prints; every rank holds bitwise the same weights, so any of them could.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))   # digits.py: data and model
import digits  # noqa: E402

tf = digits.tf
from gpugrad import distributed as dist  # noqa: E402


def train(epochs: int = 20, batch_size: int = 32, learning_rate: float = 0.003, seed: int = 0,
          verbose: bool = True) -> float:
    x_train, x_test, y_train, y_test = digits.load(seed)
    # Each rank's own seed gives each its own dropout masks (one stream per rank, as one
    # process would draw different masks for different rows); broadcast_variables then gives
    # every rank rank 0's initial weights.
    model = digits.build_model(seed + 7919 * dist.rank())
    variables = model.trainable_variables
    dist.broadcast_variables(variables, root=0)
    opt = dist.DistributedOptimizer(tf.train.adam(learning_rate, var_list=variables), var_list=variables)
    x_eval, y_eval = tf.tensor(x_test), tf.tensor(y_test.astype(np.int32), dtype="int32")
    acc = 0.0
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        costs = []
        shard = (dist.rank(), dist.size())
        for xb, yb in tf.nn.batches(x_train, y_train, batch_size, shuffle=True,
                                    seed=seed * 1000 + epoch, shard=shard):
            costs.append(opt.minimize(
                lambda: tf.losses.softmax_cross_entropy(yb, model(xb, training=True)),
                return_cost=True))                # averaged over the ranks: the global batch's
        loss = tf.mean(tf.stack(costs)).item()
        acc = tf.accuracy(y_eval, model(x_eval)).item()
        if verbose and dist.rank() == 0:
            print(f"epoch {epoch:2d}/{epochs}  loss {loss:.4f}  test accuracy {acc:.4f}  "
                  f"({time.perf_counter() - start:.2f} s, {len(costs)} steps)",
                  flush=True)
    return acc


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["numpy", "cupy"], help="default: gpugrad's choice")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32, help="the global batch")
    parser.add_argument("--learning-rate", type=float, default=0.003)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.backend:
        tf.set_backend(args.backend)     # before init(): it decides between MPI and NCCL
    dist.init()
    if dist.rank() == 0:
        print(f"gpugrad digits MLP, data-parallel over {dist.size()} rank(s) on the "
              f"{tf.get_backend()} backend", flush=True)
    start = time.perf_counter()
    acc = train(args.epochs, args.batch_size, args.learning_rate, args.seed)
    if dist.rank() == 0:
        print(f"final test accuracy {acc:.4f} in {time.perf_counter() - start:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
