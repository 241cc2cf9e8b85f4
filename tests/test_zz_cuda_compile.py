"""Every generated kernel compiles for sm_90 (CI has nvcc, no GPU).

Named test_zz_* so that it runs last and also compiles every plan the rest of the suite
cached; a corpus below covers every primitive, dtype and group kind on its own."""
from __future__ import annotations

import numpy as np
import pytest

import gpugrad as tf
from gpugrad import autodiff, engine, primitives, snippets
from gpugrad.cuda_check import (compile_all, nvcc_path, nvrtc_available, nvrtc_compile_all,
                                 programs_of)
from gpugrad.schedule import build_plan, structure

needs_nvcc = pytest.mark.skipif(nvcc_path() is None, reason="nvcc is not installed")


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
        for out in outs:
            _, _, nodes = structure([out._node()])
            plans.append(build_plan([out._node()], nodes))
    big = tf.tensor(rng.normal(size=(3, 70000)).astype(np.float32))
    for out in (tf.sum(big), tf.max(big, 1), tf.sum(big, 0), tf.logsumexp(big, 1)):
        _, _, nodes = structure([out._node()])
        plans.append(build_plan([out._node()], nodes))
    return plans


@needs_nvcc
def test_corpus_and_every_cached_plan_compile_for_sm90():
    plans = _corpus_plans()
    plans += list(engine.plans._plans.values())
    plans += [entry[0] for entry in autodiff._fast_plans._plans.values()]
    sources = programs_of(plans)
    assert len(sources) > 50
    errors = compile_all(sources)
    assert not errors, "\n".join(errors[:20])


@pytest.mark.skipif(not nvrtc_available(), reason="libnvrtc is not installed")
def test_every_kernel_compiles_with_nvrtc_as_cupy_would():
    plans = _corpus_plans() + list(engine.plans._plans.values())
    sources = programs_of(plans)
    errors = nvrtc_compile_all(sources)
    assert not errors, "\n".join(errors[:10])


@pytest.mark.skipif(not nvrtc_available(), reason="libnvrtc is not installed")
def test_nvrtc_names_the_broken_snippet(monkeypatch):
    original = snippets.snippet
    monkeypatch.setattr("gpugrad.codegen.snippet", lambda n: "tanh(x" if n == "tanh" else original(n))
    out = tf.tanh(tf.tensor([1.0, 2.0]))
    _, _, nodes = structure([out._node()])
    errors = nvrtc_compile_all(programs_of([build_plan([out._node()], nodes)]))
    assert errors and "kernels/elementwise/tanh.cu" in errors[0]


@needs_nvcc
def test_a_broken_snippet_fails_naming_its_file(monkeypatch):
    original = snippets.snippet

    def broken(name):
        return "exp(x" if name == "exp" else original(name)

    monkeypatch.setattr("gpugrad.codegen.snippet", broken)
    out = tf.exp(tf.tensor([1.0, 2.0]))
    _, _, nodes = structure([out._node()])
    errors = compile_all(programs_of([build_plan([out._node()], nodes)]))
    assert errors and "kernels/elementwise/exp.cu" in errors[0]
