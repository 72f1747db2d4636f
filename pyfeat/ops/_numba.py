"""CPU backend: BLAS (NumPy matmul, SciPy syrk) for the GEMM parts, Numba for what sits between.

Each op walks over row blocks with buffers allocated once per call and reused (fresh temporaries
are expensive on these machines, PERF_NOTES.md). The fused element-wise passes run in parallel
Numba loops (compiled once, cached on disk); the GEMMs run in BLAS. The two never run at the
same time, so BLAS threads and Numba threads do not oversubscribe the cores.

float32 math uses the same arccos polynomial as the CUDA kernels (kernel_math.hpp).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange, types
from numba.extending import overload
from scipy.linalg import blas as _blas

from pyfeat.backend import memory_budget
from pyfeat.ops._common import blocks, rows_per_block, working_dtype

# fast-math without nnan/ninf: NaN and inf keep their IEEE meaning
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
_JIT = dict(fastmath=FASTMATH, cache=True, nogil=True)

NTK, NNGP, ARCCOS0, RBF, LAPLACE, POLY = range(6)


# ---------------------------------------------------------------------------------------------
# scalar math, specialised by dtype at compile time (float32 constants keep float32 loops float32)


def _acos(x):
    raise NotImplementedError  # compiled only, through the overload below


@overload(_acos, inline="always", jit_options={"fastmath": FASTMATH})
def _ov_acos(x):
    if x == types.float32:
        # Abramowitz & Stegun 4.4.46 on [0, 1], |error| <= 2e-8; acos(-x) = pi - acos(x)
        c = [np.float32(v) for v in (-0.0012624911, 0.0066700901, -0.0170881256, 0.0308918810,
                                     -0.0501743046, 0.0889789874, -0.2145988016, 1.5707963050)]
        c0, c1, c2, c3, c4, c5, c6, c7 = c
        one, zero, pi = np.float32(1), np.float32(0), np.float32(math.pi)

        def acos32(x):
            ax = abs(x)
            p = ((((((c0 * ax + c1) * ax + c2) * ax + c3) * ax + c4) * ax + c5) * ax + c6) * ax + c7
            r = math.sqrt(max(one - ax, zero)) * p
            return pi - r if x < zero else r

        return acos32
    return lambda x: math.acos(x)


def _kval(code, g, sx, sz, p0, p1, p2):
    raise NotImplementedError  # compiled only, through the overload below


@overload(_kval, inline="always", jit_options={"fastmath": FASTMATH})
def _ov_kval(code, g, sx, sz, p0, p1, p2):
    T = np.float32 if g == types.float32 else np.float64
    zero, one, two, pi, inv2pi = T(0), T(1), T(2), T(math.pi), T(0.5 / math.pi)

    def kval(code, g, sx, sz, p0, p1, p2):
        if code <= ARCCOS0:
            s = sx * sz
            c = g / math.sqrt(s) if s > zero else zero
            c = min(max(c, -one), one)
            pit = pi - _acos(c)
            if code == ARCCOS0:
                return pit * inv2pi
            nngp = math.sqrt(s) * (pit * c + math.sqrt(max(one - c * c, zero))) * inv2pi
            return g * pit * inv2pi + nngp if code == NTK else nngp
        if code == POLY:
            return (p0 * g + p1) ** p2
        d2 = max(sx + sz - two * g, zero)
        if code == RBF:
            return math.exp(-d2 / (two * p0 * p0))
        return math.exp(-math.sqrt(d2) / p0)

    return kval


# ---------------------------------------------------------------------------------------------
# fused element-wise passes


@njit(parallel=True, **_JIT)
def _mask_times_y(Z, b, y):
    """Z[i, j] <- y[i] if Z[i, j] + b[j] >= 0 else 0   (in place)."""
    zero = b[0] * 0  # zero of the working dtype (b is finite)
    for i in prange(Z.shape[0]):
        yi = y[i]
        for j in range(Z.shape[1]):
            Z[i, j] = yi if Z[i, j] + b[j] >= zero else zero


@njit(parallel=True, **_JIT)
def _relu_bias(Z, b):
    """Z <- relu(Z + b)   (in place)."""
    zero = b[0] * 0
    for i in prange(Z.shape[0]):
        for j in range(Z.shape[1]):
            Z[i, j] = max(Z[i, j] + b[j], zero)


@njit(parallel=True, **_JIT)
def _kernel_inplace(code, G, sx, sz, p0, p1, p2):
    """G[i, j] <- k(G[i, j], sx[i], sz[j])   (in place)."""
    for i in prange(G.shape[0]):
        sxi = sx[i]
        for j in range(G.shape[1]):
            G[i, j] = _kval(code, G[i, j], sxi, sz[j], p0, p1, p2)


@njit(parallel=True, **_JIT)
def _kernel_dot(code, G, sx, sz, v, p0, p1, p2, acc):
    """acc[i] += sum_j k(G[i, j], sx[i], sz[j]) v[j]   (one right-hand side, fully fused)."""
    for i in prange(G.shape[0]):
        sxi = sx[i]
        s = sxi * 0
        for j in range(G.shape[1]):
            s += _kval(code, G[i, j], sxi, sz[j], p0, p1, p2) * v[j]
        acc[i] += s


# ---------------------------------------------------------------------------------------------
# ops (validated arrays in; see pyfeat.ops for the contract)


def _rows(block_size, bytes_per_row):
    return block_size or rows_per_block(bytes_per_row, memory_budget("cpu"))


def _block_of(X, s, e, dt):
    return np.ascontiguousarray(X[s:e], dtype=dt)


def first_step_gradient(X, y, W, a, b, block_size):
    n, d = X.shape
    m = W.shape[0]
    dt = W.dtype
    rows = _rows(block_size, dt.itemsize * (m + d))
    Zbuf = np.empty(min(rows, n) * m, dt)
    Gbuf = np.empty((m, d), dt)
    acc = np.zeros((m, d), np.float64)
    for s, e in blocks(n, rows):
        Xb = _block_of(X, s, e, dt)
        Z = Zbuf[: (e - s) * m].reshape(e - s, m)
        np.matmul(Xb, W.T, out=Z)
        _mask_times_y(Z, b, y[s:e])
        np.matmul(Z.T, Xb, out=Gbuf)
        acc += Gbuf
    acc *= (-2.0 / n) * a[:, None]
    return acc.astype(dt)


def relu_features(X, W, b, block_size):
    n = X.shape[0]
    out = np.empty((n, W.shape[0]), W.dtype)
    for s, e in blocks(n, _rows(block_size, W.dtype.itemsize * X.shape[1])):
        np.matmul(_block_of(X, s, e, W.dtype), W.T, out=out[s:e])
        _relu_bias(out[s:e], b)
    return out


def relu_gram(X, W, b, y, block_size):
    n, d = X.shape
    m = W.shape[0]
    dt = W.dtype
    syrk = _blas.ssyrk if dt == np.float32 else _blas.dsyrk
    rows = _rows(block_size, dt.itemsize * (m + d))
    Pbuf = np.empty(min(rows, n) * m, dt)
    Cbuf = np.zeros((m, m), dt, order="F")
    G = np.zeros((m, m), np.float64)
    c = None if y is None else np.zeros((m,) + y.shape[1:], np.float64)
    for s, e in blocks(n, rows):
        P = Pbuf[: (e - s) * m].reshape(e - s, m)
        np.matmul(_block_of(X, s, e, dt), W.T, out=P)
        _relu_bias(P, b)
        # P.T is F-ordered (m, rows): syrk(trans=0) gives P.T @ P in the upper triangle
        Cbuf = syrk(1.0, P.T, beta=0.0, c=Cbuf, trans=0, lower=0, overwrite_c=1)
        G += Cbuf
        if c is not None:
            c += P.T @ y[s:e]
    G = np.triu(G) + np.triu(G, 1).T
    return G, c


def relu_predict(X, W, b, a, block_size):
    n, d = X.shape
    m = W.shape[0]
    dt = W.dtype
    rows = _rows(block_size, dt.itemsize * (m + d))
    Pbuf = np.empty(min(rows, n) * m, dt)
    out = np.empty((n,) + a.shape[1:], dt)
    for s, e in blocks(n, rows):
        P = Pbuf[: (e - s) * m].reshape(e - s, m)
        np.matmul(_block_of(X, s, e, dt), W.T, out=P)
        _relu_bias(P, b)
        np.matmul(P, a, out=out[s:e])
    return out


def _sq_norms(A):
    return np.einsum("ij,ij->i", A, A)


# Tile shape for kernel products: rows of X x rows of Z. 256 x 4096 float32 is 4 MiB: the GEMM
# writes it and the fused pass reads it back while it is still in the last-level cache.
_TILE_X, _TILE_Z = 256, 4096


def kernel_matvec(X, Z, V, kernel, block_size):
    nx = X.shape[0]
    nz, k = V.shape
    dt = Z.dtype
    code = kernel.code
    p0, p1, p2 = (dt.type(p) for p in kernel.p)
    tx = min(block_size or _TILE_X, nx)
    tz = min(_TILE_Z, nz)
    sz = _sq_norms(Z)
    Gbuf = np.empty(tx * tz, dt)
    acc = np.empty((tx, k), np.float64)
    Kv = np.empty((tx, k), dt)
    out = np.empty((nx, k), dt)
    for s, e in blocks(nx, tx):
        Xb = _block_of(X, s, e, dt)
        sx = _sq_norms(Xb)
        A = acc[: e - s]
        A[:] = 0.0
        for zs, ze in blocks(nz, tz):
            G = Gbuf[: (e - s) * (ze - zs)].reshape(e - s, ze - zs)
            np.matmul(Xb, Z[zs:ze].T, out=G)
            if k == 1:
                _kernel_dot(code, G, sx, sz[zs:ze], V[zs:ze, 0], p0, p1, p2, A[:, 0])
            else:
                _kernel_inplace(code, G, sx, sz[zs:ze], p0, p1, p2)
                np.matmul(G, V[zs:ze], out=Kv[: e - s])
                A += Kv[: e - s]
        out[s:e] = A
    return out


def kernel_matrix(X, Z, kernel, block_size):
    nx, nz = X.shape[0], Z.shape[0]
    dt = working_dtype(X)
    p0, p1, p2 = (dt.type(p) for p in kernel.p)
    Zc = np.ascontiguousarray(Z, dtype=dt)
    sz = _sq_norms(Zc)
    out = np.empty((nx, nz), dt)
    for s, e in blocks(nx, _rows(block_size, dt.itemsize * X.shape[1])):
        Xb = _block_of(X, s, e, dt)
        np.matmul(Xb, Zc.T, out=out[s:e])
        _kernel_inplace(kernel.code, out[s:e], _sq_norms(Xb), sz, p0, p1, p2)
    return out
