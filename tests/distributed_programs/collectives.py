"""all_reduce, broadcast, barrier and the layout check under mpiexec; each rank writes its
results to OUT_DIR/rank<r>.txt for tests/test_distributed.py to compare across ranks (files,
not stdout: the launcher may interleave the ranks' lines)."""
import sys
from pathlib import Path

import numpy as np

import gpugrad as tf
from gpugrad import distributed as dist

dist.init(timeout=60)
r, n = dist.rank(), dist.size()
a = tf.tensor(np.arange(6, dtype=np.float32).reshape(2, 3) * (r + 1) + 0.1)
total = dist.all_reduce(a, "sum").numpy()
mean = dist.all_reduce(a, "mean").numpy()
ints = dist.all_reduce(tf.tensor(np.array([r, 10 * r], np.int32), dtype="int32")).numpy()
root = dist.broadcast(tf.tensor(np.full(3, float(r), np.float64), dtype="float64"), root=n - 1).numpy()
dist.barrier()
expected = sum(np.arange(6, dtype=np.float32).reshape(2, 3) * (k + 1) + np.float32(0.1) for k in range(n))
assert np.allclose(total, expected, rtol=1e-6), (total, expected)
assert np.allclose(mean, expected / n, rtol=1e-6)
assert ints.tolist() == [sum(range(n)), 10 * sum(range(n))], ints
assert root.tolist() == [n - 1.0] * 3, root
try:   # ranks disagree on the shape: every rank must hear about it, none may hang
    dist.all_reduce(tf.zeros([2 + r]))
    raise SystemExit("a shape mismatch went unnoticed")
except dist.DistributedError as exc:
    message = str(exc)
    assert "ranks 1" in message and f"rank {r} has: tensor[{2 + r}] float32" in message, message
Path(sys.argv[1], f"rank{r}.txt").write_text(f"ok {total.tobytes().hex()} {mean.tobytes().hex()}")
