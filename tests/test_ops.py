"""Op-by-op tests of gpugrad against numpy float64 references.

One table (OPS) lists every elementwise op with its numpy reference, the domain its inputs
are drawn from (kept away from kinks and singularities) and whether it is smooth. From it:
(a) forward values, (b) first derivatives of every input against central differences,
(c) second derivatives (grad of grad) against central differences of the first gradient,
(d) broadcasting of every binary op with gradient checks (unbroadcasting). Further sections
cover reductions, softmax, kinks and ties, prod with zeros, matmul, movement ops, dtypes,
and IEEE special values. Every test takes the ``backend`` fixture.
"""
from __future__ import annotations

import math
import warnings
import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

import gpugrad as tf
from gpugrad.core.primitives import elementwise as elementwise_records
from gpugrad.core.primitives.record import COMPARE, LOGICAL

F64 = "float64"
EPS = 1e-6       # central-difference step
RTOL = 1e-6      # derivative tolerance (relative; absolute part scales with the gradient)
FWD_RTOL = 1e-12


# --- helpers ---------------------------------------------------------------------------------


def T(a, dtype=F64):
    """A float64 (by default) gpugrad tensor holding a copy of a."""
    return tf.tensor(np.asarray(a, dtype=np.float64 if dtype == F64 else None), dtype=dtype)


def rng_for(*key) -> np.random.Generator:
    """A deterministic generator per test case."""
    seed = zlib.crc32(repr(key).encode())
    return np.random.default_rng([seed, 20240611])


def assert_values(actual, expected, rtol=FWD_RTOL, atol=1e-13, what=""):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


def assert_derivative(actual, expected, rtol=RTOL, what=""):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=0.1 * rtol * scale, err_msg=what)


def numeric_vjp(fn: Callable, xs: list, w) -> list:
    """Central differences of sum(fn(*xs) * w) for every element of every input.

    Differences are taken output by output before weighting, so outputs a coordinate does
    not touch cancel exactly and the rounding error stays small."""
    out = []
    for i, x in enumerate(xs):
        g = np.zeros(np.shape(x))
        for idx in np.ndindex(*np.shape(x)):
            plus = [np.array(a, dtype=np.float64, copy=True) for a in xs]
            minus = [np.array(a, dtype=np.float64, copy=True) for a in xs]
            plus[i][idx] += EPS
            minus[i][idx] -= EPS
            with np.errstate(all="ignore"):
                diff = np.asarray(fn(*plus), dtype=np.float64) - np.asarray(fn(*minus), dtype=np.float64)
            g[idx] = np.sum(diff * w) / (2 * EPS)
        out.append(g)
    return out


def autodiff_vjp(tf_fn: Callable, xs: list, w) -> list:
    """Gradients of sum(tf_fn(*xs) * w) with dy = w, through tf.grad or tf.grads."""
    ts = [T(x) for x in xs]
    if len(ts) == 1:
        gs = [tf.grad(tf_fn)(ts[0], T(w))]
    else:
        gs = tf.grads(tf_fn)(ts, T(w))
    for g, x in zip(gs, xs):
        assert g.dtype == F64, "gradient of a float64 input must be float64"
        assert tuple(g.shape) == np.shape(x)
    return [g.numpy() for g in gs]


def check_first(tf_fn: Callable, np_fn: Callable, xs: list, rng, rtol=RTOL, what=""):
    """(b): the VJP of every input against central differences of the numpy reference."""
    xs = [np.asarray(x, dtype=np.float64) for x in xs]
    y = np.asarray(np_fn(*xs))
    w = rng.normal(size=y.shape)
    got = autodiff_vjp(tf_fn, xs, w)
    want = numeric_vjp(np_fn, xs, w)
    for i, (g, e) in enumerate(zip(got, want)):
        assert_derivative(g, e, rtol, what=f"{what} d/dx{i}")


def check_forward(tf_fn: Callable, np_fn: Callable, xs: list, rtol=FWD_RTOL, atol=1e-13, what=""):
    xs = [np.asarray(x, dtype=np.float64) for x in xs]
    out = tf_fn(*[T(x) for x in xs])
    assert out.dtype == F64, f"{what}: dtype {out.dtype}"
    with np.errstate(all="ignore"):
        want = np.asarray(np_fn(*xs))
    assert tuple(out.shape) == want.shape
    assert_values(out.numpy(), want, rtol, atol, what)


def check_second(tf_fn: Callable, xs: list, rng, rtol=RTOL, what=""):
    """(c): gradients of sum_i <d/dx_i sum(f*w), u_i> (grad of grad) against central
    differences of gpugrad's own first gradient. A random linear term keeps every input
    connected when the first gradient does not depend on it (linear ops)."""
    xs = [np.asarray(x, dtype=np.float64) for x in xs]
    n = len(xs)
    y_shape = tuple(tf_fn(*[T(x) for x in xs]).shape)
    w = T(rng.normal(size=y_shape))
    us = [rng.normal(size=np.shape(x)) for x in xs]
    cs = [rng.normal(size=np.shape(x)) for x in xs]

    def scalar_f(*ts):
        return tf.sum(tf.mul(tf_fn(*ts), w))

    def first(*ts):
        if n == 1:
            return [tf.grad(scalar_f)(ts[0])]
        return tf.grads(scalar_f)(list(ts))

    def h(*ts):
        gs = first(*ts)
        total = None
        for g, t, u, c in zip(gs, ts, us, cs):
            term = tf.add(tf.sum(tf.mul(g, T(u))), tf.sum(tf.mul(t, T(c))))
            total = term if total is None else tf.add(total, term)
        return total

    ts = [T(x) for x in xs]
    got = [tf.grad(h)(ts[0])] if n == 1 else tf.grads(h)(ts)
    got = [g.numpy() for g in got]

    def first_numpy(*arrays):
        return [g.numpy() for g in first(*[T(a) for a in arrays])]

    for j, x in enumerate(xs):
        want = np.array(cs[j], dtype=np.float64, copy=True)
        for idx in np.ndindex(*np.shape(x)):
            plus = [a.copy() for a in xs]
            minus = [a.copy() for a in xs]
            plus[j][idx] += EPS
            minus[j][idx] -= EPS
            gp, gm = first_numpy(*plus), first_numpy(*minus)
            want[idx] += sum(np.sum((a - b) * u) for a, b, u in zip(gp, gm, us)) / (2 * EPS)
        assert_derivative(got[j], want, rtol, what=f"{what} second derivative d/dx{j}")


# --- input domains -----------------------------------------------------------------------------


def uniform(lo, hi):
    def sample(rng, shape):
        return rng.uniform(lo, hi, shape)
    sample.__name__ = f"U({lo},{hi})"
    return sample


def away_from(points, lo, hi, gap=0.05):
    """Uniform on [lo, hi] with no value within gap of a kink."""
    def sample(rng, shape):
        x = rng.uniform(lo, hi, shape)
        for _ in range(1000):
            bad = np.zeros(np.shape(x), bool)
            for p in points:
                bad |= np.abs(x - p) < gap
            if not bad.any():
                return x
            x = np.where(bad, rng.uniform(lo, hi, shape), x)
        raise AssertionError("could not sample away from the kinks")
    return sample


REAL = uniform(-2.0, 2.0)
POS = uniform(0.5, 2.5)
NONZERO = away_from([0.0], -2.0, 2.0, gap=0.1)
LOG1P_DOMAIN = uniform(-0.5, 2.0)
CLIP_LO, CLIP_HI = -0.5, 1.0
CLIP_DOMAIN = away_from([CLIP_LO, CLIP_HI], -2.0, 2.0)


# --- the op table ------------------------------------------------------------------------------


def _mask(shape):
    size = int(np.prod(shape)) if shape else 1
    return (np.arange(size) % 3 != 1).reshape(shape)


def tf_where_fixed(a, b):
    shape = np.broadcast_shapes(tuple(a.shape), tuple(b.shape))
    return tf.where(tf.tensor(_mask(shape)), a, b)


def np_where_fixed(a, b):
    shape = np.broadcast_shapes(np.shape(a), np.shape(b))
    return np.where(_mask(shape), a, b)


def np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_elu(x):
    return np.where(x > 0, x, np.expm1(x))


def np_softplus(x):
    return np.logaddexp(x, 0.0)


def np_logsumexp(x, axis=None, keepdims=False):
    x = np.asarray(x, dtype=np.float64)
    axis = tuple(axis) if isinstance(axis, list) else axis
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis if axis is not None else tuple(range(x.ndim)))


def np_softmax(x, axis=-1):
    return np.exp(x - np_logsumexp(x, axis, True))


def np_log_softmax(x, axis=-1):
    return x - np_logsumexp(x, axis, True)


@dataclass(frozen=True)
class Op:
    name: str
    tf_fn: Callable
    np_fn: Callable
    domains: tuple
    smooth: bool = True
    separated: bool = False   # sample inputs with no ties (maximum, minimum)
    shape: tuple = (2, 3)

    @property
    def arity(self):
        return len(self.domains)

    def __str__(self):
        return self.name

    def sample(self, rng, shapes=None):
        shapes = shapes or [self.shape] * self.arity
        for _ in range(1000):
            xs = [d(rng, s) for d, s in zip(self.domains, shapes)]
            if not self.separated:
                return xs
            a, b = np.broadcast_arrays(*xs)
            if np.min(np.abs(a - b)) > 0.05:
                return xs
        raise AssertionError("could not sample separated inputs")


def _record_domain(prim, lo, hi):
    """A record's test domain, kept off the kinks of the non-smooth primitives."""
    return away_from([0.0], lo, hi, gap=0.1) if not prim.smooth and lo < 0 < hi else uniform(lo, hi)


# The primitives, derived from their records (gpugrad/core/primitives/): a new primitive is in this
# table without an edit here. Comparisons and logical ops have no gradient to check.
PRIMITIVE_OPS = [
    Op(p.name, getattr(tf, p.name), p.reference,
       tuple(_record_domain(p, lo, hi) for lo, hi in p.domain), smooth=p.smooth,
       separated=p.name in ("maximum", "minimum"))
    for p in elementwise_records() if p.public and p.result not in (COMPARE, LOGICAL)
]

# Composite ops and operator spellings, which have no record of their own.
OPS = PRIMITIVE_OPS + [
    Op("square", tf.square, np.square, (REAL,)),
    Op("relu", tf.relu, lambda x: np.maximum(x, 0.0), (NONZERO,), smooth=False),
    Op("elu", tf.elu, np_elu, (NONZERO,), smooth=False),
    Op("softplus", tf.softplus, np_softplus, (REAL,)),
    Op("clip_by_value", lambda x: tf.clip_by_value(x, CLIP_LO, CLIP_HI),
       lambda x: np.clip(x, CLIP_LO, CLIP_HI), (CLIP_DOMAIN,), smooth=False),
    Op("softmax", tf.softmax, np_softmax, (REAL,)),
    Op("log_softmax", tf.log_softmax, np_log_softmax, (REAL,)),
    # Python scalars on either side (weakly typed, the tensor's dtype wins)
    Op("add_scalar", lambda x: x + 1.5, lambda x: x + 1.5, (REAL,)),
    Op("radd_scalar", lambda x: 1.5 + x, lambda x: 1.5 + x, (REAL,)),
    Op("rsub_scalar", lambda x: 2.0 - x, lambda x: 2.0 - x, (REAL,)),
    Op("rmul_scalar", lambda x: 3 * x, lambda x: 3 * x, (REAL,)),
    Op("rdiv_scalar", lambda x: 2.0 / x, lambda x: 2.0 / x, (NONZERO,)),
    Op("pow_scalar_int", lambda x: x ** 3, lambda x: x ** 3, (REAL,)),
    Op("pow_scalar_frac", lambda x: x ** 2.5, lambda x: x ** 2.5, (POS,)),
    Op("rpow_scalar", lambda x: 2.0 ** x, lambda x: 2.0 ** x, (REAL,)),
    Op("neg_operator", lambda x: -x, lambda x: -x, (REAL,)),
    # binary
    Op("where", tf_where_fixed, np_where_fixed, (REAL, REAL)),
    Op("squared_difference", tf.squared_difference, lambda a, b: (a - b) ** 2, (REAL, REAL)),
    Op("operator_add", lambda a, b: a + b, np.add, (REAL, REAL)),
    Op("operator_sub", lambda a, b: a - b, np.subtract, (REAL, REAL)),
    Op("operator_mul", lambda a, b: a * b, np.multiply, (REAL, REAL)),
    Op("operator_div", lambda a, b: a / b, np.divide, (REAL, NONZERO)),
    Op("operator_pow", lambda a, b: a ** b, np.power, (POS, REAL)),
]
OPS_BY_NAME = {op.name: op for op in OPS}
UNARY_OPS = [op for op in OPS if op.arity == 1]
BINARY_OPS = [op for op in OPS if op.arity == 2]
SMOOTH_OPS = [op for op in OPS if op.smooth]
NONSMOOTH_OPS = [op for op in OPS if not op.smooth]


def _ids(ops):
    return [op.name for op in ops]


# --- (a) forward, (b) first and (c) second derivatives -----------------------------------------


@pytest.mark.parametrize("op", OPS, ids=_ids(OPS))
def test_forward(backend, op):
    xs = op.sample(rng_for("fwd", op.name))
    check_forward(op.tf_fn, op.np_fn, xs, what=op.name)


@pytest.mark.parametrize("op", OPS, ids=_ids(OPS))
def test_first_derivative(backend, op):
    rng = rng_for("d1", op.name)
    check_first(op.tf_fn, op.np_fn, op.sample(rng), rng, what=op.name)


@pytest.mark.parametrize("op", SMOOTH_OPS, ids=_ids(SMOOTH_OPS))
def test_second_derivative(backend, op):
    rng = rng_for("d2", op.name)
    check_second(op.tf_fn, op.sample(rng, [(3,)] * op.arity), rng, what=op.name)


@pytest.mark.parametrize("op", NONSMOOTH_OPS, ids=_ids(NONSMOOTH_OPS))
def test_second_derivative_away_from_kinks(backend, op):
    # Piecewise smooth: away from the kinks the second derivative exists and must be right.
    rng = rng_for("d2k", op.name)
    check_second(op.tf_fn, op.sample(rng, [(3,)] * op.arity), rng, what=op.name)


def test_grad_of_grad_literal_form(backend):
    # The form in the docs: tf.grad(lambda x: tf.sum(tf.grad(f)(x) * w)).
    x = np.array([0.3, -1.2, 2.0])
    w = np.array([0.5, -2.0, 1.5])
    f = tf.sin
    gg = tf.grad(lambda t: tf.sum(tf.grad(f)(t) * T(w)))(T(x))
    assert_values(gg.numpy(), -np.sin(x) * w, what="d2 sin")
    ggg = tf.grad(lambda t: tf.sum(tf.grad(lambda s: tf.sum(tf.grad(f)(s)))(t)))(T(x))
    assert_values(ggg.numpy(), -np.cos(x), what="d3 sin")


def test_value_and_grad(backend):
    x = np.array([[0.5, -1.0], [2.0, 0.25]])
    value, grad = tf.value_and_grad(lambda t: tf.sum(tf.exp(t) * t))(T(x))
    assert_values(value.numpy(), np.sum(np.exp(x) * x))
    assert_values(grad.numpy(), np.exp(x) * (x + 1))
    value, grads = tf.value_and_grads(lambda a, b: tf.sum(a * b))([T(x), T(2 * x)])
    assert_values(value.numpy(), np.sum(2 * x * x))
    assert_values(grads[0].numpy(), 2 * x)
    assert_values(grads[1].numpy(), x)


# --- (d) broadcasting --------------------------------------------------------------------------

BROADCAST_SHAPES = [
    ((3, 1), (4,)),
    ((2, 3, 4), (3, 1)),
    ((), (2, 3)),
    ((2, 3), ()),
    ((1, 4), (3, 1)),
    ((2, 1, 4), (1, 3, 1)),
    ((4,), (2, 3, 4)),
]


@pytest.mark.parametrize("shapes", BROADCAST_SHAPES, ids=[f"{a}x{b}" for a, b in BROADCAST_SHAPES])
@pytest.mark.parametrize("op", BINARY_OPS, ids=_ids(BINARY_OPS))
def test_broadcast_forward_and_gradients(backend, op, shapes):
    rng = rng_for("bcast", op.name, shapes)
    xs = op.sample(rng, list(shapes))
    check_forward(op.tf_fn, op.np_fn, xs, what=f"{op.name} {shapes}")
    check_first(op.tf_fn, op.np_fn, xs, rng, what=f"{op.name} {shapes}")


SECOND_BCAST = [op for op in BINARY_OPS if op.smooth and not op.name.startswith("operator")]


@pytest.mark.parametrize("op", SECOND_BCAST, ids=_ids(SECOND_BCAST))
def test_broadcast_second_derivative(backend, op):
    rng = rng_for("bcast2", op.name)
    check_second(op.tf_fn, op.sample(rng, [(2, 1), (3,)]), rng, what=op.name)


def test_broadcast_where_condition_and_operands(backend):
    rng = rng_for("where3")
    c = rng.uniform(size=(3, 1)) > 0.5
    c[0, 0], c[1, 0] = True, False
    a, b = rng.normal(size=(4,)), rng.normal(size=())
    out = tf.where(tf.tensor(c), T(a), T(b))
    assert_values(out.numpy(), np.where(c, a, b))
    check_first(lambda x, y: tf.where(tf.tensor(c), x, y), lambda x, y: np.where(c, x, y),
                [a, b], rng, what="where broadcast")


def test_broadcast_to_and_numpy_array_operands(backend):
    rng = rng_for("bto")
    x = rng.normal(size=(3, 1))
    check_forward(lambda t: tf.broadcast_to(t, (2, 3, 4)), lambda a: np.broadcast_to(a, (2, 3, 4)), [x])
    check_first(lambda t: tf.broadcast_to(t, (2, 3, 4)), lambda a: np.broadcast_to(a, (2, 3, 4)), [x], rng)
    arr = rng.normal(size=(3, 4))
    # numpy arrays on the left defer to the tensor (__array_priority__)
    out = arr + T(x)
    assert isinstance(out, tf.Tensor)
    assert_values(out.numpy(), arr + x)
    assert_values((arr * T(x)).numpy(), arr * x)


COMPARISONS = [
    ("less", tf.less, np.less), ("less_equal", tf.less_equal, np.less_equal),
    ("greater", tf.greater, np.greater), ("greater_equal", tf.greater_equal, np.greater_equal),
    ("equal", tf.equal, np.equal), ("not_equal", tf.not_equal, np.not_equal),
    ("operator_lt", lambda a, b: a < b, np.less), ("operator_le", lambda a, b: a <= b, np.less_equal),
    ("operator_gt", lambda a, b: a > b, np.greater), ("operator_ge", lambda a, b: a >= b, np.greater_equal),
]


@pytest.mark.parametrize("shapes", [((2, 3), (2, 3))] + BROADCAST_SHAPES[:3],
                         ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name,tf_fn,np_fn", COMPARISONS, ids=[c[0] for c in COMPARISONS])
def test_comparisons(backend, name, tf_fn, np_fn, shapes):
    rng = rng_for("cmp", name, shapes)
    # small integers so that ties occur
    a = rng.integers(-1, 2, size=shapes[0]).astype(np.float64)
    b = rng.integers(-1, 2, size=shapes[1]).astype(np.float64)
    out = tf_fn(T(a), T(b))
    assert out.dtype == "bool"
    got = out.numpy()
    assert got.dtype == np.bool_
    np.testing.assert_array_equal(got, np_fn(a, b))


def test_comparisons_and_sign_have_zero_gradient(backend):
    x = np.array([-1.5, 0.5, 2.0])
    g = tf.grad(lambda t: tf.cast(tf.less(t, 1.0), F64) * t)(T(x))
    assert g.dtype == F64
    assert_values(g.numpy(), (x < 1.0).astype(float))
    g = tf.grad(lambda t: tf.sign(t) * 2.0)(T(x))
    assert_values(g.numpy(), np.zeros(3))


# --- (e) reductions ----------------------------------------------------------------------------


def _np_axis(axis):
    return tuple(axis) if isinstance(axis, (list, tuple)) else axis


def _distinct(rng, shape):
    """Values without ties (for max/min), spaced at least 0.1 apart."""
    n = int(np.prod(shape))
    return (rng.permutation(n) * 0.1 - 0.05 * n + rng.uniform(0, 0.02, n)).reshape(shape)


REDUCTIONS = [
    ("sum", tf.sum, lambda x, axis, kd: np.sum(x, axis=_np_axis(axis), keepdims=kd), REAL),
    ("mean", tf.mean, lambda x, axis, kd: np.mean(x, axis=_np_axis(axis), keepdims=kd), REAL),
    ("max", tf.max, lambda x, axis, kd: np.max(x, axis=_np_axis(axis), keepdims=kd), _distinct),
    ("min", tf.min, lambda x, axis, kd: np.min(x, axis=_np_axis(axis), keepdims=kd), _distinct),
    ("prod", tf.prod, lambda x, axis, kd: np.prod(x, axis=_np_axis(axis), keepdims=kd),
     away_from([0.0], -1.6, 1.6, gap=0.4)),
    ("logsumexp", tf.logsumexp, lambda x, axis, kd: np_logsumexp(x, axis, kd), REAL),
]
AXES = [None, 0, 1, -1, [0, 2], (-1, -3), [0, 1, 2], [-2]]


@pytest.mark.parametrize("keep_dims", [False, True], ids=["drop", "keep"])
@pytest.mark.parametrize("axis", AXES, ids=[repr(a) for a in AXES])
@pytest.mark.parametrize("name,tf_fn,np_fn,domain", REDUCTIONS, ids=[r[0] for r in REDUCTIONS])
def test_reduction(backend, name, tf_fn, np_fn, domain, axis, keep_dims):
    rng = rng_for("red", name, axis, keep_dims)
    x = domain(rng, (2, 3, 4))
    f = lambda t: tf_fn(t, axis, keep_dims)  # noqa: E731
    g = lambda a: np_fn(a, axis, keep_dims)  # noqa: E731
    check_forward(f, g, [x], what=f"{name} axis={axis} keep={keep_dims}")
    check_first(f, g, [x], rng, what=f"{name} axis={axis} keep={keep_dims}")
    method = getattr(T(x), name)(axis, keep_dims)
    assert_values(method.numpy(), g(x), what=f"{name} method")


def test_reduction_keyword_arguments_and_scalars(backend):
    x = np.arange(6.0).reshape(2, 3)
    assert_values(tf.sum(T(x), axis=-1, keep_dims=True).numpy(), x.sum(-1, keepdims=True))
    assert_values(tf.mean(T(x), axis=[0]).numpy(), x.mean(0))
    assert_values(tf.sum(T(2.5)).numpy(), np.float64(2.5))
    assert_values(tf.max(T(2.5)).numpy(), np.float64(2.5))


@pytest.mark.parametrize("name", ["sum", "mean", "max", "prod", "logsumexp"])
def test_reduction_second_derivative(backend, name):
    rng = rng_for("red2", name)
    fn = getattr(tf, name)
    x = _distinct(rng, (2, 3)) if name == "max" else away_from([0.0], -1.5, 1.5, 0.3)(rng, (2, 3))
    check_second(lambda t: fn(t, 1), [x], rng, what=name)


@pytest.mark.parametrize("axis", [None, 0, 1, -1])
@pytest.mark.parametrize("name,tf_fn,np_fn", [("argmax", tf.argmax, np.argmax),
                                              ("argmin", tf.argmin, np.argmin)])
def test_arg_reductions(backend, name, tf_fn, np_fn, axis):
    x = _distinct(rng_for(name, axis), (3, 4))
    out = tf_fn(T(x), axis)
    assert out.dtype == "int32"
    np.testing.assert_array_equal(out.numpy(), np_fn(x, axis=0 if axis is None else axis))


@pytest.mark.parametrize("axis", [0, 1, -1, 2, -3])
@pytest.mark.parametrize("name,tf_fn,np_fn", [("softmax", tf.softmax, np_softmax),
                                              ("log_softmax", tf.log_softmax, np_log_softmax)])
def test_softmax_axes(backend, name, tf_fn, np_fn, axis):
    rng = rng_for(name, axis)
    x = rng.normal(size=(2, 3, 4)) * 2
    f = lambda t: tf_fn(t, axis)  # noqa: E731
    g = lambda a: np_fn(a, axis)  # noqa: E731
    check_forward(f, g, [x], what=f"{name} {axis}")
    check_first(f, g, [x], rng, what=f"{name} {axis}")
    if name == "softmax":
        assert_values(tf.sum(f(T(x)), axis).numpy(), np.ones(np.delete(x.shape, axis % 3)))


@pytest.mark.parametrize("name,tf_fn,np_fn", [("softmax", tf.softmax, np_softmax),
                                              ("log_softmax", tf.log_softmax, np_log_softmax)])
def test_softmax_second_derivative(backend, name, tf_fn, np_fn):
    rng = rng_for(name, "d2")
    check_second(lambda t: tf_fn(t, 0), [rng.normal(size=(3, 2))], rng, what=name)


def test_softmax_large_logits(backend):
    x = np.array([[1000.0, 0.0, -1000.0], [-1e4, -1e4, -1e4]])
    assert_values(tf.softmax(T(x)).numpy(), np_softmax(x))
    assert_values(tf.log_softmax(T(x)).numpy(), np_log_softmax(x))
    assert_values(tf.logsumexp(T(x), 1).numpy(), np_logsumexp(x, 1))


# --- kinks and ties ----------------------------------------------------------------------------


def _grad(f, x):
    return tf.grad(f)(T(x)).numpy()


def test_max_reduction_ties_share_evenly(backend):
    assert_values(_grad(tf.max, [3.0, 1.0, 3.0]), [0.5, 0.0, 0.5])
    assert_values(_grad(tf.min, [1.0, 3.0, 1.0]), [0.5, 0.0, 0.5])
    x = np.array([[1.0, 5.0, 5.0], [2.0, 2.0, 2.0]])
    w = np.array([2.0, 3.0])
    g = tf.grad(lambda t: tf.max(t, 1))(T(x), T(w)).numpy()
    assert_values(g, [[0.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    g = tf.grad(lambda t: tf.max(t, -1, True))(T(x), T(w[:, None])).numpy()
    assert_values(g, [[0.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    g = tf.grad(lambda t: tf.max(t, 0))(T(x)).numpy()
    assert_values(g, [[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])


def test_maximum_minimum_ties_split(backend):
    x = np.array([1.0, 2.0, -3.0])
    y = np.array([1.0, 0.0, -3.0])
    for fn in (tf.maximum, tf.minimum):
        ga, gb = tf.grads(fn)([T(x), T(y)])
        big = fn is tf.maximum
        assert_values(ga.numpy(), [0.5, 1.0 if big else 0.0, 0.5])
        assert_values(gb.numpy(), [0.5, 0.0 if big else 1.0, 0.5])
    # the same tensor on both sides: the halves add up to the identity
    assert_values(_grad(lambda t: tf.maximum(t, t), x), np.ones(3))
    # a scalar operand broadcast against ties
    assert_values(_grad(lambda t: tf.maximum(t, 1.0), [1.0, 2.0, 0.0]), [0.5, 1.0, 0.0])


def test_abs_relu_sign_at_zero(backend):
    assert_values(_grad(tf.abs, [0.0, -2.0, 3.0]), [0.0, -1.0, 1.0])
    assert_values(_grad(tf.relu, [0.0, -2.0, 3.0]), [0.0, 0.0, 1.0])
    assert_values(_grad(tf.sign, [0.0, -2.0, 3.0]), [0.0, 0.0, 0.0])
    assert_values(tf.sign(T([0.0, -2.0, 3.0])).numpy(), [0.0, -1.0, 1.0])


def test_softplus_derivative_at_zero(backend):
    # softplus is smooth: its derivative at 0 is sigmoid(0) = 0.5, whatever the kink conventions.
    assert_values(_grad(tf.softplus, [0.0, 1.0, -1.0]), np_sigmoid(np.array([0.0, 1.0, -1.0])))


def test_elu_derivative_at_zero_is_continuous(backend):
    assert_values(_grad(tf.elu, [0.0]), [1.0])


def test_prod_with_zeros(backend):
    assert_values(tf.prod(T([2.0, 0.0, 3.0, 4.0])).numpy(), 0.0)
    assert_values(_grad(tf.prod, [2.0, 0.0, 3.0, 4.0]), [0.0, 24.0, 0.0, 0.0])
    assert_values(_grad(tf.prod, [2.0, 0.0, 3.0, 0.0]), [0.0, 0.0, 0.0, 0.0])
    x = np.array([[2.0, 0.0, 3.0], [0.0, 0.0, 1.0], [1.0, 2.0, 3.0]])
    g = tf.grad(lambda t: tf.prod(t, 1))(T(x)).numpy()
    assert_values(g, [[0.0, 6.0, 0.0], [0.0, 0.0, 0.0], [6.0, 3.0, 2.0]])
    g = tf.grad(lambda t: tf.prod(t, 0, True))(T(x)).numpy()
    assert_values(g, [[0.0, 0.0, 3.0], [2.0, 0.0, 9.0], [0.0, 0.0, 3.0]])


@pytest.mark.parametrize("x", [[0.0, 2.0, 3.0, -1.5], [0.0, 2.0, 0.0, -1.5]], ids=["one_zero", "two_zeros"])
def test_prod_second_derivative_with_zeros(backend, x):
    x = np.array(x)
    # H_ij = prod of x_k for k != i, j (i != j), which is not zero when x_i or x_j is the zero
    hessian = np.array([[0.0 if i == j else np.prod(np.delete(x, [i, j])) for j in range(4)]
                        for i in range(4)])
    u = np.array([0.5, 1.0, -2.0, 0.25])
    got = tf.grad(lambda t: tf.sum(tf.grad(tf.prod)(t) * T(u)))(T(x)).numpy()
    assert_values(got, hessian @ u)
    check_second(tf.prod, [x], rng_for("prod-zeros", tuple(x)), what="prod with zeros")


# --- matmul ------------------------------------------------------------------------------------


def np_matmul(a, b, ta=False, tb=False):
    if ta and a.ndim >= 2:
        a = np.swapaxes(a, -1, -2)
    if tb and b.ndim >= 2:
        b = np.swapaxes(b, -1, -2)
    return np.matmul(a, b)


MATMUL_CASES = [
    ((3, 4), (4, 2), False, False),
    ((4, 3), (4, 2), True, False),
    ((3, 4), (2, 4), False, True),
    ((4, 3), (2, 4), True, True),
    ((2, 3, 4), (2, 4, 2), False, False),
    ((2, 3, 4), (4, 2), False, False),
    ((3, 4), (2, 4, 2), False, False),
    ((2, 1, 3, 4), (3, 2, 4), False, True),
    ((2, 4, 3), (1, 4, 2), True, False),
    ((4,), (4, 2), False, False),
    ((3, 4), (4,), False, False),
    ((4,), (4,), False, False),
    ((4,), (2, 4, 3), False, False),
    ((2, 3, 4), (4,), False, False),
]


@pytest.mark.parametrize("sa,sb,ta,tb", MATMUL_CASES,
                         ids=[f"{a}@{b}{'-ta' if ta else ''}{'-tb' if tb else ''}" for a, b, ta, tb in MATMUL_CASES])
def test_matmul(backend, sa, sb, ta, tb):
    rng = rng_for("mm", sa, sb, ta, tb)
    a, b = rng.normal(size=sa), rng.normal(size=sb)
    f = lambda x, y: tf.matmul(x, y, ta, tb)  # noqa: E731
    g = lambda x, y: np_matmul(x, y, ta, tb)  # noqa: E731
    check_forward(f, g, [a, b], rtol=1e-12, atol=1e-12, what="matmul")
    check_first(f, g, [a, b], rng, what="matmul")
    if not (ta or tb):
        assert_values((T(a) @ T(b)).numpy(), g(a, b), 1e-12, 1e-12, "operator @")
        assert_values(T(a).matmul(T(b)).numpy(), g(a, b), 1e-12, 1e-12, "method")


@pytest.mark.parametrize("sa,sb,ta,tb", [((3, 2), (3, 2), True, False), ((2, 2, 3), (3,), False, False)])
def test_matmul_second_derivative(backend, sa, sb, ta, tb):
    rng = rng_for("mm2", sa, sb)
    check_second(lambda x, y: tf.matmul(x, y, ta, tb), [rng.normal(size=sa), rng.normal(size=sb)],
                 rng, what="matmul")


def test_matmul_rmatmul_with_numpy(backend):
    rng = rng_for("rmm")
    a, b = rng.normal(size=(2, 3)), rng.normal(size=(3, 2))
    out = a @ T(b)
    assert isinstance(out, tf.Tensor)
    assert_values(out.numpy(), a @ b, 1e-12, 1e-12)


# --- movement ----------------------------------------------------------------------------------

MOVEMENT = [
    ("reshape", [(2, 3, 4)], lambda x: tf.reshape(x, (4, 6)), lambda x: x.reshape(4, 6)),
    ("reshape_implicit", [(2, 3, 4)], lambda x: tf.reshape(x, (-1, 2)), lambda x: x.reshape(-1, 2)),
    ("reshape_method", [(2, 3)], lambda x: x.reshape([3, 1, 2]), lambda x: x.reshape(3, 1, 2)),
    ("reshape_to_scalar", [(1, 1)], lambda x: tf.reshape(x, ()), lambda x: x.reshape(())),
    ("flatten", [(2, 3)], tf.flatten, lambda x: x.reshape(-1)),
    ("transpose_default", [(2, 3, 4)], tf.transpose, lambda x: np.transpose(x)),
    ("transpose_perm", [(2, 3, 4)], lambda x: tf.transpose(x, [1, 2, 0]),
     lambda x: np.transpose(x, (1, 2, 0))),
    ("transpose_negative_perm", [(2, 3, 4)], lambda x: tf.transpose(x, [0, -1, 1]),
     lambda x: np.transpose(x, (0, 2, 1))),
    ("expand_dims", [(2, 3)], lambda x: tf.expand_dims(x, 1), lambda x: np.expand_dims(x, 1)),
    ("expand_dims_negative", [(2, 3)], lambda x: tf.expand_dims(x, -1), lambda x: np.expand_dims(x, -1)),
    ("squeeze_all", [(1, 3, 1)], tf.squeeze, np.squeeze),
    ("squeeze_axis", [(1, 3, 1)], lambda x: tf.squeeze(x, [2]), lambda x: np.squeeze(x, 2)),
    ("broadcast_to", [(3, 1)], lambda x: tf.broadcast_to(x, (2, 3, 4)),
     lambda x: np.broadcast_to(x, (2, 3, 4))),
    ("slice", [(3, 4)], lambda x: tf.slice(x, [1, 1], [2, 2]), lambda x: x[1:3, 1:3]),
    ("slice_to_end", [(3, 4)], lambda x: tf.slice(x, [1, 0], [-1, 3]), lambda x: x[1:, 0:3]),
    ("slice_short_begin", [(3, 4)], lambda x: tf.slice(x, [1]), lambda x: x[1:]),
    ("getitem_mixed", [(3, 4, 2)], lambda x: x[1:, ::-1, None, ...], lambda x: x[1:, ::-1, None, ...]),
    ("getitem_int", [(3, 4)], lambda x: x[-1], lambda x: x[-1]),
    ("getitem_ellipsis_int", [(2, 3, 4)], lambda x: x[..., 1], lambda x: x[..., 1]),
    ("getitem_steps", [(5, 4)], lambda x: x[::2, -1:0:-1], lambda x: x[::2, -1:0:-1]),
    ("getitem_negative_step_2", [(7,)], lambda x: x[-2::-3], lambda x: x[-2::-3]),
    ("getitem_reverse_all", [(2, 3)], lambda x: x[::-1, ::-1], lambda x: x[::-1, ::-1]),
    ("getitem_newaxis", [(3,)], lambda x: x[None, :, None], lambda x: x[None, :, None]),
    ("pad", [(2, 3)], lambda x: tf.pad(x, [[1, 0], [2, 1]]), lambda x: np.pad(x, [(1, 0), (2, 1)])),
    ("pad_constant", [(2, 3)], lambda x: tf.pad(x, [[0, 2], [1, 1]], 1.5),
     lambda x: np.pad(x, [(0, 2), (1, 1)], constant_values=1.5)),
    ("pad_of_reversed", [(2, 3)], lambda x: tf.pad(x[:, ::-1], [[1, 1], [0, 2]]),
     lambda x: np.pad(x[:, ::-1], [(1, 1), (0, 2)])),
    ("concat_axis0", [(2, 3), (1, 3), (3, 3)], lambda a, b, c: tf.concat([a, b, c], 0),
     lambda a, b, c: np.concatenate([a, b, c], 0)),
    ("concat_axis_neg1", [(2, 1), (2, 3), (2, 2)], lambda a, b, c: tf.concat([a, b, c], -1),
     lambda a, b, c: np.concatenate([a, b, c], -1)),
    ("concat_same_twice", [(2, 3)], lambda a: tf.concat([a, a * 2.0], 1),
     lambda a: np.concatenate([a, a * 2.0], 1)),
    ("stack_axis0", [(2, 3), (2, 3)], lambda a, b: tf.stack([a, b]), lambda a, b: np.stack([a, b])),
    ("stack_axis1", [(2, 3), (2, 3), (2, 3)], lambda a, b, c: tf.stack([a, b, c], 1),
     lambda a, b, c: np.stack([a, b, c], 1)),
    ("stack_axis_neg1", [(2, 3), (2, 3)], lambda a, b: tf.stack([a, b], -1),
     lambda a, b: np.stack([a, b], -1)),
    ("tile", [(2, 3)], lambda x: tf.tile(x, [2, 3]), lambda x: np.tile(x, (2, 3))),
]


@pytest.mark.parametrize("name,shapes,tf_fn,np_fn", MOVEMENT, ids=[m[0] for m in MOVEMENT])
def test_movement(backend, name, shapes, tf_fn, np_fn):
    rng = rng_for("mv", name)
    xs = [rng.normal(size=s) for s in shapes]
    check_forward(tf_fn, np_fn, xs, rtol=0, atol=0, what=name)
    check_first(tf_fn, np_fn, xs, rng, what=name)


@pytest.mark.parametrize("name", ["getitem_mixed", "pad_constant", "concat_axis0", "stack_axis1", "transpose_perm"])
def test_movement_second_derivative(backend, name):
    _, shapes, tf_fn, np_fn = next(m for m in MOVEMENT if m[0] == name)
    rng = rng_for("mv2", name)
    xs = [rng.normal(size=s) for s in shapes]
    # movement ops are linear: compose with a square so the second derivative is not zero
    check_second(lambda *ts: tf.square(tf_fn(*ts)), xs, rng, what=name)


def test_cast_gradient_passes_through(backend):
    rng = rng_for("cast")
    x = rng.normal(size=(2, 3))
    w = rng.normal(size=(2, 3))
    g = tf.grad(lambda t: tf.cast(t, "float32"))(T(x), tf.tensor(w.astype(np.float32)))
    assert g.dtype == F64
    assert_values(g.numpy(), w.astype(np.float32).astype(np.float64))
    y = tf.cast(T(x), "float32")
    assert y.dtype == "float32"
    assert_values(y.numpy(), x.astype(np.float32), rtol=0, atol=0)
    z = tf.cast(T([-1.7, 2.9, 0.2]), "int32")
    assert z.dtype == "int32"
    np.testing.assert_array_equal(z.numpy(), np.array([-1.7, 2.9, 0.2]).astype(np.int32))
    np.testing.assert_array_equal(tf.cast(T([0.0, 2.0]), "bool").numpy(), [False, True])


# --- Tensor methods ----------------------------------------------------------------------------

METHOD_NAMES = ["add", "sub", "mul", "div", "neg", "square", "sqrt", "rsqrt", "exp", "log",
                "log1p", "expm1", "abs", "sign", "sin", "cos", "tanh", "sigmoid", "relu", "elu",
                "softplus", "pow", "maximum", "minimum", "squared_difference", "clip_by_value",
                "softmax", "log_softmax"]


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_methods_match_functions(backend, name):
    rng = rng_for("method", name)
    x, y = POS(rng, (2, 3)), REAL(rng, (2, 3))
    fn = getattr(tf, name)
    if name in ("add", "sub", "mul", "div", "pow", "maximum", "minimum", "squared_difference"):
        got, want = getattr(T(x), name)(T(y)), fn(T(x), T(y))
    elif name == "clip_by_value":
        got, want = T(y).clip_by_value(-0.5, 0.5), fn(T(y), -0.5, 0.5)
    else:
        got, want = getattr(T(x), name)(), fn(T(x))
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got.numpy(), want.numpy())


# --- (f) dtypes --------------------------------------------------------------------------------


def test_float32_is_the_default(backend):
    assert tf.tensor([1.0, 2.0]).dtype == "float32"
    assert tf.tensor(1.5).dtype == "float32"
    assert tf.tensor([1, 2, 3]).dtype == "float32"
    assert tf.ones([2]).dtype == "float32"
    assert tf.zeros([2]).dtype == "float32"
    x = tf.tensor([1.0, 2.0])
    assert (x + 1.5).dtype == "float32"
    assert (x * 2).dtype == "float32"
    assert tf.exp(x).numpy().dtype == np.float32
    assert (x + T([1.0, 1.0])).dtype == F64  # promotion to the wider float


def test_int32_arithmetic_stays_int32(backend):
    a = tf.tensor(np.array([1, -2, 3]), dtype="int32")
    b = tf.tensor(np.array([4, 5, -6]), dtype="int32")
    for out, want in [(a + b, [5, 3, -3]), (a - b, [-3, -7, 9]), (a * b, [4, -10, -18]),
                      (-a, [-1, 2, -3]), (tf.abs(a), [1, 2, 3]), (tf.square(a), [1, 4, 9]),
                      (tf.maximum(a, b), [4, 5, 3]), (tf.minimum(a, b), [1, -2, -6]),
                      (a * 2, [2, -4, 6]), (3 + a, [4, 1, 6]), (tf.sign(a), [1, -1, 1]),
                      (tf.relu(a), [1, 0, 3])]:
        assert out.dtype == "int32", out
        got = out.numpy()
        assert got.dtype == np.int32
        np.testing.assert_array_equal(got, want)
    s = tf.sum(a)
    assert s.dtype == "int32" and s.numpy() == 2
    m = tf.max(b)
    assert m.dtype == "int32" and m.numpy() == 5
    p = tf.prod(a)
    assert p.dtype == "int32" and p.numpy() == -6
    assert tf.mean(a).dtype == "float32"
    assert (a + 0.5).dtype == "float32"


@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid",
                                  "log1p", "expm1", "reciprocal"])
def test_float_ops_of_int32_give_float32(backend, name):
    a = tf.tensor(np.array([1, 2, 3]), dtype="int32")
    out = getattr(tf, name)(a)
    assert out.dtype == "float32"
    got = out.numpy()
    assert got.dtype == np.float32
    want = getattr(tf, name)(T([1.0, 2.0, 3.0])).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_comparisons_give_bool(backend):
    for a, b in [(T([1.0, 2.0]), T([2.0, 2.0])),
                 (tf.tensor(np.array([1, 2]), dtype="int32"), tf.tensor(np.array([2, 2]), dtype="int32")),
                 (tf.tensor([1.0, 2.0]), 2.0)]:
        for fn in (tf.less, tf.less_equal, tf.greater, tf.greater_equal, tf.equal, tf.not_equal):
            out = fn(a, b)
            assert out.dtype == "bool"
            assert out.numpy().dtype == np.bool_
    np.testing.assert_array_equal(tf.less_equal(T([1.0, 2.0, 3.0]), 2).numpy(), [True, True, False])


GRAD_OPS = [op for op in OPS if op.name not in ("sign",)]


@pytest.mark.parametrize("op", GRAD_OPS, ids=_ids(GRAD_OPS))
def test_float32_gradients_are_float32(backend, op):
    rng = rng_for("f32", op.name)
    xs = op.sample(rng)
    xs32 = [tf.tensor(x.astype(np.float32)) for x in xs]
    assert all(t.dtype == "float32" for t in xs32)
    out = op.tf_fn(*xs32)
    assert out.dtype == "float32"
    gs = tf.grads(op.tf_fn)(xs32)
    gs64 = tf.grads(op.tf_fn)([T(x.astype(np.float32).astype(np.float64)) for x in xs])
    for g, g64 in zip(gs, gs64):
        assert g.dtype == "float32"
        got = g.numpy()
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, g64.numpy(), rtol=2e-5, atol=2e-5)


def test_int32_input_gradient_is_float32(backend):
    a = tf.tensor(np.array([1, 2, 3]), dtype="int32")
    g = tf.grad(lambda t: tf.square(tf.cast(t, "float32")))(a)
    assert g.dtype == "float32"
    np.testing.assert_allclose(g.numpy(), [2.0, 4.0, 6.0])


def test_matmul_and_reductions_keep_float32(backend):
    a = tf.tensor(np.ones((2, 3), np.float32))
    b = tf.tensor(np.ones((3, 2), np.float32))
    assert tf.matmul(a, b).dtype == "float32"
    assert tf.matmul(a, b).numpy().dtype == np.float32
    for fn in (tf.sum, tf.mean, tf.max, tf.min, tf.prod, tf.logsumexp):
        assert fn(a).dtype == "float32"
        assert fn(a).numpy().dtype == np.float32
    ga, gb = tf.grads(lambda x, y: tf.matmul(x, y))([a, b])
    assert ga.dtype == gb.dtype == "float32"


# --- (g) NaN and Inf ---------------------------------------------------------------------------

NAN, INF = math.nan, math.inf
SPECIAL_CASES = [
    ("log(0)", lambda: tf.log(T([0.0])), [-INF]),
    ("log(-1)", lambda: tf.log(T([-1.0])), [NAN]),
    ("0/0", lambda: tf.div(T([0.0]), T([0.0])), [NAN]),
    ("1/0", lambda: T([1.0, -1.0]) / T([0.0, 0.0]), [INF, -INF]),
    ("exp overflow", lambda: tf.exp(T([1000.0, -1000.0])), [INF, 0.0]),
    ("sqrt(-1)", lambda: tf.sqrt(T([-1.0])), [NAN]),
    ("rsqrt(0)", lambda: tf.rsqrt(T([0.0])), [INF]),
    ("reciprocal(0)", lambda: tf.reciprocal(T([0.0])), [INF]),
    ("inf - inf", lambda: tf.sum(T([INF, -INF])), NAN),
    ("max with nan", lambda: tf.max(T([1.0, NAN, 2.0])), NAN),
    ("maximum with nan", lambda: tf.maximum(T([NAN, 1.0]), T([1.0, NAN])), [NAN, NAN]),
    ("minimum with nan", lambda: tf.minimum(T([NAN, 1.0]), T([1.0, NAN])), [NAN, NAN]),
    ("sign(nan)", lambda: tf.sign(T([NAN])), [NAN]),
    ("abs(-inf)", lambda: tf.abs(T([-INF])), [INF]),
    ("sigmoid extremes", lambda: tf.sigmoid(T([-1000.0, 1000.0])), [0.0, 1.0]),
    ("tanh(inf)", lambda: tf.tanh(T([INF, -INF])), [1.0, -1.0]),
    ("softplus extremes", lambda: tf.softplus(T([1000.0, -1000.0])), [1000.0, 0.0]),
    ("logsumexp(-inf)", lambda: tf.logsumexp(T([-INF, -INF])), -INF),
    ("logsumexp(inf)", lambda: tf.logsumexp(T([INF, 1.0])), INF),
    ("nan in add", lambda: T([NAN, 1.0]) + 1.0, [NAN, 2.0]),
    ("inf * 0", lambda: T([INF]) * 0.0, [NAN]),
    ("pow(0, -1)", lambda: tf.pow(T([0.0]), T([-1.0])), [INF]),
    ("mean of inf", lambda: tf.mean(T([INF, 1.0])), INF),
    ("nan through where", lambda: tf.where(tf.tensor([True, False]), T([NAN, NAN]), T([1.0, 2.0])),
     [NAN, 2.0]),
    ("nan through matmul", lambda: tf.matmul(T([[NAN, 1.0]]), T([[1.0], [1.0]])), [[NAN]]),
    ("clip nan", lambda: tf.clip_by_value(T([NAN]), -1.0, 1.0), [NAN]),
    ("elu nan", lambda: tf.elu(T([NAN])), [NAN]),
    ("float32 exp overflow", lambda: tf.exp(tf.tensor([100.0])), [INF]),
]


@pytest.mark.parametrize("name,make,want", SPECIAL_CASES, ids=[c[0] for c in SPECIAL_CASES])
def test_ieee_special_values(backend, name, make, want):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning either
        got = make().numpy()
    np.testing.assert_array_equal(got, np.asarray(want, dtype=got.dtype))


def test_relu_propagates_nan(backend):
    np.testing.assert_array_equal(tf.relu(T([NAN, -1.0, 2.0])).numpy(), [NAN, 0.0, 2.0])


def test_ieee_special_values_in_gradients(backend):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_values(_grad(tf.log, [0.0, -1.0]), [INF, -1.0])
        assert_values(_grad(tf.sqrt, [0.0]), [INF])
        g = _grad(lambda t: tf.sqrt(t) * 0.0 + t, [-1.0])  # 0 * NaN is NaN: no masking
        assert np.isnan(g).all()
        ga, gb = tf.grads(tf.div)([T([0.0]), T([0.0])])
        assert np.isnan(gb.numpy()).all()
        assert np.isinf(ga.numpy()).all()
        # pow at x = 0: d/dy 0^y takes log(x) as 0 (JAX), d/dx 0^2 = 0
        ga, gb = tf.grads(tf.pow)([T([0.0]), T([2.0])])
        assert_values(ga.numpy(), [0.0])
        assert_values(gb.numpy(), [0.0])
