"""Every cache in one registry: bounded with LRU eviction, and cleared together."""
from __future__ import annotations

import numpy as np

import gpugrad as tf
from gpugrad.core import caches
from gpugrad.runtime import engine
from gpugrad.core.caches import LRU


def test_lru_evicts_the_least_recently_used():
    c = LRU("test lru", limit=2)
    c.put("a", 1)
    c.put("b", 2)
    assert c.get("a") == 1          # a is now the most recent
    c.put("c", 3)
    assert "b" not in c and c.get("a") == 1 and c.get("c") == 3
    assert len(c) == 2


def test_clear_caches_clears_plans_kernels_and_snippets():
    x = tf.variable(tf.tensor(np.arange(4, dtype=np.float32)))
    tf.variable_grads(lambda: tf.sum(tf.exp(x)))
    tf.sum(x * 2).numpy()
    sizes = caches.cache_sizes()
    for name in ("plans", "gradient plans", "snippets"):
        assert sizes[name] > 0, name
    tf.clear_caches()
    assert all(n == 0 for n in caches.cache_sizes().values()), caches.cache_sizes()
    # and everything works again from scratch
    value, grads = tf.variable_grads(lambda: tf.sum(tf.exp(x)))
    np.testing.assert_allclose(grads[x.name].numpy(), np.exp(np.arange(4)), rtol=1e-6)
    x.dispose()


def test_plan_cache_is_bounded():
    assert engine.plans.limit > 0
    before = engine.plans.limit
    engine.plans.limit = 3
    try:
        for k in range(6):
            tf.sum(tf.tensor(np.ones(k + 1, np.float32)) * 2).numpy()
        assert len(engine.plans) <= 3
    finally:
        engine.plans.limit = before
