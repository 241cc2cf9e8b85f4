"""Honest timers: steady-state median per call, warm-up excluded; device events on a GPU."""
from __future__ import annotations

import statistics
import time
from typing import Callable


def _sync(device: str) -> None:
    if device == "cupy":
        import cupy
        cupy.cuda.get_current_stream().synchronize()
    elif device == "torch-cuda":
        import torch
        torch.cuda.synchronize()


def steady_state(fn: Callable[[], object], device: str, budget_s: float = 0.25,
                 warmup: int = 3, max_calls: int = 20000) -> float:
    """Median seconds per call over batches, after warm-up."""
    return side_by_side({"f": (fn, device)}, budget_s, warmup, max_calls)["f"]


def side_by_side(fns: dict, budget_s: float = 0.25, warmup: int = 3,
                 max_calls: int = 20000) -> dict:
    """Median seconds per call of each of {name: (fn, device)}, their batches interleaved so
    that all of them meet the same machine state (caches, allocator, clocks)."""
    batches = {}
    for name, (fn, device) in fns.items():
        for _ in range(warmup):
            fn()
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        one = max(time.perf_counter() - start, 1e-7)
        batches[name] = int(min(max(1, budget_s / 10 / one), max_calls))
    samples = {name: [] for name in fns}
    deadline = time.perf_counter() + budget_s * len(fns)
    rounds = 0
    while rounds < 5 or (time.perf_counter() < deadline and rounds < 50):
        for name, (fn, device) in fns.items():
            samples[name].append(_timed_batch(fn, batches[name], device) / batches[name])
        rounds += 1
    return {name: statistics.median(s) for name, s in samples.items()}


def _timed_batch(fn, batch: int, device: str) -> float:
    if device == "cupy":
        import cupy
        begin, end = cupy.cuda.Event(), cupy.cuda.Event()
        begin.record()
        for _ in range(batch):
            fn()
        end.record()
        end.synchronize()
        return cupy.cuda.get_elapsed_time(begin, end) / 1e3
    start = time.perf_counter()
    for _ in range(batch):
        fn()
    _sync(device)
    return time.perf_counter() - start


def first_call(fn: Callable[[], object], device: str) -> float:
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start
