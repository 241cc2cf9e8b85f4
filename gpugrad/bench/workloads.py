"""The benchmark workloads, written with gpugrad and, side by side, the way a user of numpy,
PyTorch, JAX or CuPy would write them."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

import gpugrad as tf

ELEMENTWISE = {  # name -> (gpugrad op, numpy forward, numpy derivative, input range)
    "neg": (tf.neg, np.negative, lambda x: -np.ones_like(x), (-1, 1)),
    "exp": (tf.exp, np.exp, np.exp, (-1, 1)),
    "log": (tf.log, np.log, lambda x: 1 / x, (0.5, 2)),
    "sqrt": (tf.sqrt, np.sqrt, lambda x: 0.5 / np.sqrt(x), (0.5, 2)),
    "rsqrt": (tf.rsqrt, lambda x: 1 / np.sqrt(x), lambda x: -0.5 * x ** -1.5, (0.5, 2)),
    "sin": (tf.sin, np.sin, np.cos, (-1, 1)),
    "cos": (tf.cos, np.cos, lambda x: -np.sin(x), (-1, 1)),
    "tanh": (tf.tanh, np.tanh, lambda x: 1 - np.tanh(x) ** 2, (-1, 1)),
    "sigmoid": (tf.sigmoid, lambda x: 1 / (1 + np.exp(-x)),
                lambda x: (1 / (1 + np.exp(-x))) * (1 - 1 / (1 + np.exp(-x))), (-1, 1)),
    "log1p": (tf.log1p, np.log1p, lambda x: 1 / (1 + x), (0, 1)),
    "expm1": (tf.expm1, np.expm1, np.exp, (-1, 1)),
    "abs": (tf.abs, np.abs, np.sign, (-1, 1)),
    "reciprocal": (tf.reciprocal, np.reciprocal, lambda x: -1 / (x * x), (0.5, 2)),
    "relu": (tf.relu, lambda x: np.maximum(x, 0), lambda x: (x > 0).astype(x.dtype), (-1, 1)),
    "square": (tf.square, np.square, lambda x: 2 * x, (-1, 1)),
}


@dataclass
class Workload:
    """run() is one call the way gpugrad's user writes it; baselines[name]() the same work
    written for that library. bytes is the one-pass memory floor: bytes read + written."""
    name: str
    size: int
    dtype: str
    bytes: int
    run: Callable[[], object]
    baselines: dict = field(default_factory=dict)
    flops: float = 0.0


def _rng_arrays(n, k, dtype, lo=-1.0, hi=1.0, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.uniform(lo, hi, n).astype(dtype) for _ in range(k)]


def _realize(*ts):
    for t in ts:
        t.data_buffer()


def seed(n: int, dtype: str, compare: set) -> Workload:
    pn, qn, rn = _rng_arrays(n, 3, dtype)
    p, q = tf.variable(tf.tensor(pn, dtype=dtype)), tf.variable(tf.tensor(qn, dtype=dtype))
    r = tf.tensor(rn, dtype=dtype)
    f = lambda: p.add(r.square()).mul(q.add(r)).sum()  # noqa: E731

    def run():
        value, grads = tf.variable_grads(f, [p, q])
        return value, grads
    w = Workload("seed", n, dtype, 5 * n * np.dtype(dtype).itemsize, run)

    def numpy_hand():
        a = pn + rn * rn
        b = qn + rn
        return np.sum(a * b), b, a
    w.baselines["numpy"] = numpy_hand
    _add_framework_baselines(w, compare, (pn, qn, rn), lambda xp, p, q, r: xp.sum((p + r * r) * (q + r)), (0, 1))
    if "cupy" in compare:
        _cupy_seed(w, pn, qn, rn)
    return w


def _cupy_seed(work: Workload, pn, qn, rn) -> None:
    """What a CuPy user would write: one ElementwiseKernel for both gradients, cupy.sum."""
    from gpugrad.backends import current
    if current().name != "cupy":
        return
    import cupy
    p, q, r = (cupy.asarray(a) for a in (pn, qn, rn))
    grads = cupy.ElementwiseKernel("T p, T q, T r", "T gp, T gq", "gp = q + r; gq = p + r * r", "gg_seed_grads")

    def run():
        gp, gq = grads(p, q, r)
        return cupy.sum(gq * gp), gp, gq
    work.baselines["cupy-hand"] = run


def chain(n: int, dtype: str, compare: set) -> Workload:
    xn, wn, bn = _rng_arrays(n, 3, dtype, seed=1)
    x = tf.tensor(xn, dtype=dtype)
    w, b = tf.variable(tf.tensor(wn, dtype=dtype)), tf.variable(tf.tensor(bn, dtype=dtype))
    f = lambda: tf.sum(tf.exp(-tf.tanh(tf.sigmoid(x * w + b) * x - b) ** 2) * w)  # noqa: E731
    work = Workload("chain", n, dtype, 5 * n * np.dtype(dtype).itemsize, lambda: tf.variable_grads(f, [w, b]))

    def numpy_hand():
        s = 1 / (1 + np.exp(-(xn * wn + bn)))
        u = s * xn - bn
        t = np.tanh(u)
        e = np.exp(-t * t)
        value = np.sum(e * wn)
        du = wn * e * (-2 * t) * (1 - t * t)
        ds = du * xn * s * (1 - s)
        return value, e + ds * xn, ds - du
    work.baselines["numpy"] = numpy_hand

    def fn(xp, x, w, b):
        sig = 1 / (1 + xp.exp(-(x * w + b)))
        return xp.sum(xp.exp(-xp.tanh(sig * x - b) ** 2) * w)
    _add_framework_baselines(work, compare, (xn, wn, bn), fn, (1, 2))
    return work


def total_sum(n: int, dtype: str, compare: set) -> Workload:
    (xn,) = _rng_arrays(n, 1, dtype, seed=2)
    x = tf.tensor(xn, dtype=dtype)
    w = Workload("sum", n, dtype, n * np.dtype(dtype).itemsize, lambda: tf.sum(x).data_buffer())
    w.baselines["numpy"] = lambda: np.sum(xn)
    return w


def elementwise(op: str, n: int, dtype: str, backward: bool) -> Workload:
    fn, np_fwd, np_bwd, (lo, hi) = ELEMENTWISE[op]
    xn, dyn = _rng_arrays(n, 2, dtype, lo, hi, seed=3)
    x, dy = tf.tensor(xn, dtype=dtype), tf.tensor(dyn, dtype=dtype)
    item = np.dtype(dtype).itemsize
    if backward:
        g = tf.grad(fn)
        w = Workload(f"{op}:bwd", n, dtype, 3 * n * item, lambda: g(x, dy).data_buffer())
        w.baselines["numpy"] = lambda: dyn * np_bwd(xn)
    else:
        w = Workload(f"{op}:fwd", n, dtype, 2 * n * item, lambda: fn(x).data_buffer())
        w.baselines["numpy"] = lambda: np_fwd(xn)
    return w


def matmul(n: int, dtype: str, compare: set) -> Workload:
    side = max(1, int(round(math.sqrt(n))))
    an, bn = (a.reshape(side, side) for a in _rng_arrays(side * side, 2, dtype, seed=4))
    a, b = tf.tensor(an, dtype=dtype), tf.tensor(bn, dtype=dtype)
    item = np.dtype(dtype).itemsize
    w = Workload("matmul", side * side, dtype, 3 * side * side * item,
                 lambda: tf.matmul(a, b).data_buffer(), flops=2.0 * side ** 3)
    w.baselines["numpy"] = lambda: an @ bn
    return w


def copy_floor(n: int, dtype: str) -> Callable[[], object]:
    """One read and one write of n elements: the device's copy bandwidth."""
    from gpugrad.backends import current
    backend = current()
    xp = backend.xp if backend.name == "cupy" else np
    src = xp.ones(n, dtype=dtype)
    dst = xp.empty_like(src)
    return lambda: xp.copyto(dst, src)


_COMPILED: dict = {}


def _compiled(kind: str, fn, wrt: tuple, build):
    """One compiled function per (library, fn's code): the runner builds a workload once per
    input set (up to 16), and a fresh torch.compile / jax.jit each time would recompile each
    time (torch.compile falls back to eager after 8 recompiles of one frame)."""
    if fn.__closure__ is not None:  # fn depends on captured values: its code is not its identity
        return build()
    key = (kind, fn.__code__, wrt)
    if key not in _COMPILED:
        _COMPILED[key] = build()
    return _COMPILED[key]


def _add_framework_baselines(work: Workload, compare: set, arrays, fn, wrt: tuple) -> None:
    """PyTorch eager / torch.compile, JAX jit(value_and_grad), where importable; wrt are the
    positions of the arrays the gradients are taken for."""
    from gpugrad.backends import current
    on_gpu = current().name == "cupy"
    if "torch" in compare:
        try:
            import torch
            dev = "cuda" if on_gpu and torch.cuda.is_available() else "cpu"
            ts = [torch.tensor(a, device=dev) for a in arrays]

            def eager():
                leaves = [t.detach().requires_grad_(i in wrt) for i, t in enumerate(ts)]
                y = fn(torch, *leaves)
                gs = torch.autograd.grad(y, [leaves[i] for i in wrt])
                return y, gs
            work.baselines["torch-eager"] = eager
            compiled = _compiled("torch", fn, wrt, lambda: torch.compile(lambda *a: fn(torch, *a)))

            def comp():
                leaves = [t.detach().requires_grad_(i in wrt) for i, t in enumerate(ts)]
                y = compiled(*leaves)
                return y, torch.autograd.grad(y, [leaves[i] for i in wrt])
            work.baselines["torch-compile"] = comp
        except Exception:  # noqa: BLE001 - a baseline that cannot run is left out
            pass
    if "jax" in compare:
        try:
            import jax
            import jax.numpy as jnp
            js = [jnp.asarray(a) for a in arrays]
            vg = _compiled("jax", fn, wrt, lambda: jax.jit(jax.value_and_grad(lambda *a: fn(jnp, *a), argnums=wrt)))
            work.baselines["jax-jit"] = lambda: jax.block_until_ready(vg(*js))
        except Exception:  # noqa: BLE001
            pass


# --- a training step: MLP (relu, softmax cross-entropy), Adam ---------------------------------


def _mlp_data(batch: int, d_in: int, hidden: int, d_out: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, d_in)).astype(np.float32)
    labels = rng.integers(0, d_out, batch)
    w1 = (rng.normal(size=(d_in, hidden)) * np.sqrt(2 / d_in)).astype(np.float32)
    w2 = (rng.normal(size=(hidden, d_out)) * np.sqrt(1 / hidden)).astype(np.float32)
    return x, labels, [w1, np.zeros(hidden, np.float32), w2, np.zeros(d_out, np.float32)]


def mlp_gpugrad_step(x, labels, params):
    """One Adam step of gpugrad's user: minimize the loss, wait for the update to land."""
    w1, b1, w2, b2 = (tf.variable(tf.tensor(p)) for p in params)
    xt, yt = tf.tensor(x), tf.tensor(labels.astype(np.int32), dtype="int32")
    opt = tf.train.adam(1e-3, var_list=[w1, b1, w2, b2])

    def loss():
        return tf.losses.softmax_cross_entropy(yt, tf.relu(xt @ w1 + b1) @ w2 + b2)

    def step():
        opt.minimize(loss)
        return w2.data_buffer()
    return step


def mlp_numpy_step(x, labels, params):
    """The same step by a careful numpy user: forward, closed-form backward, in-place Adam."""
    w1, b1, w2, b2 = (p.copy() for p in params)
    ps = [w1, b1, w2, b2]
    ms = [np.zeros_like(p) for p in ps]
    vs = [np.zeros_like(p) for p in ps]
    onehot = np.eye(w2.shape[1], dtype=np.float32)[labels]
    lr, beta1, beta2, eps = np.float32(1e-3), np.float32(0.9), np.float32(0.999), np.float32(1e-7)
    t = [0]

    def step():
        h_pre = x @ w1 + b1
        h = np.maximum(h_pre, 0)
        z = h @ w2 + b2
        z -= z.max(1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(1, keepdims=True)
        dz = (p - onehot) / np.float32(x.shape[0])
        dh = dz @ w2.T
        dh[h_pre <= 0] = 0
        grads = [x.T @ dh, dh.sum(0), h.T @ dz, dz.sum(0)]
        t[0] += 1
        bc1, bc2 = np.float32(1 - 0.9 ** t[0]), np.float32(1 - 0.999 ** t[0])
        for w, g, m, v in zip(ps, grads, ms, vs):
            m *= beta1
            m += (1 - beta1) * g
            v *= beta2
            v += (1 - beta2) * g * g
            w -= lr * (m / bc1) / (np.sqrt(v / bc2) + eps)
    return step


def mlp_step(batch: int, d_in: int, hidden: int, d_out: int, compare: set) -> Workload:
    data = _mlp_data(batch, d_in, hidden, d_out)
    params = d_in * hidden + hidden + hidden * d_out + d_out
    flops = 3 * 2.0 * batch * (d_in * hidden + hidden * d_out)  # forward + two backward GEMMs
    work = Workload(f"mlp{batch}x{d_in}-{hidden}-{d_out}", params, "float32",
                    4 * params * 4, mlp_gpugrad_step(*data), flops=flops)
    work.baselines["numpy"] = mlp_numpy_step(*data)
    if "torch" in compare:
        try:
            work.baselines["torch-eager"] = _torch_mlp_step(*data)
        except Exception:  # noqa: BLE001 - a baseline that cannot run is left out
            pass
    return work


def _torch_mlp_step(x, labels, params):
    import torch
    from gpugrad.backends import current
    dev = "cuda" if current().name == "cupy" and torch.cuda.is_available() else "cpu"
    torch.backends.cuda.matmul.allow_tf32 = False
    ps = [torch.tensor(p, device=dev, requires_grad=True) for p in params]
    xt = torch.tensor(x, device=dev)
    yt = torch.tensor(labels, device=dev)
    opt = torch.optim.Adam(ps, lr=1e-3, eps=1e-7)

    def step():
        opt.zero_grad(set_to_none=True)
        z = torch.relu(xt @ ps[0] + ps[1]) @ ps[2] + ps[3]
        torch.nn.functional.cross_entropy(z, yt).backward()
        opt.step()
    return step


# --- a convolution, forward and backward -------------------------------------------------------


def numpy_conv2d_step(x, w, dy):
    """A careful numpy user's 'same' stride-1 conv2d (NHWC) with both gradients: im2col (one
    slice copy per tap), one GEMM forward, two backward, col2im by slice adds."""
    n, h, wd, c = x.shape
    k, f = w.shape[0], w.shape[3]
    p = k // 2
    xp = np.zeros((n, h + k - 1, wd + k - 1, c), x.dtype)
    cols = np.empty((n, h, wd, k * k, c), x.dtype)
    dxp = np.zeros_like(xp)

    def step():
        xp[:, p:p + h, p:p + wd] = x
        for i in range(k):
            for j in range(k):
                cols[:, :, :, i * k + j] = xp[:, i:i + h, j:j + wd]
        c2 = cols.reshape(-1, k * k * c)
        y = c2 @ w.reshape(-1, f)
        dyf = dy.reshape(-1, f)
        dw = (c2.T @ dyf).reshape(w.shape)
        dcols = (dyf @ w.reshape(-1, f).T).reshape(n, h, wd, k * k, c)
        dxp.fill(0)
        for i in range(k):
            for j in range(k):
                dxp[:, i:i + h, j:j + wd] += dcols[:, :, :, i * k + j]
        return np.vdot(y, dyf), dxp[:, p:p + h, p:p + wd], dw
    return step


def conv2d_step(batch: int, side: int, c_in: int, c_out: int, k: int, compare: set) -> Workload:
    """variable_grads of sum(conv2d(x, w, 1, 'same') * dy) for x and w: the forward conv and
    both of its gradients, NHWC."""
    rng = np.random.default_rng(5)
    xn = rng.standard_normal((batch, side, side, c_in)).astype(np.float32)
    wn = (rng.standard_normal((k, k, c_in, c_out)) / math.sqrt(k * k * c_in)).astype(np.float32)
    dyn = rng.standard_normal((batch, side, side, c_out)).astype(np.float32)
    x, w = tf.variable(tf.tensor(xn)), tf.variable(tf.tensor(wn))
    dy = tf.tensor(dyn)
    f = lambda: tf.sum(tf.mul(tf.conv2d(x, w, 1, "same"), dy))  # noqa: E731

    def run():
        value, grads = tf.variable_grads(f, [x, w])
        _realize(value, *grads.values())
        return value, grads
    flops = 3 * 2.0 * batch * side * side * k * k * c_in * c_out
    work = Workload(f"conv2d{batch}x{side}x{side}x{c_in}-{k}x{k}-{c_out}", xn.size + wn.size,
                    "float32", 4 * (2 * xn.size + 2 * wn.size + dyn.size), run, flops=flops)
    work.baselines["numpy"] = numpy_conv2d_step(xn, wn, dyn)
    from gpugrad.backends import current
    on_gpu = current().name == "cupy"
    if "torch" in compare:
        try:
            import torch
            dev = "cuda" if on_gpu and torch.cuda.is_available() else "cpu"
            xt = torch.tensor(xn, device=dev).permute(0, 3, 1, 2).contiguous()
            wt = torch.tensor(wn, device=dev).permute(3, 2, 0, 1).contiguous()
            dyt = torch.tensor(dyn, device=dev).permute(0, 3, 1, 2).contiguous()

            def eager():
                a, b = xt.detach().requires_grad_(), wt.detach().requires_grad_()
                y = torch.sum(torch.nn.functional.conv2d(a, b, padding=k // 2) * dyt)
                return y, torch.autograd.grad(y, [a, b])
            work.baselines["torch-eager"] = eager
        except Exception:  # noqa: BLE001 - a baseline that cannot run is left out
            pass
    if "jax" in compare:
        try:
            import jax
            import jax.numpy as jnp

            def loss(a, b, d):
                y = jax.lax.conv_general_dilated(a, b, (1, 1), "SAME",
                                                 dimension_numbers=("NHWC", "HWIO", "NHWC"))
                return jnp.sum(y * d)
            vg = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
            js = [jnp.asarray(a) for a in (xn, wn, dyn)]
            work.baselines["jax-jit"] = lambda: jax.block_until_ready(vg(*js))
        except Exception:  # noqa: BLE001
            pass
    return work


def gather_step(vocab: int, dim: int, count: int, compare: set) -> Workload:
    """variable_grads of sum(gather(table, indices) * w) for the table: an embedding lookup and
    its gradient, a scatter-add of count rows into a (vocab, dim) table."""
    rng = np.random.default_rng(6)
    tn = rng.standard_normal((vocab, dim)).astype(np.float32)
    idn = rng.integers(0, vocab, count).astype(np.int32)
    wn = rng.standard_normal((count, dim)).astype(np.float32)
    table, w = tf.variable(tf.tensor(tn)), tf.tensor(wn)
    indices = tf.tensor(idn, dtype="int32")
    f = lambda: tf.sum(tf.mul(tf.gather(table, indices), w))  # noqa: E731

    def run():
        value, grads = tf.variable_grads(f, [table])
        _realize(value, *grads.values())
        return value, grads
    # one pass: read the gathered rows, w and the indices, write the table's gradient
    nbytes = 4 * (2 * count * dim + count + vocab * dim)
    work = Workload(f"gather{vocab}x{dim}-{count}", count * dim, "float32", nbytes, run)

    def numpy_hand():
        value = np.sum(tn[idn] * wn)
        grad = np.zeros_like(tn)
        np.add.at(grad, idn, wn)
        return value, grad
    work.baselines["numpy"] = numpy_hand
    _add_framework_baselines(work, compare, (tn, idn.astype(np.int64), wn),
                             lambda xp, t, i, g: xp.sum(t[i] * g), (0,))
    return work
