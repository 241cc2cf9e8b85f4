#!/usr/bin/env bash
# What a session with a lent GPU runs, in one call, on the GPU machine (repo root as the cwd;
# $OUT is a folder whose contents come back). No network: gpugrad is installed from this
# checkout without dependencies, falling back to PYTHONPATH.
#
# Steps, each with a timeout inside one budget (GPU_SH_BUDGET_S, default 470 s, under the
# 8 minutes a call may take), each logged to $OUT/<step>.log and summarized in
# $OUT/summary.txt: install, nvidia-smi, `gpugrad selfcheck` (reports in $OUT/selfcheck),
# tests/test_gpu.py, compute-sanitizer memcheck and racecheck on ci/sanitizer_probe.py (where
# compute-sanitizer is installed), `gpugrad bench` (seed, chain, sum at 2^12, 2^20, 2^26 with
# torch, jax and hand-written CuPy side by side, $OUT/bench.json), then the whole suite with
# the time left. A failing step does not stop the others; the script exits 1 at the end if
# any step failed, timed out, or had no time left to run.
set -u -o pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-out}"
mkdir -p "$OUT"
BUDGET_S="${GPU_SH_BUDGET_S:-470}"
START=$(date +%s)
SUMMARY="$OUT/summary.txt"
FAILED=0
: > "$SUMMARY"

remaining() { echo $(( BUDGET_S - ($(date +%s) - START) )); }

note() { echo "$*" | tee -a "$SUMMARY"; }

# step NAME MAX_S CMD...: run CMD under a timeout of MAX_S or the budget left (minus a margin
# for the steps' bookkeeping), output to $OUT/NAME.log, its tail echoed.
step() {
    local name=$1 max=$2
    shift 2
    local left limit t0 rc status
    left=$(remaining)
    limit=$(( max < left - 10 ? max : left - 10 ))
    if (( limit < 15 )); then
        note "NOT RUN  $name: only ${left}s of the ${BUDGET_S}s budget left"
        FAILED=1
        return
    fi
    echo "=== $name (timeout ${limit}s, log $OUT/$name.log)"
    t0=$(date +%s)
    timeout --kill-after=10 "$limit" "$@" > "$OUT/$name.log" 2>&1
    rc=$?
    tail -n 30 "$OUT/$name.log"
    if (( rc == 0 )); then
        status="ok"
    elif (( rc == 124 || rc == 137 )); then
        status="TIMEOUT"
        FAILED=1
    else
        status="FAIL"
        FAILED=1
    fi
    note "$(printf '%-8s %-22s %4ss  exit %s' "$status" "$name" "$(( $(date +%s) - t0 ))" "$rc")"
}

# --- install, offline --------------------------------------------------------------------------
if timeout 120 python3 -m pip install --no-build-isolation --no-deps -e . > "$OUT/install.log" 2>&1; then
    note "ok       install                 pip install -e . (offline, no deps)"
else
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
    note "note     install                 pip install -e . failed (see install.log); using PYTHONPATH=$PWD"
fi

# --- the machine -------------------------------------------------------------------------------
if command -v nvidia-smi > /dev/null; then
    timeout 30 nvidia-smi 2>&1 | tee "$OUT/nvidia-smi.log"
else
    note "note     nvidia-smi              not on PATH"
fi
python3 -c "import sys, numpy, cupy, gpugrad.core.nodes as n; print(sys.version); print('numpy', numpy.__version__, 'cupy', cupy.__version__, 'C node', n.COMPILED)" \
    2>&1 | tee "$OUT/versions.log"

# --- the checks --------------------------------------------------------------------------------
# shellcheck disable=SC2086 # SELFCHECK_ARGS is a list of flags (e.g. --quick)
step selfcheck 270 python3 -m gpugrad selfcheck --out "$OUT/selfcheck" ${SELFCHECK_ARGS:-}

HAVE_PYTEST=0
python3 -c "import pytest" 2> /dev/null && HAVE_PYTEST=1
if (( HAVE_PYTEST )); then
    step pytest-gpu 120 python3 -m pytest -q -rfEs -p no:cacheprovider tests/test_gpu.py
else
    note "note     pytest                  not installed: the suite's steps are left out"
fi

SANITIZER=$(command -v compute-sanitizer || true)
if [[ -n "$SANITIZER" ]]; then
    for tool in memcheck racecheck; do
        step "sanitizer-$tool" 75 "$SANITIZER" --tool "$tool" --error-exitcode 1 --print-limit 20 \
            python3 ci/sanitizer_probe.py
    done
else
    note "note     compute-sanitizer       not on PATH: memcheck and racecheck not run"
fi

step bench 120 python3 -m gpugrad bench --backend cupy --sizes 12,20,26 --workloads seed,chain,sum \
    --compare torch,jax,cupy --budget 0.1 --json "$OUT/bench.json"

if (( HAVE_PYTEST )); then
    # Last, with whatever time is left: the whole suite (the backend fixture adds cupy to every
    # test that takes it); test_gpu.py already ran above.
    step pytest-all 600 python3 -m pytest -q -rfEs -p no:cacheprovider --durations=15 \
        --ignore=tests/test_gpu.py tests
fi

echo "=== summary ($(( $(date +%s) - START ))s of ${BUDGET_S}s)"
cat "$SUMMARY"
exit "$FAILED"
