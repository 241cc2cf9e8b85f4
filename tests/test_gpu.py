"""GPU-only behaviour of the CuPy backend. Every test here skips cleanly without a GPU."""
from __future__ import annotations

import numpy as np
import pytest

import gpugrad as tf
from gpugrad.core import snippets

rng = np.random.default_rng(3)


def _seed_vars(n, dtype="float32"):
    p = tf.variable(tf.tensor(rng.uniform(-1, 1, n), dtype=dtype))
    q = tf.variable(tf.tensor(rng.uniform(-1, 1, n), dtype=dtype))
    r = tf.tensor(rng.uniform(-1, 1, n), dtype=dtype)
    return p, q, r, (lambda: p.add(r.square()).mul(q.add(r)).sum())


FUNCTIONS = [
    lambda x, w: tf.sum((x + w * w) * (w + x)),
    lambda x, w: tf.sum(tf.exp(-tf.tanh(tf.sigmoid(x * w + w) * x - w) ** 2) * w),
    lambda x, w: tf.mean(tf.softmax(x * w, -1) * x),
    lambda x, w: tf.sum(tf.logsumexp(x * w, 0)) + tf.sum(tf.max(x - w, 1)),
    lambda x, w: tf.sum(tf.matmul(tf.tanh(x), w, transpose_b=True)),
    lambda x, w: tf.sum(tf.pad(x[::-1, 1:] * w[:, :-1], [[1, 1], [2, 0]]) ** 2),
    lambda x, w: tf.sum(tf.concat([x, w], 1) ** 2) + tf.sum(tf.stack([w, x], 0)[1] * w),
    lambda x, w: tf.sum(tf.gather(x * w, np.arange(64)[::-3] % 40, 0) ** 2),
    lambda x, w: tf.sum(tf.cumsum(x * w, 1) ** 2) + tf.sum(tf.top_k(x - w, 3).values),
    lambda x, w: tf.sum(tf.conv2d(tf.reshape(x, [1, 8, 8, 48]), tf.reshape(w, [2, 2, 48, 16]), 1, "same") ** 2),
]


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_cupy_matches_numpy(gpu, fn):
    xs = rng.uniform(-1, 1, (64, 48)).astype(np.float32)
    ws = rng.uniform(-1, 1, (64, 48)).astype(np.float32)
    results = {}
    for backend in ("numpy", "cupy"):
        tf.set_backend(backend)
        x, w = tf.tensor(xs), tf.tensor(ws)
        value, (gx, gw) = tf.value_and_grads(fn)([x, w])
        results[backend] = (value.numpy(), gx.numpy(), gw.numpy())
    tf.set_backend("cupy")
    for a, b in zip(results["numpy"], results["cupy"]):
        np.testing.assert_allclose(b, a, rtol=2e-4, atol=2e-5)


def test_variable_grads_under_stream_capture(gpu):
    import cupy
    p, q, r, f = _seed_vars(1 << 16)
    tf.variable_grads(f)  # compile and warm the pool outside the capture
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        stream.begin_capture()
        try:
            value, grads = tf.variable_grads(f)  # a D2H copy or sync here raises
        finally:
            graph = stream.end_capture()
    graph.launch(stream)
    stream.synchronize()
    expected_gp = q.numpy() + r.numpy()
    np.testing.assert_allclose(grads[p.name].numpy(), expected_gp, rtol=1e-6)


def test_peak_memory_is_inputs_plus_outputs(gpu):
    from gpugrad.backends.cupy_backend import pool_peak
    n = 1 << 24
    p, q, r, f = _seed_vars(n)
    tf.variable_grads(f)
    results = []
    inputs, peak = pool_peak(lambda: results.append(tf.variable_grads(f)))
    assert inputs >= 3 * n * 4
    assert peak - inputs <= 2 * n * 4 + (1 << 20), (peak, inputs)


def test_bitwise_deterministic(gpu):
    p, q, r, f = _seed_vars(1 << 22)
    runs = [tf.variable_grads(f) for _ in range(10)]
    first = runs[0]
    for value, grads in runs[1:]:
        assert value.numpy().tobytes() == first.value.numpy().tobytes()
        for name in grads:
            assert grads[name].numpy().tobytes() == first.grads[name].numpy().tobytes()


def test_dlpack_round_trip_torch(gpu):
    torch = pytest.importorskip("torch")
    t = torch.arange(6, dtype=torch.float32, device="cuda")
    x = tf.from_dlpack(t)
    np.testing.assert_array_equal(x.numpy(), np.arange(6, dtype=np.float32))
    back = torch.from_dlpack(x * 2)
    assert back.is_cuda
    np.testing.assert_array_equal(back.cpu().numpy(), np.arange(6) * 2)


def test_dlpack_round_trip_jax(gpu):
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp
    a = jnp.arange(5, dtype=jnp.float32)
    x = tf.from_dlpack(a)
    np.testing.assert_array_equal(x.numpy(), np.arange(5, dtype=np.float32))
    back = jax.dlpack.from_dlpack(x * 3)
    np.testing.assert_array_equal(np.asarray(back), np.arange(5) * 3)


def test_tensor_from_cupy_array_is_zero_copy(gpu):
    import cupy
    a = cupy.arange(4, dtype=cupy.float32)
    x = tf.tensor(a)
    assert x.data_buffer().data.ptr == a.data.ptr
    assert x.__cuda_array_interface__["data"][0] == a.data.ptr


def test_out_of_memory_is_clear_and_recoverable(gpu):
    import cupy
    free, total = cupy.cuda.runtime.memGetInfo()
    huge = tf.fill([int(total // 4 * 2)], 1.0)
    with pytest.raises(MemoryError, match="bytes"):
        (huge * 2).numpy()
    p, q, r, f = _seed_vars(1000)
    value, grads = tf.variable_grads(f)
    np.testing.assert_allclose(grads[p.name].numpy(), q.numpy() + r.numpy(), rtol=1e-6)


def test_compile_error_names_kernel_and_snippet(gpu, monkeypatch):
    from gpugrad.runtime import engine
    from gpugrad.backends.cupy_backend import KernelCompileError
    engine.plans.clear()
    original = snippets.snippet
    monkeypatch.setattr("gpugrad.compile.codegen.snippet", lambda n: "exp(x +" if n == "log1p" else original(n))
    with pytest.raises(KernelCompileError, match="kernels/elementwise/log1p.cu"):
        tf.log1p(tf.tensor(np.full((7, 3), 1.5))).numpy()
    assert tf.sum(tf.tensor([1.0, 2.0])).item() == 3.0


def test_float32_subnormals_match_numpy(gpu):
    """gpugrad compiles with --ftz=false (CuPy's own compile would flush them to zero)."""
    xs = np.array([1e-20, 3e-20, -2e-20, 5e-39], np.float32)
    results = {}
    for backend in ("numpy", "cupy"):
        tf.set_backend(backend)
        x = tf.tensor(xs)
        results[backend] = [(x * x).numpy(), (x * 0.5).numpy(), tf.sum(x * x).numpy()]
    tf.set_backend("cupy")
    assert np.all(results["numpy"][0][:3] != 0)          # really subnormal, not zero
    for a, b in zip(results["numpy"], results["cupy"]):
        np.testing.assert_array_equal(b, a)


def test_cubins_are_cached_on_disk_and_reused(gpu, tmp_path, monkeypatch):
    from gpugrad.compile import nvrtc
    from gpugrad.backends.cupy_backend import CupyBackend
    from gpugrad.compile.schedule import build_plan, structure
    monkeypatch.setenv("GPUGRAD_CACHE_DIR", str(tmp_path))
    x = tf.tensor(rng.uniform(-1, 1, (37, 5)).astype(np.float32))
    out = tf.sum(tf.exp(x) * 1.25, 1)
    nodes_out = [out._node()]
    _, leaves, nodes = structure(nodes_out)
    inputs = [leaf.buf for leaf in leaves]
    first = CupyBackend().run(build_plan(nodes_out, nodes), inputs)[0].get()
    assert list(tmp_path.glob("*.cubin")), "the first run should leave its cubin on disk"

    def no_compile(*args, **kwargs):
        raise AssertionError("a warm disk cache must not compile again")
    monkeypatch.setattr(nvrtc, "compile_source", no_compile)
    again = CupyBackend().run(build_plan(nodes_out, nodes), inputs)[0].get()
    np.testing.assert_array_equal(again, first)


def test_kernel_resources_are_reported_on_the_device(gpu):
    x = tf.variable(tf.tensor(rng.uniform(-1, 1, 1000).astype(np.float32)))
    text = tf.explain(lambda: tf.sum(tf.exp(x))).summary()
    assert "registers" in text and "sm_" in text
    x.dispose()


@pytest.mark.parametrize("count", [700, 9000])
def test_scatter_add_is_add_at_bit_for_bit(gpu, count):
    """gather's gradient on the GPU, through the sort kernel (700 indices per row) and the
    library sort (9000): the same float32 sums in the same order as numpy's add.at, so the
    same bits, every run."""
    from gpugrad.compile import codegen
    assert (count >= codegen.LIBRARY_SORT_FROM) == (count == 9000)
    table = rng.uniform(-1, 1, (2, 500, 8)).astype(np.float32)
    idx = rng.integers(-2, 502, (2, count))
    idx[:, ::4] = 3
    w = rng.uniform(-1, 1, (2, count, 8)).astype(np.float32)
    lazy = tf.tensor(idx, dtype="int32")
    grads = [tf.grad(lambda v: tf.sum(tf.gather(v, lazy, 1, 1) * tf.tensor(w)))(tf.tensor(table)).numpy()
             for _ in range(2)]
    want = np.zeros_like(table)
    for b in range(2):
        inside = (idx[b] >= 0) & (idx[b] < 500)
        np.add.at(want[b], idx[b][inside], w[b][inside])
    assert grads[0].tobytes() == grads[1].tobytes() == want.tobytes()
