#!/usr/bin/env bash
# The test command: installs what the tests need into a venv, then runs the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
# dist: mpi4py and MPICH's mpiexec, for the mpiexec -n 2 tests of gpugrad.distributed
python -m pip install --quiet -e ".[test,dist]"
python -m pytest tests "$@"
