"""Honest timers: per-call times of interleaved batches, warm-up excluded, reported as the
median with its spread; device events on a GPU."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np


@dataclass
class Stats:
    """Seconds per call: one sample per timed batch of `batch` calls."""
    samples: list = field(default_factory=list)
    batch: int = 1

    @property
    def median(self) -> float:
        return float(np.median(self.samples))

    @property
    def p10(self) -> float:
        return float(np.percentile(self.samples, 10))

    @property
    def p90(self) -> float:
        return float(np.percentile(self.samples, 90))


def _sync(device: str) -> None:
    if device == "cupy":
        import cupy
        cupy.cuda.get_current_stream().synchronize()
    elif device == "torch-cuda":
        import torch
        torch.cuda.synchronize()


def side_by_side(fns: dict, budget_s: float = 0.25, warmup: int = 3,
                 max_calls: int = 20000, min_rounds: int = 10, max_rounds: int = 50) -> dict:
    """{name: Stats} for each of {name: (fn, device)}. Their batches run in rounds, one batch
    of each per round, so that all of them meet the same machine state (caches, allocator,
    clocks, other processes); each batch is sized to about a tenth of the budget, and at
    least min_rounds run so that p10 and p90 rest on more than a handful of samples."""
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
    stats = {name: Stats(batch=batches[name]) for name in fns}
    deadline = time.perf_counter() + budget_s * len(fns)
    rounds = 0
    while rounds < min_rounds or (time.perf_counter() < deadline and rounds < max_rounds):
        for name, (fn, device) in fns.items():
            stats[name].samples.append(_timed_batch(fn, batches[name], device) / batches[name])
        rounds += 1
    return stats


def _timed_batch(fn, batch: int, device: str) -> float:
    """Seconds for `batch` calls. On a GPU the clock is a pair of events on the stream the
    work goes to: the span from the first launch to the end of the last kernel, host gaps
    included (a launch-bound call is timed by its launches, a memory-bound one by its kernels)."""
    if device == "cupy":
        import cupy
        begin, end = cupy.cuda.Event(), cupy.cuda.Event()
        begin.record()
        for _ in range(batch):
            fn()
        end.record()
        end.synchronize()
        return cupy.cuda.get_elapsed_time(begin, end) / 1e3
    if device == "torch-cuda":
        import torch
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        begin.record()
        for _ in range(batch):
            fn()
        end.record()
        end.synchronize()
        return begin.elapsed_time(end) / 1e3
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
