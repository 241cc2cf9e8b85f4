"""Convolution and pooling (gpugrad/api/ops/conv.py) against float64 numpy loops, their gradients
by central differences, TF.js's output-shape rules and its error messages."""
from __future__ import annotations

import math

import numpy as np
import pytest

import gpugrad as tf
from gpugrad.testing import check_grads

RNG = np.random.default_rng(0)


def rand(*shape):
    return RNG.standard_normal(shape)


# --- float64 references: direct loops over output positions --------------------------------------


def same_pads(size, k, s, d=1):
    """TF's 'same' padding: (before, after) along one axis, independently of conv.py."""
    eff = (k - 1) * d + 1
    out = -(-size // s)
    total = max(0, (out - 1) * s + eff - size)
    return out, (total // 2, total - total // 2)


def windows(x, kh, kw, s, d, pads, out_hw):
    """Yield (o, p, window [N, kh, kw, C] or None-masked) over output positions, padding NaN."""
    (t, b, l, r), (sh, sw), (dh, dw) = pads, s, d
    xp = np.pad(x, [(0, 0), (t, b + 8), (l, r + 8), (0, 0)], constant_values=np.nan)
    for o in range(out_hw[0]):
        for p in range(out_hw[1]):
            yield o, p, xp[:, o * sh:o * sh + (kh - 1) * dh + 1:dh, p * sw:p * sw + (kw - 1) * dw + 1:dw, :]


def ref_conv2d(x, w, s, pads, out_hw, d=(1, 1)):
    kh, kw, _, cout = w.shape
    y = np.zeros((x.shape[0],) + tuple(out_hw) + (cout,))
    for o, p, win in windows(x, kh, kw, s, d, pads, out_hw):
        y[:, o, p, :] = np.einsum("nijc,ijcd->nd", np.nan_to_num(win, nan=0.0), w)
    return y


def ref_depthwise(x, w, s, pads, out_hw, d=(1, 1)):
    kh, kw, cin, mult = w.shape
    y = np.zeros((x.shape[0],) + tuple(out_hw) + (cin * mult,))
    for o, p, win in windows(x, kh, kw, s, d, pads, out_hw):
        y[:, o, p, :] = np.einsum("nijc,ijcm->ncm", np.nan_to_num(win, nan=0.0), w).reshape(x.shape[0], -1)
    return y


def ref_pool(x, k, s, pads, out_hw, kind):
    y = np.zeros((x.shape[0],) + tuple(out_hw) + (x.shape[3],))
    for o, p, win in windows(x, k[0], k[1], s, (1, 1), pads, out_hw):
        y[:, o, p, :] = (np.nanmax if kind == "max" else np.nanmean)(win, axis=(1, 2))
    return y


def ref_conv2d_transpose(x, w, out_shape, s, pads):
    """The adjoint of ref_conv2d: scatter each input position's filter response."""
    n, h, wd, cout = out_shape
    kh, kw = w.shape[:2]
    t, b, l, r = pads
    y = np.zeros((n, h + t + b + kh, wd + l + r + kw, cout))
    for o in range(x.shape[1]):
        for p in range(x.shape[2]):
            y[:, o * s[0]:o * s[0] + kh, p * s[1]:p * s[1] + kw, :] += np.einsum("nc,ijdc->nijd", x[:, o, p, :], w)
    return y[:, t:t + h, l:l + wd, :]


# --- conv2d ----------------------------------------------------------------------------------------

CONV_CASES = [
    # x shape, filter shape, strides, pad, dilations, expected output spatial, pads (t, b, l, r)
    ((2, 5, 6, 3), (3, 3, 3, 4), 1, "same", 1, (5, 6), (1, 1, 1, 1)),
    ((2, 5, 6, 3), (3, 3, 3, 4), 1, "valid", 1, (3, 4), (0, 0, 0, 0)),
    ((1, 7, 8, 2), (3, 2, 2, 3), (2, 3), "same", 1, (4, 3), (1, 1, 0, 1)),
    ((1, 7, 8, 2), (3, 2, 2, 3), (2, 3), "valid", 1, (3, 3), (0, 0, 0, 0)),
    ((2, 6, 6, 1), (2, 2, 1, 2), 2, "same", 1, (3, 3), (0, 0, 0, 0)),
    ((1, 7, 7, 2), (3, 3, 2, 2), 1, "same", 2, (7, 7), (2, 2, 2, 2)),
    ((1, 8, 7, 2), (2, 3, 2, 3), 1, "valid", (2, 1), (6, 5), (0, 0, 0, 0)),
    ((1, 5, 5, 2), (3, 3, 2, 2), 1, [[0, 0], [1, 2], [0, 1], [0, 0]], 1, (6, 4), (1, 2, 0, 1)),
    ((1, 6, 5, 2), (3, 3, 2, 2), 2, 1, 1, (3, 3), (1, 1, 1, 1)),       # numeric pad, truncated
    ((3, 4, 4, 5), (1, 1, 5, 2), 1, "valid", 1, (4, 4), (0, 0, 0, 0)),  # 1x1: a plain matmul
]


@pytest.mark.parametrize("xs,ws,strides,pad,dil,out_hw,pads", CONV_CASES)
def test_conv2d_forward(xs, ws, strides, pad, dil, out_hw, pads):
    x, w = rand(*xs), rand(*ws)
    y = tf.conv2d(tf.tensor(x, dtype="float64"), tf.tensor(w, dtype="float64"), strides, pad, "NHWC", dil)
    s = (strides, strides) if isinstance(strides, int) else strides
    d = (dil, dil) if isinstance(dil, int) else dil
    assert y.shape == (xs[0],) + out_hw + (ws[3],)
    assert y.dtype == "float64"
    np.testing.assert_allclose(y.numpy(), ref_conv2d(x, w, s, pads, out_hw, d), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("xs,ws,strides,pad,dil,out_hw,pads", CONV_CASES[:8])
def test_conv2d_gradients(xs, ws, strides, pad, dil, out_hw, pads):
    check_grads(lambda x, w: tf.conv2d(x, w, strides, pad, "NHWC", dil), [rand(*xs), rand(*ws)])


def test_conv2d_second_order():
    check_grads(lambda x, w: tf.conv2d(x, w, 1, "same"), [rand(1, 3, 3, 2), rand(2, 2, 2, 2)], order=2)
    check_grads(lambda x, w: tf.tanh(tf.conv2d(x, w, 2, "valid")), [rand(1, 5, 4, 1), rand(2, 2, 1, 2)], order=2)


def test_conv2d_same_matches_tfjs_pads_independently():
    for size, k, s, d in [(5, 3, 1, 1), (7, 3, 2, 1), (6, 2, 2, 1), (7, 3, 1, 2), (8, 4, 3, 1)]:
        out, (t, b) = same_pads(size, k, s, d)
        x, w = rand(1, size, 1, 1), rand(k, 1, 1, 1)
        y = tf.conv2d(tf.tensor(x, dtype="float64"), tf.tensor(w, dtype="float64"), (s, 1), "same", "NHWC", (d, 1))
        np.testing.assert_allclose(y.numpy(), ref_conv2d(x, w, (s, 1), (t, b, 0, 0), (out, 1), (d, 1)), atol=1e-12)


def test_conv2d_rank3_nchw_float32_and_rounding():
    x, w = rand(5, 6, 3), rand(3, 3, 3, 2)
    y = tf.conv2d(x, w, 1, "same")
    assert y.shape == (5, 6, 2) and y.dtype == "float32"
    np.testing.assert_allclose(y.numpy(), ref_conv2d(x[None], w, (1, 1), (1, 1, 1, 1), (5, 6))[0], rtol=1e-5, atol=1e-5)
    xn = np.transpose(x[None], (0, 3, 1, 2))
    yn = tf.conv2d(tf.tensor(xn, dtype="float64"), tf.tensor(w, dtype="float64"), 1, "same", "NCHW")
    np.testing.assert_allclose(yn.numpy(), np.transpose(ref_conv2d(x[None], w, (1, 1), (1, 1, 1, 1), (5, 6)), (0, 3, 1, 2)), atol=1e-10)
    # numeric pad with a rounding mode: (6 - 3 + 2) / 2 + 1 = 3.5
    x2 = rand(1, 6, 6, 1)
    for mode, out in [("floor", 3), ("round", 4), ("ceil", 4), (None, 3)]:
        y2 = tf.conv2d(tf.tensor(x2, dtype="float64"), tf.ones([3, 3, 1, 1], "float64"), 2, 1, "NHWC", 1, mode)
        assert y2.shape == (1, out, out, 1), mode
        np.testing.assert_allclose(y2.numpy(), ref_conv2d(x2, np.ones((3, 3, 1, 1)), (2, 2), (1, 1, 1, 1), (out, out)), atol=1e-12)
    assert tf.conv2d(tf.ones([1, 4, 4, 1], "int32"), tf.ones([2, 2, 1, 1], "int32"), 1, "valid").dtype == "float32"


def test_conv2d_errors():
    x, w = tf.ones([1, 5, 5, 3]), tf.ones([3, 3, 3, 2])
    with pytest.raises(ValueError, match=r"Error in conv2d: input must be rank 4, but got rank 2\."):
        tf.conv2d(tf.ones([5, 5]), w, 1, "same")
    with pytest.raises(ValueError, match=r"Error in conv2d: filter must be rank 4, but got rank 3\."):
        tf.conv2d(x, tf.ones([3, 3, 3]), 1, "same")
    with pytest.raises(ValueError, match=r"Error in conv2d: depth of input \(3\) must match input depth for filter 2\."):
        tf.conv2d(x, tf.ones([3, 3, 2, 2]), 1, "same")
    with pytest.raises(ValueError, match=r"Error in conv2D: Either strides or dilations must be 1\. "
                                         r"Got strides 2,2 and dilations '2,2'"):
        tf.conv2d(x, w, 2, "same", "NHWC", 2)
    with pytest.raises(ValueError, match=r"Error in conv2d: pad must be an integer when using dimRoundingMode "
                                         r"floor but got pad same\."):
        tf.conv2d(x, w, 1, "same", "NHWC", 1, "floor")
    with pytest.raises(ValueError, match="Unknown padding parameter: full"):
        tf.conv2d(x, w, 1, "full")
    with pytest.raises(ValueError, match="Unknown dataFormat NWHC"):
        tf.conv2d(x, w, 1, "same", "NWHC")
    with pytest.raises(ValueError, match="explicit padding must be 4 pairs"):
        tf.conv2d(x, w, 1, [[0, 0], [1, 1], [1, 1]])
    with pytest.raises(ValueError, match="output would be empty"):
        tf.conv2d(x, tf.ones([7, 7, 3, 2]), 1, "valid")
    with pytest.raises(TypeError, match="strides must be an integer or a pair"):
        tf.conv2d(x, w, 1.5, "same")
    with pytest.raises(ValueError, match="strides must be positive"):
        tf.conv2d(x, w, [0, 1], "same")
    assert tf.conv2d is tf.__dict__["conv2d"] and tf.conv2dTranspose is tf.conv2d_transpose


# --- conv1d ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stride,pad,dil,out_w,pads", [
    (1, "same", 1, 7, (1, 1)), (2, "valid", 1, 3, (0, 0)), (1, "same", 2, 7, (2, 2)),
    (1, [[0, 0], [0, 0], [2, 0], [0, 0]], 1, 7, (2, 0))])
def test_conv1d(stride, pad, dil, out_w, pads):
    x, w = rand(2, 7, 3), rand(3, 3, 2)
    y = tf.conv1d(tf.tensor(x, dtype="float64"), tf.tensor(w, dtype="float64"), stride, pad, "NWC", dil)
    want = ref_conv2d(x[:, None], w[None], (1, stride), (0, 0) + pads, (1, out_w), (1, dil))[:, 0]
    assert y.shape == (2, out_w, 2)
    np.testing.assert_allclose(y.numpy(), want, atol=1e-10)
    assert tf.conv1d(x[0], w, stride, pad, "NWC", dil).shape == (out_w, 2)
    check_grads(lambda a, b: tf.conv1d(a, b, stride, pad, "NWC", dil), [x, w])


def test_conv1d_errors():
    with pytest.raises(ValueError, match=r"Error in conv1d: input must be rank 3, but got rank 4\."):
        tf.conv1d(tf.ones([1, 1, 4, 2]), tf.ones([2, 2, 1]), 1, "same")
    with pytest.raises(ValueError, match=r"Error in conv1d: filter must be rank 3, but got rank 2\."):
        tf.conv1d(tf.ones([1, 4, 2]), tf.ones([2, 2]), 1, "same")
    with pytest.raises(ValueError, match=r"Error in conv1d: depth of input \(2\) must match input depth for filter 3\."):
        tf.conv1d(tf.ones([1, 4, 2]), tf.ones([2, 3, 1]), 1, "same")
    with pytest.raises(ValueError, match=r"Error in conv1D: Either stride or dilation must be 1\. Got stride 2 and dilation '2'"):
        tf.conv1d(tf.ones([1, 9, 2]), tf.ones([2, 2, 1]), 2, "same", "NWC", 2)
    with pytest.raises(ValueError, match="got dataFormat of NCW but only NWC is currently supported"):
        tf.conv1d(tf.ones([1, 4, 2]), tf.ones([2, 2, 1]), 1, "same", "NCW")


# --- conv2d_transpose --------------------------------------------------------------------------------


@pytest.mark.parametrize("out_shape,ws,strides,pad", [
    ((2, 5, 6, 3), (3, 3, 3, 4), 1, "same"),
    ((1, 7, 8, 2), (3, 2, 2, 3), (2, 3), "same"),
    ((1, 7, 8, 2), (3, 3, 2, 3), 2, "valid"),
    ((1, 6, 6, 1), (2, 2, 1, 2), 2, "same"),
    ((1, 6, 5, 2), (3, 3, 2, 2), 2, 1),
])
def test_conv2d_transpose_is_the_adjoint_of_conv2d(out_shape, ws, strides, pad):
    w = rand(*ws)
    probe = tf.conv2d(tf.zeros(out_shape, "float64"), tf.tensor(w, dtype="float64"), strides, pad)
    x = rand(*probe.shape)
    y = tf.conv2d_transpose(tf.tensor(x, dtype="float64"), tf.tensor(w, dtype="float64"), out_shape, strides, pad)
    assert y.shape == out_shape
    s = (strides, strides) if isinstance(strides, int) else strides
    # <conv2d(z), x> == <z, conv2d_transpose(x)> for every z: the defining property
    z = rand(*out_shape)
    lhs = np.vdot(tf.conv2d(tf.tensor(z, dtype="float64"), tf.tensor(w, dtype="float64"), strides, pad).numpy(), x)
    np.testing.assert_allclose(lhs, np.vdot(z, y.numpy()), rtol=1e-10)
    if pad in ("same", "valid"):
        oh, (t, b) = same_pads(out_shape[1], ws[0], s[0]) if pad == "same" else (0, (0, 0))
        ow, (l, r) = same_pads(out_shape[2], ws[1], s[1]) if pad == "same" else (0, (0, 0))
        np.testing.assert_allclose(y.numpy(), ref_conv2d_transpose(x, w, out_shape, s, (t, b, l, r)), atol=1e-10)
    check_grads(lambda a, b: tf.conv2d_transpose(a, b, out_shape, strides, pad), [x, w])


def test_conv2d_transpose_rank3_and_errors():
    w = tf.ones([3, 3, 2, 4])
    assert tf.conv2dTranspose(tf.ones([4, 4, 4]), w, [4, 4, 2], 1, "same").shape == (4, 4, 2)
    with pytest.raises(ValueError, match=r"Length of inShape \(4\) and rank of dy \(3\) must match"):
        tf.conv2d_transpose(tf.ones([4, 4, 4]), w, [1, 4, 4, 2], 1, "same")
    with pytest.raises(ValueError, match=r"Error in conv2dDerInput: depth of input \(3\) must match input depth for filter 2\."):
        tf.conv2d_transpose(tf.ones([1, 4, 4, 4]), w, [1, 4, 4, 3], 1, "same")
    with pytest.raises(ValueError, match=r"Error in conv2dDerInput: depth of output \(5\) must match output depth for filter 4\."):
        tf.conv2d_transpose(tf.ones([1, 4, 4, 5]), w, [1, 4, 4, 2], 1, "same")
    with pytest.raises(ValueError, match=r"is not what a conv2d of an input of shape \[1, 8, 8, 2\]"):
        tf.conv2d_transpose(tf.ones([1, 4, 4, 4]), w, [1, 8, 8, 2], 1, "same")


# --- depthwise_conv2d --------------------------------------------------------------------------------


@pytest.mark.parametrize("xs,ws,strides,pad,dil,out_hw,pads", [
    ((2, 5, 6, 3), (3, 3, 3, 2), 1, "same", 1, (5, 6), (1, 1, 1, 1)),
    ((1, 7, 8, 2), (3, 2, 2, 1), (2, 3), "valid", 1, (3, 3), (0, 0, 0, 0)),
    ((1, 7, 7, 2), (3, 3, 2, 3), 1, "same", 2, (7, 7), (2, 2, 2, 2)),
    ((1, 5, 5, 2), (2, 2, 2, 2), 1, [[0, 0], [1, 0], [0, 1], [0, 0]], 1, (5, 5), (1, 0, 0, 1)),
])
def test_depthwise_conv2d(xs, ws, strides, pad, dil, out_hw, pads):
    x, w = rand(*xs), rand(*ws)
    y = tf.depthwise_conv2d(tf.tensor(x, dtype="float64"), tf.tensor(w, dtype="float64"), strides, pad, "NHWC", dil)
    s = (strides, strides) if isinstance(strides, int) else strides
    d = (dil, dil) if isinstance(dil, int) else dil
    assert y.shape == (xs[0],) + out_hw + (ws[2] * ws[3],)
    np.testing.assert_allclose(y.numpy(), ref_depthwise(x, w, s, pads, out_hw, d), atol=1e-10)
    check_grads(lambda a, b: tf.depthwise_conv2d(a, b, strides, pad, "NHWC", dil), [x, w])


def test_depthwise_conv2d_errors():
    with pytest.raises(ValueError, match=r"Error in depthwiseConv2d: number of input channels \(3\) must match "
                                         r"the inChannels dimension in filter 2\."):
        tf.depthwiseConv2d(tf.ones([1, 4, 4, 3]), tf.ones([2, 2, 2, 1]), 1, "same")
    with pytest.raises(ValueError, match=r"Error in depthwiseConv2d: filter must be rank 4, but got rank 3\."):
        tf.depthwise_conv2d(tf.ones([1, 4, 4, 3]), tf.ones([2, 2, 3]), 1, "same")
    with pytest.raises(ValueError, match=r"Error in depthwiseConv2d: Either strides or dilations must be 1\."):
        tf.depthwise_conv2d(tf.ones([1, 9, 9, 3]), tf.ones([2, 2, 3, 1]), 2, "same", "NHWC", 2)


# --- pooling -----------------------------------------------------------------------------------------

POOL_CASES = [
    ((2, 6, 6, 3), 2, 2, "valid", (3, 3), (0, 0, 0, 0)),
    ((2, 5, 7, 2), 3, 2, "same", (3, 4), (1, 1, 1, 1)),
    ((1, 5, 5, 2), (2, 3), 1, "same", (5, 5), (0, 1, 1, 1)),
    ((1, 7, 6, 1), 3, (2, 1), "valid", (3, 4), (0, 0, 0, 0)),
    ((1, 6, 6, 2), 3, 2, 1, (3, 3), (1, 1, 1, 1)),
]


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("xs,k,strides,pad,out_hw,pads", POOL_CASES)
def test_pools(kind, xs, k, strides, pad, out_hw, pads):
    x = rand(*xs)
    op = tf.max_pool if kind == "max" else tf.avg_pool
    y = op(tf.tensor(x, dtype="float64"), k, strides, pad)
    kk = (k, k) if isinstance(k, int) else k
    s = (strides, strides) if isinstance(strides, int) else strides
    assert y.shape == (xs[0],) + out_hw + (xs[3],)
    np.testing.assert_allclose(y.numpy(), ref_pool(x, kk, s, pads, out_hw, kind), atol=1e-12)
    check_grads(lambda a: op(a, k, strides, pad), [x])


def test_pool_second_order_rank3_and_names():
    check_grads(lambda a: tf.avg_pool(tf.square(a), 2, 1, "same"), [rand(1, 3, 3, 2)], order=2)
    check_grads(lambda a: tf.max_pool(tf.square(a), 2, 1, "valid"), [rand(1, 3, 3, 2)], order=2)
    x = rand(4, 4, 2)
    assert tf.maxPool(x, 2, 2, "same").shape == (2, 2, 2) and tf.avgPool(x, 2, 2, "same").shape == (2, 2, 2)
    assert tf.max_pool(tf.ones([1, 4, 4, 1], "int32"), 2, 2, "valid").dtype == "int32"   # as TF.js
    np.testing.assert_array_equal(tf.avg_pool(tf.tensor([[[[1], [2]], [[4], [4]]]], dtype="int32"), 2, 1, "valid").numpy(), [[[[2]]]])
    y = tf.max_pool(tf.tensor(x, dtype="float64"), 1, 1, "valid")    # a 1x1 window: the input
    np.testing.assert_array_equal(y.numpy(), x)


def test_max_pool_ties_share_the_gradient():
    # every window of 2x2 ones has four tied maxima: each gets a quarter (TF.js: the first gets all)
    g = tf.grad(lambda a: tf.sum(tf.max_pool(a, 2, 2, "valid")))(tf.ones([1, 2, 4, 1], "float64"))
    np.testing.assert_array_equal(g.numpy(), np.full((1, 2, 4, 1), 0.25))


def test_avg_pool_same_counts_only_the_input():
    y = tf.avg_pool(tf.ones([1, 3, 3, 1]), 3, 1, "same")
    np.testing.assert_allclose(y.numpy(), np.ones((1, 3, 3, 1)))   # zeros of the padding not averaged in
    y = tf.avg_pool(tf.tensor(np.arange(9.0).reshape(1, 3, 3, 1)), 2, 2, "same")
    np.testing.assert_allclose(y.numpy()[0, :, :, 0], [[2.0, 3.5], [6.5, 8.0]])


def test_pool_errors():
    with pytest.raises(ValueError, match=r"Error in maxPool: input must be rank 4 but got rank 2\."):
        tf.max_pool(tf.ones([4, 4]), 2, 2, "same")
    with pytest.raises(ValueError, match=r"Error in avgPool: x must be rank 4 but got rank 5\."):
        tf.avg_pool(tf.ones([1, 1, 4, 4, 1]), 2, 2, "same")
    with pytest.raises(ValueError, match=r"Error in avgPool: pad must be an integer when using dimRoundingMode "
                                         r"ceil but got pad valid\."):
        tf.avg_pool(tf.ones([1, 4, 4, 1]), 2, 2, "valid", "ceil")
    with pytest.raises(TypeError, match="filterSize must be an integer or a pair"):
        tf.max_pool(tf.ones([1, 4, 4, 1]), [2, 2, 2], 2, "valid")


# --- the numpy backend's in-place add of an unslice (gpugrad/backends/interpret.py) -------------


def test_numpy_backend_adds_unslices_in_place_without_touching_inputs():
    from gpugrad.backends.interpret import compile_group
    a, b, c = rand(2, 3), rand(2, 3), rand(4, 5)
    ta, tb, tc = (tf.tensor(v, dtype="float64") for v in (a, b, c))
    want = np.concatenate([a, b, a], 1)
    np.testing.assert_array_equal(tf.concat([ta, tb, ta], 1).numpy(), want)
    # an input as the other operand is copied, never written
    y = tf.add(tc, tf.pad(ta, [[1, 1], [1, 1]]))
    np.testing.assert_array_equal(y.numpy(), c + np.pad(a, [(1, 1), (1, 1)]))
    np.testing.assert_array_equal(tc.numpy(), c)
    # a broadcast constant as the other operand, and a strided placement
    z = tf.add(tf.pad(tf.tensor(a[:, ::2], dtype="float64"), [[0, 0], [0, 3]]), 1.0)
    np.testing.assert_array_equal(z.numpy(), np.pad(a[:, ::2], [(0, 0), (0, 3)]) + 1.0)
    x, w = tf.variable(tf.ones([1, 4, 4, 1])), tf.variable(tf.ones([2, 2, 1, 1]))
    plan = tf.explain(lambda: tf.sum(tf.conv2d(x, w, 1, "same"))).plan
    sources = [compile_group(g, np).source for g in plan.groups]
    assert any("_add_into" in s for s in sources) and not any("_unslice(xp" in s and "_add_into" not in s
                                                             and s.count("_unslice(xp") > 1 for s in sources)


def test_bench_conv2d_workload_agrees_with_its_numpy_baseline():
    from gpugrad.bench import runner, workloads as W
    work = W.conv2d_step(2, 5, 3, 4, 3, set())
    value, grads = work.run()
    want_value, want_dx, want_dw = work.baselines["numpy"]()
    np.testing.assert_allclose(value.numpy(), want_value, rtol=1e-4)
    got_dx, got_dw = grads.values()
    np.testing.assert_allclose(got_dx.numpy(), want_dx, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got_dw.numpy(), want_dw, rtol=1e-4, atol=1e-4)
    assert "conv2d" in runner.WORKLOADS and "conv2d" in runner.FIXED_SHAPES
    for v in list(tf.variables.registered_variables()):
        v.dispose()


def test_generated_cuda_kernels_agree_on_the_cpu_emulator():
    # the CUDA the cupy backend would run (padding, strided slices, the unslice sums of the
    # gradients, the pools' reductions), every thread emulated, against the numpy backend
    from gpugrad.backends import current
    from gpugrad.backends.emulated import EmulatedCudaBackend, compiler_available
    from gpugrad.compile.schedule import build_plan, structure
    if not compiler_available():
        pytest.skip("g++ is not installed")
    x = tf.tensor(rand(2, 5, 6, 3), dtype="float32")
    w = tf.tensor(rand(3, 3, 3, 4), dtype="float32")
    outs = [tf.conv2d(x, w, 2, "same"), tf.max_pool(x, 3, 2, "same"), tf.avg_pool(x, 2, 1, "same"),
            tf.depthwise_conv2d(x, w[:, :, :, :2], 1, "valid", "NHWC", 2),
            tf.conv2d_transpose(tf.conv2d(x, w, 2, "same"), w, [2, 5, 6, 3], 2, "same")]
    outs += tf.grads(lambda a, b: tf.sum(tf.square(tf.conv2d(a, b, (2, 1), "same")))
                     + tf.sum(tf.max_pool(a, 2, 1, "same")))([x, w])
    nodes_out = [o._node() for o in outs]
    _, leaves, nodes = structure(nodes_out)
    plan = build_plan(nodes_out, nodes)
    inputs = [leaf.buf for leaf in leaves]
    for want, got in zip(current().run(plan, inputs), EmulatedCudaBackend().run(plan, inputs)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
