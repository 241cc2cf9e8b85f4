"""Train a small CNN (conv2d, max_pool, dense) on scikit-learn's bundled handwritten digits
(8x8 images, 10 classes; nothing is downloaded) and report test accuracy after each epoch.

    python examples/digits_cnn.py --backend numpy     # about 98.9% in about a minute on 2 cores
    python examples/digits_cnn.py --epochs 3          # a quick look

The split is the MLP example's (examples/digits.py: a seeded, stratified 75/25 split), and the
weights and batch order are seeded, so a run is reproducible. A progress bar goes to stderr.
"""
from __future__ import annotations

import argparse
import math
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
    """(x_train, x_test, y_train, y_test): images [n, 8, 8, 1] scaled to [0, 1], labels 0-9."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[..., None]
    return train_test_split(x, data.target, test_size=0.25, random_state=seed, stratify=data.target)


def build_model(seed: int = 0, rate: float = 0.25) -> tf.nn.Sequential:
    rng = np.random.default_rng(seed)
    return tf.nn.Sequential([
        tf.nn.Conv2D(1, 32, 3, padding="same", activation="relu", kernel_initializer="he_uniform", seed=rng),
        tf.nn.MaxPool2D(2),                                                          # 4x4x32
        tf.nn.Conv2D(32, 64, 3, padding="same", activation="relu", kernel_initializer="he_uniform", seed=rng),
        tf.nn.MaxPool2D(2),                                                          # 2x2x64
        tf.nn.Flatten(),
        tf.nn.Dense(256, 128, "relu", kernel_initializer="he_uniform", seed=rng),
        tf.nn.Dropout(rate, seed=rng),
        tf.nn.Dense(128, 10, seed=rng),
    ])


class Progress:
    """A progress bar on stderr: redrawn in place on a terminal, plain lines elsewhere."""

    def __init__(self, total: int, label: str, stream=sys.stderr, width: int = 30, enabled: bool = True):
        self.total, self.label, self.stream, self.width = total, label, stream, width
        self.enabled, self.live = enabled, stream.isatty()

    def update(self, done: int) -> None:
        if not self.enabled or not (self.live or done == self.total):
            return
        filled = self.width * done // self.total
        bar = "#" * filled + "." * (self.width - filled)
        start = "\r" if self.live else ""
        end = "" if self.live and done < self.total else "\n"
        self.stream.write(f"{start}{self.label} [{bar}] {done}/{self.total}{end}")
        self.stream.flush()


def train(epochs: int = 15, batch_size: int = 32, learning_rate: float = 0.002, seed: int = 0,
          verbose: bool = True, limit: int | None = None) -> float:
    """Train and return the final test accuracy (limit: use only the first training examples)."""
    x_train, x_test, y_train, y_test = load(seed)
    if limit is not None:
        x_train, y_train = x_train[:limit], y_train[:limit]
    model = build_model(seed)
    opt = tf.train.adam(learning_rate, var_list=model.trainable_variables)
    x_eval, y_eval = tf.tensor(x_test), tf.tensor(y_test.astype(np.int32), dtype="int32")
    steps = -(-len(x_train) // batch_size)
    acc = 0.0
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        # cosine decay of the learning rate over the run: the last epochs settle
        opt.learning_rate = learning_rate * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / epochs))
        bar = Progress(steps, f"epoch {epoch:2d}/{epochs}", enabled=verbose)
        costs = []
        batches = tf.nn.batches(x_train, y_train, batch_size, shuffle=True, seed=seed * 1000 + epoch)
        for k, (xb, yb) in enumerate(batches, 1):
            costs.append(opt.minimize(
                lambda: tf.losses.softmax_cross_entropy(yb, model(xb, training=True)), return_cost=True))
            bar.update(k)
        loss = tf.mean(tf.stack(costs)).item()
        acc = tf.accuracy(y_eval, model(x_eval)).item()
        if verbose:
            print(f"epoch {epoch:2d}/{epochs}  loss {loss:.4f}  test accuracy {acc:.4f}  "
                  f"({time.perf_counter() - start:.2f} s)", flush=True)
    return acc


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["numpy", "cupy"], help="default: gpugrad's choice")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=0.002)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.backend:
        tf.set_backend(args.backend)
    print(f"gpugrad digits CNN on the {tf.get_backend()} backend", flush=True)
    start = time.perf_counter()
    acc = train(args.epochs, args.batch_size, args.learning_rate, args.seed)
    print(f"final test accuracy {acc:.4f} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
