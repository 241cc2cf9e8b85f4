"""variable_grads's cached path (api/autodiff.py's _replay_python, and _nodes.c's replay where
the node is compiled): every scenario gives, through each of the two, what the general path
gives, and leaves no pin behind."""
from __future__ import annotations

import numpy as np
import pytest

import gpugrad as tf
from gpugrad.api import autodiff
from gpugrad.core import nodes
from gpugrad.core.tensor import trace


def replays():
    out = [("python", autodiff._replay_python)]
    if nodes.COMPILED:
        out.append(("c", nodes._c.replay))
    return out


@pytest.fixture(params=replays(), ids=lambda r: r[0])
def replay(request, monkeypatch):
    monkeypatch.setattr(autodiff, "_replay", request.param[1])
    return request.param[1]


def as_numpy(result):
    value, grads = result
    return float(value.numpy()), {k: (None if g is None else g.numpy().tolist()) for k, g in grads.items()}


def general(f, var_list):
    return as_numpy(autodiff._variable_grads_general(f, var_list))


def check(f, var_list, calls=3):
    want = general(f, var_list)
    for _ in range(calls):   # the first call caches the plan; the later ones replay it
        got = as_numpy(tf.variable_grads(f, var_list))
        assert got[0] == pytest.approx(want[0]) and list(got[1]) == list(want[1])
        for k in want[1]:
            if want[1][k] is None:
                assert got[1][k] is None
            else:
                np.testing.assert_allclose(got[1][k], want[1][k], rtol=1e-6)
        assert trace.pins is None and trace.depth == 0


def test_replayed_calls_match_the_general_path(replay, variables):
    p, q = variables([1.0, 2.0]), variables([3.0, -4.0])
    r = tf.tensor([0.5, 1.5])
    check(lambda: tf.sum((p + r * r) * (q + r)), [p, q])
    check(lambda: tf.sum(p ** 2), [p, q])   # q unused: absent
    check(lambda: tf.sum(p * q), (q, p))    # a tuple, the other order


def test_results_come_in_js_key_order(replay):
    vs = [tf.variable(tf.tensor([float(k)]), name=name) for k, name in enumerate(["b", "10", "a", "2"])]
    try:
        for _ in range(3):
            _, grads = tf.variable_grads(lambda: tf.sum(vs[0] * vs[1] * vs[2] * vs[3]), vs)
            assert list(grads) == ["2", "10", "b", "a"]
    finally:
        for v in vs:
            v.dispose()


def test_f_that_raises_leaves_no_pin(replay, variables):
    p = variables([1.0, 2.0])

    def f():
        tf.sum(p)
        raise RuntimeError("inside f")
    for _ in range(2):
        with pytest.raises(RuntimeError, match="inside f"):
            tf.variable_grads(f, [p])
        assert trace.pins is None and trace.depth == 0


def test_f_that_assigns_takes_the_general_path(replay, variables):
    p = variables([1.0, 2.0])

    def f():
        y = tf.sum(p * p)
        p.assign(tf.tensor([5.0, 6.0]))
        return y
    for _ in range(3):
        p.assign(tf.tensor([1.0, 2.0]))
        value, grads = tf.variable_grads(f, [p])
        assert float(value.numpy()) == 5.0 and grads[p.name].numpy().tolist() == [2.0, 4.0]
        assert trace.pins is None


def test_uncommon_var_lists_and_results(replay, variables):
    p = variables([1.0, 2.0])
    frozen = tf.variable(tf.tensor([1.0]), trainable=False)
    try:
        check(lambda: tf.sum(p * frozen), [p, frozen])              # a non-trainable variable
        s = tf.variable(tf.scalar(3.0))
        try:
            check(lambda: s, [s])                                   # f returns the variable
        finally:
            s.dispose()
        check(lambda: tf.sum(p * p), [p, p])                        # listed twice
        with pytest.raises(TypeError, match="must be a tensor"):
            tf.variable_grads(lambda: 3.0, [p])
        assert trace.pins is None and trace.depth == 0
        check(lambda: tf.sum(p), None)                              # every trainable variable
    finally:
        frozen.dispose()


def test_an_input_made_anew_each_call_is_recomputed(replay, variables):
    # (a y that f keeps: test_structural_keys, which CI runs on both nodes)
    p = variables([1.0, 2.0])
    # an input tensor made anew each call: the cached plan's leaf is gone, the call recomputes
    for k in range(3):
        r = tf.tensor([float(k), 1.0])
        value, grads = tf.variable_grads(lambda: tf.sum(p * r), [p])
        assert grads[p.name].numpy().tolist() == [float(k), 1.0]


def test_nested_calls_take_the_general_path_inside(replay, variables):
    p = variables([1.0, 2.0])

    def f():
        _, inner = tf.variable_grads(lambda: tf.sum(p * p * p), [p])
        return tf.sum(inner[p.name])
    for _ in range(3):
        _, grads = tf.variable_grads(f, [p])
        np.testing.assert_allclose(grads[p.name].numpy(), [6.0, 12.0])
        assert trace.pins is None and trace.depth == 0


def test_a_call_that_assigns_never_replays_a_plan_cached_without_assigning(replay, variables):
    p = variables([1.0, 2.0])
    c = tf.tensor([3.0, 4.0])

    def reads():
        return tf.sum(p * c)

    def reads_then_assigns():   # the same y, but c is now also a value of p: a target too
        y = tf.sum(p * c)
        p.assign(c)
        return y
    for _ in range(3):   # cached (and replayed) under (the key of y, p's leaf)
        p.assign(tf.tensor([1.0, 2.0]))
        tf.variable_grads(reads, [p])
    p.assign(tf.tensor([1.0, 2.0]))
    want = general(reads_then_assigns, [p])
    for _ in range(2):
        p.assign(tf.tensor([1.0, 2.0]))
        assert as_numpy(tf.variable_grads(reads_then_assigns, [p])) == want


def test_a_call_that_assigns_a_tensor_f_reads_is_never_a_replay(replay, variables):
    p, q = variables([1.0, 2.0]), variables([5.0, 7.0])
    c = tf.tensor([3.0, 4.0])

    def reads_c():   # p listed, not read: absent
        return tf.sum(c * q)

    def assigns_c():   # the same graph, but c is p's value now: p's gradient is q
        p.assign(c)
        return tf.sum(p * q)
    for _ in range(3):
        p.assign(tf.tensor([1.0, 2.0]))
        assert list(tf.variable_grads(reads_c, [p, q]).grads) == [q.name]
    for _ in range(2):
        p.assign(tf.tensor([1.0, 2.0]))
        want = general(assigns_c, [p, q])
        p.assign(tf.tensor([1.0, 2.0]))
        got = as_numpy(tf.variable_grads(assigns_c, [p, q]))
        assert got == want and got[1][p.name] == [5.0, 7.0]


# --- running the cached plan (engine.run_plan_weak; _nodes.c's run_cached where compiled) ---


def _hot_entry(f, var_list):
    """The cached plan entry of f's last replayed call."""
    for _ in range(3):   # the first call caches the plan, the second compiles its runner
        tf.variable_grads(f, var_list)
    return list(autodiff._hot_plans.values())[-1]


def test_a_replayed_plan_ignores_fp_errors_and_keeps_the_callers_state(replay, variables):
    p = variables([0.0, 2.0])
    f = lambda: tf.sum(tf.log(p) * p)   # noqa: E731 - log(0) * 0: -inf * 0 = NaN, 1/0 in the gradient
    with np.errstate(all="raise"):
        for _ in range(3):
            value, grads = tf.variable_grads(f, [p])
            assert np.isnan(float(value.numpy())) and np.isnan(grads[p.name].numpy()[0])
        assert np.geterr() == {"divide": "raise", "over": "raise", "under": "raise", "invalid": "raise"}
    with pytest.raises(FloatingPointError):   # the state in force was set back
        with np.errstate(all="raise"):
            np.log(np.zeros(1))


def test_a_runner_that_raises_leaves_the_buffers_lock_free(replay, variables):
    from gpugrad.core.tensor import buffers_lock
    p = variables([1.0, 2.0])
    f = lambda: tf.sum(p * p)   # noqa: E731
    plan = _hot_entry(f, [p])[0]
    runner = plan.runners["numpy"]
    assert runner is not None

    def failing(inputs):
        raise RuntimeError("inside the runner")
    plan.runners["numpy"] = failing
    try:
        with pytest.raises(RuntimeError, match="inside the runner"):
            tf.variable_grads(f, [p])
    finally:
        plan.runners["numpy"] = runner
    assert not buffers_lock._readers and trace.pins is None and trace.depth == 0
    assert tf.variable_grads(f, [p]).grads[p.name].numpy().tolist() == [2.0, 4.0]


def test_a_replay_waits_for_a_writer_of_the_buffers(replay, variables):
    import threading

    from gpugrad.core.tensor import buffers_lock
    p = variables([1.0, 2.0])
    f = lambda: tf.sum(p * p)   # noqa: E731
    _hot_entry(f, [p])
    got = []
    reader = threading.Thread(target=lambda: got.append(tf.variable_grads(f, [p])), daemon=True)
    assert not buffers_lock._readers   # (a reader left counted would hang the writer below)
    with buffers_lock.writing():
        reader.start()
        reader.join(0.2)
        assert reader.is_alive() and not got   # held off while the write runs
        p.value_node.buf[:] = [3.0, 4.0]      # (what an optimizer's in-place update does)
    reader.join(5)
    assert not reader.is_alive() and not buffers_lock._readers
    assert got[0].grads[p.name].numpy().tolist() == [6.0, 8.0]


def test_a_buffer_of_another_array_class_is_adopted(replay, variables):
    # (the runner takes only the backend's own array class: anything else goes through run,
    # which adopts it; here an array of another device, brought over by its get())
    class Elsewhere:
        def __init__(self, array):
            self.array = array

        def get(self):
            return self.array
    p = variables([1.0, 2.0])
    f = lambda: tf.sum(p * p)   # noqa: E731
    _hot_entry(f, [p])
    p.value_node.buf = Elsewhere(p.value_node.buf)
    value, grads = tf.variable_grads(f, [p])
    assert float(value.numpy()) == 5.0 and grads[p.name].numpy().tolist() == [2.0, 4.0]


def test_a_replay_on_another_backend_runs_its_own_runner(replay, variables):
    from gpugrad import backends
    from gpugrad.bench.overhead import NoKernelBackend
    p = variables([1.0, 2.0])
    f = lambda: tf.sum(p * p)   # noqa: E731
    plan = _hot_entry(f, [p])[0]
    saved = backends.current()
    no_kernels = NoKernelBackend(saved)
    backends._current = no_kernels
    try:
        for _ in range(3):
            tf.variable_grads(f, [p])
    finally:
        backends._current = saved
    # its runner was made and used under its own key, never the numpy backend's
    assert plan.runners.get(no_kernels.runner_key) is not None
    assert no_kernels.runner_key != saved.runner_key
    assert tf.variable_grads(f, [p]).grads[p.name].numpy().tolist() == [2.0, 4.0]
