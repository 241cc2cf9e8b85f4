"""Memory as TF.js users manage it: tidy, keep, dispose, tensor.dispose(), memory(); and the
reading of those rules for lazy tensors (gpugrad/api/memory.py)."""
from __future__ import annotations

import gc
import re
import threading
import weakref

import numpy as np
import pytest

import gpugrad as tf

DISPOSED = re.escape("Tensor is disposed.")


def _count() -> int:
    gc.collect()
    return tf.memory()["num_tensors"]


def test_memory_reports_tfjs_keys_and_counts_buffers(backend):
    gc.collect()
    before = tf.memory()
    for key in ("numTensors", "numDataBuffers", "numBytes", "unreliable", "reasons",
                "num_tensors", "num_data_buffers", "num_bytes"):
        assert key in before, key
    t = tf.tensor1d(np.arange(10, dtype=np.float32))
    after = tf.memory()
    assert after["numTensors"] == after["num_tensors"] == before["num_tensors"] + 1
    assert after["numBytes"] == after["num_bytes"] == before["num_bytes"] + 40
    t.dispose()
    assert tf.memory()["num_bytes"] == before["num_bytes"]


def test_memory_on_cupy_adds_the_pool_figures(gpu):
    t = tf.tensor1d(np.ones(1 << 20, np.float32)).realize()
    m = tf.memory()
    assert m["numBytesInGPU"] == m["num_bytes_in_gpu"] >= 4 << 20
    assert m["numBytesInGPUAllocated"] >= m["numBytesInGPU"]
    t.dispose()


def test_the_registry_never_keeps_a_tensor_alive():
    n = _count()
    t = tf.tensor1d([1.0, 2.0]).add(1).realize()  # the data t was computed from counts too
    ref = weakref.ref(t)
    assert _count() == n + 2
    del t
    gc.collect()
    assert ref() is None
    assert _count() == n


def test_the_registry_forgets_collected_tensors_and_stays_bounded():
    # Collected tensors leave dead entries behind (no callback per tensor): they must not be
    # counted, and the table must not grow with every tensor ever made, also where the ids
    # of collected tensors are not reused by tracked ones (here lazy, untracked nodes take
    # the freed memory).
    from gpugrad.core import tensor as T
    n = _count()
    base = tf.tensor1d([1.0])
    kept, lazy = [], []
    for r in range(20):
        batch = [tf.tensor1d([float(i)]) for i in range(1000)]
        kept.append(batch[r])
        del batch
        lazy.extend(base.add(float(i)) for i in range(2000))
        assert len(T._live) <= 2 * (n + 2 + r) + 1024 + 1000
    assert _count() == n + 21
    assert [t.numpy()[0] for t in kept] == list(range(20))
    del kept
    assert _count() == n + 1


def test_dispose_releases_the_buffer(backend):
    t = tf.tensor1d(np.arange(6, dtype=np.float32))
    buf = weakref.ref(t.data_buffer())
    t.dispose()
    gc.collect()
    assert buf() is None, "dispose() must drop the tensor's buffer (CuPy: back to the pool)"
    assert t.is_disposed and t.isDisposed
    assert t.shape == (6,) and t.dtype == "float32"  # still readable, as in TF.js
    t.dispose()  # twice is harmless


@pytest.mark.parametrize("use", [
    lambda t: t.numpy(), lambda t: t.add(1), lambda t: tf.exp(t), lambda t: t.sum(),
    lambda t: t.data_sync(), lambda t: t.array(), lambda t: print(t), lambda t: t.item(),
    lambda t: tf.matmul(t, t), lambda t: tf.variable(t), lambda t: t[0], lambda t: t + 1])
def test_using_a_disposed_tensor_says_so(use):
    t = tf.tensor2d([[1.0, 2.0], [3.0, 4.0]])
    t.dispose()
    with pytest.raises(ValueError, match=DISPOSED + r".*float32 tensor of shape \[2, 2\]"):
        use(t)


def test_a_disposed_variable_releases_its_value_and_refuses_use():
    v = tf.variable(tf.tensor1d([1.0, 2.0]))
    buf = weakref.ref(v.data_buffer())
    v.dispose()
    gc.collect()
    assert buf() is None and v.is_disposed
    with pytest.raises(ValueError, match=DISPOSED):
        v.assign(tf.tensor1d([0.0, 0.0]))
    with pytest.raises(ValueError, match=DISPOSED):
        v.add(1)


def test_dispose_takes_tensors_lists_and_dicts():
    a, b, c, d = (tf.tensor1d([float(i)]) for i in range(4))
    v = tf.variable(tf.tensor1d([1.0]))
    tf.dispose(a)
    tf.dispose([b, {"x": (c, [v])}])
    assert a.is_disposed and b.is_disposed and c.is_disposed and v.is_disposed
    assert not d.is_disposed


def test_tidy_disposes_what_it_does_not_return(backend):
    x = tf.tensor1d([3.0, 4.0])
    n = _count()
    made = []

    def fn():
        a = tf.tensor1d([1.0, 1.0])
        b = x.square().add(a).realize()
        made.extend([a, b])
        return b.mul(2)          # lazy: reads a and b, which are disposed at the end

    y = tf.tidy(fn)
    assert y.array() == [20, 34]
    assert all(t.is_disposed for t in made)
    assert not x.is_disposed
    assert _count() == n + 1     # only y


def test_tidy_keeps_returned_containers_and_kept_tensors():
    kept = []

    def fn():
        a, b, c = tf.tensor1d([1.0]), tf.tensor1d([2.0]), tf.tensor1d([3.0])
        k = tf.keep(a.add(10))  # lazy when kept: computed before a is disposed
        kept.append(k)
        gone = tf.tensor1d([4.0])
        kept.append(gone)
        return {"pair": (a, [b]), "c": c}

    out = tf.tidy("named", fn)
    assert out["pair"][0].array() == [1] and out["pair"][1][0].array() == [2]
    assert out["c"].array() == [3]
    assert kept[0].array() == [11]
    assert kept[1].is_disposed


def test_nested_tidy_hands_results_to_the_outer_scope():
    inner_result = []

    def outer():
        def inner():
            return tf.tensor1d([1.0]).add(1)
        r = tf.tidy(inner)
        inner_result.append(r)
        assert not r.is_disposed
        return tf.tidy(lambda: r.mul(3))

    out = tf.tidy(outer)
    assert out.array() == [6]
    assert inner_result[0].is_disposed  # the outer scope did not return it


def test_tidy_disposes_everything_when_fn_raises():
    made = []

    def fn():
        made.append(tf.tensor1d([1.0]))
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        tf.tidy(fn)
    assert made[0].is_disposed
    assert tf.tidy(lambda: tf.tensor1d([2.0])).array() == [2]  # scopes are not left open


def test_tidy_argument_errors():
    with pytest.raises(TypeError, match=re.escape("Please provide a function to tidy()")):
        tf.tidy(3)
    with pytest.raises(TypeError, match="must be a string"):
        tf.tidy(3, lambda: None)


def test_variables_made_in_tidy_live_on():
    holder = []
    tf.tidy(lambda: holder.append(tf.variable(tf.tensor1d([5.0]))))
    assert holder[0].array() == [5]
    holder[0].dispose()


def test_disposing_a_lazy_tensor_does_not_break_its_dependents():
    x = tf.tensor1d([1.0, 2.0])
    a = x.exp()          # lazy
    b = a.add(1)
    a.dispose()
    np.testing.assert_allclose(b.numpy(), np.exp([1.0, 2.0]) + 1, rtol=1e-6)
    with pytest.raises(ValueError, match=DISPOSED):
        a.numpy()


def test_disposing_a_computed_result_recomputes_it_for_lazy_dependents():
    x = tf.tensor1d([1.0, 2.0])
    a = x.square().realize()
    buf = weakref.ref(a.data_buffer())
    b = a.add(1)
    a.dispose()
    gc.collect()
    assert buf() is None     # a's memory is gone ...
    assert b.array() == [2, 5]   # ... and b computes a again from x


def test_disposing_data_before_a_lazy_dependent_ran_names_it():
    x = tf.tensor1d([1.0, 2.0, 3.0])
    b = x.add(1)
    x.dispose()
    with pytest.raises(ValueError, match=DISPOSED + r".*lazy tensor reads a float32 tensor of shape \[3\]"):
        b.numpy()


def test_tidy_and_dispose_inside_a_differentiated_function_keep_the_gradient():
    p = tf.variable(tf.tensor1d([1.0, 2.0]))
    c = tf.tensor1d([3.0, 4.0])

    def f():
        def body():
            k = tf.tensor1d([2.0, 2.0])
            return p.mul(k).mul(c).sum()
        t = tf.tidy(body)
        tmp = p.square()
        tmp.dispose()
        return t

    value, grads = tf.variable_grads(f, [p])
    assert value.item() == 22 and grads[p.name].array() == [6, 8]
    p.dispose()


def test_tidy_around_training_steps_leaks_nothing():
    w = tf.variable(tf.tensor1d([1.0, -2.0]))
    x = tf.tensor1d([0.5, 0.25])
    opt = tf.train.adam(0.1)
    costs, counts = [], []
    for _ in range(4):
        cost = tf.tidy(lambda: opt.minimize(lambda: w.mul(x).square().sum(), True))
        costs.append(cost.item())
        cost.dispose()
        counts.append(_count())
    assert counts[1] == counts[2] == counts[3], counts
    assert costs[-1] < costs[0]
    w.dispose()


def test_a_tidy_in_one_thread_leaves_other_threads_tensors_alone():
    inside, made = threading.Event(), threading.Event()
    other = []

    def worker():
        inside.wait(5)
        other.append(tf.tensor1d([7.0]).add(1).realize())
        made.set()

    thread = threading.Thread(target=worker)
    thread.start()

    def fn():
        inside.set()
        made.wait(5)
        return tf.tensor1d([1.0])

    tf.tidy(fn)
    thread.join()
    assert other[0].array() == [8]
