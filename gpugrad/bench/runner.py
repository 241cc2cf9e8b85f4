"""Runs the workloads at each size, measures gpugrad and the baselines in the same run, and
reports time per call, achieved bandwidth, the ratio to the copy floor and to each baseline."""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
from typing import Sequence

import numpy as np

from . import timing
from . import workloads as W


def _progress(done: int, total: int, label: str) -> None:
    if not sys.stderr.isatty():
        return
    width = 30
    filled = int(width * done / max(total, 1))
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {label[:40]:<40}")
    sys.stderr.flush()
    if done == total:
        sys.stderr.write("\n")


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
        elif name == "elementwise":
            for op in W.ELEMENTWISE:
                yield lambda op=op: W.elementwise(op, n, dtype, False)
                yield lambda op=op: W.elementwise(op, n, dtype, True)
        else:
            raise SystemExit(f"unknown workload {name!r}: choose from seed, chain, sum, matmul, "
                             "elementwise, train")


def run(sizes: Sequence[int], names: Sequence[str], dtype: str = "float32", compare: Sequence[str] = (),
        budget_s: float = 0.2) -> dict:
    import gpugrad as tf
    from gpugrad import autodiff, engine
    from gpugrad.backends import current

    backend = current()
    device = "cupy" if backend.name == "cupy" else "cpu"
    compare = set(compare)
    rows, floors = [], {}
    jobs = [(n, make) for n in sizes for make in _workloads([w for w in names if w != "train"], n, dtype, compare)]
    if "train" in names:
        jobs += [(None, make) for make in _workloads(["train"], 0, dtype, compare)]
    for k, (n, make) in enumerate(jobs):
        if n is None:  # a training step: its own size, floor measured for it below
            work = make()
            n = work.size
            make = (lambda w=work: w)
        if n not in floors:
            copy = W.copy_floor(n, dtype)
            t = timing.steady_state(copy, device, budget_s)
            floors[n] = 2 * n * np.dtype(dtype).itemsize / t
        engine.plans.clear()
        autodiff._fast_plans.clear()
        work = make()
        _progress(k, len(jobs), f"{work.name} n={n}")
        first = timing.first_call(work.run, device)
        floor_t = work.bytes / floors[n]
        contenders, firsts, errors = {"gpugrad": (work.run, device)}, {"gpugrad": first}, {}
        for impl, fn in work.baselines.items():
            if impl == "numpy" and backend.name != "numpy":
                continue
            dev = device if not impl.startswith("torch") else ("torch-cuda" if device == "cupy" else "cpu")
            try:
                firsts[impl] = timing.first_call(fn, dev)
                contenders[impl] = (fn, dev)
            except Exception as exc:  # noqa: BLE001 - a baseline that fails is reported, not fatal
                errors[impl] = f"{type(exc).__name__}: {exc}"[:200]
        times = timing.side_by_side(contenders, budget_s)
        for impl, t in times.items():
            row = {"workload": work.name, "size": n, "dtype": dtype, "impl": impl,
                   "time_us": t * 1e6, "first_call_ms": firsts[impl] * 1e3,
                   "gbps": work.bytes / t / 1e9,
                   "x_floor": t / floor_t if not work.flops else None,
                   "tflops": work.flops / t / 1e12 if work.flops else None}
            if impl != "gpugrad":
                row["gpugrad_vs_this"] = times["gpugrad"] / t
            rows.append(row)
        for impl, err in errors.items():
            rows.append({"workload": work.name, "size": n, "dtype": dtype, "impl": impl, "error": err})
        for v in list(tf.variables.registered_variables()):
            v.dispose()
    _progress(len(jobs), len(jobs), "done")
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "backend": backend.name, "device": backend.device(), "python": platform.python_version(),
        "numpy": np.__version__, "copy_bandwidth_gbps": {str(n): b / 1e9 for n, b in floors.items()},
        "rows": rows,
    }


def format_table(result: dict) -> str:
    lines = [f"gpugrad bench: backend {result['backend']} on {result['device']}, {result['date']}",
             "copy floor (read+write): " + ", ".join(f"n={n}: {b:.1f} GB/s"
                                                    for n, b in result["copy_bandwidth_gbps"].items()),
             f"{'workload':<24}{'size':>10} {'impl':<14}{'us/call':>11}{'GB/s':>9}{'x floor':>9}"
             f"{'1st call ms':>12}{'gpugrad/this':>14}"]
    for r in result["rows"]:
        if "error" in r:
            lines.append(f"{r['workload']:<24}{r['size']:>10} {r['impl']:<14} failed: {r['error']}")
            continue
        xf = f"{r['x_floor']:.2f}" if r.get("x_floor") is not None else "-"
        ratio = f"{r['gpugrad_vs_this']:.2f}" if "gpugrad_vs_this" in r else ""
        lines.append(f"{r['workload']:<24}{r['size']:>10} {r['impl']:<14}{r['time_us']:>11.1f}"
                     f"{r['gbps']:>9.2f}{xf:>9}{r['first_call_ms']:>12.2f}{ratio:>14}")
    return "\n".join(lines)


def plot(result: dict, path: str) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install matplotlib") from None
    fig, ax = plt.subplots(figsize=(8, 5))
    series: dict = {}
    for r in result["rows"]:
        if "error" in r or r["workload"] not in ("seed", "chain", "sum"):
            continue
        series.setdefault(f"{r['workload']} {r['impl']}", []).append((r["size"], r["gbps"]))
    for label, pts in sorted(series.items()):
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
    floor = sorted((int(n), b) for n, b in result["copy_bandwidth_gbps"].items())
    ax.plot([f[0] for f in floor], [f[1] for f in floor], "k--", label="copy floor")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("elements")
    ax.set_ylabel("achieved GB/s (one-pass bytes / time)")
    ax.set_title(f"gpugrad bench, {result['backend']} on {result['device']}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gpugrad bench", description=__doc__)
    parser.add_argument("--sizes", default="10,16,20", help="log2 sizes, comma-separated (default 10,16,20)")
    parser.add_argument("--workloads", default="seed,chain,sum,matmul,elementwise")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--compare", default="", help="baselines besides numpy: torch,jax,cupy")
    parser.add_argument("--backend", choices=("numpy", "cupy"))
    parser.add_argument("--budget", type=float, default=0.2, help="seconds of timing per measurement")
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--plot", metavar="FILE.png")
    args = parser.parse_args(argv)
    if args.backend:
        import gpugrad as tf
        tf.set_backend(args.backend)
    sizes = [1 << int(s) for s in args.sizes.split(",") if s]
    result = run(sizes, [w for w in args.workloads.split(",") if w], args.dtype,
                 [c for c in args.compare.split(",") if c], args.budget)
    print(format_table(result))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)
    if args.plot:
        plot(result, args.plot)
    return 0
