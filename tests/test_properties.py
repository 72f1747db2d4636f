"""Property-based checks of the contract (hypothesis, derandomized so every run draws the same
cases): on random shapes, dtypes, layouts, magnitudes from 1e-30 to 1e30 and degenerate rows,
every public op, task and model returns finite numbers equal to the float64 reference within
the dtype's tolerance, or raises ValueError/TypeError — never NaN/inf without an error, never
another exception type."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import pyfeat as pf
from pyfeat import ops

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
RTOL = {np.float32: 2e-4, np.float64: 1e-9}
DTYPES = st.sampled_from([np.float32, np.float64])
BACKENDS = st.sampled_from(["numba", "numpy"])


@st.composite
def arrays(draw, shape, dtype, lo=-30, hi=30):
    """Gaussian entries times 10^k (k drawn in [lo, hi]), some rows zero, repeated, or of
    another magnitude 10^k' (every other row), in a C, Fortran or strided layout."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    A = rng.standard_normal(shape) * 10.0 ** draw(st.integers(lo, hi))
    if A.ndim == 2 and shape[0] > 1:
        kind = draw(st.sampled_from(["none", "zero", "repeat", "mixed"]))
        if kind == "zero":
            A[0] = 0
        elif kind == "repeat":
            A[-1] = A[0]
        elif kind == "mixed":
            A[::2] = rng.standard_normal(A[::2].shape) * 10.0 ** draw(st.integers(lo, hi))
    A = A.astype(dtype)
    layout = draw(st.sampled_from(["C", "F", "strided"])) if A.ndim == 2 else "C"
    if layout == "F":
        A = np.asfortranarray(A)
    elif layout == "strided":
        wide = np.zeros((A.shape[0], 2 * A.shape[1]), dtype)
        wide[:, ::2] = A
        A = wide[:, ::2]
    return A


@st.composite
def networks(draw):
    dtype = draw(DTYPES)
    n, d, m = draw(st.integers(1, 40)), draw(st.integers(1, 6)), draw(st.sampled_from([2, 4, 8]))
    X = draw(arrays((n, d), dtype))
    W = draw(arrays((m, d), dtype))
    b = draw(arrays((m,), dtype))
    y = draw(arrays((n,), dtype))
    a = np.where(np.arange(m) % 2, 1.0, -1.0).astype(dtype)
    return dtype, X, y, W, a, b


def _f64(*arrays):
    return [np.asarray(A, np.float64) for A in arrays]


def _agrees(got, ref, dtype, scale):
    """got finite and within the dtype's tolerance of the float64 reference (relative to the
    natural scale of the entries; results below the smallest normal number of their dtype are
    subnormal, with an absolute precision of that number)."""
    tiny = np.finfo(np.asarray(got).dtype).tiny
    got = np.asarray(got, np.float64)
    assert np.isfinite(got).all()
    assert np.abs(got - ref).max() <= RTOL[dtype] * scale + tiny


def _representable(ref, dtype):
    return np.isfinite(ref).all() and np.abs(ref).max() < np.finfo(dtype).max / 4


def _call(fn):
    """fn() or None when it raised ValueError/TypeError (any other exception fails the test)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # no overflow warnings escape the ops
            return fn()
    except (ValueError, TypeError):
        return None


@SETTINGS
@given(networks(), BACKENDS)
def test_relu_ops_finite_and_right_or_an_error(net, backend):
    dtype, X, y, W, a, b = net
    X64, y64, W64, a64, b64 = _f64(X, y, W, a, b)
    with np.errstate(over="ignore", invalid="ignore"):
        P = np.maximum(X64 @ W64.T + b64, 0)
        G, c, f = P.T @ P, P.T @ y64, P @ a64
    for got, ref, out_dtype, scale in [
        (lambda: ops.relu_gram(X, W, b, y, backend=backend)[0], G, np.float64, np.abs(G).max()),
        (lambda: ops.relu_gram(X, W, b, y, backend=backend)[1], c, np.float64, (np.abs(P).T @ np.abs(y64)).max()),
        (lambda: ops.relu_predict(X, W, b, a, backend=backend), f, dtype, (P @ np.abs(a64)).max()),
        (lambda: ops.relu_features(X, W, b, backend=backend), P, dtype, np.abs(P).max()),
    ]:
        result = _call(got)
        if _representable(ref, out_dtype) and _representable(P, dtype):
            assert result is not None, "a representable result raised"
            _agrees(result, ref, dtype, scale)
        elif result is not None:  # not representable: it must not come back as inf/NaN
            assert np.isfinite(np.asarray(result, np.float64)).all()


@SETTINGS
@given(networks(), BACKENDS)
def test_first_step_gradient_finite_and_right_or_an_error(net, backend):
    dtype, X, y, W, a, b = net
    X64, y64, W64, a64, b64 = _f64(X, y, W, a, b)
    with np.errstate(over="ignore", invalid="ignore"):
        Z = X64 @ W64.T + b64
        # a pre-activation within rounding of 0 may take either side of the mask in float32
        tie = np.abs(Z) <= 1e-5 * (np.abs(X64) @ np.abs(W64).T + np.abs(b64))
        ref = -2.0 / len(X) * a64[:, None] * (((Z >= 0) * y64[:, None]).T @ X64)
        scale = 2.0 / len(X) * (np.abs(y64) @ np.abs(X64)).max()
    assume(dtype == np.float64 or not tie.any())
    result = _call(lambda: ops.first_step_gradient(X, y, W, a, b, backend=backend))
    if _representable(ref, dtype) and np.isfinite(scale):
        assert result is not None
        _agrees(result, ref, dtype, scale)
    elif result is not None:
        assert np.isfinite(np.asarray(result, np.float64)).all()


# tasks ----------------------------------------------------------------------------------------


@SETTINGS
@given(st.integers(-3, 40), st.integers(-2, 6), st.integers(-1, 5), st.integers(0, 2**31), DTYPES)
def test_tasks_sample_finite_data_or_raise(d, r, degree, seed, dtype):
    for make in (lambda: pf.tasks.MultiIndex(d, r, degree, seed=seed),
                 lambda: pf.tasks.LowRankPolynomial(d, r, degree, seed=seed),
                 lambda: pf.tasks.SingleIndex(d, k=degree, beta=0.5, seed=seed)):
        task = _call(make)
        if task is None:
            continue
        X, y = task.sample(64, seed=seed % 1000, dtype=dtype)
        assert X.dtype == dtype and np.isfinite(X).all() and np.isfinite(y).all()
        assert np.isfinite(task.mean) and task.variance >= 0


# models ---------------------------------------------------------------------------------------


@st.composite
def regression(draw):
    dtype = draw(DTYPES)
    n, d = draw(st.integers(2, 60)), draw(st.integers(1, 5))
    X = draw(arrays((n, d), dtype, -20, 20))
    y = draw(arrays((n,), np.float64, -20, 20))
    return X, y


MODELS = [
    lambda: pf.TwoLayerReLU(width=8),
    lambda: pf.RandomFeatures(width=8),
    lambda: pf.TwoLayerReLU(width=8, head="gd", steps=5),
    lambda: pf.KernelRidge(ridge=1e-3, solver="direct"),
]


@SETTINGS
@given(regression(), st.sampled_from(range(len(MODELS))))
def test_models_predict_finite_or_raise(data, which):
    X, y = data
    model = _call(lambda: MODELS[which]().fit(X, y))
    if model is None:
        return
    pred = _call(lambda: model.predict(X))
    if pred is not None:
        assert np.isfinite(pred).all()
        assert pred.shape == y.shape


# kernel ops -----------------------------------------------------------------------------------

KERNEL_NAMES = ["ntk", "nngp", "arccos0", "rbf", "laplace", "poly"]


@st.composite
def kernel_problems(draw):
    """(dtype, kernel, X, Z, V): magnitudes 1e-30 … 1e30 (X and Z their own), degenerate rows,
    layouts; a cosine kernel with bias 0 or 10^k, a distance kernel with bandwidth 10^k."""
    dtype = draw(DTYPES)
    nx, nz, d = draw(st.integers(1, 30)), draw(st.integers(1, 30)), draw(st.integers(1, 6))
    name = draw(st.sampled_from(KERNEL_NAMES))
    if name in ("rbf", "laplace"):
        params = {"bandwidth": 10.0 ** draw(st.integers(-3, 3))}
    elif name == "poly":
        params = {"degree": draw(st.integers(1, 3))}
    else:
        params = {"bias": draw(st.sampled_from([0.0, 1.0, 1e-3, 1e3]))}
    X = draw(arrays((nx, d), dtype))
    Z = draw(st.one_of(st.just(None), arrays((nz, d), dtype)))
    V = draw(arrays((nx if Z is None else nz, draw(st.integers(1, 3))), dtype, -10, 10))
    return dtype, pf.kernels.get(name, **params), X, X if Z is None else Z, V


def _kernel64(kernel, X, Z):
    """The kernel matrix in float64 from the test's own forms: the distance kernels from the
    differences, the others from the table's formula on float64 inner products; and the scale
    its entries are good to (|(x, β)||(z, β)| for ntk/nngp, (γ|x||z| + c)^p for poly, 1 for
    arccos0 and the distance kernels)."""
    X64, Z64 = _f64(X, Z)
    sx, sz = (X64 * X64).sum(1)[:, None], (Z64 * Z64).sum(1)[None, :]
    if kernel.name in ("rbf", "laplace"):
        T = (((X64[:, None, :] - Z64[None]) / kernel.params["bandwidth"]) ** 2).sum(-1)
        return (np.exp(-T / 2) if kernel.name == "rbf" else np.exp(-np.sqrt(T))), np.ones((len(X), len(Z)))
    with np.errstate(over="ignore", invalid="ignore"):
        K = kernel.from_inner(X64 @ Z64.T, sx, sz)
        if kernel.name == "poly":
            scale = (np.abs(kernel.params["gamma"]) * np.sqrt(sx * sz) + abs(kernel.params["coef0"])) ** kernel.params["degree"]
        elif kernel.name == "arccos0":  # a function of the angle only
            scale = np.ones_like(K)
        else:
            b2 = kernel.bias ** 2
            scale = np.sqrt((sx + b2) * (sz + b2))
    return K, scale


# float32 cosine kernels near cos t = ±1 are good to ~sqrt(eps) of their scale (the arccos);
# the distance kernels to 1 % of their exponent (``pyfeat.ops._validate.RESOLUTION``); results
# below the dtype's smallest normal number to that number (subnormal)
KERNEL_TOL = {np.float32: 2e-3, np.float64: 1e-6}


@SETTINGS
@given(kernel_problems(), BACKENDS)
def test_kernel_ops_finite_and_right_or_an_error(problem, backend):
    dtype, kernel, X, Z, V = problem
    K, scale = _kernel64(kernel, X, Z)
    tol = 0.011 if kernel.name in ("rbf", "laplace") else KERNEL_TOL[dtype]
    V64 = np.asarray(V, np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        KV, KV_scale = K @ V64, scale @ np.abs(V64)
    for call, ref, err in [
        (lambda: ops.kernel_matrix(X, Z, kernel, backend=backend), K,
         lambda got: np.abs(got - K) <= tol * scale + np.finfo(dtype).tiny),
        (lambda: ops.kernel_matvec(X, Z, V, kernel, backend=backend), KV,
         lambda got: np.abs(got - KV) <= tol * KV_scale + np.finfo(dtype).tiny),
    ]:
        result = _call(call)
        if _representable(ref, dtype) and _representable(scale, dtype):
            assert result is not None, "a representable kernel raised"
            got = np.asarray(result, np.float64)
            assert np.isfinite(got).all() and err(got).all()
        elif result is not None:
            assert np.isfinite(np.asarray(result, np.float64)).all()


# solvers --------------------------------------------------------------------------------------


@SETTINGS
@given(regression(), st.sampled_from(["direct", "cg", "pcg", "eigenpro", "nystrom", "richardson"]),
       st.sampled_from([0.0, 1e-8, 1e-3, 1.0]), st.sampled_from(["ntk", "rbf"]))
def test_kernel_ridge_solvers_finite_and_bounded_or_an_error(data, solver, ridge, kernel):
    """Every solver's fit either raises ValueError/TypeError or predicts finite values; when it
    reports convergence its training predictions f = Kα obey ‖f‖ ≤ ‖y‖ (K(K + nλI)⁻¹ and
    Nyström's hat matrix have eigenvalues in [0, 1]; the margin: tol 1e-6 of the solvers, float32
    kernel rounding and the 1 % of a distance kernel's exponent)."""
    X, y = data
    model = pf.KernelRidge(kernel=kernel, ridge=ridge, solver=solver, max_iter=200, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pf.solvers.ConvergenceWarning)
        model = _call(lambda: model.fit(X, y))
    if model is None:
        return
    pred = _call(lambda: model.predict(X))
    if pred is None:
        return
    assert np.isfinite(pred).all() and pred.shape == y.shape
    if model.converged_ and ridge > 0:
        assert np.linalg.norm(pred) <= 1.02 * np.linalg.norm(y) + 1e-300
