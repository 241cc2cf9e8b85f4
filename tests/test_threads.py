"""variable_grads from several threads at once: results correct and independent."""
from __future__ import annotations

import threading
import uuid

import numpy as np
import pytest

import gpugrad as tf

ITERATIONS = 150


def _name(prefix):
    return f"{prefix}_{uuid.uuid4().hex}"


def _run_threads(workers, timeout=240):
    """Start every worker at once (barrier), join them, re-raise the first failure."""
    barrier = threading.Barrier(len(workers))
    errors = []

    def wrap(fn, k):
        def run():
            try:
                barrier.wait()
                fn(k)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append((k, exc))
        return run

    threads = [threading.Thread(target=wrap(fn, k), daemon=True) for k, fn in enumerate(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "a worker thread hung"
    if errors:
        k, exc = errors[0]
        raise AssertionError(f"worker {k} failed ({len(errors)} failures): {exc!r}") from exc


def _seed_worker(k):
    """The seed function on this thread's own variables, same structure in every thread (so
    the threads share cached plans) and new values every iteration."""
    rng = np.random.default_rng(k)
    n = 3 + (k % 2)  # two shapes among the threads
    p = tf.variable(tf.tensor1d(np.zeros(n, np.float32)), name=_name(f"p{k}"))
    q = tf.variable(tf.tensor1d(np.zeros(n, np.float32)), name=_name(f"q{k}"))
    try:
        for i in range(ITERATIONS):
            pv = rng.normal(size=n).astype(np.float32)
            qv = rng.normal(size=n).astype(np.float32)
            rv = rng.normal(size=n).astype(np.float32)
            p.assign(tf.tensor1d(pv))
            q.assign(tf.tensor1d(qv))
            r = tf.tensor1d(rv)
            var_list = [p, q] if i % 3 else [q, p]
            value, grads = tf.variable_grads(lambda: p.add(r.square()).mul(q.add(r)).sum(), var_list)
            assert list(grads) == [v.name for v in var_list]  # non-integer names: var_list order
            want = np.sum((pv.astype(np.float64) + rv * rv) * (qv + rv))
            np.testing.assert_allclose(value.item(), want, rtol=1e-4, atol=1e-4)
            np.testing.assert_allclose(grads[p.name].numpy(), qv + rv, rtol=1e-6, atol=1e-6)
            np.testing.assert_allclose(grads[q.name].numpy(), pv + rv * rv, rtol=1e-5, atol=1e-5)
    finally:
        p.dispose()
        q.dispose()


def test_four_threads_same_function_structure():
    _run_threads([_seed_worker] * 4)


def _mixed_worker(k):
    """A different function per thread."""
    rng = np.random.default_rng(100 + k)
    v = tf.variable(tf.tensor1d(np.ones(5, np.float32)), name=_name(f"m{k}"))
    w = tf.variable(tf.tensor2d(np.ones((5, 3), np.float32)), name=_name(f"w{k}"))
    try:
        for _ in range(ITERATIONS):
            x = rng.normal(size=5).astype(np.float32)
            wx = rng.normal(size=(5, 3)).astype(np.float32)
            v.assign(tf.tensor1d(x))
            w.assign(tf.tensor2d(wx))
            if k == 0:
                value, grads = tf.variable_grads(lambda: v.square().sum(), [v])
                assert list(grads) == [v.name]
                np.testing.assert_allclose(value.item(), np.sum(x * x), rtol=1e-5)
                np.testing.assert_allclose(grads[v.name].numpy(), 2 * x, rtol=1e-6)
            elif k == 1:
                value, grads = tf.variable_grads(lambda: tf.matmul(tf.reshape(v, [1, 5]), w).sum(), [v, w])
                np.testing.assert_allclose(value.item(), np.sum(x @ wx), rtol=1e-4, atol=1e-4)
                np.testing.assert_allclose(grads[v.name].numpy(), wx.sum(1), rtol=1e-5, atol=1e-5)
                np.testing.assert_allclose(grads[w.name].numpy(), np.repeat(x[:, None], 3, 1), rtol=1e-6)
            elif k == 2:
                value, grads = tf.variable_grads(lambda: v.sin().mul(v).mean(), [v, w])
                assert list(grads) == [v.name]  # w is not used: absent
                np.testing.assert_allclose(value.item(), np.mean(np.sin(x) * x), rtol=1e-5, atol=1e-6)
                np.testing.assert_allclose(grads[v.name].numpy(), (np.cos(x) * x + np.sin(x)) / 5,
                                           rtol=1e-5, atol=1e-6)
            else:
                value, grads = tf.variable_grads(lambda: tf.relu(w).sum(), [w])
                np.testing.assert_allclose(value.item(), np.sum(np.maximum(wx, 0)), rtol=1e-5, atol=1e-5)
                np.testing.assert_array_equal(grads[w.name].numpy(), (wx > 0).astype(np.float32))
    finally:
        v.dispose()
        w.dispose()


def test_four_threads_different_functions():
    _run_threads([_mixed_worker] * 4)


def _two_worker(k):
    a = tf.variable(tf.scalar(float(k + 1)), name=_name(f"s{k}"))
    try:
        for i in range(ITERATIONS * 2):
            a.assign(tf.scalar(float(i + k)))
            value, grads = tf.variable_grads(lambda: a.mul(a).mul(a), [a])
            assert value.item() == pytest.approx(float(i + k) ** 3)
            assert grads[a.name].item() == pytest.approx(3.0 * float(i + k) ** 2)
    finally:
        a.dispose()


def test_two_threads_identical_functions():
    _run_threads([_two_worker] * 2)


def _nested_worker(k):
    """Second order (variable_grads inside tf.grad) in one thread, first order in others: the
    per-thread nesting depth must not leak between threads."""
    v = tf.variable(tf.tensor1d([1.0, 2.0]), name=_name(f"n{k}"))
    try:
        for i in range(ITERATIONS // 2):
            x = tf.tensor1d([3.0 + i, 4.0])
            if k % 2 == 0:
                def inner(x):
                    _, g = tf.variable_grads(lambda: v.mul(x).square().sum(), [v])
                    return g[v.name].sum()
                got = tf.grad(inner)(x).numpy()
                np.testing.assert_allclose(got, [4 * 1 * (3.0 + i), 4 * 2 * 4.0], rtol=1e-6)
            else:
                value, g = tf.variable_grads(lambda: v.mul(x).square().sum(), [v])
                np.testing.assert_allclose(g[v.name].numpy(), [2 * (3.0 + i) ** 2, 2 * 2 * 16], rtol=1e-6)
    finally:
        v.dispose()


def test_threads_second_order_and_first_order():
    _run_threads([_nested_worker] * 4)


class Boom(Exception):
    pass


def _raising_worker(k):
    """Half the threads raise inside f every other call; everyone's results stay right."""
    v = tf.variable(tf.tensor1d([1.0, 2.0, 3.0]), name=_name(f"r{k}"))
    try:
        for i in range(ITERATIONS):
            if k % 2 == 0 and i % 2 == 0:
                def bad():
                    v.square()
                    raise Boom(k)
                with pytest.raises(Boom):
                    tf.variable_grads(bad, [v])
                continue
            value, g = tf.variable_grads(lambda: v.square().sum().add(1.0), [v])
            assert value.item() == 15
            np.testing.assert_array_equal(g[v.name].numpy(), [2, 4, 6])
        np.testing.assert_array_equal(v.numpy(), [1, 2, 3])
    finally:
        v.dispose()


def test_threads_with_exceptions_in_f():
    _run_threads([_raising_worker] * 4)


def test_default_var_list_while_another_thread_registers_variables():
    """Thread 0 uses the default var_list; thread 1 keeps registering variables and dropping
    them (the registry is weak, so they die). Variables thread 0's f does not use are absent."""
    stop = threading.Event()
    mine = tf.variable(tf.tensor1d([1.0, 2.0]), name=_name("own"))

    def user(_):
        try:
            for _ in range(ITERATIONS * 2):
                value, grads = tf.variable_grads(lambda: mine.square().sum())
                assert value.item() == 5
                assert list(grads) == [mine.name]
                np.testing.assert_array_equal(grads[mine.name].numpy(), [2, 4])
        finally:
            stop.set()

    def churn(_):
        while not stop.is_set():
            vs = [tf.variable(tf.tensor1d([0.5])) for _ in range(4)]
            del vs

    try:
        _run_threads([user, churn])
    finally:
        mine.dispose()


def test_default_var_list_survives_a_concurrent_dispose():
    """Deterministic form of the race (seen with a churning thread): another thread disposes
    a variable f does not use while f runs. The default list is what f read, so the disposed
    variable is simply not part of it."""
    mine = tf.variable(tf.tensor1d([1.0, 2.0]), name=_name("own"))
    theirs = tf.variable(tf.tensor1d([0.5]), name=_name("theirs"))

    def f():
        worker = threading.Thread(target=theirs.dispose)
        worker.start()
        worker.join()
        return mine.square().sum()

    try:
        value, grads = tf.variable_grads(f)
        assert value.item() == 5
        assert list(grads) == [mine.name]
    finally:
        mine.dispose()
        theirs.dispose()


# --- variables written by other threads (and by f itself) while gradients are taken ---------

RACE_SECONDS = 3.0
RACE_SIZE = 50_000   # above the numpy optimizer's chunk size: an update takes several steps


def test_gradients_while_other_threads_assign_and_minimize_the_same_variable():
    """8 threads on one variable: readers take its gradient (explicit and default var_list),
    two threads assign it, one runs optimizer.minimize on it, one assigns it inside f. Reads
    pinned a value looked up before f ran, so a write in between made "Cannot find a
    connection"; every call must instead see one whole value, before or after a write."""
    import time

    v = tf.variable(tf.fill([RACE_SIZE], 4.0), name=_name("race"))
    deadline = time.monotonic() + RACE_SECONDS
    counts = [0] * 8

    def spread_and_sum():
        # max - min is 0 for a whole value (every write keeps v uniform) and > 0 for a torn
        # one; with ties shared evenly its gradient is 0, so grads are exactly 1
        return tf.sum(v) + (tf.max(v) - tf.min(v)) * 1000.0

    def reader(k):
        while time.monotonic() < deadline:
            value, grads = tf.variable_grads(spread_and_sum, [v] if k % 2 else None)
            level = value.item() / RACE_SIZE
            assert level * 4 == round(level * 4), f"a torn read: mean {level}"
            g = grads[v.name].numpy()
            assert g.min() == g.max() == 1.0
            counts[k] += 1

    def assigner(k):
        rng = np.random.default_rng(k)
        while time.monotonic() < deadline:
            v.assign(tf.fill([RACE_SIZE], float(rng.integers(1, 9))))
            counts[k] += 1

    def trainer(k):
        opt = tf.train.sgd(0.25)
        while time.monotonic() < deadline:
            opt.minimize(lambda: tf.sum(v), var_list=[v])   # v -= 0.25: stays uniform
            counts[k] += 1

    def assigns_inside_f(k):
        while time.monotonic() < deadline:
            def f():
                v.assign(tf.fill([RACE_SIZE], 2.0))
                return tf.sum(v * 3.0)   # reads what this thread just assigned
            value, grads = tf.variable_grads(f, [v])
            assert value.item() == 6.0 * RACE_SIZE
            assert grads[v.name].numpy().min() == grads[v.name].numpy().max() == 3.0
            counts[k] += 1

    try:
        _run_threads([reader] * 4 + [assigner] * 2 + [trainer, assigns_inside_f], timeout=60)
    finally:
        v.dispose()
    assert all(counts), f"some thread made no call: {counts}"


def test_assign_inside_f_is_differentiated_through_what_f_read():
    """As TF.js (one tensor id per variable): f's reads before and after its own assign both
    count."""
    v = tf.variable(tf.tensor1d([1.0, 2.0]), name=_name("asg"))
    try:
        def f():
            v.assign(tf.tensor1d([3.0, 5.0]))
            return tf.sum(v * v)
        value, grads = tf.variable_grads(f, [v])
        assert value.item() == 34.0
        np.testing.assert_array_equal(grads[v.name].numpy(), [6.0, 10.0])

        def g():
            before = tf.sum(v * 2.0)          # reads [3, 5]
            v.assign(tf.tensor1d([1.0, 1.0]))
            return before + tf.sum(v * v)     # reads [1, 1]
        value, grads = tf.variable_grads(g)
        assert value.item() == 18.0
        np.testing.assert_array_equal(grads[v.name].numpy(), [4.0, 4.0])
    finally:
        v.dispose()


def test_buffers_lock_orders_writers_after_readers_and_holds_new_readers_off():
    from gpugrad.core.tensor import ReadWriteLock
    lock = ReadWriteLock()
    log = []
    lock.acquire_read()
    lock.acquire_read()   # readers never wait for each other
    lock.release_read()

    def writer():
        with lock.writing():
            log.append("write")

    def reader():
        lock.acquire_read()
        log.append("read")
        lock.release_read()

    w = threading.Thread(target=writer, daemon=True)   # (a failure must not hang the run)
    w.start()
    w.join(0.2)
    assert w.is_alive() and log == []          # waits for the reader still running
    r = threading.Thread(target=reader, daemon=True)
    r.start()
    r.join(0.2)
    assert r.is_alive() and log == []          # a writer waiting holds new readers off
    lock.release_read()
    w.join(5)
    r.join(5)
    assert log == ["write", "read"]


def test_buffers_lock_readers_never_see_a_write_half_done():
    import time

    from gpugrad.core.tensor import ReadWriteLock
    lock = ReadWriteLock()
    state = [0, 0]
    torn = []
    stop = threading.Event()

    def write(_):
        for i in range(300):
            with lock.writing():
                state[0] = i
                time.sleep(0)   # let a reader run in the middle of the write, were it allowed
                state[1] = i
        stop.set()

    def read(_):
        while not stop.is_set():
            lock.acquire_read()
            try:
                a = state[0]
                time.sleep(0)
                if state[1] != a:
                    torn.append((a, state[1]))
            finally:
                lock.release_read()

    _run_threads([write, read, read, read])
    assert not torn and not lock._readers
