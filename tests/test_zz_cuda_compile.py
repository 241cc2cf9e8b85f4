"""Every generated kernel compiles to a cubin for sm_90 and sm_80 exactly as the CuPy backend
compiles it (gpugrad.compile.nvrtc, same options), so ptxas runs and resource limits fail CI.

Named test_zz_* so that it runs last and also compiles every plan the rest of the suite
cached; a corpus below covers every primitive, dtype and group kind on its own."""
from __future__ import annotations

import numpy as np
import pytest

import gpugrad as tf
from gpugrad.api import autodiff
from gpugrad.runtime import engine
from gpugrad.compile import nvrtc
from gpugrad.core import primitives, snippets
from gpugrad.compile.cuda_check import compile_all, nvrtc_available, programs_of, resources_all
from gpugrad.compile.schedule import build_plan, structure

pytestmark = pytest.mark.skipif(not nvrtc_available(),
                                reason="NVRTC is not installed (pip install nvidia-cuda-nvrtc-cu12)")


def _plan(outs):
    nodes_out = [o._node() for o in outs]
    _, _, nodes = structure(nodes_out)
    return build_plan(nodes_out, nodes)


def _corpus_plans():
    rng = np.random.default_rng(0)
    plans = []
    for dtype in ("float32", "float64", "int32"):
        a = tf.tensor(rng.uniform(0.5, 2, (3, 4)), dtype=dtype)
        b = tf.tensor(rng.uniform(0.5, 2, (4,)), dtype=dtype)
        outs = [getattr(tf, op)(a) for op in primitives.UNARY if op != "copy"]
        outs += [getattr(tf, op)(a, b) for op in primitives.BINARY if op not in primitives.LOGICAL]
        outs += [tf.logical_and(a > 1, b < 1), tf.logical_or(a > 1, b < 1), tf.where(a > 1, a, b),
                 tf.cast(a, "bool"), tf.cast(a, "float64"), tf.sum(a, 1), tf.max(a, 0),
                 tf.prod(a, [0, 1]), tf.argmax(a, 1), tf.argmin(a, 0), tf.mean(a),
                 tf.transpose(a)[::-1, 1:3], tf.pad(a, [[1, 0], [2, 3]]), tf.concat([a, a], 1),
                 tf.sum(a * a) + tf.min(a)]
        plans += [_plan([out]) for out in outs]
    big = tf.tensor(rng.normal(size=(3, 70000)).astype(np.float32))
    plans += [_plan([out]) for out in (tf.sum(big), tf.max(big, 1), tf.sum(big, 0), tf.logsumexp(big, 1))]
    return plans


def _wide_groups():
    """Groups fusing many reductions: one __shared__ array per reduction put 25 float64 sums
    (or 49 float32 sums, or 17 float64 argmaxes) over the 48 KiB static limit."""
    rng = np.random.default_rng(1)
    x64 = tf.tensor(rng.normal(size=(100, 50)), dtype="float64")
    x32 = tf.tensor(rng.normal(size=(100, 50)), dtype="float32")
    big = tf.tensor(rng.normal(size=(2, 9000)), dtype="float64")   # two-stage: scratch + final
    return {
        "25 float64 sums": _plan([tf.sum(x64 * (k + 1), 1) for k in range(25)]),
        "49 float32 sums": _plan([tf.sum(x32 * (k + 1), 1) for k in range(49)]),
        "17 float64 argmaxes": _plan([tf.argmax(x64 * (k + 1), 1) for k in range(17)]),
        "mixed, two stages": _plan([tf.sum(big * (k + 1), 1) for k in range(30)]
                                   + [tf.max(big - k, 1) for k in range(30)]),
    }


def test_corpus_and_every_cached_plan_compile_to_cubins():
    plans = _corpus_plans()
    plans += engine.plans.values()
    plans += [entry[0] for entry in autodiff._fast_plans.values()]
    sources = programs_of(plans)
    assert len(sources) > 50
    errors = compile_all(sources)
    assert not errors, "\n".join(errors[:20])


@pytest.mark.parametrize("case", ["25 float64 sums", "49 float32 sums", "17 float64 argmaxes",
                                  "mixed, two stages"])
def test_wide_reduction_groups_stay_fused_and_within_shared_memory(case):
    plan = _wide_groups()[case]
    assert len(plan.groups) == 1, "the reductions should still share one kernel"
    sources = programs_of([plan])
    assert not compile_all(sources)
    for r in resources_all(sources).values():
        assert r.shared_bytes <= 8 * 1024, r


def test_shared_memory_overflow_fails_naming_the_kernel_and_its_files():
    source = ("// kernels/templates/reduce.cu\n"
              'extern "C" __global__ void gg_too_big(double* out) {\n'
              "  __shared__ double sh[6400];\n  sh[threadIdx.x] = threadIdx.x; __syncthreads();\n"
              "  out[threadIdx.x] = sh[255 - threadIdx.x];\n}\n")
    errors = compile_all({"k0_gg_too_big": source}, archs=("sm_90",))
    assert errors and "gg_too_big" in errors[0] and "kernels/templates/reduce.cu" in errors[0]
    assert "51200 bytes of static shared memory" in errors[0]


_ARITHMETIC = ("mul", "add", "sub", "div", "sqrt", "fma", "rcp", "max", "min")


def _ftz_instructions(ptx: str) -> list[str]:
    # libdevice's expf/logf use ex2/lg2.approx.ftz on inputs it has scaled out of the
    # subnormal range on purpose; the arithmetic gpugrad's snippets write must not flush.
    return [ln.strip() for ln in ptx.splitlines()
            if ".ftz." in ln and ln.strip().split(".")[0] in _ARITHMETIC]


def test_float32_math_keeps_subnormals():
    """CuPy's RawModule appends -ftz=true; gpugrad compiles itself with --ftz=false, so the GPU
    keeps float32 subnormals as numpy does. Proven on the PTX: no flushing arithmetic."""
    a = tf.tensor(np.full(8, 1e-20, np.float32))
    src = programs_of([_plan([tf.sqrt(a) / a + a * a - a, tf.sum(a * a), tf.maximum(a, a * a)])])
    ptx = nvrtc.compile_source(next(iter(src.values())), "compute_90").binary.decode()
    assert "mul.f32" in ptx or "mul.rn.f32" in ptx
    assert not _ftz_instructions(ptx)


def test_ftz_option_shows_in_ptx():
    """The check above can fail: with CuPy's -ftz=true appended, the same kernel uses .ftz."""
    a = tf.tensor(np.full(8, 1e-20, np.float32))
    src = next(iter(programs_of([_plan([a * a])]).values()))
    ptx = nvrtc.compile_source(src, "compute_90", options=nvrtc.OPTIONS + ("-ftz=true",)).binary.decode()
    assert _ftz_instructions(ptx)


def test_nvrtc_names_the_broken_snippet(monkeypatch):
    original = snippets.snippet
    monkeypatch.setattr("gpugrad.compile.codegen.snippet", lambda n: "tanh(x" if n == "tanh" else original(n))
    errors = compile_all(programs_of([_plan([tf.tanh(tf.tensor([1.0, 2.0]))])]))
    assert errors and "kernels/elementwise/tanh.cu" in errors[0]


def test_compile_source_error_names_kernel_and_snippets(monkeypatch):
    original = snippets.snippet
    monkeypatch.setattr("gpugrad.compile.codegen.snippet", lambda n: "exp(x" if n == "exp" else original(n))
    src = next(iter(programs_of([_plan([tf.exp(tf.tensor([1.0, 2.0]))])]).values()))
    with pytest.raises(nvrtc.KernelCompileError, match="kernels/elementwise/exp.cu") as info:
        nvrtc.compile_source(src, "sm_90")
    assert "gg_elementwise_0" in str(info.value)


def test_explain_reports_registers_and_shared_bytes():
    p = tf.variable(tf.tensor1d([9.0, 6.0]))
    r = tf.tensor1d([3.0, 4.0])
    text = tf.explain(lambda: tf.sum(p * r)).summary()
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("kernel:"))
    assert "registers" in line and "B shared" in line and "sm_90" in line
    p.dispose()


def test_resource_report_parser():
    log = ("ptxas info    : Compiling entry function '_ZN2k04gg_aEPf' for 'sm_80'\n"
           "ptxas info    : Function properties for _ZN2k04gg_aEPf\n"
           "ptxas         .     16 bytes stack frame, 4 bytes spill stores, 8 bytes spill loads\n"
           "ptxas info    : Used 40 registers, used 1 barriers, 3072 bytes smem, 360 bytes cmem[0]\n")
    (r,) = nvrtc.parse_resources(log, "sm_80").values()
    assert (r.kernel, r.registers, r.shared_bytes, r.stack_bytes, r.spill_bytes) == ("k0::gg_a", 40, 3072, 16, 12)
