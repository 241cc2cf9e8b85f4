"""TF.js's computeGradients, applyGradients with a list of {name, tensor}, and getWeights /
setWeights, with gpugrad's state named by variable (gpugrad/training/optimizers.py)."""
from __future__ import annotations

import numpy as np
import pytest

import gpugrad as tf

KINDS = {
    "sgd": lambda: tf.train.sgd(0.1),
    "momentum": lambda: tf.train.momentum(0.1, 0.9),
    "nesterov": lambda: tf.train.momentum(0.1, 0.9, True),
    "adagrad": lambda: tf.train.adagrad(0.1),
    "adadelta": lambda: tf.train.adadelta(1.0),
    "adam": lambda: tf.train.adam(0.05),
    "adamw": lambda: tf.train.adamw(0.05),
    "adamax": lambda: tf.train.adamax(0.05),
    "rmsprop": lambda: tf.train.rmsprop(0.05, momentum=0.5),
    "rmsprop-centered": lambda: tf.train.rmsprop(0.05, momentum=0.5, centered=True),
}
SLOTS = {"sgd": [], "momentum": ["momentum"], "nesterov": ["momentum"], "adagrad": ["accumulator"],
         "adadelta": ["accum_grad", "accum_var"], "adam": ["m", "v"], "adamw": ["m", "v"],
         "adamax": ["m", "v"], "rmsprop": ["rms", "momentum"],
         "rmsprop-centered": ["rms", "mg", "momentum"]}


@pytest.fixture
def two_vars():
    a = tf.variable(tf.tensor1d([1.0, -2.0, 3.0]), name="state_a")
    b = tf.variable(tf.tensor2d([[0.5, 1.5]]), name="state_b")
    yield a, b
    a.dispose()
    b.dispose()


def snap(t):
    """A copy of t's values (a variable's numpy() may be a view of the buffer it updates)."""
    return np.array(t.numpy())


def loss(a, b):
    return lambda: (a * a * a).sum() + (b.square() * tf.tensor2d([[1.0, 3.0]])).sum() + a.sum() * b.sum()


def test_compute_gradients_is_variable_grads(backend, two_vars):
    a, b = two_vars
    opt = tf.train.sgd(0.1)
    result = opt.compute_gradients(loss(a, b))
    value, grads = result
    expected = tf.variable_grads(loss(a, b), [a, b])
    assert result.value is value and result.grads is grads
    assert value.item() == expected.value.item()
    assert list(grads) == ["state_a", "state_b"]
    for name in grads:
        np.testing.assert_array_equal(grads[name].numpy(), expected.grads[name].numpy())
    assert opt.computeGradients == opt.compute_gradients


def test_compute_gradients_defaults_to_the_built_var_list(backend, two_vars):
    a, b = two_vars
    opt = tf.train.sgd(0.1, var_list=[b])
    assert list(opt.compute_gradients(loss(a, b)).grads) == ["state_b"]
    assert list(opt.compute_gradients(loss(a, b), [a]).grads) == ["state_a"]


def test_apply_gradients_takes_tfjs_named_tensor_list(backend, two_vars):
    a, b = two_vars
    start = snap(a), snap(b)
    grads = tf.variable_grads(loss(a, b), [a, b]).grads
    by_dict = tf.train.adam(0.1)
    by_dict.apply_gradients(grads)
    after_dict = snap(a), snap(b)
    a.assign(tf.tensor(start[0]))
    b.assign(tf.tensor(start[1]))
    by_list = tf.train.adam(0.1)
    by_list.applyGradients([{"name": n, "tensor": g} for n, g in grads.items()])
    np.testing.assert_array_equal(a.numpy(), after_dict[0])
    np.testing.assert_array_equal(b.numpy(), after_dict[1])
    assert by_list.iterations == 1


@pytest.mark.parametrize("items,error,match", [
    ([("state_a", [1.0, 1.0, 1.0])], TypeError, r"item 0 of the list is tuple.*'name'.*'tensor'"),
    ([{"name": "state_a", "grad": [1.0, 1, 1]}], TypeError, r"item 0 of the list is dict"),
    ([{"name": "state_a", "tensor": [1.0, 1, 1]}, {"name": "state_a", "tensor": [1.0, 1, 1]}],
     ValueError, r"names 'state_a' twice \(items \[0, 1\]\)"),
    ([{"name": "state_b", "tensor": tf.ones([2, 1])}], ValueError,
     r"gradient for variable 'state_b' has shape \[2, 1\] but the variable has shape \[1, 2\]"),
    ([{"name": "nowhere", "tensor": tf.ones([2])}], KeyError, r"no variable named 'nowhere'"),
])
def test_apply_gradients_list_errors_change_nothing(two_vars, items, error, match):
    a, b = two_vars
    opt = tf.train.momentum(0.1, 0.9)
    before = snap(a), snap(b)
    with pytest.raises(error, match=match):
        opt.apply_gradients(items)
    np.testing.assert_array_equal(a.numpy(), before[0])
    np.testing.assert_array_equal(b.numpy(), before[1])
    assert opt.iterations == 0 and opt.get_weights()[1:] == []


# --- get_weights / set_weights ---------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
def test_get_weights_names_iter_then_each_variable_by_name(backend, two_vars, kind):
    a, b = two_vars
    opt = KINDS[kind]()
    opt.minimize(loss(a, b), var_list=[b])     # b first: the order is by name, not by first use
    opt.minimize(loss(a, b), var_list=[a, b])
    weights = opt.getWeights()
    names = [w["name"] for w in weights]
    expected = ["iter"]
    for var in ("state_a", "state_b"):
        expected += [f"{var}/step"] + [f"{var}/{s}" for s in SLOTS[kind]]
    assert sorted(names[1:]) == sorted(expected[1:]) and names[0] == "iter"
    assert names == ["iter"] + [n for n in names[1:] if n.startswith("state_a")] + \
        [n for n in names[1:] if n.startswith("state_b")]
    values = {w["name"]: w["tensor"] for w in weights}
    assert values["iter"].dtype == "int32" and values["iter"].item() == 2
    assert values["state_a/step"].item() == 1 and values["state_b/step"].item() == 2
    internal = {opt.slot_names.get(k, k): k for k in opt.slot_init}
    for var in (a, b):
        slots = opt.slots(var)
        for public in SLOTS[kind]:
            t = values[f"{var.name}/{public}"]
            assert t.shape == var.shape and t.dtype == var.dtype
            np.testing.assert_array_equal(t.numpy(), slots[internal[public]].numpy())


@pytest.mark.parametrize("kind", list(KINDS))
def test_set_weights_restores_training_exactly(backend, two_vars, kind):
    a, b = two_vars
    trained = KINDS[kind]()
    for _ in range(3):
        trained.minimize(loss(a, b))
    weights = trained.get_weights()
    saved = snap(a), snap(b)
    for _ in range(2):
        trained.minimize(loss(a, b))
    reference = snap(a), snap(b)

    a.assign(tf.tensor(saved[0]))
    b.assign(tf.tensor(saved[1]))
    fresh = KINDS[kind]()
    fresh.setWeights(weights)
    assert fresh.iterations == 3 and fresh.step_count(a) == 3
    for _ in range(2):
        fresh.minimize(loss(a, b))
    np.testing.assert_array_equal(a.numpy(), reference[0])
    np.testing.assert_array_equal(b.numpy(), reference[1])


def test_set_weights_takes_a_dict_and_replaces_the_whole_state(two_vars):
    a, b = two_vars
    opt = tf.train.adam(0.1)
    opt.minimize(loss(a, b))
    only_a = {w["name"]: w["tensor"].numpy() for w in opt.get_weights() if not w["name"].startswith("state_b")}
    opt.set_weights(only_a)
    assert opt.step_count(a) == 1 and opt.step_count(b) == 0    # b starts afresh
    assert [w["name"] for w in opt.get_weights()] == ["iter", "state_a/step", "state_a/m", "state_a/v"]


def test_weights_of_a_disposed_variable_are_not_listed():
    c = tf.variable(tf.tensor1d([1.0]), name="state_c")
    opt = tf.train.momentum(0.1, 0.9)
    opt.minimize(lambda: c.square().sum(), var_list=[c])
    assert len(opt.get_weights()) == 3
    c.dispose()
    assert [w["name"] for w in opt.get_weights()] == ["iter"]


def _good(opt, a, b):
    opt.minimize(loss(a, b))
    return {w["name"]: w["tensor"].numpy() for w in opt.get_weights()}


@pytest.mark.parametrize("change,error,match", [
    (lambda w: w.pop("iter"), ValueError, "no 'iter' entry"),
    (lambda w: w.update(iter=np.array(-1)), ValueError, r"'iter' must be a non-negative integer scalar"),
    (lambda w: w.update({"state_a/mom": w["state_a/m"]}), ValueError,
     r"unknown weight 'state_a/mom'.*\['step', 'm', 'v'\]"),
    (lambda w: w.update({"iterations": 1}), ValueError, r"unknown weight 'iterations'"),
    (lambda w: w.pop("state_b/v"), ValueError, r"state of variable 'state_b' lacks \['state_b/v'\]"),
    (lambda w: w.update({"state_b/m": np.zeros((2, 1), np.float32)}), ValueError,
     r"'state_b/m' has shape \[2, 1\] but variable 'state_b' has shape \[1, 2\]"),
    (lambda w: w.update({"state_a/v": np.zeros(3)}), TypeError,
     r"'state_a/v' is float64 but variable 'state_a' is float32; cast it"),
    (lambda w: w.update({"gone/step": 1, "gone/m": 0, "gone/v": 0}), ValueError,
     r"state for variable 'gone', but no live variable has that name"),
    (lambda w: w.update({"state_a/step": 1.5}), ValueError, r"'state_a/step' must be a non-negative integer"),
])
def test_set_weights_errors_change_nothing(two_vars, change, error, match):
    a, b = two_vars
    opt = tf.train.adam(0.1)
    weights = _good(opt, a, b)
    opt.minimize(loss(a, b))
    before = {w["name"]: w["tensor"].numpy() for w in opt.get_weights()}
    change(weights)
    with pytest.raises(error, match=match):
        opt.set_weights(weights)
    after = {w["name"]: w["tensor"].numpy() for w in opt.get_weights()}
    assert list(after) == list(before) and opt.iterations == 2
    for name in before:
        np.testing.assert_array_equal(after[name], before[name])


def test_set_weights_for_an_optimizer_built_for_other_variables(two_vars):
    a, b = two_vars
    opt = tf.train.momentum(0.1, 0.9, var_list=[a])
    with pytest.raises(ValueError, match=r"variable 'state_b', but this optimizer was built for \['state_a'\]"):
        opt.set_weights([{"name": "iter", "tensor": tf.scalar(0, "int32")},
                         {"name": "state_b/step", "tensor": tf.scalar(1, "int32")},
                         {"name": "state_b/momentum", "tensor": tf.zeros([1, 2])}])


def test_set_weights_needs_a_list_or_dict():
    with pytest.raises(TypeError, match=r"weights must be a list of \{'name': ..., 'tensor': ...\}.*got int"):
        tf.train.adam().set_weights(3)
