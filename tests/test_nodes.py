"""The graph node (gpugrad/core/nodes.py): the C type of _nodes.c and the Python PyNode must
compute the same fields, keys and lo for the same structures, and fail the same way."""
from __future__ import annotations

import gc
import math
import os
import weakref

import pytest

from gpugrad.core import nodes
from gpugrad.core.tensor import Tensor

C = pytest.mark.skipif(not nodes.COMPILED, reason="gpugrad.core._nodes is not compiled here")


class PyT(nodes.PyNode):
    __slots__ = ()


def kinds():
    """The node classes present: the Python one always, the compiled one where built."""
    out = [PyT]
    if nodes.COMPILED:
        class CT(nodes._c.Node):
            __slots__ = ()
        out.append(CT)
    return out


def test_ci_builds_the_compiled_node():
    # ci/test.sh sets this: a CI run that silently fell back to the Python node would not
    # test _nodes.c at all.
    if os.environ.get("GPUGRAD_REQUIRE_COMPILED"):
        assert nodes.COMPILED and nodes.Node is nodes._c.Node
    if os.environ.get("GPUGRAD_PURE_PYTHON"):
        assert nodes.Node is nodes.PyNode


def build(cls, leaves):
    """One graph of every branch of the constructor, over the given leaves."""
    a, b = leaves
    one = cls("exp", (a,), None, (2,), "float32")
    two = cls("mul", (one, b), None, (2,), "float32")
    three = cls("concat", (a, b, two), 0, (6,), "float32")
    unhashable = cls("pad", (three,), [1, 2], (9,), "float32")
    custom = cls("custom_grad", (two, a), ("fn",), (2,), "float32")
    consts = [cls("const", (), v, (2,), "float32") for v in (0.0, -0.0, math.nan, 1.0, 1)]
    return [one, two, three, unhashable, custom, *consts]


def make_leaf(cls, buf, shape, dtype):
    """The leaf maker of cls's kind."""
    maker = nodes.py_make_leaf if issubclass(cls, nodes.PyNode) else nodes._c.make_leaf
    return maker(cls, buf, shape, dtype)


def fields(n):
    """Everything but the sources themselves (equal structures have distinct inner nodes)."""
    return (n.op, len(n.src), n.arg, n.shape, n.dtype, n.buf)


@pytest.mark.parametrize("cls", kinds(), ids=lambda c: c.__mro__[1].__module__)
def test_fields_keys_and_lo_of_every_branch(cls):
    leaves = [make_leaf(cls, None, (2,), "float32") for _ in range(2)]
    first, again = build(cls, leaves), build(cls, leaves)
    for n, m in zip(first, again):
        assert fields(n) == fields(m) and m.id > n.id
    one, two, three, unhashable, custom = first[:5]
    # an equal structure over the same leaves shares its key; the leaves bound lo
    assert [n.key for n in first[:3]] == [m.key for m in again[:3]]
    assert one.lo == one.id and two.lo == one.id and three.lo == one.id
    # an unhashable arg and a custom gradient get keys of their own: their ids
    assert unhashable.key == unhashable.id and custom.key == custom.id
    # constants: by value, but 0.0 and -0.0 differ, NaN matches NaN, 1.0 and 1 are equal
    zero, minus_zero, nan, one_f, one_i = first[5:]
    assert zero.key != minus_zero.key and nan.key == again[7].key and one_f.key == one_i.key
    assert all(c.lo == nodes.NO_OP for c in first[5:])
    # a leaf of another kind: its key is its id, its lo NO_OP
    plain = cls("variable", (), None, (2,), "float32")
    assert plain.key == plain.id and plain.lo == nodes.NO_OP and plain.buf is None


@C
def test_the_c_node_and_pynode_agree_on_keys():
    CT = kinds()[1]
    leaves = [make_leaf(CT, None, (2,), "float32") for _ in range(2)]
    c_graph, py_graph = build(CT, leaves), build(PyT, leaves)
    for c, p in zip(c_graph, py_graph):
        assert fields(c) == fields(p)
        if c.key != c.id:   # shared keys must match across the two types
            assert c.key == p.key
    # a graph mixing the two reads each source's key and lo the same way
    mixed = CT("add", (py_graph[1], c_graph[0]), None, (2,), "float32")
    pure = PyT("add", (py_graph[1], c_graph[0]), None, (2,), "float32")
    assert mixed.key == pure.key and mixed.lo == pure.lo


@pytest.mark.parametrize("cls", kinds(), ids=lambda c: c.__mro__[1].__module__)
def test_make_leaf(cls):
    buf = object()
    t = make_leaf(cls, buf, (3, 1), "int32")
    assert type(t) is cls and fields(t) == ("buffer", 0, None, (3, 1), "int32", buf)
    assert t.src == ()
    assert t.key == t.id and t.lo == nodes.NO_OP
    t.buf = None   # the engine realizes and disposes by setting buf
    assert t.buf is None


@C
def test_c_node_errors():
    CT = kinds()[1]
    leaf = make_leaf(CT, None, (2,), "float32")
    with pytest.raises(TypeError, match="5 positional"):
        CT("exp", (leaf,), None, (2,))
    with pytest.raises(TypeError, match="5 positional"):
        CT("exp", (leaf,), None, (2,), dtype="float32")
    with pytest.raises(TypeError, match="sources are a tuple"):
        CT("exp", [leaf], None, (2,), "float32")
    with pytest.raises(AttributeError):
        CT("exp", (object(),), None, (2,), "float32")
    with pytest.raises(TypeError, match="subclass of Node"):
        nodes.make_leaf(object, None, (2,), "float32")
    with pytest.raises(TypeError, match="4 arguments"):
        nodes._c.make_leaf(CT, None, (2,))

    class BadHash:
        def __hash__(self):
            raise ValueError("no hash")
    with pytest.raises(ValueError, match="no hash"):   # only TypeError means unhashable
        CT("exp", (leaf,), BadHash(), (2,), "float32")


@pytest.mark.parametrize("cls", kinds(), ids=lambda c: c.__mro__[1].__module__)
def test_weak_references_cycles_and_long_chains_are_freed(cls):
    t = cls("exp", (make_leaf(cls, None, (1,), "float32"),), None, (1,), "float32")
    ref = weakref.ref(t)
    del t
    assert ref() is None
    # a node whose arg refers back to it is a cycle the collector must free
    box = []
    t = cls("custom_grad", (make_leaf(cls, None, (1,), "float32"),), box, (1,), "float32")
    box.append(t)
    ref = weakref.ref(t)
    del t, box
    gc.collect()
    assert ref() is None
    # a chain far deeper than the C stack allows recursion for is freed without a crash
    x = make_leaf(cls, None, (1,), "float32")
    for _ in range(200_000):
        x = cls("neg", (x,), None, (1,), "float32")
    del x


def test_tensor_is_the_selected_node():
    assert issubclass(Tensor, nodes.Node)
    assert Tensor.__slots__ == ()


def _operands():
    import numpy as np

    import gpugrad as tf
    from gpugrad.core import tensor as T
    f32 = tf.tensor(np.arange(4, dtype=np.float32))
    disposed = tf.variable(tf.tensor([1.0, 2.0, 3.0, 4.0]))
    disposed.dispose()
    return {
        "f32": f32, "f32 again": tf.tensor(np.ones(4, np.float32)),
        "f64": tf.tensor(np.arange(4), dtype="float64"),
        "f32 other shape": tf.tensor(np.ones((2, 1), np.float32)),
        # broadcasting: a row, a shape that does not broadcast with (4,), an empty one, an
        # unrealized reshape of lower rank (lax.broadcast collapses it), a rank-3 one
        "f32 row": tf.tensor(np.ones((1, 4), np.float32)), "f32 (3,)": tf.tensor(np.ones(3, np.float32)),
        "f32 empty": tf.tensor(np.ones((0, 1), np.float32)),
        "lazy reshape": tf.reshape(tf.exp(tf.tensor(np.ones((2, 2), np.float32))), (4,)),
        "f32 (3, 1, 4)": tf.tensor(np.ones((3, 1, 4), np.float32)),
        "int32": tf.tensor(np.arange(4, dtype=np.int32)), "bool": tf.tensor([True, False, True, True]),
        "const": T.const(2.0, (4,), "float32"), "lazy": tf.exp(f32),
        "variable": tf.variable(tf.tensor(np.arange(4, dtype=np.float32))),
        "disposed variable": disposed, "float": 2.5, "int": 3, "list": [1.0, 2.0, 3.0, 4.0],
        "ndarray": np.ones(4, np.float32), "None": None, "str": "x",
    }


def _outcome(fn, args):
    try:
        out = fn(*args)
    except Exception as e:   # the same error, word for word
        return ("raised", type(e), str(e))
    return ("node", type(out), out.op, out.shape, out.dtype, out.key, len(out.src))


@C
def test_compiled_elementwise_ops_match_their_python_functions():
    import itertools

    import gpugrad as tf
    from gpugrad.core.tensor import trace
    ops = _operands()
    for name, depth in itertools.product(("add", "mul", "less", "atan2", "exp", "neg", "abs", "logical_not"),
                                         (0, 1)):
        op = getattr(tf, name)
        general = getattr(op, "__wrapped__", op)
        arity = 1 if name in ("exp", "neg", "abs", "logical_not") else 2
        trace.depth = depth   # (inside f, an op that is the identity makes an identity node)
        try:
            for combo in itertools.product(ops, repeat=arity):
                args = [ops[k] for k in combo]
                got, want = _outcome(op, args), _outcome(general, args)
                if "list" in combo or "ndarray" in combo or not any(isinstance(a, Tensor) for a in args):
                    got, want = got[:5], want[:5]   # converted to a new leaf in each call
                assert got == want, (name, combo, depth)
        finally:
            trace.depth = 0
    # as methods and operators, bound like functions
    a, v = ops["f32"], ops["variable"]
    assert (a + v).key == tf.add(a, v).key == a.add(v).key
    assert (v * a).key == tf.mul(v, a).key and (-a).key == tf.neg(a).key
    assert repr(tf.add) == "<gpugrad op add>" and tf.add.__name__ == "add"
    # square (mul over (x, x)) and the reductions to a scalar, with and without their
    # other arguments
    for name in ("square", "sum", "max", "prod"):
        op = getattr(tf, name)
        general = getattr(op, "__wrapped__", op)
        for k in ops:
            for extra in ({}, {"axis": 0}, {"keep_dims": True}):
                if name == "square" and extra:
                    continue
                args = [ops[k]]
                got = _outcome(lambda *a: op(*a, **extra), args)
                want = _outcome(lambda *a: general(*a, **extra), args)
                if k in ("list", "ndarray") or not isinstance(ops[k], Tensor):
                    got, want = got[:5], want[:5]
                assert got == want, (name, k, extra)
    assert a.sum().key == tf.sum(a).key == getattr(tf.sum, "__wrapped__", tf.sum)(a).key
    # pow with a number exponent: x ** 2 is mul(x, x) through both; 2.0000001 rounds to 2 in
    # float32 (the Python path's shortcut), a bool or a huge int is no 2
    general = getattr(tf.pow, "__wrapped__", tf.pow)
    for k in ops:
        for e in (2, 2.0, 2.0000001, 3, 0.5, -1, 1, True, 10**400, float("nan")):
            got, want = _outcome(tf.pow, [ops[k], e]), _outcome(general, [ops[k], e])
            if k in ("list", "ndarray") or not isinstance(ops[k], Tensor):
                got, want = got[:5], want[:5]
            assert got == want, (k, e)
    assert (a ** 2).op == "mul" and (a ** 2).key == tf.mul(a, a).key


def _tracked_leaf_makers():
    out = [("python", nodes.py_tracked_leaf)]
    if nodes.COMPILED and nodes.Node is nodes._c.Node:
        out.append(("c", nodes._c.tracked_leaf))
    return out


@pytest.mark.parametrize("name,maker", _tracked_leaf_makers(), ids=lambda x: x if isinstance(x, str) else "")
def test_tracked_leaf_registers_as_track_does(name, maker):
    import gpugrad as tf
    from gpugrad.core import tensor as T
    if name == "python" and nodes.COMPILED:
        cls = PyT   # the Python maker builds any node class; the registry takes any object
    else:
        cls = Tensor
    t = maker(cls, None, (2,), "float32")
    assert T._live[id(t)]() is t   # the common case: one registry store
    # a sweep falls due: dead entries go, and the next sweep is set by the table's size
    for _ in range(3):
        maker(cls, None, (2,), "float32")
    saved = T._sweep_at[0]
    T._sweep_at[0] = len(T._live) - 1   # (t2 may take a dead entry's id: no growth)
    try:
        t2 = maker(cls, None, (2,), "float32")
        assert T._live[id(t2)]() is t2
        assert all(ref() is not None for ref in list(T._live.values()))
        assert T._sweep_at[0] >= 1024
    finally:
        T._sweep_at[0] = max(saved, T._sweep_at[0])
    if cls is Tensor:   # an open tidy disposes what it made
        def inside():
            inside.made = maker(cls, None, (2,), "float32")
            return None
        tf.tidy(inside)
        assert isinstance(inside.made, T.DisposedTensor)


def test_a_variable_inside_a_gradient_call_reads_its_last_pinned_leaf():
    import numpy as np

    import gpugrad as tf
    from gpugrad.core import tensor as T
    v = tf.variable(tf.tensor(np.ones(4, np.float32)))
    t = tf.tensor(np.arange(4, dtype=np.float32))
    first, assigned = v.value_node, tf.tensor(np.zeros(4, np.float32))
    general = getattr(tf.add, "__wrapped__", tf.add)
    saved = T.trace.pins
    try:
        T.trace.pins = {id(v): (v, [first, assigned])}   # v was assigned inside the call
        for op in (tf.add, general):
            assert op(v, t).src[0] is assigned and op(t, v).src[1] is assigned
            assert tf.exp(v).src[0] is assigned
        other = tf.variable(tf.tensor(np.ones(4, np.float32)))
        assert tf.add(other, t).src[0] is other.value_node   # a first read pins it
        assert T.trace.pins[id(other)][1] == [other.value_node]
        other.dispose()
        with pytest.raises(ValueError, match="disposed"):
            tf.add(other, t)
    finally:
        T.trace.pins = saved
    assert tf.add(v, t).src[0] is v.value_node   # outside a call: the current value


@pytest.mark.parametrize("fn", [nodes.py_buffers_of] + ([nodes._c.buffers_of] if nodes.COMPILED else []),
                         ids=lambda f: f.__module__)
def test_buffers_of_weakly_named_leaves(fn):
    a, b = object(), object()
    x, y = make_leaf(PyT, a, (1,), "float32"), nodes.make_leaf(Tensor, b, (1,), "float32")
    refs = [weakref.ref(x), weakref.ref(y)]
    assert fn(refs) == [a, b] and fn(tuple(refs)) == [a, b] and fn([]) == []
    y.buf = None                      # disposed: its buffer dropped
    assert fn(refs) is None
    y.buf = b
    del x                             # collected
    assert fn(refs) is None


def test_copy_deepcopy_and_pickle_give_a_new_tensor_of_the_values():
    # the same on both nodes (the C one has no pickling of its own)
    import copy
    import pickle

    import numpy as np

    import gpugrad as tf
    t = tf.tensor([1.0, 2.0])
    lazy = tf.exp(t)
    for made in (copy.copy(t), copy.deepcopy(t), pickle.loads(pickle.dumps(t)),
                 copy.copy(lazy), pickle.loads(pickle.dumps(lazy))):
        source = t if made.size == 2 and made.numpy()[0] == 1.0 else lazy
        assert type(made) is Tensor and made is not source and made.id != source.id
        assert made.key == made.id and made.dtype == source.dtype
        np.testing.assert_array_equal(made.numpy(), source.numpy())
    assert copy.deepcopy([t, t])[0].numpy().tolist() == [1.0, 2.0]
    v = tf.variable(tf.tensor([3.0]))
    try:
        for fn in (copy.copy, copy.deepcopy, pickle.dumps):
            with pytest.raises(TypeError, match="cannot be copied or pickled"):
                fn(v)
        w = tf.variable(tf.clone(v))
        assert w.numpy().tolist() == [3.0]
        w.dispose()
    finally:
        v.dispose()
    t.dispose()
    with pytest.raises(ValueError, match="disposed"):
        copy.copy(t)


def test_a_tensor_made_without_init_raises_instead_of_crashing():
    import gpugrad as tf
    bare = Tensor.__new__(Tensor)   # no fields set
    for call in (lambda: tf.add(bare, bare), lambda: tf.exp(bare), lambda: tf.sum(bare),
                 lambda: tf.square(bare), lambda: bare ** 2):
        with pytest.raises(AttributeError):
            call()
    v = tf.variable(tf.tensor([1.0]))
    try:
        with pytest.raises(AttributeError):
            tf.variable_grads(lambda: bare, [v])
    finally:
        v.dispose()


@C
def test_a_compiled_node_is_immutable_but_for_its_buffer():
    t = nodes._c.make_leaf(Tensor, None, (2,), "float32")
    for field, value in (("op", "exp"), ("src", ()), ("shape", (3,)), ("dtype", "int32"), ("key", 1)):
        with pytest.raises(AttributeError):
            setattr(t, field, value)
    t.buf = b = object()
    assert t.buf is b


# --- the cache of op keys in front of the key table (_nodes.c) ---


@C
def test_op_keys_match_the_table_through_cache_hits_evictions_and_clears():
    import gpugrad as tf
    CT = kinds()[1]
    leaves = [make_leaf(CT, None, (2,), "float32") for _ in range(2)]

    shapes = [(2 + k,) for k in range(7)]
    args = [(0, k) for k in range(3000)]

    def keys_of(cls, n, fresh=False):
        # n distinct structures (more than the cache holds: entries are evicted), each over
        # the same shape and arg objects, or equal ones made anew, through both node types
        out = []
        for k in range(n):
            shape, arg = shapes[k % 7], args[k]
            if fresh:
                shape, arg = tuple(list(shape)), tuple(list(arg))
            a = cls("exp", (leaves[0],), None, shape, "float32")
            b = cls("sum", (a, leaves[1]), arg, shape, "float32")
            out.append((a.key, b.key))
        return out
    first = keys_of(CT, 3000)
    assert keys_of(CT, 3000) == first == keys_of(CT, 3000, fresh=True) == keys_of(PyT, 3000)
    assert len({b for _, b in first}) == 3000   # distinct args: distinct keys
    cached = keys_of(CT, 20)   # (just made: in the cache)
    tf.clear_caches()          # the table forgets every key: so must the cache
    again = keys_of(CT, 20)
    assert again == keys_of(PyT, 20) and not set(again) & set(cached)


@C
def test_op_keys_of_args_the_cache_does_not_hold():
    CT = kinds()[1]
    leaf = make_leaf(CT, None, (2,), "float32")
    for arg in [(1.5, 2), ("x",), (0, (1, 2)), 3]:   # (held by the table only)
        c1, c2 = (CT("pad", (leaf,), arg, (2,), "float32") for _ in range(2))
        p = PyT("pad", (leaf,), arg, (2,), "float32")
        assert c1.key == c2.key == p.key
    lists = [CT("pad", (leaf,), [1, 2], (2,), "float32") for _ in range(2)]   # unhashable
    assert [n.key for n in lists] == [n.id for n in lists]
    customs = [CT("custom_grad", (leaf, leaf), None, (2,), "float32") for _ in range(2)]
    assert [n.key for n in customs] == [n.id for n in customs]
