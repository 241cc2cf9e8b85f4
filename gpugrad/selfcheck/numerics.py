"""The checks that compare results: seed programs, primitives, random graphs, reductions,
optimizer updates and determinism. Each takes the target (the generated kernels' executor,
or numpy for the seed programs) and returns a one-line summary, failing through Problems."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

import gpugrad as tf

from gpugrad.compile import codegen
from gpugrad.compile.optim_codegen import generate as generate_update
from gpugrad.compile.optim_codegen import numpy_update
from gpugrad.core.snippets import kernels_dir
from gpugrad.selfcheck import graphs, primitive_cases
from gpugrad.selfcheck.core import Problems, Skip, mismatch, scaled_atol
from gpugrad.selfcheck.targets import Target, active, numpy_target, plan_of, run_both, run_plan_both

RTOL = {"float32": 2e-5, "float64": 1e-11}


def package_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# --- the TF.js seed programs -----------------------------------------------------------------


def seed_programs(target_name: str, data: dict) -> str:
    """Each seed program in its own process on the target; stdout must be TF.js's, to the
    character, and the grads' keys the auto names "0", "1"."""
    from gpugrad.selfcheck.seed_program import EXPECTED, EXPECTED_KEYS, PROGRAMS
    problems = Problems()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (package_root(), os.environ.get("PYTHONPATH", "")) if p))
    for k in PROGRAMS:
        proc = subprocess.run([sys.executable, "-m", "gpugrad.selfcheck.seed_program", target_name, str(k)],
                              capture_output=True, text=True, env=env, timeout=300)
        label = f"seed program {k}"
        if proc.returncode:
            last = (proc.stderr.strip().splitlines() or ["(no stderr)"])[-1]
            problems.case(label, f"exit {proc.returncode}: {last}")
            continue
        data[f"stdout_{k}"] = proc.stdout
        if proc.stdout != EXPECTED[k]:
            problems.case(label, f"stdout {proc.stdout!r}, expected {EXPECTED[k]!r}")
            continue
        meta = json.loads(proc.stderr.strip().splitlines()[-1])
        problems.case(label, None if meta["keys"] == EXPECTED_KEYS and meta["backend"] == target_name
                      else f"keys {meta['keys']} on backend {meta['backend']}, expected {EXPECTED_KEYS} "
                           f"on {target_name}")
    problems.raise_if_any()
    return f"{len(PROGRAMS)} programs print what TF.js prints, to the character"


# --- primitives ----------------------------------------------------------------------------------


def primitives(target: Target, data: dict) -> str:
    """Every primitive forward and backward, float32 and float64, against the numpy backend.
    All cases of a dtype run as one plan (a few kernels); when that plan fails to build or
    run, each case runs alone so that the failure names its primitive."""
    problems = Problems()
    table = primitive_cases.cases()
    missing = [p for p in primitive_cases.all_primitives() if p not in table]
    for name in missing:
        problems.case(f"primitive {name}", "no selfcheck case exercises it")
    cases = [c for name in primitive_cases.all_primitives() if name in table for c in table[name]]
    for dtype in ("float32", "float64"):
        rng = np.random.default_rng(11)
        with active(numpy_target()):
            built = []
            for case in cases:
                try:
                    built.append((case, *_primitive_outputs(case, rng, dtype)))
                except Exception as exc:  # noqa: BLE001 - a case that cannot be built fails alone
                    problems.error(f"{case.name} {dtype} (building)", exc)
        for direction, pick in (("forward", 1), ("backward", 2)):
            labelled = [(f"{c[0].name} {dtype} {direction}", out) for c in built for out in c[pick]]
            _compare_batch(labelled, target, RTOL[dtype], problems)
    problems.raise_if_any()
    data["cases"] = problems.cases
    return (f"{len(cases)} cases over {len(table)} primitives, forward and backward, float32 and "
            f"float64: {problems.cases} outputs agree with numpy")


def _primitive_outputs(case, rng, dtype):
    arrays = case.inputs(rng, dtype)
    xs = [tf.tensor(a, dtype=dtype) for a in arrays]
    forward = [case.build(*xs)]
    backward = []
    if case.differentiable:
        out = forward[0]
        weight = tf.tensor(rng.uniform(0.5, 1.5, out.shape), dtype=out.dtype)
        backward = tf.grads(lambda *args: tf.sum(case.build(*args) * weight))(xs)
    return forward, backward


def _compare_batch(labelled: list, target: Target, rtol: float, problems: Problems) -> None:
    if not labelled:
        return
    try:
        want, got = run_both([out for _, out in labelled], target)
    except Exception:  # noqa: BLE001 - find which case breaks the shared plan
        for label, out in labelled:
            try:
                (w,), (g,) = run_both([out], target)
                problems.case(label, mismatch(g, w, rtol, scaled_atol(w, rtol * 1e-2)))
            except Exception as exc:  # noqa: BLE001
                problems.error(label, exc)
        return
    for (label, _), w, g in zip(labelled, want, got):
        problems.case(label, mismatch(g, w, rtol, scaled_atol(w, rtol * 1e-2)))


# --- random graphs -------------------------------------------------------------------------------


def random_graphs(target: Target, count: int, data: dict, first_seed: int = 0) -> str:
    """count random graphs (seeds first_seed...): value, every gradient and every sink against
    the numpy backend running the same plan."""
    problems = Problems()
    kinds = set()
    for seed in range(first_seed, first_seed + count):
        rng = np.random.default_rng(10_000 + seed)
        try:
            with active(numpy_target()):
                graph = graphs.generate(seed)
                kinds.update(s.kind for s in graph.steps)
                xs = [tf.tensor(rng.uniform(-2, 2, s), dtype=graph.dtype) for s in graph.input_shapes]
                weights = [tf.tensor(rng.uniform(0.5, 1.5, s), dtype=graph.dtype)
                           for s in graphs.sink_shapes(graph)]
                outputs = graphs.loss_and_grads(graph, xs, weights)
            want, got = run_both(outputs, target)
        except Exception as exc:  # noqa: BLE001 - one graph's error is that graph's failure
            problems.error(f"graph seed {seed}", exc)
            continue
        rtol = 1e-4 if graph.dtype == "float32" else 1e-9
        names = ["value"] + [f"grad x{i}" for i in range(len(xs))] + ["sink"] * (len(want) - 1 - len(xs))
        # Errors are relative to each array's scale, floored by the graph's: a gradient that
        # is zero in exact arithmetic (a softmax's mean, say) is rounding noise of that size.
        floor = 1e-3 * max(scaled_atol(w, 1.0) for w in want)
        bad = [f"{n}: {m}" for n, w, g in zip(names, want, got)
               if (m := mismatch(g, w, rtol, rtol * max(scaled_atol(w, 1.0), floor)))]
        problems.case(f"graph seed {seed}", f"{bad[0]}\n{graph.describe()}" if bad else None)
    problems.raise_if_any()
    data.update(graphs=count, step_kinds=sorted(kinds))
    return f"{count} graphs (seeds {first_seed}-{first_seed + count - 1}, {len(kinds)} step kinds): value and gradients agree"


# --- reductions ----------------------------------------------------------------------------------


def reduction_sizes(quick: bool, on_gpu: bool) -> list[tuple]:
    """(shape, axis) pairs on both sides of the one-stage/two-stage threshold of codegen: a
    scalar reduction of n elements runs in one stage while n <= MIN_CHUNK, and the number of
    stage-1 blocks stops growing at TARGET_BLOCKS; plus ragged sizes and row/column sums."""
    m, cap = codegen.MIN_CHUNK, codegen.TARGET_BLOCKS * codegen.MIN_CHUNK
    if quick and not on_gpu:
        flat = [1, m, m + 1, 1_000_003]
        rows = [((3, m + 905), 1), ((m + 905, 3), 0)]
    else:
        flat = [1, 255, 257, m - 1, m, m + 1, 2 * m + 3, 1_000_003, cap, cap + 4099]
        rows = [((3, m + 905), 1), ((m + 905, 3), 0), ((300, 257), 1), ((64, 2 * m + 1), 1),
                ((5, 7, m + 3), (0, 2))]
    return [((n,), None) for n in flat] + rows


def reductions(target: Target, quick: bool, data: dict) -> str:
    """sum, max, min and a sum of squares fused over one input (one kernel), and argmax (its
    own kernel: an argmax keeps a group in one stage), at each size, against the numpy
    backend; the sizes must cover both one-stage and two-stage reductions."""
    problems = Problems()
    stages = {}
    rng = np.random.default_rng(5)
    dtypes = ("float32",) if quick and not target.on_gpu else ("float32", "float64")
    for shape, axis in reduction_sizes(quick, target.on_gpu):
        for dtype in dtypes:
            label = f"{dtype}{list(shape)} axis {axis}"
            try:
                with active(numpy_target()):
                    data_x = rng.uniform(-1, 1, shape)
                    x = tf.tensor(data_x, dtype=dtype)
                    outs = [tf.sum(x, axis), tf.max(x, axis), tf.min(x, axis), tf.sum(x * x, axis)]
                    arg = [] if isinstance(axis, tuple) else [tf.argmax(x, axis)]
                plan, inputs = plan_of(outs)
                stages[label] = max(len(g.program.launches) for g in plan.groups if g.kind != "matmul")
                want, got = run_plan_both(plan, inputs, target)
                if arg:
                    w, g = run_both(arg, target)
                    want, got = want + w, got + g
            except Exception as exc:  # noqa: BLE001
                problems.error(label, exc)
                continue
            eps = float(np.finfo(dtype).eps)
            x_used = data_x.astype(dtype).astype(np.float64)
            for name, w, g in zip(("sum", "max", "min", "sum-of-squares", "argmax"), want, got):
                if name in ("max", "min", "argmax"):   # exact whatever the order
                    problems.case(f"{label} {name}", mismatch(g, w, 0.0))
                    continue
                terms = x_used if name == "sum" else x_used * x_used
                atol = 8 * eps * _rounding_scale(terms, axis)
                problems.case(f"{label} {name}", mismatch(g, w, 4 * eps, atol))
    data["stages"] = stages
    if stages and set(stages.values()) != {1, 2}:
        problems.case("stage coverage", f"every size ran in {set(stages.values())} stage(s); "
                      "the sizes no longer straddle codegen's two-stage threshold")
    problems.raise_if_any()
    two = sum(1 for s in stages.values() if s == 2)
    return (f"{len(stages)} reductions ({len(stages) - two} one-stage, {two} two-stage; ragged "
            f"sizes, rows and columns) agree with numpy")


def _rounding_scale(terms: np.ndarray, axis) -> np.ndarray:
    """sqrt(sum of squared partial sums) of summing terms in order along axis: the typical
    rounding error of a sum, over eps, for the least accurate order (one thread adding them in
    turn); tree orders do better. It grows like n for signed terms and n^1.5 for positive
    ones, so it is tight for both, and it catches a lost or doubled element in float64."""
    axes = tuple(range(terms.ndim)) if axis is None else tuple(np.atleast_1d(axis))
    kept = [d for d in range(terms.ndim) if d not in axes]
    moved = np.transpose(terms, kept + list(axes))
    rows = moved.reshape(int(np.prod([terms.shape[d] for d in kept])), -1)
    scale = np.sqrt(np.sum(np.cumsum(rows, axis=1) ** 2, axis=1))
    return scale.reshape([terms.shape[d] for d in kept])


# --- optimizer update kernels ---------------------------------------------------------------------

# One configuration per kernels/optim rule at least; options that change the rule's path too.
OPTIMIZER_CONFIGS = [
    ("sgd", {"learning_rate": 0.1}),
    ("momentum", {"learning_rate": 0.1, "momentum": 0.9}),
    ("momentum", {"learning_rate": 0.1, "momentum": 0.9, "use_nesterov": True}),
    ("adagrad", {"learning_rate": 0.1, "initial_accumulator_value": 0.5}),
    ("adadelta", {"learning_rate": 1.0, "rho": 0.9}),
    ("adam", {"learning_rate": 0.05, "beta1": 0.8, "beta2": 0.99}),
    ("adamw", {"learning_rate": 0.05, "weight_decay": 0.1}),
    ("adamax", {"learning_rate": 0.05, "decay": 0.1}),
    ("rmsprop", {"learning_rate": 0.01, "momentum": 0.9}),
    ("rmsprop", {"learning_rate": 0.01, "momentum": 0.9, "centered": True, "decay": 0.8}),
]
UPDATE_SIZES = [(7,), (1,), (300, 5), (), (1000,), (2, 33)]   # one launch walks across all of them


def optimizers(target: Target, dtypes: tuple | None, data: dict) -> str:
    """Each rule's generated multi-tensor update kernel (one launch for six tensors of mixed
    sizes), three steps, against the numpy function of the same rule file; float32 and
    float64 unless dtypes says otherwise."""
    dtypes = dtypes or ("float32", "float64")
    if not hasattr(target.backend, "run_update"):
        raise Skip(f"{target.name} runs no update kernels")
    problems = Problems()
    covered = set()
    for factory, opts in OPTIMIZER_CONFIGS:
        opt = getattr(tf.train, factory)(**opts)
        covered.add(opt.rule.name)
        for dtype in dtypes:
            label = f"{factory}({', '.join(f'{k}={v}' for k, v in opts.items())}) {dtype}"
            try:
                problems.case(label, _update_mismatch(opt, dtype, target))
            except Exception as exc:  # noqa: BLE001
                problems.error(label, exc)
    for path in sorted((kernels_dir() / "optim").glob("*.cu")):
        if path.stem not in covered:
            problems.case(f"rule {path.name}", "no selfcheck configuration runs it")
    problems.raise_if_any()
    return f"{len(OPTIMIZER_CONFIGS)} configurations ({len(covered)} rules), {' and '.join(dtypes)}, 3 steps each"


def _update_mismatch(opt, dtype: str, target: Target) -> str | None:
    rule = opt.rule
    program = generate_update(rule, dtype)
    reference = numpy_update(rule, dtype)
    npd = np.dtype(dtype)
    rng = np.random.default_rng(1)
    w0 = [rng.uniform(-1, 1, s).astype(npd) for s in UPDATE_SIZES]
    steps = [[rng.uniform(-1, 1, s).astype(npd) for s in UPDATE_SIZES] for _ in range(3)]
    host = [[w.copy() for w in w0]] + [[np.full(s, v, npd) for s in UPDATE_SIZES] for v in opt.slot_init.values()]
    dev = [[target.device(a) for a in role] for role in host]
    for t, grads in enumerate(steps, 1):
        scalars = opt.scalars(t)
        args = program.scalar_args(scalars)
        with np.errstate(all="ignore"):
            for k in range(len(UPDATE_SIZES)):
                new = reference(host[0][k], grads[k], *(role[k] for role in host[1:]), *args)
                for role, value in zip(host, new):
                    role[k] = np.asarray(value, dtype=npd).reshape(UPDATE_SIZES[k])
        dev_grads = [target.device(g) for g in grads]
        target.backend.run_update(program, [dev[0], dev_grads, *dev[1:]], scalars)
    target.sync()
    rtol = 1e-5 if dtype == "float32" else 1e-12
    for role_name, want_role, got_role in zip(("w",) + tuple(opt.slot_init), host, dev):
        for k, (w, g) in enumerate(zip(want_role, got_role)):
            m = mismatch(target.to_host(g), w, rtol, rtol * 1e-2)
            if m:
                return f"{role_name} of tensor {k} {list(UPDATE_SIZES[k])}: {m}"
    return None


# --- determinism ---------------------------------------------------------------------------------


def determinism(target: Target, n: int, data: dict) -> str:
    """variable_grads of the seed and chain functions, 10 runs, bitwise equal."""
    problems = Problems()
    rng = np.random.default_rng(3)
    with active(target):
        for name, make in (("seed", seed_function), ("chain", chain_function)):
            arrays = [rng.uniform(-1, 1, n).astype(np.float32) for _ in range(3)]
            f, variables = make(arrays)
            first = None
            for run in range(10):
                value, grads = tf.variable_grads(f, variables)
                got = [value.numpy().tobytes()] + [grads[v.name].numpy().tobytes() for v in variables]
                if first is None:
                    first = got
                elif got != first:
                    problems.case(f"{name} run {run + 1}", "differs bitwise from run 1")
                    break
            else:
                problems.case(f"{name}", None)
            for v in variables:
                v.dispose()
    problems.raise_if_any()
    return f"seed and chain functions at n={n}: 10 runs bitwise equal"


def seed_function(arrays):
    p, q = (tf.variable(tf.tensor(a)) for a in arrays[:2])
    r = tf.tensor(arrays[2])
    return (lambda: p.add(r.square()).mul(q.add(r)).sum()), [p, q]


def chain_function(arrays):
    x = tf.tensor(arrays[0])
    w, b = (tf.variable(tf.tensor(a)) for a in arrays[1:])
    return (lambda: tf.sum(tf.exp(-tf.tanh(tf.sigmoid(x * w + b) * x - b) ** 2) * w)), [w, b]
