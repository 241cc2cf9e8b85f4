"""The gpugrad command: `gpugrad demo` runs the TF.js seed examples on the backend in use;
`gpugrad selfcheck` describes this install and proves it (report.md, report.json); `gpugrad
bench` times the kernels."""
from __future__ import annotations

import argparse
import sys

from gpugrad._version import version_text


def demo(args) -> int:
    import gpugrad as tf
    from gpugrad.backends import current

    if args.backend:
        tf.set_backend(args.backend)
    backend = current()
    print(f"gpugrad demo: backend {backend.name} on {backend.device()}")
    examples = (([9, 6], [7, 8], [3, 4]), ([3.1, 5.2], [4.4, 6.7], [7.1, 3.2]))
    for k, (pv, qv, rv) in enumerate(examples, 1):
        p = tf.variable(tf.tensor1d(pv))
        q = tf.variable(tf.tensor1d(qv))
        r = tf.tensor1d(rv)
        f = lambda: p.add(r.square()).mul(q.add(r)).sum()  # noqa: E731
        print(f"\n# seed {k}: p={pv} q={qv} r={rv}; f = sum((p + r^2) * (q + r))")
        value, grads = tf.variable_grads(f)
        for name in grads:
            print(f"# d f / d variable {name!r}")
            grads[name].print()
        print("# value")
        value.print()
        if args.explain:
            print(tf.explain(f).summary())
        p.dispose()
        q.dispose()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gpugrad", description=__doc__)
    parser.add_argument("--version", action="version", version=version_text())
    sub = parser.add_subparsers(dest="command")
    d = sub.add_parser("demo", help="run the TF.js variableGrads seed examples")
    d.add_argument("--backend", choices=("numpy", "cupy"), help="default: cupy where a GPU is usable")
    d.add_argument("--explain", action="store_true", help="also print each plan's kernel groups")
    d.set_defaults(run=demo)
    from gpugrad import selfcheck
    s = sub.add_parser("selfcheck", help="print the environment, check every kernel against numpy, "
                                         "write report.md and report.json (exit 1 on a failure)",
                       description=selfcheck.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    selfcheck.add_arguments(s)
    s.set_defaults(run=selfcheck.main)
    b = sub.add_parser("bench", help="kernel micro-benchmarks (see gpugrad bench --help)", add_help=False)
    b.set_defaults(run=None)
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] == "bench":
        from gpugrad.bench import main as bench_main
        return bench_main(argv[1:])
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
