"""Never a silent wrong number: extreme magnitudes, casts that overflow, results that are or are
not representable. Every call returns finite numbers equal to the float64 reference within the
dtype's tolerance, or raises ValueError/TypeError naming the argument."""

import math
import re
import warnings

import numpy as np
import pytest

import pyfeat as pf
from pyfeat import ops

from conftest import CUDA_OK, available_backends

BACKENDS = available_backends()
RTOL = {np.float32: 1e-4, np.float64: 1e-10}


def _network(rng, n, d, m, dtype, sx=1.0, sw=1.0, sb=1.0, sy=1.0):
    X = (rng.standard_normal((n, d)) * sx).astype(dtype)
    W = (rng.standard_normal((m, d)) / math.sqrt(d) * sw).astype(dtype)
    b = (rng.standard_normal(m) * sb).astype(dtype)
    a = rng.choice([-1.0, 1.0], m).astype(dtype)
    y = (rng.standard_normal(n) * sy).astype(dtype)
    return X, y, W, a, b


def _close(got, ref, dtype, what):
    got = np.asarray(got, np.float64)
    assert np.isfinite(got).all(), f"{what}: non-finite result"
    err = np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-300)
    assert err <= RTOL[dtype], f"{what}: relative error {err:.3g}"


# scales (X, W, b, y): products of blocks far outside the dtype's range, results inside it
SCALES = {
    np.float32: [(1e20, 1.0, 1e20, 1.0), (1e-30, 1.0, 1e-30, 1.0), (1e-20, 1e15, 1e-5, 1e25),
                 (1.0, 1e-30, 1e-30, 1e-10), (1e15, 1e15, 1e30, 1e-20)],
    np.float64: [(1e200, 1.0, 1e200, 1.0), (1e-200, 1e-100, 1e-300, 1.0), (1e150, 1e-150, 1.0, 1e100)],
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_network_ops_at_extreme_magnitudes(rng, backend, dtype):
    """The float32 Gram of X·1e20 is ≈ 1e40: representable in its float64 result (it was inf),
    and tiny inputs no longer underflow to a zero Gram (float32 1e-30: products 1e-60)."""
    from pyfeat.ops import _reference

    for sx, sw, sb, sy in SCALES[dtype]:
        X, y, W, a, b = _network(rng, 200, 6, 8, dtype, sx, sw, sb, sy)
        what = f"{np.dtype(dtype).name} X·{sx:g} W·{sw:g} b·{sb:g} y·{sy:g}"
        with np.errstate(over="ignore"):
            Gr, cr = _reference.relu_gram(X, W, b, y, None)
        if np.isfinite(Gr).all() and np.isfinite(cr).all():
            G, c = ops.relu_gram(X, W, b, y, backend=backend, block_size=64)
            _close(G, Gr, dtype, f"relu_gram G, {what}")
            _close(c, cr, dtype, f"relu_gram c, {what}")
        else:  # |Φ|² beyond float64: an error, never inf
            with pytest.raises(ValueError, match="relu_gram: the result is not representable"):
                ops.relu_gram(X, W, b, y, backend=backend, block_size=64)
        ref = _reference.first_step_gradient(X, y, W, a, b, None).astype(np.float64)
        if np.abs(ref).max() < np.finfo(dtype).max / 10:
            _close(ops.first_step_gradient(X, y, W, a, b, backend=backend, block_size=64),
                   _reference_gradient(X, y, W, a, b), dtype, f"first_step_gradient, {what}")
        P = np.maximum(X.astype(np.float64) @ W.astype(np.float64).T + b, 0)
        if P.max() < np.finfo(dtype).max / 10 and np.abs(P @ a).max() < np.finfo(dtype).max / 10:
            _close(ops.relu_features(X, W, b, backend=backend), P, dtype, f"relu_features, {what}")
            _close(ops.relu_predict(X, W, b, a, backend=backend, block_size=64), P @ a, dtype,
                   f"relu_predict, {what}")


def _reference_gradient(X, y, W, a, b):
    X64, W64 = X.astype(np.float64), W.astype(np.float64)
    mask = X64 @ W64.T + b.astype(np.float64) >= 0
    return -2.0 / len(X) * a.astype(np.float64)[:, None] * ((mask * y.astype(np.float64)[:, None]).T @ X64)


@pytest.mark.parametrize("backend", BACKENDS)
def test_results_that_overflow_their_dtype_raise(rng, backend):
    X, y, W, a, b = _network(rng, 50, 4, 6, np.float32, sx=1e20, sw=1e20)  # |x·w| ≈ 1e40
    with pytest.raises(ValueError, match="relu_features: the result is not representable in float32"):
        ops.relu_features(X, W, b, backend=backend)
    with pytest.raises(ValueError, match="relu_predict: the result is not representable"):
        ops.relu_predict(X, W, b, a, backend=backend)
    G, _ = ops.relu_gram(X, W, b, None, backend=backend)  # float64: representable
    assert np.isfinite(G).all() and G.max() > 1e70


@pytest.mark.parametrize("backend", BACKENDS)
def test_inputs_are_cast_before_they_are_checked(rng, backend):
    """A float64 W of 1e39 is inf in the float32 working dtype: reported, not used (it gave a
    gradient 73 % wrong)."""
    X, y, W, a, b = _network(rng, 50, 4, 6, np.float32)
    with pytest.raises(ValueError, match="first_step_gradient: W contains inf"):
        ops.first_step_gradient(X, y, W.astype(np.float64) * 1e39, a, b, backend=backend)
    with pytest.raises(ValueError, match="y contains inf"):
        ops.relu_gram(X, W, b, y.astype(np.float64) * 1e300, backend=backend)


def test_finite_huge_inputs_are_not_reported_as_inf(rng):
    """Two entries of 1e308 make the checking sum overflow; the check then looks closer."""
    X, y, W, a, b = _network(rng, 50, 4, 6, np.float64)
    X[0, 0] = X[1, 0] = 1e308
    G, _ = ops.relu_gram(X, W * 1e-160, b * 1e-160, None)
    assert np.isfinite(G).all()
    X[2, 1] = np.inf
    with pytest.raises(ValueError, match="X contains inf"):
        ops.relu_gram(X, W, b, None)


def test_extended_precision_is_named():
    if np.dtype(np.longdouble).itemsize <= 8:
        pytest.skip("longdouble is float64 here")
    X = np.ones((4, 2), np.longdouble)
    with pytest.raises(TypeError, match="extended precision"):
        ops.relu_gram(X, np.ones((2, 2)), None)


# models ----------------------------------------------------------------------------------------


def _task(n=300, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    return X, np.sin(X[:, 0]) + X[:, 1] * X[:, 2]


@pytest.mark.parametrize("scale", [1e-200, 1e-30, 1e30, 1e160, 1e300])
def test_network_fits_are_equivariant_in_the_labels_scale(scale):
    """Algorithm 1 with the ridge head is linear in y: a fit on y·s predicts s·f (it was a
    ZeroDivisionError at s = 1e160, from ‖∇L‖² overflowing)."""
    X, y = _task()
    ref = pf.TwoLayerReLU(width=32).fit(X, y).predict(X)
    got = pf.TwoLayerReLU(width=32).fit(X, y * scale).predict(X)
    np.testing.assert_allclose(got / scale, ref, rtol=1e-8, atol=1e-10)
    r2 = pf.TwoLayerReLU(width=32).fit(X, y * scale).score(X, y * scale)
    assert np.isfinite(r2) and r2 == pytest.approx(pf.TwoLayerReLU(width=32).fit(X, y).score(X, y), rel=1e-8)


def test_network_fit_raises_instead_of_returning_a_nan_model():
    X, y = _task()
    with pytest.raises(ValueError, match="lower eta1"):
        pf.TwoLayerReLU(width=32, eta1=1e300).fit(X, y)  # it fitted to NaN "successfully"
    with pytest.raises(ValueError, match=r"ridge=1e-300 is too small"):
        pf.RandomFeatures(width=64, ridge=1e-300).fit(X[:10], y[:10])  # a raw LinAlgError before
    # float32 X of norm 1e20: the float64 Gram (≈ 1e40) is right, so the fit is finite; its
    # predictions α + β·x ≈ 1e40 are not representable in float32, which predict says
    X32 = (X * 1e20).astype(np.float32)
    rf = pf.RandomFeatures(width=32).fit(X32, y)
    assert all(np.isfinite(getattr(rf, a)).all() for a in ("a_", "W_", "b_", "beta_"))
    with pytest.raises(ValueError, match="predictions overflow float32"):
        rf.predict(X32)
    assert np.isfinite(rf.predict(X32.astype(np.float64))).all()


def _distance_kernel(name, X, Z, h):
    """rbf/laplace from the differences, in float64 (the test's own formula)."""
    D = ((np.asarray(X, np.float64)[:, None, :] - np.asarray(Z, np.float64)[None]) / h) ** 2
    T = D.sum(-1)
    return np.exp(-T / 2) if name == "rbf" else np.exp(-np.sqrt(T))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["rbf", "laplace"])
def test_distance_kernels_where_inner_products_cannot_resolve_them(name, backend):
    """|x − z|² from inner products is good to ~4·eps·R²: with float32 rows of norm ~400 and
    bandwidth 1e-3 the rbf diagonal came out 0 instead of 1, and rows of norm 1e200 (float64)
    gave NaN (their squared norms overflow) where the kernel is the identity. Such inputs are now
    evaluated from the differences x − z (``KernelSpec.from_differences``): the ops, the matvec
    and KernelRidge equal the differences formula in float64 (to the float32 rounding of the
    output) and the diagonal is exactly 1."""
    rng = np.random.default_rng(0)
    X = 100 * rng.standard_normal((50, 5))
    X[7] = X[3]
    small = pf.kernels.get(name, bandwidth=1e-3)
    X32 = X.astype(np.float32)
    K = pf.ops.kernel_matrix(X32, kernel=small, backend=backend)
    assert K.dtype == np.float32 and np.array_equal(np.diag(K), np.ones(50))
    np.testing.assert_allclose(K, _distance_kernel(name, X32, X32, 1e-3), atol=1e-7)
    V = rng.standard_normal((50, 2)).astype(np.float32)
    np.testing.assert_allclose(pf.ops.kernel_matvec(X32, X32, V, small, backend=backend),
                               _distance_kernel(name, X32, X32, 1e-3) @ V, rtol=1e-6, atol=1e-6)
    huge = pf.ops.kernel_matrix(X * 1e200, kernel=name, backend=backend)
    identity = np.eye(50)
    identity[3, 7] = identity[7, 3] = 1
    assert np.array_equal(huge, identity)
    # at a bandwidth inner products resolve, the GEMM path (within its 1 % of the exponent)
    h = 30.0 if name == "laplace" else 3.0
    np.testing.assert_allclose(pf.ops.kernel_matrix(X32, kernel=pf.kernels.get(name, bandwidth=h), backend=backend),
                               _distance_kernel(name, X32, X32, h), atol=0.011)
    model = pf.KernelRidge(kernel=name, kernel_params={"bandwidth": 1e-3}, ridge=1e-3, backend=backend)
    model.fit(X32, X[:, 0])
    assert model.kernel_.differences
    K64 = _distance_kernel(name, X32, X32, 1e-3)
    expected = K64 @ np.linalg.solve(K64 + 50 * 1e-3 * np.eye(50), X[:, 0])
    np.testing.assert_allclose(model.predict(X32), expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("solver", ["cg", "nystrom", "eigenpro", "richardson", "pcg", "direct"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_singular_systems_raise_or_stay_sane(solver, dtype):
    """ridge = 0 with every row duplicated (K singular, y not in its range): cg predicted values
    up to 6.5e11 and nystrom 18 for |y| ≤ 2.4, each with only a ConvergenceWarning. Now a solver
    either raises a ValueError saying why, or (not converged: a ConvergenceWarning, or converged)
    predicts within 2·max|y| of the minimum-norm interpolant's 1.6 (the margin: eigenpro's and
    richardson's unconverged fits reach 1.55–1.63, the diverging ones 18 and 6.5e11)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((25, 4))
    X, y = np.vstack([X, X]).astype(dtype), rng.standard_normal(50)
    X_test = rng.standard_normal((200, 4)).astype(dtype)
    model = pf.KernelRidge(kernel="ntk", ridge=0.0, solver=solver, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pf.solvers.ConvergenceWarning)
        try:
            model.fit(X, y)
        except ValueError as error:
            assert re.search(r"diverged.*use a larger ridge|needs ridge > 0|not positive definite", str(error))
            return
    assert np.abs(model.predict(X_test)).max() <= 2 * np.abs(y).max()


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradients_when_the_bias_sets_the_block_scale(backend):
    """W ~ 1e-30 against biases ~ 0.1 (float32): the rescaled block X'_b = X_b 2^{e_W − t} with
    t set by the biases underflowed to subnormals, and the first-step gradient Σ y a 1[·] x came
    out 8e-4 wrong (found by tests/test_properties.py). The gradients now take X_b at its own
    scale: within float32 rounding of the float64 reference."""
    rng = np.random.default_rng(0)
    X = (1e-13 * rng.standard_normal((64, 3))).astype(np.float32)
    y = rng.standard_normal(64).astype(np.float32)
    W = (1e-30 * rng.standard_normal((4, 3))).astype(np.float32)
    a, b = np.float32([1, -1, 1, -1]), np.float32([0.1, -0.2, 0.3, 0.05])
    ref = ops.first_step_gradient(X, y, W, a, b, backend="numpy")
    got = ops.first_step_gradient(X, y, W, a, b, backend=backend)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5 * np.abs(ref).max())
    _, gW, _, _ = ops.network_gradient(X, y, W, a, b, backend=backend)
    _, gW_ref, _, _ = ops.network_gradient(X, y, W, a, b, backend="numpy")
    np.testing.assert_allclose(gW, gW_ref, rtol=0, atol=1e-5 * np.abs(gW_ref).max())


def _cosine_reference(name, X):
    """The cosine kernel matrix of X's rows in float64 and its tolerance (2e-3 of |x||z|, or of
    1 for arccos0, plus float32's smallest normal number for subnormal results)."""
    X64 = X.astype(np.float64)
    G, sq = X64 @ X64.T, (X64 * X64).sum(1)
    scale = np.ones_like(G) if name == "arccos0" else np.sqrt(sq[:, None] * sq[None, :])
    return pf.kernels.get(name).from_inner(G, sq[:, None], sq[None, :]), 2e-3 * scale + np.finfo(np.float32).tiny


@pytest.mark.parametrize("name", ["ntk", "nngp", "arccos0"])
@pytest.mark.parametrize("norm", [1e-30, 1e-21, 1e-19, 1e18])
def test_cosine_kernel_ops_on_rows_far_from_unit_norm(name, norm):
    """float32 rows of norm 1e-19 and below made 1/(|x||z|) overflow in the Numba ops (NaN
    kernels, then reported as an overflow) and their squared norms underflow; rows of norm 1e18
    overflow |x|²|z|². The ops now rescale such blocks by a power of two (kernel values scale by
    2^{a+b}): kernel_matrix and kernel_matvec equal the float64 reference (subnormal results to
    float32's smallest normal number)."""
    rng = np.random.default_rng(1)
    X = (norm * rng.standard_normal((6, 3))).astype(np.float32)
    want, tol = _cosine_reference(name, X)
    for backend in ["numba"] + (["cuda"] if CUDA_OK else []):
        K = pf.ops.kernel_matrix(X, kernel=name, backend=backend)
        assert np.all(np.abs(K - want) <= tol), (K, want)
        V = rng.standard_normal((6, 2))
        KV = pf.ops.kernel_matvec(X, X, V, kernel=name, backend=backend)
        assert np.all(np.abs(KV - want @ V) <= tol @ np.abs(V)), (KV, want @ V)


def test_kernel_ridge_where_kernel_values_are_representable_but_their_formula_overflows():
    """KernelRidge checks up front that k(x, x) fits the working dtype, from closed forms: rbf
    on rows of norm 1e200 (the identity) fits, and so does the NTK on float64 rows of norm 1e100
    (k ≈ 1e200; the formula's |x|²|z|² = 1e400 would overflow: both raised); float32 rows of norm
    1e20 (k ≈ 1e40) raise naming the range and float64."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 3)), rng.standard_normal(40)
    huge = pf.KernelRidge(kernel="rbf", ridge=1e-3).fit(X * 1e200, y)
    np.testing.assert_allclose(huge.predict(X * 1e200), y / (1 + 40 * 1e-3), rtol=1e-12)
    big = pf.KernelRidge(kernel="ntk", ridge=1e-3 * 1e200).fit(X * 1e100, y)  # K scales by 1e200
    ref = pf.KernelRidge(kernel="ntk", ridge=1e-3).fit(X, y)
    np.testing.assert_allclose(big.predict(X * 1e100), ref.predict(X), rtol=1e-6, atol=1e-8)
    with pytest.raises(ValueError, match="kernel 'ntk' values reach .* beyond float32's range: rescale X or "
                                         "pass float64 X"):
        pf.KernelRidge(kernel="ntk").fit((X * 1e20).astype(np.float32), y)
    with pytest.raises(ValueError, match="beyond float64's range: rescale X$"):
        pf.KernelRidge(kernel="ntk").fit(X * 1e160, y)


def test_validated_keeps_the_differences_flag():
    kernel = pf.kernels.Kernel("rbf", {}).from_differences()
    assert kernel.validated().differences and kernel.validated().params == {"bandwidth": 1.0}

