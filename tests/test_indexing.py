"""Indexing (gpugrad/api/ops/indexing.py) and the gather / scatter_add primitives: forward against
numpy in float64, derivatives by check_grads (second order through scatter_add's rule, which is
gather), TF.js's errors, lazy out-of-range indices, and the generated CUDA run on the CPU
(threads, race and bounds checker) and compiled by NVRTC."""
from __future__ import annotations

import re

import numpy as np
import pytest

import gpugrad as tf
from gpugrad.backends import current
from gpugrad.backends.emulated import EmulatedCudaBackend, compiler_available
from gpugrad.compile.cuda_check import compile_all, nvrtc_available, programs_of
from gpugrad.compile.schedule import build_plan, structure
from gpugrad.testing import check_grads

rng = np.random.default_rng(12)


def _x(*shape):
    return rng.uniform(-2, 2, shape)


def _f64(a):
    return tf.tensor(a, dtype="float64")


# --- forward against numpy ---------------------------------------------------------------------


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_gather_matches_numpy_take(axis):
    x = _x(3, 4, 5)
    idx = np.array([[0, 2], [1, 1], [2, 0]])
    idx = idx % x.shape[axis]
    got = tf.gather(_f64(x), idx, axis).numpy()
    np.testing.assert_array_equal(got, np.take(x, idx, axis))


def test_gather_scalar_index_drops_the_axis():
    x = _x(3, 4)
    assert tf.gather(_f64(x), 2, 1).shape == (3,)
    np.testing.assert_array_equal(tf.gather(_f64(x), 2, 1).numpy(), x[:, 2])


def test_gather_batch_dims():
    x = _x(2, 3, 5, 4)
    idx = np.array([[4, 0, 4], [1, 2, 3]])
    got = tf.gather(_f64(x), idx, axis=2, batch_dims=1).numpy()
    want = np.stack([np.take(x[b], idx[b], axis=1) for b in range(2)])
    assert got.shape == (2, 3, 3, 4)
    np.testing.assert_array_equal(got, want)


def test_gather_tensor_indices_and_chaining():
    x = _x(6, 2)
    idx = tf.tensor([5, 0, 3], dtype="int32")
    np.testing.assert_array_equal(tf.gather(_f64(x), idx).numpy(), x[[5, 0, 3]])
    np.testing.assert_array_equal(tf.gatherND(_f64(x), [[5, 1]]).numpy(), [x[5, 1]])


def test_gather_nd():
    x = _x(3, 4, 2)
    idx = np.array([[[2, 3], [0, 0]], [[1, 2], [2, 3]]])
    got = tf.gather_nd(_f64(x), idx).numpy()
    assert got.shape == (2, 2, 2)
    np.testing.assert_array_equal(got, x[idx[..., 0], idx[..., 1]])
    np.testing.assert_array_equal(tf.gather_nd(_f64(x), [[1, 2, 1]]).numpy(), [x[1, 2, 1]])


def test_scatter_nd_adds_duplicates():
    idx = np.array([[1], [0], [1], [3]])
    upd = _x(4, 2)
    want = np.zeros((4, 2))
    np.add.at(want, idx[:, 0], upd)
    np.testing.assert_allclose(tf.scatter_nd(idx, _f64(upd), [4, 2]).numpy(), want, rtol=1e-15)
    idx2 = np.array([[0, 1], [2, 2], [0, 1]])
    vals = _x(3)
    want2 = np.zeros((3, 3))
    np.add.at(want2, (idx2[:, 0], idx2[:, 1]), vals)
    np.testing.assert_allclose(tf.scatterND(idx2, _f64(vals), [3, 3]).numpy(), want2, rtol=1e-15)


def test_unsorted_segment_sum_drops_negative_ids():
    x = _x(6, 3)
    ids = np.array([2, 0, 2, -1, 1, 2])
    want = np.zeros((4, 3))
    for i, s in enumerate(ids):
        if s >= 0:
            want[s] += x[i]
    np.testing.assert_allclose(tf.unsorted_segment_sum(_f64(x), ids, 4).numpy(), want, rtol=1e-14)
    ints = tf.unsortedSegmentSum(tf.tensor([1, 2, 3], dtype="int32"), [0, 0, 1], 2)
    assert ints.dtype == "int32" and ints.numpy().tolist() == [3, 3]


def test_one_hot():
    got = tf.one_hot([[0, 2], [1, 3]], 4)
    assert got.dtype == "int32"
    np.testing.assert_array_equal(got.numpy(), np.eye(4, dtype=np.int32)[[[0, 2], [1, 3]]])
    np.testing.assert_array_equal(tf.oneHot(tf.tensor([1, 7], dtype="int32"), 3, 5, -1, "float32").numpy(),
                                  [[-1, 5, -1], [-1, -1, -1]])


def test_reverse_and_split():
    x = _x(3, 4)
    np.testing.assert_array_equal(tf.reverse(_f64(x)).numpy(), x[::-1, ::-1])
    np.testing.assert_array_equal(tf.reverse(_f64(x), 1).numpy(), x[:, ::-1])
    np.testing.assert_array_equal(tf.reverse(_f64(x), [-2]).numpy(), x[::-1])
    parts = tf.split(_f64(x), 2, 1)
    for p, w in zip(parts, np.split(x, 2, 1)):
        np.testing.assert_array_equal(p.numpy(), w)
    parts = tf.split(_f64(x), [1, -1, 1], 1)
    assert [p.shape for p in parts] == [(3, 1), (3, 2), (3, 1)]
    assert len(tf.unstack(_f64(x), 1)) == 4
    np.testing.assert_array_equal(tf.unstack(_f64(x), 1)[2].numpy(), x[:, 2])


def test_host_array_and_mask_indexing():
    x = _x(4, 3)
    t = _f64(x)
    np.testing.assert_array_equal(t[[3, -1, 0]].numpy(), x[[3, -1, 0]])
    np.testing.assert_array_equal(t[np.array([[1, 2], [0, 0]])].numpy(), x[np.array([[1, 2], [0, 0]])])
    mask = x > 0
    np.testing.assert_array_equal(t[mask].numpy(), x[mask])
    rows = np.array([True, False, True, True])
    np.testing.assert_array_equal(t[rows].numpy(), x[rows])
    np.testing.assert_array_equal(t[1:, ::2].numpy(), x[1:, ::2])   # basic indexing unchanged


# --- derivatives ---------------------------------------------------------------------------------


def test_gather_gradients_second_order():
    idx = np.array([[2, 0, 2], [1, 1, 0]])
    check_grads(lambda x: tf.sin(tf.gather(x, idx, 1)) * tf.gather(x, [[0]], 1), [_x(3, 4)], order=2)
    check_grads(lambda x: tf.square(tf.gather(x, idx, axis=1, batch_dims=1)), [_x(2, 3, 2)], order=2)


def test_gather_nd_scatter_nd_segment_sum_gradients():
    check_grads(lambda x: tf.exp(tf.gather_nd(x, [[0, 1], [2, 0], [0, 1]])), [_x(3, 2)], order=2)
    check_grads(lambda u: tf.sin(tf.scatter_nd([[1], [0], [1]], u, [3, 2])), [_x(3, 2)], order=2)
    check_grads(lambda x: tf.square(tf.unsorted_segment_sum(x, [1, -1, 1, 0], 3)), [_x(4, 2)], order=2)


def test_composition_gradients():
    check_grads(lambda x: tf.sin(tf.reverse(x, 0)) * x, [_x(3, 2)], order=2)
    check_grads(lambda x: tf.split(x, [1, 2], 1)[1] * tf.split(x, 3, 1)[0], [_x(2, 3)], order=2)
    mask = np.array([True, False, True])
    check_grads(lambda x: tf.square(x[mask]) + x[[2, 0]], [_x(3, 2)], order=2)


def test_gradient_of_gather_with_int_source_is_float():
    x = tf.tensor([1, 2, 3], dtype="int32")
    g = tf.grad(lambda v: tf.sum(tf.cast(tf.gather(v, [0, 0, 2]), "float32")))(x)
    assert g.dtype == "float32" and g.numpy().tolist() == [2, 0, 1]


# --- errors and out-of-range indices --------------------------------------------------------------


def test_host_indices_out_of_range_name_the_index_and_bound():
    x = tf.zeros([3, 4])
    with pytest.raises(ValueError, match=r"indices\[1\] = 4 is not in \[0, 3\]"):
        tf.gather(x, [0, 4], 1)
    with pytest.raises(ValueError, match=r"indices\[0\] = -1 is not in \[0, 2\]"):
        tf.gather(x, [-1])
    with pytest.raises(ValueError, match=r"component 1 is 4, not in \[0, 3\]"):
        tf.gather_nd(x, [[0, 1], [2, 4]])
    with pytest.raises(ValueError, match=r"component 0 is 3"):
        tf.scatter_nd([[3]], [1.0], [3])
    with pytest.raises(ValueError, match=r"segmentIds\[2\] = 5 is not in \[0, 2\]"):
        tf.unsorted_segment_sum(tf.zeros([3]), [0, 1, 5], 3)
    with pytest.raises(IndexError, match="Index 5 is out of bounds for axis 0 with size 3"):
        x[[0, 5]]


def test_tfjs_argument_errors():
    x = tf.zeros([2, 3, 4])
    with pytest.raises(ValueError, match=r"batchDims \(2\) must be less than or equal to axis \(1\)"):
        tf.gather(x, tf.zeros([2, 3], "int32"), 1, 2)
    with pytest.raises(ValueError, match=r"x.shape\[0\]: 2 should be equal to indices.shape\[0\]: 3"):
        tf.gather(x, tf.zeros([3], "int32"), 1, 1)
    with pytest.raises(TypeError, match="must be int32 tensor, but got float32 tensor"):
        tf.gather(x, tf.zeros([2]))
    with pytest.raises(ValueError, match="depth must be >=2, but it is 1"):
        tf.one_hot([0], 1)
    with pytest.raises(ValueError, match="Number of splits must evenly divide the axis"):
        tf.split(x, 3, 2)
    with pytest.raises(ValueError, match="only one negative value"):
        tf.split(x, [-1, -1], 2)
    with pytest.raises(ValueError, match="sum of sizes must match"):
        tf.split(x, [1, 2], 2)
    with pytest.raises(ValueError, match="index innermost dimension length must be <= tensor rank"):
        tf.gather_nd(x, [[0, 0, 0, 0]])
    with pytest.raises(ValueError, match="updates has shape"):
        tf.scatter_nd([[0]], [1.0, 2.0], [3])
    with pytest.raises(IndexError, match="Boolean mask of shape"):
        x[np.array([True, False, True])]


def test_lazy_out_of_range_indices_gather_zero_and_scatter_nowhere():
    x = _x(4, 2)
    idx = tf.tensor([3, 4, -1, 0], dtype="int32")
    got = tf.gather(_f64(x), idx).numpy()
    np.testing.assert_array_equal(got, np.stack([x[3], 0 * x[0], 0 * x[0], x[0]]))
    g = tf.grad(lambda v: tf.sum(tf.gather(v, idx)))(_f64(x)).numpy()
    np.testing.assert_array_equal(g[:, 0], [1, 0, 0, 1])
    np.testing.assert_array_equal(tf.gather_nd(_f64(x), tf.tensor([[1, 2], [1, 1]], dtype="int32")).numpy(),
                                  [0, x[1, 1]])
    seg = tf.unsorted_segment_sum(_f64(x), tf.tensor([0, 9, 1, 1], dtype="int32"), 2).numpy()
    np.testing.assert_allclose(seg, [x[0], x[2] + x[3]], rtol=1e-15)


# --- the generated CUDA on the CPU, and NVRTC ------------------------------------------------------


def _plan(outputs):
    nodes_out = [o._node() for o in outputs]
    _, leaves, nodes = structure(nodes_out)
    return build_plan(nodes_out, nodes), [leaf.buf for leaf in leaves]


def _index_graphs(dtype):
    x = tf.tensor(rng.uniform(-2, 2, (37, 11)), dtype=dtype)
    idx = tf.tensor(rng.integers(-2, 40, (5, 7)), dtype="int32")        # some out of range
    host = rng.integers(0, 11, (300,))
    outs = [tf.gather(x, idx), tf.gather(x * 2, host, 1) + 1, tf.gather_nd(x, [[3, 4], [36, 10]]),
            tf.unsorted_segment_sum(tf.sin(x), rng.integers(-1, 9, (37,)), 9),
            tf.scatter_nd([[1], [0], [1]], x[:3], [4, 11])]
    outs.append(tf.grad(lambda v: tf.sum(tf.square(tf.gather(v, host, 1))))(x))
    outs.append(tf.grad(lambda v: tf.sum(tf.gather(v, idx) * tf.gather(v, idx)))(x))
    return outs


@pytest.mark.skipif(not compiler_available(), reason="g++ is not installed")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_generated_cuda_agrees_and_is_deterministic(dtype):
    plan, inputs = _plan(_index_graphs(dtype))
    kinds = {i.op for g in plan.groups for i in g.instrs}
    assert {"gather", "scatter_add"} <= kinds
    assert not any(re.search(r"\batomic\w*\s*\(", g.source) for g in plan.groups)
    expected = current().run(plan, inputs)
    first = EmulatedCudaBackend().run(plan, inputs)
    again = EmulatedCudaBackend().run(plan, inputs)
    for e, g, h in zip(expected, first, again):
        assert e.shape == g.shape and e.dtype == g.dtype
        np.testing.assert_allclose(g, e, rtol=1e-5 if dtype == "float32" else 1e-13, atol=1e-6)
        assert g.tobytes() == h.tobytes()


@pytest.mark.skipif(not nvrtc_available(), reason="NVRTC is not installed")
def test_generated_cuda_compiles_with_nvrtc():
    plans = [_plan(_index_graphs(dtype))[0] for dtype in ("float32", "float64")]
    plans.append(_plan([tf.unsorted_segment_sum(tf.tensor([1, 2, 3], dtype="int32"), [0, 0, 1], 2)])[0])
    errors = compile_all(programs_of(plans))
    assert not errors, "\n".join(errors[:20])


def _batched_gather_gradient(idx, n, c):
    """The plan of gather's gradient (float64) for rows of lazy indices idx (B, K) into a
    (B, n, c) table (out of range reads 0, so its gradient goes nowhere), its inputs, and
    numpy's add.at of the same values in the same order."""
    b, k = idx.shape
    x = tf.tensor(rng.uniform(-2, 2, (b, n, c)), dtype="float64")
    w = rng.uniform(-2, 2, (b, k, c))
    lazy_idx = tf.tensor(idx, dtype="int32")     # not checked on the host
    plan, inputs = _plan([tf.grad(lambda v: tf.sum(tf.gather(v, lazy_idx, 1, 1) * tf.tensor(w, dtype="float64")))(x)])
    want = np.zeros((b, n, c))
    for row in range(b):
        inside = (idx[row] >= 0) & (idx[row] < n)
        np.add.at(want[row], idx[row][inside], w[row][inside])
    return plan, inputs, want


@pytest.mark.skipif(not compiler_available(), reason="g++ is not installed")
def test_generated_scatter_add_sorts_indices_and_sums_each_bucket_in_order():
    """gather's gradient with batch rows, indices repeated across several 256-index passes of
    the sort (one bucket holds a third of a row) and outside the range: bitwise equal to
    numpy's add.at (the same sums in the same increasing-k order), and each output element's
    loop runs over its own bucket, not over every index."""
    idx = rng.integers(-1, 52, (3, 700))
    idx[:, ::3] = 7
    plan, inputs, want = _batched_gather_gradient(idx, 50, 4)
    scatter = [g for g in plan.groups if g.kind == "scatter"]
    assert len(scatter) == 1 and len(scatter[0].program.launches) == 2
    assert "gg_starts" in scatter[0].source and "< 700" not in scatter[0].source.split("_sort(")[-1]
    backend = EmulatedCudaBackend()
    for _ in range(2):   # the plan loop, then the generated launchers
        got, = backend.run(plan, inputs)
        assert got.tobytes() == want.tobytes()
        assert current().run(plan, inputs)[0].tobytes() == want.tobytes()


@pytest.mark.skipif(not compiler_available(), reason="g++ is not installed")
def test_many_indices_per_row_sort_by_the_array_library_with_the_same_bits():
    """From codegen.LIBRARY_SORT_FROM indices per row the bucket sort is the array library's
    (numpy here, CuPy on a GPU) instead of the sort kernel: the same perm and starts, so the
    same sums, bit for bit."""
    from gpugrad.compile import codegen
    k = codegen.LIBRARY_SORT_FROM + 904
    idx = rng.integers(-3, 33, (2, k))
    idx[1, ::2] = 29
    plan, inputs, want = _batched_gather_gradient(idx, 30, 2)
    scatter, = [g for g in plan.groups if g.kind == "scatter"]
    assert scatter.program.library_sort is not None and len(scatter.program.launches) == 1
    backend = EmulatedCudaBackend()
    for _ in range(3):   # the plan loop, then (from the second run) the generated launchers
        got, = backend.run(plan, inputs)
        assert got.tobytes() == want.tobytes()
