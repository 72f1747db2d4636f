"""Every op against an independent float64 NumPy formula, on every backend and dtype.

Tolerances are relative to the size of the reference (max-abs for matrices, 2-norm for vectors):
float64 1e-10; float32 1e-4 (one float32 GEMM of length d plus float64 accumulation over n gives
~1e-6; the arccos-based kernels lose more near cos = ±1, see test_kernel_self_pairs).
"""

import functools
import math

import numpy as np
import pytest

import pyfeat as pf
from pyfeat import ops

from conftest import CUDA_OK, available_backends

BACKENDS = available_backends()
DTYPES = [np.float32, np.float64]
RTOL = {np.float32: 1e-4, np.float64: 1e-10}
RTOL_ANGLE_DEGENERATE = {np.float32: 3e-3, np.float64: 1e-7}  # ~ sqrt(eps) near cos t = ±1
KERNELS = [
    ("ntk", {}),
    ("nngp", {}),
    ("arccos1", {}),
    ("arccos0", {}),
    ("ntk", {"bias": 0.8}),
    ("nngp", {"bias": 1.5}),
    ("arccos0", {"bias": 0.3}),
    ("rbf", {"bandwidth": 2.0}),
    ("laplace", {"bandwidth": 3.0}),
    ("poly", {"degree": 3, "gamma": 0.5, "coef0": 1.0}),
]


def to_numpy(x):
    return x.get() if hasattr(x, "get") else np.asarray(x)


def assert_close(got, ref, dtype, what="", scale=None):
    """max |got - ref| <= RTOL * scale, scale = max |ref| unless given (the natural size of
    the entries, where ref itself can vanish by cancellation)."""
    got = to_numpy(got).astype(np.float64)
    scale = max(np.abs(ref).max() if scale is None else scale, 1e-300)
    err = np.abs(got - ref).max() / scale
    assert err <= RTOL[dtype], f"{what}: relative error {err:.3g} > {RTOL[dtype]:g}"


def network(rng, n, d, m, dtype):
    X = rng.standard_normal((n, d)).astype(dtype)
    y = rng.standard_normal(n).astype(dtype)
    W = (rng.standard_normal((m, d)) / math.sqrt(d)).astype(dtype)
    a = rng.choice([-1.0, 1.0], m).astype(dtype)
    b = rng.standard_normal(m).astype(dtype)
    return X, y, W, a, b


# independent float64 formulas -------------------------------------------------------------


def ref_preact(X, W, b):
    return X.astype(np.float64) @ W.astype(np.float64).T + b.astype(np.float64)


def ref_gradient(X, y, W, a, b):
    """∇_W of (1/n) Σ (aᵀσ(Wx_i+b) − y_i)² at f ≡ 0: −(2/n) Σ_i y_i a_j 1[w_j·x_i+b_j ≥ 0] x_i."""
    n = X.shape[0]
    mask = ref_preact(X, W, b) >= 0
    return -2.0 / n * a.astype(np.float64)[:, None] * ((mask * y.astype(np.float64)[:, None]).T @ X.astype(np.float64))


def _with_bias(X, Z, params):
    """(x, β) and (z, β): a cosine kernel with ``bias`` β is the bias-free one of these."""
    b = params.get("bias", 0.0)
    if not b:
        return X, Z
    return (np.hstack([A.astype(np.float64), np.full((A.shape[0], 1), b)]) for A in (X, Z))


def kernel_scale(X, Z, name, params):
    """Natural size of the entries of K(X, Z): |x||z| for the dot-product kernels (their
    value can cancel to 0 at angle pi), 1 for the bounded ones."""
    X, Z = _with_bias(X, Z, params)
    nx = np.linalg.norm(X.astype(np.float64), axis=1)[:, None]
    nz = np.linalg.norm(Z.astype(np.float64), axis=1)[None, :]
    if name in ("ntk", "nngp", "arccos1"):
        return nx * nz
    if name == "poly":
        return (abs(params["gamma"]) * nx * nz + abs(params["coef0"])) ** params["degree"]
    return np.ones((X.shape[0], Z.shape[0]))


def ref_kernel(X, Z, name, params):
    X, Z = _with_bias(X, Z, params)
    X = X.astype(np.float64)
    Z = Z.astype(np.float64)
    g = X @ Z.T
    nx = np.linalg.norm(X, axis=1)[:, None]
    nz = np.linalg.norm(Z, axis=1)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.clip(np.where(nx * nz > 0, g / (nx * nz), 0.0), -1, 1)
    t = np.arccos(c)
    if name == "ntk":
        return g * (np.pi - t) / (2 * np.pi) + nx * nz * ((np.pi - t) * c + np.sin(t)) / (2 * np.pi)
    if name in ("nngp", "arccos1"):
        return nx * nz * ((np.pi - t) * c + np.sin(t)) / (2 * np.pi)
    if name == "arccos0":
        return (np.pi - t) / (2 * np.pi) + 0 * g
    dist = np.sqrt(np.maximum(((X[:, None, :] - Z[None, :, :]) ** 2).sum(-1), 0))
    if name == "rbf":
        return np.exp(-(dist**2) / (2 * params["bandwidth"] ** 2))
    if name == "laplace":
        return np.exp(-dist / params["bandwidth"])
    return (params["gamma"] * g + params["coef0"]) ** params["degree"]


# shapes: (n, d, m, block_size); n=1, d=1, n not a multiple of the block
SHAPES = [(1, 1, 2, None), (1, 5, 4, None), (37, 1, 6, None), (203, 9, 16, 50), (500, 24, 64, 7)]


# first_step_gradient ------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_first_step_gradient(rng, backend, dtype, shape):
    n, d, m, block = shape
    X, y, W, a, b = network(rng, n, d, m, dtype)
    G = ops.first_step_gradient(X, y, W, a, b, backend=backend, block_size=block)
    assert G.shape == (m, d) and G.dtype == dtype
    assert_close(G, ref_gradient(X, y, W, a, b), dtype, "first_step_gradient")


@pytest.mark.parametrize("backend", BACKENDS)
def test_first_step_gradient_is_the_loss_gradient(rng, backend):
    """Central finite differences of L(W) = (1/n) Σ (aᵀσ(Wx_i+b) − y_i)² at a symmetric init
    (f ≡ 0) agree with the op (float64; the ReLU kinks are away from every x_i here)."""
    n, d, m = 40, 3, 4
    X, y, W, a, b = network(rng, n, d, m, np.float64)
    W[m // 2 :], b[m // 2 :], a[m // 2 :] = W[: m // 2], b[: m // 2], -a[: m // 2]

    def loss(Wp):
        return np.mean((np.maximum(X @ Wp.T + b, 0) @ a - y) ** 2)

    h = 1e-6
    fd = np.zeros_like(W)
    for j in range(m):
        for k in range(d):
            E = np.zeros_like(W)
            E[j, k] = h
            fd[j, k] = (loss(W + E) - loss(W - E)) / (2 * h)
    G = to_numpy(ops.first_step_gradient(X, y, W, a, b, backend=backend))
    np.testing.assert_allclose(G, fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("backend", BACKENDS)
def test_first_step_gradient_mask_counts_zero_as_active(backend):
    """1[w·x + b ≥ 0]: a pre-activation of exactly 0 is active (exact integers, both dtypes)."""
    for dtype in DTYPES:
        X = np.array([[1.0, 2.0]], dtype)
        W = np.array([[1.0, 1.0], [1.0, 1.0]], dtype)
        b = np.array([-3.0, -3.5], dtype)  # pre-activations 0 (active) and -0.5 (inactive)
        a = np.array([1.0, -1.0], dtype)
        G = to_numpy(ops.first_step_gradient(X, np.array([2.0], dtype), W, a, b, backend=backend))
        np.testing.assert_array_equal(G, np.array([[-4.0, -8.0], [0.0, 0.0]]))


def ref_network_gradient(X, y, W, a, b):
    """L = (1/2n)Σ r_i², r = aᵀσ(Wx_i + b) − y_i, and its gradients, from the float64 formulas."""
    n = X.shape[0]
    X, y, W, a, b = (v.astype(np.float64) for v in (X, y, W, a, b))
    U = X @ W.T + b
    r = np.maximum(U, 0) @ a - y
    active = (U >= 0) * r[:, None]
    return (r @ r / (2 * n), a[:, None] * (active.T @ X) / n, np.maximum(U, 0).T @ r / n,
            a * active.sum(axis=0) / n)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_network_ops(rng, backend, dtype, shape):
    """network_gradient (the fused pass), residual_gradient and relu_transpose against the float64
    formulas; residual_gradient with r = −2y is first_step_gradient."""
    n, d, m, block = shape
    X, y, W, a, b = network(rng, n, d, m, dtype)
    ref = ref_network_gradient(X, y, W, a, b)
    L, gW, ga, gb = ops.network_gradient(X, y, W, a, b, backend=backend, block_size=block)
    assert isinstance(L, float) and gW.shape == (m, d) and ga.shape == gb.shape == (m,)
    assert gW.dtype == ga.dtype == gb.dtype == np.float64
    for got, want, what in zip((np.array(L), gW, ga, gb), ref, ("L", "grad W", "grad a", "grad b")):
        assert_close(got, np.asarray(want), dtype, f"network_gradient {what}")

    r = rng.standard_normal(n).astype(dtype)
    G = ops.residual_gradient(X, r, W, a, b, backend=backend, block_size=block)
    assert G.shape == (m, d) and G.dtype == dtype
    assert_close(G, ref_gradient(X, -0.5 * r, W, a, b), dtype, "residual_gradient")
    assert_close(ops.residual_gradient(X, -2 * y, W, a, b, backend=backend, block_size=block),
                 ref_gradient(X, y, W, a, b), dtype, "residual_gradient(r = -2y)")

    P = np.maximum(ref_preact(X, W, b), 0)
    T = ops.relu_transpose(X, W, b, r, backend=backend, block_size=block)
    assert T.shape == (m,) and T.dtype == np.float64
    assert_close(T, P.T @ r.astype(np.float64), dtype, "relu_transpose")
    V = rng.standard_normal((n, 3)).astype(dtype)
    assert_close(ops.relu_transpose(X, W, b, V, backend=backend), P.T @ V.astype(np.float64), dtype,
                 "relu_transpose (3 columns)")


@pytest.mark.parametrize("backend", BACKENDS)
def test_network_gradient_is_the_loss_gradient(rng, backend):
    """Central finite differences of L(W, a, b) = (1/2n) Σ (aᵀσ(Wx_i+b) − y_i)² agree with
    network_gradient (float64, generic point: no ReLU kink within the difference step)."""
    n, d, m = 40, 3, 4
    X, y, W, a, b = network(rng, n, d, m, np.float64)

    def loss(W, a, b):
        return 0.5 * np.mean((np.maximum(X @ W.T + b, 0) @ a - y) ** 2)

    h = 1e-6
    L, gW, ga, gb = (to_numpy(g) for g in ops.network_gradient(X, y, W, a, b, backend=backend))
    assert L == pytest.approx(loss(W, a, b), rel=1e-13)
    params = [W, a, b]
    for k, grad in enumerate((gW, ga, gb)):
        fd = np.zeros_like(grad)
        for idx in np.ndindex(grad.shape):
            plus, minus = [p.copy() for p in params], [p.copy() for p in params]
            plus[k][idx] += h
            minus[k][idx] -= h
            fd[idx] = (loss(*plus) - loss(*minus)) / (2 * h)
        np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-9)


# relu_features / relu_gram / relu_predict ------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_relu_ops(rng, backend, dtype, shape):
    n, d, m, block = shape
    X, y, W, a, b = network(rng, n, d, m, dtype)
    P = np.maximum(ref_preact(X, W, b), 0)
    F = ops.relu_features(X, W, b, backend=backend, block_size=block)
    assert F.shape == (n, m) and F.dtype == dtype
    assert_close(F, P, dtype, "relu_features")

    G, c = ops.relu_gram(X, W, b, y, backend=backend, block_size=block)
    assert G.shape == (m, m) and c.shape == (m,) and G.dtype == np.float64
    assert_close(G, P.T @ P, dtype, "relu_gram G")
    assert_close(c, P.T @ y.astype(np.float64), dtype, "relu_gram c")
    np.testing.assert_array_equal(to_numpy(G), to_numpy(G).T)

    Y2 = np.stack([y, 2 * y + 1], axis=1)
    G2, c2 = ops.relu_gram(X, W, b, Y2, backend=backend, block_size=block)
    assert c2.shape == (m, 2)
    assert_close(c2, P.T @ Y2.astype(np.float64), dtype, "relu_gram c (2 columns)")

    f = ops.relu_predict(X, W, b, a, backend=backend, block_size=block)
    assert f.shape == (n,) and f.dtype == dtype
    assert_close(f, P @ a.astype(np.float64), dtype, "relu_predict")
    A2 = np.stack([a, -0.5 * a], axis=1)
    assert_close(ops.relu_predict(X, W, b, A2, backend=backend), P @ A2.astype(np.float64), dtype,
                 "relu_predict (2 columns)")


@pytest.mark.parametrize("backend", BACKENDS)
def test_relu_gram_without_labels_and_bias(rng, backend):
    X, y, W, a, b = network(rng, 30, 4, 6, np.float64)
    G, c = ops.relu_gram(X, W, None, backend=backend)
    P = np.maximum(X @ W.T, 0)
    assert c is None
    assert_close(G, P.T @ P, np.float64, "relu_gram b=None")


# taylor_gradient / taylor_predict (seed 002) -------------------------------------------------

# σ' and σ'' of each activation, written out here (independent of pyfeat._activation_table)
ACTIVATIONS = {
    "relu3": (lambda t: np.maximum(t, 0) ** 2 / 2, lambda t: np.maximum(t, 0)),
    "softplus": (lambda t: 0.5 * (1 + np.tanh(t / 2)), lambda t: 0.25 / np.cosh(t / 2) ** 2),
    "relu2": (lambda t: np.maximum(t, 0), lambda t: np.where(t >= 0, 1.0, 0.0)),
    "cubic": (lambda t: t**2 / 2, lambda t: t),
}


def taylor_problem(rng, n, d, m, dtype, with_features):
    """X, y and a Taylor model: W0, W, a1, a2, b0, b, and features (V, c) or None."""
    X = rng.standard_normal((n, d)).astype(dtype)
    y = rng.standard_normal(n).astype(dtype)
    features, D = None, d
    if with_features:
        D = d + 3
        features = ((rng.standard_normal((D, d)) / math.sqrt(d)).astype(dtype), rng.standard_normal(D).astype(dtype))
    W0 = (rng.standard_normal((m, D)) / math.sqrt(D)).astype(dtype)
    W = (0.5 * rng.standard_normal((m, D)) / math.sqrt(D)).astype(dtype)
    a1, a2, b0, b = (rng.standard_normal(m).astype(dtype) for _ in range(4))
    return X, y, W0, W, a1, a2, b0, b, features


def ref_taylor(X, y, W0, W, a1, a2, b0, b, features, activation):
    """(f, L, ∇_W L, ∇_b L) of f(x) = Σ_r [a1_r σ'(u0_r) u_r + a2_r σ''(u0_r) u_r²/2] in float64."""
    d1, d2 = ACTIVATIONS[activation]
    X, y, W0, W, a1, a2, b0, b = (v.astype(np.float64) for v in (X, y, W0, W, a1, a2, b0, b))
    P = X if features is None else np.maximum(X @ features[0].astype(np.float64).T + features[1], 0)
    U0, U = P @ W0.T + b0, P @ W.T + b
    f = (a1 * d1(U0) * U).sum(1) + (a2 * d2(U0) * U**2).sum(1) / 2
    r = f - y
    slope = r[:, None] * (a1 * d1(U0) + a2 * d2(U0) * U)
    n = X.shape[0]
    return f, r @ r / (2 * n), slope.T @ P / n, slope.sum(0) / n


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_taylor_ops(rng, backend, dtype, activation, shape):
    """taylor_gradient and taylor_predict against the float64 formula, on the inputs x and on
    features relu(Vx + c), with biases and without."""
    n, d, m, block = shape
    for with_features in (False, True):
        X, y, W0, W, a1, a2, b0, b, features = taylor_problem(rng, n, d, m, dtype, with_features)
        D = W.shape[1]
        f, L, gW, gb = ref_taylor(X, y, W0, W, a1, a2, b0, b, features, activation)
        kw = dict(b0=b0, b=b, features=features, backend=backend, block_size=block)
        got = ops.taylor_gradient(X, y, W0, W, a1, a2, activation, **kw)
        assert isinstance(got[0], float) and got[1].shape == (m, D) and got[2].shape == (m,)
        assert got[1].dtype == got[2].dtype == np.float64
        for g, want, what in zip(got, (L, gW, gb), ("L", "grad W", "grad b")):
            assert_close(np.asarray(to_numpy(g)), np.asarray(want), dtype, f"taylor_gradient {what} {with_features}")
        out = ops.taylor_predict(X, W0, W, a1, a2, activation, **kw)
        assert out.shape == (n,) and out.dtype == dtype
        assert_close(out, f, dtype, f"taylor_predict {with_features}")
    zero = np.zeros(m, dtype)
    X, y, W0, W, a1, a2, b0, b, _ = taylor_problem(rng, n, d, m, dtype, False)
    assert_close(ops.taylor_predict(X, W0, W, a1, a2, activation, backend=backend),
                 ref_taylor(X, y, W0, W, a1, a2, zero, zero, None, activation)[0], dtype, "taylor_predict b=None")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_taylor_gradient_is_the_loss_gradient(rng, backend, activation):
    """Central finite differences of L(W, b) = (1/2n) Σ (f(x_i) − y_i)² agree with taylor_gradient
    (float64; relu2's σ'' jumps only where u0 = 0, which W and b do not move)."""
    n, d, m = 30, 3, 4
    X, y, W0, W, a1, a2, b0, b, features = taylor_problem(rng, n, d, m, np.float64, True)

    def loss(W, b):
        return ref_taylor(X, y, W0, W, a1, a2, b0, b, features, activation)[1]

    L, gW, gb = ops.taylor_gradient(X, y, W0, W, a1, a2, activation, b0=b0, b=b, features=features, backend=backend)
    h = 1e-6
    for k, grad in enumerate((to_numpy(gW), to_numpy(gb))):
        fd = np.zeros_like(grad)
        for idx in np.ndindex(grad.shape):
            plus, minus = [W.copy(), b.copy()], [W.copy(), b.copy()]
            plus[k][idx] += h
            minus[k][idx] -= h
            fd[idx] = (loss(*plus) - loss(*minus)) / (2 * h)
        np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
def test_taylor_ops_do_not_depend_on_block_size(rng, backend):
    X, y, W0, W, a1, a2, b0, b, features = taylor_problem(rng, 301, 5, 12, np.float64, True)
    kw = dict(b0=b0, b=b, features=features, backend=backend)
    grads = [[np.asarray(to_numpy(g)) for g in ops.taylor_gradient(X, y, W0, W, a1, a2, **kw, block_size=bs)]
             for bs in (1, 64, 10_000)]
    preds = [to_numpy(ops.taylor_predict(X, W0, W, a1, a2, **kw, block_size=bs)) for bs in (1, 64, 10_000)]
    for g, p in zip(grads[1:], preds[1:]):
        for got, want in zip(g, grads[0]):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(p, preds[0], rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_taylor_ops_bad_inputs(rng, backend):
    X, y, W0, W, a1, a2, b0, b, features = taylor_problem(rng, 10, 3, 4, np.float64, True)
    tg, tp = ops.taylor_gradient, ops.taylor_predict
    cases = [
        (lambda: tg(X, y, W0, W, a1, a2, "relu", features=features), ValueError,
         "activation must be one of .*σ'' of the ReLU is 0"),
        (lambda: tg(X, y, W0, W, a1, a2, features=features, backend=backend, block_size=0), ValueError, "block_size"),
        (lambda: tg(X, y[:-1], W0, W, a1, a2, features=features, backend=backend), ValueError,
         "taylor_gradient: y must have shape"),
        (lambda: tg(X, y, W0, W[:2], a1, a2, features=features, backend=backend), ValueError,
         r"W must have shape \(4, 6\) \(that of W0\)"),
        (lambda: tg(X, y, W0[:, :3], W, a1, a2, features=features, backend=backend), ValueError,
         r"W0 must have 6 columns \(V.shape\[0\]\)"),
        (lambda: tg(X, y, W0, W, a1, a2, backend=backend), ValueError, r"W0 must have 3 columns \(X.shape\[1\]\)"),
        (lambda: tg(X, y, W0, W, a1[:3], a2, features=features, backend=backend), ValueError, "a1 must have shape"),
        (lambda: tg(X, y, W0, W, a1, a2, b0=b0[:2], features=features, backend=backend), ValueError,
         "b0 must have shape"),
        (lambda: tp(X, W0, W, a1, np.full(4, np.nan), features=features, backend=backend), ValueError,
         "taylor_predict: a2 contains NaN"),
        (lambda: tp(X, W0, W, a1, a2, features=features[0], backend=backend), ValueError,
         "features must be None or a pair"),
        (lambda: tp(X, W0, W, a1, a2, features=(features[0][:, :2], features[1]), backend=backend), ValueError,
         "V must have 3 columns"),
        (lambda: tp(X.astype(complex), W0, W, a1, a2, features=features, backend=backend), TypeError,
         "X must hold real"),
    ]
    for call, exc, text in cases:
        with pytest.raises(exc, match=text):
            call()


# kernel_matvec / kernel_matrix ------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k[0] + ("-bias" if "bias" in k[1] else ""))
@pytest.mark.parametrize("shape", [(1, 1, 1, None), (3, 1, 5, None), (130, 7, 301, 64), (257, 20, 33, None)], ids=str)
def test_kernel_ops(rng, backend, dtype, kernel, shape):
    nx, d, nz, block = shape
    name, params = kernel
    X = rng.standard_normal((nx, d)).astype(dtype)
    Z = rng.standard_normal((nz, d)).astype(dtype)
    K = ref_kernel(X, Z, name, params)
    kern = pf.kernels.get(name, **params)

    M = ops.kernel_matrix(X, Z, kern, backend=backend, block_size=block)
    S = kernel_scale(X, Z, name, params)
    if d == 1 and name in ("ntk", "nngp", "arccos1", "arccos0"):
        # every pair has cos t = ±1, where the angle from rounded inner products is only good
        # to sqrt(eps) (see test_kernel_self_pairs): scale the tolerance accordingly
        S = S * (RTOL_ANGLE_DEGENERATE[dtype] / RTOL[dtype])
    assert M.shape == (nx, nz) and M.dtype == dtype
    assert_close(M, K, dtype, f"kernel_matrix {name}", scale=S.max())

    v = rng.standard_normal(nz).astype(dtype)
    out = ops.kernel_matvec(X, Z, v, kern, backend=backend, block_size=block)
    assert out.shape == (nx,) and out.dtype == dtype
    assert_close(out, K @ v.astype(np.float64), dtype, f"kernel_matvec {name}", scale=(S @ np.abs(v)).max())

    V = rng.standard_normal((nz, 3)).astype(dtype)
    out3 = ops.kernel_matvec(X, Z, V, kern, backend=backend, block_size=block)
    assert out3.shape == (nx, 3)
    assert_close(out3, K @ V.astype(np.float64), dtype, f"kernel_matvec {name}, 3 columns",
                 scale=(S @ np.abs(V)).max())


# the CPU paths of the cosine kernels' tiles: pyfeat._core's SIMD loop for each instruction set
# (csrc/cpu_cosine.cpp) and the BLAS GEMM + Numba pass
CPU_PATHS = ["avx512", "avx2", "blas+numba"]
SIMD_ISAS = ["avx512", "avx2"]


def simd_loop(isa):
    """pyfeat._core.cosine_reduce on instruction set ``isa``; skips where this CPU or build lacks it."""
    from pyfeat.ops import _numba

    if _numba.SIMD_REDUCE is None:
        pytest.skip("pyfeat._core's SIMD loop does not run here (no x86-64 AVX2/AVX-512 CPU or no pyfeat._core)")
    from pyfeat import _core

    if isa not in _core.cosine_reduce_isas():
        pytest.skip(f"this CPU does not run the {isa} loop (it runs {_core.cosine_reduce_isas()})")
    return functools.partial(_core.cosine_reduce, isa=isa)


def use_cpu_path(monkeypatch, path, calls=None, one_sided=True):
    """Send the cosine tiles of the Numba device to ``path``: every tile, one-sided products too
    on any ISA (``one_sided``), or as that ISA does (False); ``calls`` counts the SIMD loops'
    calls (the reduction's and the store's)."""
    from pyfeat import _core
    from pyfeat.ops import _numba

    if path == "blas+numba":
        monkeypatch.setattr(_numba, "SIMD_REDUCE", None)
        monkeypatch.setattr(_numba, "SIMD_STORE", None)
        return
    loop = simd_loop(path)
    store = functools.partial(_core.cosine_store, isa=path)
    monkeypatch.setattr(_numba, "SIMD_REDUCE", loop if calls is None else (lambda *a: calls.append(1) or loop(*a)))
    monkeypatch.setattr(_numba, "SIMD_STORE", store if calls is None else (lambda *a: calls.append(2) or store(*a)))
    monkeypatch.setattr(_numba, "SIMD_ISA", path)
    if one_sided:
        monkeypatch.setattr(_numba, "SIMD_ONE_SIDED", True)


@pytest.mark.parametrize("path", CPU_PATHS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel", [k for k in KERNELS if k[0] in ("ntk", "nngp", "arccos0")],
                         ids=lambda k: k[0] + ("-bias" if "bias" in k[1] else ""))
def test_cosine_matvec_on_both_cpu_paths(rng, monkeypatch, path, dtype, kernel):
    """The cosine kernels' kernel_matvec tiles on every CPU path: the SIMD loop of pyfeat._core
    (csrc/cpu_cosine.cpp) on AVX-512 and on AVX2, where the CPU has them (the calls are counted),
    and the BLAS GEMM + Numba pass, against the float64 reference. Rows and columns that are not multiples of
    the register block (8 rows x 2 vectors), d = 1 ... 40, zero rows, a duplicate pair, 1-33
    (32: the most the loop takes) columns of V in the working dtype and 2-33 in float64 (the solvers' V): on AVX-512 up to 32
    columns take the SIMD loop (beyond 4 its run-time column count), on AVX2 up to 4; more take
    a GEMM of the kernel tile (written by the SIMD store on the SIMD paths)."""
    from pyfeat.ops import _numba, blocked

    calls = []
    use_cpu_path(monkeypatch, path, calls)
    name, params = kernel
    dev = ops.device("numba")
    kern = pf.kernels.get(name, **params)
    for nx, d, nz in [(13, 1, 45), (130, 7, 301), (257, 33, 70), (9, 40, 1000)]:
        X = rng.standard_normal((nx, d)).astype(dtype)
        Z = rng.standard_normal((nz, d)).astype(dtype)
        X[0], Z[1], Z[2] = 0, 0, X[3]
        K = ref_kernel(X, Z, name, params)
        S = kernel_scale(X, Z, name, params)
        degenerate = S * (RTOL_ANGLE_DEGENERATE[dtype] / RTOL[dtype])  # cos t = ±1: test_kernel_self_pairs
        S[3, 2] = degenerate[3, 2]  # the duplicate pair
        if d == 1:  # every pair
            S = degenerate
        for k, vdtype in [(1, dtype), (3, dtype), (6, dtype), (32, dtype), (33, dtype), (2, np.float64),
                          (4, np.float64), (5, np.float64), (9, np.float64), (33, np.float64)]:
            V = rng.standard_normal((nz, k)).astype(vdtype)
            out = blocked.kernel_matvec(dev, X, Z, V, kern, block_size=64)
            assert out.shape == (nx, k) and out.dtype == vdtype
            assert_close(out, K @ V.astype(np.float64), dtype, f"{path} {name} {nx}x{nz} d={d} k={k}",
                         scale=(S @ np.abs(V)).max())
            if d > 1 and dtype == np.float32:  # both paths are far inside RTOL: 1e-5 catches more
                err = np.abs(out - K @ V.astype(np.float64)).max() / (S @ np.abs(V)).max()
                assert err <= 1e-5, (path, name, d, k, err)
    assert (len(calls) > 0) == (path != "blas+numba")


@pytest.mark.parametrize("dtype", DTYPES)
def test_numba_exp_within_an_ulp(rng, dtype):
    """The Numba loops' exp (rbf, laplace: pyfeat.ops._numba._exp_nonpositive) on x ≤ 0: within
    1 ulp of the float64 exp wherever that is at least the smallest normal number, 0 below, exactly
    1 at 0 and NaN for NaN (x spread over the whole range, and near 0 and the underflow edge)."""
    from numba import njit

    from pyfeat.ops import _numba

    exp = _numba._EXP[dtype]

    @njit
    def run(x):
        out = np.empty_like(x)
        for i in range(x.size):
            out[i] = exp(x[i])
        return out

    tiny = np.finfo(dtype).tiny
    edge = np.log(tiny)
    x = np.concatenate([-rng.exponential(30, 20_000), -rng.uniform(0, 1e-3, 1000), edge + rng.uniform(-1, 1, 1000),
                        [0.0, -0.0, -1e-30, -1e30, -np.inf, np.nan]]).astype(dtype)
    got, ref = run(x), np.exp(x.astype(np.float64))
    normal = ref >= tiny
    err = np.abs(got[normal] - ref[normal]) / ref[normal]
    assert err.max() <= np.finfo(dtype).eps, err.max() / np.finfo(dtype).eps
    finite = ~np.isnan(x)
    assert (got[finite & ~normal & (x < edge)] == 0).all() and np.abs(got[finite & ~normal]).max() <= tiny
    assert got[0 + x.size - 6] == 1 and got[x.size - 5] == 1 and np.isnan(got[-1])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["ntk", "arccos0", "laplace"])
def test_kernel_self_pairs(rng, backend, name):
    """X = Z: float32 inner products put cos t within ~1e-7 of 1 on the diagonal, where arccos
    (slope 1/sin t) and |x − z| = sqrt(sx + sz − 2g) amplify rounding: float32 error is about
    sqrt(eps) there. Tolerance 3e-3 (relative, matrix); float64 stays at 1e-7."""
    X = rng.standard_normal((60, 10))
    K = ref_kernel(X, X, name, {"bandwidth": 3.0})
    kern = pf.kernels.get(name, **({"bandwidth": 3.0} if name == "laplace" else {}))
    for dtype, tol in RTOL_ANGLE_DEGENERATE.items():
        M = to_numpy(ops.kernel_matrix(X.astype(dtype), None, kern, backend=backend))
        assert np.abs(M - K).max() / np.abs(K).max() <= tol


@pytest.mark.parametrize("isa", SIMD_ISAS)
def test_simd_reduction_takes_arrays_as_given(isa):
    """pyfeat._core.cosine_reduce adds into acc in place: an acc of another dtype (a silent copy
    would drop the sums) or X and sx of different dtypes are a TypeError, not a conversion; an
    instruction set other than 'auto' or one this CPU runs is a ValueError."""
    from pyfeat.ops import _numba

    loop = simd_loop(isa)
    X = np.ones((3, 4), np.float32)
    sx, V = (X * X).sum(axis=1), np.ones((3, 1), np.float32)
    args = (*_numba._COSINE_FORMS[_numba.NTK, np.float32], _numba.NEAR_PARALLEL)
    acc = np.zeros((3, 1))
    loop(X, sx, X, sx, V, acc, *args)
    np.testing.assert_allclose(acc[:, 0], 12.0, rtol=1e-6)  # K(x, x) = |x|² = 4 for each of 3 pairs
    for bad in [(X, sx, X, sx, V, np.zeros((3, 1), np.float32)), (X.astype(np.float64), sx, X, sx, V, acc)]:
        with pytest.raises(TypeError):
            loop(*bad, *args)
    from pyfeat import _core

    with pytest.raises(ValueError, match="isa must be"):
        _core.cosine_reduce(X, sx, X, sx, V, acc, *args, isa="sse2")


def test_simd_loop_runs_where_the_cpu_has_it():
    """pyfeat._core's SIMD loop is found on an x86-64 CPU with AVX2 + FMA (or AVX-512), as the
    CPU's flags say; it takes the symmetric product there (other kernels: the BLAS tile), and
    the one-sided ones on AVX-512."""
    from pyfeat import backend
    from pyfeat.ops import _numba

    flags = backend._cpu_flags()
    expect = [isa for isa, need in (("avx2", {"avx2", "fma"}), ("avx512", {"avx512f", "avx512dq"})) if need <= flags]
    if _numba.SIMD_REDUCE is None and not expect:
        pytest.skip("no AVX2 or AVX-512 CPU here")
    from pyfeat import _core

    assert _core.cosine_reduce_isas() == expect
    assert _numba.SIMD_ISA == expect[-1] and _numba.SIMD_ONE_SIDED == (expect[-1] == "avx512")
    ntk = pf.kernels.get("ntk")
    dev = ops.device("numba")
    assert dev.symmetric_reduce(ntk, 1, 32) and dev._fused(ntk, 1, 32, symmetric=True)
    assert not dev._fused(pf.kernels.get("rbf"), 1, 32, symmetric=True)


SYMMETRIC_CASES = [(path, k) for path in CPU_PATHS for k in KERNELS
                   if path == "blas+numba" or k[0] in ("ntk", "nngp", "arccos0")]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("path,kernel", SYMMETRIC_CASES,
                         ids=[f"{p}-{k[0]}" + ("-bias" if "bias" in k[1] else "") for p, k in SYMMETRIC_CASES])
def test_symmetric_kernel_matvec_takes_each_pair_once(rng, monkeypatch, path, dtype, kernel):
    """kernel_matvec(X, X, V, symmetric=True) (the solvers' product), on the SIMD loop (each ISA,
    the cosine kernels) and on the BLAS tile + Numba passes (every kernel), evaluates each pair
    of row blocks once, adding both sides of the tile: the kernel values
    evaluated are n² - (the diagonal blocks' off-diagonal half), each off-diagonal pair once
    (2 · pair values + diagonal-block values = n²); the result is within the dtype's tolerance of
    the float64 reference and equal to the one-sided product to the working dtype's rounding, for
    1 … 5 row blocks (block_size), sizes off the register block, zero rows, duplicate,
    antiparallel and near-parallel rows in different blocks (the pair path's recomputed
    cosines), rows rescaled by _cosine_rows, 1-4 columns of V in the working dtype and in
    float64, 6 in the working dtype and 9 in float64 (the SIMD loop's run-time column count on
    AVX-512, the pair's two GEMMs of the tile elsewhere) and 33 (two GEMMs of the tile, written by
    the SIMD store on the SIMD paths)."""
    from pyfeat.ops import blocked

    use_cpu_path(monkeypatch, path, one_sided=False)
    dev = ops.device("numba")
    values = {"diagonal": 0, "pair": 0}
    single, pair = dev.kernel_reduce, dev.kernel_reduce_pair

    def counted(kind, fn):
        def call(kernel, Xb, sx, Zc, *rest, **options):
            values[kind] += Xb.shape[0] * Zc.shape[0]
            return fn(kernel, Xb, sx, Zc, *rest, **options)
        return call

    monkeypatch.setattr(dev, "kernel_reduce", counted("diagonal", single))
    monkeypatch.setattr(dev, "kernel_reduce_pair", counted("pair", pair))
    name, params = kernel
    kern = pf.kernels.get(name, **params)
    with pytest.raises(ValueError, match="symmetric=True needs"):
        blocked.kernel_matvec(dev, np.ones((3, 2), dtype), np.ones((4, 2), dtype), np.ones((4, 1), dtype), kern,
                              symmetric=True)
    for n, d, block, blocks in [(1, 3, None, 1), (37, 5, 8, 5), (300, 17, 64, 5), (1000, 33, 300, 4)]:
        X = rng.standard_normal((n, d)).astype(dtype)
        close = []  # (i, j) pairs at cos t = ±1 or within 1e-4 of it, in different blocks
        if n > 3:
            X[1] = 0
        if n > 3 and name in ("ntk", "nngp", "arccos0"):  # (rbf, laplace: |x - z| from inner
            # products is accurate to sqrt(eps) only, as the tile's rounding falls; from_differences)
            X[n - 1], X[n - 2], X[n - 3] = X[2], -3 * X[3], X[4] + 1e-4 * np.linalg.norm(X[4]) * rng.standard_normal(d) / np.sqrt(d)
            close = [(2, n - 1), (3, n - 2), (4, n - 3)]
        if n == 300 and name in ("ntk", "nngp", "arccos0"):  # rows far outside 2^±60 in norm:
            # _cosine_rows rescales every row
            X[5:10] *= 1e15
            X[10:15] *= 1e-25
        K = ref_kernel(X, X, name, params)
        S = kernel_scale(X, X, name, params)
        degenerate = S * (RTOL_ANGLE_DEGENERATE[dtype] / RTOL[dtype])
        S[np.diag_indices(n)] = degenerate[np.diag_indices(n)]
        for i, j in close:
            S[i, j], S[j, i] = degenerate[i, j], degenerate[j, i]
        for k, vdtype in [(1, dtype), (3, dtype), (6, dtype), (33, dtype), (2, np.float64), (4, np.float64),
                          (9, np.float64)]:
            V = rng.standard_normal((n, k)).astype(vdtype)
            values.update(diagonal=0, pair=0)
            out = blocked.kernel_matvec(dev, X, X, V, kern, block_size=block, symmetric=True)
            assert 2 * values["pair"] + values["diagonal"] == n * n, (n, values)
            assert (values["pair"] > 0) == (blocks > 1)
            one = blocked.kernel_matvec(dev, X, X, V, kern, block_size=block)
            assert out.shape == (n, k) and out.dtype == vdtype
            assert_close(out, K @ V.astype(np.float64), dtype, f"symmetric {name} n={n} k={k}",
                         scale=(S @ np.abs(V)).max())
            scale = (np.abs(K) @ np.abs(V.astype(np.float64))).max()
            bound = 64 * np.finfo(dtype).eps * scale
            if name == "laplace":  # k(x, x) from sqrt(|x|² + |x|² - 2<x, x>), a rounded 0: up to
                # RTOL_ANGLE_DEGENERATE apart in two tilings of the diagonal block
                bound += RTOL_ANGLE_DEGENERATE[dtype] * np.abs(V).max()
            assert np.abs(out - one).max() <= bound, (name, n, k)


@pytest.mark.parametrize("isa", SIMD_ISAS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_simd_reduction_adds_both_sides(isa, dtype):
    """pyfeat._core.cosine_reduce with VX and acc_z: acc as without them, and acc_z = K(X, Z)ᵀ VX,
    the same as the call with X and Z swapped (a duplicate and an antiparallel pair included);
    VX without acc_z, a VX that is not an array or not in the dtype V is read in (X's, or
    float64 for a float64 V), an acc_z of another dtype or shape are errors, not conversions."""
    from pyfeat.ops import _numba

    loop = simd_loop(isa)
    rng = np.random.default_rng(5)
    X, Z = rng.standard_normal((21, 7)).astype(dtype), rng.standard_normal((45, 7)).astype(dtype)
    Z[3], Z[4] = X[2], -2 * X[5]
    sx, sz = (X * X).sum(axis=1), (Z * Z).sum(axis=1)
    V, VX = rng.standard_normal((45, 2)).astype(dtype), rng.standard_normal((21, 2)).astype(dtype)
    args = (*_numba._COSINE_FORMS[_numba.NTK, np.dtype(dtype).type], _numba.NEAR_PARALLEL)
    acc, acc_z, ref, ref_z = np.zeros((21, 2)), np.zeros((45, 2)), np.zeros((21, 2)), np.zeros((45, 2))
    loop(X, sx, Z, sz, V, acc, *args, VX, acc_z)
    loop(X, sx, Z, sz, V, ref, *args)
    loop(Z, sz, X, sx, VX, ref_z, *args)
    np.testing.assert_array_equal(acc, ref)
    tol = 10 * np.finfo(dtype).eps
    np.testing.assert_allclose(acc_z, ref_z, rtol=tol, atol=tol * np.abs(ref_z).max())
    other = np.float32 if dtype == np.float64 else np.float64
    for v, vx, az in [(V, VX, None), (V, VX, np.zeros((45, 2), np.float32)), (V, VX, np.zeros((21, 2))),
                      (V, VX.astype(other), np.zeros((45, 2))), (V, VX.tolist(), np.zeros((45, 2))),
                      (V.astype(np.float16), VX.astype(np.float16), np.zeros((45, 2)))]:
        with pytest.raises((ValueError, TypeError)):
            loop(X, sx, Z, sz, v, np.zeros((21, 2)), *args, vx, az)


@pytest.mark.parametrize("isa", SIMD_ISAS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_simd_reduction_takes_up_to_32_columns(isa, dtype):
    """pyfeat._core.cosine_reduce with 5 … 32 columns (counted at run time, the sums in memory):
    both sides equal, to the last bit, the same columns reduced one at a time (the same sums in
    the same order), for V in the working dtype and float64 V with float32 X, sizes off the
    register block; 33 columns are an error."""
    from pyfeat.ops import _numba

    loop = simd_loop(isa)
    rng = np.random.default_rng(11)
    X, Z = rng.standard_normal((37, 9)).astype(dtype), rng.standard_normal((83, 9)).astype(dtype)
    Z[3] = X[2]
    sx, sz = (X * X).sum(axis=1), (Z * Z).sum(axis=1)
    args = (*_numba._COSINE_FORMS[_numba.NTK, np.dtype(dtype).type], _numba.NEAR_PARALLEL)
    for k, vdtype in [(5, dtype), (8, dtype), (25, dtype), (32, dtype), (7, np.float64), (32, np.float64)]:
        V, VX = rng.standard_normal((83, k)).astype(vdtype), rng.standard_normal((37, k)).astype(vdtype)
        acc, acc_z = np.zeros((37, k)), np.zeros((83, k))
        loop(X, sx, Z, sz, V, acc, *args, VX, acc_z)
        for c in range(k):
            one, one_z = np.zeros((37, 1)), np.zeros((83, 1))
            loop(X, sx, Z, sz, np.ascontiguousarray(V[:, [c]]), one, *args, np.ascontiguousarray(VX[:, [c]]), one_z)
            np.testing.assert_array_equal(acc[:, [c]], one, err_msg=f"k={k} column {c}")
            np.testing.assert_array_equal(acc_z[:, [c]], one_z, err_msg=f"k={k} column {c}, both sides")
    with pytest.raises(ValueError, match="k <= 32"):
        loop(X, sx, Z, sz, np.ones((83, 33), dtype), np.zeros((37, 33)), *args)


@pytest.mark.parametrize("isa", SIMD_ISAS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_simd_store_writes_the_kernel_tile(isa, dtype):
    """pyfeat._core.cosine_store writes K(X, Z) (each cosine kernel's form) into a tile of a
    wider array, within the dtype's tolerance of the float64 reference and equal to the SIMD
    reduction's K(X, Z) V to rounding (both from the same register block), leaving the columns
    outside the tile as they were; sizes off the register block, a zero row, a duplicate and an
    antiparallel pair; empty tiles do nothing. An R of another dtype, with strided rows, read-only
    or of the wrong shape, and a form with a coefficient count the loop has no code for, are
    errors."""
    from pyfeat import _core
    from pyfeat.ops import _numba

    simd_loop(isa)
    rng = np.random.default_rng(8)
    X, Z = rng.standard_normal((21, 7)).astype(dtype), rng.standard_normal((45, 7)).astype(dtype)
    X[0], Z[3], Z[4] = 0, X[2], -2 * X[5]
    sx, sz = (X * X).sum(axis=1), (Z * Z).sum(axis=1)
    for name in ("ntk", "nngp", "arccos0"):
        form = (*_numba._COSINE_FORMS[pf.kernels.get(name).code, np.dtype(dtype).type], _numba.NEAR_PARALLEL)
        wide = np.full((21, 60), 7.0, dtype)
        _core.cosine_store(X, sx, Z, sz, wide[:, 10:55], *form, isa=isa)
        assert (wide[:, :10] == 7).all() and (wide[:, 55:] == 7).all()
        K = wide[:, 10:55].astype(np.float64)
        ref = ref_kernel(X, Z, name, {})
        S = kernel_scale(X, Z, name, {})
        S[2, 3] = S[2, 3] * RTOL_ANGLE_DEGENERATE[dtype] / RTOL[dtype]
        assert np.abs(K - ref).max() <= RTOL[dtype] * S.max() and (np.abs(K - ref) <= RTOL[dtype] * S).all(), name
        V = rng.standard_normal((45, 1)).astype(dtype)
        acc = np.zeros((21, 1))
        _core.cosine_reduce(X, sx, Z, sz, V, acc, *form, isa=isa)
        assert np.abs(acc - K @ V).max() <= 8 * np.finfo(dtype).eps * (np.abs(K) @ np.abs(V)).max(), name
    form = (*_numba._COSINE_FORMS[_numba.NTK, np.dtype(dtype).type], _numba.NEAR_PARALLEL)
    other = np.float64 if dtype == np.float32 else np.float32
    read_only = np.zeros((21, 45), dtype)
    read_only.flags.writeable = False
    for R in (np.zeros((21, 45), other), np.zeros((21, 90), dtype)[:, ::2], read_only, np.zeros((21, 44), dtype)):
        with pytest.raises((ValueError, TypeError)):
            _core.cosine_store(X, sx, Z, sz, R, *form, isa=isa)
    with pytest.raises(ValueError, match="coefficients"):
        _core.cosine_store(X, sx, Z, sz, np.zeros((21, 45), dtype), *form[:6], np.ones(5), form[7], isa=isa)
    _core.cosine_store(X[:0], sx[:0], Z, sz, np.zeros((0, 45), dtype), *form, isa=isa)  # empty: nothing to do
    _core.cosine_store(X, sx, Z[:0], sz[:0], np.zeros((21, 0), dtype), *form, isa=isa)


def _angle_kernels(X, Z):
    """ntk, nngp, arccos0 of the float64 rows from the angle t = 2 asin(|x̂ - ẑ|/2), accurate
    near t = 0 and pi (where arccos of a rounded cosine is not)."""
    X, Z = X.astype(np.float64), Z.astype(np.float64)
    nx, nz = np.linalg.norm(X, axis=1)[:, None], np.linalg.norm(Z, axis=1)[None, :]
    diff = np.linalg.norm(X[:, None, :] / nx[..., None] - Z[None, :, :] / nz[..., None], axis=2)
    t = 2 * np.arcsin(np.minimum(diff / 2, 1))
    c, pit, sint = np.cos(t), np.pi - t, np.sin(t)
    nngp = nx * nz * (pit * c + sint) / (2 * np.pi)
    kernels = {"ntk": nngp + nx * nz * c * pit / (2 * np.pi), "nngp": nngp, "arccos0": pit / (2 * np.pi)}
    return kernels, np.minimum(t, pit)


@pytest.mark.parametrize("path", CPU_PATHS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_cosine_kernels_accurate_near_parallel_and_ops_consistent(rng, monkeypatch, path, dtype):
    """Near cos t = ±1 the cosine kernels have a square-root singularity, where the cosine of
    rounded inner products gave errors of ~sqrt(eps) (2e-4 in float32) that depended on how each
    GEMM rounded. Cosines with |c| >= NEAR_PARALLEL are recomputed from the rows' difference: the
    diagonal is exact, x = -z gives 0, pairs at angles 1e-4 ... 0.1 from 0 or pi are within the
    dtype's tolerance of the angle-based float64 reference (closer pairs within
    RTOL_ANGLE_DEGENERATE: the cosine itself, in the working dtype, resolves 1 - |c| only to
    eps), and kernel_matvec equals kernel_matrix @ V to rounding (the direct solver computes its
    residual with the matvec)."""
    from pyfeat.ops import _numba, blocked

    use_cpu_path(monkeypatch, path)
    dev = ops.device("numba")
    eps = np.finfo(dtype).eps
    for d in (3, 32, 100):
        base = rng.standard_normal((12, d)) * rng.uniform(0.1, 10, (12, 1))
        step = rng.standard_normal((12, d))
        step *= (np.linalg.norm(base, axis=1) * np.logspace(-6, -1, 12))[:, None] / np.linalg.norm(step, axis=1)[:, None]
        X = np.vstack([base, rng.standard_normal((40, d))]).astype(dtype)
        Z = np.vstack([base + step, -(base + step), base, rng.standard_normal((30, d))]).astype(dtype)
        X[1] = -X[0]
        ref, angle = _angle_kernels(X, Z)
        scale = kernel_scale(X, Z, "ntk", {})
        sq = (X.astype(np.float64) ** 2).sum(axis=1)
        for name, diagonal in [("ntk", sq), ("nngp", sq / 2), ("arccos0", np.full(len(X), 0.5))]:
            kern = pf.kernels.get(name)
            S = scale if name != "arccos0" else np.ones_like(scale)
            K = blocked.kernel_matrix(dev, X, Z, kern).astype(np.float64)
            err = np.abs(K - ref[name]) / S
            assert err[angle >= 1e-4].max() <= RTOL[dtype] and err.max() <= RTOL_ANGLE_DEGENERATE[dtype], name
            Kxx = blocked.kernel_matrix(dev, X, X, kern).astype(np.float64)
            np.testing.assert_allclose(np.diag(Kxx), diagonal, rtol=4 * (d + 4) * eps)
            assert Kxx[0, 1] == 0 and Kxx[1, 0] == 0  # angle pi: 0 for all three
            V = rng.standard_normal((len(Z), 2)).astype(dtype)
            KV = blocked.kernel_matvec(dev, X, Z, V, kern)
            # the SIMD loop's float32 cosines come from rows rounded to unit norm, the BLAS
            # tile's from the rows: near NEAR_PARALLEL (slope of sqrt(1 - |c|) ≈ 11) they differ
            # by up to ~100 eps (measured 83); the same path agrees to < 1 eps
            ulps = 300 if (path != "blas+numba" and dtype == np.float32) else 30
            assert np.abs(KV - K @ V.astype(np.float64)).max() <= ulps * eps * (np.abs(K) @ np.abs(V.astype(np.float64))).max()


@pytest.mark.parametrize("backend", BACKENDS)
def test_kernel_zero_vectors_follow_the_convention(backend):
    """A zero vector has angle pi/2 with everything: NTK/NNGP give 0, arccos0 gives 1/4."""
    X = np.array([[0.0, 0.0], [1.0, 2.0]])
    Z = np.array([[0.0, 0.0], [3.0, -1.0]])
    for name, expect in [("ntk", 0.0), ("nngp", 0.0), ("arccos0", 0.25)]:
        M = to_numpy(ops.kernel_matrix(X, Z, name, backend=backend))
        assert np.all(np.isfinite(M))
        np.testing.assert_allclose(M[0], expect, atol=1e-15)
        np.testing.assert_allclose(M[:, 0], expect, atol=1e-15)


# layouts, dtypes and block sizes -----------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_layouts_and_dtype_conversion(rng, backend):
    """Fortran-ordered, non-contiguous and integer/float16 inputs give the same results as
    the C-contiguous float64 call (within the dtype tolerance of the working dtype)."""
    X, y, W, a, b = network(rng, 120, 6, 8, np.float64)
    ref = ref_gradient(X, y, W, a, b)
    wide = np.zeros((120, 12))
    wide[:, ::2] = X
    variants = {
        "fortran": (np.asfortranarray(X), np.float64),
        "strided": (wide[:, ::2], np.float64),
        "row-strided": (np.repeat(X, 2, axis=0)[::2], np.float64),
        "float16": (X.astype(np.float16), np.float32),
    }
    for label, (Xv, dtype) in variants.items():
        G = ops.first_step_gradient(Xv, y, np.asfortranarray(W), a, b, backend=backend, block_size=25)
        assert G.dtype == dtype, label
        ref_v = ref_gradient(Xv.astype(np.float64), y, W, a, b)
        assert_close(G, ref_v, dtype, label)
        Z = rng.standard_normal((17, 6))  # no self-pairs: those are only good to sqrt(eps)
        K = ops.kernel_matvec(Xv, Z, y[:17], "ntk", backend=backend, block_size=25)
        assert_close(K, ref_kernel(Xv, Z, "ntk", {}) @ y[:17], dtype, label)
    Xi = rng.integers(-3, 4, size=(50, 4))
    Gi = ops.relu_gram(Xi, W[:, :4], b, backend=backend)[0]
    P = np.maximum(Xi @ W[:, :4].T + b, 0)
    assert_close(Gi, P.T @ P, np.float64, "integer X")
    assert ref.shape == (8, 6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_results_do_not_depend_on_block_size(rng, backend):
    X, y, W, a, b = network(rng, 301, 5, 12, np.float64)
    for op, args in [
        (ops.first_step_gradient, (X, y, W, a, b)),
        (ops.relu_predict, (X, W, b, a)),
        (ops.kernel_matvec, (X, rng.standard_normal((100, 5)), y[:100])),
    ]:
        outs = [to_numpy(op(*args, backend=backend, block_size=bs)) for bs in (1, 64, 300, 10_000)]
        for o in outs[1:]:
            np.testing.assert_allclose(o, outs[0], rtol=1e-12, atol=1e-13)
    grads = [[to_numpy(g) for g in ops.network_gradient(X, y, W, a, b, backend=backend, block_size=bs)]
             for bs in (1, 64, 10_000)]
    for g in grads[1:]:
        for got, want in zip(g, grads[0]):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)
    Gs = [to_numpy(ops.relu_gram(X, W, b, y, backend=backend, block_size=bs)[0]) for bs in (1, 64, 10_000)]
    for G in Gs[1:]:
        np.testing.assert_allclose(G, Gs[0], rtol=1e-12)


def test_backends_agree_in_float32(rng):
    """numba (float32 BLAS + float64 accumulation) against the float64 reference at a size
    with many blocks."""
    X, y, W, a, b = network(rng, 5000, 32, 128, np.float32)
    g32 = ops.first_step_gradient(X, y, W, a, b, backend="numba", block_size=512)
    g64 = ops.first_step_gradient(X, y, W, a, b, backend="numpy")
    assert np.abs(g32 - g64).max() / np.abs(g64).max() < 1e-5


# bad inputs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_network_ops_name_non_finite_x_in_any_block(rng, backend, dtype, bad):
    """The network ops check X's entries in their blocked loop (one pass with the magnitude
    check): a NaN or inf in the last row block is still a ValueError naming the op and X."""
    X, y, W, a, b = network(rng, 40, 3, 4, dtype)
    X[37, 1] = bad
    what = "NaN" if np.isnan(bad) else "inf"
    calls = {
        "first_step_gradient": lambda: ops.first_step_gradient(X, y, W, a, b, backend=backend, block_size=8),
        "residual_gradient": lambda: ops.residual_gradient(X, y, W, a, b, backend=backend, block_size=8),
        "network_gradient": lambda: ops.network_gradient(X, y, W, a, b, backend=backend, block_size=8),
        "relu_features": lambda: ops.relu_features(X, W, b, backend=backend, block_size=8),
        "relu_gram": lambda: ops.relu_gram(X, W, b, y, backend=backend, block_size=8),
        "relu_predict": lambda: ops.relu_predict(X, W, b, a, backend=backend, block_size=8),
        "relu_transpose": lambda: ops.relu_transpose(X, W, b, y, backend=backend, block_size=8),
    }
    for name, call in calls.items():
        with pytest.raises(ValueError, match=f"^{name}: X contains {what}; expected finite values$"):
            call()


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_bad_inputs_raise_clear_errors(rng, backend):
    X, y, W, a, b = network(rng, 10, 3, 4, np.float64)
    fsg = ops.first_step_gradient
    cases = [
        (lambda: fsg(X[0], y, W, a, b, backend=backend), ValueError, "X must be a 2-D array"),
        (lambda: fsg(X, y[:-1], W, a, b, backend=backend), ValueError, "y must have shape"),
        (lambda: fsg(X, y, W[:, :2], a, b, backend=backend), ValueError, "W must have 3 columns"),
        (lambda: fsg(X, y, W, a[:-1], b, backend=backend), ValueError, "a must have shape"),
        (lambda: fsg(X, y, W, a, b[:2], backend=backend), ValueError, "b must have shape"),
        (lambda: fsg(np.where(X > 1, np.nan, X), y, W, a, b, backend=backend), ValueError, "X contains NaN"),
        (lambda: fsg(X, np.full(10, np.inf), W, a, b, backend=backend), ValueError, "y contains inf"),
        (lambda: fsg(X[:0], y[:0], W, a, b, backend=backend), ValueError, "X is empty"),
        (lambda: fsg(X.astype(complex), y, W, a, b, backend=backend), TypeError, "X must hold real numbers"),
        (lambda: fsg(X, y, W, a, b, backend=backend, block_size=0), ValueError, "block_size"),
        (lambda: fsg(X, y, W, a, b, backend="gpu"), ValueError, "backend must be one of"),
        (lambda: ops.kernel_matvec(X, X, y, "gauss", backend=backend), ValueError, "unknown kernel 'gauss'"),
        (lambda: ops.kernel_matvec(X, X, y, pf.kernels.get("rbf", bandwidth=-1.0)), ValueError, "bandwidth must be > 0"),
        (lambda: pf.kernels.get("rbf", width=2.0), TypeError, "unknown parameter"),
        (lambda: pf.kernels.get("poly", degree=1.5), ValueError, "degree must be a positive integer"),
        (lambda: ops.kernel_matvec(X, X[:, :2], y, backend=backend), ValueError, "Z must have 3 columns"),
        (lambda: ops.kernel_matvec(X, X, y[:4], backend=backend), ValueError, "V must have shape"),
        (lambda: ops.relu_predict(X, W, b, None, backend=backend), ValueError, "a must be an array"),
        (lambda: ops.network_gradient(X, y[:-1], W, a, b, backend=backend), ValueError,
         "network_gradient: y must have shape"),
        (lambda: ops.network_gradient(X, y, W, a[:3], b, backend=backend), ValueError, "a must have shape"),
        (lambda: ops.network_gradient(X, y, W.T, a, b, backend=backend), ValueError, "W must have 3 columns"),
        (lambda: ops.residual_gradient(X, np.full(10, np.nan), W, a, b, backend=backend), ValueError,
         "residual_gradient: r contains NaN"),
        (lambda: ops.relu_transpose(X, W, b, y[:4], backend=backend), ValueError, "relu_transpose: V must have shape"),
        (lambda: ops.relu_transpose(X.astype(complex), W, b, y, backend=backend), TypeError, "X must hold real"),
    ]
    for call, exc, text in cases:
        with pytest.raises(exc, match=text):
            call()


@pytest.mark.skipif(CUDA_OK, reason="CUDA is available here")
def test_forced_cuda_without_gpu_says_why(rng):
    X, y, W, a, b = network(rng, 10, 3, 4, np.float64)
    with pytest.raises(RuntimeError, match="backend='cuda' is unavailable: "):
        ops.first_step_gradient(X, y, W, a, b, backend="cuda")


@pytest.mark.skipif(CUDA_OK, reason="CUDA is available here")
def test_cuda_from_the_environment_without_gpu_names_the_variable(rng, monkeypatch):
    X, y, W, a, b = network(rng, 10, 3, 4, np.float64)
    monkeypatch.setenv("PYFEAT_BACKEND", "cuda")
    with pytest.raises(RuntimeError, match="PYFEAT_BACKEND=cuda, but CUDA is unavailable: .*unset PYFEAT_BACKEND"):
        ops.first_step_gradient(X, y, W, a, b)


def test_env_backend_override(monkeypatch):
    from pyfeat.backend import resolve

    monkeypatch.setenv("PYFEAT_BACKEND", "numpy")
    assert resolve(None) == "numpy" and resolve("auto") == "numpy"
    assert resolve("numba") == "numba"
    monkeypatch.setenv("PYFEAT_BACKEND", "tpu")
    with pytest.raises(ValueError, match="PYFEAT_BACKEND"):
        resolve(None)
    monkeypatch.delenv("PYFEAT_BACKEND")
    assert resolve(None) == ("cuda" if CUDA_OK else "numba")


# GPU: CuPy in -> CuPy out, and GPU results against the float64 reference --------------------


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA_OK, reason="no CUDA backend here")
def test_cupy_in_cupy_out(rng):
    import cupy as cp

    X, y, W, a, b = network(rng, 300, 8, 16, np.float32)
    Xd, yd, Wd, ad, bd = map(cp.asarray, (X, y, W, a, b))
    G = ops.first_step_gradient(Xd, yd, Wd, ad, bd)
    assert isinstance(G, cp.ndarray)
    assert_close(G, ref_gradient(X, y, W, a, b), np.float32, "cupy first_step_gradient")
    out = ops.kernel_matvec(Xd, Xd, yd, "ntk")
    assert isinstance(out, cp.ndarray)
    # NumPy in with backend="cuda" -> NumPy out
    assert isinstance(ops.kernel_matvec(X, X, y, "ntk", backend="cuda"), np.ndarray)


def test_numba_arccos_accuracy():
    """The Numba backend's vectorizable arccos: float64 polynomial within 2e-15 of libm, float32
    polynomial (Abramowitz & Stegun 4.4.46, as in kernel_math.hpp) within 5e-7, on a dense grid
    of [-1, 1] including both ends."""
    from numba import njit

    from pyfeat.ops._numba import _acos

    @njit
    def acos_all(xs, out):
        for i in range(xs.shape[0]):
            out[i] = _acos(xs[i])

    x = np.linspace(-1.0, 1.0, 400_001)
    for dtype, tol in [(np.float64, 2e-15), (np.float32, 5e-7)]:
        xs = x.astype(dtype)
        out = np.empty_like(xs)
        acos_all(xs, out)
        assert np.abs(out.astype(np.float64) - np.arccos(xs.astype(np.float64))).max() <= tol


def test_memory_budget_from_environment(monkeypatch, rng):
    """PYFEAT_MEMORY_BUDGET_MB sets the block budget (results unchanged); bad values say so."""
    from pyfeat.backend import DEFAULT_MEMORY_BUDGET, memory_budget

    assert memory_budget("cpu") == DEFAULT_MEMORY_BUDGET["cpu"]
    X, y, W, a, b = network(rng, 400, 5, 8, np.float64)
    ref = ops.first_step_gradient(X, y, W, a, b, backend="numba")
    monkeypatch.setenv("PYFEAT_MEMORY_BUDGET_MB", "0.01")
    assert memory_budget("cpu") == int(0.01 * 2**20)
    np.testing.assert_allclose(ops.first_step_gradient(X, y, W, a, b, backend="numba"), ref, rtol=1e-12)
    for bad in ("lots", "0", "-5"):
        monkeypatch.setenv("PYFEAT_MEMORY_BUDGET_MB", bad)
        with pytest.raises(ValueError, match="PYFEAT_MEMORY_BUDGET_MB must be"):
            memory_budget("cpu")


def test_concurrent_ops_restore_blas_threads(rng):
    """Ops called from several threads at once (Dask threads do this) get the right results and
    leave the BLAS thread count as it was (the one-thread limit is process-wide)."""
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_info

    def blas_threads():
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    before = blas_threads()
    X, y, W, a, b = network(rng, 3000, 16, 32, np.float64)
    P = np.maximum(ref_preact(X, W, b), 0)

    def call(_):
        return ops.relu_gram(X, W, b, y, backend="numba", block_size=256)[0]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(call, range(12)))
    for G in results:
        assert_close(G, P.T @ P, np.float64, "relu_gram from concurrent threads")
    assert blas_threads() == before


def test_info_reports_backends_and_survives_a_bad_forced_backend(monkeypatch):
    d = pf.info()
    assert d["backend"] in d["backends_available"] and "numba" in d["backends_available"]
    assert ("cuda" in d["backends_available"]) == CUDA_OK
    if not CUDA_OK:
        monkeypatch.setenv("PYFEAT_BACKEND", "cuda")
        d = pf.info()
        assert d["backend"] is None and "unavailable" in d["backend_reason"]


def test_kernel_parameters_reach_compiled_code_in_order():
    """p0, p1, p2 follow the documented order whatever order the parameters were given in."""
    k = pf.kernels.Kernel("poly", {"degree": 2, "coef0": 3.0, "gamma": 0.5})
    assert k.p == (0.5, 3.0, 2.0)
    X = np.array([[1.0, 2.0]])
    np.testing.assert_allclose(ops.kernel_matrix(X, X, k, backend="numba"), [[(0.5 * 5 + 3) ** 2]])


def test_taylor_loops_on_a_gpu_shaped_device(rng):
    """The Taylor loops on the serial whole-tile test device of test_ops_structure, with the
    epilogues written as the CUDA kernels compute them (rows: f in float64 and the slopes in place
    of U0; columns: r times the slope, column sums), at budgets from a few rows per block to one
    block: equal to the float64 reference."""
    from test_ops_structure import SerialWholeZ

    from pyfeat import _activation_table
    from pyfeat.ops import _reference, blocked

    def rows_pass(Z, bb, a1, a2, act):
        m = a1.shape[0]
        U0, U = Z[:, :m] + bb[:m], Z[:, m:] + bb[m:]
        d1, d2 = act.derivative(U0, 1), act.derivative(U0, 2)
        return (a1 * d1 * U + 0.5 * a2 * d2 * U**2).sum(axis=1), a1 * d1 + a2 * d2 * U

    class SerialTaylor(SerialWholeZ):
        act = _activation_table.TABLE["relu3"]

        @staticmethod
        def taylor_workspace(rows, m):
            return None

        def taylor_residual(self, Z, bb, a1, a2, y, code, sq, gb, ws):
            f, slope = rows_pass(Z, bb, a1, a2, self.act)
            r = f - y
            sq += r @ r
            Z[:, : a1.shape[0]] = r[:, None] * slope
            gb += Z[:, : a1.shape[0]].sum(axis=0)

        def taylor_forward(self, Z, bb, a1, a2, code, out):
            out[...] = rows_pass(Z, bb, a1, a2, self.act)[0]

    X, y, W0, W, a1, a2, b0, b, features = taylor_problem(rng, 333, 7, 10, np.float64, True)
    for budget in (1 << 10, 1 << 16, 1 << 26):
        dev = SerialTaylor(budget)
        for feats in (None, features):
            if feats is None:
                W0x, Wx = W0[:, :7], W[:, :7]
            else:
                W0x, Wx = W0, W
            args = (X, y, W0x, b0, Wx, b, a1, a2, SerialTaylor.act, feats)
            got = blocked.taylor_gradient(dev, *args)
            want = _reference.taylor_gradient(*args, None)
            for g, w in zip(got, want):
                np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)
            pargs = (X, W0x, b0, Wx, b, a1, a2, SerialTaylor.act, feats)
            np.testing.assert_allclose(blocked.taylor_predict(dev, *pargs), _reference.taylor_predict(*pargs, None),
                                       rtol=1e-10, atol=1e-12)


def test_network_loops_on_a_gpu_shaped_device(rng):
    """The new loops (network_gradient, residual_gradient, relu_transpose) on the serial
    whole-tile test device of test_ops_structure, with its relu_residual written as the CUDA
    primitive computes it (r in float64 from the rows, then the column sums), at budgets from a
    few rows per block to one block: equal to the float64 reference."""
    from test_ops_structure import SerialWholeZ

    from pyfeat.ops import _reference, blocked

    class SerialNetwork(SerialWholeZ):
        @staticmethod
        def residual_workspace(rows, m):
            return None

        @staticmethod
        def relu_residual(Z, b, a, y, sq, ga, gb, ws):
            U = Z + b
            r = np.maximum(U, 0).astype(np.float64) @ a - y
            sq += r @ r
            ga += np.maximum(U, 0).T @ r
            gb += (U >= 0).T @ r
            Z[...] = np.where(U >= 0, r[:, None], 0)

    X, y, W, a, b = network(rng, 333, 7, 10, np.float64)
    for budget in (1 << 10, 1 << 16, 1 << 26):
        dev = SerialNetwork(budget)
        for grad_W in (True, False):
            got = blocked.network_gradient(dev, X, y, W, b, a, grad_W=grad_W)
            want = _reference.network_gradient(X, y, W, b, a, None, grad_W)
            assert (got[1] is None) == (not grad_W)
            for g, w in zip(got, want):
                if w is not None:
                    np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(blocked.residual_gradient(dev, X, y, W, a, b),
                                   _reference.residual_gradient(X, y, W, a, b, None), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(blocked.relu_transpose(dev, X, W, b, y),
                                   _reference.relu_transpose(X, W, b, y, None), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", ["numba"])
def test_network_ops_far_from_unit_scale(rng, backend):
    """Blocks with X, y, W, b or a beyond 2^±20 take the exactly rescaled float64 path of
    network_gradient (and the rescaled copies of residual_gradient / relu_transpose): equal to
    the float64 reference, and float32 X of norm ~1e20 gives finite float64 gradients."""
    X, y, W, a, b = network(rng, 300, 6, 8, np.float64)
    cases = [(X * 2.0**30, y * 2.0**40, W, a, b * 2.0**30), (X, y, W, a * 2.0**30, b),
             (X * 2.0**-30, y * 2.0**-25, W * 2.0**-5, a, b * 2.0**-35)]
    for Xs, ys, Ws, As, bs in cases:
        ref = ref_network_gradient(Xs, ys, Ws, As, bs)
        got = ops.network_gradient(Xs, ys, Ws, As, bs, backend=backend, block_size=64)
        for g, w in zip(got, ref):
            np.testing.assert_allclose(g, w, rtol=1e-10, atol=0)
        np.testing.assert_allclose(ops.residual_gradient(Xs, ys, Ws, As, bs, backend=backend),
                                   ref_gradient(Xs, -0.5 * ys, Ws, As, bs), rtol=1e-10)
        P = np.maximum(ref_preact(Xs, Ws, bs), 0)
        np.testing.assert_allclose(ops.relu_transpose(Xs, Ws, bs, ys, backend=backend), P.T @ ys, rtol=1e-10)
    big = (X * 1e20).astype(np.float32)
    L, gW, ga, gb = ops.network_gradient(big, y, W, a * 1e-20, b, backend=backend)
    assert np.isfinite(L) and all(np.isfinite(g).all() for g in (gW, ga, gb))
    want = ref_network_gradient(big.astype(np.float64), y, W, a * 1e-20, b)
    np.testing.assert_allclose(gW, want[1], rtol=1e-4, atol=1e-4 * np.abs(want[1]).max())


@pytest.mark.parametrize("backend", BACKENDS)
def test_rescaled_bias_keeps_its_sign(backend):
    """A neuron with zero weights and a tiny negative bias is inactive even when another neuron's
    weights (8e29) rescale the block so far that the bias underflows (hypothesis found it: in
    float32, b 2^-101 = 0 counted the neuron as active and first_step_gradient got 0.316 for 0)."""
    X = np.array([[1.2573022]], np.float32)
    y = np.array([0.12573022], np.float32)
    W = np.array([[0.0], [8.216182e29]], np.float32)
    a = np.array([-1.0, 1.0], np.float32)
    for sign in (-1, 1):
        b = sign * np.array([6.5179116e-16, 1.7471729e-16], np.float32)
        X64, W64, b64 = (v.astype(np.float64) for v in (X, W, b))
        active = (X64 @ W64.T + b64 >= 0)[0]
        grad = ops.first_step_gradient(X, y, W, a, b, backend=backend)
        want = -2.0 * a * active * y[0] * X64[0, 0]
        np.testing.assert_allclose(grad[:, 0], want, rtol=1e-6)
        P = ops.relu_features(X, W, b, backend=backend)
        assert (P[0] > 0).tolist() == [bool(sign > 0), True]


def test_network_ops_on_dask_arrays(rng):
    """Dask X (row chunks): the sums of network_gradient, residual_gradient and relu_transpose are
    added on the cluster and equal the NumPy results."""
    da = pytest.importorskip("dask.array")
    X, y, W, a, b = network(rng, 500, 5, 6, np.float64)
    Xd, yd = da.from_array(X, chunks=(128, 5)), da.from_array(y, chunks=128)
    for got, want in zip(ops.network_gradient(Xd, yd, W, a, b), ops.network_gradient(X, y, W, a, b)):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_allclose(ops.residual_gradient(Xd, yd, W, a, b), ops.residual_gradient(X, y, W, a, b),
                               rtol=1e-12)
    np.testing.assert_allclose(ops.relu_transpose(Xd, W, b, yd), ops.relu_transpose(X, W, b, y), rtol=1e-12)
