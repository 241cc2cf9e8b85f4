"""examples/digits.py: a shortened training run on scikit-learn's bundled digits data set."""
from __future__ import annotations

import pytest

pytest.importorskip("sklearn")


def test_a_short_run_reaches_90_percent(backend, example):
    # three epochs (about a second on the numpy backend); the full run is in the README
    accuracy = example("digits").train(epochs=3, verbose=False)
    assert accuracy >= 0.9, accuracy


def test_the_split_is_fixed(example):
    digits = example("digits")
    a, b = digits.load(), digits.load()
    assert len(a[0]) == 1347 and len(a[1]) == 450
    assert all((p == q).all() for p, q in zip(a, b))


def test_main_prints_per_epoch_accuracy(capsys, example, numpy_main):
    assert numpy_main(example("digits"), "--epochs", "1") == 0
    out = capsys.readouterr().out
    assert "epoch  1/1" in out and "test accuracy" in out and "final test accuracy" in out
