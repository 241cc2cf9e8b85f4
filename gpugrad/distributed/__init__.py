"""Data-parallel training over MPI processes, with NCCL between GPUs.

    import gpugrad as tf
    from gpugrad import distributed as dist
    dist.init()                               # the MPI world; on GPUs, GPU = local rank, NCCL
    model = ...
    opt = dist.DistributedOptimizer(tf.train.adam(1e-3))
    dist.broadcast_variables(model.trainable_variables, root=0)
    for xb, yb in tf.nn.batches(x, y, 64, shuffle=True, seed=epoch,
                                shard=(dist.rank(), dist.size())):
        opt.minimize(lambda: loss(model(xb), yb))   # gradients averaged over all ranks

Run it with ``mpiexec -n 2 python train.py``; without mpiexec (or without mpi4py) it is a world
of one process and every call below does what a single process would. docs/DISTRIBUTED.md has
the reduction order, the failure rules and the multi-node picture.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np

import gpugrad as tf
from gpugrad import Tensor, Variable

from gpugrad.distributed import nccl as N
from gpugrad.distributed import state
from gpugrad.distributed.optimizer import DistributedOptimizer, buffer_of
from gpugrad.distributed.packing import DEFAULT_BUCKET_BYTES, Entry, PackedBroadcast, PackedReduction, layout, layout_digest
from gpugrad.distributed.world import DistributedError, LocalWorld, MPIWorld, launched_size, timeout_from_env

__all__ = ["init", "is_initialized", "rank", "size", "local_rank", "barrier", "all_reduce",
           "broadcast", "broadcast_variables", "DistributedOptimizer", "DistributedError"]


def init(timeout: float | None = None, bucket_bytes: int | None = None):
    """Join the world this process was started in: MPI.COMM_WORLD under mpiexec (or another MPI
    launcher), else a world of one (no MPI is imported). With the CuPy backend and more than one
    rank, this process takes GPU number local_rank() and joins an NCCL communicator, so call
    init() before creating tensors (and set_backend() before init()).

    timeout: seconds any rank waits for the others before aborting the job (default 300, or
    GPUGRAD_DIST_TIMEOUT). bucket_bytes: gradients of a dtype above this size are reduced in
    several collectives (default 16 MiB). Calling init() again returns the same world."""
    if state._world is not None:
        return state._world
    seconds = timeout_from_env(timeout)
    if bucket_bytes is not None and not (isinstance(bucket_bytes, int) and bucket_bytes > 0):
        raise ValueError(f"dist.init: bucket_bytes must be a positive integer, got {bucket_bytes!r}.")
    launched = launched_size()
    world = LocalWorld() if launched is None or launched == 1 else MPIWorld(seconds)
    world.timeout = seconds
    if world.size > 1:
        world.install_excepthook()
        if tf.get_backend() == "cupy":
            state._device_transport = _join_nccl(world)
    state._world, state._bucket_bytes = world, bucket_bytes
    return world


def _join_nccl(world: MPIWorld):
    """Pick the GPU, then make the NCCL communicator from rank 0's unique id. Local failures
    (no NCCL, too few GPUs) go through a status exchange, so every rank stops, not just one."""
    error, module, uid = None, None, np.zeros(128, np.int16)
    try:
        module = N.nccl_module()
        N.select_device(world.local_rank, world.local_size, world.rank)
        if world.rank == 0:
            uid[:] = module.get_unique_id()
    except Exception as exc:
        error = exc
    world.agree(error, b"nccl", "init() (NCCL setup)")
    world.wait(world.comm.Ibcast(uid, root=0), "init() (the NCCL unique id)")
    return N.make_transport(world, module, tuple(int(c) for c in uid))


def is_initialized() -> bool:
    return state._world is not None


def rank() -> int:
    """This process's rank, 0 .. size() - 1."""
    return state.world().rank


def size() -> int:
    """The number of processes (ranks) in the world."""
    return state.world().size


def local_rank() -> int:
    """This process's rank among those on its node (its GPU's number under CuPy)."""
    return state.world().local_rank


def barrier() -> None:
    """Wait until every rank gets here (at most the timeout)."""
    state.world().barrier()


def _checked(who: str, t: Any) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"dist.{who}: expected a tensor, got {type(t).__name__}; wrap values with "
                        "tf.tensor(...).")
    return t


def all_reduce(t: Tensor, op: str = "sum") -> Tensor:
    """A new tensor: t summed ("sum") or averaged ("mean") over all ranks, bitwise the same on
    every rank (summed in rank order). Every rank must pass the same shape and dtype."""
    _checked("all_reduce", t)
    if op not in ("sum", "mean"):
        raise ValueError(f"dist.all_reduce: op must be 'sum' or 'mean', got {op!r}.")
    if t.dtype not in ("float32", "float64", "int32"):
        raise TypeError(f"dist.all_reduce: cannot reduce {t.dtype} tensors; cast to float32 or int32.")
    if op == "mean" and t.dtype == "int32":
        raise TypeError("dist.all_reduce: the mean of int32 tensors is not int32; cast to float32 "
                        "first, or use op='sum'.")
    world = state.world()
    if world.size == 1:
        return tf.tensor(t)
    entries, error, reduction = [], None, None
    try:
        entries = [Entry("tensor", buffer_of(t))]
        reduction = PackedReduction(entries, world.rank, world.size, DEFAULT_BUCKET_BYTES << 8)
    except Exception as exc:
        error = exc
    world.agree(error, layout_digest(entries, op), f"all_reduce(op={op!r})", lambda: layout(entries))
    out = reduction.run(state.transport_for(entries), op, "all_reduce")
    return tf.tensor(out["tensor"], dtype=t.dtype)


def broadcast(t: Tensor, root: int = 0) -> Tensor:
    """A new tensor holding root's t on every rank (the others' t give shape and dtype)."""
    _checked("broadcast", t)
    world = state.world()
    _check_root("broadcast", root, world)
    if world.size == 1:
        return tf.tensor(t)
    entries, error, packed = [], None, None
    try:
        entries = [Entry("tensor", buffer_of(t))]
        packed = PackedBroadcast(entries, world.rank, root, DEFAULT_BUCKET_BYTES << 8)
    except Exception as exc:
        error = exc
    world.agree(error, layout_digest(entries, f"root {root}"), "broadcast()", lambda: layout(entries))
    return tf.tensor(packed.run(state.transport_for(entries), "broadcast")["tensor"], dtype=t.dtype)


def broadcast_variables(variables: Iterable[Variable] | Mapping[str, Variable], root: int = 0) -> None:
    """Assign root's values to these variables on every rank (one broadcast per dtype bucket),
    so that all ranks start training from the same weights."""
    world = state.world()
    _check_root("broadcast_variables", root, world)
    variables = list(variables.values()) if isinstance(variables, Mapping) else list(variables)
    for v in variables:
        if not isinstance(v, Variable):
            raise TypeError(f"dist.broadcast_variables: expected variables (e.g. "
                            f"model.trainable_variables), got {type(v).__name__}.")
    if world.size == 1:
        return
    entries, error, packed = [], None, None
    try:
        entries = [Entry(v.name, buffer_of(v)) for v in variables]
        packed = PackedBroadcast(entries, world.rank, root, state.bucket_bytes() or DEFAULT_BUCKET_BYTES)
    except Exception as exc:
        error = exc
    world.agree(error, layout_digest(entries, f"root {root}"), "broadcast_variables()",
                lambda: layout(entries))
    values = packed.run(state.transport_for(entries), "broadcast_variables")
    for v in variables:
        v.assign(tf.tensor(values[v.name], dtype=v.dtype))


def _check_root(who: str, root: Any, world) -> None:
    if isinstance(root, bool) or not isinstance(root, int) or not 0 <= root < world.size:
        raise ValueError(f"dist.{who}: root must be a rank in [0, {world.size - 1}], got {root!r}.")
