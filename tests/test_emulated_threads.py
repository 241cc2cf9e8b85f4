"""The threaded, checked CPU emulator (gpugrad/backends/emulated.py).

Every template's kernels run with all their threads over a corpus of small plans (ragged last
blocks, one and two stages) and the optimizer's update kernel, each twice with bitwise-equal
results and against numpy; NaN, -0.0 and +-inf through the max family, compared bitwise; each
check of the checker on hand-written kernels; and mutations of the generated reduction trees
(a dropped barrier, a tree stopped early, a doubled index) that the checker must catch."""
from __future__ import annotations

import re

import numpy as np
import pytest

import gpugrad as tf
from gpugrad.compile import codegen
from gpugrad.backends import current
from gpugrad.backends.emulated import _KERNEL, EmulatedCudaBackend, KernelCheckError, kernel_origin, compiler_available, load
from gpugrad.backends.emulated_optim import EmulatedUpdateBackend
from gpugrad.compile.optim_codegen import UpdateProgram, generate, load_rule, numpy_update
from gpugrad.compile.schedule import build_plan, structure

pytestmark = pytest.mark.skipif(not compiler_available(), reason="g++ is not installed")
rng = np.random.default_rng(11)


def _plan(outputs):
    nodes_out = [o._node() for o in outputs]
    _, leaves, nodes = structure(nodes_out)
    return build_plan(nodes_out, nodes), [leaf.buf for leaf in leaves]


def _run(outputs):
    """(plan, numpy results, emulated results); the emulated plan runs twice, bitwise equal."""
    plan, inputs = _plan(outputs)
    expected = current().run(plan, inputs)
    first = EmulatedCudaBackend().run(plan, inputs)
    second = EmulatedCudaBackend().run(plan, inputs)
    for a, b in zip(first, second):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), "two runs differ"
    return plan, expected, first


def _origins(plan) -> set[str]:
    """The templates of every kernel the plan launches."""
    return {kernel_origin(g.program.source, launch.kernel).rsplit("/", 1)[-1]
            for g in plan.groups if g.kind != "matmul" for launch in g.program.launches}


def _assert_close(got, want, rtol):
    assert got.shape == want.shape and got.dtype == want.dtype
    if got.dtype.kind == "f":
        np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-6)   # NaN and inf must match
    else:
        np.testing.assert_array_equal(got, want)


def _assert_same_bits(got, want):
    """Equal bit for bit, except that any NaN matches any NaN."""
    assert got.shape == want.shape and got.dtype == want.dtype
    if got.dtype.kind != "f":
        np.testing.assert_array_equal(got, want)
        return
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), nan, err_msg="NaN positions differ")
    bits = np.dtype(f"u{got.dtype.itemsize}")
    np.testing.assert_array_equal(got[~nan].view(bits), want[~nan].view(bits),
                                  err_msg=f"bits differ: got {got}, want {want}")


def _x(shape, dtype="float32"):
    return tf.tensor(rng.uniform(-2, 2, shape), dtype=dtype)


def _elementwise_ragged():
    a, b = _x((3, 347)), _x((347,))   # 1041 elements: 5 blocks, the last with 17 busy threads
    return [a * b + 1, tf.exp(a) - b, tf.where(a > 0, a, b), tf.cast(a > b, "int32")]


def _reduce_one_stage_with_siblings():
    x, y = _x((5, 300)), _x((5, 300))  # 300 per output: one stage, threads 44+ reduce one element
    return [tf.sum(x * y, 1), x * y, tf.max(x, 1), tf.prod(x * 0.1 + 1, 1)]


def _reduce_two_stages_rows():
    x = _x((3, 9000))
    return [tf.sum(x, 1), tf.max(x, 1), tf.min(x, 1), tf.mean(x, 1)]


def _reduce_two_stages_columns():
    x = _x((9000, 3), "float64")
    return [tf.sum(x, 0), tf.logsumexp(x, 0)]


def _reduce_two_stages_ragged_scalar():
    x = _x((10001,))                   # chunks of 3334, 3334 and 3333 elements
    return [tf.sum(x), tf.max(x), tf.sum(tf.cast(x > 0, "int32"))]


def _arg_reductions():
    x = _x((7, 500))
    i = tf.tensor(rng.integers(-3, 3, (600, 3)), dtype="int32")   # many ties
    return [tf.argmax(x, 1), tf.argmin(x, 1), tf.argmax(i, 0), tf.argmin(i, 0), tf.max(i, 0)]


def _gradients():
    x, w = _x((6, 40)), _x((40, 5))
    labels = tf.tensor(np.eye(5)[rng.integers(0, 5, 6)])

    def loss(w):
        return -tf.mean(tf.sum(tf.log_softmax(tf.tanh(tf.matmul(x, w)), -1) * labels, 1))
    return [tf.grad(loss)(w)]


CORPUS = [
    (_elementwise_ragged, {"elementwise.cu"}),
    (_reduce_one_stage_with_siblings, {"reduce.cu"}),
    (_reduce_two_stages_rows, {"reduce.cu", "reduce_final.cu"}),
    (_reduce_two_stages_columns, {"reduce.cu", "reduce_final.cu"}),
    (_reduce_two_stages_ragged_scalar, {"reduce.cu", "reduce_final.cu"}),
    (_arg_reductions, {"reduce.cu"}),
    (_gradients, {"elementwise.cu", "reduce.cu"}),
]


@pytest.mark.parametrize("build,templates", CORPUS, ids=[c[0].__name__.strip("_") for c in CORPUS])
def test_every_template_with_all_its_threads(build, templates):
    plan, expected, got = _run(build())
    assert templates <= _origins(plan)
    for g, e in zip(got, expected):
        _assert_close(g, e, rtol=1e-5)


def _nonfinite(columns: int) -> np.ndarray:
    """Rows with NaN, +-inf and -0.0, placed in both chunks when a row takes two stages."""
    x = rng.uniform(1, 2, (9, columns)).astype(np.float32)
    far = columns - 3                            # in the last chunk of a long row
    x[1, 5] = np.nan                             # one NaN
    x[2, far] = np.nan; x[2, 2] = np.inf         # NaN beats +inf, wherever it is
    x[3, 7] = np.inf; x[3, far] = np.inf         # tied +inf: the first index
    x[4, :] = -np.inf                            # all -inf
    x[5, :] = -x[5, :]; x[5, far] = -0.0         # max is -0.0
    x[6, 3] = -0.0                               # min is -0.0
    x[7, 0] = -np.inf; x[7, far] = np.nan        # NaN after -inf
    x[8, :] = np.nan                             # all NaN
    return x


@pytest.mark.parametrize("columns", [37, 5000], ids=["one-stage", "two-stage"])
def test_nan_inf_and_signed_zero_through_the_max_family(columns):
    x = tf.tensor(_nonfinite(columns))
    plan, expected, got = _run([tf.max(x, 1), tf.min(x, 1), tf.argmax(x, 1), tf.argmin(x, 1),
                                tf.logsumexp(x, 1)])
    if columns > 37:
        assert "reduce_final.cu" in _origins(plan)
    for g, e in zip(got[:4], expected[:4]):
        _assert_same_bits(g, e)
    _assert_close(got[4], expected[4], rtol=1e-6)


def test_a_max_combine_without_its_nan_clause_fails_the_comparison(monkeypatch):
    """The comparison above can fail: a combine that drops NaN (as a plain ternary does)
    gives other bits than numpy on the same data."""
    x = tf.tensor(_nonfinite(37))
    correct = _plan([tf.max(x, 1)])[0].groups[0].program.source
    monkeypatch.setitem(codegen._COMBINE, "max", "({a}) > ({b}) ? ({a}) : ({b})")
    _, expected, got = _run([tf.max(x, 1)])
    broken = _plan([tf.max(x, 1)])[0].groups[0].program.source
    assert broken != correct
    with pytest.raises(AssertionError, match="NaN positions differ"):
        _assert_same_bits(got[0], expected[0])


# --- the optimizer's multi-tensor update kernel ------------------------------------------------

ADAM_SCALARS = dict(lr=0.01, b1=0.9, b2=0.999, eps=1e-7, bc1=0.1, bc2=0.001)
SIZES = [(7,), (300, 5), (), (1000,), (2, 33)]   # 2574 elements: 11 blocks, the last ragged


def _adam_arrays(dtype):
    r = np.random.default_rng(5)
    return [[r.uniform(lo, 1, s).astype(dtype) for s in SIZES] for lo in (-1, -1, -1, 0)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_update_kernel_with_all_its_threads(dtype):
    program = generate(load_rule("adam", ("m", "v")), dtype)
    assert kernel_origin(program.source, program.kernel) == "kernels/templates/optim.cu"
    start = _adam_arrays(dtype)
    runs = []
    for _ in range(2):
        arrays = [[a.copy() for a in role] for role in start]
        EmulatedUpdateBackend().run_update(program, arrays, ADAM_SCALARS)
        runs.append(arrays)
    for a, b in zip(sum(runs[0], []), sum(runs[1], [])):
        assert a.tobytes() == b.tobytes(), "two runs differ"
    update = numpy_update(program.rule, dtype)
    for k in range(len(SIZES)):
        want = update(*[role[k] for role in start], *program.scalar_args(ADAM_SCALARS))
        for got, w in zip([runs[0][0][k], runs[0][2][k], runs[0][3][k]], want):
            np.testing.assert_allclose(got, w, rtol=1e-6 if dtype == "float32" else 1e-12)


def test_update_kernel_writing_past_a_tensor_is_caught():
    program = generate(load_rule("adam", ("m", "v")), "float32")
    source, hits = re.subn(r"(gg_w\s*\[\s*gg_k\s*\]\s*\[\s*gg_j)(\s*\]\s*=)", r"\1 + 1\2", program.source)
    assert hits == 1, "the mutation matched nothing: update it to the template"
    mutated = UpdateProgram(program.rule, "float32", source, program.kernel)
    with pytest.raises(KernelCheckError, match=r"kernels/templates/optim\.cu.*outside tensor \d+ of role 'w'"):
        EmulatedUpdateBackend().run_update(mutated, _adam_arrays("float32"), ADAM_SCALARS)


# --- the checker, on hand-written kernels --------------------------------------------------------

CASES_SOURCE = r"""
// kernels/templates/checker_cases.cu (not a real template: kernels that break one rule each)
extern "C" __global__ void raw_race(float* __restrict__ out) {
  __shared__ float buf[256];
  if (threadIdx.x == 0) buf[0] = 1.0f;
  if (threadIdx.x == 1) out[blockIdx.x] = buf[0];
}
extern "C" __global__ void war_race(float* __restrict__ out) {
  __shared__ float buf[256];
  buf[threadIdx.x] = 1.0f;
  __syncthreads();
  if (threadIdx.x == 0) out[blockIdx.x] = buf[1];
  if (threadIdx.x == 1) buf[1] = 2.0f;
}
extern "C" __global__ void waw_race(float* __restrict__ out) {
  __shared__ float buf[256];
  buf[0] = threadIdx.x;
  __syncthreads();
  if (threadIdx.x == 0) out[blockIdx.x] = buf[0];
}
extern "C" __global__ void unwritten_read(float* __restrict__ out) {
  __shared__ float buf[256];
  if (threadIdx.x == 3) out[blockIdx.x] = buf[7];
}
extern "C" __global__ void shared_out_of_range(float* __restrict__ out) {
  __shared__ float buf[256];
  buf[threadIdx.x + 1] = 1.0f;
}
extern "C" __global__ void lost_write(float* __restrict__ out) {
  __shared__ float buf[256];
  buf[threadIdx.x] = 1.0f;
  __syncthreads();
  if (threadIdx.x == 0) out[blockIdx.x] = buf[1];
}
extern "C" __global__ void divergent_barrier(float* __restrict__ out) {
  if (threadIdx.x < 100) __syncthreads();
  if (threadIdx.x == 0) out[blockIdx.x] = 1.0f;
}
extern "C" __global__ void different_barriers(float* __restrict__ out) {
  if (threadIdx.x < 100) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = 1.0f;
}
extern "C" __global__ void global_out_of_range(const float* __restrict__ in, float* __restrict__ out) {
  const float v = in[threadIdx.x + 250];
  if (threadIdx.x == 0) out[blockIdx.x] = v;
}
extern "C" __global__ void never_written(float* __restrict__ out) {
  if (blockIdx.x == 0 && threadIdx.x == 0) out[0] = 1.0f;
}
extern "C" __global__ void written_twice(float* __restrict__ out) {
  out[blockIdx.x] = threadIdx.x;
}
extern "C" __global__ void written_by_two_blocks(float* __restrict__ out) {
  if (threadIdx.x == 0) out[1] = blockIdx.x;
  __syncthreads();
  if (threadIdx.x == 1) out[0] = blockIdx.x;
}
"""

CHECKS = [
    ("raw_race", r"race \(read after write\) in block 0 after barrier 0: thread 1 reads buf\[0\] at "
                 r"line \d+, which thread 0 wrote"),
    ("war_race", r"race \(write after read\) in block 0 after barrier 1: thread 1 writes buf\[1\] at "
                 r"line \d+, which thread 0 read"),
    ("waw_race", r"race \(write after write\) in block 0 after barrier 0: threads 0 \(line \d+\) and 1 "
                 r"\(line \d+\) both write buf\[0\]"),
    ("unwritten_read", r"unwritten shared memory in block 0: thread 3 reads buf\[7\] .* before any "
                       r"thread of the block wrote it"),
    ("shared_out_of_range", r"out-of-range shared index in block 0: thread 255 indexes buf\[256\] at "
                            r"line \d+, but buf has 256 elements"),
    ("lost_write", r"lost shared-memory work in block 0: thread 0 wrote buf\[0\]"),
    ("divergent_barrier", r"divergent barrier in block 0 after barrier 0: threads 0-99 wait at the "
                          r"__syncthreads\(\) of line \d+; threads 100-255 returned"),
    ("different_barriers", r"divergent barrier in block 0 after barrier 0: threads 0-99 wait at the "
                           r"__syncthreads\(\) of line (\d+); threads 100-255 wait at the "
                           r"__syncthreads\(\) of line (?!\1)\d+"),
    ("global_out_of_range", r"out-of-range index in block 0: thread 6 indexes in\[256\] at line \d+, "
                            r"but in has 256 elements"),
    ("never_written", r"out: 1 of its 2 elements were never written by the launch \(the first is "
                      r"out\[1\]\)"),
    ("written_twice", r"out\[0\] is written by two threads in one launch \(thread 0 of block 0, then "
                      r"thread 1 of block 0"),
    ("written_by_two_blocks", r"out\[1\] is written by two threads in one launch \(thread 0 of block 0, "
                              r"then thread 0 of block 1"),
]


@pytest.mark.parametrize("kernel,message", CHECKS, ids=[c[0] for c in CHECKS])
def test_the_checker_names_kernel_template_array_index_threads_and_block(kernel, message):
    program = load(CASES_SOURCE)
    args = [np.zeros(256, np.float32)] * (kernel == "global_out_of_range") + [np.zeros(2, np.float32)]
    with pytest.raises(KernelCheckError) as info:
        program.launch(kernel, 2, 256, args)
    text = str(info.value)
    assert info.value.kernel == kernel and info.value.origin == "kernels/templates/checker_cases.cu"
    assert text.startswith(f"kernel {kernel} (from kernels/templates/checker_cases.cu), launched as "
                           "2 blocks of 256 threads")
    assert re.search(message, text), text
    for line in re.findall(r"\bline (\d+)", text.split("generated source:")[0]):
        assert re.search(rf"^\s+{line}: \S", text, re.M), f"line {line} is not quoted:\n{text}"


def test_a_correct_block_reduction_passes_the_checker():
    source = r"""
extern "C" __global__ void tree(const float* __restrict__ in, float* __restrict__ out) {
  __shared__ float sh[256];
  sh[threadIdx.x] = in[blockIdx.x * blockDim.x + threadIdx.x];
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) sh[threadIdx.x] = sh[threadIdx.x] + sh[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = sh[0];
}
"""
    x = np.arange(512, dtype=np.float32)
    out = np.zeros(2, np.float32)
    load(source).launch("tree", 2, 256, [x, out])
    np.testing.assert_array_equal(out, [x[:256].sum(), x[256:].sum()])


# --- mutations of the generated reduction trees: the checker must catch each ---------------------

_TREE_LOOP = re.compile(r"for\s*\([^;]*;\s*(\w+)\s*>\s*0\s*;\s*\1\s*(?:>>=\s*1|/=\s*2)\s*\)")


def _drop_barrier_in_loop(text):
    loop = _TREE_LOOP.search(text)
    if not loop:
        return text, 0
    at = text.find("__syncthreads();", loop.end())
    return (text[:at] + text[at + len("__syncthreads();"):], 1) if at >= 0 else (text, 0)


def _drop_barrier_before_loop(text):
    loop = _TREE_LOOP.search(text)
    at = text.rfind("__syncthreads();", 0, loop.start()) if loop else -1
    return (text[:at] + text[at + len("__syncthreads();"):], 1) if at >= 0 else (text, 0)


def _stop_tree_early(text):
    loop = _TREE_LOOP.search(text)
    if not loop:
        return text, 0
    header = re.sub(r"(\w+\s*>\s*)0", r"\g<1>1", loop.group(0), count=1)
    return text[:loop.start()] + header + text[loop.end():], 1


def _double_shared_index(text):
    return re.subn(r"\[\s*threadIdx\.x\s*\+\s*(\w+)\s*\]", r"[2 * threadIdx.x + \1]", text)


MUTATIONS = [
    (_drop_barrier_in_loop, "race"),
    (_drop_barrier_before_loop, "read of unwritten shared memory"),
    (_stop_tree_early, "lost shared-memory work"),
    (_double_shared_index, "out-of-range shared index"),
]


def _mutate_kernel(source, stage, mutation):
    """Apply mutation to the body of the stage-th kernel of source; (source, matches)."""
    kernels = list(_KERNEL.finditer(source))
    if stage >= len(kernels):
        return source, 0
    start = kernels[stage].end()
    end = kernels[stage + 1].start() if stage + 1 < len(kernels) else len(source)
    body, hits = mutation(source[start:end])
    return source[:start] + body + source[end:], hits


def _sum_rows():
    return [tf.sum(_x((3, 9000)), 1)]   # two stages: reduce.cu, then reduce_final.cu


def _argmax_rows():
    return [tf.argmax(_x((3, 700)), 1)]


TREES = [(_sum_rows, 0, "reduce.cu"), (_sum_rows, 1, "reduce_final.cu"), (_argmax_rows, 0, "reduce.cu")]
# Not argmax's tree stopped early: its steps write only where the right side wins, so whether
# the lost step wrote anything depends on the data.
MUTATED_TREES = [(t, m) for t in TREES for m in MUTATIONS if not (t[0] is _argmax_rows and m[0] is _stop_tree_early)]


@pytest.mark.parametrize("tree,mutation", MUTATED_TREES,
                         ids=[f"{t[0].__name__.strip('_')}-stage{t[1] + 1}-{m[0].__name__.strip('_')}"
                              for t, m in MUTATED_TREES])
def test_mutated_reduction_trees_are_caught(monkeypatch, tree, mutation):
    (plan_of, stage, template), (mutation, kind) = tree, mutation
    hits = []
    original = codegen.generate

    def mutated(group):
        program = original(group)
        program.source, n = _mutate_kernel(program.source, stage, mutation)
        hits.append(n)
        return program
    monkeypatch.setattr(codegen, "generate", mutated)
    plan, inputs = _plan(plan_of())
    with pytest.raises(KernelCheckError) as info:
        EmulatedCudaBackend().run(plan, inputs)
    assert sum(hits) >= 1, "the mutation matched nothing: update it to the generated source"
    text = str(info.value)
    assert info.value.origin == f"kernels/templates/{template}", text
    assert f"kernels/templates/{template}" in text and kind in text, text
    shared = re.findall(r"__shared__\s+[\w\s]+?\s(\w+)\s*\[", plan.groups[0].program.source)
    assert any(f"{name}[" in text for name in shared), text   # names the shared array


def test_rewrites_ordered_by_a_barrier_of_the_block_pass_the_checker():
    """__syncthreads orders global memory within a block: a second thread may update what the
    first wrote (the scatter-add sort kernel's counts do)."""
    source = r"""
extern "C" __global__ void rewrite(float* __restrict__ out) {
  if (threadIdx.x == 0) out[blockIdx.x] = 1.0f;
  __syncthreads();
  if (threadIdx.x == 1) out[blockIdx.x] = out[blockIdx.x] + 1.0f;
}
"""
    out = np.zeros(2, np.float32)
    load(source).launch("rewrite", 2, 256, [out])
    np.testing.assert_array_equal(out, [2, 2])
