"""The C allocator's state, which the memory-bound CPU rows of a benchmark depend on.

glibc serves a block above its mmap threshold (128 KiB at first) with fresh pages from the
system, each page faulted in on first touch: a 4 MiB numpy temporary then costs about 1 ms
of page faults, several times the arithmetic on it. The threshold moves up when such a block
is freed, and the heap is trimmed back to the system past another threshold, so whether a
call's temporaries land on fresh pages depends on everything the process allocated and freed
before it. Two runs of the same code, or two commits with the same generated code, then
differ by 10-30% on a row, whichever came first (docs/PERFORMANCE.md).

``make_steady`` fixes both thresholds for the rest of the process: blocks up to 32 MiB (glibc's
largest accepted threshold on 64-bit) come from the heap and nothing is returned to the
system, so every contender, gpugrad and the hand-written baselines alike, reuses warm memory
as a long-running loop does once glibc's own threshold has moved. ``gpugrad bench`` does this
unless told ``--allocator default``.
"""
from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3   # glibc's mallopt parameters (malloc.h)
STEADY_MMAP_THRESHOLD = 32 << 20   # the largest glibc accepts on 64-bit (HEAP_MAX_SIZE / 2)
STEADY_TRIM_THRESHOLD = 1 << 30


def make_steady() -> str:
    """Fix glibc's thresholds as above; returns what the report says of the allocator."""
    try:
        libc = ctypes.CDLL(None)
        mallopt, version = libc.mallopt, libc.gnu_get_libc_version
    except (OSError, AttributeError):
        return "default (not glibc: left as it is)"
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    version.restype = ctypes.c_char_p
    if not (mallopt(M_MMAP_THRESHOLD, STEADY_MMAP_THRESHOLD)
            and mallopt(M_TRIM_THRESHOLD, STEADY_TRIM_THRESHOLD)):
        return "default (glibc refused the thresholds)"
    return (f"steady (glibc {version().decode()}: blocks up to {STEADY_MMAP_THRESHOLD >> 20} MiB "
            "from the heap, none returned)")
