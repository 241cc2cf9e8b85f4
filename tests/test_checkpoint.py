"""gpugrad.save / gpugrad.load (gpugrad/training/checkpoint.py): bitwise round trips on each backend and
across them, and files from other models refused by name with nothing changed."""
from __future__ import annotations

import itertools
import os

import numpy as np
import pytest

import gpugrad as tf
from gpugrad.training import nn

_models = itertools.count()


def snap(t):
    return np.array(t.numpy())


def make_model(hidden=5, name=None):
    tag = name or f"ckpt{next(_models)}"
    return nn.Sequential([nn.Dense(3, hidden, "tanh", seed=1, name=f"{tag}_1"),
                          nn.Dense(hidden, 2, seed=2, name=f"{tag}_2")])


X = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
Y = np.random.default_rng(1).integers(0, 2, 8)


def step(model, opt):
    opt.minimize(lambda: tf.losses.softmax_cross_entropy(Y, model(tf.tensor(X))),
                 var_list=model.trainable_variables)


def state(model, opt=None):
    out = {v.name: snap(v) for v in model.trainable_variables}
    if opt is not None:
        out.update({"opt:" + w["name"]: w["tensor"].numpy() for w in opt.get_weights()})
    return out


def assert_same(a, b):
    assert list(a) == list(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        assert a[k].tobytes() == b[k].tobytes(), k     # bitwise, NaN payloads included


@pytest.mark.parametrize("kind", ["adam", "rmsprop"])
def test_round_trip_resumes_training_bitwise(backend, tmp_path, kind):
    model = make_model()
    opt = tf.train.adam(0.05) if kind == "adam" else tf.train.rmsprop(0.05, centered=True, momentum=0.9)
    for _ in range(3):
        step(model, opt)
    path = tmp_path / "model.npz"
    tf.save(path, model, opt)
    saved = state(model, opt)
    for _ in range(2):
        step(model, opt)
    reference = state(model, opt)

    for v in model.trainable_variables:    # wreck everything, then load
        v.assign(tf.zeros_like(v))
    fresh = tf.train.adam(0.05) if kind == "adam" else tf.train.rmsprop(0.05, centered=True, momentum=0.9)
    tf.load(path, model, fresh)
    assert_same(state(model, fresh), saved)
    for _ in range(2):
        step(model, fresh)
    assert_same(state(model, fresh), reference)


def test_special_values_survive_bitwise(backend, tmp_path):
    bits = np.array([0x7FC00001, 0x80000000, 0x00000001, 0x7F800000, 0xFF800000, 0x3F800001], np.uint32)
    v = tf.variable(tf.zeros([6]), name="ckpt_special")
    v.assign(tf.tensor(bits.view(np.float32), dtype="float32"))   # NaN payload, -0, a denormal, ±inf
    i = tf.variable(tf.tensor1d([7, -3], dtype="int32"), name="ckpt_int")
    d = tf.variable(tf.tensor([np.pi, 1e-300], dtype="float64"), name="ckpt_f64")
    tf.save(tmp_path / "s.npz", [v, i, d])
    expected = state_of([v, i, d])
    for var in (v, i, d):
        var.assign(tf.zeros_like(var))
    tf.load(tmp_path / "s.npz", [v, i, d])
    assert_same(state_of([v, i, d]), expected)
    assert snap(v).view(np.uint32).tolist() == bits.tolist()
    for var in (v, i, d):
        var.dispose()


def state_of(variables):
    return {v.name: snap(v) for v in variables}


def test_a_file_written_on_numpy_loads_bitwise_on_each_backend(backend, tmp_path):
    previous = tf.get_backend()
    tf.set_backend("numpy")
    model, opt = make_model(), tf.train.adam(0.1)
    step(model, opt)
    tf.save(tmp_path / "np.npz", model, opt)
    saved = state(model, opt)
    tf.set_backend(previous)
    for v in model.trainable_variables:
        v.assign(tf.ones_like(v))
    fresh = tf.train.adam(0.1)
    tf.load(tmp_path / "np.npz", model, fresh)
    assert_same(state(model, fresh), saved)


def test_the_file_is_plain_npz_named_by_variable(tmp_path):
    w = tf.variable(tf.tensor1d([1.0, 2.0]), name="ckpt_w")
    opt = tf.train.momentum(0.1, 0.9)
    opt.minimize(lambda: w.square().sum(), var_list=[w])
    tf.save(tmp_path / "plain", [w], opt)     # exactly this path: no suffix added
    with np.load(tmp_path / "plain", allow_pickle=False) as f:
        assert sorted(f.files) == sorted(["__gpugrad_checkpoint__", "variables/ckpt_w", "optimizer/__class__",
                                          "optimizer/iter", "optimizer/ckpt_w/step", "optimizer/ckpt_w/momentum"])
        assert str(f["optimizer/__class__"]) == "MomentumOptimizer" and int(f["optimizer/iter"]) == 1
    w.dispose()


def test_a_dict_names_the_variables_so_they_load_into_others(tmp_path):
    a = make_model(name="ckpt_dict_a")
    b = make_model(name="ckpt_dict_b")    # same architecture, other variable names
    opt = tf.train.adam(0.1)
    step(a, opt)
    as_dict = lambda m: {f"layer{i}": v for i, v in enumerate(m.trainable_variables)}  # noqa: E731
    tf.save(tmp_path / "d.npz", as_dict(a), opt)
    other = tf.train.adam(0.1)
    tf.load(tmp_path / "d.npz", as_dict(b), other)
    for va, vb in zip(a.trainable_variables, b.trainable_variables):
        np.testing.assert_array_equal(va.numpy(), vb.numpy())
        for slot in ("m", "v"):
            np.testing.assert_array_equal(opt.slots(va)[slot].numpy(), other.slots(vb)[slot].numpy())
        assert other.step_count(vb) == 1
    with pytest.raises(ValueError, match=r"has no variable 'ckpt_dict_b_1/kernel'.*holds \['layer0'"):
        tf.load(tmp_path / "d.npz", b)


# --- mismatches: a clear error naming the first, and nothing changed -----------------------------


@pytest.fixture
def saved(tmp_path):
    """A saved model whose variables are named ckpt_src<N>_1/kernel ... (N: unique per test)."""
    prefix = f"ckpt_src{next(_models)}"
    model, opt = make_model(name=prefix), tf.train.adam(0.1)
    step(model, opt)
    path = tmp_path / "src.npz"
    tf.save(path, model, opt)
    return path, model, opt, prefix


def _target(name, hidden=5, extra=False, dtype="float32"):
    """A model with the saved model's names (the source is disposed first)."""
    layers = [nn.Dense(3, hidden, "tanh", seed=5, name=f"{name}_1", dtype=dtype),
              nn.Dense(hidden, 2, seed=6, name=f"{name}_2")]
    if extra:
        layers.append(nn.Dense(2, 2, seed=7, name=f"{name}_3"))
    return nn.Sequential(layers)


def _dispose(model):
    for v in model.trainable_variables:
        v.dispose()


@pytest.mark.parametrize("build,error,match", [
    (lambda p: _target(p, hidden=4), ValueError,
     r"variable 'ckpt_src\d+_1/kernel' has shape \[3, 5\] in .* but \[3, 4\] in the model"),
    (lambda p: _target(p, dtype="float64"), TypeError,
     r"variable 'ckpt_src\d+_1/kernel' is float32 in .* but float64 in the model"),
    (lambda p: _target(p, extra=True), ValueError,
     r"has no variable 'ckpt_src\d+_3/kernel' \(shape \[2, 2\], float32\)"),
    (lambda p: nn.Sequential([nn.Dense(3, 5, "tanh", seed=5, name=f"{p}_1")]), ValueError,
     r"holds variable 'ckpt_src\d+_2/kernel' \(shape \[5, 2\], float32\) that the model lacks"),
])
def test_other_models_are_refused_and_nothing_changes(saved, build, error, match):
    path, source, _, prefix = saved
    _dispose(source)
    target = build(prefix)
    opt = tf.train.adam(0.1)
    step_ok = target.layers[-1].units == 2 and target.layers[0].units in (4, 5)
    if step_ok:
        step(target, opt)
    before = state(target, opt)
    with pytest.raises(error, match=match):
        tf.load(path, target, opt)
    assert_same(state(target, opt), before)


def test_a_later_mismatch_leaves_earlier_variables_alone(saved, tmp_path):
    path, source, _, prefix = saved
    with np.load(path) as f:
        data = dict(f)
    data[f"variables/{prefix}_2/bias"] = np.zeros(3, np.float32)    # the last one is wrong
    bad = tmp_path / "bad.npz"
    np.savez(bad, **data)
    for v in source.trainable_variables:
        v.assign(tf.ones_like(v))
    before = state(source)
    with pytest.raises(ValueError, match=r"'ckpt_src\d+_2/bias' has shape \[3\] in .* but \[2\]"):
        tf.load(bad, source)
    assert_same(state(source), before)


def test_bad_optimizer_state_changes_neither_variables_nor_optimizer(saved, tmp_path):
    path, source, opt, prefix = saved
    with np.load(path) as f:
        data = dict(f)
    data[f"optimizer/{prefix}_2/bias/v"] = np.zeros(7, np.float32)
    bad = tmp_path / "bad_opt.npz"
    np.savez(bad, **data)
    for v in source.trainable_variables:
        v.assign(tf.ones_like(v))
    step(source, opt)
    before = state(source, opt)
    with pytest.raises(ValueError, match=r"'ckpt_src\d+_2/bias/v' has shape \[7\] but variable 'ckpt_src\d+_2/bias'"):
        tf.load(bad, source, opt)
    assert_same(state(source, opt), before)


def test_optimizer_kind_and_presence_must_match(saved, tmp_path):
    path, source, _, _ = saved
    before = state(source)
    with pytest.raises(ValueError, match="holds AdamOptimizer state but the optimizer is SGDOptimizer"):
        tf.load(path, source, tf.train.sgd(0.1))
    tf.save(tmp_path / "no_opt.npz", source)
    with pytest.raises(ValueError, match="holds no optimizer state.*without optimizer="):
        tf.load(tmp_path / "no_opt.npz", source, tf.train.adam())
    assert_same(state(source), before)
    tf.load(path, source)    # the weights alone load fine


def test_files_that_are_not_checkpoints(tmp_path, saved):
    _, source, _, _ = saved
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ValueError, match="text.npz is not a gpugrad checkpoint"):
        tf.load(tmp_path / "text.npz", source)
    np.savez(tmp_path / "other.npz", x=np.zeros(2))
    with pytest.raises(ValueError, match="an .npz file but not a gpugrad checkpoint"):
        tf.load(tmp_path / "other.npz", source)
    with pytest.raises(FileNotFoundError):
        tf.load(tmp_path / "missing.npz", source)


def test_bad_arguments(tmp_path):
    w = tf.variable(tf.zeros([2]), name="ckpt_arg")
    with pytest.raises(TypeError, match="expected a model .*got int"):
        tf.save(tmp_path / "x.npz", 3)
    with pytest.raises(TypeError, match="'t' is Tensor, not a variable"):
        tf.save(tmp_path / "x.npz", {"t": tf.zeros([2])})
    with pytest.raises(TypeError, match="optimizer must be a tf.train optimizer"):
        tf.save(tmp_path / "x.npz", [w], "adam")
    w.dispose()
    with pytest.raises(ValueError, match="variable 'ckpt_arg' was disposed"):
        tf.save(tmp_path / "x.npz", [w])
    assert not os.path.exists(tmp_path / "x.npz")


def test_a_failed_save_keeps_the_previous_file(tmp_path, monkeypatch):
    w = tf.variable(tf.tensor1d([1.0, 2.0]), name="ckpt_atomic")
    path = tmp_path / "keep.npz"
    tf.save(path, [w])
    before = path.read_bytes()
    w.assign(tf.tensor1d([5.0, 6.0]))

    def broken(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError, match="disk full"):
        tf.save(path, [w])
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["keep.npz"]
    w.dispose()
