"""Train a small CNN (conv2d, max_pool, dense) on scikit-learn's bundled handwritten digits
(8x8 images, 10 classes; nothing is downloaded) and report test accuracy after each epoch.

    python examples/digits_cnn.py --backend numpy     # 98.9% in about 3 s on 2 cores
    python examples/digits_cnn.py --epochs 3          # a quick look

The split is the MLP example's (examples/digits.py: a seeded, stratified 75/25 split), and the
weights and batch order are seeded, so a run is reproducible. A progress bar goes to stderr.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))   # digits.py: data, loop, command line
import digits  # noqa: E402

tf = digits.tf


def load(seed: int = 0):
    """(x_train, x_test, y_train, y_test): images [n, 8, 8, 1] scaled to [0, 1], labels 0-9."""
    return digits.load(seed, images=True)


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


def train(epochs: int = 15, batch_size: int = 32, learning_rate: float = 0.002, seed: int = 0,
          verbose: bool = True, limit: int | None = None) -> float:
    """Train and return the final test accuracy (limit: use only the first training examples)."""
    x_train, x_test, y_train, y_test = load(seed)
    if limit is not None:
        x_train, y_train = x_train[:limit], y_train[:limit]
    model = build_model(seed)
    opt = tf.train.adam(learning_rate, var_list=model.trainable_variables)
    # cosine decay of the learning rate over the run: the last epochs settle
    return digits.fit(model, opt, (x_train, x_test, y_train, y_test), epochs, batch_size, seed, verbose,
                      lambda epoch: learning_rate * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / epochs)))


def main(argv=None) -> int:
    return digits.run("CNN", train, digits.arguments(__doc__, 15, 0.002, argv))


if __name__ == "__main__":
    sys.exit(main())
