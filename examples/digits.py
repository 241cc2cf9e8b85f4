"""Train an MLP on scikit-learn's bundled handwritten digits (8x8 images, 10 classes; the data
ships inside scikit-learn, nothing is downloaded) and report test accuracy after each epoch.

    python examples/digits.py                     # the backend gpugrad picks (CuPy on a GPU)
    python examples/digits.py --backend numpy --epochs 30

The split is fixed (a seeded, stratified 75/25 split), and so are the weights and batch order
(seeded), so a run is reproducible.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

try:
    import gpugrad as tf
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import gpugrad as tf


def load(seed: int = 0):
    """(x_train, y_train, x_test, y_test): pixels scaled to [0, 1], labels 0-9."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    return train_test_split(x, data.target, test_size=0.25, random_state=seed, stratify=data.target)


def build_model(seed: int = 0, hidden: int = 128, rate: float = 0.1) -> tf.nn.Sequential:
    rng = np.random.default_rng(seed)
    return tf.nn.Sequential([
        tf.nn.Dense(64, hidden, "relu", kernel_initializer="he_uniform", seed=rng),
        tf.nn.Dropout(rate, seed=rng),
        tf.nn.Dense(hidden, hidden, "relu", kernel_initializer="he_uniform", seed=rng),
        tf.nn.Dropout(rate, seed=rng),
        tf.nn.Dense(hidden, 10, kernel_initializer="glorot_uniform", seed=rng),
    ])


class Progress:
    """A one-line progress bar on a terminal; plain per-epoch lines elsewhere (logs, CI)."""

    def __init__(self, total: int, stream=sys.stderr, width: int = 30):
        self.total, self.stream, self.width = total, stream, width
        self.live = stream.isatty()

    def update(self, done: int, cost: "tf.Tensor") -> None:
        if self.live:   # reading the cost waits for the GPU: only where someone watches
            filled = self.width * done // self.total
            bar = "#" * filled + "." * (self.width - filled)
            self.stream.write(f"\r[{bar}] {done}/{self.total} loss {cost.item():.4f}")
            self.stream.flush()

    def close(self) -> None:
        if self.live:
            self.stream.write("\r" + " " * (self.width + 60) + "\r")
            self.stream.flush()


def train(epochs: int = 20, batch_size: int = 32, learning_rate: float = 0.003, seed: int = 0,
          verbose: bool = True) -> float:
    """Train and return the final test accuracy."""
    x_train, x_test, y_train, y_test = load(seed)
    model = build_model(seed)
    opt = tf.train.adam(learning_rate, var_list=model.trainable_variables)
    x_eval, y_eval = tf.tensor(x_test), tf.tensor(y_test.astype(np.int32), dtype="int32")
    steps = -(-len(x_train) // batch_size)
    acc = 0.0
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        bar = Progress(steps)
        costs = []
        batches = tf.nn.batches(x_train, y_train, batch_size, shuffle=True, seed=seed * 1000 + epoch)
        for k, (xb, yb) in enumerate(batches, 1):
            cost = opt.minimize(lambda: tf.losses.softmax_cross_entropy(yb, model(xb, training=True)),
                                return_cost=True)
            costs.append(cost)
            bar.update(k, cost)
        bar.close()
        loss = tf.mean(tf.stack(costs)).item()
        acc = tf.accuracy(y_eval, model(x_eval)).item()
        if verbose:
            print(f"epoch {epoch:2d}/{epochs}  loss {loss:.4f}  test accuracy {acc:.4f}  "
                  f"({time.perf_counter() - start:.2f} s)", flush=True)
    return acc


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["numpy", "cupy"], help="default: gpugrad's choice")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=0.003)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.backend:
        tf.set_backend(args.backend)
    print(f"gpugrad digits MLP on the {tf.get_backend()} backend", flush=True)
    start = time.perf_counter()
    acc = train(args.epochs, args.batch_size, args.learning_rate, args.seed)
    print(f"final test accuracy {acc:.4f} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
