"""NumPy float64 reference of the ops (backend "numpy"): plain formulas, blocked over rows.

Every computation runs in float64 whatever the working dtype; results are cast to the working
dtype of the call (Grams stay float64). This is what the tests trust; it is not fast.
"""

from __future__ import annotations

import numpy as np

from pyfeat._linalg import gram
from pyfeat.backend import memory_budget
from pyfeat.ops._plan import blocks, rows_per_block, working_dtype

f64 = np.float64


def _rows(block_size, bytes_per_row):
    return block_size or rows_per_block(bytes_per_row, memory_budget("cpu"))


def _phi(Xb, W, b):
    return np.maximum(np.asarray(Xb, f64) @ W.astype(f64).T + b.astype(f64), 0.0)


def first_step_gradient(X, y, W, a, b, block_size):
    n, d = X.shape
    m = W.shape[0]
    acc = np.zeros((m, d), f64)
    for s, e in blocks(n, _rows(block_size, 8 * (m + d))):
        Xb = np.asarray(X[s:e], f64)
        mask = (Xb @ W.astype(f64).T + b.astype(f64)) >= 0
        acc += (mask * y[s:e, None].astype(f64)).T @ Xb
    return ((-2.0 / n) * a.astype(f64)[:, None] * acc).astype(W.dtype)


def residual_gradient(X, r, W, a, b, block_size):
    return ((-0.5) * first_step_gradient(X, r, W.astype(f64), a, b, block_size)).astype(W.dtype)


def network_gradient(X, y, W, b, a, block_size, grad_W):
    m, d = W.shape
    sq, gW, ga, gb = 0.0, np.zeros((m, d), f64), np.zeros(m, f64), np.zeros(m, f64)
    for s, e in blocks(X.shape[0], _rows(block_size, 8 * (m + d))):
        Xb = np.asarray(X[s:e], f64)
        U = Xb @ W.astype(f64).T + b.astype(f64)
        r = np.maximum(U, 0.0) @ a.astype(f64) - y[s:e].astype(f64)
        active = (U >= 0) * r[:, None]
        sq += r @ r
        gW += active.T @ Xb
        ga += np.maximum(U, 0.0).T @ r
        gb += active.sum(axis=0)
    a = a.astype(f64)
    return f64(sq), (a[:, None] * gW if grad_W else None), ga, a * gb


def relu_transpose(X, W, b, V, block_size):
    acc = np.zeros((W.shape[0],) + V.shape[1:], f64)
    for s, e in blocks(X.shape[0], _rows(block_size, 8 * (W.shape[0] + X.shape[1]))):
        acc += _phi(X[s:e], W, b).T @ V[s:e].astype(f64)
    return acc


def relu_features(X, W, b, block_size):
    return _phi(X, W, b).astype(W.dtype)


def relu_gram(X, W, b, y, block_size):
    n = X.shape[0]
    m = W.shape[0]
    G = np.zeros((m, m), f64)
    c = None if y is None else np.zeros((m,) + y.shape[1:], f64)
    for s, e in blocks(n, _rows(block_size, 8 * (m + X.shape[1]))):
        P = _phi(X[s:e], W, b)
        G += gram(P.T)  # SYRK, which OpenBLAS's threads crash at m ≳ 15,000 (pyfeat._linalg)
        if c is not None:
            c += P.T @ y[s:e].astype(f64)
    return G, c


def relu_predict(X, W, b, a, block_size):
    n = X.shape[0]
    out = np.empty((n,) + a.shape[1:], W.dtype)
    for s, e in blocks(n, _rows(block_size, 8 * (W.shape[0] + X.shape[1]))):
        out[s:e] = _phi(X[s:e], W, b) @ a.astype(f64)
    return out


def _sq_norms(X):
    X = np.asarray(X, f64)
    return np.einsum("ij,ij->i", X, X)


def kernel_matrix(X, Z, kernel, block_size):
    Zf = np.asarray(Z, f64)
    sz = _sq_norms(Zf)
    out = np.empty((X.shape[0], Z.shape[0]), working_dtype(X))
    for s, e in blocks(X.shape[0], _rows(block_size, 8 * (Z.shape[0] + X.shape[1]))):
        Xb = np.asarray(X[s:e], f64)
        out[s:e] = kernel.from_inner(Xb @ Zf.T, _sq_norms(Xb)[:, None], sz[None, :])
    return out


def kernel_matvec(X, Z, V, kernel, block_size):
    Zf = np.asarray(Z, f64)
    sz = _sq_norms(Zf)
    out = np.empty((X.shape[0], V.shape[1]), V.dtype)
    for s, e in blocks(X.shape[0], _rows(block_size, 8 * (Z.shape[0] + X.shape[1]))):
        Xb = np.asarray(X[s:e], f64)
        K = kernel.from_inner(Xb @ Zf.T, _sq_norms(Xb)[:, None], sz[None, :])
        out[s:e] = K @ V.astype(f64)
    return out


def kernel_gram_matvec(X, C, V, kernel, block_size):
    Cf = np.asarray(C, f64)
    sc = _sq_norms(Cf)
    out = np.zeros((C.shape[0], V.shape[1]), f64)
    for s, e in blocks(X.shape[0], _rows(block_size, 8 * (C.shape[0] + X.shape[1]))):
        Xb = np.asarray(X[s:e], f64)
        K = kernel.from_inner(Xb @ Cf.T, _sq_norms(Xb)[:, None], sc[None, :])
        out += K.T @ (K @ V.astype(f64))
    return out


def _taylor_block(Xb, W0, b0, W, b, a1, a2, activation, features):
    """float64 (inputs φ, σ'(u0), σ''(u0), u, f) of one block of the Taylor model (see
    ``pyfeat.ops.taylor_gradient``)."""
    P = np.asarray(Xb, f64)
    if features is not None:
        P = _phi(P, *features)
    U0 = P @ W0.astype(f64).T + b0.astype(f64)
    U = P @ W.astype(f64).T + b.astype(f64)
    d1, d2 = activation.derivative(U0, 1), activation.derivative(U0, 2)
    f = (d1 * U) @ a1.astype(f64) + 0.5 * (d2 * U**2) @ a2.astype(f64)
    return P, d1, d2, U, f


def _taylor_rows(X, W, features, block_size):
    width = W.shape[1] + 3 * W.shape[0] + (0 if features is None else features[0].shape[0])
    return blocks(X.shape[0], _rows(block_size, 8 * width))


def taylor_gradient(X, y, W0, b0, W, b, a1, a2, activation, features, block_size):
    m, D = W.shape
    sq, gW, gb = 0.0, np.zeros((m, D), f64), np.zeros(m, f64)
    for s, e in _taylor_rows(X, W, features, block_size):
        P, d1, d2, U, f = _taylor_block(X[s:e], W0, b0, W, b, a1, a2, activation, features)
        r = f - y[s:e].astype(f64)
        slope = r[:, None] * (d1 * a1.astype(f64) + d2 * U * a2.astype(f64))
        sq += r @ r
        gW += slope.T @ P
        gb += slope.sum(axis=0)
    return f64(sq), gW, gb


def taylor_predict(X, W0, b0, W, b, a1, a2, activation, features, block_size):
    out = np.empty(X.shape[0], W.dtype)
    for s, e in _taylor_rows(X, W, features, block_size):
        out[s:e] = _taylor_block(X[s:e], W0, b0, W, b, a1, a2, activation, features)[-1]
    return out
