#!/usr/bin/env bash
# The test command: installs what the tests need into a venv, then runs the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
# dist: mpi4py and MPICH's mpiexec, for the mpiexec -n 2 tests of gpugrad.distributed
python -m pip install --quiet -e ".[test,dist]"
# The install compiles gpugrad's C node (gpugrad/core/_nodes.c): the suite must run on it, not
# on the Python fallback, so its absence is a failure here (tests/test_nodes.py).
GPUGRAD_REQUIRE_COMPILED=1 python -m pytest tests "$@"
# The Python node (a checkout on PYTHONPATH, a machine without a C compiler): the tests of the
# node, the keys and the graph walks, run on it too.
GPUGRAD_PURE_PYTHON=1 python -m pytest tests/test_nodes.py tests/test_replay.py tests/test_structural_keys.py \
    tests/test_variable_grads.py tests/test_random_graphs.py tests/test_memory.py \
    tests/test_threads.py tests/test_seed.py "$@"
