"""The public ops: TF.js names in Python, numpy broadcasting, built from primitives.

Every function here checks its arguments and computes the result's shape and dtype at
once (raising with both shapes in the message); nothing runs until a value is read.
"""
from __future__ import annotations

import builtins
import math
import numbers
from typing import Any, Sequence

import numpy as np

from . import dtypes
from . import lax
from .backends import current as _current_backend
from .engine import from_array as _from_array
from . import primitives as P
from .primitives import elementwise as _elementwise_records
from . import tensor as T
from .tensor import Tensor, shape_str

TensorLike = Any

# --- conversion ---------------------------------------------------------------------------


def _infer_dtype(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return dtypes.bool_
    if isinstance(value, np.ndarray):
        return dtypes.from_numpy(value.dtype)
    if isinstance(value, (list, tuple)):
        flat = np.asarray(value, dtype=object).reshape(-1)
        if flat.size and all(isinstance(v, (bool, np.bool_)) for v in flat):
            return dtypes.bool_
    return dtypes.float32


def _to_numpy(value: Any) -> np.ndarray:
    if isinstance(value, np.ndarray):
        array = value
    elif hasattr(value, "__cuda_array_interface__") or hasattr(value, "__dlpack__") and not isinstance(value, (list, tuple)):
        return value  # a device array: the backend takes it as it is
    else:
        try:
            array = np.asarray(value)
        except ValueError as exc:
            raise ValueError(f"Cannot make a tensor of {value!r}: the nested lists are ragged ({exc}).") from None
    if array.dtype.kind == "O" and all(isinstance(v, numbers.Real) for v in array.reshape(-1).tolist()):
        return array  # integers beyond int64: tensor() checks they fit the dtype, then converts
    if array.dtype.kind in "cOSUVMm":
        raise TypeError(
            f"Unsupported dtype {array.dtype.name!r}: gpugrad tensors hold float32, float64, "
            "int32 or bool; complex, object and string data cannot be converted.")
    return array


def tensor(values: TensorLike, shape: Sequence[int] | None = None, dtype: Any = None) -> Tensor:
    """tf.tensor: a tensor holding a copy of values (nested lists, numbers, numpy arrays)."""
    if isinstance(values, Tensor):
        out = values._node()
        if dtype is not None:
            out = cast(out, dtype)
        return reshape(out, shape) if shape is not None else T.same(out)
    dt = dtypes.canonical(dtype) if dtype is not None else None
    array = _to_numpy(values)
    if dt is None:
        if isinstance(values, np.ndarray):
            dt = dtypes.from_numpy(values.dtype)
        elif isinstance(array, np.ndarray):
            dt = _infer_dtype(values)
        else:  # a device array (CuPy, DLPack)
            dt = dtypes.from_numpy(np.dtype(str(array.dtype)))
    if shape is not None:
        shape = shape_arg(shape, "tensor")
        size = math.prod(shape)
        n = int(np.prod(array.shape))
        if n != size:
            raise ValueError(
                f"Based on the provided shape, [{', '.join(map(str, shape))}], the tensor should have "
                f"{size} values but has {n}")
        array = array.reshape(shape)
    dtypes.check_fits(array, dt)
    if array.dtype.kind == "O":
        array = array.astype(np.float64 if dt in dtypes.FLOATS else np.int64)
    return _from_array(array, dt)


def from_dlpack(x: Any) -> Tensor:
    """A tensor over another library's array (PyTorch, JAX, CuPy, numpy) through DLPack;
    on the CuPy backend a contiguous device array of a supported dtype is used without a copy."""
    backend = _current_backend()
    if backend.name == "numpy":
        array = np.from_dlpack(x)
        return _from_array(array, dtypes.from_numpy(array.dtype))
    import cupy
    array = cupy.from_dlpack(x)
    return _from_array(array, dtypes.from_numpy(np.dtype(array.dtype.name)))


_RANK_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}


def _ranked(rank: int, name: str):
    """tf.tensor1d .. tf.tensor6d, with TF.js's checks and messages (in its order): the shape
    must have `rank` numbers; values must be nested to that rank or flat (1-D); flat values
    need a shape."""
    def make(values: TensorLike, shape: Sequence[int] | None = None, dtype: Any = None) -> Tensor:
        if values is None:
            raise ValueError(f"The input to {name}() must be a tensor, array or number, not None.")
        if shape is not None and rank > 1 and len(shape_arg(shape, name, infer=True)) != rank:
            raise ValueError(f"{name}() requires shape to have {_RANK_WORDS[rank]} numbers "
                             f"(got shape {list(shape_arg(shape, name, infer=True))}).")
        inferred = values.shape if isinstance(values, Tensor) else np.shape(values)
        hint = f" (got values of shape {list(inferred)}; use tf.tensor() for other ranks)"
        if rank == 1:
            if len(inferred) != 1:
                raise ValueError(f"{name}() requires values to be a flat/TypedArray{hint}")
        elif len(inferred) not in (rank, 1):
            raise ValueError(f"{name}() requires values to be {'number' + '[]' * rank} or "
                             f"flat/TypedArray{hint}")
        elif len(inferred) == 1 and shape is None:
            raise ValueError(f"{name}() requires shape to be provided when `values` are a flat "
                             f"array (got {inferred[0]} values)")
        return tensor(values, shape, dtype)
    make.__name__ = name
    make.__doc__ = f"tf.{name}: a rank-{rank} tensor (nested values, or flat values and a shape)."
    return make


tensor1d = _ranked(1, "tensor1d")
tensor2d = _ranked(2, "tensor2d")
tensor3d = _ranked(3, "tensor3d")
tensor4d = _ranked(4, "tensor4d")
tensor5d = _ranked(5, "tensor5d")
tensor6d = _ranked(6, "tensor6d")


def scalar(value: Any, dtype: Any = None) -> Tensor:
    return tensor(value, (), dtype)


def clone(x: TensorLike) -> Tensor:
    """tf.clone: a new tensor with x's values. Its own handle (disposing one leaves the other
    alone) and its own buffer once computed (a variable's later in-place update does not show
    through); the gradient passes through unchanged."""
    x = convert(x)
    return T.elementwise("copy", (x,), x.dtype)


def convert(x: TensorLike, dtype: Any = None) -> Tensor:
    """A Tensor as it is (a Variable's current value), anything else through tensor()."""
    if isinstance(x, Tensor):
        return x._node()
    return tensor(x, None, dtype)


def _is_int(value: Any) -> bool:
    """An integer argument: Python and numpy integers, not bools (True is not a size)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def shape_arg(shape: Any, api: str, arg: str = "shape", infer: bool = False) -> tuple:
    """The one check of every shape-like argument (shapes, sizes, repetitions): a list of
    non-negative integers, or one integer. int() would silently truncate 2.7 to 2 and accept
    -1, giving tensors of the wrong or a negative size, so anything else is refused here,
    where the op is created. With infer, -1 may stand for sizes the op works out itself
    (reshape's one inferred dimension, slice's "to the end")."""
    if _is_int(shape):
        shape = (shape,)
    elif isinstance(shape, np.ndarray) and shape.ndim <= 1:
        shape = tuple(shape.reshape(-1).tolist()) if shape.dtype.kind in "iu" else tuple(shape.reshape(-1))
    elif not isinstance(shape, (list, tuple)):
        raise TypeError(
            f"{api}(): {arg} must be a list of non-negative integers, but got "
            f"{type(shape).__name__} {shape!r}; pass e.g. {arg}=[2, 3].")
    allowed = "non-negative integers" + (" (or -1 for a size to infer)" if infer else "")
    out = []
    for i, d in enumerate(shape):
        if not _is_int(d):
            raise TypeError(
                f"{api}(): {arg} must be a list of {allowed}, but {arg}[{i}] is "
                f"{type(d).__name__} {d!r} (in {arg}={_show(shape)}); sizes are not rounded, "
                f"pass int values.")
        d = int(d)
        if d < 0 and not (infer and d == -1):
            hint = " -1 infers a size only in reshape (and slice's size)." if d == -1 else ""
            raise ValueError(
                f"{api}(): {arg} must be a list of {allowed}, but {arg}[{i}] is {d} "
                f"(in {arg}={_show(shape)}).{hint}")
        out.append(d)
    return tuple(out)


def _show(shape) -> list:
    return [d.item() if isinstance(d, np.generic) else d for d in shape]


def count_arg(value: Any, api: str, arg: str, minimum: int = 0) -> int:
    """A single count (number of rows, of points): an integer of at least ``minimum``."""
    if not _is_int(value):
        raise TypeError(f"{api}(): {arg} must be an integer, but got {type(value).__name__} {value!r}.")
    if value < minimum:
        raise ValueError(f"{api}(): {arg} must be an integer >= {minimum}, but got {value}.")
    return int(value)


def axis_arg(axis: Any, api: str, arg: str = "axis") -> Any:
    """Axes are integers (or a list of integers): 1.0 is refused, not truncated."""
    if _is_int(axis):
        return int(axis)
    if isinstance(axis, (list, tuple)) and all(_is_int(a) for a in axis):
        return [int(a) for a in axis]
    bad = next((a for a in axis if not _is_int(a)), axis) if isinstance(axis, (list, tuple)) else axis
    raise TypeError(
        f"{api}(): {arg} must be an integer or a list of integers, but got {type(bad).__name__} "
        f"{bad!r}" + (f" in {arg}={list(axis)!r}" if bad is not axis else "") + ".")


def fill(shape: Sequence[int], value: Any, dtype: Any = None, _api: str = "fill") -> Tensor:
    dt = dtypes.canonical(dtype) if dtype is not None else (
        dtypes.bool_ if isinstance(value, bool) else dtypes.float32)
    return T.const(value, shape_arg(shape, _api), dt)


def zeros(shape: Sequence[int], dtype: Any = "float32") -> Tensor:
    return fill(shape, 0, dtype, "zeros")


def ones(shape: Sequence[int], dtype: Any = "float32") -> Tensor:
    return fill(shape, 1, dtype, "ones")


def zeros_like(x: TensorLike) -> Tensor:
    x = convert(x)
    if T.trace.depth:
        # Inside a gradient call the result must stay connected to x with a zero gradient
        # (TF.js's ZerosLike has one): a bare constant made grad(zeros_like) "not connected".
        # x < x is false for every x, NaN included, and comparisons have zero gradients.
        return T.cast(less(x, x), x.dtype)
    return T.const(0, x.shape, x.dtype)


def ones_like(x: TensorLike) -> Tensor:
    x = convert(x)
    if T.trace.depth:  # connected, zero gradient: see zeros_like
        return T.cast(logical_not(less(x, x)), x.dtype)
    return T.const(1, x.shape, x.dtype)


def arange(start: float, stop: float | None = None, step: float = 1, dtype: Any = "float32") -> Tensor:
    if stop is None:
        start, stop = 0, start
    if step == 0:
        raise ValueError("arange() step must not be 0")
    return tensor(np.arange(start, stop, step), dtype=dtype)


range_ = arange


def linspace(start: float, stop: float, num: int) -> Tensor:
    if _is_int(num) and num <= 0:
        raise ValueError(f"The number of values should be positive, got num={num}")
    num = count_arg(num, "linspace", "num", 1)
    return tensor(np.linspace(start, stop, num))


def eye(num_rows: int, num_columns: int | None = None, dtype: Any = "float32") -> Tensor:
    num_rows = count_arg(num_rows, "eye", "num_rows")
    if num_columns is not None:
        num_columns = count_arg(num_columns, "eye", "num_columns")
    return tensor(np.eye(num_rows, num_columns), dtype=dtype)


def random_normal(shape: Sequence[int], mean: float = 0.0, stddev: float = 1.0,
                  dtype: Any = "float32", seed: int | None = None) -> Tensor:
    rng = np.random.default_rng(seed)
    return tensor(rng.normal(mean, stddev, shape_arg(shape, "random_normal")), dtype=dtype)


def random_uniform(shape: Sequence[int], minval: float = 0.0, maxval: float = 1.0,
                   dtype: Any = "float32", seed: int | None = None) -> Tensor:
    rng = np.random.default_rng(seed)
    return tensor(rng.uniform(minval, maxval, shape_arg(shape, "random_uniform")), dtype=dtype)


# --- broadcasting and dtype promotion ------------------------------------------------------


broadcast_shapes = lax.broadcast_shapes


def broadcast_to(x: TensorLike, shape: Sequence[int]) -> Tensor:
    x = convert(x)
    shape = shape_arg(shape, "broadcast_to")
    if len(shape) < x.ndim:
        raise ValueError(
            f"broadcastTo(): the new rank {len(shape)} is below the tensor's rank {x.ndim} "
            f"(shapes {list(x.shape)} to {list(shape)}).")
    x1 = T.reshape(x, (1,) * (len(shape) - x.ndim) + x.shape)
    for have, want in zip(x1.shape, shape):
        if have != 1 and have != want:
            raise ValueError(
                f"broadcastTo(): cannot broadcast shape {list(x.shape)} to {list(shape)}; "
                "every axis must be 1 or equal to the target.")
    return T.expand(x1, shape)


def _operands(op: str, args: tuple) -> list:
    """Lists and arrays to tensors (float data takes the tensors' float dtype, as Python
    numbers do); tensors as their current value; numbers as they are, for lax's weak typing."""
    dtype = None
    for a in args:
        if isinstance(a, Tensor):
            dtype = a.dtype if dtype is None else dtypes.promote(dtype, a.dtype)
    out = []
    for a in args:
        if isinstance(a, Tensor):
            out.append(a._node())
        elif isinstance(a, numbers.Number) or isinstance(a, np.generic):
            out.append(a)
        else:
            kind = np.asarray(a).dtype.kind if isinstance(a, (list, tuple)) \
                else getattr(a, "dtype", np.dtype("float64")).kind
            out.append(convert(a, dtype if dtype is not None and kind == "f" and dtypes.is_float(dtype)
                               else None))
    if not any(isinstance(t, Tensor) for t in out):
        out = [convert(a) for a in args]   # numbers only: tensors of TF.js's default dtypes
    return out


def _elementwise(op: str, *args) -> Tensor:
    return lax.apply(op, *_operands(op, args))


def _unary(op: str):
    needs_float = op in P.FLOAT_ONLY

    def fn(x: TensorLike) -> Tensor:
        if x.__class__ is not Tensor and isinstance(x, Tensor):   # a Variable: its value
            x = x._node()
        if x.__class__ is Tensor and (x.dtype in dtypes.FLOATS or not needs_float) \
                and x.dtype != dtypes.bool_ and x.op != "const":
            return Tensor(op, (x,), None, x.shape, x.dtype)  # the common case, kept cheap
        return _elementwise(op, x)
    fn.__name__ = fn.__qualname__ = op
    fn.__doc__ = f"Elementwise {op}; math in kernels/elementwise/{op}.cu."
    return fn


def _binary(op: str):
    out_bool = op in P.COMPARISONS
    fast = op not in P.LOGICAL

    def fn(a: TensorLike, b: TensorLike) -> Tensor:
        # The common case, kept cheap: two float tensors of one shape and dtype.
        if a.__class__ is not Tensor and isinstance(a, Tensor):   # a Variable: its value
            a = a._node()
        if b.__class__ is not Tensor and isinstance(b, Tensor):   # a Variable: its value
            b = b._node()
        if a.__class__ is Tensor and b.__class__ is Tensor and a.shape == b.shape \
                and a.dtype == b.dtype and a.dtype in dtypes.FLOATS \
                and a.op != "const" and b.op != "const" and fast:
            return Tensor(op, (a, b), None, a.shape, dtypes.bool_ if out_bool else a.dtype)
        return _elementwise(op, a, b)
    fn.__name__ = fn.__qualname__ = op
    fn.__doc__ = f"Elementwise {op} with numpy broadcasting; math in kernels/elementwise/{op}.cu."
    return fn


# Every public elementwise primitive is an op of its name: tf.exp, tf.atan2, ... (records in
# gpugrad/primitives/elementwise.py).
for _prim in _elementwise_records():
    if _prim.public:
        globals()[_prim.name] = (_unary if _prim.arity == 1 else _binary)(_prim.name)
del _prim


def where(condition: TensorLike, a: TensorLike, b: TensorLike) -> Tensor:
    c = cast(convert(condition), dtypes.bool_)
    return lax.apply("where", c, *_operands("where", (a, b)))


def logical_not(x: TensorLike) -> Tensor:
    return equal(cast(convert(x), dtypes.bool_), False)


def cast(x: TensorLike, dtype: Any) -> Tensor:
    return T.cast(convert(x), dtypes.canonical(dtype))


def square(x: TensorLike) -> Tensor:
    x = convert(x)
    return mul(x, x)


def squared_difference(a: TensorLike, b: TensorLike) -> Tensor:
    return square(sub(a, b))


def relu(x: TensorLike) -> Tensor:
    x = convert(x)
    return where(less_equal(x, 0), 0, x)  # relu'(0) = 0 as in JAX and PyTorch; NaN passes


def relu6(x: TensorLike) -> Tensor:
    # relu6'(0) = 0 like relu'(0) (and TF.js's relu6), relu6'(6) = 1; NaN passes through.
    # clip_by_value would give 1 at 0: its gradient includes both bounds.
    x = convert(x)
    return where(less_equal(x, 0), 0, where(greater(x, 6), 6, x))


def elu(x: TensorLike) -> Tensor:
    x = convert(x)
    return where(greater(x, 0), x, expm1(x))


def leaky_relu(x: TensorLike, alpha: float = 0.2) -> Tensor:
    x = convert(x)
    return where(greater(x, 0), x, mul(x, alpha))


def softplus(x: TensorLike) -> Tensor:
    x = convert(x)  # log(1 + e^x) without overflow: max(x, 0) + log1p(e^-|x|)
    return add(maximum(x, 0), log1p(exp(neg(abs(x)))))  # the tie at 0 gives softplus'(0) = 0.5


def log_sigmoid(x: TensorLike) -> Tensor:
    return neg(softplus(neg(x)))


def gelu(x: TensorLike) -> Tensor:
    x = convert(x)  # tanh approximation, as TF.js layers and PyTorch approximate='tanh'
    inner = mul(add(x, mul(pow(x, 3), 0.044715)), math.sqrt(2 / math.pi))
    return mul(mul(x, 0.5), add(tanh(inner), 1))


def clip_by_value(x: TensorLike, clip_value_min: float, clip_value_max: float) -> Tensor:
    if clip_value_min > clip_value_max:
        raise ValueError(
            f"Error in clip: min ({clip_value_min}) must be less than or equal to max ({clip_value_max}).")
    x = convert(x)
    return where(less(x, clip_value_min), clip_value_min,
                 where(greater(x, clip_value_max), clip_value_max, x))


def is_nan(x: TensorLike) -> Tensor:
    x = convert(x)
    return not_equal(x, x)


def is_finite(x: TensorLike) -> Tensor:
    x = convert(x)
    return less(abs(x), math.inf)


# --- axes and reductions -------------------------------------------------------------------


def normalize_axes(axis: Any, rank: int, api: str = "axis") -> tuple:
    """TF.js axis rules: None means all axes; negatives count from the end."""
    if axis is None:
        return tuple(range(rank))
    axis = axis_arg(axis, api)
    axes = [axis] if isinstance(axis, int) else axis
    out = []
    for a in axes:
        if not -rank <= a < rank:
            raise ValueError(
                f"All values in axis param must be in range [-{rank}, {rank}) but got axis {a}")
        out.append(int(a) % rank)
    if len(set(out)) != len(out):
        raise ValueError(f"Duplicate axes in {axis!r}: each axis may appear once.")
    return tuple(sorted(out))


def _drop_axes(x: Tensor, axes: tuple, keep_dims: bool) -> Tensor:
    if keep_dims:
        return x
    return T.reshape(x, tuple(d for i, d in enumerate(x.shape) if i not in axes))


def _reduction(op: str, x: TensorLike, axis: Any, keep_dims: bool) -> Tensor:
    x = convert(x)
    if axis is None and not keep_dims and x.dtype in dtypes.FLOATS and x.shape:
        # the common case, kept cheap: a float tensor reduced to a scalar
        return T.reshape(T.reduce(op, x, tuple(range(len(x.shape)))), ())
    axes = normalize_axes(axis, x.ndim, op) if not (axis is None and x.ndim == 0) else ()
    if x.dtype == dtypes.bool_ and op in ("sum", "prod"):
        x = T.cast(x, dtypes.int32)
    return _drop_axes(T.reduce(op, x, axes), axes, keep_dims)


def sum(x: TensorLike, axis: Any = None, keep_dims: bool = False) -> Tensor:  # noqa: A001
    return _reduction("sum", x, axis, keep_dims)


def max(x: TensorLike, axis: Any = None, keep_dims: bool = False) -> Tensor:  # noqa: A001
    return _reduction("max", x, axis, keep_dims)


def prod(x: TensorLike, axis: Any = None, keep_dims: bool = False) -> Tensor:
    return _reduction("prod", x, axis, keep_dims)


def min(x: TensorLike, axis: Any = None, keep_dims: bool = False) -> Tensor:  # noqa: A001
    return neg(max(neg(x), axis, keep_dims))


def mean(x: TensorLike, axis: Any = None, keep_dims: bool = False) -> Tensor:
    x = convert(x)
    axes = normalize_axes(axis, x.ndim, "mean") if not (axis is None and x.ndim == 0) else ()
    count = math.prod(x.shape[a] for a in axes)
    total = sum(cast(x, dtypes.grad_dtype(x.dtype)), axis, keep_dims)
    return div(total, count) if count != 1 else total


def _arg_reduction(x: TensorLike, axis: Any, negate: bool) -> Tensor:
    x = convert(x)
    if x.ndim == 0:
        raise ValueError("argMax/argMin need a tensor of rank at least 1, got a scalar.")
    axes = normalize_axes(0 if axis is None else axis, x.ndim, "argmax")
    if len(axes) != 1:
        raise ValueError(f"argMax/argMin take one axis, got {axis!r}")
    x = neg(x) if negate else x
    return _drop_axes(T.reduce("argmax", x, axes), axes, False)


def argmax(x: TensorLike, axis: int | None = None) -> Tensor:
    return _arg_reduction(x, axis, False)


def argmin(x: TensorLike, axis: int | None = None) -> Tensor:
    return _arg_reduction(x, axis, True)


def logsumexp(x: TensorLike, axis: Any = None, keep_dims: bool = False) -> Tensor:
    x = convert(x)
    if not dtypes.is_float(x.dtype):
        x = T.cast(x, dtypes.float32)
    axes = normalize_axes(axis, x.ndim, "logsumexp") if not (axis is None and x.ndim == 0) else ()
    # Shifting by the max keeps exp in range; the shift's own derivative cancels exactly,
    # so it is held constant (and a non-finite max is replaced by 0, as JAX does).
    m = stop_gradient(max(x, axes, True))
    m = where(is_finite(m), m, 0)
    out = add(log(sum(exp(sub(x, m)), axes, True)), m)
    return _drop_axes(out, axes, keep_dims)


def _softmax_axis(x: Tensor, dim: int) -> int:
    if x.ndim == 0:
        raise ValueError("All values in axis param must be in range [-0, 0) but got axis -1")
    return normalize_axes(dim, x.ndim, "softmax")[0]


def softmax(logits: TensorLike, dim: int = -1) -> Tensor:
    x = convert(logits)
    axis = _softmax_axis(x, dim)
    return exp(sub(x, logsumexp(x, axis, True)))


def log_softmax(logits: TensorLike, axis: int = -1) -> Tensor:
    x = convert(logits)
    ax = _softmax_axis(x, axis)
    return sub(x, logsumexp(x, ax, True))


def stop_gradient(x: TensorLike) -> Tensor:
    return T.stop_gradient(convert(x))


# --- movement --------------------------------------------------------------------------------


def reshape(x: TensorLike, shape: Sequence[int]) -> Tensor:
    x = convert(x)
    shape = list(shape_arg(shape, "reshape", infer=True))
    if shape.count(-1) > 1:
        raise ValueError(f"Shapes can only have 1 implicit size. Found -1 at dim {shape.index(-1)} and another.")
    if -1 in shape:
        known = math.prod(d for d in shape if d != -1)
        if known == 0 or x.size % known:
            raise ValueError(
                f"The implicit shape can't be a fractional number. Got {x.size} / {known} "
                f"(reshape of {list(x.shape)} to {shape}).")
        shape[shape.index(-1)] = x.size // known
    if any(d < 0 for d in shape):
        raise ValueError(f"Invalid shape {shape}: sizes must be non-negative")
    if math.prod(shape) != x.size:
        raise ValueError(
            f"Size({x.size}) must match the product of shape {shape_str(shape)} "
            f"(reshape of {list(x.shape)} to {shape}; the sizes must be equal).")
    return T.reshape(x, tuple(shape))


def flatten(x: TensorLike) -> Tensor:
    return reshape(x, (-1,))


def transpose(x: TensorLike, perm: Sequence[int] | None = None) -> Tensor:
    x = convert(x)
    if perm is None:
        perm = tuple(reversed(range(x.ndim)))
    perm = axis_arg(list(perm) if isinstance(perm, (tuple, np.ndarray)) else perm, "transpose", "perm")
    perm = tuple([perm] if isinstance(perm, int) else perm)
    if sorted(p % x.ndim if x.ndim else p for p in perm) != list(range(x.ndim)) or len(perm) != x.ndim:
        raise ValueError(
            f"Error in transpose: rank of input {x.ndim} must match length of perm {list(perm)} "
            "and perm must be a permutation of the axes.")
    return T.permute(x, tuple(p % x.ndim for p in perm))


def expand_dims(x: TensorLike, axis: int = 0) -> Tensor:
    x = convert(x)
    rank = x.ndim + 1
    axis = axis_arg(axis, "expand_dims")
    if not isinstance(axis, int) or not -rank <= axis < rank:
        raise ValueError(f"All values in axis param must be in range [-{rank}, {rank}) but got axis {axis}")
    axis %= rank
    return T.reshape(x, x.shape[:axis] + (1,) + x.shape[axis:])


def squeeze(x: TensorLike, axis: Any = None) -> Tensor:
    x = convert(x)
    if axis is None:
        axes = tuple(i for i, d in enumerate(x.shape) if d == 1)
    else:
        axes = normalize_axes(axis, x.ndim, "squeeze")
        for a in axes:
            if x.shape[a] != 1:
                raise ValueError(f"Can't squeeze axis {a} of shape {list(x.shape)}: its size is {x.shape[a]}, not 1.")
    return T.reshape(x, tuple(d for i, d in enumerate(x.shape) if i not in axes))


def slice(x: TensorLike, begin: Any, size: Any = None) -> Tensor:  # noqa: A001 - TF.js name
    """tf.slice(x, begin, size): size -1 means to the end."""
    x = convert(x)
    begin = list(shape_arg(begin, "slice", "begin"))
    begin += [0] * (x.ndim - len(begin))
    size = [-1] * x.ndim if size is None else list(shape_arg(size, "slice", "size", infer=True))
    size += [-1] * (x.ndim - len(size))
    slices = []
    for axis, (b, s, d) in enumerate(zip(begin, size, x.shape)):
        end = d if s == -1 else b + s
        if not (0 <= b <= d and b <= end <= d):
            raise ValueError(
                f"Error in slice{x.ndim}D: begin {begin} and size {size} go out of the tensor's "
                f"shape {list(x.shape)} at axis {axis}.")
        slices.append((b, end, 1))
    return T.slice_(x, tuple(slices))


def getitem(x: Tensor, index: Any) -> Tensor:
    """Basic indexing: integers, slices (any step), None and Ellipsis."""
    x = convert(x)
    index = index if isinstance(index, tuple) else (index,)
    for i in index:
        if not (i is None or i is Ellipsis or isinstance(i, (builtins.slice, numbers.Integral))):
            raise TypeError(
                f"Invalid index {i!r} for a tensor of shape {list(x.shape)}: only basic indexing "
                "(ints, slices, None, ...) is supported.")
    n_axes = len([i for i in index if i is not None and i is not Ellipsis])
    if n_axes > x.ndim or list(index).count(Ellipsis) > 1:
        raise IndexError(f"Too many indices for a tensor of shape {list(x.shape)}: {index!r}")
    fill = (builtins.slice(None),) * (x.ndim - n_axes)
    if Ellipsis in index:
        at = index.index(Ellipsis)
        index = index[:at] + fill + index[at + 1:]
    else:
        index = index + fill
    slices, out_shape = [], []
    for i in index:
        if i is None:
            out_shape.append(1)
            continue
        axis, d = len(slices), x.shape[len(slices)]
        if isinstance(i, builtins.slice):
            start, stop, step = i.indices(d)
            slices.append((start, stop, step))
            out_shape.append(len(range(start, stop, step)))
            continue
        j = int(i) + d if i < 0 else int(i)
        if not 0 <= j < d:
            raise IndexError(f"Index {i} is out of bounds for axis {axis} with size {d} (shape {list(x.shape)})")
        slices.append((j, j + 1, 1))
    return T.reshape(T.slice_(x, tuple(slices)), tuple(out_shape))


def pad(x: TensorLike, paddings: Sequence[Sequence[int]], constant_value: float = 0) -> Tensor:
    x = convert(x)
    if not isinstance(paddings, (list, tuple, np.ndarray)):
        raise TypeError(f"pad(): paddings must be a list of [before, after] pairs, got {paddings!r}.")
    paddings = [shape_arg(p, "pad", f"paddings[{i}]") for i, p in enumerate(paddings)]
    if len(paddings) != x.ndim or any(len(p) != 2 or p[0] < 0 or p[1] < 0 for p in paddings):
        raise ValueError(
            f"pad(): paddings must be one non-negative [before, after] pair per axis of shape "
            f"{list(x.shape)}, got {paddings}")
    shape = tuple(b + d + a for (b, a), d in zip(paddings, x.shape))
    slices = tuple((b, b + d, 1) for (b, _), d in zip(paddings, x.shape))
    out = T.unslice(x, shape, slices)
    if constant_value != 0:
        inside = T.unslice(T.const(True, x.shape, dtypes.bool_), shape, slices)
        out = where(inside, out, constant_value)
    return out


def concat(tensors: Sequence[TensorLike], axis: int = 0) -> Tensor:
    xs = [convert(t) for t in tensors]
    if not xs:
        raise ValueError("concat() needs at least one tensor")
    if len(xs) == 1:
        return T.same(xs[0])
    rank = xs[0].ndim
    ax = normalize_axes(axis, rank, "concat")[0]
    for k, t in enumerate(xs[1:], 1):
        if t.ndim != rank or any(a != b for i, (a, b) in enumerate(zip(t.shape, xs[0].shape)) if i != ax):
            raise ValueError(
                f"Error in concat{rank}D: shape of tensors[{k}] ({list(t.shape)}) does not "
                f"match the shape of the rest ({list(xs[0].shape)}) along the non-concatenated axis "
                f"{[i for i in range(rank) if i != ax]}.")
    dtype = xs[0].dtype
    for t in xs[1:]:
        dtype = dtypes.promote(dtype, t.dtype)
    total = builtins.sum(t.shape[ax] for t in xs)
    shape = xs[0].shape[:ax] + (total,) + xs[0].shape[ax + 1:]
    out, offset = None, 0
    for t in xs:  # concat is a sum of zero-padded pieces: its gradient is slicing
        slices = tuple((offset, offset + t.shape[ax], 1) if i == ax else (0, d, 1)
                       for i, d in enumerate(t.shape))
        piece = T.unslice(T.cast(t, dtype), shape, slices)
        out = piece if out is None else add(out, piece)
        offset += t.shape[ax]
    return out


def stack(tensors: Sequence[TensorLike], axis: int = 0) -> Tensor:
    xs = [convert(t) for t in tensors]
    if not xs:
        raise ValueError("stack() needs at least one tensor")
    for t in xs[1:]:
        if t.shape != xs[0].shape:
            raise ValueError(
                f"All tensors passed to stack must have matching shapes; got {list(xs[0].shape)} "
                f"and {list(t.shape)}.")
    return concat([expand_dims(t, axis) for t in xs], axis)


def unstack(x: TensorLike, axis: int = 0) -> list[Tensor]:
    x = convert(x)
    ax = normalize_axes(axis, x.ndim, "unstack")[0]
    return [getitem(x, (builtins.slice(None),) * ax + (i,)) for i in range(x.shape[ax])]


def tile(x: TensorLike, reps: Sequence[int]) -> Tensor:
    x = convert(x)
    reps = shape_arg(reps, "tile", "reps")
    if len(reps) != x.ndim:
        raise ValueError(f"tile(): reps {list(reps)} must have one entry per axis of shape {list(x.shape)}")
    inter = tuple(v for d in x.shape for v in (1, d))
    target = tuple(v for r, d in zip(reps, x.shape) for v in (r, d))
    y = T.expand(T.reshape(x, inter), target)
    return T.reshape(y, tuple(r * d for r, d in zip(reps, x.shape)))


# --- matmul ----------------------------------------------------------------------------------


def matmul(a: TensorLike, b: TensorLike, transpose_a: bool = False, transpose_b: bool = False) -> Tensor:
    if isinstance(a, Tensor) != isinstance(b, Tensor):  # an array operand takes the tensor's dtype
        like = (a if isinstance(a, Tensor) else b)._node().dtype
        a, b = (convert(t, None if isinstance(t, Tensor) or not dtypes.is_float(like) else like) for t in (a, b))
    a, b = convert(a), convert(b)
    dtype = dtypes.promote(a.dtype, b.dtype)
    if not dtypes.is_float(dtype):
        dtype = dtypes.float32
    a, b = T.cast(a, dtype), T.cast(b, dtype)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(
            f"matMul needs tensors of rank >= 1, got shapes {list(a.shape)} and {list(b.shape)}; "
            "use mul for scalars.")
    squeeze_a, squeeze_b = a.ndim == 1, b.ndim == 1
    if squeeze_a:
        a = T.reshape(a, (1,) + a.shape)
    if squeeze_b:
        b = T.reshape(b, b.shape + (1,))
    if transpose_a:
        a = T.permute(a, tuple(range(a.ndim - 2)) + (a.ndim - 1, a.ndim - 2))
    if transpose_b:
        b = T.permute(b, tuple(range(b.ndim - 2)) + (b.ndim - 1, b.ndim - 2))
    if a.shape[-1] != b.shape[-2]:
        ta, tb = str(bool(transpose_a)).lower(), str(bool(transpose_b)).lower()
        raise ValueError(
            f"Error in matMul: inner shapes ({a.shape[-1]}) and ({b.shape[-2]}) of Tensors with shapes "
            f"{shape_str(a.shape)} and {shape_str(b.shape)} and transposeA={ta} and transposeB={tb} "
            "must match.")
    batch = broadcast_shapes("matmul", a.shape[:-2], b.shape[:-2])
    a = broadcast_to(a, batch + a.shape[-2:])
    b = broadcast_to(b, batch + b.shape[-2:])
    out = T.matmul(a, b)
    if squeeze_a or squeeze_b:
        shape = out.shape[:-2] + (() if squeeze_a else out.shape[-2:-1]) + (() if squeeze_b else out.shape[-1:])
        out = T.reshape(out, shape)
    return out


def dot(a: TensorLike, b: TensorLike) -> Tensor:
    return matmul(a, b)


def outer_product(a: TensorLike, b: TensorLike) -> Tensor:
    a, b = convert(a), convert(b)
    return mul(reshape(a, (-1, 1)), reshape(b, (1, -1)))


def norm(x: TensorLike, ord: Any = "euclidean", axis: Any = None, keep_dims: bool = False) -> Tensor:
    x = convert(x)
    if ord in ("euclidean", "fro", 2):
        return sqrt(sum(square(x), axis, keep_dims))
    if ord == 1:
        return sum(abs(x), axis, keep_dims)
    if ord in (np.inf, "inf"):
        return max(abs(x), axis, keep_dims)
    raise ValueError(f"norm(): unsupported ord {ord!r}; use 'euclidean', 1 or inf")
