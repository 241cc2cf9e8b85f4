"""The numpy backend's plan-level sharing (gpugrad/backends/plan_sharing.py): a value two
groups of a plan compute is computed by the first and handed to the later ones. The shared
runner must give the same bits as the plain group loop, keep an exported buffer from being
reused in place, and actually share what the MLP step computes twice."""
from __future__ import annotations

import re

import numpy as np

import gpugrad as tf
from gpugrad.backends.interpret import compile_shared_plan, run_group, run_plan
from gpugrad.backends.plan_sharing import find_sharing
from gpugrad.compile.schedule import build_plan, structure

rng = np.random.default_rng(3)


def _plan(outputs):
    nodes_out = [o._node() for o in outputs]
    _, leaves, nodes = structure(nodes_out)
    return build_plan(nodes_out, nodes), [leaf.buf for leaf in leaves]


def _both(plan, inputs):
    plain = run_plan(plan, list(inputs), lambda g, slots: run_group(g, slots, np))
    shared = compile_shared_plan(plan)(list(inputs))
    return plain, shared


def _mlp_grads(dtype="float32"):
    x = tf.tensor(rng.normal(size=(16, 12)), dtype=dtype)
    labels = tf.tensor(rng.integers(0, 10, 16), dtype="int32")
    w1, b1 = tf.tensor(rng.normal(size=(12, 20)), dtype=dtype), tf.tensor(rng.normal(size=20), dtype=dtype)
    w2, b2 = tf.tensor(rng.normal(size=(20, 10)), dtype=dtype), tf.tensor(rng.normal(size=10), dtype=dtype)
    loss = lambda a, b, c, d: tf.losses.softmax_cross_entropy(labels, tf.relu(x @ a + b) @ c + d)  # noqa: E731
    return list(tf.grads(loss)([w1, b1, w2, b2]))     # lazy: one plan computes all four


def test_the_mlp_step_shares_its_exp_and_relu_mask_and_keeps_every_bit():
    plan, inputs = _plan(_mlp_grads())
    sharing = find_sharing(plan)
    imported = {plan.groups[g].instrs[k].op for g in range(len(plan.groups)) for k in sharing.imports[g]}
    assert {"exp", "less_equal"} <= imported, imported
    assert sum(len(s) for s in sharing.skipped) > 0
    plain, shared = _both(plan, inputs)
    for a, b in zip(plain, shared):
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def test_an_exported_value_is_not_overwritten_by_its_own_group():
    """exp(x) is read last, in its group, by a sibling output (a * 2, which the writer would
    put into a's buffer, dead after it) and by a later group (a * sum(x)): the later group
    must read exp(x), not 2 exp(x)."""
    xv = rng.normal(size=(4, 5))
    x = tf.tensor(xv, dtype="float64")
    a = tf.exp(x)
    outs = [a * 2, tf.sum(x, 1), a * tf.sum(x, 1, True)]
    plan, inputs = _plan(outs)
    sharing = find_sharing(plan)
    assert any(sharing.exports) and any(sharing.imports)
    plain, shared = _both(plan, inputs)
    want = [np.exp(xv) * 2, xv.sum(1), np.exp(xv) * xv.sum(1, keepdims=True)]
    for a, b, w in zip(plain, shared, want):
        assert a.tobytes() == b.tobytes()
        np.testing.assert_allclose(b, w, rtol=1e-15)


def test_constants_and_single_group_plans_share_nothing():
    x = tf.tensor(rng.normal(size=(3, 3)), dtype="float64")
    plan, _ = _plan([tf.sin(x) * 2 + 1])
    sharing = find_sharing(plan)
    assert sharing.n_side == 0 and not any(sharing.imports)
    c = tf.fill([3, 3], 2.0) * 3.0
    plan, _ = _plan([c + x, tf.sum(c * x, 1)])
    assert all(plan.groups[g].instrs[k].op != "const" for g in range(len(plan.groups))
               for k in find_sharing(plan).imports[g])


def test_the_backend_runs_repeated_plans_shared():
    """Through tf.variable_grads twice (the second call takes the compiled, shared runner):
    the same values both times."""
    ws = [tf.variable(tf.tensor(rng.normal(size=s), dtype="float64")) for s in [(6, 8), (8,), (8, 5), (5,)]]
    x = tf.tensor(rng.normal(size=(7, 6)), dtype="float64")
    labels = tf.tensor(rng.integers(0, 5, 7), dtype="int32")
    f = lambda: tf.losses.softmax_cross_entropy(labels, tf.relu(x @ ws[0] + ws[1]) @ ws[2] + ws[3])  # noqa: E731
    first = tf.variable_grads(f, ws)
    second = tf.variable_grads(f, ws)
    assert first.value.numpy().tobytes() == second.value.numpy().tobytes()
    for name in first.grads:
        assert first.grads[name].numpy().tobytes() == second.grads[name].numpy().tobytes()


def test_dying_slots_are_written_into_but_never_inputs_outputs_or_shared_values(in_place_targets):
    plan, inputs = _plan(_mlp_grads("float64"))
    sharing = find_sharing(plan)
    outputs = {s for s, _ in plan.outputs}
    donated = set().union(*sharing.donated)
    assert donated and not donated & (set(range(plan.n_inputs)) | outputs)
    before = [a.copy() for a in inputs]
    plain, shared = _both(plan, inputs)
    for a, b in zip(before, inputs):
        assert a.tobytes() == b.tobytes()        # the caller's arrays are untouched
    for a, b in zip(plain, shared):
        assert a.tobytes() == b.tobytes()
    written = 0
    for g in range(len(plan.groups)):
        fn = interpret_function(plan, sharing, g)
        for s in sharing.donated[g]:
            names = re.findall(rf"^\s+(v\d+) = slots\[{s}\]$", fn.source, re.M)
            written += bool(in_place_targets(fn) & set(names))
    assert written, "no group wrote into a donated buffer"


def interpret_function(plan, sharing, g):
    from gpugrad.backends.interpret import compile_group
    return compile_group(plan.groups[g], np, sharing.exports[g], sharing.imports[g], sharing.skipped[g],
                         {side: True for side in range(len(plan.slot_specs), len(plan.slot_specs) + sharing.n_side)},
                         sharing.donated[g])
