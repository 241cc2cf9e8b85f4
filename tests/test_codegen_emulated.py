"""The generated CUDA kernels, run on the CPU with every thread of every block and checked
(gpugrad/backends/emulated.py), agree with the numpy backend: index maps, broadcasts, slices,
pads, reductions in one and two stages, siblings. A checker violation raises KernelCheckError."""
from __future__ import annotations

import os

import numpy as np
import pytest

import gpugrad as tf
from gpugrad.core.primitives import elementwise as elementwise_records
from gpugrad.core.primitives.record import LOGICAL
from gpugrad.backends import current
from gpugrad.compile.schedule import build_plan, structure

from gpugrad.backends.emulated import EmulatedCudaBackend, compiler_available

pytestmark = pytest.mark.skipif(not compiler_available(), reason="g++ is not installed")
rng = np.random.default_rng(7)


def _run_both(outputs):
    nodes_out = [o._node() for o in outputs]
    _, leaves, nodes = structure(nodes_out)
    plan = build_plan(nodes_out, nodes)
    inputs = [leaf.buf for leaf in leaves]
    expected = current().run(plan, inputs)
    got = EmulatedCudaBackend().run(plan, inputs)
    return plan, expected, got


def _check(outputs, rtol=1e-5):
    plan, expected, got = _run_both(outputs)
    for e, g in zip(expected, got):
        assert e.shape == g.shape and e.dtype == g.dtype
        if e.dtype == np.bool_ or e.dtype == np.int32:
            np.testing.assert_array_equal(g, e)
        else:
            np.testing.assert_allclose(g, e, rtol=rtol, atol=1e-6)
    return plan


def _t(shape, lo=-2.0, hi=2.0, dtype="float32"):
    return tf.tensor(rng.uniform(lo, hi, shape), dtype=dtype)


def test_seed_variable_grads_plan():
    n = 10_000  # big enough for a two-stage reduction
    p, q, r = (_t((n,)) for _ in range(3))
    y = tf.sum((p + r * r) * (q + r))
    plan = _check([y, q + r, p + r * r], rtol=1e-4)
    assert len(plan.groups) == 1


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_unary_and_binary_op(dtype):
    a, b = _t((5, 7), 0.2, 2.0, dtype), _t((7,), 0.2, 2.0, dtype)
    # every public primitive, from its record (outside a domain both sides give NaN)
    records = [p for p in elementwise_records() if p.public and p.result != LOGICAL]
    outs = [getattr(tf, p.name)(a) for p in records if p.arity == 1]
    outs += [getattr(tf, p.name)(a, b) for p in records if p.arity == 2]
    outs += [tf.where(a > 1, a, b), tf.cast(a, "int32"), tf.cast(a > 1, "float32"),
             tf.logical_and(a > 1, b < 1), tf.logical_or(a > 1, b < 1)]
    _check(outs, rtol=1e-5 if dtype == "float32" else 1e-12)


def test_int32_ops():
    a = tf.tensor(rng.integers(-5, 5, (4, 6)), dtype="int32")
    _check([a + a * 3, tf.abs(a), tf.sign(a), tf.maximum(a, 0), tf.sum(a, 1), tf.max(a, 0),
            tf.prod(a, 1), tf.argmax(a, 1), tf.argmin(a, 0)])


@pytest.mark.parametrize("shape,axis", [((6, 5), 0), ((6, 5), 1), ((4, 3, 5), (0, 2)),
                                        ((4, 3, 5), 1), ((3, 9000), 1), ((9000, 3), 0),
                                        ((40000,), None)])
def test_reductions(shape, axis):
    x = _t(shape)
    _check([tf.sum(x, axis), tf.max(x, axis), tf.min(x, axis), tf.mean(x, axis),
            tf.prod(x * 0.1 + 1, axis), tf.logsumexp(x, axis)], rtol=1e-4)


def test_argmax_ties_and_nan():
    x = tf.tensor([[1.0, 3.0, 3.0, 0.0], [np.nan, 1.0, np.nan, 2.0]])
    _check([tf.argmax(x, 1)])


def test_movement_inside_kernels():
    x = _t((4, 6))
    y = _t((6,))
    outs = [tf.transpose(x) * 2, x[::-1, 1:5:2] + 1, x[:, None, :] * y, tf.reshape(x, (3, 8)) * 3,
            tf.pad(x * 2, [[1, 2], [0, 3]]), tf.concat([x, x * 2], 1), tf.stack([x, x], 1) + 0.5,
            tf.broadcast_to(y, (3, 6)) * 1.5, tf.tile(y, [2]) - 1, tf.exp(tf.reshape(tf.transpose(x), (-1,)))]
    _check(outs)


def test_gradient_plans_of_a_small_network():
    x = _t((8, 5))
    w = _t((5, 3))

    labels = tf.tensor(np.eye(3)[rng.integers(0, 3, 8)])

    def loss(w):
        return -tf.mean(tf.sum(tf.log_softmax(tf.relu(tf.matmul(x, w)), -1) * labels, 1))
    g = tf.grad(loss)(w)
    _check([g])


def test_softmax_and_max_gradients():
    x = _t((5, 6))
    outs = [tf.grad(lambda v: tf.sum(tf.softmax(v) * v))(x), tf.grad(lambda v: tf.sum(tf.max(v, 1)))(x),
            tf.grad(lambda v: tf.sum(tf.prod(v, 0)))(x), tf.grad(lambda v: tf.sum(v[1:, ::-2] ** 2))(x)]
    _check(outs, rtol=1e-4)


def test_long_chains_generate_without_recursion_limits():
    x = _t((33,), 0.0, 1.0)
    y = x
    for _ in range(1500):  # deeper than Python's default recursion limit
        y = tf.sin(y) * 0.999 + 0.001
    _check([y], rtol=1e-4)


def test_empty_tensors():
    x = tf.tensor(np.zeros((0, 5), np.float32))
    _check([tf.sum(x, 1), tf.sum(x, 0), x * 2, tf.max(x, 0)])
    for launch in _plan_of(tf.sum(x, 1)).groups[0].program.launches:
        assert launch.grid >= 1  # a zero-block launch is an error in CUDA


def _plan_of(out):
    _, _, nodes = structure([out._node()])
    return build_plan([out._node()], nodes)


def test_rank0_and_size1_tensors():
    s = tf.tensor(np.float32(1.5))
    v = _t((1,))
    m = _t((1, 1))
    _check([s * 2 + 1, tf.exp(s), tf.sum(v), tf.max(m, 1), v + s, tf.reshape(m, ()) * s,
            tf.grad(lambda t: t * t * 3)(s), tf.grad(lambda t: tf.sum(tf.tanh(t)))(m)])


try:
    from hypothesis import HealthCheck, given, settings

    from test_random_graphs import _inputs, _loss_fn, _weights, graphs
except ImportError:  # pragma: no cover
    given = None

if given is not None:
    @settings(max_examples=int(os.environ.get("GPUGRAD_EMULATED_EXAMPLES", "10")), deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(graph=graphs())
    def test_random_graphs_value_and_gradients(graph):
        """Random graphs (the generator of test_random_graphs.py): the generated kernels of
        the value-and-gradients plan agree with the numpy backend in float64."""
        from gpugrad.api.autodiff import _gradients
        rng = np.random.default_rng(0)
        xs = [tf.tensor(x, dtype="float64") for x in _inputs(graph, rng)]
        f = _loss_fn(graph, _weights(graph, rng))
        y, grads = _gradients(f, xs, None, "grads", "grads(f)([x1,...], dy)")
        _check([y, *grads], rtol=1e-9)
