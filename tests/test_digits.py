"""examples/digits.py: a shortened training run on scikit-learn's bundled digits data set."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("sklearn")

import gpugrad as tf  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "digits.py"


def _example():
    spec = importlib.util.spec_from_file_location("digits_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_short_run_reaches_90_percent(backend):
    # three epochs (about a second on the numpy backend); the full run is in the README
    accuracy = _example().train(epochs=3, verbose=False)
    assert accuracy >= 0.9, accuracy


def test_the_split_is_fixed():
    example = _example()
    a, b = example.load(), example.load()
    assert len(a[0]) == 1347 and len(a[1]) == 450
    assert all((p == q).all() for p, q in zip(a, b))


def test_main_prints_per_epoch_accuracy(capsys):
    previous = tf.get_backend()
    try:
        assert _example().main(["--backend", "numpy", "--epochs", "1"]) == 0
    finally:
        tf.set_backend(previous)
    out = capsys.readouterr().out
    assert "epoch  1/1" in out and "test accuracy" in out and "final test accuracy" in out
