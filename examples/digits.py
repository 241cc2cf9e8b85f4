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


def load(seed: int = 0, images: bool = False):
    """(x_train, x_test, y_train, y_test): pixels scaled to [0, 1] as rows of 64 (or, with
    images, [n, 8, 8, 1] images), labels 0-9; a seeded, stratified 75/25 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    data = load_digits()
    x = (data.images[..., None] if images else data.data) / 16.0
    return train_test_split(x.astype(np.float32), data.target, test_size=0.25, random_state=seed,
                            stratify=data.target)


def build_model(seed: int = 0, hidden: int = 128, rate: float = 0.1, dropout=None) -> tf.nn.Sequential:
    """The MLP; dropout: the dropout layer's class (tf.nn.Dropout by default)."""
    rng = np.random.default_rng(seed)
    dropout = dropout or tf.nn.Dropout
    return tf.nn.Sequential([
        tf.nn.Dense(64, hidden, "relu", kernel_initializer="he_uniform", seed=rng),
        dropout(rate, seed=rng),
        tf.nn.Dense(hidden, hidden, "relu", kernel_initializer="he_uniform", seed=rng),
        dropout(rate, seed=rng),
        tf.nn.Dense(hidden, 10, kernel_initializer="glorot_uniform", seed=rng),
    ])


class Progress:
    """A progress bar on stderr: redrawn in place on a terminal, plain lines elsewhere."""

    def __init__(self, total: int, label: str, stream=None, width: int = 30, enabled: bool = True):
        stream = stream or sys.stderr   # looked up now: a caller may have redirected it
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


def fit(model, opt, data, epochs: int, batch_size: int, seed: int, verbose: bool,
        learning_rate_at=None) -> float:
    """Train model with opt for epochs over data (x_train, x_test, y_train, y_test), printing
    each epoch's loss and test accuracy; returns the last. learning_rate_at(epoch), where
    given, sets the learning rate for each epoch."""
    x_train, x_test, y_train, y_test = data
    x_eval, y_eval = tf.tensor(x_test), tf.tensor(y_test.astype(np.int32), dtype="int32")
    steps = -(-len(x_train) // batch_size)
    acc = 0.0
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        if learning_rate_at is not None:
            opt.learning_rate = learning_rate_at(epoch)
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


def train(epochs: int = 20, batch_size: int = 32, learning_rate: float = 0.003, seed: int = 0,
          verbose: bool = True) -> float:
    """Train and return the final test accuracy."""
    model = build_model(seed)
    opt = tf.train.adam(learning_rate, var_list=model.trainable_variables)
    return fit(model, opt, load(seed), epochs, batch_size, seed, verbose)


def arguments(doc: str, epochs: int, learning_rate: float, argv=None, batch_help: str | None = None):
    """The examples' command line: --backend, --epochs, --batch-size, --learning-rate, --seed."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--backend", choices=["numpy", "cupy"], help="default: gpugrad's choice")
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--batch-size", type=int, default=32, help=batch_help)
    parser.add_argument("--learning-rate", type=float, default=learning_rate)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def run(what: str, train_fn, args) -> int:
    """Set the backend, train, print the final accuracy and the time it took."""
    if args.backend:
        tf.set_backend(args.backend)
    print(f"gpugrad digits {what} on the {tf.get_backend()} backend", flush=True)
    start = time.perf_counter()
    acc = train_fn(args.epochs, args.batch_size, args.learning_rate, args.seed)
    print(f"final test accuracy {acc:.4f} in {time.perf_counter() - start:.1f} s")
    return 0


def main(argv=None) -> int:
    return run("MLP", train, arguments(__doc__, 20, 0.003, argv))


if __name__ == "__main__":
    sys.exit(main())
