"""One TF.js seed program, ported line for line, in a process of its own (as TF.js ran them:
shared/TFJS_SEMANTICS.md section 1), so that auto names start at "0".

    python -m gpugrad.selfcheck.seed_program BACKEND K

prints exactly what the TF.js program prints on stdout, and the grads' keys as JSON on stderr.
BACKEND is numpy, cupy or cuda-emulated (the CPU emulator of the generated kernels).
"""
from __future__ import annotations

import json
import sys

PROGRAMS = {1: ([9, 6], [7, 8], [3, 4]), 2: ([3.1, 5.2], [4.4, 6.7], [7.1, 3.2])}

# TFJS_SEMANTICS.md section 1: the stdout of tfjs 4.22.0, to the character.
EXPECTED = {
    1: "Tensor\n    [10, 12]\nTensor\n    [18, 22]\nTensor\n    444\n",
    2: "Tensor\n    [11.5, 9.8999996]\nTensor\n    [53.5099983, 15.4400005]\nTensor\n    768.2210083007812\n",
}
EXPECTED_KEYS = ["0", "1"]


def _using(backend: str):
    import contextlib

    import gpugrad as tf
    if backend == "cuda-emulated":
        from gpugrad.backends.emulated import EmulatedCudaBackend
        from gpugrad.selfcheck.targets import Target, active
        return active(Target(backend, EmulatedCudaBackend(), False))
    tf.set_backend(backend)
    return contextlib.nullcontext()


def main(argv: list[str]) -> int:
    backend, k = argv[0], int(argv[1])
    with _using(backend):
        return _program(k)


def _program(k: int) -> int:
    import gpugrad as tf
    pv, qv, rv = PROGRAMS[k]
    p = tf.variable(tf.tensor1d(pv))
    q = tf.variable(tf.tensor1d(qv))
    r = tf.tensor1d(rv)
    value, grads = tf.variable_grads(lambda: p.add(r.square()).mul(q.add(r)).sum())
    for name in grads:
        grads[name].print()
    value.print()
    sys.stdout.flush()
    print(json.dumps({"keys": list(grads), "backend": tf.get_backend()}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
