"""`gpugrad selfcheck`: describe this install, then prove it works.

It prints the environment and runs each check in isolation on the generated CUDA kernels'
executor (the CuPy backend where a GPU is usable; otherwise the CPU emulator of the same
kernels, next to the numpy backend), comparing with the numpy backend. GPU-only checks are
reported as "skipped: no GPU", never as passed. It writes report.md and report.json and exits
1 when any check failed, printing one line per failure. It needs numpy only (CuPy where
present; g++ for the emulator): no pytest, no hypothesis, no network.
"""
from __future__ import annotations

import argparse
import datetime
import functools
import tempfile
import time
from pathlib import Path
from typing import Sequence

from gpugrad.selfcheck import gpu_checks, numerics, report
from gpugrad.selfcheck.core import FAILED, Check, Outcome, Skip, run_check
from gpugrad.selfcheck.environment import collect
from gpugrad.selfcheck.targets import Target, gpu_reason, kernel_target, numpy_target

FULL_GRAPHS = 200
QUICK_GRAPHS = {True: 40, False: 5}     # by on_gpu: the CPU emulator compiles with g++, slowly


def _unavailable(reason: str):
    def run(data: dict) -> str:
        raise Skip(reason)
    return run


def plan_checks(quick: bool, graphs: int | None = None) -> tuple[str, list[Check]]:
    """(what the kernels run on, the checks in order)."""
    kernels = kernel_target()
    on_gpu = bool(kernels and kernels.on_gpu)
    if graphs is None:
        graphs = QUICK_GRAPHS[on_gpu] if quick else FULL_GRAPHS
    checks: list[Check] = []
    if not on_gpu:
        cpu = numpy_target()
        checks.append(Check("seed-programs/numpy", functools.partial(numerics.seed_programs, "numpy")))
    if kernels is None:
        why = "no GPU, and no g++ for the CPU emulator of the kernels"
        for name in ("seed-programs", "primitives", "random-graphs", "reductions", "optimizers"):
            checks.append(Check(f"{name}/cuda-emulated", _unavailable(why)))
    else:
        k = kernels.name
        checks += [
            Check(f"seed-programs/{k}", functools.partial(numerics.seed_programs, k)),
            Check(f"primitives/{k}", functools.partial(numerics.primitives, kernels)),
            Check(f"random-graphs/{k}", functools.partial(numerics.random_graphs, kernels, graphs)),
            Check(f"reductions/{k}", functools.partial(numerics.reductions, kernels, quick)),
            Check(f"optimizers/{k}", functools.partial(numerics.optimizers, kernels,
                                                       ("float32",) if quick and not on_gpu else None)),
        ]
    gpu = kernels if on_gpu else None
    checks.append(Check("stream-capture", functools.partial(gpu_checks.stream_capture, gpu), gpu_only=True))
    if on_gpu:
        checks.append(Check("determinism/cupy", functools.partial(numerics.determinism, kernels, 1 << 22)))
    else:
        checks.append(Check("determinism/numpy", functools.partial(numerics.determinism, cpu, 1 << 16)))
        if kernels is not None:
            checks.append(Check("determinism/cuda-emulated",
                                functools.partial(numerics.determinism, kernels, 1 << (12 if quick else 16))))
        checks.append(Check("determinism/cupy", _unavailable("no GPU"), gpu_only=True))
    checks += [
        Check("peak-memory", functools.partial(gpu_checks.peak_memory, gpu), gpu_only=True),
        Check("kernel-cache", functools.partial(gpu_checks.kernel_cache, gpu), gpu_only=True),
        Check("timing", functools.partial(gpu_checks.timing, gpu, quick), gpu_only=True),
    ]
    target = f"cupy ({collect_gpu_name()})" if on_gpu else (
        "numpy + CPU emulation of the generated CUDA kernels" if kernels else "numpy only")
    return target, checks


def collect_gpu_name() -> str:
    import cupy
    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    name = props["name"]
    return name.decode() if isinstance(name, bytes) else name


def run(out_dir: Path, quick: bool = False, graphs: int | None = None, only: Sequence[str] = (),
        echo=print) -> int:
    """Run the selfcheck, write the reports to out_dir; returns the exit code (0: no check
    failed)."""
    start = time.perf_counter()
    echo(f"gpugrad selfcheck ({'quick' if quick else 'full'})")
    environment = collect()
    for key, value in environment.items():
        echo(f"  {key:<34} {value}")
    target, checks = plan_checks(quick, graphs)
    if only:
        checks = [c for c in checks if any(pattern in c.name for pattern in only)]
    echo(f"checking: {target}")
    gpu = not gpu_reason()
    outcomes: list[Outcome] = []
    for check in checks:
        outcome = run_check(check, gpu)
        outcomes.append(outcome)
        echo(report.console_line(outcome))
    failed = [o for o in outcomes if o.status == FAILED]
    code = 1 if failed else 0
    meta = {"mode": "quick" if quick else "full", "target": target, "exit_code": code,
            "seconds": time.perf_counter() - start,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    md, js = report.write(out_dir, meta, environment, outcomes)
    for o in failed:
        echo(report.failure_line(o))
    c = report.counts(outcomes)
    echo(f"{c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped in "
         f"{meta['seconds']:.1f} s; report: {md} and {js}")
    return code


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", metavar="DIR",
                        help="where report.md and report.json go (default: a new temporary directory, "
                             "printed at the end)")
    parser.add_argument("--quick", action="store_true",
                        help="fewer random graphs and reduction sizes (under a minute)")
    parser.add_argument("--graphs", type=int, metavar="N",
                        help=f"number of random graphs (default {FULL_GRAPHS}; quick: {QUICK_GRAPHS[True]} "
                             f"on a GPU, {QUICK_GRAPHS[False]} emulated)")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="run only the checks whose name contains NAME (repeatable)")


def main(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="gpugrad-selfcheck-"))
    return run(out, args.quick, args.graphs, args.only)


__all__ = ["run", "plan_checks", "add_arguments", "main", "Target"]
