"""Runs the workloads at each size and measures gpugrad, the baselines and a device copy of
the same bytes in the same rounds; reports per call the median time with its spread
(p10-p90), achieved bandwidth, the ratio to that copy (the floor) and to each baseline."""
from __future__ import annotations

import argparse
import datetime
import itertools
import json
import math
import platform
import sys
import textwrap
import time
from typing import Sequence

import numpy as np

from gpugrad.bench import allocator, timing
from gpugrad.bench import workloads as W

WORKLOADS = {  # name -> what it measures (shown by --help)
    "seed": "variable_grads(lambda: sum((p + r*r) * (q + r)), [p, q]): the value and two "
            "gradients; floor 5n elements moved",
    "chain": "variable_grads of sum(exp(-tanh(sigmoid(x*w + b)*x - b)**2) * w) for w, b: a "
             "deep elementwise chain; floor 5n elements",
    "sum": "tf.sum of n elements to a scalar (two-stage reduction); floor n elements read",
    "matmul": "a sqrt(n) x sqrt(n) float matmul; reported in TFLOP/s, no floor",
    "elementwise": "every elementwise primitive, forward (x -> y) and backward (x, dy -> dx), "
                   "named op:fwd / op:bwd",
    "conv2d": "variable_grads of sum(conv2d(x, w, 1, 'same') * dy) for x and w (NHWC, 3x3): the "
              "forward conv and both gradients at batch 64, 8x8x1 -> 32 and 32x32x16 -> 32; fixed "
              "shapes, --sizes does not apply; TFLOP/s",
    "gather": "variable_grads of sum(gather(table, indices) * w) for the table: an embedding "
              "lookup (4096 of 10000 rows of 64) and its scatter-add gradient; fixed shapes, "
              "--sizes does not apply",
    "train": "one Adam step of an MLP (relu, softmax cross-entropy) at batch 64, 256-256-256 "
             "and batch 4096, 1024-4096-1024; fixed shapes, --sizes does not apply; plus the "
             "data-parallel step with 1 process and 2 MPI ranks (needs gpugrad[dist])",
}
FIXED_SHAPES = ("conv2d", "gather", "train")   # run once, at their own shapes, whatever --sizes says
COPY = "copy"          # the contender that is the floor
MAX_INPUT_SETS = 16    # input sets kept to defeat the cache (see _input_sets)
DEFAULT_L2_BYTES = 50 * 2 ** 20  # H100's L2, where the device does not say


def _workloads(names: Sequence[str], n: int, dtype: str, compare: set):
    for name in names:
        if name == "seed":
            yield lambda: W.seed(n, dtype, compare)
        elif name == "chain":
            yield lambda: W.chain(n, dtype, compare)
        elif name == "sum":
            yield lambda: W.total_sum(n, dtype, compare)
        elif name == "matmul":
            yield lambda: W.matmul(n, dtype, compare)
        elif name == "train":  # fixed shapes, from issue 5's targets
            yield lambda: W.mlp_step(64, 256, 256, 256, compare)
            yield lambda: W.mlp_step(4096, 1024, 4096, 1024, compare)
        elif name == "gather":
            yield lambda: W.gather_step(10000, 64, 4096, compare)
        elif name == "conv2d":
            yield lambda: W.conv2d_step(64, 8, 1, 32, 3, compare)
            yield lambda: W.conv2d_step(64, 32, 16, 32, 3, compare)
        elif name == "elementwise":
            for op in W.ELEMENTWISE:
                yield lambda op=op: W.elementwise(op, n, dtype, False)
                yield lambda op=op: W.elementwise(op, n, dtype, True)


def check_workloads(names: Sequence[str]) -> None:
    unknown = [w for w in names if w not in WORKLOADS]
    if unknown:
        raise SystemExit(f"unknown workload {unknown[0]!r}: choose from {', '.join(WORKLOADS)}")


def cache_bytes(backend) -> int:
    """The cache that repeated calls must not be served from: the GPU's L2. On the CPU, 0 (no
    rotation; its caches are not modelled)."""
    if backend.name != "cupy":
        return 0
    try:
        import cupy
        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        return int(props.get("l2CacheSize") or DEFAULT_L2_BYTES)
    except Exception:  # noqa: BLE001 - a driver that cannot say: assume an H100-sized L2
        return DEFAULT_L2_BYTES


def _input_sets(working_set: int, cache: int) -> int:
    """How many copies of a workload's inputs to cycle through so that a call finds its inputs
    out of cache: enough to cover twice the cache, at most MAX_INPUT_SETS. Below about
    2 * cache / MAX_INPUT_SETS bytes (6 MB on a 50 MB L2) some reuse remains; such calls take
    a few microseconds of kernel time and are launch-bound anyway."""
    if cache <= 0 or working_set >= 2 * cache:
        return 1
    return min(MAX_INPUT_SETS, math.ceil(2 * cache / max(working_set, 1)))


def _rotating(fns: list):
    if len(fns) == 1:
        return fns[0]
    turn = itertools.cycle(fns)
    return lambda: next(turn)()


def _timer(impl: str, device: str) -> str:
    """Which clock times impl: CUDA events on the stream its work goes to; the host clock for
    JAX, whose calls block until ready and whose streams are not CuPy's."""
    if device != "cupy":
        return "cpu"
    if impl.startswith("torch"):
        return "torch-cuda"
    return "cpu" if impl.startswith("jax") else "cupy"


class _Progress:
    """One line per finished workload on stderr, whether or not it is a terminal (so CI logs
    and redirected runs show it), with a rough estimate of the time left."""

    def __init__(self, total: int):
        self.total, self.done, self.start = total, 0, time.perf_counter()

    def step(self, label: str) -> None:
        self.done += 1
        elapsed = time.perf_counter() - self.start
        left = elapsed / self.done * (self.total - self.done)
        sys.stderr.write(f"gpugrad bench [{self.done}/{self.total}] {label}: {elapsed:.1f} s elapsed, "
                         f"about {left:.1f} s left\n")
        sys.stderr.flush()


def run(sizes: Sequence[int], names: Sequence[str], dtype: str = "float32", compare: Sequence[str] = (),
        budget_s: float = 0.2, cache: int | None = None) -> dict:
    """cache: bytes of cache to defeat by rotating input sets; None asks the device."""
    import gpugrad as tf
    from gpugrad.api import autodiff
    from gpugrad.runtime import engine
    from gpugrad.backends import current

    check_workloads(names)
    backend = current()
    device = "cupy" if backend.name == "cupy" else "cpu"
    cache = cache_bytes(backend) if cache is None else cache
    compare = set(compare)
    fixed = [w for w in names if w in FIXED_SHAPES]
    jobs = [(n, make) for n in sizes for make in _workloads([w for w in names if w not in fixed], n, dtype, compare)]
    jobs += [(None, make) for make in _workloads(fixed, 0, dtype, compare)]
    progress, rows = _Progress(len(jobs)), []
    for n, make in jobs:
        engine.plans.clear()
        autodiff._fast_plans.clear()
        work = make()
        n = work.size if n is None else n
        sets = _input_sets(work.bytes, cache)
        works = [work] + [make() for _ in range(sets - 1)]
        first = timing.first_call(work.run, device)
        # The floor: a device copy moving the workload's bytes (half read, half written).
        item = np.dtype(work.dtype).itemsize
        copy = _rotating([W.copy_floor(max(1, work.bytes // (2 * item)), work.dtype) for _ in range(sets)])
        contenders = {"gpugrad": (_rotating([w.run for w in works]), device), COPY: (copy, device)}
        firsts, errors = {"gpugrad": first}, {}
        for impl in work.baselines:
            if impl == "numpy" and backend.name != "numpy":
                continue
            fns, clock = [w.baselines[impl] for w in works], _timer(impl, device)
            try:
                firsts[impl] = timing.first_call(fns[0], clock)
                for fn in fns[1:]:  # the other input sets' first calls, where a failure is caught
                    fn()
                contenders[impl] = (_rotating(fns), clock)
            except Exception as exc:  # noqa: BLE001 - a baseline that fails is reported, not fatal
                errors[impl] = f"{type(exc).__name__}: {exc}"[:200]
        # Warm-up covers every input set, so that no first call is timed.
        stats = timing.side_by_side(contenders, budget_s, warmup=max(3, sets))
        floor = stats.pop(COPY)
        for impl, s in stats.items():
            t = s.median
            row = {"workload": work.name, "size": n, "dtype": work.dtype, "impl": impl,
                   "time_us": t * 1e6, "p10_us": s.p10 * 1e6, "p90_us": s.p90 * 1e6,
                   "samples": len(s.samples), "batch": s.batch, "input_sets": sets,
                   "first_call_ms": firsts[impl] * 1e3, "gbps": work.bytes / t / 1e9,
                   "copy_gbps": work.bytes / floor.median / 1e9,
                   "x_floor": t / floor.median if not work.flops else None,
                   "tflops": work.flops / t / 1e12 if work.flops else None,
                   "samples_s": s.samples}
            if impl != "gpugrad":
                row["gpugrad_vs_this"] = stats["gpugrad"].median / t
            rows.append(row)
        for impl, err in errors.items():
            rows.append({"workload": work.name, "size": n, "dtype": work.dtype, "impl": impl, "error": err})
        for v in list(tf.variables.registered_variables()):
            v.dispose()
        progress.step(f"{work.name} n={n}")
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "backend": backend.name, "device": backend.device(), "python": platform.python_version(),
        "numpy": np.__version__, "budget_s": budget_s, "cache_bytes": cache, "rows": rows,
    }


def compare_to(result: dict, saved: dict) -> None:
    """Adds to each row vs_saved: its median over the same row's (workload, size, dtype, impl)
    median in a saved run."""
    before = {(r["workload"], r["size"], r["dtype"], r["impl"]): r["time_us"]
              for r in saved["rows"] if "error" not in r}
    for r in result["rows"]:
        old = before.get((r["workload"], r["size"], r["dtype"], r["impl"]))
        if "error" not in r and old:
            r["vs_saved"] = r["time_us"] / old


def _spread(r: dict) -> str:
    return f"{r['p10_us']:.1f}-{r['p90_us']:.1f}" if "p10_us" in r else "-"


def format_table(result: dict, saved: str | None = None) -> str:
    lines = [f"gpugrad bench: backend {result['backend']} on {result['device']}, {result['date']}"
             + (f"; host allocator {result['allocator']}" if result.get("allocator") else ""),
             "us/call: median of batches (p10-p90 over n batches); x floor: median / median of a "
             "device copy of the same bytes, timed in the same rounds"]
    if saved:
        lines.append(f"vs saved: this median / the same row's median in {saved} (below 1: faster now)")
    header = (f"{'workload':<20}{'size':>9} {'impl':<14}{'us/call':>10} {'p10-p90':<17}{'n':>4}{'GB/s':>9}"
              f"{'copy GB/s':>10}{'x floor':>8}{'1st ms':>9}{'gpugrad/this':>13}")
    lines.append(header + (f"{'vs saved':>10}" if saved else ""))
    for r in result["rows"]:
        if "error" in r:
            lines.append(f"{r['workload']:<20}{r['size']:>9} {r['impl']:<14} failed: {r['error']}")
            continue
        xf = f"{r['x_floor']:.2f}" if r.get("x_floor") is not None else "-"
        ratio = f"{r['gpugrad_vs_this']:.2f}" if "gpugrad_vs_this" in r else ""
        line = (f"{r['workload']:<20}{r['size']:>9} {r['impl']:<14}{r['time_us']:>10.1f} {_spread(r):<17}"
                f"{r.get('samples', 0):>4}{r['gbps']:>9.2f}{r.get('copy_gbps', 0):>10.2f}{xf:>8}"
                f"{r['first_call_ms']:>9.2f}{ratio:>13}")
        if saved:
            line += f"{r['vs_saved']:>10.2f}" if "vs_saved" in r else f"{'-':>10}"
        lines.append(line)
    if result.get("overhead"):
        lines.append("host overhead of a cached variable_grads call (no-op kernels, outputs "
                     "preallocated; real driver launches not included), us per call:")
        for r in result["overhead"]:
            lines.append(f"  {r['workload']:<8} n={r['size']:<6} {r['overhead_us']:8.1f} us "
                         f"(p10-p90 {r['p10_us']:.1f}-{r['p90_us']:.1f}, {r['samples']} batches of "
                         f"{r['batch']}); a real call {r['real_us']:.1f} us")
    if result.get("data_parallel"):
        from gpugrad.bench import ddp
        lines.extend(ddp.format_lines(result["data_parallel"]))
    return "\n".join(lines)


def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install matplotlib") from None
    return plt


def plot(result: dict, path: str) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    series: dict = {}
    for r in result["rows"]:
        if "error" in r or r["workload"] not in ("seed", "chain", "sum"):
            continue
        series.setdefault(f"{r['workload']} {r['impl']}", []).append((r["size"], r["gbps"]))
        if r["impl"] == "gpugrad":
            series.setdefault(f"{r['workload']} copy (floor)", []).append((r["size"], r["copy_gbps"]))
    for label, pts in sorted(series.items()):
        pts.sort()
        style = "--" if label.endswith("(floor)") else "-"
        ax.plot([p[0] for p in pts], [p[1] for p in pts], style, marker="o", label=label)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("elements")
    ax.set_ylabel("achieved GB/s (one-pass bytes / median time)")
    ax.set_title(f"gpugrad bench, {result['backend']} on {result['device']}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _parser() -> argparse.ArgumentParser:
    epilog = "workloads (--workloads, comma-separated):\n" + "\n".join(
        textwrap.fill(text, 94, initial_indent=f"  {name:<12} ", subsequent_indent=" " * 15)
        for name, text in WORKLOADS.items())
    parser = argparse.ArgumentParser(prog="gpugrad bench", description=__doc__, epilog=epilog,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,16,20", help="log2 sizes, comma-separated (default 10,16,20)")
    parser.add_argument("--workloads", default="seed,chain,sum,matmul,elementwise",
                        help="which to run, comma-separated; listed below (default: all but train)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--compare", default="", help="baselines besides numpy: torch,jax,cupy")
    parser.add_argument("--backend", choices=("numpy", "cupy"))
    parser.add_argument("--budget", type=float, default=0.2,
                        help="seconds of timing per contender and workload (default 0.2)")
    parser.add_argument("--cache-mb", type=float, metavar="MB",
                        help="cache to defeat: workloads smaller than twice this cycle through "
                             "copies of their inputs (default: the GPU's L2; 0 on the CPU)")
    parser.add_argument("--overhead", action="store_true",
                        help="also measure the host overhead of a cached seed and chain "
                             "variable_grads call at 2^4 (kernels replaced by no-ops)")
    parser.add_argument("--compare-to", metavar="FILE.json",
                        help="a saved --json run: print each row's median over the same row's there")
    parser.add_argument("--allocator", choices=("steady", "default"), default="steady",
                        help="steady (default): glibc serves blocks up to 32 MiB from its heap and "
                             "keeps it, so memory-bound CPU rows do not depend on what the process "
                             "freed before (see gpugrad/bench/allocator.py); default: as glibc "
                             "sets itself")
    parser.add_argument("--json", metavar="FILE", help="write the result, all samples included")
    parser.add_argument("--plot", metavar="FILE.png", help="plot GB/s against size (needs matplotlib)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    names = [w for w in args.workloads.split(",") if w]
    check_workloads(names)
    # Whatever can fail after the run fails now, before minutes of timing are spent.
    if args.plot:
        _pyplot()
    saved = None
    if args.compare_to:
        try:
            with open(args.compare_to) as fh:
                saved = json.load(fh)
        except (OSError, ValueError) as exc:
            raise SystemExit(f"--compare-to {args.compare_to}: {exc}") from None
    if args.backend:
        import gpugrad as tf
        tf.set_backend(args.backend)
    sizes = [1 << int(s) for s in args.sizes.split(",") if s]
    cache = None if args.cache_mb is None else int(args.cache_mb * 2 ** 20)
    heap = allocator.make_steady() if args.allocator == "steady" else "default"
    result = run(sizes, names, args.dtype, [c for c in args.compare.split(",") if c], args.budget, cache)
    result["allocator"] = heap
    if args.overhead:
        from gpugrad.bench import overhead
        result["overhead"] = overhead.measure(n=16, dtype=args.dtype, budget_s=args.budget,
                                              device="cupy" if result["backend"] == "cupy" else "cpu",
                                              done=_Progress(len(overhead.MAKERS)).step)
    if "train" in names:
        from gpugrad.bench import ddp
        result["data_parallel"] = ddp.measure_processes(steps=30, ranks=2)
    if saved is not None:
        compare_to(result, saved)
    print(format_table(result, args.compare_to))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)
    if args.plot:
        plot(result, args.plot)
    return 0
