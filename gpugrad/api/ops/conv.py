"""Convolution and pooling, NHWC as TF.js: conv1d, conv2d, conv2d_transpose, depthwise_conv2d,
max_pool, avg_pool, with TF.js's argument order, defaults, output-shape rules
(tfjs-core conv_util.computeConv2DInfo) and messages.

Composed from primitives, so gradients of every order come from the existing rules and every
backend runs them. The input is padded (an ``unslice``), each of the kh*kw filter taps is a
strided slice of it (a view), and:

* conv2d stacks the taps into an im2col matrix (N*Ho*Wo, kh*kw*Cin) times the filter reshaped
  to (kh*kw*Cin, Cout): one matmul (cuBLAS on the GPU, numpy's BLAS on the CPU);
* conv2d_transpose is the adjoint: one matmul by the filter, then each tap's columns are added
  back into place (col2im, ``unslice`` with the stride as step) and the padding cropped;
* depthwise_conv2d and avg_pool are sums of tap * weight (one fused elementwise kernel);
* max_pool is a ``max`` over the stacked taps. Ties share the gradient evenly, as gpugrad's
  ``max`` does (JAX's reduction choice); TF.js's maxPool gives the whole gradient to the first
  maximum in the window.

avg_pool divides by the number of window positions inside the input (padding excluded), as
TF.js does for 'same' and explicit padding. max_pool pads with -inf, so padding never wins.
"""
from __future__ import annotations

import builtins
import math
from typing import Any, Sequence

import numpy as np

from gpugrad.core import dtypes
from gpugrad.core import tensor as T
from gpugrad.core.tensor import Tensor
from gpugrad.api.ops.convert import convert, is_integer, tensor
from gpugrad.api.ops.elementwise import add, div, mul
from gpugrad.api.ops.linalg import matmul
from gpugrad.api.ops.movement import pad as pad_op
from gpugrad.api.ops.movement import reshape, transpose
from gpugrad.api.ops.reductions import max as max_op
from gpugrad.api.ops.reductions import sum as sum_op

TensorLike = Any
__all__ = ['avg_pool', 'conv1d', 'conv2d', 'conv2d_transpose', 'depthwise_conv2d', 'max_pool']


# --- conv_util: argument checks and the output-shape rules ------------------------------------------


def _pair(value: Any, api: str, arg: str) -> tuple[int, int]:
    """A number or a [height, width] pair of positive integers (TF.js's parseTupleParam)."""
    if is_integer(value):
        value = (value, value)
    if not isinstance(value, (list, tuple, np.ndarray)) or len(value) != 2 \
            or not all(is_integer(v) for v in value):
        raise TypeError(f"Error in {api}: {arg} must be an integer or a pair [height, width] of "
                        f"integers, but got {value!r}.")
    if any(v < 1 for v in value):
        raise ValueError(f"Error in {api}: {arg} must be positive, but got {list(value)}.")
    return int(value[0]), int(value[1])


def _round(value: float, mode: str | None) -> int:
    if mode is None:
        return math.trunc(value)
    if mode == "round":
        return math.floor(value + 0.5)   # JavaScript's Math.round: halves up
    if mode == "ceil":
        return math.ceil(value)
    if mode == "floor":
        return math.floor(value)
    raise ValueError(f"Unknown roundingMode {mode}")


def _check_rounding(api: str, pad: Any, mode: str | None) -> None:
    """TF.js's checkPadOnDimRoundingMode: a rounding mode needs a numeric pad."""
    if mode is None:
        return
    if mode not in ("floor", "round", "ceil"):
        raise ValueError(f"Error in {api}: Unknown roundingMode {mode}")
    values = [v for p in pad for v in p] if isinstance(pad, (list, tuple)) else [pad]
    for v in values:
        if isinstance(v, str) or not is_integer(v):
            raise ValueError(f"Error in {api}: pad must be an integer when using dimRoundingMode "
                             f"{mode} but got pad {v}.")


def _strides_or_dilations(api: str, strides, dilations, word: str = "strides") -> None:
    if strides != (1, 1) and dilations != (1, 1):
        s = f"{strides[0]},{strides[1]}"
        d = f"{dilations[0]},{dilations[1]}"
        w2 = "dilation" if word == "stride" else "dilations"
        raise ValueError(f"Error in {api}: Either {word} or {w2} must be 1. Got {word} {s} and {w2} '{d}'")


def conv_info(in_hw: tuple[int, int], filter_hw: tuple[int, int], strides: tuple[int, int],
              dilations: tuple[int, int], pad: Any, rounding: str | None = None,
              api: str = "conv2d", channels_last: bool = True) -> tuple:
    """computeConv2DInfo's spatial part: ((out_h, out_w), (top, bottom, left, right)).
    ``bottom``/``right`` grow where a rounding mode makes the last window reach past the
    padded input (those positions count as padding)."""
    (h, w), (sh, sw), (dh, dw) = in_hw, strides, dilations
    fh = filter_hw[0] + (filter_hw[0] - 1) * (dh - 1)   # the effective (dilated) filter size
    fw = filter_hw[1] + (filter_hw[1] - 1) * (dw - 1)
    if is_integer(pad):
        p = int(pad)
        if p < 0:
            raise ValueError(f"Error in {api}: pad must be non-negative, but got pad {p}.")
        top = bottom = left = right = p
        oh = _round((h - fh + 2 * p) / sh + 1, rounding)
        ow = _round((w - fw + 2 * p) / sw + 1, rounding)
    elif pad == "same":
        oh, ow = -(-h // sh), -(-w // sw)
        along_h = builtins.max(0, (oh - 1) * sh + fh - h)
        along_w = builtins.max(0, (ow - 1) * sw + fw - w)
        top, left = along_h // 2, along_w // 2
        bottom, right = along_h - top, along_w - left
    elif pad == "valid":
        top = bottom = left = right = 0
        oh, ow = -(-(h - fh + 1) // sh), -(-(w - fw + 1) // sw)
    elif isinstance(pad, (list, tuple)) and not isinstance(pad, str):
        if len(pad) != 4 or any(not isinstance(p, (list, tuple)) or len(p) != 2 for p in pad) \
                or any(not is_integer(v) or v < 0 for p in pad for v in p):
            raise ValueError(
                f"Error in {api}: explicit padding must be 4 pairs of non-negative integers, "
                f"[[0, 0], [top, bottom], [left, right], [0, 0]] for NHWC, but got {pad!r}.")
        hp, wp = (pad[1], pad[2]) if channels_last else (pad[2], pad[3])
        (top, bottom), (left, right) = (int(v) for v in hp), (int(v) for v in wp)
        oh = _round((h - fh + top + bottom) / sh + 1, rounding)
        ow = _round((w - fw + left + right) / sw + 1, rounding)
    else:
        raise ValueError(f"Error in {api}: Unknown padding parameter: {pad}")
    if oh < 1 or ow < 1:
        raise ValueError(
            f"Error in {api}: the output would be empty: an input of height x width {h}x{w} with a "
            f"{filter_hw[0]}x{filter_hw[1]} filter (dilations {list(dilations)}), strides "
            f"{list(strides)} and pad {pad!r} gives an output of {oh}x{ow}.")
    bottom = builtins.max(bottom, (oh - 1) * sh + fh - h - top)
    right = builtins.max(right, (ow - 1) * sw + fw - w - left)
    return (oh, ow), (top, bottom, left, right)


def _float(x: Tensor) -> Tensor:
    return x if dtypes.is_float(x.dtype) else T.cast(x, dtypes.float32)


def _as_float_pair(x: TensorLike, f: TensorLike) -> tuple[Tensor, Tensor]:
    x, f = convert(x), convert(f)
    dtype = dtypes.promote(x.dtype, f.dtype)
    if not dtypes.is_float(dtype):
        dtype = dtypes.float32
    return T.cast(x, dtype), T.cast(f, dtype)


def _batched(x: Tensor, api: str, what: str = "input", rank: int = 4, comma: str = ",") -> tuple[Tensor, bool]:
    if x.ndim == rank - 1:
        return reshape(x, (1,) + x.shape), True
    if x.ndim != rank:
        raise ValueError(f"Error in {api}: {what} must be rank {rank}{comma} but got rank {x.ndim}.")
    return x, False


def _taps(x: Tensor, filter_hw, strides, dilations, out_hw, pads, fill: float = 0.0) -> list[Tensor]:
    """The kh*kw strided slices of the padded NHWC input, row-major over the filter: tap (i, j)
    is x_padded[:, i*dh + o*sh, j*dw + p*sw, :] for the output position (o, p)."""
    top, bottom, left, right = pads
    if any(pads) and fill != 0:
        x = pad_op(x, [[0, 0], [top, bottom], [left, right], [0, 0]], fill)
    elif any(pads):   # pad's unslice, built directly (the shapes are known good)
        n, h, w, c = x.shape
        x = T.unslice(x, (n, h + top + bottom, w + left + right, c),
                      ((0, n, 1), (top, top + h, 1), (left, left + w, 1), (0, c, 1)))
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = filter_hw, strides, dilations, out_hw
    n, c = x.shape[0], x.shape[3]
    taps = []
    for i in range(kh):
        for j in range(kw):
            r0, c0 = i * dh, j * dw
            slices = ((0, n, 1), (r0, r0 + (oh - 1) * sh + 1, sh), (c0, c0 + (ow - 1) * sw + 1, sw), (0, c, 1))
            taps.append(x if (oh, ow) == x.shape[1:3] and (r0, c0) == (0, 0) and (sh, sw) == (1, 1)
                        else T.slice_(x, slices))
    return taps


def _concat_channels(taps: list[Tensor]) -> Tensor:
    """concat(taps, 3) for taps of one shape and dtype, built directly: a sum of unslices, which
    the numpy backend fills in place (gpugrad/backends/interpret.py)."""
    if len(taps) == 1:
        return taps[0]
    n, h, w, c = taps[0].shape
    shape, out = (n, h, w, c * len(taps)), None
    for t, tap in enumerate(taps):
        piece = T.unslice(tap, shape, ((0, n, 1), (0, h, 1), (0, w, 1), (t * c, (t + 1) * c, 1)))
        out = piece if out is None else add(out, piece)
    return out


def _nhwc(x: Tensor, data_format: str, api: str) -> Tensor:
    if data_format == "NHWC":
        return x
    if data_format == "NCHW":
        return transpose(x, (0, 2, 3, 1))
    raise ValueError(f"Error in {api}: Unknown dataFormat {data_format}")


# --- convolution --------------------------------------------------------------------------------


def conv2d(x: TensorLike, filter: TensorLike, strides: Any, pad: Any, data_format: str = "NHWC",
           dilations: Any = (1, 1), dim_rounding_mode: str | None = None) -> Tensor:
    """tf.conv2d: x [batch, height, width, inChannels] (rank 3: a batch of 1), filter
    [filterHeight, filterWidth, inChannels, outChannels]; pad 'same', 'valid', a number or
    explicit [[0, 0], [top, bottom], [left, right], [0, 0]]."""
    x, f = _as_float_pair(x, filter)
    x4, squeeze = _batched(x, "conv2d")
    if f.ndim != 4:
        raise ValueError(f"Error in conv2d: filter must be rank 4, but got rank {f.ndim}.")
    _check_rounding("conv2d", pad, dim_rounding_mode)
    if data_format not in ("NHWC", "NCHW"):
        raise ValueError(f"Error in conv2d: Unknown dataFormat {data_format}")
    in_depth = x4.shape[3] if data_format == "NHWC" else x4.shape[1]
    if in_depth != f.shape[2]:
        raise ValueError(f"Error in conv2d: depth of input ({in_depth}) must match input depth for "
                         f"filter {f.shape[2]}. (x: {list(x.shape)}, filter: {list(f.shape)})")
    strides, dilations = _pair(strides, "conv2d", "strides"), _pair(dilations, "conv2d", "dilations")
    _strides_or_dilations("conv2D", strides, dilations)
    x4 = _nhwc(x4, data_format, "conv2d")
    kh, kw, cin, cout = f.shape
    out_hw, pads = conv_info(x4.shape[1:3], (kh, kw), strides, dilations, pad, dim_rounding_mode,
                             "conv2d", data_format == "NHWC")
    taps = _taps(x4, (kh, kw), strides, dilations, out_hw, pads)
    n = x4.shape[0]
    cols = _concat_channels(taps)                                  # (N, Ho, Wo, kh*kw*Cin)
    y = T.matmul(T.reshape(cols, (n * out_hw[0] * out_hw[1], kh * kw * cin)),
                 T.reshape(f, (kh * kw * cin, cout)))
    y = T.reshape(y, (n,) + out_hw + (cout,))
    if data_format == "NCHW":
        y = transpose(y, (0, 3, 1, 2))
    return reshape(y, y.shape[1:]) if squeeze else y


def conv1d(x: TensorLike, filter: TensorLike, stride: int, pad: Any, data_format: str = "NWC",
           dilation: int = 1, dim_rounding_mode: str | None = None) -> Tensor:
    """tf.conv1d: x [batch, width, inChannels] (rank 2: a batch of 1), filter
    [filterWidth, inChannels, outChannels]; a conv2d of height 1."""
    x, f = _as_float_pair(x, filter)
    x3, squeeze = _batched(x, "conv1d", rank=3)
    if f.ndim != 3:
        raise ValueError(f"Error in conv1d: filter must be rank 3, but got rank {f.ndim}.")
    _check_rounding("conv1d", pad, dim_rounding_mode)
    if x3.shape[2] != f.shape[1]:
        raise ValueError(f"Error in conv1d: depth of input ({x3.shape[2]}) must match input depth "
                         f"for filter {f.shape[1]}. (x: {list(x.shape)}, filter: {list(f.shape)})")
    if not is_integer(stride) or not is_integer(dilation):
        raise TypeError(f"Error in conv1d: stride and dilation must be integers, got {stride!r} and {dilation!r}.")
    if stride != 1 and dilation != 1:
        raise ValueError(f"Error in conv1D: Either stride or dilation must be 1. Got stride {stride} "
                         f"and dilation '{dilation}'")
    if data_format != "NWC":
        raise ValueError(f"Error in conv1d: got dataFormat of {data_format} but only NWC is currently supported.")
    y = conv2d(reshape(x3, (x3.shape[0], 1) + x3.shape[1:]), reshape(f, (1,) + f.shape),
               (1, stride), pad, "NHWC", (1, dilation), dim_rounding_mode)
    return reshape(y, y.shape[2:]) if squeeze else reshape(y, (y.shape[0],) + y.shape[2:])


def conv2d_transpose(x: TensorLike, filter: TensorLike, output_shape: Sequence[int], strides: Any,
                     pad: Any, dim_rounding_mode: str | None = None) -> Tensor:
    """tf.conv2dTranspose: x [batch, height, width, inDepth], filter
    [filterHeight, filterWidth, outDepth, inDepth], output_shape [batch, height, width, outDepth]
    (rank 3 with a rank-3 x); strides and pad are those of the forward conv2d it transposes.
    Computed as that conv2d's input gradient: x times the filter, each tap's columns added back
    into place (col2im), the padding cropped."""
    x, f = _as_float_pair(x, filter)
    api = "conv2dDerInput"
    out_shape = list(output_shape) if isinstance(output_shape, (list, tuple, np.ndarray)) else None
    if out_shape is None or not all(is_integer(d) and d > 0 for d in out_shape):
        raise TypeError(f"Error in conv2dTranspose: output_shape must be a list of positive "
                        f"integers, got {output_shape!r}.")
    if len(out_shape) != x.ndim:
        raise ValueError(f"Length of inShape ({len(out_shape)}) and rank of dy ({x.ndim}) must match")
    x4, squeeze = _batched(x, api, "dy")
    if squeeze:
        out_shape = [1] + out_shape
    if len(out_shape) != 4:
        raise ValueError(f"Error in {api}: inShape must be length 4, but got length {len(out_shape)}.")
    if f.ndim != 4:
        raise ValueError(f"Error in {api}: filter must be rank 4, but got rank {f.ndim}")
    if out_shape[3] != f.shape[2]:
        raise ValueError(f"Error in {api}: depth of input ({out_shape[3]}) must match input depth "
                         f"for filter {f.shape[2]}.")
    if x4.shape[3] != f.shape[3]:
        raise ValueError(f"Error in {api}: depth of output ({x4.shape[3]}) must match output depth "
                         f"for filter {f.shape[3]}.")
    _check_rounding(api, pad, dim_rounding_mode)
    strides = _pair(strides, "conv2dTranspose", "strides")
    kh, kw, cout, cin = f.shape
    n, h, w = out_shape[0], out_shape[1], out_shape[2]
    out_hw, (top, bottom, left, right) = conv_info((h, w), (kh, kw), strides, (1, 1), pad,
                                                   dim_rounding_mode, "conv2dTranspose")
    if x4.shape[:3] != (n,) + out_hw:
        raise ValueError(
            f"Error in conv2dTranspose: x of shape {list(x.shape)} is not what a conv2d of an input "
            f"of shape {list(output_shape)} with strides {list(strides)} and pad {pad!r} gives: "
            f"that is [{n}, {out_hw[0]}, {out_hw[1]}, {cin}].")
    (oh, ow), (sh, sw) = out_hw, strides
    cols = matmul(reshape(x4, (n * oh * ow, cin)), reshape(f, (kh * kw * cout, cin)), False, True)
    cols = reshape(cols, (n, oh, ow, kh * kw, cout))
    padded = (n, h + top + bottom, w + left + right, cout)
    y = None
    for t in range(kh * kw):
        i, j = divmod(t, kw)
        piece = T.reshape(T.slice_(cols, ((0, n, 1), (0, oh, 1), (0, ow, 1), (t, t + 1, 1), (0, cout, 1))),
                          (n, oh, ow, cout))
        placed = T.unslice(piece, padded, ((0, n, 1), (i, i + (oh - 1) * sh + 1, sh),
                                           (j, j + (ow - 1) * sw + 1, sw), (0, cout, 1)))
        y = placed if y is None else add(y, placed)
    if top or bottom or left or right:
        y = T.slice_(y, ((0, n, 1), (top, top + h, 1), (left, left + w, 1), (0, cout, 1)))
    return reshape(y, y.shape[1:]) if squeeze else y


def depthwise_conv2d(x: TensorLike, filter: TensorLike, strides: Any, pad: Any,
                     data_format: str = "NHWC", dilations: Any = (1, 1),
                     dim_rounding_mode: str | None = None) -> Tensor:
    """tf.depthwiseConv2d: filter [filterHeight, filterWidth, inChannels, channelMultiplier];
    output channel c * channelMultiplier + m is input channel c convolved with filter[..., c, m]."""
    x, f = _as_float_pair(x, filter)
    api = "depthwiseConv2d"
    x4, squeeze = _batched(x, api)
    if f.ndim != 4:
        raise ValueError(f"Error in {api}: filter must be rank 4, but got rank {f.ndim}.")
    if data_format not in ("NHWC", "NCHW"):
        raise ValueError(f"Error in {api}: Unknown dataFormat {data_format}")
    x4 = _nhwc(x4, data_format, api)
    if x4.shape[3] != f.shape[2]:
        raise ValueError(f"Error in {api}: number of input channels ({x4.shape[3]}) must match the "
                         f"inChannels dimension in filter {f.shape[2]}.")
    _check_rounding(api, pad, dim_rounding_mode)
    strides, dilations = _pair(strides, api, "strides"), _pair(dilations, api, "dilations")
    _strides_or_dilations(api, strides, dilations)
    kh, kw, cin, mult = f.shape
    out_hw, pads = conv_info(x4.shape[1:3], (kh, kw), strides, dilations, pad, dim_rounding_mode, api)
    n = x4.shape[0]
    y = None
    for t, tap in enumerate(_taps(x4, (kh, kw), strides, dilations, out_hw, pads)):
        i, j = divmod(t, kw)
        weight = T.reshape(T.slice_(f, ((i, i + 1, 1), (j, j + 1, 1), (0, cin, 1), (0, mult, 1))), (cin, mult))
        term = mul(reshape(tap, (n,) + out_hw + (cin, 1)), weight)     # (N, Ho, Wo, Cin, mult)
        y = term if y is None else add(y, term)
    y = reshape(y, (n,) + out_hw + (cin * mult,))
    if data_format == "NCHW":
        y = transpose(y, (0, 3, 1, 2))
    return reshape(y, y.shape[1:]) if squeeze else y


# --- pooling --------------------------------------------------------------------------------------


def _pool_setup(x: TensorLike, filter_size, strides, pad, mode, api):
    x = convert(x)
    dtype = x.dtype    # computed in float; an int32 input gives int32 back, as TF.js
    x4, squeeze = _batched(_float(x), api, "input" if api == "maxPool" else "x", comma="")
    _check_rounding(api, pad, mode)
    filter_hw = _pair(filter_size, api, "filterSize")
    strides = _pair(strides, api, "strides")
    out_hw, pads = conv_info(x4.shape[1:3], filter_hw, strides, (1, 1), pad, mode, api)
    return x4, squeeze, filter_hw, strides, out_hw, pads, dtype


def _pool_result(y: Tensor, squeeze: bool, dtype: str) -> Tensor:
    y = reshape(y, y.shape[1:]) if squeeze else y
    return y if y.dtype == dtype else T.cast(y, dtype)


def max_pool(x: TensorLike, filter_size: Any, strides: Any, pad: Any,
             dim_rounding_mode: str | None = None) -> Tensor:
    """tf.maxPool: the maximum over each window (padding never wins). Tied maxima share the
    gradient evenly (as gpugrad's max; TF.js gives it all to the first)."""
    x4, squeeze, filter_hw, strides, out_hw, pads, dtype = _pool_setup(
        x, filter_size, strides, pad, dim_rounding_mode, "maxPool")
    taps = _taps(x4, filter_hw, strides, (1, 1), out_hw, pads, fill=-math.inf)
    if len(taps) == 1:
        y = T.same(taps[0])
    else:   # (N, Ho, Wo, kh*kw, C): the taps side by side, then the max over them
        n, c = x4.shape[0], x4.shape[3]
        y = max_op(T.reshape(_concat_channels(taps), (n,) + out_hw + (len(taps), c)), 3)
    return _pool_result(y, squeeze, dtype)


def avg_pool(x: TensorLike, filter_size: Any, strides: Any, pad: Any,
             dim_rounding_mode: str | None = None) -> Tensor:
    """tf.avgPool: the mean over each window's positions inside the input (padding is not
    counted, as TF.js)."""
    x4, squeeze, filter_hw, strides, out_hw, pads, dtype = _pool_setup(
        x, filter_size, strides, pad, dim_rounding_mode, "avgPool")
    taps = _taps(x4, filter_hw, strides, (1, 1), out_hw, pads)
    total = taps[0]
    for tap in taps[1:]:
        total = add(total, tap)
    # how many of each window's positions lie inside the input: a constant of the shapes alone
    top, _, left, _ = pads
    (oh, ow), (sh, sw), (kh, kw) = out_hw, strides, filter_hw
    h, w = x4.shape[1:3]
    rows = np.arange(oh)[:, None] * sh - top + np.arange(kh)[None, :]
    cols = np.arange(ow)[:, None] * sw - left + np.arange(kw)[None, :]
    count = ((rows >= 0) & (rows < h)).sum(1)[:, None] * ((cols >= 0) & (cols < w)).sum(1)[None, :]
    if (count == kh * kw).all():
        y = div(total, kh * kw) if kh * kw != 1 else T.same(total)
    else:
        y = div(total, tensor(count.reshape(1, oh, ow, 1).astype(dtypes.NUMPY[x4.dtype])))
    return _pool_result(y, squeeze, dtype)
