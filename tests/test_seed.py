"""The two seed programs of TFJS_SEMANTICS.md section 1, each in a fresh process, compared
to TF.js's stdout to the character (auto names start at "0" in a fresh process)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PROGRAM = """\
import gpugrad as tf
p = tf.variable(tf.tensor1d({p})); q = tf.variable(tf.tensor1d({q})); r = tf.tensor1d({r})
value, grads = tf.variable_grads(lambda: p.add(r.square()).mul(q.add(r)).sum())
for name in grads:
    grads[name].print()
value.print()
print(list(grads))
"""

SEEDS = [
    pytest.param(
        [9, 6], [7, 8], [3, 4],
        "Tensor\n    [10, 12]\n"
        "Tensor\n    [18, 22]\n"
        "Tensor\n    444\n"
        "['0', '1']\n",
        id="seed1-integers"),
    pytest.param(
        [3.1, 5.2], [4.4, 6.7], [7.1, 3.2],
        "Tensor\n    [11.5, 9.8999996]\n"
        "Tensor\n    [53.5099983, 15.4400005]\n"
        "Tensor\n    768.2210083007812\n"
        "['0', '1']\n",
        id="seed2-floats"),
]


def _run(source: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    env["GPUGRAD_BACKEND"] = "numpy"
    return subprocess.run([sys.executable, "-c", source], cwd=str(ROOT), env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("p, q, r, expected", SEEDS)
def test_seed_program_stdout(p, q, r, expected):
    done = _run(PROGRAM.format(p=p, q=q, r=r))
    assert done.returncode == 0, done.stderr
    assert done.stdout == expected


def test_seed_raw_values():
    """The float32 values behind the printed text (section 1, 'Raw float32 values')."""
    source = """\
import gpugrad as tf
p = tf.variable(tf.tensor1d([3.1, 5.2])); q = tf.variable(tf.tensor1d([4.4, 6.7])); r = tf.tensor1d([7.1, 3.2])
out = tf.variable_grads(lambda: p.add(r.square()).mul(q.add(r)).sum())
print(repr(out.value.item()))
print([float(x) for x in out.grads['0'].numpy()])
print([float(x) for x in out.grads['1'].numpy()])
print(out.value.dtype, out.grads['0'].dtype, out.grads['1'].dtype)
"""
    done = _run(source)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "768.2210083007812\n"
        "[11.5, 9.899999618530273]\n"
        "[53.5099983215332, 15.440000534057617]\n"
        "float32 float32 float32\n")


def test_both_seeds_in_one_process_continue_the_counter():
    """Auto names come from a process-wide counter: the second program's keys are "2","3"."""
    source = (PROGRAM.format(p=[9, 6], q=[7, 8], r=[3, 4])
              + PROGRAM.format(p=[3.1, 5.2], q=[4.4, 6.7], r=[7.1, 3.2]))
    done = _run(source)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "Tensor\n    [10, 12]\nTensor\n    [18, 22]\nTensor\n    444\n['0', '1']\n"
        "Tensor\n    [11.5, 9.8999996]\nTensor\n    [53.5099983, 15.4400005]\n"
        "Tensor\n    768.2210083007812\n['2', '3']\n")


def test_value_is_the_property_name():
    """`value, grads = ...` unpacks; there is no `val` attribute (TF.js's `val` is undefined)."""
    source = """\
import gpugrad as tf
p = tf.variable(tf.tensor1d([9, 6])); q = tf.variable(tf.tensor1d([7, 8])); r = tf.tensor1d([3, 4])
out = tf.variable_grads(lambda: p.add(r.square()).mul(q.add(r)).sum())
print(hasattr(out, 'val'), out.value.item(), sorted(out._fields))
"""
    done = _run(source)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "False 444.0 ['grads', 'value']\n"
