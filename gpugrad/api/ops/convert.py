"""Making tensors from Python data, and checking arguments: tensor(), tensor1d..6d, scalar,
clone, convert, cast, and the shape/axis/count validators every op uses.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Sequence

import numpy as np

from gpugrad.core import dtypes
from gpugrad.core import tensor as T
from gpugrad.backends import current as _current_backend
from gpugrad.runtime.engine import from_array as _from_array
from gpugrad.core.tensor import Tensor, shape_str

TensorLike = Any
__all__ = ['axis_arg', 'cast', 'clone', 'convert', 'count_arg', 'from_dlpack', 'scalar', 'shape_arg', 'tensor', 'tensor1d', 'tensor2d', 'tensor3d', 'tensor4d', 'tensor5d', 'tensor6d']


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
            out = T.cast(out, dtypes.canonical(dtype))
        return T.reshape(out, resolve_shape(out, shape, "tensor")) if shape is not None else T.same(out)
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


def is_integer(value: Any) -> bool:
    """An integer argument: Python and numpy integers, not bools (True is not a size)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def shape_arg(shape: Any, api: str, arg: str = "shape", infer: bool = False) -> tuple:
    """The one check of every shape-like argument (shapes, sizes, repetitions): a list of
    non-negative integers, or one integer. int() would silently truncate 2.7 to 2 and accept
    -1, giving tensors of the wrong or a negative size, so anything else is refused here,
    where the op is created. With infer, -1 may stand for sizes the op works out itself
    (reshape's one inferred dimension, slice's "to the end")."""
    if is_integer(shape):
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
        if not is_integer(d):
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
    if not is_integer(value):
        raise TypeError(f"{api}(): {arg} must be an integer, but got {type(value).__name__} {value!r}.")
    if value < minimum:
        raise ValueError(f"{api}(): {arg} must be an integer >= {minimum}, but got {value}.")
    return int(value)


def axis_arg(axis: Any, api: str, arg: str = "axis") -> Any:
    """Axes are integers (or a list of integers): 1.0 is refused, not truncated."""
    if axis.__class__ is int or is_integer(axis):
        return int(axis)
    if isinstance(axis, (list, tuple)) and all(is_integer(a) for a in axis):
        return [int(a) for a in axis]
    bad = next((a for a in axis if not is_integer(a)), axis) if isinstance(axis, (list, tuple)) else axis
    raise TypeError(
        f"{api}(): {arg} must be an integer or a list of integers, but got {type(bad).__name__} "
        f"{bad!r}" + (f" in {arg}={list(axis)!r}" if bad is not axis else "") + ".")




def resolve_shape(x: Tensor, shape: Any, api: str) -> tuple:
    """A reshape's target shape, checked against x's size, with a -1 inferred."""
    shape = list(shape_arg(shape, api, infer=True))
    if shape.count(-1) > 1:
        raise ValueError(f"Shapes can only have 1 implicit size. Found -1 at dim {shape.index(-1)} and another.")
    if -1 in shape:
        known = math.prod(d for d in shape if d != -1)
        if known == 0 or x.size % known:
            raise ValueError(
                f"The implicit shape can't be a fractional number. Got {x.size} / {known} "
                f"({api} of {list(x.shape)} to {shape}).")
        shape[shape.index(-1)] = x.size // known
    if any(d < 0 for d in shape):
        raise ValueError(f"Invalid shape {shape}: sizes must be non-negative")
    if math.prod(shape) != x.size:
        raise ValueError(
            f"Size({x.size}) must match the product of shape {shape_str(shape)} "
            f"({api} of {list(x.shape)} to {shape}; the sizes must be equal).")
    return tuple(shape)


def cast(x: TensorLike, dtype: Any) -> Tensor:
    return T.cast(convert(x), dtypes.canonical(dtype))
