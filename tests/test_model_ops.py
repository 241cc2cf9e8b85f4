"""The ops real models need (issue 12): rounding and integer math, logical and reductions over
booleans, top_k, einsum, normalization, activations and seeded random tensors. Forward against
numpy in float64, gradients by check_grads, TF.js's error messages. The new primitives (floor,
ceil, round, mod, floor_div) are also covered by tests/test_primitives.py from their records;
here their integer forms run through the generated CUDA on the CPU."""
from __future__ import annotations

import math

import numpy as np
import pytest

import gpugrad as tf
from gpugrad.testing import check_grads

RNG = np.random.default_rng(12)


def f64(x):
    return tf.tensor(x, dtype="float64")


# --- rounding and integer math ---------------------------------------------------------------------


def test_rounding_as_tfjs(backend):
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, -1.2, 1.7, np.nan, np.inf])
    np.testing.assert_array_equal(tf.round(f64(x)).numpy(), [-2, -2, -0, 0, 2, 2, -1, 2, np.nan, np.inf])
    np.testing.assert_array_equal(tf.floor(f64(x)).numpy(), np.floor(x))
    np.testing.assert_array_equal(tf.ceil(f64(x)).numpy(), np.ceil(x))
    assert tf.floor(tf.tensor([1, 2], dtype="int32")).dtype == "float32"


def test_rounding_gradients_are_zero(backend):
    x = f64([0.3, 1.7, -2.2])
    for op in (tf.floor, tf.ceil, tf.round):
        assert tf.grad(lambda t: op(t).sum())(x).numpy().tolist() == [0, 0, 0]


MOD_CASES = ([7, -7, 7, -7, 6, -6, 0, 5], [3, 3, -3, -3, 3, -3, 4, 1])


def test_mod_takes_the_divisors_sign(backend):
    a, b = MOD_CASES
    want = np.mod(a, b)
    got = tf.mod(tf.tensor(a, dtype="int32"), tf.tensor(b, dtype="int32"))
    assert got.dtype == "int32" and got.numpy().tolist() == want.tolist()
    np.testing.assert_array_equal(tf.mod(f64(a), f64(b)).numpy(), np.mod(np.array(a, float), b))
    np.testing.assert_allclose(tf.mod(f64([5.5, -5.5]), 2).numpy(), [1.5, 0.5])
    assert tf.mod(tf.tensor([5, -5], dtype="int32"), 0).numpy().tolist() == [0, 0]


def test_floor_div_as_tfjs(backend):
    a, b = MOD_CASES
    got = tf.floor_div(tf.tensor(a, dtype="int32"), tf.tensor(b, dtype="int32"))
    assert got.dtype == "int32" and got.numpy().tolist() == np.floor_divide(a, b).tolist()
    # floats: floor(x / y), TF.js's formula (numpy's floor_divide gives 9 for 1 // 0.1)
    assert tf.floor_div(f64([1.0]), f64([0.1])).numpy().tolist() == [10]
    assert tf.floorDiv(tf.tensor([7, -7], dtype="int32"), 0).numpy().tolist() == [0, 0]
    np.testing.assert_array_equal(tf.floor_div(f64([1.0, -1.0, 0.0]), 0.0).numpy(), [np.inf, -np.inf, np.nan])


def test_mod_gradient_as_tfjs(backend):
    x, y = RNG.uniform(-3, 3, (3, 4)), RNG.uniform(0.5, 2, (4,))
    check_grads(tf.mod, [x, y], order=1)
    gx, gy = tf.grads(lambda a, b: tf.mod(a, b).sum())([f64(x), f64(y)])
    np.testing.assert_allclose(gx.numpy(), np.ones_like(x))
    np.testing.assert_allclose(gy.numpy(), -np.floor(x / y).sum(0))
    # floor_div is piecewise constant: zero gradients (TF.js gives div's, see the record)
    g = tf.grads(lambda a, b: tf.floor_div(a, b).sum())([f64(x), f64(y)])
    assert all(not t.numpy().any() for t in g)


def test_integer_mod_and_floor_div_through_generated_cuda(emulated):
    a = np.array([7, -7, 7, -7, 0, 5, -2**31, -2**31, 2**31 - 1, 3], np.int32)
    b = np.array([3, 3, -3, -3, 0, 0, -1, 7, -5, -1], np.int32)
    ta, tb = tf.tensor(a, dtype="int32"), tf.tensor(b, dtype="int32")
    got_mod = tf.mod(ta, tb).numpy()
    want_mod = np.where(b == 0, 0, np.mod(a.astype(np.int64), np.where(b == 0, 1, b)))
    assert got_mod.tolist() == want_mod.tolist()
    keep = ~((a == -2**31) & (b == -1))   # the one quotient int32 cannot hold
    got = tf.floor_div(ta, tb).numpy()[keep]
    want = np.where(b == 0, 0, np.floor_divide(a.astype(np.int64), np.where(b == 0, 1, b)))[keep]
    assert got.tolist() == want.tolist()
    x = np.array([5.5, -5.5, 1.0, 7.0], np.float32)
    y = np.array([2.0, 2.0, 0.1, -2.0], np.float32)
    assert tf.mod(tf.tensor(x), tf.tensor(y)).numpy().tolist() == pytest.approx([1.5, 0.5, 0.1, -1.0], abs=1e-6)
    # float32 0.1 is a little above 0.1, so 1 / 0.1 taken in double is below 10 (as in TF.js)
    assert tf.floor_div(tf.tensor(x), tf.tensor(y)).numpy().tolist() == [2, -3, 9, -4]


# --- elementwise composites ----------------------------------------------------------------------


def test_step(backend):
    x = f64([-1.0, 0.0, 0.5, np.nan, np.inf, -np.inf])
    np.testing.assert_array_equal(tf.step(x).numpy(), [0, 0, 1, np.nan, 1, 0])
    np.testing.assert_array_equal(tf.step(x, 0.25).numpy(), [0.25, 0.25, 1, np.nan, 1, 0.25])
    assert x.step(-1).numpy()[0] == -1
    assert tf.grad(lambda t: tf.step(t).sum())(f64([-1.0, 2.0])).numpy().tolist() == [0, 0]


def test_is_inf_is_nan_is_finite(backend):
    x = f64([1.0, np.inf, -np.inf, np.nan])
    assert tf.is_inf(x).numpy().tolist() == [False, True, True, False]
    assert tf.isInf(x).numpy().tolist() == np.isinf(x.numpy()).tolist()
    assert tf.is_nan(x).numpy().tolist() == [False, False, False, True]
    assert tf.is_finite(x).numpy().tolist() == [True, False, False, False]


def test_logical_xor(backend):
    a, b = tf.tensor([True, True, False, False]), tf.tensor([True, False, True, False])
    assert tf.logical_xor(a, b).numpy().tolist() == [False, True, True, False]
    assert tf.logicalXor(tf.tensor([[1], [0]]), tf.tensor([1, 0])).numpy().tolist() == [[False, True], [True, False]]


def test_div_no_nan(backend):
    a, b = f64([1.0, 0.0, 3.0, -2.0]), f64([0.0, 0.0, 2.0, 4.0])
    assert tf.div_no_nan(a, b).numpy().tolist() == [0, 0, 1.5, -0.5]
    ga, gb = tf.grads(lambda x, y: tf.div_no_nan(x, y).sum())([a, b])
    assert np.isfinite(ga.numpy()).all() and np.isfinite(gb.numpy()).all()
    assert ga.numpy().tolist() == [0, 0, 0.5, 0.25]
    check_grads(tf.div_no_nan, [RNG.normal(size=(3,)), RNG.uniform(0.5, 2, (3,))], order=2)


def test_add_n(backend):
    xs = [RNG.normal(size=(2, 3)) for _ in range(3)]
    np.testing.assert_allclose(tf.add_n([f64(x) for x in xs]).numpy(), sum(xs))
    assert tf.addN([tf.tensor([1, 2], dtype="int32")]).numpy().tolist() == [1, 2]
    check_grads(lambda a, b, c: tf.add_n([a, b, c]), xs, order=2)
    with pytest.raises(TypeError, match=r"The argument passed to tf.addN\(\) must be a list of tensors"):
        tf.add_n(f64([1.0]))
    with pytest.raises(ValueError, match=r"Must pass at least one tensor to tf.addN\(\), but got 0"):
        tf.add_n([])
    with pytest.raises(ValueError, match=r"must have the same dtype"):
        tf.add_n([tf.tensor([1.0]), tf.tensor([1], dtype="int32")])
    with pytest.raises(ValueError, match=r"must have the same shape"):
        tf.add_n([tf.tensor([1.0]), tf.tensor([1.0, 2.0])])


# --- any, all, top_k -------------------------------------------------------------------------------


def test_any_all(backend):
    x = np.array([[0, 1, 0], [0, 0, 0]])
    assert tf.any(x).item() is True and tf.all(x).item() is False
    assert tf.any(x, 1).numpy().tolist() == [True, False]
    assert tf.all(np.array([[1, 1], [0, 1]]), 0, True).numpy().tolist() == [[False, True]]
    assert tf.tensor([True, True]).all().item() is True
    assert tf.any(tf.zeros([0])).item() is False and tf.all(tf.zeros([0])).item() is True
    with pytest.raises(ValueError, match=r"must be in range \[-2, 2\) but got axis 2"):
        tf.any(x, 2)


def test_top_k_values_and_indices(backend):
    x = RNG.normal(size=(3, 7))
    x[0, 2] = x[0, 5]   # a tie: the lower index first
    values, indices = tf.top_k(f64(x), 4)
    order = np.argsort(-x, axis=-1, kind="stable")[:, :4]
    assert indices.dtype == "int32" and indices.numpy().tolist() == order.tolist()
    np.testing.assert_array_equal(values.numpy(), np.take_along_axis(x, order, -1))
    r = tf.topk(tf.tensor([[1, 5], [4, 3]], dtype="int32"))
    assert r.values.numpy().tolist() == [[5], [4]] and r.indices.numpy().tolist() == [[1], [0]]
    assert r.values.dtype == "int32"
    assert tf.top_k(f64([1.0, np.nan, 3.0]), 2).indices.numpy().tolist() == [1, 2]
    assert tf.top_k(f64([3.0, 1.0]), 0).values.shape == (0,)


def test_top_k_gradient(backend):
    x = RNG.normal(size=(2, 5))
    check_grads(lambda t: tf.top_k(t, 3).values, [x], order=2)
    g = tf.grad(lambda t: (tf.top_k(t, 2).values * f64([1.0, 10.0])).sum())(f64([1.0, 5.0, 3.0, 4.0]))
    assert g.numpy().tolist() == [0, 1, 0, 10]


def _expected_top_k(x, k):
    """numpy's order: NaN first (as the largest), then descending, ties to the lower index."""
    key = np.where(np.isnan(x), np.inf, x) if x.dtype.kind == "f" else x
    nan_first = np.isnan(x) if x.dtype.kind == "f" else np.zeros(x.shape, bool)
    order = np.lexsort((np.arange(x.shape[-1]) + np.zeros(x.shape, int), -key.astype(np.float64), ~nan_first),
                       axis=-1)[..., :k]
    return np.take_along_axis(x, order, -1), order


@pytest.mark.parametrize("n,k", [(7, 4), (40, 3), (40, 10), (12, 3), (12, 12)])
def test_top_k_rounds_and_ranks_agree_on_hostile_rows(backend, n, k):
    """Both compositions (rounds of argmax for small k, ranks otherwise) on rows with ties,
    NaNs, infinities and more -inf entries than the row has others (a taken -inf must not be
    picked twice); int32 rows holding INT32_MIN, the rounds' own stand-in for 'taken'."""
    x = RNG.normal(size=(4, n)).round(1)
    x[0, : n // 2] = -np.inf
    x[1, 1::3] = np.nan
    x[2, ::2] = np.inf
    x[3] = 0.5
    values, indices = tf.top_k(f64(x), k)
    want_v, want_i = _expected_top_k(x, k)
    assert indices.numpy().tolist() == want_i.tolist()
    np.testing.assert_array_equal(values.numpy(), want_v)
    xi = RNG.integers(-3, 3, size=(3, n)).astype(np.int32)
    xi[0, ::2] = np.iinfo(np.int32).min
    xi[1] = np.iinfo(np.int32).min
    values, indices = tf.top_k(tf.tensor(xi, dtype="int32"), k)
    want_v, want_i = _expected_top_k(xi, k)
    assert indices.numpy().tolist() == want_i.tolist() and values.dtype == "int32"
    np.testing.assert_array_equal(values.numpy(), want_v)


def test_top_k_of_a_few_takes_rounds_not_an_n_by_n_comparison(backend):
    from gpugrad.compile.schedule import build_plan, structure
    x = f64(RNG.normal(size=(2, 300)))
    values, _ = tf.top_k(x, 5)
    out = [values._node()]
    _, _, nodes = structure(out)
    assert max(math.prod(node.shape) for node in nodes) < 2 * 300 * 300 / 10
    check_grads(lambda t: tf.top_k(t, 3).values, [RNG.normal(size=(2, 13))], order=2)
    assert len(build_plan(out, nodes).groups) >= 5


def test_top_k_errors():
    with pytest.raises(ValueError, match=r"topk\(\) expects the input to be of rank 1 or higher"):
        tf.top_k(tf.scalar(1.0))
    with pytest.raises(ValueError, match=r"'k' passed to topk\(\) must be >= 0 but got -1"):
        tf.top_k(tf.tensor([1.0, 2.0]), -1)
    with pytest.raises(ValueError, match=r"'k' passed to topk\(\) must be <= the last dimension \(2\) but got 3"):
        tf.top_k(tf.tensor([1.0, 2.0]), 3)


# --- einsum ---------------------------------------------------------------------------------------

EINSUMS = [("ij,jk->ik", [(2, 3), (3, 4)]), ("bij,bjk->bik", [(2, 2, 3), (2, 3, 4)]),
           ("i,i->", [(3,), (3,)]), ("ij->ji", [(2, 3)]), ("ij,j->i", [(2, 3), (3,)]),
           ("i,j->ij", [(2,), (3,)]), ("bij,bkj->bki", [(2, 2, 3), (2, 4, 3)]),
           ("ijk->", [(2, 3, 2)]), ("ij,jk,kl->il", [(2, 3), (3, 2), (2, 2)]),
           ("ij,ik->j", [(2, 3), (2, 4)]), ("bi,bi->b", [(2, 3), (2, 3)])]


@pytest.mark.parametrize("equation,shapes", EINSUMS, ids=[e for e, _ in EINSUMS])
def test_einsum_forward(backend, equation, shapes):
    xs = [RNG.normal(size=s) for s in shapes]
    np.testing.assert_allclose(tf.einsum(equation, *[f64(x) for x in xs]).numpy(),
                               np.einsum(equation, *xs), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("equation,shapes", EINSUMS[:6], ids=[e for e, _ in EINSUMS[:6]])
def test_einsum_gradients(backend, equation, shapes):
    check_grads(lambda *ts: tf.einsum(equation, *ts), [RNG.normal(size=s) for s in shapes], order=2)


def test_einsum_integers_and_errors():
    a, b = tf.tensor([[1, 2]], dtype="int32"), tf.tensor([[3], [4]], dtype="int32")
    out = tf.einsum("ij,jk->ik", a, b)
    assert out.dtype == "int32" and out.numpy().tolist() == [[11]]
    x = tf.ones([2, 3])
    with pytest.raises(ValueError, match="Equations without an arrow is not supported"):
        tf.einsum("ij,jk", x, x)
    with pytest.raises(ValueError, match="Expected 2 input tensors, received 1"):
        tf.einsum("ij,jk->ik", x)
    with pytest.raises(ValueError, match="Output subscripts contain the label z not present"):
        tf.einsum("ij->iz", x)
    with pytest.raises(ValueError, match="Found duplicate axes in input component ii"):
        tf.einsum("ii->i", tf.ones([2, 2]))
    with pytest.raises(ValueError, match=r"Expected dimension 3 at axis 0 of input shaped \[2,3\], but got dimension 2"):
        tf.einsum("ij,jk->ik", x, x)
    with pytest.raises(ValueError, match="name 3 axes"):
        tf.einsum("ijk->i", x)


# --- normalization --------------------------------------------------------------------------------


def test_moments(backend):
    x = RNG.normal(size=(4, 3, 2))
    m, v = tf.moments(f64(x), [0, 2])
    np.testing.assert_allclose(m.numpy(), x.mean((0, 2)), rtol=1e-12)
    np.testing.assert_allclose(v.numpy(), x.var((0, 2)), rtol=1e-12)
    r = tf.moments(f64(x), keep_dims=True)
    assert r.mean.shape == r.variance.shape == (1, 1, 1)
    np.testing.assert_allclose(r.variance.numpy().item(), x.var(), rtol=1e-12)
    assert tf.moments(tf.tensor([1, 2, 3, 4], dtype="int32")).variance.item() == pytest.approx(1.25)
    check_grads(lambda t: tf.moments(t, 0).variance, [x[:, :, 0]], order=2)


def _batch_norm_ref(x, mean, var, offset, scale, eps):
    return (x - mean) / np.sqrt(var + eps) * scale + offset


def test_batch_norm(backend):
    x = RNG.normal(size=(5, 3))
    mean, var = RNG.normal(size=3), RNG.uniform(0.5, 2, 3)
    offset, scale = RNG.normal(size=3), RNG.normal(size=3)
    got = tf.batch_norm(f64(x), f64(mean), f64(var), f64(offset), f64(scale), 0.01)
    np.testing.assert_allclose(got.numpy(), _batch_norm_ref(x, mean, var, offset, scale, 0.01), rtol=1e-12)
    got = tf.batchNorm(f64(x), f64(mean), f64(var))   # no offset or scale; epsilon 0.001
    np.testing.assert_allclose(got.numpy(), _batch_norm_ref(x, mean, var, 0, 1, 0.001), rtol=1e-12)
    check_grads(lambda *ts: tf.batch_norm(*ts), [x, mean, var, offset, scale], order=2)
    with pytest.raises(ValueError, match="requires mean and variance to have equal ranks"):
        tf.batch_norm(x, mean, var.reshape(1, 3))
    with pytest.raises(ValueError, match="requires mean and scale to have equal ranks"):
        tf.batch_norm(x, mean, var, offset, scale.reshape(1, 3))
    with pytest.raises(ValueError, match="requires mean and offset to have equal ranks"):
        tf.batch_norm(x, mean, var, offset.reshape(1, 3))


def test_layer_norm(backend):
    x = RNG.normal(size=(4, 6))
    gamma, beta = RNG.normal(size=6), RNG.normal(size=6)
    want = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-3) * gamma + beta
    np.testing.assert_allclose(tf.layer_norm(f64(x), gamma=f64(gamma), beta=f64(beta)).numpy(), want, rtol=1e-12)
    want = (x - x.mean()) / np.sqrt(x.var() + 1e-5)
    np.testing.assert_allclose(tf.layer_norm(f64(x), [0, 1], 1e-5).numpy(), want, rtol=1e-12)
    check_grads(lambda t, g, b: tf.layer_norm(t, gamma=g, beta=b), [x, gamma, beta], order=2)


# --- activations -----------------------------------------------------------------------------------


def test_prelu(backend):
    x, alpha = RNG.normal(size=(3, 4)), RNG.uniform(0.1, 0.5, 4)
    np.testing.assert_allclose(tf.prelu(f64(x), f64(alpha)).numpy(), np.where(x > 0, x, alpha * x))
    check_grads(tf.prelu, [x, alpha], order=2)
    gx, ga = tf.grads(lambda a, b: tf.prelu(a, b).sum())([f64([0.0, 2.0]), f64([0.5, 0.5])])
    assert gx.numpy().tolist() == [0.5, 1] and ga.numpy().tolist() == [0, 0]   # at 0: alpha's side


def test_selu(backend):
    x = RNG.normal(size=(3, 4))
    scale, alpha = 1.0507009873554805, 1.6732632423543772
    np.testing.assert_allclose(tf.selu(f64(x)).numpy(), np.where(x > 0, scale * x, scale * alpha * np.expm1(x)),
                               rtol=1e-12)
    check_grads(tf.selu, [x], order=2)


def test_gelu_exact_by_default_and_tanh_by_flag(backend):
    x = RNG.normal(size=(3, 4)) * 2
    exact = 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
    tanh = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    np.testing.assert_allclose(tf.gelu(f64(x)).numpy(), exact, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(f64(x).gelu(approximate=True).numpy(), tanh, rtol=1e-12, atol=1e-15)
    check_grads(tf.gelu, [x], order=2)
    check_grads(lambda t: tf.gelu(t, approximate=True), [x], order=2)


# --- random ---------------------------------------------------------------------------------------


def test_truncated_normal():
    t = tf.truncated_normal([20000], 1.0, 2.0, seed=3)
    values = t.numpy()
    assert t.dtype == "float32" and values.min() >= -3 and values.max() <= 5
    assert abs(values.mean() - 1) < 0.05
    assert (np.abs(values - 1) > 3.5).any()    # not clipped: resampled up to 2 stddev
    assert np.array_equal(tf.truncatedNormal([5], seed=1).numpy(), tf.truncated_normal([5], seed=1).numpy())
    assert tf.truncated_normal([2, 2], dtype="float64", seed=0).dtype == "float64"
    as_float = tf.truncated_normal([50], 0, 3, "float64", seed=4).numpy()
    as_int = tf.truncated_normal([50], 0, 3, "int32", seed=4).numpy()
    assert as_int.tolist() == np.floor(as_float + 0.5).astype(int).tolist()   # Math.round, as TF.js
    with pytest.raises(ValueError, match="Unsupported data type bool"):
        tf.truncated_normal([2], dtype="bool")


def test_random_standard_normal_and_uniform_int():
    a = tf.random_standard_normal([1000], seed=5).numpy()
    assert np.array_equal(a, tf.random_normal([1000], seed=5).numpy())
    r = tf.random_uniform_int([4000], -2, 3, seed=7)
    assert r.dtype == "int32" and sorted(set(r.numpy().tolist())) == [-2, -1, 0, 1, 2]
    assert np.array_equal(tf.randomUniformInt([10], 0, 10, 1).numpy(), r_again := tf.random_uniform_int([10], 0, 10, 1).numpy())
    assert r_again.shape == (10,)
    with pytest.raises(ValueError, match="must be greater than minval"):
        tf.random_uniform_int([2], 3, 3)


def test_multinomial():
    logits = tf.tensor([[0.0, 0.0, math.log(2)], [0.0, -1e4, 0.0]])
    draws = tf.multinomial(logits, 20000, seed=0)
    assert draws.dtype == "int32" and draws.shape == (2, 20000)
    counts = [np.bincount(row, minlength=3) / 20000 for row in draws.numpy()]
    np.testing.assert_allclose(counts[0], [0.25, 0.25, 0.5], atol=0.02)
    assert counts[1][1] == 0
    probs = tf.multinomial([0.75, 0.25], 10000, seed=1, normalized=True)
    assert probs.shape == (10000,) and abs(probs.numpy().mean() - 0.25) < 0.02
    assert np.array_equal(tf.multinomial([0.0, 1.0], 8, 3).numpy(), tf.multinomial([0.0, 1.0], 8, 3).numpy())
    with pytest.raises(ValueError, match="you need at least 2 outcomes, but got 1"):
        tf.multinomial([1.0], 2)
    with pytest.raises(ValueError, match="Rank of probabilities must be 1 or 2, but is 3"):
        tf.multinomial(tf.ones([2, 2, 2]), 2)


def test_random_values_are_the_hosts_on_every_backend(backend):
    # drawn by numpy's Generator on the host, then uploaded: the same for a seed everywhere
    assert tf.random_uniform_int([7], 0, 100, seed=2).numpy().tolist() == \
        np.random.default_rng(2).integers(0, 100, 7).tolist()
    want = np.random.default_rng(2).standard_normal(7)
    np.testing.assert_allclose(tf.random_standard_normal([7], "float64", 2).numpy(), want)
    np.testing.assert_allclose(tf.truncated_normal([7], 0, 1, "float64", 2).numpy(),
                               tf.truncated_normal([7], 0, 1, "float64", 2).numpy())


def test_top_k_both_compositions_run_as_generated_cuda(emulated):
    """The rounds (argmax over bools and values, any, concat) and the ranks, as the generated
    kernels run them on the CPU with the race and bounds checker."""
    x = RNG.normal(size=(3, 24)).round(1)
    x[0, :20] = -np.inf
    x[1, 3] = np.nan
    for k in (3, 24):
        values, indices = tf.top_k(f64(x), k)
        want_v, want_i = _expected_top_k(x, k)
        assert indices.numpy().tolist() == want_i.tolist()
        np.testing.assert_array_equal(values.numpy(), want_v)
    g = tf.grad(lambda t: (tf.top_k(t, 2).values * f64([1.0, 10.0])).sum())(f64([1.0, 5.0, 3.0, 4.0, 0.0, 2.0, 9.0, 8.0]))
    assert g.numpy().tolist() == [0, 0, 0, 0, 0, 0, 1, 10]
