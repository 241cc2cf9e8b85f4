"""The numpy backend's generated Python: ufunc forms of snippets only where they agree with the
snippet bitwise, in-place temporaries, and outputs that are fresh arrays of their own."""
from __future__ import annotations

import numpy as np
import pytest

import gpugrad as tf
from gpugrad.backends import current, interpret
from gpugrad.compile.schedule import build_plan, structure


def _plan(outs):
    nodes_out = [o._node() for o in outs]
    _, leaves, nodes = structure(nodes_out)
    return build_plan(nodes_out, nodes), leaves


@pytest.mark.parametrize("op,ufunc", [("add", np.add), ("mul", np.multiply), ("exp", np.exp),
                                      ("maximum", np.maximum), ("minimum", np.minimum),
                                      ("less", np.less), ("reciprocal", np.reciprocal), ("sign", np.sign)])
def test_recognised_snippets_run_as_their_ufunc(op, ufunc):
    from gpugrad.core import primitives as P
    assert interpret.ufunc_form(op, P.ARITY[op], "float32") is ufunc


def test_a_ufunc_that_disagrees_with_its_snippet_is_refused(monkeypatch):
    monkeypatch.setitem(interpret._UFUNC_FORMS, "x + y", np.subtract)
    interpret.ufunc_form.cache_clear()
    try:
        assert interpret.ufunc_form("add", 2, "float32") is None
        # and the group still computes the snippet's math, through the snippet itself
        a = tf.tensor([1.0, 2.0])
        assert (a + a).numpy().tolist() == [2.0, 4.0]
    finally:
        interpret.ufunc_form.cache_clear()


def test_maximum_ufunc_keeps_the_snippet_semantics_at_nan_and_signed_zero():
    x = np.array([0.0, -0.0, np.nan, 1.0, -np.inf], np.float32)
    y = np.array([-0.0, 0.0, 1.0, np.nan, -np.inf], np.float32)
    got = tf.maximum(tf.tensor(x), tf.tensor(y)).numpy()
    want = np.where((x > y) | (x != x), x, y)
    assert np.array_equal(np.signbit(got), np.signbit(want))
    np.testing.assert_array_equal(got, want)


_SPECIAL = np.array([0.0, -0.0, 1.0, -2.5, np.inf, -np.inf, np.nan, 1e-40, -3e38])


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "bool"])
def test_where_selects_bits_exactly_as_np_where(dtype):
    """where runs as a selection of bits (interpret._select), with a +0 branch as one
    multiply (_keep_where); -0.0 constants, NaNs, broadcasting and every dtype keep np.where's
    exact result."""
    npdt = np.dtype(dtype)
    rng = np.random.default_rng(1)
    x = rng.choice(_SPECIAL, (8, 9)).astype(npdt) if npdt.kind == "f" else rng.integers(-3, 3, (8, 9)).astype(npdt)
    y = rng.choice(_SPECIAL, (1, 9)).astype(npdt) if npdt.kind == "f" else rng.integers(-3, 3, (1, 9)).astype(npdt)
    c = rng.random((8, 1)) < 0.5
    c_full = rng.random((8, 9)) < 0.5
    tx, ty, tc, tcf = (tf.tensor(v, dtype=dt) for v, dt in
                       ((x, dtype), (y, dtype), (c, "bool"), (c_full, "bool")))
    zero = np.zeros((), npdt)
    cases = [(tf.where(tc, tx, ty), np.where(c, x, y)),
             (tf.where(tcf, tx, tf.zeros_like(tx)), np.where(c_full, x, zero)),
             (tf.where(tcf, tf.zeros_like(tx), tx), np.where(c_full, zero, x))]
    if npdt.kind == "f":
        cases.append((tf.where(tcf, tf.scalar(-0.0, dtype), tx), np.where(c_full, npdt.type(-0.0), x)))
    plan, _ = _plan([t for t, _ in cases])
    source = "\n".join(interpret.compile_group(g, np).source for g in plan.groups)
    assert "_select(" in source and "_keep_where(" in source
    for got, want in cases:
        got = got.numpy()
        assert got.dtype == want.dtype and got.tobytes() == np.ascontiguousarray(want).tobytes(), (got, want)


def test_chains_write_temporaries_in_place(in_place_targets):
    x, w = tf.tensor(np.random.rand(64).astype(np.float32)), tf.tensor(np.random.rand(64).astype(np.float32))
    plan, _ = _plan([tf.exp(-tf.tanh(x * w + w) * x)])
    fn = interpret.compile_group(plan.groups[0], np)
    assert in_place_targets(fn)
    assert "asarray" not in fn.source    # dtypes settled when the plan was built


def test_outputs_never_alias_inputs_or_each_other():
    a = tf.tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    plan, leaves = _plan([a * 2.0, tf.transpose(a), tf.exp(a), tf.exp(a) * 3.0])
    inputs = [leaf.buf for leaf in leaves]
    outs = current().run(plan, inputs)
    for i, o in enumerate(outs):
        assert o.flags.c_contiguous
        assert not any(np.shares_memory(o, buf) for buf in inputs)
        assert not any(np.shares_memory(o, other) for other in outs[i + 1:])


def test_rank0_values_come_back_as_arrays():
    s = tf.scalar(2.0)
    out = (s * s + s).numpy()
    assert isinstance(out, np.ndarray) and out.shape == () and out == 6.0


def test_a_buffer_seen_through_a_view_is_not_overwritten():
    """A transpose is a view of its source: writing a later step into the source's buffer
    (out=) while the view is still read gave wrong gradients (found by gpugrad selfcheck)."""
    from gpugrad.testing import check_grads
    x = np.random.default_rng(10080).uniform(-2, 2, (1, 1, 5))

    def f(v):
        v1 = tf.logsumexp(v, [0, 2], True)
        v2 = tf.prod(tf.sigmoid(v) + 0.5, [1, 2], True)
        v3 = tf.sqrt(1 + v1 * v1)
        picked = tf.where(tf.tensor([[[False]]]), v3, v2)
        return tf.sum(tf.transpose(picked, [0, 2, 1]) / (tf.square(v3) + 1))
    check_grads(f, [x], order=1)


def test_output_shapes_and_layouts_are_settled_when_the_plan_is_built():
    """A plan's runner reshapes an output only where its group writes another shape (a
    reduction's kept axes) and tests no shape per call; results with at most one axis longer
    than 1 are handed out without a contiguity test (any fresh array of such a shape is)."""
    x = tf.tensor(np.random.rand(16).astype(np.float32))
    m = tf.tensor(np.random.rand(4, 3).astype(np.float32))
    plan, leaves = _plan([tf.sum(x * x), tf.exp(x) * 2.0, tf.sum(m * m, 1), tf.transpose(m) * 3.0])
    run = interpret.compile_shared_plan(plan)
    assert ".shape ==" not in run.source and ".reshape(" in run.source
    group_sources = "\n".join(interpret.compile_group(g, np).source for g in plan.groups)
    assert group_sources.count("c_contiguous") == 1  # only the transpose's (3, 4) result is tested
    outs = run([leaf.buf for leaf in leaves])
    assert [o.shape for o in outs] == [(), (16,), (4,), (3, 4)]
    assert all(o.flags.c_contiguous for o in outs)
    assert [o.tobytes() for o in outs] == [o.tobytes() for o in interpret.compile_plan(
        plan, [interpret.group_function(g, np) for g in plan.groups])([leaf.buf for leaf in leaves])]


def test_a_plan_of_one_group_is_one_function():
    x, w = tf.tensor(np.random.rand(16).astype(np.float32)), tf.tensor(np.random.rand(16).astype(np.float32))
    y = tf.sigmoid(x * w)
    plan, leaves = _plan([tf.sum(y), y, y * 2.0, tf.sum(y)])
    assert len(plan.groups) == 1
    run = interpret.compile_shared_plan(plan)
    assert "slots[" not in run.source.split("return")[-1] and "g0" not in run.source
    inputs = [leaf.buf for leaf in leaves]
    before = list(inputs)
    got = run(inputs)
    assert len(inputs) == len(before) and all(a is b for a, b in zip(inputs, before))   # untouched
    want = interpret.compile_plan(plan, [interpret.group_function(plan.groups[0], np)])(inputs)
    assert [(o.shape, o.dtype, o.tobytes()) for o in got] == [(o.shape, o.dtype, o.tobytes()) for o in want]


def _float_snippets():
    from gpugrad.core.primitives import elementwise as records
    return [(p.name, p.arity) for p in records() if p.arity in (1, 2)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_snippets_computed_in_one_array_give_the_same_bits(dtype):
    """numpy_function_in_place: the snippet's ufuncs into one array, bit for bit what the
    snippet gives (special values included), leaving its operands as they were."""
    from gpugrad.core.snippets import numpy_function, numpy_function_in_place
    special = np.array([0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 3.0, np.inf, -np.inf, np.nan, 1e-30, 88.0,
                        -88.0, 700.0], dtype)
    rng = np.random.default_rng(0)
    values = np.concatenate([special, rng.normal(0, 3, 50).astype(dtype)])
    used = 0
    for name, arity in _float_snippets():
        fn = numpy_function_in_place(name, arity, dtype)
        if fn is None:
            continue
        used += 1
        args = [values] if arity == 1 else list(np.meshgrid(values, values))
        args = [a.copy() for a in args]
        before = [a.copy() for a in args]
        with np.errstate(all="ignore"):
            want, got = np.asarray(numpy_function(name, arity, dtype)(*args)), fn(*args)
        assert got.dtype == want.dtype and got.shape == want.shape, name
        assert got.view(np.uint8).tobytes() == want.view(np.uint8).tobytes() or \
            np.array_equal(got, want, equal_nan=True) and (np.signbit(got) == np.signbit(want)).all(), name
        for a, b in zip(args, before):
            np.testing.assert_array_equal(a, b)
        assert all(got is not a for a in args)
    assert used >= 3   # sigmoid's and others' several steps
    assert numpy_function_in_place("less", 2, dtype) is None   # a comparison: no float steps
    assert numpy_function_in_place("sigmoid", 1, "int32") is None


def test_a_multi_step_snippet_runs_in_one_array_in_the_plan():
    from gpugrad.core.snippets import numpy_function_in_place
    xn = np.linspace(-3, 3, 64, dtype=np.float32)
    x = tf.tensor(xn)
    plan, leaves = _plan([tf.sigmoid(x)])
    fn = interpret.compile_group(plan.groups[0], np)
    assert numpy_function_in_place("sigmoid", 1, "float32") in fn.__globals__.values()
    out = interpret.compile_shared_plan(plan)([leaf.buf for leaf in leaves])[0]
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(out, (np.float32(1) / (np.float32(1) + np.exp(-xn))))


@pytest.mark.parametrize("fast", [True, False], ids=["contextvar", "errstate"])
def test_plan_functions_ignore_fp_errors_and_restore_the_callers_state(monkeypatch, fast):
    """A compiled numpy plan sets numpy's error state itself (backends/fp_state.py): through
    numpy's context variable where numpy has it, np.errstate otherwise (older numpy)."""
    from gpugrad.backends import fp_state
    if not fast:
        monkeypatch.setattr(fp_state, "FAST", False)
        monkeypatch.setattr(fp_state, "NAMESPACE", {"_np": np})
    elif not fp_state.FAST:
        pytest.skip("this numpy has no error-state context variable")
    x = tf.tensor(np.array([0.0, 1.0, -1.0], np.float32))
    plan, leaves = _plan([tf.log(x) * x, tf.sum(1.0 / x)])   # -inf, NaN, 1/0
    one_group = interpret.compile_shared_plan(plan)
    several = interpret.compile_plan(plan, [interpret.group_function(g, np) for g in plan.groups],
                                     ignoring_fp_errors=True)
    for run in (one_group, several):
        assert ("errstate" in run.source) is not fast
        with np.errstate(all="raise"):
            first, total = run([leaf.buf for leaf in leaves])
            assert np.isnan(first[0]) and first[1] == 0 and np.isnan(first[2]) and np.isinf(total)
            with pytest.raises(FloatingPointError):   # the caller's state is back
                np.log(np.zeros(1, np.float32))
    with np.errstate(all="raise"):   # (the optimizers' executor sets it this way)
        token = fp_state.ignore_fp_errors()
        try:
            np.log(np.zeros(1, np.float32))
        finally:
            fp_state.restore_fp_errors(token)
        with pytest.raises(FloatingPointError):
            np.log(np.zeros(1, np.float32))
