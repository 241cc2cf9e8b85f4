"""Tests derived from the primitive records (gpugrad/core/primitives/): every record is complete,
and every elementwise primitive is checked forward against its float64 reference, first and
(where smooth) second order against central differences, over special values, and through the
generated CUDA run on the CPU. A primitive added with its snippet and its record is tested by
this file with no edit here."""
from __future__ import annotations

import numpy as np
import pytest

import gpugrad as tf
from gpugrad import backends
from gpugrad.core.primitives import PRIMITIVES, Primitive, elementwise
from gpugrad.core.primitives.record import COMPARE, LOGICAL
from gpugrad.core.primitives.completeness import missing_facts
from gpugrad.testing import check_grads

RECORDS = [p for p in elementwise() if p.public]
DIFFERENTIABLE = [p for p in RECORDS if p.result not in (COMPARE, LOGICAL) and p.name != "sign"]
SMOOTH = [p for p in DIFFERENTIABLE if p.smooth]
SHAPE = (3, 4)


def _ids(records):
    return [p.name for p in records]


def _inputs(prim: Primitive, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng([seed, len(prim.name), ord(prim.name[0])])
    return [rng.uniform(lo, hi, SHAPE) for lo, hi in prim.domain]


def _op(prim: Primitive):
    return getattr(tf, prim.name)


# --- completeness ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(PRIMITIVES))
def test_every_record_is_complete(name):
    lacks = missing_facts(PRIMITIVES[name])
    assert not lacks, f"primitive {name!r} lacks: {'; '.join(lacks)}"


def test_completeness_names_what_a_record_lacks():
    # a throwaway record (not registered): no rule, a snippet that does not exist, no domain
    ghost = Primitive("ghost", "elementwise", 1, vjp=None, snippet="ghost_missing",
                      reference=np.exp, domain=None)
    lacks = " | ".join(missing_facts(ghost))
    assert "derivative rule" in lacks
    assert "ghost_missing.cu" in lacks
    assert "test domain" in lacks
    complete = Primitive("exp", "elementwise", 1, vjp=PRIMITIVES["exp"].vjp, snippet="exp",
                         reference=np.exp, domain=((-1.0, 1.0),))
    assert missing_facts(complete) == []


def test_every_public_primitive_is_an_op_a_method_and_a_tfjs_name():
    from gpugrad.core.tfjs_names import TFJS_NAMES, camel_case
    for p in RECORDS:
        assert callable(getattr(tf, p.name)), p.name
        assert callable(getattr(tf.Tensor, p.name)), p.name
        assert getattr(tf, p.tfjs or camel_case(p.name)) is getattr(tf, p.name)
        if "_" in p.name:
            assert TFJS_NAMES[camel_case(p.name)] == p.name


def test_float_only_primitives_promote_integers_instead_of_truncating():
    x = tf.tensor([1, 2, 3], dtype="int32")
    for p in RECORDS:
        if p.result == "float" and p.arity == 1:
            out = _op(p)(x)
            assert out.dtype == "float32", p.name


# --- forward and derivatives, float64 ----------------------------------------------------------


@pytest.mark.parametrize("prim", RECORDS, ids=_ids(RECORDS))
def test_forward_matches_reference(backend, prim):
    xs = _inputs(prim)
    got = _op(prim)(*[tf.tensor(x, dtype="float64") for x in xs]).numpy()
    want = prim.reference(*xs)
    np.testing.assert_allclose(got.astype(np.float64), np.asarray(want, np.float64), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("prim", DIFFERENTIABLE, ids=_ids(DIFFERENTIABLE))
def test_first_derivative(backend, prim):
    check_grads(_op(prim), _inputs(prim, 1), order=1)


@pytest.mark.parametrize("prim", SMOOTH, ids=_ids(SMOOTH))
def test_second_derivative(backend, prim):
    check_grads(_op(prim), _inputs(prim, 2), order=2)


# --- special values ------------------------------------------------------------------------------

SPECIAL = np.array([0.0, -0.0, 1.0, -1.0, 0.5, 2.0, np.inf, -np.inf, np.nan, 5e-324, -5e-324, 1e308],
                   dtype=np.float64)


@pytest.mark.parametrize("prim", RECORDS, ids=_ids(RECORDS))
def test_special_values_match_reference(backend, prim):
    """0, -0, +-inf, NaN, subnormals and huge values, every pair for binary primitives: the
    snippet's math agrees with the float64 reference (NaN where it gives NaN, values equal,
    signed zeros allowed to differ only in sign)."""
    grid = np.meshgrid(*([SPECIAL] * prim.arity), indexing="ij")
    with np.errstate(all="ignore"):
        want = np.asarray(prim.reference(*grid), dtype=np.float64)
    got = _op(prim)(*[tf.tensor(g, dtype="float64") for g in grid]).numpy().astype(np.float64)
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan), f"{prim.name}: NaN where the reference has none"
    np.testing.assert_allclose(got[~nan], want[~nan], rtol=1e-12, atol=0, err_msg=prim.name)


# --- the generated CUDA, run on the CPU ------------------------------------------------------------


def _all_at_once(records, dtype):
    """Every primitive's value and gradient in one function (one plan, few kernels to compile):
    F = sum_i sum(op_i(x_i...) * u_i)."""
    xs, ops = [], []
    for p in records:
        inputs = _inputs(p, 3)
        ops.append((p, len(xs), len(inputs)))
        xs += inputs
    rng = np.random.default_rng(4)
    us = [rng.uniform(0.5, 1.5, SHAPE) for _ in records]

    def F(*ts):
        total = None
        for (p, start, n), u in zip(ops, us):
            term = tf.sum(_op(p)(*ts[start:start + n]) * tf.tensor(u, dtype=dtype))
            total = term if total is None else total + term
        return total
    value, grads = tf.value_and_grads(F)([tf.tensor(x, dtype=dtype) for x in xs])
    return [value.numpy()] + [g.numpy() for g in grads]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_generated_cuda_agrees_with_numpy(emulated, dtype):
    emulated_results = _all_at_once(DIFFERENTIABLE, dtype)
    backends._current = None
    tf.set_backend("numpy")
    expected = _all_at_once(DIFFERENTIABLE, dtype)
    rtol = 2e-5 if dtype == "float32" else 1e-12
    for got, want in zip(emulated_results, expected):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)
