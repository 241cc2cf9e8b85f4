"""The process's one world, made by init(), and which transport carries which buffers."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from gpugrad.distributed.world import DistributedError

_world = None
_device_transport = None      # NCCL, when the CuPy backend runs on more than one rank
_bucket_bytes: int | None = None


def world():
    if _world is None:
        raise RuntimeError("gpugrad.distributed: call dist.init() first (it finds the MPI world, or "
                           "makes a world of one when the program was not started by mpiexec).")
    return _world


def bucket_bytes() -> int | None:
    return _bucket_bytes


def transport_for(entries: Sequence[Any]):
    """MPI for host (numpy) buffers; NCCL for CuPy buffers. A mix, or CuPy buffers without NCCL
    (the backend changed after init()), is an error that says what to do."""
    on_host = [isinstance(e.buf, np.ndarray) for e in entries]
    if all(on_host):
        return world().host_transport()
    if not any(on_host) and _device_transport is not None:
        return _device_transport
    raise DistributedError(
        f"rank {world().rank}: these tensors live on the GPU but dist.init() set up no NCCL "
        "communicator (the backend was not 'cupy' when init() ran). Call tf.set_backend('cupy') "
        "before dist.init(), or keep the numpy backend throughout.")
