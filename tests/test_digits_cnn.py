"""examples/digits_cnn.py: a shortened training run of the CNN on scikit-learn's bundled digits
(the full run, about 98.9% test accuracy, is in the README)."""
from __future__ import annotations

import pytest

pytest.importorskip("sklearn")

import gpugrad as tf  # noqa: E402


def test_a_short_run_learns(backend, example):
    # two epochs (a few seconds on the numpy backend)
    accuracy = example("digits_cnn").train(epochs=2, verbose=False)
    assert accuracy > 0.8, accuracy


def test_main_prints_accuracy_and_a_progress_bar(capsys, example, numpy_main):
    assert numpy_main(example("digits_cnn"), "--epochs", "1") == 0
    captured = capsys.readouterr()
    assert "epoch  1/1" in captured.out and "final test accuracy" in captured.out
    assert "[##############################] 43/43" in captured.err


def test_layers_shapes_and_variables(example):
    model = example("digits_cnn").build_model(0)
    assert [v.shape for v in model.trainable_variables] == [
        (3, 3, 1, 32), (32,), (3, 3, 32, 64), (64,), (256, 128), (128,), (128, 10), (10,)]
    assert model(tf.zeros([5, 8, 8, 1])).shape == (5, 10)
    assert tf.nn.MaxPool2D(2, 1, "same")(tf.ones([1, 3, 3, 2])).shape == (1, 3, 3, 2)
    assert tf.nn.Flatten()(tf.ones([2, 3, 4])).shape == (2, 12)
    with pytest.raises(ValueError, match="Conv2D: filters must be a positive integer"):
        tf.nn.Conv2D(1, 0, 3)
