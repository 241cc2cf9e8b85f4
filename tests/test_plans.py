"""explain() and the scheduler: what gets fused into how many kernels."""
from __future__ import annotations

import numpy as np
import pytest

import gpugrad as tf
from gpugrad.runtime import engine


@pytest.fixture
def seed_vars():
    p = tf.variable(tf.tensor1d([9, 6]))
    q = tf.variable(tf.tensor1d([7, 8]))
    yield p, q
    p.dispose()
    q.dispose()


def test_seed_function_is_one_multi_output_group(seed_vars):
    p, q = seed_vars
    r = tf.tensor1d([3, 4])
    plan = tf.explain(lambda: p.add(r.square()).mul(q.add(r)).sum(), [p, q])
    assert len(plan.groups) == 1
    group = plan.groups[0]
    assert group.kind == "multi-output"
    assert len(group.inputs) == 3          # p, q, r read once
    assert len(group.outputs) == 3         # value and both gradients
    text = str(plan)
    assert "grad " + repr(p.name) in text and "value" in text
    assert '__global__' in group.source


def test_elementwise_chain_ending_in_sum_is_one_group():
    x = tf.tensor(np.linspace(0.1, 1, 64))
    w = tf.variable(tf.tensor(np.linspace(-1, 1, 64)))
    b = tf.variable(tf.tensor(np.linspace(0.5, 1.5, 64)))
    chain = lambda: tf.sum(tf.exp(tf.neg(tf.square(tf.tanh(tf.sigmoid(x * w + b) * x - b)))) * w)  # noqa: E731
    plan = tf.explain(chain, [w, b])
    assert [g.kind for g in plan.groups] == ["multi-output"]
    value, grads = tf.variable_grads(chain, [w, b])
    assert set(grads) == {w.name, b.name}
    w.dispose()
    b.dispose()


def test_matmul_splits_groups():
    x = tf.tensor(np.random.default_rng(0).normal(size=(8, 5)))
    w = tf.variable(tf.tensor(np.random.default_rng(1).normal(size=(5, 3))))
    plan = tf.explain(lambda: tf.sum(tf.tanh(tf.matmul(x, w))), [w])
    kinds = [g.kind for g in plan.groups]
    assert kinds.count("matmul") == 2      # forward x@w and the gradient x^T @ dy
    assert len(plan.groups) >= 3
    assert plan.groups[0].kind == "matmul"
    w.dispose()


def test_reshape_of_a_reduction_is_a_view_not_a_kernel():
    x = tf.tensor(np.arange(6.0).reshape(2, 3))
    plan, _ = engine.plan_for([tf.sum(x)._node()])
    assert len(plan.groups) == 1


def test_repeated_structure_reuses_the_plan():
    a = tf.tensor(np.arange(4.0))
    before = len(engine.plans)
    (a * 3 + 1).numpy()
    after_first = len(engine.plans)
    out = (tf.tensor(np.arange(4.0) * 2) * 3 + 1).numpy()
    assert len(engine.plans) == after_first >= before
    np.testing.assert_allclose(out, np.arange(4.0) * 6 + 1)


def test_variable_grads_cache_hit_uses_new_values():
    p = tf.variable(tf.tensor1d([1.0, 2.0]))
    f = lambda: tf.sum(p * p)  # noqa: E731
    for k in range(3):
        p.assign(tf.tensor1d([1.0 + k, 2.0 + k]))
        value, grads = tf.variable_grads(f, [p])
        np.testing.assert_allclose(grads[p.name].numpy(), [2 * (1 + k), 2 * (2 + k)])
        np.testing.assert_allclose(value.item(), (1 + k) ** 2 + (2 + k) ** 2)
    p.dispose()
