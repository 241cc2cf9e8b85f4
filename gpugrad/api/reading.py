"""Reading a tensor's values: the Tensor methods that run kernels (realize, numpy, item,
print, repr, ...). They need the engine, a backend and the printer, layers above the graph
(gpugrad/core/tensor.py), so this module defines them and installs them on Tensor; the graph
layer knows nothing of the layers above it.
"""
from __future__ import annotations

import numpy as np

from gpugrad.backends import to_numpy
from gpugrad.runtime.engine import from_array, realize as realize_all
from gpugrad.api.memory import dispose_tensor
from gpugrad.runtime.printing import format_tensor
from gpugrad.core.tensor import DisposedTensor, Tensor


class _Reading:
    """The methods installed on Tensor (a class body, so that they read as methods)."""

    def realize(self) -> "Tensor":
        """Run the kernels this tensor needs; returns self."""
        realize_all([self._node()])
        return self

    def data_buffer(self):
        """The backend array (numpy or CuPy) holding this tensor's values."""
        node = self._node()
        if node.buf is None:
            node.realize()
        return node.buf

    def numpy(self) -> np.ndarray:
        """The values as a numpy array. On the numpy backend it is a read-only view of the
        tensor's buffer: tensors are immutable, and a write through the array would change
        this tensor (and every plan result that shares its buffer) behind the engine's back."""
        buf = self.data_buffer()
        out = to_numpy(buf)
        if out is buf:
            out = out.view()
            out.flags.writeable = False
        return out

    def item(self):
        self._node()  # a disposed tensor says so before anything else
        if self.size != 1:
            raise ValueError(
                f"item() needs a tensor with one element, but this one has shape {list(self.shape)} "
                f"({self.size} elements); index or reduce it first.")
        return self.numpy().reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def array_sync(self):
        """TF.js's arraySync: the values as nested Python lists (a number for a scalar)."""
        return self.numpy().tolist()

    def data_sync(self) -> np.ndarray:
        """TF.js's dataSync: the values as a flat array (a copy: writing to it never changes
        the tensor), like TF.js's TypedArray."""
        return self.numpy().flatten()

    # TF.js's data() and array() return Promises; Python has no event loop to wait for, so
    # they are the synchronous forms (the kernels run at the call).
    array = array_sync
    data = data_sync

    @property
    def is_disposed(self) -> bool:
        """TF.js's isDisposed: a disposed tensor, or a disposed Variable."""
        return self.__class__ is DisposedTensor or getattr(self, "disposed", False) is True

    def to_string(self, verbose: bool = False) -> str:
        return format_tensor(self.numpy(), self.dtype, verbose)

    def __str__(self) -> str:
        return self.to_string()

    def print(self, verbose: bool = False) -> None:
        print(self.to_string(verbose))

    def __repr__(self) -> str:
        node = self._node()
        head = f"shape={list(self.shape)}, dtype={self.dtype}"
        if node.buf is None:
            return f"<gpugrad.Tensor {head}, lazy op={node.op!r} (call .numpy() to compute)>"
        body = np.array2string(self.numpy(), separator=", ", threshold=40, edgeitems=3)
        return f"gpugrad.Tensor({body}, {head})"


    def dispose(self) -> None:
        """Release this tensor (TF.js's dispose): later use raises `Tensor is disposed.`; see
        gpugrad/api/memory.py for what happens to its buffer and to lazy tensors built from it."""
        dispose_tensor(self)

    def __reduce__(self):
        # copy.copy, copy.deepcopy and pickle: a new realized tensor of the same values. Not
        # the node itself: its id and key name it in this process's plan caches, and a copy
        # carrying them (or one unpickled in another process) could be taken for another
        # tensor there. (The same for the Python node and the C one, which has no pickling.)
        return _rebuilt, (self.numpy(), self.dtype)


def _rebuilt(array: np.ndarray, dtype: str) -> Tensor:
    """A realized tensor of array's values (unpickling a tensor, on the current backend)."""
    return from_array(array, dtype)


def install() -> None:
    for name, value in vars(_Reading).items():
        if not name.startswith("__") or name in ("__str__", "__repr__", "__reduce__"):
            setattr(Tensor, name, value)


install()
