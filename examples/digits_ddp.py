"""examples/digits.py, data-parallel: the same MLP, the same global batches (32 rows) each
split across the MPI ranks, the same dropout masks, and gradients averaged over the ranks
before every update; so it trains as digits.py does, up to float32 rounding.

    mpiexec -n 2 python examples/digits_ddp.py --backend numpy     # 2 processes on the CPU
    mpiexec -n 2 python examples/digits_ddp.py                     # 2 GPUs (NCCL), if present
    python examples/digits_ddp.py                                  # a world of one: digits.py

Rank 0 prints; every rank holds bitwise the same weights, so any of them could.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))   # digits.py: data and model
import digits  # noqa: E402

tf = digits.tf
from gpugrad import distributed as dist  # noqa: E402


class ShardedDropout(tf.nn.Dropout):
    """Dropout that draws the mask of the whole global batch, the same on every rank (every
    rank's model shares one seed), and keeps this rank's rows of it: the ranks together drop
    exactly what one process training on the global batch would (examples/digits.py)."""

    def __init__(self, rate: float, seed: np.random.Generator):
        super().__init__(rate, seed)
        self.stream = seed
        self.global_rows = None      # set by the training loop for each step

    def __call__(self, x, training: bool = True):
        if not training or self.rate == 0:
            return x
        n, r, size = self.global_rows, dist.rank(), dist.size()
        keep = self.stream.random((n,) + tuple(x.shape[1:])) >= self.rate
        keep = keep[n * r // size:n * (r + 1) // size]      # the rows batches(shard=) gave us
        return x * tf.tensor(keep.astype(np.float32) / (1 - self.rate))


def build_model(seed: int = 0, hidden: int = 128, rate: float = 0.1) -> tf.nn.Sequential:
    """digits.build_model with ShardedDropout: the same weights and the same random stream."""
    return digits.build_model(seed, hidden, rate, ShardedDropout)


def train(epochs: int = 20, batch_size: int = 32, learning_rate: float = 0.003, seed: int = 0,
          verbose: bool = True) -> float:
    x_train, x_test, y_train, y_test = digits.load(seed)
    model = build_model(seed)
    dropouts = [layer for layer in model.layers if isinstance(layer, ShardedDropout)]
    variables = model.trainable_variables
    # The same seed gives every rank the same weights already; broadcasting rank 0's is the
    # rule all the same (a model built from an unseeded or rank-dependent draw needs it).
    dist.broadcast_variables(variables, root=0)
    opt = dist.DistributedOptimizer(tf.train.adam(learning_rate, var_list=variables), var_list=variables)
    x_eval, y_eval = tf.tensor(x_test), tf.tensor(y_test.astype(np.int32), dtype="int32")
    acc = 0.0
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        costs = []
        shard = (dist.rank(), dist.size())
        for step, (xb, yb) in enumerate(tf.nn.batches(x_train, y_train, batch_size, shuffle=True,
                                                      seed=seed * 1000 + epoch, shard=shard)):
            for layer in dropouts:
                layer.global_rows = min(batch_size, len(x_train) - step * batch_size)
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
    args = digits.arguments(__doc__, 20, 0.003, argv, batch_help="the global batch")
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
