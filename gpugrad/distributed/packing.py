"""Gradients -> one contiguous buffer per dtype (bucketed) -> one collective each -> views back.

Why pack: a collective has a fixed cost (latency, a kernel launch under NCCL) that dwarfs the
bytes of a small variable, so one collective per dtype bucket beats one per variable. Why a
fixed order: every rank must lay out its buffer identically, or the reduction adds the wrong
elements together; entries are ordered by (dtype, key), keys being variable names.

The reduction is deterministic by construction, not by hope: the packed buffers of all ranks
are gathered into a (size, n) array and summed in rank order on every rank,
``((g_0 + g_1) + g_2) + ...``, by the same elementwise adds on every rank. Every rank therefore
computes bitwise the same sum, run after run (MPI_Allreduce and ncclAllReduce promise neither).
The price is size x the bytes of an all-reduce in memory and traffic, which is fine for the few
ranks per job this is meant for and keeps CPU and GPU arithmetic identical.

Works on numpy and CuPy arrays alike (the array module is taken from the buffers), so the GPU
path packs with ``cupy.concatenate`` on the current stream and never reads a value back.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Hashable, Protocol, Sequence

import numpy as np

# Above this many bytes per dtype a rank's payload is split into several buckets, each its own
# collective, so the first bucket's transfer can start while later ones are packed.
DEFAULT_BUCKET_BYTES = 16 << 20


def array_module(buf: Any):
    """numpy for host arrays, cupy for CuPy arrays (imported only when one is seen)."""
    if isinstance(buf, np.ndarray):
        return np
    import cupy
    return cupy


class Pending(Protocol):
    def wait(self) -> None: ...


class Transport(Protocol):
    """What the reducer needs from MPI or NCCL. Both calls work in place and may return before
    the data has moved; ``wait()`` on the result makes it safe to read (under NCCL, stream order
    already does, so its wait does nothing and nothing waits on the host)."""

    rank: int
    size: int

    def start_allgather(self, rows: Any, what: str) -> Pending: ...

    def start_bcast(self, buf: Any, root: int, what: str) -> Pending: ...


@dataclass
class Entry:
    key: Hashable          # a variable name (or another key that sorts with them)
    buf: Any               # a contiguous numpy or CuPy array
    dtype: str = field(init=False)
    shape: tuple = field(init=False)

    def __post_init__(self):
        self.dtype = str(self.buf.dtype)
        self.shape = tuple(int(d) for d in self.buf.shape)

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


def _sort_key(entry: Entry) -> tuple:
    return (entry.dtype, str(entry.key))


def buckets(entries: Sequence[Entry], bucket_bytes: int = DEFAULT_BUCKET_BYTES) -> list[list[Entry]]:
    """Entries grouped by dtype in the fixed order, each group cut into buckets of about
    bucket_bytes (a variable is never split; one larger than the threshold is a bucket alone)."""
    keys = [str(e.key) for e in entries]
    if len(set(keys)) != len(keys):
        dup = sorted(k for k in set(keys) if keys.count(k) > 1)
        raise ValueError(f"gpugrad.distributed: two entries named {dup[0]!r}; every variable needs "
                         "a unique name so that all ranks pack their buffers alike.")
    out: list[list[Entry]] = []
    current: list[Entry] = []
    nbytes = 0
    for entry in sorted(entries, key=_sort_key):
        itemsize = np.dtype(entry.dtype).itemsize
        if current and (current[0].dtype != entry.dtype or nbytes + entry.size * itemsize > bucket_bytes):
            out.append(current)
            current, nbytes = [], 0
        current.append(entry)
        nbytes += entry.size * itemsize
    if current:
        out.append(current)
    return out


def layout(entries: Sequence[Entry]) -> str:
    """A readable description of what a rank is about to pack, in packing order."""
    return ", ".join(f"{e.key}[{','.join(map(str, e.shape))}] {e.dtype}"
                     for e in sorted(entries, key=_sort_key)) or "nothing"


def layout_digest(entries: Sequence[Entry], extra: str = "") -> bytes:
    """16 bytes that differ (with overwhelming probability) when two ranks' layouts differ."""
    return hashlib.blake2b((layout(entries) + "|" + extra).encode(), digest_size=16).digest()


class PackedReduction:
    """A reduction prepared before any rank communicates: every buffer allocated and this
    rank's row packed, so that an out-of-memory error happens here, before the ranks agree to
    go ahead, and never halfway through a collective that the other ranks are already in."""

    def __init__(self, entries: Sequence[Entry], rank: int, size: int,
                 bucket_bytes: int = DEFAULT_BUCKET_BYTES):
        self.rank, self.size = rank, size
        self.groups = []
        for group in buckets(entries, bucket_bytes):
            xp = array_module(group[0].buf)
            n = sum(e.size for e in group)
            rows = xp.empty((size, n), dtype=group[0].buf.dtype)
            xp.concatenate([e.buf.reshape(-1) for e in group], out=rows[rank])
            self.groups.append((group, rows))

    def run(self, transport: Transport, op: str = "mean", what: str = "gradients") -> dict:
        """Gather every bucket (all started before the first is waited for), sum in rank order,
        divide by size for a mean, and return {key: this rank's view of the result}."""
        pending = [transport.start_allgather(rows, f"{what} ({group[0].dtype}, bucket {k + 1} "
                                             f"of {len(self.groups)})")
                   for k, (group, rows) in enumerate(self.groups)]
        out = {}
        for (group, rows), p in zip(self.groups, pending):
            p.wait()
            total = rows[0]       # folded in place into row 0: nothing is allocated here
            for r in range(1, self.size):
                total += rows[r]
            if op == "mean":
                total /= self.size
            offset = 0
            for e in group:
                out[e.key] = total[offset:offset + e.size].reshape(e.shape)
                offset += e.size
        return out


class PackedBroadcast:
    """Root's entries packed per dtype bucket; the other ranks allocate the same buffers."""

    def __init__(self, entries: Sequence[Entry], rank: int, root: int,
                 bucket_bytes: int = DEFAULT_BUCKET_BYTES):
        self.groups = []
        for group in buckets(entries, bucket_bytes):
            xp = array_module(group[0].buf)
            n = sum(e.size for e in group)
            if rank == root:
                flat = xp.concatenate([e.buf.reshape(-1) for e in group])
            else:
                flat = xp.empty(n, dtype=group[0].buf.dtype)
            self.groups.append((group, flat))
        self.root = root

    def run(self, transport: Transport, what: str = "variables") -> dict:
        pending = [transport.start_bcast(flat, self.root, f"{what} ({group[0].dtype})")
                   for group, flat in self.groups]
        out = {}
        for (group, flat), p in zip(self.groups, pending):
            p.wait()
            offset = 0
            for e in group:
                out[e.key] = flat[offset:offset + e.size].reshape(e.shape)
                offset += e.size
        return out
