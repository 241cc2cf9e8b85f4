"""The kernel snippets ship inside the package: a plain `pip install .` finds them."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_pip_install_ships_the_kernels(tmp_path):
    pytest.importorskip("setuptools")
    pytest.importorskip("wheel")
    target = tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(ROOT)],
        capture_output=True, text=True, cwd=tmp_path)
    assert build.returncode == 0, build.stderr[-2000:]
    assert (target / "gpugrad" / "kernels" / "elementwise" / "exp.cu").is_file()
    probe = (
        "import gpugrad as tf, gpugrad.snippets as s\n"
        "assert 'site' in str(s.kernels_dir()), s.kernels_dir()\n"
        "p = tf.variable(tf.tensor1d([9, 6])); r = tf.tensor1d([3, 4])\n"
        "v, g = tf.variable_grads(lambda: tf.sum(tf.sigmoid(p * r)))\n"
        "print(s.kernels_dir())\n")
    env = dict(os.environ, PYTHONPATH=str(target), GPUGRAD_BACKEND="numpy")
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
