"""cumsum and cumprod (gpugrad/api/ops/scans.py, one scan primitive each): forward against numpy in
float64 for every flag and axis, derivatives to second order, TF.js's defaults and errors, and
the generated scan kernels (one pass, and chunk totals + chunks for long lines) run on the CPU
with the race checker and compiled by NVRTC."""
from __future__ import annotations

import numpy as np
import pytest

import gpugrad as tf
from gpugrad.backends import current
from gpugrad.backends.emulated import EmulatedCudaBackend, compiler_available
from gpugrad.compile.cuda_check import compile_all, nvrtc_available, programs_of
from gpugrad.compile.schedule import build_plan, structure
from gpugrad.testing import check_grads

rng = np.random.default_rng(21)


def _reference(x, op, axis, exclusive, reverse):
    x = np.moveaxis(x, axis, 0)
    if reverse:
        x = x[::-1]
    out = (np.cumsum if op == "cumsum" else np.cumprod)(x, axis=0)
    if exclusive:
        out = np.concatenate([np.full_like(out[:1], 0 if op == "cumsum" else 1), out[:-1]])
    if reverse:
        out = out[::-1]
    return np.moveaxis(out, 0, axis)


@pytest.mark.parametrize("op", ["cumsum", "cumprod"])
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("exclusive", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
def test_forward_matches_numpy(op, axis, exclusive, reverse):
    x = rng.uniform(0.5, 1.5, (3, 5, 4))
    got = getattr(tf, op)(tf.tensor(x, dtype="float64"), axis, exclusive, reverse).numpy()
    np.testing.assert_allclose(got, _reference(x, op, axis, exclusive, reverse), rtol=1e-14)


def test_tfjs_defaults_and_dtypes():
    assert tf.cumsum([1, 2, 3]).numpy().tolist() == [1, 3, 6]
    assert tf.cumsum([1, 2, 3], 0, True).numpy().tolist() == [0, 1, 3]
    assert tf.cumsum([1, 2, 3], 0, False, True).numpy().tolist() == [6, 5, 3]
    assert tf.cumsum([1, 2, 3], 0, True, True).numpy().tolist() == [5, 3, 0]
    ints = tf.tensor([1, 2, 3], dtype="int32").cumprod()
    assert ints.dtype == "int32" and ints.numpy().tolist() == [1, 2, 6]
    bools = tf.cumsum(tf.tensor([True, False, True]))
    assert bools.dtype == "int32" and bools.numpy().tolist() == [1, 1, 2]


def test_errors():
    with pytest.raises(ValueError, match=r"axis must be in \[-2, 1\]"):
        tf.cumsum(tf.zeros([2, 3]), 2)
    with pytest.raises(ValueError, match="at least rank 1"):
        tf.cumprod(tf.scalar(1.0))


@pytest.mark.parametrize("exclusive", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
def test_gradients_second_order(exclusive, reverse):
    check_grads(lambda x: tf.sin(tf.cumsum(x, 1, exclusive, reverse)), [rng.uniform(-1, 1, (2, 5))], order=2)
    check_grads(lambda x: tf.cumprod(x, 0, exclusive, reverse), [rng.uniform(0.5, 1.5, (4, 3))], order=2)


def _plan(outputs):
    nodes_out = [o._node() for o in outputs]
    _, leaves, nodes = structure(nodes_out)
    return build_plan(nodes_out, nodes), [leaf.buf for leaf in leaves]


def _graphs(dtype):
    x = tf.tensor(rng.uniform(-1, 1, (3, 300, 2)), dtype=dtype)
    long = tf.tensor(rng.uniform(-1, 1, (2, 9000)), dtype=dtype)     # chunked: totals + chunks
    outs = [tf.cumsum(x, 1), tf.cumsum(x * 2, 1, True, True), tf.cumprod(x * 0.1 + 1, 0, True),
            tf.cumsum(long, 1), tf.cumsum(tf.exp(long), 1, True, True), tf.cumprod(long * 1e-3 + 1, 1)]
    outs.append(tf.grad(lambda v: tf.sum(tf.cumsum(v, 1) * tf.cumsum(v, 1)))(x))
    return outs


@pytest.mark.skipif(not compiler_available(), reason="g++ is not installed")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_generated_scan_kernels_agree_and_are_deterministic(dtype):
    plan, inputs = _plan(_graphs(dtype))
    assert sum(g.kind == "scan" for g in plan.groups) >= 6
    assert any(len(g.program.launches) == 2 for g in plan.groups if g.kind == "scan")
    expected = current().run(plan, inputs)
    first = EmulatedCudaBackend().run(plan, inputs)
    again = EmulatedCudaBackend().run(plan, inputs)
    for e, g, h in zip(expected, first, again):
        assert e.shape == g.shape and e.dtype == g.dtype
        scale = np.abs(e).max() + 1
        np.testing.assert_allclose(g, e, rtol=0, atol=scale * (2e-5 if dtype == "float32" else 1e-13))
        assert g.tobytes() == h.tobytes()


@pytest.mark.skipif(not nvrtc_available(), reason="NVRTC is not installed")
def test_generated_scan_kernels_compile_with_nvrtc():
    plans = [_plan(_graphs(dtype))[0] for dtype in ("float32", "float64")]
    plans.append(_plan([tf.cumsum(tf.tensor([1, 2, 3], dtype="int32"))])[0])
    errors = compile_all(programs_of(plans))
    assert not errors, "\n".join(errors[:20])
