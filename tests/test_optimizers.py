"""Optimizers: five steps of each against a float64 reference of its formula, state keyed by
variable, minimize/apply_gradients semantics, bad input that changes nothing, and the generated
multi-tensor update kernels (compiled for sm_90; run on the CPU through a C++ shim)."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest

import gpugrad as tf
from gpugrad import backends
from gpugrad.compile.cuda_check import compile_all, nvrtc_available
from gpugrad.compile.optim_codegen import generate, load_rule, numpy_update
from gpugrad.training.optimizers import EPSILON

from gpugrad.backends.emulated import compiler_available

EPS = EPSILON

# --- float64 references, written from the formulas (TFJS_SEMANTICS section 6; the papers and
# PyTorch for adadelta, centered rmsprop and adamw). Each takes (w, g, state dict, t, options)
# and returns the new w, updating the state dict.


def ref_sgd(w, g, s, t, learning_rate):
    return w - learning_rate * g


def ref_momentum(w, g, s, t, learning_rate, momentum, use_nesterov=False):
    a = s["a"] = momentum * s.get("a", 0.0) + g
    return w - learning_rate * (g + momentum * a) if use_nesterov else w - learning_rate * a


def ref_adagrad(w, g, s, t, learning_rate, initial_accumulator_value=0.1):
    acc = s["acc"] = s.get("acc", initial_accumulator_value) + g * g
    return w - learning_rate * g / np.sqrt(acc + EPS)


def ref_adadelta(w, g, s, t, learning_rate=0.001, rho=0.95, epsilon=EPS):
    # Zeiler 2012, Algorithm 1 (and torch.optim.Adadelta): the NEW accumulator in the root.
    sq = s["sq"] = rho * s.get("sq", 0.0) + (1 - rho) * g * g
    u = np.sqrt(s.get("dx", 0.0) + epsilon) / np.sqrt(sq + epsilon) * g
    s["dx"] = rho * s.get("dx", 0.0) + (1 - rho) * u * u
    return w - learning_rate * u


def ref_adam(w, g, s, t, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=EPS):
    m = s["m"] = beta1 * s.get("m", 0.0) + (1 - beta1) * g
    v = s["v"] = beta2 * s.get("v", 0.0) + (1 - beta2) * g * g
    return w - learning_rate * (m / (1 - beta1 ** t)) / (np.sqrt(v / (1 - beta2 ** t)) + epsilon)


def ref_adamw(w, g, s, t, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=EPS, weight_decay=0.01):
    # torch.optim.AdamW: decay the weights, then the Adam step.
    w = w * (1 - learning_rate * weight_decay)
    return ref_adam(w, g, s, t, learning_rate, beta1, beta2, epsilon)


def ref_adamax(w, g, s, t, learning_rate=0.002, beta1=0.9, beta2=0.999, epsilon=EPS, decay=0.0):
    lr_t = learning_rate / (1 + decay * (t - 1))
    m = s["m"] = beta1 * s.get("m", 0.0) + (1 - beta1) * g
    u = s["u"] = np.maximum(beta2 * s.get("u", 0.0), np.abs(g))
    return w - lr_t / (1 - beta1 ** t) * m / (u + epsilon)


def ref_rmsprop(w, g, s, t, learning_rate, decay=0.9, momentum=0.0, epsilon=EPS, centered=False):
    ms = s["s"] = decay * s.get("s", 0.0) + (1 - decay) * g * g
    if centered:  # Graves 2013, eqs. 38-41: eps added inside the root
        mg = s["mg"] = decay * s.get("mg", 0.0) + (1 - decay) * g
        denom = np.sqrt(ms - mg * mg + epsilon)
    else:
        denom = np.sqrt(ms + epsilon)
    mom = s["mom"] = momentum * s.get("mom", 0.0) + learning_rate * g / denom
    return w - mom


CASES = [
    ("sgd", ref_sgd, dict(learning_rate=0.1)),
    ("momentum", ref_momentum, dict(learning_rate=0.1, momentum=0.9)),
    ("momentum", ref_momentum, dict(learning_rate=0.1, momentum=0.9, use_nesterov=True)),
    ("adagrad", ref_adagrad, dict(learning_rate=0.1)),
    ("adagrad", ref_adagrad, dict(learning_rate=0.1, initial_accumulator_value=0.5)),
    ("adadelta", ref_adadelta, dict()),
    ("adadelta", ref_adadelta, dict(learning_rate=1.0, rho=0.9)),
    ("adam", ref_adam, dict()),
    ("adam", ref_adam, dict(learning_rate=0.05, beta1=0.8, beta2=0.99, epsilon=1e-6)),
    ("adamw", ref_adamw, dict(learning_rate=0.05, weight_decay=0.1)),
    ("adamax", ref_adamax, dict()),
    ("adamax", ref_adamax, dict(learning_rate=0.05, decay=0.1)),
    ("rmsprop", ref_rmsprop, dict(learning_rate=0.01)),
    ("rmsprop", ref_rmsprop, dict(learning_rate=0.01, momentum=0.9)),
    ("rmsprop", ref_rmsprop, dict(learning_rate=0.01, centered=True)),
    ("rmsprop", ref_rmsprop, dict(learning_rate=0.01, momentum=0.9, centered=True, decay=0.8)),
]
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in opts.items()) or 'defaults'}" for name, _, opts in CASES]


def _problem(dtype, seed=0):
    """Two variables and a loss whose gradient is c * w + d (elementwise)."""
    rng = np.random.default_rng(seed)
    w0 = [rng.uniform(0.5, 1.5, (3, 4)), rng.uniform(-1.5, -0.5, (4,))]
    cs = [rng.uniform(0.5, 2.0, w.shape) for w in w0]
    ds = [rng.uniform(-1.0, 1.0, w.shape) for w in w0]
    vs = [tf.variable(tf.tensor(w, dtype=dtype)) for w in w0]
    c_t = [tf.tensor(c, dtype=dtype) for c in cs]
    d_t = [tf.tensor(d, dtype=dtype) for d in ds]

    def loss():
        total = None
        for v, c, d in zip(vs, c_t, d_t):
            term = tf.sum(0.5 * c * v * v + d * v)
            total = term if total is None else total + term
        return total
    return vs, w0, cs, ds, loss


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,ref,opts", CASES, ids=IDS)
def test_five_steps_match_the_float64_reference(backend, name, ref, opts, dtype):
    vs, ws, cs, ds, loss = _problem(dtype)
    opt = getattr(tf.train, name)(**opts)
    states = [{} for _ in ws]
    rtol = 1e-5 if dtype == "float32" else 1e-10
    for t in range(1, 6):
        opt.minimize(loss)
        for k, (w, c, d) in enumerate(zip(ws, cs, ds)):
            ws[k] = ref(w, c * w + d, states[k], t, **opts)
        for v, w in zip(vs, ws):
            np.testing.assert_allclose(v.numpy(), w, rtol=rtol, atol=rtol * 1e-2,
                                       err_msg=f"{name} {opts} step {t}")
    assert opt.iterations == 5
    assert all(opt.step_count(v) == 5 for v in vs)


def test_tf_train_has_the_tfjs_names_and_defaults():
    for name in ("sgd", "momentum", "rmsprop", "adam", "adadelta", "adamax", "adagrad", "adamw"):
        assert callable(getattr(tf.train, name))
    adam = tf.train.adam()
    assert (adam.learning_rate, adam.beta1, adam.beta2, adam.epsilon) == (0.001, 0.9, 0.999, 1e-7)
    adamax = tf.train.adamax()
    assert (adamax.learning_rate, adamax.decay) == (0.002, 0.0)
    adadelta = tf.train.adadelta()
    assert (adadelta.learning_rate, adadelta.rho, adadelta.epsilon) == (0.001, 0.95, 1e-7)
    rms = tf.train.rmsprop(0.1)
    assert (rms.decay, rms.momentum, rms.epsilon, rms.centered) == (0.9, 0.0, 1e-7, False)
    assert tf.train.adagrad(0.1).initial_accumulator_value == 0.1
    assert tf.train.momentum(0.1, 0.9).use_nesterov is False
    assert isinstance(adam, tf.train.Optimizer) and isinstance(adam, tf.train.AdamOptimizer)


# --- minimize, apply_gradients, iterations ---------------------------------------------------------


def test_minimize_returns_the_cost_before_the_update(backend):
    v = tf.variable(tf.tensor1d([1.0, 2.0]))
    opt = tf.train.sgd(0.1)
    cost = opt.minimize(lambda: tf.sum(v * v), return_cost=True)
    assert cost.shape == () and cost.item() == pytest.approx(5.0)
    np.testing.assert_allclose(v.numpy(), [0.8, 1.6], rtol=1e-6)
    assert opt.minimize(lambda: tf.sum(v * v)) is None
    assert opt.iterations == 2


def test_minimize_with_var_list_updates_only_those(backend):
    a, b = tf.variable(tf.scalar(1.0)), tf.variable(tf.scalar(1.0))
    frozen = tf.variable(tf.scalar(1.0), trainable=False)
    opt = tf.train.sgd(0.5)
    opt.minimize(lambda: a * b * frozen, var_list=[a, frozen])   # frozen: a None gradient, skipped
    assert (a.item(), b.item(), frozen.item()) == (0.5, 1.0, 1.0)


def test_apply_gradients_takes_what_variable_grads_returns(backend):
    v = tf.variable(tf.tensor1d([3.0, 4.0]))
    opt = tf.train.momentum(0.1, 0.5)
    value, grads = tf.variable_grads(lambda: tf.sum(v * v), [v])
    opt.apply_gradients(grads)
    np.testing.assert_allclose(v.numpy(), [2.4, 3.2], rtol=1e-6)
    opt.apply_gradients({v: tf.tensor1d([1.0, 1.0])})          # keys may be the variables
    np.testing.assert_allclose(v.numpy(), [2.4 - 0.1 * (3.0 + 1), 3.2 - 0.1 * (4.0 + 1)], rtol=1e-6)
    opt.apply_gradients({})                                     # TF.js counts an empty apply
    assert opt.iterations == 3


def test_a_lazy_expression_built_before_a_step_keeps_the_old_value(backend):
    v = tf.variable(tf.tensor1d([1.0, 2.0]))
    before = v * 10            # lazy: built from v's value now, read after the update
    opt = tf.train.sgd(0.5)
    opt.minimize(lambda: tf.sum(v))
    np.testing.assert_allclose(before.numpy(), [10.0, 20.0])
    np.testing.assert_allclose(v.numpy(), [0.5, 1.5])
    np.testing.assert_allclose((v * 10).numpy(), [5.0, 15.0])


def test_variables_own_their_buffers(backend):
    t = tf.tensor1d([1.0, 2.0])
    v = tf.variable(t)
    w = tf.variable(tf.tensor1d([0.0, 0.0]))
    w.assign(t)
    tf.train.sgd(1.0).apply_gradients({v.name: tf.tensor1d([1.0, 1.0]), w.name: tf.tensor1d([2.0, 2.0])})
    np.testing.assert_allclose(t.numpy(), [1.0, 2.0])
    np.testing.assert_allclose(v.numpy(), [0.0, 1.0])
    np.testing.assert_allclose(w.numpy(), [-1.0, 0.0])


@pytest.mark.parametrize("pairs", [1, 5])   # 2 variables, and 10 (past the pairwise test)
def test_gradients_that_alias_a_variable_buffer(backend, pairs):
    # d/da sum(a * b) is b itself: the plan hands back b's own buffer as a's gradient.
    vs = [(tf.variable(tf.tensor1d([1.0, 2.0])), tf.variable(tf.tensor1d([3.0, 5.0]))) for _ in range(pairs)]
    opt = tf.train.sgd(0.1)
    opt.minimize(lambda: tf.add_n([tf.sum(a * b) for a, b in vs]))
    for a, b in vs:
        np.testing.assert_allclose(a.numpy(), [0.7, 1.5], rtol=1e-6)
        np.testing.assert_allclose(b.numpy(), [2.9, 4.8], rtol=1e-6)
    # given by hand: each variable's gradient is the other's own buffer
    opt.apply_gradients({v.name: w for a, b in vs for v, w in ((a, b), (b, a))})
    for a, b in vs:
        np.testing.assert_allclose(a.numpy(), [0.7 - 0.29, 1.5 - 0.48], rtol=1e-6)
        np.testing.assert_allclose(b.numpy(), [2.9 - 0.07, 4.8 - 0.15], rtol=1e-6)


def test_state_is_keyed_by_variable_not_position(backend):
    # TF.js section 6: after minimize(f1, [p1, p2]) (p2 unused), minimize(f2, [p2]) reuses p1's
    # momentum slot in TF.js, giving p2 = -11. By variable, p2 starts its own: -2.
    p1, p2 = tf.variable(tf.scalar(0.0)), tf.variable(tf.scalar(0.0))
    opt = tf.train.momentum(1.0, 1.0)
    opt.minimize(lambda: p1 * 9, var_list=[p1, p2])
    opt.minimize(lambda: p2 * 2, var_list=[p2])
    assert p1.item() == -9.0
    assert p2.item() == -2.0
    assert set(opt.slots(p1)) == {"a"} and opt.slots(p1)["a"].item() == 9.0
    assert opt.slots(p2)["a"].item() == 2.0


def test_slots_are_not_registered_variables(backend):
    from gpugrad.api.variables import registered_variables
    v = tf.variable(tf.tensor1d([1.0]))
    count = len(registered_variables())
    opt = tf.train.adam(0.1)
    opt.minimize(lambda: tf.sum(v * v), var_list=[v])
    assert len(registered_variables()) == count


def test_each_variable_counts_its_own_steps(backend):
    a, b = tf.variable(tf.scalar(1.0)), tf.variable(tf.scalar(1.0))
    opt = tf.train.adam(0.1)
    for _ in range(3):
        opt.minimize(lambda: a * 2, var_list=[a])
    opt.minimize(lambda: a * 2 + b * 3, var_list=[a, b])
    assert (opt.step_count(a), opt.step_count(b), opt.iterations) == (4, 1, 4)
    # b's first step is bias-corrected as a first step: exactly lr * g / (|g| + eps) ~ lr
    assert b.item() == pytest.approx(0.9, abs=1e-6)


def test_state_goes_with_the_variable(backend):
    import gc
    opt = tf.train.adam(0.1)

    def train_a_temporary_variable():
        v = tf.variable(tf.tensor1d([1.0]))
        opt.minimize(lambda: tf.sum(v), var_list=[v])
        assert len(opt._states) == 1
    train_a_temporary_variable()
    gc.collect()
    assert len(opt._states) == 0


def test_built_for_a_var_list_minimize_defaults_to_it(backend):
    a, b = tf.variable(tf.scalar(1.0)), tf.variable(tf.scalar(1.0))
    opt = tf.train.sgd(0.5, var_list=[a])
    opt.minimize(lambda: a * b)
    assert (a.item(), b.item()) == (0.5, 1.0)


def test_adadelta_follows_the_paper_not_tfjs():
    # TF.js divides by the accumulator before the update, so its first step is u = g exactly.
    v = tf.variable(tf.tensor1d([1.0], dtype="float64"))
    tf.train.adadelta(1.0).apply_gradients({v.name: tf.tensor1d([0.5], dtype="float64")})
    u = math.sqrt(EPS) / math.sqrt(0.05 * 0.25 + EPS) * 0.5
    assert v.item() == pytest.approx(1.0 - u, rel=1e-12)


def test_centered_rmsprop_is_finite_for_small_gradients():
    # TF.js subtracts eps inside the root: NaN for g = 1e-3 with the default eps.
    v = tf.variable(tf.tensor1d([1.0]))
    opt = tf.train.rmsprop(0.01, centered=True)
    for _ in range(3):
        opt.apply_gradients({v.name: tf.tensor1d([1e-3])})
    assert np.isfinite(v.item()) and v.item() < 1.0


def test_learning_rate_can_change_between_steps():
    v = tf.variable(tf.scalar(0.0))
    opt = tf.train.sgd(1.0)
    opt.apply_gradients({v.name: tf.scalar(1.0)})
    opt.learning_rate = 0.5
    opt.apply_gradients({v.name: tf.scalar(1.0)})
    assert v.item() == -1.5
    with pytest.raises(ValueError, match="learning_rate"):
        opt.learning_rate = -1


# --- bad input: a clear error and nothing changed ----------------------------------------------------


@pytest.mark.parametrize("make,error,match", [
    (lambda: tf.train.sgd(), TypeError, "learning_rate must be given"),
    (lambda: tf.train.sgd(0), ValueError, "positive"),
    (lambda: tf.train.sgd(-0.1), ValueError, "positive"),
    (lambda: tf.train.sgd(float("nan")), ValueError, "NaN"),
    (lambda: tf.train.sgd(float("inf")), ValueError, "finite"),
    (lambda: tf.train.sgd("0.1"), TypeError, "must be a number, got str"),
    (lambda: tf.train.sgd(True), TypeError, "must be a number"),
    (lambda: tf.train.sgd(tf.scalar(0.1)), TypeError, "float"),
    (lambda: tf.train.adam(-1), ValueError, "AdamOptimizer: learning_rate"),
    (lambda: tf.train.rmsprop(), TypeError, "learningRate for RMSPropOptimizer must be defined"),
    (lambda: tf.train.momentum(0.1), TypeError, "momentum must be given"),
    (lambda: tf.train.momentum(0.1, -0.5), ValueError, "momentum must be in"),
    (lambda: tf.train.adam(beta1=1.0), ValueError, r"beta1 must be in \[0, 1\)"),
    (lambda: tf.train.adamax(decay=-1), ValueError, "decay"),
    (lambda: tf.train.rmsprop(0.1, decay=1.5), ValueError, "decay"),
    (lambda: tf.train.adadelta(rho=2), ValueError, "rho"),
    (lambda: tf.train.adam(epsilon=-1e-8), ValueError, "epsilon"),
    (lambda: tf.train.adamw(weight_decay=-0.1), ValueError, "weight_decay"),
    (lambda: tf.train.adagrad(0.1, -1), ValueError, "initial_accumulator_value"),
    (lambda: tf.train.adam(beta3=0.9), TypeError, "unknown option 'beta3'.*beta1, beta2"),
    (lambda: tf.train.momentum(0.1, 0.9, useNesterov=True), TypeError, "Did you mean 'use_nesterov'"),
    (lambda: tf.train.adam(learningRate=0.1), TypeError, "Did you mean 'learning_rate'"),
    (lambda: tf.train.sgd(0.1, momentum=0.9), TypeError, "unknown option 'momentum'"),
    (lambda: tf.train.adamw(wd=0.1), TypeError, "weight_decay"),
    (lambda: tf.train.sgd(0.1, var_list=[tf.tensor1d([1.0])]), TypeError, "var_list"),
])
def test_bad_options(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.fixture
def two_vars():
    a = tf.variable(tf.tensor1d([1.0, 2.0]))
    b = tf.variable(tf.tensor2d([[1.0, 2.0], [3.0, 4.0]]))
    return a, b


def _bad_gradient_cases(a, b):
    n = tf.variable(tf.tensor1d([1, 2], dtype="int32"))
    gone = tf.variable(tf.tensor1d([1.0, 2.0]))
    gone.dispose()
    good = tf.tensor1d([1.0, 1.0])
    return {
        "unknown-name": ({a.name: good, "no-such-variable": good}, KeyError, "no variable named 'no-such-variable'"),
        "shape": ({a.name: good, b.name: tf.tensor1d([1.0, 2.0])}, ValueError, r"shape \[2\] but the variable has shape \[2, 2\]"),
        "dtype": ({a.name: good, b.name: tf.ones([2, 2], "float64")}, TypeError, "is float64 but the variable is float32"),
        "int-variable": ({a.name: good, n: tf.tensor1d([1.0, 1.0])}, TypeError, "int32; optimizers update float32 and float64"),
        "disposed": ({a.name: good, gone: good}, ValueError, "was disposed"),
        "key-type": ({a.name: good, 3: good}, TypeError, "gradient keys must be"),
        "pair": ((tf.scalar(1.0), {a.name: good}), TypeError, r"not the \(value, grads\) pair"),
        "not-a-dict": ([good], TypeError, "must be a dict"),
    }


@pytest.mark.parametrize("case", ["unknown-name", "shape", "dtype", "int-variable", "disposed",
                                  "key-type", "pair", "not-a-dict"])
@pytest.mark.parametrize("name", ["sgd", "adam", "rmsprop"])
def test_bad_gradients_change_nothing(backend, two_vars, case, name):
    a, b = two_vars
    opt = getattr(tf.train, name)(0.1)
    opt.apply_gradients({a.name: tf.tensor1d([1.0, 1.0])})   # some state to keep intact
    before = (a.numpy().copy(), b.numpy().copy(), opt.slots(a), opt.iterations)
    grads, error, match = _bad_gradient_cases(a, b)[case]
    with pytest.raises(error, match=match):
        opt.apply_gradients(grads)
    np.testing.assert_array_equal(a.numpy(), before[0])
    np.testing.assert_array_equal(b.numpy(), before[1])
    assert opt.iterations == before[3] and opt.step_count(a) == 1 and opt.step_count(b) == 0
    for k, t in opt.slots(a).items():
        np.testing.assert_array_equal(t.numpy(), before[2][k].numpy())


def test_gradient_for_a_variable_the_optimizer_was_not_built_for(backend, two_vars):
    a, b = two_vars
    opt = tf.train.adam(0.1, var_list=[a])
    with pytest.raises(KeyError, match=rf"built for \['{a.name}'\]"):
        opt.apply_gradients({a.name: tf.tensor1d([1.0, 1.0]), b.name: tf.ones([2, 2])})
    np.testing.assert_array_equal(a.numpy(), [1.0, 2.0])
    assert opt.iterations == 0 and opt.slots(a) == {}
    with pytest.raises(KeyError, match="built for"):
        opt.minimize(lambda: tf.sum(a) + tf.sum(b), var_list=[a, b])
    np.testing.assert_array_equal(b.numpy(), [[1.0, 2.0], [3.0, 4.0]])


def test_int_variable_in_minimize_is_an_error_before_any_update(backend):
    w = tf.variable(tf.tensor1d([1.0, 2.0]))
    n = tf.variable(tf.tensor1d([1, 2], dtype="int32"))
    with pytest.raises(TypeError, match=f"{n.name!r} is int32"):
        tf.train.sgd(0.1).minimize(lambda: tf.sum(w * tf.cast(n, "float32")), var_list=[w, n])
    np.testing.assert_array_equal(w.numpy(), [1.0, 2.0])
    with pytest.raises(TypeError, match="int32"):
        tf.train.sgd(0.1, var_list=[w, n])


def test_an_error_in_f_changes_nothing(backend):
    w = tf.variable(tf.tensor1d([1.0, 2.0]))
    opt = tf.train.adam(0.1)

    def f():
        raise RuntimeError("boom")
    with pytest.raises(RuntimeError, match="boom"):
        opt.minimize(f)
    np.testing.assert_array_equal(w.numpy(), [1.0, 2.0])
    assert opt.iterations == 0


@pytest.mark.parametrize("labels,match", [([0, 1, 7], "labels out of range"),
                                          ([0, 1], "batch sizes")])
def test_a_bad_batch_in_minimize_changes_nothing(backend, labels, match):
    layer = tf.nn.Dense(2, 3, seed=0)
    before = [v.numpy().copy() for v in layer.trainable_variables]
    opt = tf.train.adam(0.1)
    with pytest.raises(ValueError, match=match):
        opt.minimize(lambda: tf.losses.softmax_cross_entropy(labels, layer(tf.ones([3, 2]))))
    for v, b in zip(layer.trainable_variables, before):
        np.testing.assert_array_equal(v.numpy(), b)
    assert opt.iterations == 0


# --- the update rules and their generated kernels ----------------------------------------------------

OPTIMIZERS = [(name, opts) for name, _, opts in CASES]


def _rules():
    seen = {}
    for name, opts in OPTIMIZERS:
        opt = getattr(tf.train, name)(**opts)
        seen[opt.rule.name] = opt.rule
    return list(seen.values())


def test_every_rule_file_is_used():
    from gpugrad.core.snippets import kernels_dir
    files = {p.stem for p in (kernels_dir() / "optim").glob("*.cu")}
    assert files == {r.name for r in _rules()}


def test_a_broken_rule_is_rejected_naming_its_file(tmp_path, monkeypatch):
    import gpugrad.compile.optim_codegen as oc
    for text, match in [("w = w - 0.5 * g;", "outside the snippet grammar"),
                        ("w = w - lr * g", "expected 'name = expression;'"),
                        ("w = frobnicate(g);", "unknown function 'frobnicate'"),
                        ("g = w;", "'g' is an input"),
                        ("x = g;", "'w' is never assigned"),
                        ("w = w ** g;", "outside the snippet grammar")]:
        (tmp_path / "optim").mkdir(exist_ok=True)
        (tmp_path / "optim" / "broken.cu").write_text(text + "\n")
        monkeypatch.setattr(oc, "kernels_dir", lambda: tmp_path)
        oc.load_rule.cache_clear()
        with pytest.raises(SyntaxError, match=match) as info:
            oc.load_rule("broken", ())
        assert "broken.cu" in str(info.value)
    oc.load_rule.cache_clear()


def _sources():
    return {f"{rule.name}_{dt}": generate(rule, dt).source for rule in _rules()
            for dt in ("float32", "float64")}


@pytest.mark.skipif(not nvrtc_available(), reason="libnvrtc is not installed")
def test_update_kernels_compile_to_cubins_as_the_cupy_backend_does():
    errors = compile_all(_sources())
    assert not errors, "\n".join(errors[:10])


@pytest.fixture
def emulated(monkeypatch):
    """The generated CUDA (plans and update kernels) as the current backend, run on the CPU."""
    if not compiler_available():
        pytest.skip("g++ is not installed")
    from gpugrad.backends.emulated_optim import EmulatedUpdateBackend
    emu = EmulatedUpdateBackend()
    previous = tf.get_backend()
    tf.set_backend("numpy")
    monkeypatch.setattr(backends, "_current", emu)
    yield emu
    tf.set_backend(previous)


SIZES = [(7,), (1,), (300, 5), (), (3, 4), (1000,), (2, 33)]


@pytest.mark.parametrize("name,opts", OPTIMIZERS, ids=IDS)
def test_generated_update_kernel_matches_numpy(name, opts, emulated):
    """Several tensors of mixed sizes in ONE launch (the grid-stride walk crosses tensors),
    three steps, against the numpy executor of the same rule."""
    rng = np.random.default_rng(1)
    inits = [rng.uniform(-1, 1, s) for s in SIZES]
    grads = [[rng.uniform(-1, 1, s) for s in SIZES] for _ in range(3)]
    results = []
    for mode in ("emulated", "numpy"):
        if mode == "numpy":
            tf.set_backend("numpy")
        vs = [tf.variable(tf.tensor(w, dtype="float32")) for w in inits]
        opt = getattr(tf.train, name)(**opts)
        for step in grads:
            opt.apply_gradients({v.name: tf.tensor(g, dtype="float32") for v, g in zip(vs, step)})
        results.append([v.numpy() for v in vs])
    assert emulated.launches == 3
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_one_launch_per_dtype_per_step(emulated):
    vs = [tf.variable(tf.tensor(np.ones(s), dtype=dt)) for s in [(3,), (4, 2)] for dt in ("float32", "float64")]
    opt = tf.train.adam(0.1)
    opt.apply_gradients({v.name: tf.ones(v.shape, v.dtype) for v in vs})
    assert emulated.launches == 2
    for v in vs:
        np.testing.assert_allclose(v.numpy(), 0.9, rtol=1e-6)


def test_a_training_step_runs_entirely_through_generated_cuda(emulated):
    """Forward, backward (generated plan kernels) and the update kernel, against numpy."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(8, 5))
    labels = rng.integers(0, 3, 8)
    w0, b0 = rng.normal(size=(5, 3)) * 0.5, rng.normal(size=(3,)) * 0.1
    results = []
    for mode in ("emulated", "numpy"):
        if mode == "numpy":
            tf.set_backend("numpy")
        w, b = tf.variable(tf.tensor(w0)), tf.variable(tf.tensor(b0))
        xt = tf.tensor(x)
        opt = tf.train.adam(0.05)
        costs = [opt.minimize(lambda: tf.losses.softmax_cross_entropy(labels, tf.relu(xt @ w + b)),
                              return_cost=True).item() for _ in range(3)]
        results.append((costs, w.numpy(), b.numpy()))
    assert emulated.launches == 3
    (c1, w1, b1), (c2, w2, b2) = results
    np.testing.assert_allclose(c1, c2, rtol=1e-5)
    np.testing.assert_allclose(w1, w2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b1, b2, rtol=1e-5, atol=1e-6)


def test_numpy_function_of_a_rule_is_the_rule():
    rule = load_rule("sgd", ())
    fn = numpy_update(rule, "float32")
    w, g = np.array([1.0, 2.0], np.float32), np.array([1.0, -1.0], np.float32)
    (new_w,) = fn(w, g, np.float32(0.5))
    assert new_w.dtype == np.float32
    np.testing.assert_array_equal(new_w, [0.5, 2.5])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_in_place_numpy_update_equals_the_rule_bitwise(dtype):
    """What the numpy backend runs (numpy_update_in_place, every statement's last operation
    writing into its target) gives bit for bit what the rule as a function gives."""
    from gpugrad.compile.optim_codegen import numpy_update_in_place
    rng = np.random.default_rng(0)
    for rule in _rules():
        arrays = [rng.uniform(0.1, 2.0, 37).astype(dtype) for _ in rule.roles]
        scalars = [np.dtype(dtype).type(0.3 + 0.1 * k) for k in range(len(rule.scalars))]
        got = [a.copy() for a in arrays]
        with np.errstate(all="ignore"):   # NaN (centered RMSProp's sqrt) compares equal below
            want = numpy_update(rule, dtype)(*[a.copy() for a in arrays], *scalars)
            numpy_update_in_place(rule, dtype)(*got, *scalars)
        updated = [got[0]] + got[2:]     # w and the states; g is read only
        np.testing.assert_array_equal(got[1], arrays[1])
        for name, a, b in zip(("w",) + rule.state, want, updated):
            np.testing.assert_array_equal(a, b, err_msg=f"{rule.name}: {name}")


def test_in_place_numpy_update_makes_no_array_per_operation():
    """Adam's arithmetic on arrays runs as ufunc calls into its targets or two scratch arrays
    made once per call, not as expressions that make a new array per operation."""
    from gpugrad.compile.optim_codegen import numpy_update_in_place
    rule = next(r for r in _rules() if r.name == "adam")
    lines = numpy_update_in_place(rule, "float32").source.splitlines()[1:]
    scratch = [ln for ln in lines if "_empty_like" in ln]
    calls = [ln for ln in lines if "_empty_like" not in ln]
    assert len(scratch) == 2
    assert len(calls) == 14 and all(re.fullmatch(r"    \w+\(.*, out=\w+\)", ln) for ln in calls), lines


def test_cupy_run_update_plumbing_through_the_emulator():
    """CupyBackend.run_update (no GPU here): its pointer tables, argument order and meta cache,
    with a stand-in for CuPy whose arrays are numpy arrays and whose kernel is the emulated one."""
    if not compiler_available():
        pytest.skip("g++ is not installed")
    import ctypes
    from types import SimpleNamespace

    from gpugrad.backends.emulated import _build
    from gpugrad.backends.cupy_backend import CupyBackend

    class DeviceArray:   # what run_update reads of a cupy.ndarray
        def __init__(self, a):
            self.a, self.size, self.data = a, a.size, SimpleNamespace(ptr=a.ctypes.data)

    uploads = []
    backend = CupyBackend.__new__(CupyBackend)
    backend.cupy = SimpleNamespace(asarray=lambda a: uploads.append(a) or a)
    program = generate(load_rule("adam", ("m", "v")), "float32")
    lib = _build(program.source)
    fn = getattr(lib, program.kernel)
    fn.restype = None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_longlong] + [ctypes.c_float] * 6

    def kernel(grid, block, args):   # a RawKernel's signature: the dims as 1-tuples
        assert block == (program.block,) and isinstance(args[1], np.int32) and isinstance(args[2], np.int64)
        assert all(isinstance(s, np.float32) for s in args[3:])
        (grid,) = grid
        for b in range(grid):
            lib.gg_set_block(b, grid)
            fn(args[0].ctypes.data, int(args[1]), int(args[2]), *map(float, args[3:]))
    backend.compile = lambda p: {p.kernel: kernel}

    rng = np.random.default_rng(0)
    host = [[rng.uniform(lo, 1, n).astype(np.float32) for n in (5, 700)] for lo in (-1, -1, -1, 0)]
    expected = [[a.copy() for a in role] for role in host]
    arrays = [[DeviceArray(a) for a in role] for role in host]
    scalars = dict(lr=0.01, b1=0.9, b2=0.999, eps=1e-7, bc1=0.1, bc2=0.001)
    update = numpy_update(program.rule, "float32")
    for _ in range(2):
        backend.run_update(program, arrays, scalars)
        for k in range(2):
            args = [role[k] for role in expected]
            new = update(*args, *program.scalar_args(scalars))
            for target, value in zip([expected[0][k], expected[2][k], expected[3][k]], new):
                target[...] = value
    assert len(uploads) == 1   # the same buffers: the pointer tables went up once
    for got_role, want_role in zip(host, expected):
        for got, want in zip(got_role, want_role):
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
