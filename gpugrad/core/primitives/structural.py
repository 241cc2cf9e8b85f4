"""The primitives that are not elementwise math: cast, reductions, movement, matmul and the
identities autodiff needs (stop_gradient, identity, custom_grad). Rules take the math layer L
(gpugrad/compile/lax.py), the node n and the cotangent dy."""
from __future__ import annotations

from gpugrad.core.primitives.record import declare


def _cast(L, n, dy):
    # Gradients pass through casts, to int32 as well (as TF.js does).
    return (L.cast(dy, L.grad_dtype(n.src[0].dtype)),)


declare("cast", "cast", 1, _cast, doc="arg: the target dtype; C++ static_cast, numpy astype")


# --- reductions: arg is the sorted tuple of reduced axes, kept as size 1 -----------------------

def _sum(L, n, dy):
    return (L.expand(dy, n.src[0].shape),)


def _max(L, n, dy):
    # Tied maxima share the gradient evenly (JAX's choice; TF.js gives each the whole dy).
    x = n.src[0]
    hit = L.cast(L.equal(x, L.expand(n, x.shape)), dy.dtype)
    count = L.sum(hit, n.arg)
    return (L.mul(hit, L.expand(L.div(dy, count), x.shape)),)


def _prod(L, n, dy):
    # d prod / d x_i is the product of the others. Written so that it stays right, and
    # differentiable, where some x are zero: with one zero entry k, the others' products
    # carry x_k itself (as the sum of the zero entries, 0 in value, 1 in derivative); with
    # two, each zero entry's product carries the other one. Three or more zeros make every
    # product of others vanish to second order, so 0 is exact there for first and second
    # derivatives.
    x = n.src[0]
    axes = n.arg
    xf = L.cast(x, L.grad_dtype(x.dtype))
    is_zero = L.equal(xf, 0)
    safe = L.where(is_zero, 1, xf)
    nonzero_prod = L.expand(L.prod(safe, axes), x.shape)
    zeros = L.expand(L.sum(L.cast(is_zero, xf.dtype), axes), x.shape)
    zero_sum = L.expand(L.sum(L.where(is_zero, xf, 0), axes), x.shape)
    at_nonzero = L.where(L.equal(zeros, 0), L.div(nonzero_prod, safe),
                         L.where(L.equal(zeros, 1), L.mul(L.div(nonzero_prod, safe), zero_sum), 0))
    at_zero = L.where(L.equal(zeros, 1), nonzero_prod,
                      L.where(L.equal(zeros, 2), L.mul(nonzero_prod, L.sub(zero_sum, xf)), 0))
    return (L.mul(L.expand(dy, x.shape), L.where(is_zero, at_zero, at_nonzero)),)


declare("sum", "reduce", 1, _sum)
declare("max", "reduce", 1, _max)
declare("prod", "reduce", 1, _prod)
declare("argmax", "reduce", 1, lambda L, n, dy: (L.zeros_for(n.src[0]),),
        doc="int32 index of the first maximum (NaN counts as largest), as numpy")


# --- movement ----------------------------------------------------------------------------------

def _permute(L, n, dy):
    inverse = [0] * len(n.arg)
    for i, p in enumerate(n.arg):
        inverse[p] = i
    return (L.permute(dy, tuple(inverse)),)


def _expand(L, n, dy):
    # The one place where broadcasting is undone: sum over the axes that were size 1.
    src = n.src[0]
    axes = tuple(i for i, (a, b) in enumerate(zip(src.shape, n.shape)) if a == 1 and b != 1)
    return (L.sum(dy, axes) if axes else dy,)


declare("reshape", "movement", 1, lambda L, n, dy: (L.reshape(dy, n.src[0].shape),))
declare("permute", "movement", 1, _permute)
declare("expand", "movement", 1, _expand)
declare("slice", "movement", 1, lambda L, n, dy: (L.unslice(dy, n.src[0].shape, n.arg),),
        doc="arg: one normalized (start, stop, step) per axis")
declare("unslice", "movement", 1, lambda L, n, dy: (L.slice_(dy, n.arg[1]),),
        doc="the adjoint of slice: x placed into zeros; arg: (shape, slices)")


def _matmul(L, n, dy):
    a, b = n.src
    swap = tuple(range(a.ndim - 2)) + (a.ndim - 1, a.ndim - 2)
    return L.matmul(dy, L.permute(b, swap)), L.matmul(L.permute(a, swap), dy)


declare("matmul", "matmul", 2, _matmul, doc="(..., M, K) @ (..., K, N), equal batch dims")


# --- indexing: data-dependent reads and their adjoint ------------------------------------------
# Both work on canonical shapes (the public ops reshape around them): x (B, O, N, C) and
# int32 indices (B, K), B the batch dims flattened, O the axes before the gathered one, C those
# after it.

def _gather(L, n, dy):
    x, idx = n.src
    return L.scatter_add(dy, idx, x.shape[2]), None


def _scatter_add(L, n, dy):
    return L.gather(dy, n.src[1]), None


declare("gather", "index", 2, _gather, public=False,
        doc="gather(x (B, O, N, C), indices (B, K)) -> (B, O, K, C): x[b, o, indices[b, k], c], "
            "0 where an index is outside [0, N) (TF.js's GPU backends; host-known indices are "
            "checked by the op first)")
declare("scatter_add", "index", 2, _scatter_add, public=False,
        doc="scatter_add(y (B, O, K, C), indices (B, K)); arg: N -> (B, O, N, C): the sum over k "
            "of y[b, o, k, c] where indices[b, k] == n, in increasing k (deterministic, no atomics); "
            "indices outside [0, N) add nowhere. The adjoint of gather.")


# --- scans: x (O, N, C) along N; arg (exclusive, reverse) ----------------------------------------

def _cumsum(L, n, dy):
    # Each x[m] adds into every output at or after it in scan order (after it, if exclusive):
    # the same scan of dy, the other way round.
    exclusive, reverse = n.arg
    return (L.scan("cumsum", dy, exclusive, not reverse),)


def _cumprod(L, n, dy):
    # d y[n] / d x[m] = y[n] / x[m] for every n that x[m] enters (TF's rule): the reverse scan
    # of dy * y, divided by x. Not finite where x is exactly 0 (as in TF and TF.js).
    exclusive, reverse = n.arg
    x = n.src[0]
    return (L.div(L.scan("cumsum", L.mul(dy, n), exclusive, not reverse), x),)


declare("cumsum", "scan", 1, _cumsum, public=False,
        doc="inclusive (or exclusive) running sum along N of x (O, N, C), forward or reversed")
declare("cumprod", "scan", 1, _cumprod, public=False,
        doc="inclusive (or exclusive) running product along N of x (O, N, C), forward or reversed")


# --- identities for autodiff ---------------------------------------------------------------------

declare("stop_gradient", "identity", 1, lambda L, n, dy: (None,),
        doc="the value of x, disconnected from gradients")
declare("identity", "identity", 1, lambda L, n, dy: (dy,),
        doc="what an op that changes nothing returns inside a gradient call (tensor.same)")


def _custom(L, n, dy):
    """custom_grad(f): n.src = (value, *inputs), n.arg = (grad_func, saved tensors)."""
    grad_func, saved = n.arg
    out = grad_func(dy, list(saved))
    xs = n.src[1:]
    if isinstance(out, L.Tensor):
        out = [out]
    if not isinstance(out, (list, tuple)) or len(out) != len(xs):
        raise ValueError(
            "The function f passed in custom_grad(f) must return an object where `obj.grad_func` is "
            "a function that returns the same number of tensors as inputs passed to f(...).")
    if not all(isinstance(g, L.Tensor) for g in out):
        raise TypeError(
            "The function f passed in custom_grad(f) must return an object where `obj.grad_func` is "
            "a function that returns a list of only tensors.")
    result = []
    for i, (g, x) in enumerate(zip(out, xs)):
        g = g._node()
        if g.shape != x.shape:
            raise ValueError(
                f"Error in gradient for op forward. The gradient of input '{i}' has shape "
                f"'{L.shape_str(g.shape)}', which does not match the shape of the input "
                f"'{L.shape_str(x.shape)}'")
        result.append(L.cast(g, L.grad_dtype(x.dtype)))
    return (None, *result)


declare("custom_grad", "identity", 1, _custom,
        doc="the value of its first operand, with the derivative a user's grad_func gives")
