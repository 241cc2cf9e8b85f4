"""The world of ranks: a local world of one, or an MPI world (mpi4py), with the failure rules.

Failure rules (docs/DISTRIBUTED.md):
* Each step starts with a status exchange: every rank contributes a fixed-size record (ok or
  failed, a digest of what it is about to reduce, an error message) through one small
  MPI allgather. If any rank failed, every rank raises the same DistributedError naming the
  failed ranks; if the layouts differ, every rank raises one naming the ranks that differ.
* Every MPI wait has a deadline (init(timeout=...)). A rank that died or hangs outside a step
  never joins the exchange; its peers then give up after the timeout, print why and abort the
  whole job (MPI_Abort), since an MPI collective cannot be cancelled.
* An uncaught exception on one rank aborts the job at once (a sys.excepthook installed by
  init), so that the others need not wait for the timeout.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Any, Callable

import numpy as np

# Environment variables that a launcher sets in each process it starts, with the world size.
_LAUNCHER_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")
_LAUNCHER_RANK_VARS = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK")

STATUS_BYTES = 1024           # per rank and status exchange: flag, digest, message
_DIGEST = slice(1, 17)
_MESSAGE = slice(17, STATUS_BYTES)
DEFAULT_TIMEOUT = 300.0       # seconds; GPUGRAD_DIST_TIMEOUT overrides
SPIN = 0.02                   # seconds a wait polls MPI without sleeping
ABORT_GRACE = 0.5             # seconds between the last words and MPI_Abort


_yield = getattr(os, "sched_yield", None)


class DistributedError(RuntimeError):
    """A distributed step failed; raised on every rank alike, naming the ranks concerned."""

    __module__ = "gpugrad.distributed"   # how tracebacks name it: where users import it from


def launched_size() -> int | None:
    """The world size an MPI launcher (mpiexec, mpirun, srun with PMI) announced, else None."""
    for var in _LAUNCHER_SIZE_VARS:
        value = os.environ.get(var)
        if value and value.isdigit():
            return int(value)
    if any(os.environ.get(var) for var in _LAUNCHER_RANK_VARS):
        return 0   # launched, size unknown: ask MPI
    return None


class LocalWorld:
    """The world of one process: no MPI, every collective is the identity."""

    rank = 0
    size = 1
    local_rank = 0
    local_size = 1
    timeout = DEFAULT_TIMEOUT
    comm = None

    def agree(self, error: BaseException | None, digest: bytes, what: str,
              describe: Callable[[], str] = str) -> None:
        if error is not None:   # alone, the original error says it best
            raise error

    def barrier(self) -> None:
        pass

    def host_transport(self):
        return None

    def __repr__(self) -> str:
        return "<gpugrad.distributed world of one process (no MPI)>"


class _Done:
    def wait(self) -> None:
        pass


class _MPIRequest:
    def __init__(self, world: "MPIWorld", request, what: str):
        self.world, self.request, self.what = world, request, what

    def wait(self) -> None:
        self.world.wait(self.request, self.what)


class MPITransport:
    """Host buffers over MPI's nonblocking collectives, each wait under the world's timeout.
    The gather is in place (MPI_IN_PLACE): this rank's row of rows is already packed."""

    def __init__(self, world: "MPIWorld"):
        self.world, self.rank, self.size = world, world.rank, world.size

    def start_allgather(self, rows: Any, what: str) -> _MPIRequest:
        return _MPIRequest(self.world, self.world.comm.Iallgather(self.world.MPI.IN_PLACE, rows), what)

    def start_bcast(self, buf: Any, root: int, what: str) -> _MPIRequest:
        return _MPIRequest(self.world, self.world.comm.Ibcast(buf, root=root), what)


class MPIWorld:
    """MPI.COMM_WORLD with timeouts on every wait."""

    def __init__(self, timeout: float):
        try:
            from mpi4py import MPI
        except ImportError as exc:
            raise DistributedError(
                f"this process was started by an MPI launcher ({_launcher_hint()}) but mpi4py "
                f"cannot be imported ({exc}); install it with pip install \"gpugrad[dist]\" (or "
                "pip install mpi4py), or run without mpiexec for a world of one.") from exc
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        # Ranks sharing this node (shared memory): the local rank picks the GPU.
        node = self.comm.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank)
        self.local_rank, self.local_size = node.Get_rank(), node.Get_size()
        node.Free()
        self.timeout = float(timeout)
        self.steps = 0

    def __repr__(self) -> str:
        return (f"<gpugrad.distributed MPI world: rank {self.rank} of {self.size}, local rank "
                f"{self.local_rank} of {self.local_size}>")

    # --- waiting, with a deadline ---------------------------------------------------------------

    def wait(self, request, what: str) -> None:
        """Wait for a nonblocking MPI request, at most self.timeout seconds. MPI moves a large
        message in chunks, each only when Test (progress) is called, so the first SPIN seconds
        poll without pause (as MPI's own Wait would: sleeping between chunks made a 0.5 MiB
        gather 10x slower); after that, short sleeps, so that a rank waiting long for a slower
        one leaves the cores to it (ranks often share a node's cores)."""
        start = time.monotonic()
        spin_until, deadline = start + SPIN, start + self.timeout
        pause = 20e-6
        while not request.Test():
            now = time.monotonic()
            if now > deadline:
                self.abort(f"timed out after {self.timeout:g} s waiting for the other ranks in "
                           f"{what}: a rank died, hangs, or the ranks run different code (one "
                           f"called a collective the others did not). Aborting all {self.size} "
                           "ranks; raise the limit with dist.init(timeout=...) or "
                           "GPUGRAD_DIST_TIMEOUT if a step legitimately takes longer.")
            if now > spin_until:
                time.sleep(pause)
                pause = min(pause * 2, 1e-3)
            elif _yield is not None:
                _yield()      # poll, but let a rank that shares this core run first

    def abort(self, message: str, code: int = 1) -> None:
        sys.stderr.write(f"gpugrad.distributed: rank {self.rank}: {message}\n")
        sys.stderr.flush()
        # The launcher forwards our stderr from a pipe; MPI_Abort can have it kill everything
        # before it read that pipe (1 in 10 runs with MPICH here lost the message). A pause on
        # this path only lets the message out first.
        time.sleep(ABORT_GRACE)
        self.comm.Abort(code)

    # --- the status exchange ------------------------------------------------------------------

    def agree(self, error: BaseException | None, digest: bytes, what: str,
              describe: Callable[[], str] = str) -> None:
        """Every rank says whether it is fine and what it is about to reduce; raise the same
        DistributedError on every rank if any rank failed or the layouts differ."""
        record = np.zeros(STATUS_BYTES, np.uint8)
        if error is not None:
            record[0] = 1
            text = f"{type(error).__name__}: {error}".encode("utf-8", "replace")
            text = text[:_MESSAGE.stop - _MESSAGE.start]
            record[_MESSAGE.start:_MESSAGE.start + len(text)] = np.frombuffer(text, np.uint8)
        record[_DIGEST] = np.frombuffer(digest.ljust(16, b"\0")[:16], np.uint8)
        rows = np.zeros((self.size, STATUS_BYTES), np.uint8)
        rows[self.rank] = record
        self.wait(self.comm.Iallgather(self.MPI.IN_PLACE, rows), f"the status exchange of {what}")
        self.steps += 1
        failed = [r for r in range(self.size) if rows[r, 0]]
        if failed:
            reasons = "; ".join(
                f"rank {r} failed: "
                + bytes(rows[r, _MESSAGE]).rstrip(b"\0").decode("utf-8", "replace")
                for r in failed)
            raise DistributedError(f"{reasons} (in {what}; every rank stopped)") from error
        differ = [r for r in range(self.size) if bytes(rows[r, _DIGEST]) != bytes(rows[0, _DIGEST])]
        if differ:
            raise DistributedError(
                f"ranks {', '.join(map(str, differ))} would reduce different tensors than rank 0 in "
                f"{what} (names, shapes or dtypes differ); rank {self.rank} has: {describe()}. "
                "Build the same model (same variable names, in the same order of creation) on "
                "every rank and compute gradients for the same variables on every rank.")

    def barrier(self) -> None:
        self.wait(self.comm.Ibarrier(), "barrier()")

    def host_transport(self) -> MPITransport:
        return MPITransport(self)

    def install_excepthook(self) -> None:
        """An uncaught exception on one rank aborts every rank at once, naming this rank. A
        DistributedError is left alone: every rank raises it together and exits by itself."""
        previous = sys.excepthook
        world = self

        def hook(exc_type, exc, tb):
            previous(exc_type, exc, tb)
            if not issubclass(exc_type, DistributedError):
                world.abort(f"failed outside a distributed step ({exc_type.__name__}: {exc}); "
                            f"aborting all {world.size} ranks so that none waits for it.")

        sys.excepthook = hook


def _launcher_hint() -> str:
    found = [f"{v}={os.environ[v]}" for v in _LAUNCHER_SIZE_VARS + _LAUNCHER_RANK_VARS
             if os.environ.get(v)]
    return ", ".join(found) or "launcher variables set"


def timeout_from_env(timeout: float | None) -> float:
    if timeout is not None:
        value = float(timeout)
    else:
        raw = os.environ.get("GPUGRAD_DIST_TIMEOUT", "")
        try:
            value = float(raw) if raw else DEFAULT_TIMEOUT
        except ValueError:
            raise ValueError(f"GPUGRAD_DIST_TIMEOUT must be a number of seconds, got {raw!r}.") from None
    if not value > 0:
        raise ValueError(f"gpugrad.distributed: timeout must be a positive number of seconds, got {value!r}.")
    return value
