"""NCCL between GPUs (through CuPy's cupy.cuda.nccl): one GPU per rank, a communicator made
from a unique id that rank 0 draws and MPI broadcasts, and every collective enqueued on the
current CuPy stream, so that a training step never waits on the host for the GPU.

NCCL cannot run two ranks on one GPU, so init() refuses a node with more ranks than GPUs. The
transport below only turns arrays into (pointer, count, NCCL dtype) calls; tests drive it with a
stand-in communicator on machines without GPUs (tests/test_distributed.py).
"""
from __future__ import annotations

from typing import Any, Callable

# ncclDataType_t, by numpy dtype name (NCCL's own numbering, also cupy.cuda.nccl's constants).
_DTYPE_NAMES = {"int8": "NCCL_INT8", "uint8": "NCCL_UINT8", "int32": "NCCL_INT32",
                "uint32": "NCCL_UINT32", "int64": "NCCL_INT64", "uint64": "NCCL_UINT64",
                "float16": "NCCL_FLOAT16", "float32": "NCCL_FLOAT32", "float64": "NCCL_FLOAT64"}


class _Done:
    def wait(self) -> None:   # stream order already makes the result safe to use
        pass


def pointer(buf: Any) -> int:
    """The device address of a CuPy array (a host address for numpy: the stand-in's case)."""
    data = getattr(buf, "data", None)
    if hasattr(data, "ptr"):
        return int(data.ptr)
    return int(buf.ctypes.data)


class NcclTransport:
    """Collectives over an NcclCommunicator, in place, on the current stream."""

    def __init__(self, comm: Any, rank: int, size: int, constants: Any,
                 stream: Callable[[], int]):
        self.comm, self.rank, self.size = comm, rank, size
        self.constants = constants       # the module (or stand-in) holding NCCL_FLOAT32 & co.
        self.stream = stream             # -> the current stream's handle
        self.calls = 0

    def _dtype(self, buf: Any) -> int:
        name = _DTYPE_NAMES.get(str(buf.dtype))
        if name is None:
            raise TypeError(f"gpugrad.distributed: NCCL cannot reduce {buf.dtype} arrays; "
                            f"use one of {', '.join(_DTYPE_NAMES)}.")
        return getattr(self.constants, name)

    def start_allgather(self, rows: Any, what: str) -> _Done:
        n = int(rows.shape[1])
        # In place, as NCCL allows it: the send buffer is this rank's row of the receive buffer.
        send = pointer(rows) + self.rank * n * rows.dtype.itemsize
        self.comm.allGather(send, pointer(rows), n, self._dtype(rows), self.stream())
        self.calls += 1
        return _Done()

    def start_bcast(self, buf: Any, root: int, what: str) -> _Done:
        raw = buf.view("uint8")          # any dtype, bool included, travels as bytes
        self.comm.bcast(pointer(raw), int(raw.size), self._dtype(raw), root, self.stream())
        self.calls += 1
        return _Done()


def select_device(local_rank: int, local_size: int, rank: int) -> int:
    """Make GPU local_rank current for this process (before anything is allocated)."""
    import cupy
    count = cupy.cuda.runtime.getDeviceCount()
    if local_size > count:
        raise RuntimeError(
            f"rank {rank}: this node runs {local_size} ranks but has {count} GPU(s); NCCL needs a "
            f"GPU of its own for every rank. Start at most {count} ranks per node (mpiexec -n "
            f"{count}, or -ppn {count} across nodes), or train on the CPU with "
            "GPUGRAD_BACKEND=numpy.")
    cupy.cuda.Device(local_rank).use()
    return local_rank


def nccl_module():
    """cupy.cuda.nccl, or a RuntimeError that says how to get it."""
    try:
        from cupy.cuda import nccl
        return nccl
    except Exception as exc:   # CuPy built without NCCL, or libnccl not found
        raise RuntimeError(
            f"the CuPy backend needs NCCL for distributed training, but cupy.cuda.nccl cannot be "
            f"imported ({exc}). Install NCCL for your CUDA version (e.g. pip install "
            "nvidia-nccl-cu12), or train on the CPU with GPUGRAD_BACKEND=numpy.") from exc


def make_transport(world: Any, nccl: Any, uid: Any) -> NcclTransport:
    """Join the NCCL communicator whose unique id rank 0 drew (every rank calls this at the
    same point of init(): it is a collective)."""
    import cupy
    comm = nccl.NcclCommunicator(world.size, uid, world.rank)
    return NcclTransport(comm, world.rank, world.size, nccl,
                         lambda: cupy.cuda.get_current_stream().ptr)
