"""variable_grads and its family against TFJS_SEMANTICS.md sections 2-5 and 7.

Auto variable names come from a process-wide counter, so these tests read the names the
variables got (v.name) or give unique explicit names, and dispose what they make.
"""
from __future__ import annotations

import gc
import re
import uuid
import weakref

import numpy as np
import pytest

import gpugrad as tf

# --- helpers ---------------------------------------------------------------------------------


def uname(prefix: str = "v") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def mk():
    """mk(values, **kw) -> a variable that is disposed after the test."""
    made = []

    def make(values, **kw):
        v = tf.variable(values if isinstance(values, tf.Tensor) else tf.tensor(values), **kw)
        made.append(v)
        return v

    yield make
    for v in made:
        v.dispose()


def np32(x):
    return np.asarray(x, dtype=np.float32)


def assert_close(t, expected, dtype="float32"):
    assert isinstance(t, tf.Tensor)
    assert t.dtype == dtype
    np.testing.assert_allclose(t.numpy(), np.asarray(expected, dtype=np.float64), rtol=1e-6, atol=1e-6)


def seed_f(p, q, r):
    return lambda: p.add(r.square()).mul(q.add(r)).sum()


NO_CONNECTION = (
    "Cannot find a connection between any variable and the result of the loss function y=f(x). "
    "Please make sure the operations that use variables are inside the function f passed to "
    "minimize().")
NOT_CONNECTED_ONE = (
    "Cannot compute gradient of y=f(x) with respect to x. Make sure that the f you passed "
    "encloses all operations that lead from x to y.")
NOT_CONNECTED_SOME = (
    "Cannot compute gradient of y=f(x) with respect to x. Make sure that\n"
    "    the f you passed encloses all operations that lead from x to y.")
VAR_LIST_MSG = "The var_list passed in variable_grads(f, var_list) must be an array of variables"
VAR_LIST_PREFIX = "The var_list passed in variable_grads(f, var_list) must be"
NOT_TENSOR = "The result y returned by f() must be a tensor."


def none_trainable(n: int) -> str:
    return ("variable_grads() expects at least one of the input variables to be trainable, but "
            f"none of the {n} variables is trainable.")


def not_scalar(rank: int) -> str:
    return (f"The f passed in variable_grads(f) must return a scalar, but it returned a "
            f"rank-{rank} tensor")


# --- section 2: results ------------------------------------------------------------------------


def test_seed_with_default_var_list(mk):
    p, q = mk([9, 6]), mk([7, 8])
    r = tf.tensor1d([3, 4])
    value, grads = tf.variable_grads(seed_f(p, q, r))
    assert value.item() == 444
    assert value.dtype == "float32" and value.shape == ()
    assert list(grads) == sorted([p.name, q.name], key=int)
    assert_close(grads[p.name], [10, 12])
    assert_close(grads[q.name], [18, 22])


def test_result_is_named_tuple(mk):
    p = mk([1.0, 2.0])
    out = tf.variable_grads(lambda: p.square().sum(), [p])
    assert out.value is out[0] and out.grads is out[1]
    assert isinstance(out.grads, dict)


def test_explicit_var_list_limits_the_keys(mk):
    p, q = mk([9, 6]), mk([7, 8])
    r = tf.tensor1d([3, 4])
    value, grads = tf.variable_grads(seed_f(p, q, r), [q])
    assert value.item() == 444
    assert list(grads) == [q.name]
    assert_close(grads[q.name], [18, 22])


def test_default_var_list_includes_all_registered_trainable(mk):
    a, b, c = mk([1.0]), mk([2.0], name=uname("b")), mk([3.0])
    value, grads = tf.variable_grads(lambda: a.mul(b).mul(c).sum())
    assert value.item() == 6
    assert set(grads) == {a.name, b.name, c.name}
    assert_close(grads[a.name], [6])
    assert_close(grads[b.name], [3])
    assert_close(grads[c.name], [2])


def test_non_trainable_in_explicit_list_maps_to_none_after_trainable(mk):
    a = mk([1.0, 2.0], name=uname("a"))
    frozen = mk([3.0, 4.0], trainable=False, name=uname("frozen"))
    b = mk([5.0, 6.0], name=uname("b"))
    value, grads = tf.variable_grads(lambda: a.mul(frozen).add(b).sum(), [frozen, a, b])
    assert value.item() == 1 * 3 + 2 * 4 + 5 + 6
    assert list(grads) == [a.name, b.name, frozen.name]
    assert grads[frozen.name] is None
    assert_close(grads[a.name], [3, 4])
    assert_close(grads[b.name], [1, 1])


def test_non_trainable_with_default_list_has_no_key(mk):
    a = mk([1.0, 2.0])
    frozen = mk([3.0, 4.0], trainable=False)
    value, grads = tf.variable_grads(lambda: a.mul(frozen).sum())
    assert value.item() == 11
    assert frozen.name not in grads
    assert list(grads) == [a.name]
    assert_close(grads[a.name], [3, 4])


def test_disconnected_trainable_variable_is_absent(mk):
    a, unused = mk([1.0, 2.0]), mk([5.0])
    # stop_gradient cuts the connection of `cut`
    cut = mk([7.0, 8.0])
    value, grads = tf.variable_grads(lambda: a.add(tf.stop_gradient(cut.mul(2))).sum(), [a, unused, cut])
    assert value.item() == 33
    assert list(grads) == [a.name]
    assert_close(grads[a.name], [1, 1])


def test_stop_gradient_of_a_variable_disconnects_it(mk):
    a, cut = mk([1.0, 2.0]), mk([7.0, 8.0])
    value, grads = tf.variable_grads(lambda: a.mul(tf.stop_gradient(cut)).sum(), [a, cut])
    assert value.item() == 23
    assert list(grads) == [a.name]
    assert_close(grads[a.name], [7, 8])


def test_stop_gradient_of_grad_argument():
    x = tf.tensor1d([1.0, 2.0])
    assert_close(tf.grad(lambda x: x.mul(tf.stop_gradient(x)).sum())(x), [1, 2])


@pytest.mark.parametrize("f, expected", [
    (lambda v: tf.relu(v).sum(), [0, 0]),
    (lambda v: tf.maximum(v, tf.tensor1d([5.0, 5.0])).sum(), [0, 0]),
    (lambda v: v.mul(0).sum(), [0, 0]),
    (lambda v: tf.sign(v).sum(), [0, 0]),
], ids=["relu-off", "maximum-losing-side", "times-zero", "sign"])
def test_zero_gradient_is_present(mk, f, expected):
    v = mk([-1.0, -2.0])
    _, grads = tf.variable_grads(lambda: f(v), [v])
    assert list(grads) == [v.name]
    assert_close(grads[v.name], expected)


def test_duplicate_in_var_list_gives_one_key_not_doubled(mk):
    a = mk([1.0, 2.0])
    _, grads = tf.variable_grads(lambda: a.square().sum(), [a, a])
    assert list(grads) == [a.name]
    assert_close(grads[a.name], [2, 4])


def test_f_returning_the_scalar_variable_itself(mk):
    s = mk(tf.scalar(3.5))
    value, grads = tf.variable_grads(lambda: s, [s])
    assert value.item() == 3.5
    assert value is not s and not isinstance(value, tf.Variable)
    assert_close(grads[s.name], 1.0)
    # the value is a tensor of its own: a later assign does not change it
    s.assign(tf.scalar(9.0))
    assert value.item() == 3.5
    value2, grads2 = tf.variable_grads(lambda: s, [s])
    assert value2.item() == 9.0
    assert_close(grads2[s.name], 1.0)


def test_value_is_a_fresh_tensor(mk):
    a = mk([1.0, 2.0])
    value, grads = tf.variable_grads(lambda: a.square().sum(), [a])
    assert not isinstance(value, tf.Variable)
    assert not isinstance(grads[a.name], tf.Variable)
    assert grads[a.name] is not a
    a.assign(tf.tensor1d([10.0, 20.0]))
    assert value.item() == 5
    assert_close(grads[a.name], [2, 4])


def test_int32_variable_sum(mk):
    vi = mk(tf.tensor1d([1, 2], dtype="int32"))
    assert vi.dtype == "int32"
    value, grads = tf.variable_grads(lambda: vi.sum(), [vi])
    assert value.dtype == "int32"
    assert value.item() == 3
    assert_close(grads[vi.name], [1, 1])


def test_int32_variable_square(mk):
    vi = mk(tf.tensor1d([1, 2], dtype="int32"))
    value, grads = tf.variable_grads(lambda: vi.mul(vi).sum(), [vi])
    assert value.dtype == "int32" and value.item() == 5
    assert_close(grads[vi.name], [2, 4])


def test_bool_variable_gradient_is_float32(mk):
    vb = mk(tf.tensor([True, False]))
    assert vb.dtype == "bool"
    value, grads = tf.variable_grads(lambda: tf.cast(vb, "float32").mul(tf.tensor1d([2.0, 3.0])).sum(), [vb])
    assert value.item() == 2
    assert_close(grads[vb.name], [2, 3])


def test_float_variable_cast_to_int32_inside_f(mk):
    v = mk([1.5, 2.5])
    value, grads = tf.variable_grads(lambda: tf.cast(v, "int32").sum(), [v])
    assert value.dtype == "int32"
    assert value.item() == 3
    assert_close(grads[v.name], [1, 1])


def test_key_order_auto_name_before_letters(mk):
    """varList [b, a] with a auto-named (integer-like) gives keys [a, b]."""
    a = mk([1.0])
    b = mk([2.0], name=uname("b"))
    assert a.name.isdigit()
    _, grads = tf.variable_grads(lambda: a.mul(b).sum(), [b, a])
    assert list(grads) == [a.name, b.name]


def test_key_order_explicit_integer_like_name_first(mk):
    """varList [z, y, "7"] gives keys ["7", "z", "y"]: an integer-like name (one no auto name
    will reach) first, then the rest in varList order."""
    seven = str(3_000_000_000 + uuid.uuid4().int % 1_000_000)
    z, y = mk([1.0], name=uname("z")), mk([2.0], name=uname("y"))
    n = mk([3.0], name=seven)
    _, grads = tf.variable_grads(lambda: z.add(y).add(n).sum(), [z, y, n])
    assert list(grads) == [seven, z.name, y.name]


def test_key_order_integer_like_names_ascending(mk):
    base = 2_000_000_000 + uuid.uuid4().int % 1_000_000
    big, small = mk([1.0], name=str(base + 20)), mk([2.0], name=str(base + 3))
    other = mk([3.0], name=uname("m"))
    auto = mk([4.0])
    _, grads = tf.variable_grads(lambda: big.add(small).add(other).add(auto).sum(), [other, big, small, auto])
    assert list(grads) == [auto.name, str(base + 3), str(base + 20), other.name]


def test_key_order_non_trainable_integer_like_name_comes_first(mk):
    """namedGrads is a JS object: a null entry under an auto name still sorts first."""
    frozen = mk([1.0], trainable=False)
    b = mk([2.0], name=uname("b"))
    _, grads = tf.variable_grads(lambda: frozen.mul(b).sum(), [b, frozen])
    assert list(grads) == [frozen.name, b.name]
    assert grads[frozen.name] is None


@pytest.mark.parametrize("odd", [
    "007", "-1", "1.5",
    "4294967295",
])
def test_key_order_names_that_are_not_array_indices_keep_var_list_order(mk, odd):
    """JS sorts only array-index keys (canonical integers below 2**32 - 1) first; "007", "-1",
    "4294967295" and "1.5" are ordinary keys and keep insertion order."""
    name = odd if odd != "007" else "0" + str(10_000 + uuid.uuid4().int % 1_000_000)
    first = mk([1.0], name=uname("first"))
    o = mk([2.0], name=name)
    try:
        _, grads = tf.variable_grads(lambda: first.add(o).sum(), [first, o])
        assert list(grads) == [first.name, name]
    finally:
        o.dispose()


# --- section 2: checks, in order -------------------------------------------------------------


@pytest.mark.parametrize("f", [5, None, "f", [lambda: None]])
def test_f_not_a_function(f):
    with pytest.raises(TypeError, match=re.escape("The f passed in variable_grads(f) must be a function")):
        tf.variable_grads(f)


def test_f_check_runs_before_var_list_check():
    with pytest.raises(TypeError, match=re.escape("The f passed in variable_grads(f) must be a function")):
        tf.variable_grads(3, "not a list")


def test_var_list_message_text(mk):
    a = mk([1.0])
    with pytest.raises(TypeError, match=re.escape(VAR_LIST_MSG)):
        tf.variable_grads(lambda: a.sum(), a)


@pytest.mark.parametrize("bad", [
    "variable",                       # not a list: the variable itself (made below)
    "string",
    "plain-tensor-in-list",
    "number-in-list",
    "dict",
], ids=str)
def test_var_list_not_a_list_of_variables(mk, bad):
    a = mk([1.0])
    var_list = {
        "variable": a,
        "string": "a",
        "plain-tensor-in-list": [a, tf.tensor1d([1.0])],
        "number-in-list": [a, 3],
        "dict": {a.name: a},
    }[bad]
    with pytest.raises(TypeError, match=re.escape(VAR_LIST_PREFIX)):
        tf.variable_grads(lambda: a.sum(), var_list)


def test_var_list_tuple_of_variables_is_accepted(mk):
    a = mk([1.0, 2.0])
    _, grads = tf.variable_grads(lambda: a.sum(), (a,))
    assert_close(grads[a.name], [1, 1])


def test_var_list_duck_typed_variable_passes_the_list_check(mk):
    """TF.js's `instanceof Variable` is duck typed: a Tensor with an assign function counts."""
    a = mk([1.0, 2.0])

    class Duck(tf.Tensor):
        __slots__ = ()

        def assign(self, value):  # pragma: no cover - never called
            raise AssertionError

    duck = tf.tensor1d([1.0]).realize()
    duck.__class__ = Duck
    # passes the var_list check; it is not trainable-marked, so it is not the list error
    with pytest.raises(Exception) as info:
        tf.variable_grads(lambda: a.sum(), [duck])
    assert VAR_LIST_PREFIX not in str(info.value)


def test_var_list_check_runs_before_trainable_check():
    with pytest.raises(TypeError, match=re.escape(VAR_LIST_PREFIX)):
        tf.variable_grads(lambda: tf.scalar(1.0), [3])


def test_no_trainable_empty_list():
    called = []
    with pytest.raises(ValueError, match=re.escape(none_trainable(0))):
        tf.variable_grads(lambda: called.append(1) or tf.scalar(1.0), [])
    assert called == []  # checked before f runs


def test_no_trainable_only_frozen(mk):
    frozen = mk([1.0], trainable=False)
    frozen2 = mk([2.0], trainable=False)
    with pytest.raises(ValueError, match=re.escape(none_trainable(1))):
        tf.variable_grads(lambda: frozen.sum(), [frozen])
    with pytest.raises(ValueError, match=re.escape(none_trainable(2))):
        tf.variable_grads(lambda: frozen.sum(), [frozen, frozen2])


def test_no_trainable_none_registered():
    gc.collect()
    tf.dispose_variables()
    with pytest.raises(ValueError, match=re.escape(none_trainable(0))):
        tf.variable_grads(lambda: tf.scalar(1.0))


def test_no_trainable_default_list_counts_all_registered():
    gc.collect()
    tf.dispose_variables()
    frozen = tf.variable(tf.tensor1d([1.0]), trainable=False)
    try:
        with pytest.raises(ValueError, match=re.escape(none_trainable(1))):
            tf.variable_grads(lambda: frozen.sum())
    finally:
        frozen.dispose()


def test_trainable_check_runs_before_f():
    with pytest.raises(ValueError, match=re.escape(none_trainable(0))):
        tf.variable_grads(lambda: 3.0, [])


@pytest.mark.parametrize("result", [3.0, None, [1.0, 2.0], np.float32(1.0), np.array(1.0, dtype=np.float32)],
                         ids=["number", "None", "list", "np-scalar", "np-array"])
def test_result_not_a_tensor(mk, result):
    a = mk([1.0])
    with pytest.raises(TypeError, match=re.escape(NOT_TENSOR)):
        tf.variable_grads(lambda: (a.sum(), result)[1], [a])


def test_result_check_runs_before_connection_check(mk):
    a = mk([1.0])
    with pytest.raises(TypeError, match=re.escape(NOT_TENSOR)):
        tf.variable_grads(lambda: 1.0, [a])


def test_no_connection_constant_result(mk):
    a = mk([1.0])
    with pytest.raises(ValueError, match=re.escape(NO_CONNECTION)):
        tf.variable_grads(lambda: tf.scalar(2.0), [a])


def test_no_connection_variable_used_only_outside_f(mk):
    a = mk([1.0, 2.0])
    outside = a.square().sum()
    with pytest.raises(ValueError, match=re.escape(NO_CONNECTION)):
        tf.variable_grads(lambda: outside, [a])
    # realized outside f: still a constant to f
    outside.realize()
    with pytest.raises(ValueError, match=re.escape(NO_CONNECTION)):
        tf.variable_grads(lambda: outside.mul(2), [a])


def test_no_connection_only_through_stop_gradient(mk):
    a = mk([1.0, 2.0])
    with pytest.raises(ValueError, match=re.escape(NO_CONNECTION)):
        tf.variable_grads(lambda: tf.stop_gradient(a.square()).sum(), [a])


def test_no_connection_default_list(mk):
    mk([1.0])
    with pytest.raises(ValueError, match=re.escape(NO_CONNECTION)):
        tf.variable_grads(lambda: tf.scalar(2.0))


def test_no_connection_f_returns_another_variable(mk):
    s, o = mk(tf.scalar(2.0)), mk(tf.scalar(3.0))
    with pytest.raises(ValueError, match=re.escape(NO_CONNECTION)):
        tf.variable_grads(lambda: s, [o])


@pytest.mark.parametrize("rank", [1, 2])
def test_non_scalar_result(mk, rank):
    a = mk(np.ones((2,) * rank, np.float32))
    with pytest.raises(ValueError, match=re.escape(not_scalar(rank))):
        tf.variable_grads(lambda: a.square(), [a])


def test_connection_check_runs_before_rank_check(mk):
    a = mk([1.0])
    with pytest.raises(ValueError, match=re.escape(NO_CONNECTION)):
        tf.variable_grads(lambda: tf.tensor1d([1.0, 2.0]), [a])


def test_disposed_variable_used(mk):
    a = mk([1.0])
    b = tf.variable(tf.tensor1d([2.0]), name=uname("b"))
    b.dispose()
    with pytest.raises(ValueError, match=re.escape("Tensor is disposed.")):
        tf.variable_grads(lambda: a.add(b).sum(), [a])
    with pytest.raises(ValueError, match=re.escape("Tensor is disposed.")):
        tf.variable_grads(lambda: a.add(b).sum())


# --- repeated calls, constants, exceptions ---------------------------------------------------


def test_repeated_calls_after_assign(mk):
    p, q = mk([9.0, 6.0]), mk([7.0, 8.0])
    r = tf.tensor1d([3.0, 4.0])
    rng = np.random.default_rng(0)
    for i in range(6):
        pv, qv = rng.normal(size=2).astype(np.float32), rng.normal(size=2).astype(np.float32)
        p.assign(tf.tensor1d(pv))
        q.assign(tf.tensor1d(qv))
        value, grads = tf.variable_grads(seed_f(p, q, r), [p, q])
        rv = np32([3, 4])
        np.testing.assert_allclose(value.item(), np.sum((pv + rv * rv) * (qv + rv)), rtol=1e-5)
        assert_close(grads[p.name], qv + rv)
        assert_close(grads[q.name], pv + rv * rv)


def test_repeated_calls_same_structure_other_variables(mk):
    """A cached plan found by structure must read the variables of this call."""
    r = tf.tensor1d([3.0, 4.0])
    pairs = [(mk([float(i), 1.0]), mk([2.0, float(-i)])) for i in range(4)]
    for _ in range(2):
        for i, (p, q) in enumerate(pairs):
            value, grads = tf.variable_grads(seed_f(p, q, r), [p, q])
            pv, qv, rv = np32([i, 1]), np32([2, -i]), np32([3, 4])
            assert value.item() == pytest.approx(float(np.sum((pv + rv * rv) * (qv + rv))))
            assert_close(grads[p.name], qv + rv)
            assert_close(grads[q.name], pv + rv * rv)


def test_repeated_calls_var_list_changes(mk):
    """Same f, different var_lists: the cache must not reuse another list's gradients."""
    p, q = mk([9.0, 6.0]), mk([7.0, 8.0])
    r = tf.tensor1d([3.0, 4.0])
    f = seed_f(p, q, r)
    for _ in range(2):
        _, g1 = tf.variable_grads(f, [p, q])
        _, g2 = tf.variable_grads(f, [q, p])
        _, g3 = tf.variable_grads(f, [q])
        _, g4 = tf.variable_grads(f, [p])
        for g in (g1, g2):
            assert set(g) == {p.name, q.name}
            assert_close(g[p.name], [10, 12])
            assert_close(g[q.name], [18, 22])
        assert list(g3) == [q.name]
        assert_close(g3[q.name], [18, 22])
        assert list(g4) == [p.name]
        assert_close(g4[p.name], [10, 12])


def test_repeated_calls_variable_swapped_with_constant(mk):
    """The same graph shape with a variable in one call and a constant in the next."""
    a, b = mk([1.0, 2.0]), mk([3.0, 4.0])
    c = tf.tensor1d([5.0, 6.0]).realize()
    for _ in range(2):
        _, g = tf.variable_grads(lambda: a.mul(b).sum(), [a, b])
        assert_close(g[a.name], [3, 4])
        assert_close(g[b.name], [1, 2])
        _, g = tf.variable_grads(lambda: a.mul(c).sum(), [a, b])
        assert list(g) == [a.name]
        assert_close(g[a.name], [5, 6])
        _, g = tf.variable_grads(lambda: a.mul(a).sum(), [a, b])
        assert list(g) == [a.name]
        assert_close(g[a.name], [2, 4])


def test_variables_used_outside_f_are_constants(mk):
    v1, v2 = mk([1.0, 2.0]), mk([3.0, 4.0])
    c = v2.mul(2)  # built outside f: a constant to f
    value, grads = tf.variable_grads(lambda: v1.mul(c).sum(), [v1, v2])
    assert value.item() == 1 * 6 + 2 * 8
    assert list(grads) == [v1.name]
    assert_close(grads[v1.name], [6, 8])
    # both inside: both connected
    value, grads = tf.variable_grads(lambda: v1.mul(v2.mul(2)).sum(), [v1, v2])
    assert_close(grads[v1.name], [6, 8])
    assert_close(grads[v2.name], [2, 4])


def test_lazy_expression_built_before_assign_keeps_old_value(mk):
    v = mk([1.0, 2.0])
    old = v.mul(1)
    v.assign(tf.tensor1d([5.0, 6.0]))
    value, grads = tf.variable_grads(lambda: v.mul(old).sum(), [v])
    assert value.item() == 5 + 12
    assert_close(grads[v.name], [1, 2])


class Boom(Exception):
    pass


def test_exception_in_f_leaves_engine_and_variables_intact(mk):
    p, q = mk([9.0, 6.0]), mk([7.0, 8.0])
    r = tf.tensor1d([3.0, 4.0])

    def bad():
        p.add(r.square()).mul(q.add(r))  # some ops first
        raise Boom("inside f")

    for _ in range(2):
        with pytest.raises(Boom):
            tf.variable_grads(bad, [p, q])
        np.testing.assert_array_equal(p.numpy(), np32([9, 6]))
        np.testing.assert_array_equal(q.numpy(), np32([7, 8]))
        value, grads = tf.variable_grads(seed_f(p, q, r), [p, q])
        assert value.item() == 444
        assert_close(grads[p.name], [10, 12])
        assert_close(grads[q.name], [18, 22])
    # and differentiation entry points still work at top level (no leftover nesting)
    assert_close(tf.grad(lambda x: x.square())(tf.tensor1d([1.0, 2.0])), [2, 4])


def test_exception_in_nested_f_leaves_engine_intact(mk):
    a = mk([1.0, 2.0])

    def outer(x):
        tf.variable_grads(lambda: (_ for _ in ()).throw(Boom("deep")), [a])
        return x

    with pytest.raises(Boom):
        tf.grad(outer)(tf.tensor1d([1.0]))
    value, grads = tf.variable_grads(lambda: a.square().sum(), [a])
    assert value.item() == 5
    assert_close(grads[a.name], [2, 4])


def test_error_check_inside_f_leaves_engine_intact(mk):
    a = mk([1.0, 2.0])
    with pytest.raises(ValueError, match=re.escape(not_scalar(1))):
        tf.variable_grads(lambda: a.square(), [a])
    with pytest.raises(TypeError, match=re.escape(NOT_TENSOR)):
        tf.variable_grads(lambda: a.sum().numpy(), [a])
    value, grads = tf.variable_grads(lambda: a.square().sum(), [a])
    assert value.item() == 5
    assert_close(grads[a.name], [2, 4])




def test_cache_does_not_confuse_stop_gradient_with_plain(mk):
    x = np.arange(1.0, 12.0)  # odd sizes, so these plans are not found by other tests
    v = mk(x)
    _, g = tf.variable_grads(lambda: v.mul(tf.stop_gradient(v.mul(2))).sum(), [v])
    assert_close(g[v.name], 2 * x)
    _, g = tf.variable_grads(lambda: v.mul(v.mul(2)).sum(), [v])
    assert_close(g[v.name], 4 * x)


def test_cache_does_not_confuse_plain_with_stop_gradient(mk):
    x = np.arange(1.0, 14.0)
    w = mk(x)
    _, g = tf.variable_grads(lambda: w.mul(w.mul(3)).sum(), [w])
    assert_close(g[w.name], 6 * x)
    _, g = tf.variable_grads(lambda: w.mul(tf.stop_gradient(w.mul(3))).sum(), [w])
    assert_close(g[w.name], 3 * x)


def test_cache_does_not_confuse_custom_grad_with_plain(mk):
    op = tf.custom_grad(lambda x, save: {"value": x.square(), "grad_func": lambda dy, s: [dy.mul(10)]})
    x = np.arange(1.0, 18.0)
    u = mk(x)
    _, g = tf.variable_grads(lambda: op(u).sum(), [u])
    assert_close(g[u.name], [10] * 17)
    _, g = tf.variable_grads(lambda: u.square().sum(), [u])
    assert_close(g[u.name], 2 * x)


def test_cache_does_not_confuse_two_custom_grads(mk):
    op1 = tf.custom_grad(lambda x, save: {"value": x.square(), "grad_func": lambda dy, s: [dy.mul(10)]})
    op2 = tf.custom_grad(lambda x, save: {"value": x.square(), "grad_func": lambda dy, s: [dy.mul(-1)]})
    u = mk(np.arange(1.0, 20.0))
    _, g = tf.variable_grads(lambda: op1(u).sum(), [u])
    assert_close(g[u.name], [10] * 19)
    _, g = tf.variable_grads(lambda: op2(u).sum(), [u])
    assert_close(g[u.name], [-1] * 19)


# --- second order -----------------------------------------------------------------------------


def test_grad_of_a_function_that_calls_variable_grads(mk):
    v = mk([1.0, 2.0])

    def inner_grad_sum(x):
        _, grads = tf.variable_grads(lambda: v.mul(x).square().sum(), [v])
        return grads[v.name].sum()  # sum(2 v x^2)

    x = tf.tensor1d([3.0, 4.0])
    assert_close(tf.grad(inner_grad_sum)(x), [4 * 1 * 3, 4 * 2 * 4])
    # twice: the cached top-level path must not interfere with the nested one
    assert_close(tf.grad(inner_grad_sum)(x), [12, 32])
    _, grads = tf.variable_grads(lambda: v.mul(x).square().sum(), [v])
    assert_close(grads[v.name], [2 * 1 * 9, 2 * 2 * 16])


def test_second_order_value_of_inner_variable_grads(mk):
    v = mk(tf.scalar(2.0))

    def f(x):
        value, grads = tf.variable_grads(lambda: v.mul(x).mul(x).mul(x), [v])
        return value.add(grads[v.name])   # v x^3 + x^3

    # d/dx = 3 v x^2 + 3 x^2 at x=1.5, v=2
    assert_close(tf.grad(f)(tf.scalar(1.5)), 3 * 2 * 2.25 + 3 * 2.25)


# --- section 3: grad, grads, value_and_grad, value_and_grads ----------------------------------


def test_grad_basic_and_dy():
    g = tf.grad(lambda x: x.square())
    x = tf.tensor1d([1.0, 2.0])
    assert_close(g(x), [2, 4])
    assert_close(g(x, tf.tensor1d([1.0, 10.0])), [2, 40])
    assert_close(g(x, [1.0, 10.0]), [2, 40])  # TensorLike dy


def test_grad_non_scalar_default_dy_is_ones():
    g = tf.grad(lambda x: x.mul(tf.tensor1d([3.0, 5.0])))
    assert_close(g(tf.tensor1d([1.0, 2.0])), [3, 5])


def test_grad_tensor_like_x():
    assert_close(tf.grad(lambda x: x.square())([1.0, 2.0]), [2, 4])
    assert_close(tf.grad(lambda x: x.mul(x).mul(x))(2.0), 12.0)


def test_grad_using_x_twice_accumulates():
    g = tf.grad(lambda x: x.mul(x).add(x))
    assert_close(g(tf.tensor1d([1.0, 3.0])), [3, 7])


def test_grad_int32_x_gives_float32():
    g = tf.grad(lambda x: x.mul(x))
    out = g(tf.tensor1d([1, 2], dtype="int32"))
    assert_close(out, [2, 4], dtype="float32")


@pytest.mark.parametrize("api", ["grad", "grads", "value_and_grads"])
def test_dy_shape_mismatch_message(api):
    f = lambda x: x.square()  # noqa: E731
    x, dy = tf.tensor1d([1.0, 2.0]), tf.scalar(1.0)
    if api == "grad":
        text = ("The shape of dy passed in grad(f)(x, dy) must match the shape returned by f(x) "
                "Shapes 2 and  must match")
        call = lambda: tf.grad(f)(x, dy)  # noqa: E731
    else:
        text = (f"The shape of dy passed in {api}(f)([x1,...], dy) must match the shape returned by "
                "f([x1,...]) Shapes 2 and  must match")
        call = lambda: getattr(tf, api)(f)([x], dy)  # noqa: E731
    with pytest.raises(ValueError, match=re.escape(text)):
        call()


def test_dy_not_broadcastable_fails_in_backprop():
    with pytest.raises(ValueError, match=re.escape("Operands could not be broadcast together with shapes 3 and 2.")):
        tf.grad(lambda x: x.square())(tf.tensor1d([1.0, 2.0]), tf.tensor1d([1.0, 2.0, 3.0]))


@pytest.mark.parametrize("api", ["grad", "grads", "value_and_grad", "value_and_grads"])
def test_dy_int32(api):
    f = lambda x: x.square()  # noqa: E731
    x, dy = tf.tensor1d([1.0, 2.0]), tf.tensor1d([1, 1], dtype="int32")
    call = {
        "grad": lambda: tf.grad(f)(x, dy),
        "grads": lambda: tf.grads(f)([x], dy),
        "value_and_grad": lambda: tf.value_and_grad(f)(x, dy),
        "value_and_grads": lambda: tf.value_and_grads(f)([x], dy),
    }[api]
    with pytest.raises(TypeError, match=re.escape("dy must have 'float32' dtype, but has 'int32'")):
        call()


def test_value_and_grad_basic():
    out = tf.value_and_grad(lambda x: x.square().sum())(tf.tensor1d([2.0, 3.0]))
    value, grad = out
    assert out.value is value and out.grad is grad
    assert value.item() == 13
    assert_close(grad, [4, 6])


def test_value_and_grad_dy_not_shape_checked_but_broadcast():
    value, grad = tf.value_and_grad(lambda x: x.square())(tf.tensor1d([2.0, 3.0]), tf.scalar(5.0))
    assert_close(value, [4, 9])
    assert_close(grad, [20, 30])


def test_value_and_grads_basic():
    out = tf.value_and_grads(lambda a, b: a.mul(b).sum())([tf.tensor1d([1.0, 2.0]), tf.tensor1d([3.0, 4.0])])
    value, grads = out
    assert out.value is value and out.grads is grads
    assert value.item() == 11
    assert len(grads) == 2
    assert_close(grads[0], [3, 4])
    assert_close(grads[1], [1, 2])


def test_value_and_grads_dy():
    value, grads = tf.value_and_grads(lambda a: a.square())([tf.tensor1d([1.0, 2.0])], tf.tensor1d([2.0, 3.0]))
    assert_close(value, [1, 4])
    assert_close(grads[0], [4, 12])


def test_grads_basic_and_tensor_like():
    g = tf.grads(lambda a, b: a.mul(b).sum())
    da, db = g([[1.0, 2.0], [3.0, 4.0]])
    assert_close(da, [3, 4])
    assert_close(db, [1, 2])
    da, db = g([tf.tensor1d([1.0, 2.0]), tf.tensor1d([3.0, 4.0])], 2.0)
    assert_close(da, [6, 8])


@pytest.mark.parametrize("api", ["grad", "grads", "value_and_grad", "value_and_grads"])
def test_f_not_a_function_family(api):
    with pytest.raises(TypeError, match=re.escape(f"The f passed in {api}(f) must be a function")):
        getattr(tf, api)(42)


def test_grads_args_not_a_list():
    with pytest.raises(TypeError, match=re.escape(
            "The args passed in grads(f)(args) must be an array of `Tensor`s or `TensorLike`s")):
        tf.grads(lambda a: a.sum())(tf.tensor1d([1.0]))


def test_value_and_grad_x_not_tensor():
    with pytest.raises(TypeError, match=re.escape("The x passed in value_and_grad(f)(x) must be a tensor")):
        tf.value_and_grad(lambda x: x.sum())([1.0, 2.0])


def test_value_and_grad_dy_not_tensor():
    with pytest.raises(TypeError, match=re.escape("The dy passed in value_and_grad(f)(x, dy) must be a tensor")):
        tf.value_and_grad(lambda x: x.sum())(tf.tensor1d([1.0]), 1.0)


@pytest.mark.parametrize("args", ["tensor", "list-with-number", "list-with-list"])
def test_value_and_grads_args_not_tensors(args):
    x = tf.tensor1d([1.0])
    value = {"tensor": x, "list-with-number": [x, 1.0], "list-with-list": [[1.0]]}[args]
    with pytest.raises(TypeError, match=re.escape("The args passed in value_and_grads(f)(args) must be array of tensors")):
        tf.value_and_grads(lambda *a: a[0].sum())(value)


def test_value_and_grads_dy_not_tensor():
    with pytest.raises(TypeError, match=re.escape("The dy passed in value_and_grads(f)(args, dy) must be a tensor")):
        tf.value_and_grads(lambda a: a.sum())([tf.tensor1d([1.0])], 1.0)


@pytest.mark.parametrize("api", ["grad", "value_and_grad"])
def test_x_not_connected(api):
    x = tf.tensor1d([1.0, 2.0])
    with pytest.raises(ValueError) as info:
        getattr(tf, api)(lambda x: tf.scalar(3.0))(x)
    assert str(info.value).startswith(NOT_CONNECTED_ONE)


@pytest.mark.parametrize("api", ["grad", "value_and_grad"])
def test_f_returning_x_itself(api):
    x = tf.tensor1d([1.0, 2.0])
    with pytest.raises(ValueError, match=re.escape(NOT_CONNECTED_ONE)):
        getattr(tf, api)(lambda x: x)(x)


@pytest.mark.parametrize("api", ["grads", "value_and_grads"])
def test_none_of_xs_connected_is_one_line(api):
    xs = [tf.tensor1d([1.0]), tf.tensor1d([2.0])]
    with pytest.raises(ValueError) as info:
        getattr(tf, api)(lambda a, b: tf.scalar(3.0))(xs)
    assert str(info.value).startswith(NOT_CONNECTED_ONE)


@pytest.mark.parametrize("api", ["grads", "value_and_grads"])
def test_some_xs_connected(api):
    xs = [tf.tensor1d([1.0]), tf.tensor1d([2.0])]
    with pytest.raises(ValueError) as info:
        getattr(tf, api)(lambda a, b: a.square().sum())(xs)
    assert str(info.value).startswith(NOT_CONNECTED_SOME)


@pytest.mark.parametrize("api", ["grad", "grads", "value_and_grad", "value_and_grads"])
def test_family_f_returns_non_tensor(api):
    x = tf.tensor1d([1.0])
    call = {
        "grad": lambda: tf.grad(lambda x: 3.0)(x),
        "grads": lambda: tf.grads(lambda x: 3.0)([x]),
        "value_and_grad": lambda: tf.value_and_grad(lambda x: 3.0)(x),
        "value_and_grads": lambda: tf.value_and_grads(lambda x: 3.0)([x]),
    }[api]
    with pytest.raises(TypeError, match=re.escape(NOT_TENSOR)):
        call()


@pytest.mark.parametrize("api", ["grads", "value_and_grads"])
def test_empty_args(api):
    with pytest.raises(ValueError, match=re.escape("gradients() received an empty list of xs.")):
        getattr(tf, api)(lambda: tf.scalar(1.0))([])


def test_grad_of_grad():
    ddx = tf.grad(tf.grad(lambda x: x.mul(x).mul(x)))
    assert_close(ddx(tf.tensor1d([1.0, 2.0])), [6, 12])


# --- section 4: custom_grad -------------------------------------------------------------------


def _docs_custom_op():
    def f(x, save):
        save([x])
        return {"value": x.square(), "grad_func": lambda dy, saved: [dy.mul(saved[0].abs())]}
    return tf.custom_grad(f)


def test_custom_grad_docs_example():
    op = _docs_custom_op()
    x = tf.tensor1d([-1.0, -2.0, 3.0])
    assert_close(op(x), [1, 4, 9])
    dx = tf.grad(lambda x: op(x))
    assert_close(dx(x), [1, 2, 3])
    dx2 = tf.grad(lambda x: dx(x))
    assert_close(dx2(x), [-1, -1, 1])


def test_custom_grad_single_tensor_for_one_input():
    op = tf.custom_grad(lambda x, save: {"value": x.square(), "grad_func": lambda dy, saved: dy.mul(7)})
    assert_close(tf.grad(lambda x: op(x))(tf.tensor1d([1.0, 2.0])), [7, 7])


def test_custom_grad_two_inputs_and_saved():
    def f(a, b, save):
        save([a, b])
        return {"value": a.mul(b), "grad_func": lambda dy, s: [dy.mul(s[1]).mul(10), dy.mul(s[0])]}
    op = tf.custom_grad(f)
    da, db = tf.grads(lambda a, b: op(a, b).sum())([tf.tensor1d([1.0, 2.0]), tf.tensor1d([3.0, 4.0])])
    assert_close(da, [30, 40])
    assert_close(db, [1, 2])


def test_custom_grad_inside_variable_grads(mk):
    op = _docs_custom_op()
    v = mk([[-1.0, -2.0, 3.0, 0.5, -0.25, 4.0, 7.0]])  # an odd shape: see the plan-cache tests
    for _ in range(2):
        value, grads = tf.variable_grads(lambda: op(v).sum(), [v])
        assert value.item() == 1 + 4 + 9 + 0.25 + 0.0625 + 16 + 49
        assert_close(grads[v.name], [[1, 2, 3, 0.5, 0.25, 4, 7]])


def test_custom_grad_f_not_a_function():
    with pytest.raises(TypeError, match=re.escape("The f passed in custom_grad(f) must be a function.")):
        tf.custom_grad(3)


def test_custom_grad_f_not_a_function_type():
    with pytest.raises(TypeError, match=r"The f passed in .*\(f\) must be a function\."):
        tf.custom_grad(3)


def test_custom_grad_args_not_tensors():
    op = _docs_custom_op()
    with pytest.raises(TypeError, match=re.escape("The args passed in custom_grad(f)(x1, x2,...) must all be tensors")):
        op([1.0, 2.0])


def test_custom_grad_value_not_tensor():
    op = tf.custom_grad(lambda x, save: {"value": 3.0, "grad_func": lambda dy, s: dy})
    with pytest.raises(TypeError, match=re.escape(
            "The function f passed in custom_grad(f) must return an object where `obj.value` is a tensor")):
        op(tf.tensor1d([1.0]))


def test_custom_grad_grad_func_not_function():
    op = tf.custom_grad(lambda x, save: {"value": x.square(), "grad_func": 3})
    with pytest.raises(TypeError, match=re.escape(
            "The function f passed in custom_grad(f) must return an object where `obj.grad_func` is a function.")):
        op(tf.tensor1d([1.0]))


def test_custom_grad_wrong_number_of_gradients():
    op = tf.custom_grad(lambda x, save: {"value": x.square(), "grad_func": lambda dy, s: [dy, dy]})
    with pytest.raises(ValueError, match=re.escape(
            "The function f passed in custom_grad(f) must return an object where `obj.grad_func` is a "
            "function that returns the same number of tensors as inputs passed to f(...).")):
        tf.grad(lambda x: op(x))(tf.tensor1d([1.0]))


def test_custom_grad_gradients_not_tensors():
    op = tf.custom_grad(lambda x, save: {"value": x.square(), "grad_func": lambda dy, s: [1.0]})
    with pytest.raises(TypeError, match=re.escape(
            "The function f passed in custom_grad(f) must return an object where `obj.grad_func` is a "
            "function that returns a list of only tensors.")):
        tf.grad(lambda x: op(x))(tf.tensor1d([1.0]))


@pytest.mark.parametrize("case, exc", [
    ("args", TypeError), ("value", TypeError), ("grad_func", TypeError),
    ("count", ValueError), ("not-tensors", TypeError),
])
def test_custom_grad_error_types_and_tails(case, exc):
    """The parts of the messages that do not depend on the customGrad/custom_grad naming."""
    x = tf.tensor1d([1.0])
    if case == "args":
        call, tail = lambda: _docs_custom_op()([1.0]), "must all be tensors"
    elif case == "value":
        op = tf.custom_grad(lambda x, save: {"value": 3.0, "grad_func": lambda dy, s: dy})
        call, tail = lambda: op(x), "must return an object where `obj.value` is a tensor"
    elif case == "grad_func":
        op = tf.custom_grad(lambda x, save: {"value": x.square(), "grad_func": 3})
        call, tail = lambda: op(x), "is a function."
    elif case == "count":
        op = tf.custom_grad(lambda x, save: {"value": x.square(), "grad_func": lambda dy, s: [dy, dy]})
        call, tail = lambda: tf.grad(lambda x: op(x))(x), "returns the same number of tensors as inputs passed to f(...)."
    else:
        op = tf.custom_grad(lambda x, save: {"value": x.square(), "grad_func": lambda dy, s: [1.0]})
        call, tail = lambda: tf.grad(lambda x: op(x))(x), "returns a list of only tensors."
    with pytest.raises(exc, match=re.escape(tail)):
        call()


def test_custom_grad_wrong_gradient_shape():
    op = tf.custom_grad(lambda x, save: {"value": x.square(), "grad_func": lambda dy, s: [tf.scalar(1.0)]})
    with pytest.raises(ValueError, match=re.escape(
            "Error in gradient for op forward. The gradient of input '0' has shape '', which does not "
            "match the shape of the input '3'")):
        tf.grad(lambda x: op(x))(tf.tensor1d([1.0, 2.0, 3.0]))


# --- section 5: variables ---------------------------------------------------------------------


def test_auto_names_are_unique_integer_strings(mk):
    vs = [mk([1.0]) for _ in range(5)]
    names = [v.name for v in vs]
    assert len(set(names)) == 5
    assert all(n.isdigit() for n in names)
    assert [int(n) for n in names] == sorted(int(n) for n in names)


def test_empty_name_falls_back_to_auto(mk):
    v = mk([1.0], name="")
    assert v.name.isdigit()


def test_dtype_casts_initial_value(mk):
    v = mk(tf.tensor1d([1.7, -2.2]), dtype="int32")
    assert v.dtype == "int32"
    np.testing.assert_array_equal(v.numpy(), np.array([1, -2], dtype=np.int32))


def test_tensor_variable_method(mk):
    name = uname("m")
    v = tf.tensor1d([1.7, -2.2]).variable(False, name, "int32")
    try:
        assert (v.name, v.trainable, v.dtype) == (name, False, "int32")
        np.testing.assert_array_equal(v.numpy(), [1, -2])
    finally:
        v.dispose()


def test_duplicate_live_name():
    b = tf.variable(tf.tensor1d([1.0]), name="b")
    try:
        with pytest.raises(ValueError, match=re.escape("Variable with name b was already registered")):
            tf.variable(tf.tensor1d([2.0]), name="b")
        assert b.numpy().tolist() == [1.0]
    finally:
        b.dispose()


def test_name_reusable_after_dispose():
    name = uname("re")
    v = tf.variable(tf.tensor1d([1.0]), name=name)
    v.dispose()
    w = tf.variable(tf.tensor1d([2.0]), name=name)
    try:
        assert w.name == name
        _, grads = tf.variable_grads(lambda: w.square().sum(), [w])
        assert_close(grads[name], [4])
    finally:
        w.dispose()


def test_name_reusable_after_dispose_variables():
    gc.collect()
    name = uname("dv")
    tf.variable(tf.tensor1d([1.0]), name=name)
    tf.dispose_variables()
    w = tf.variable(tf.tensor1d([2.0]), name=name)
    w.dispose()


def test_trainable_flag_is_writable_and_respected(mk):
    v, w = mk([1.0, 2.0]), mk([3.0, 4.0])
    assert v.trainable is True
    v.trainable = False
    _, grads = tf.variable_grads(lambda: v.mul(w).sum())
    assert list(grads) == [w.name]
    assert_close(grads[w.name], [1, 2])
    # explicit list: None for v
    _, grads = tf.variable_grads(lambda: v.mul(w).sum(), [v, w])
    assert grads[v.name] is None
    v.trainable = True
    _, grads = tf.variable_grads(lambda: v.mul(w).sum())
    assert set(grads) == {v.name, w.name}
    assert_close(grads[v.name], [3, 4])


def test_trainable_false_at_creation(mk):
    v = mk([1.0], trainable=False)
    assert v.trainable is False


def test_assign_dtype_mismatch(mk):
    v = mk([1.0, 2.0])
    with pytest.raises(TypeError, match=re.escape(
            "dtype of the new value (int32) and previous value (float32) must match")):
        v.assign(tf.tensor1d([1, 2], dtype="int32"))
    np.testing.assert_array_equal(v.numpy(), [1, 2])


def test_assign_shape_mismatch(mk):
    v = mk([1.0, 2.0])
    with pytest.raises(ValueError, match=re.escape(
            "shape of the new value (3) and previous value (2) must match")):
        v.assign(tf.tensor1d([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(v.numpy(), [1, 2])


def test_assign_changes_value(mk):
    v = mk([1.0, 2.0])
    v.assign(tf.tensor1d([5.0, 7.0]))
    np.testing.assert_array_equal(v.numpy(), [5, 7])
    _, grads = tf.variable_grads(lambda: v.square().sum(), [v])
    assert_close(grads[v.name], [10, 14])
    # assign from a lazy expression of the variable itself
    v.assign(v.mul(2))
    np.testing.assert_array_equal(v.numpy(), [10, 14])


def test_registry_does_not_keep_variables_alive():
    v = tf.variable(tf.tensor1d([1.0]), name=uname("weak"))
    ref = weakref.ref(v)
    del v
    gc.collect()
    assert ref() is None


def test_variable_grads_result_does_not_keep_variables_alive():
    v = tf.variable(tf.tensor1d([1.0, 2.0]), name=uname("weak"))
    ref = weakref.ref(v)
    value, grads = tf.variable_grads(lambda: v.square().sum(), [v])
    del v
    gc.collect()
    assert ref() is None
    assert value.item() == 5


# --- assign aliasing: a variable is a tensor of its own, whatever it was assigned from --------



def test_assign_from_another_variable_keeps_gradients_apart(mk):
    v, w = mk([1.0, 2.0]), mk([3.0, 4.0])
    w.assign(v)
    for _ in range(2):
        value, grads = tf.variable_grads(lambda: v.mul(w.mul(3)).sum(), [v, w])
        assert value.item() == 15
        assert_close(grads[v.name], [3, 6])   # 3 w
        assert_close(grads[w.name], [3, 6])   # 3 v
        value, grads = tf.variable_grads(lambda: v.mul(w.mul(3)).sum(), [v])
        assert_close(grads[v.name], [3, 6])


def test_assign_from_a_tensor_keeps_that_tensor_a_constant(mk):
    v = mk([1.0, 2.0])
    t = tf.tensor1d([5.0, 6.0]).realize()
    v.assign(t)
    for _ in range(2):
        value, grads = tf.variable_grads(lambda: v.mul(t).sum(), [v])
        assert value.item() == 61
        assert_close(grads[v.name], [5, 6])


def test_assign_from_another_variable_copies_the_value(mk):
    v, w = mk([1.0, 2.0]), mk([3.0, 4.0])
    w.assign(v)
    np.testing.assert_array_equal(w.numpy(), [1, 2])
    v.assign(tf.tensor1d([7.0, 8.0]))
    np.testing.assert_array_equal(w.numpy(), [1, 2])
    np.testing.assert_array_equal(v.numpy(), [7, 8])


def test_a_gradient_through_a_subtraction_is_accumulated_as_a_subtraction():
    """(-g) + h is h - g exactly in IEEE arithmetic: the walk makes the subtraction, one op
    fewer than a negation and an add, with the same bits."""
    xn = np.array([4.0, -0.0, 0.0, np.inf, 1e-30], np.float32)
    p = tf.variable(tf.tensor([1.0, 2.0, 3.0, 4.0, 5.0]))
    x = tf.tensor(xn)
    try:
        f = lambda: tf.sum(p * x - p)  # noqa: E731
        ops_line = next(ln for ln in str(tf.explain(f, [p])).splitlines() if ln.strip().startswith("ops:"))
        assert "neg" not in ops_line and "sub" in ops_line
        for _ in range(2):
            _, grads = tf.variable_grads(f, [p])
            got = grads[p.name].numpy()
            want = xn - np.float32(1)
            assert got.tobytes() == want.tobytes()
        _, grads = tf.variable_grads(lambda: tf.sum(x - p + p * x), [p])   # the other order
        assert grads[p.name].numpy().tobytes() == (xn - np.float32(1)).tobytes()
    finally:
        p.dispose()
