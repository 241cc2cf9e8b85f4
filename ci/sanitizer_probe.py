"""A short CuPy-backend program for compute-sanitizer (memcheck, racecheck), run by ci/gpu.sh:
the seed function's variable_grads, scalar and row reductions with argmax (two-stage, shared
memory trees) and one multi-tensor optimizer update, at 2^20 elements. It checks its own
results, so a sanitizer run that passes also computed the right numbers."""
from __future__ import annotations

import numpy as np

import gpugrad as tf

tf.set_backend("cupy")
n = 1 << 20
rng = np.random.default_rng(0)
pn, qn, rn = (rng.uniform(-1, 1, n).astype(np.float32) for _ in range(3))
p, q, r = tf.variable(tf.tensor(pn)), tf.variable(tf.tensor(qn)), tf.tensor(rn)
value, grads = tf.variable_grads(lambda: p.add(r.square()).mul(q.add(r)).sum())
np.testing.assert_allclose(grads[p.name].numpy(), qn + rn, rtol=1e-6)
np.testing.assert_allclose(grads[q.name].numpy(), pn + rn * rn, rtol=1e-6)
want = np.sum((pn.astype(np.float64) + rn.astype(np.float64) ** 2) * (qn + rn.astype(np.float64)))
assert abs(value.item() - want) <= 1e-4 * np.sum(np.abs((pn + rn * rn) * (qn + rn))), (value.item(), want)

x = rng.uniform(-1, 1, (3, n // 3)).astype(np.float32)
xt = tf.tensor(x)
np.testing.assert_allclose(tf.sum(xt, 1).numpy(), x.sum(1, dtype=np.float64), rtol=1e-4, atol=1e-2)
assert tf.max(xt).item() == x.max()
np.testing.assert_array_equal(tf.argmax(xt, 1).numpy(), x.argmax(1))

opt = tf.train.adam(0.01)
opt.apply_gradients({p.name: grads[p.name], q.name: grads[q.name]})
assert np.isfinite(p.numpy()).all() and not np.array_equal(p.numpy(), pn)
print("sanitizer probe: seed variable_grads, reductions and an Adam update at 2^20 are right")
