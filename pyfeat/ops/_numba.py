"""CPU backend: BLAS (NumPy matmul) for the GEMM parts, Numba for the fused passes between them.

Parallelism is one worker per core (``numba.get_num_threads()`` workers, Python threads): worker
w takes row blocks w, w + T, w + 2T, ... and runs, on its own buffers, the block's GEMM in BLAS
limited to one thread and the fused element-wise pass in a serial Numba loop (``nogil``). Both
release the GIL, so the workers run in parallel with no thread pool handing the cores back and
forth: alternating a Numba parallel region with multi-threaded BLAS left spinning threads of one
pool competing with the other (measured: 10x the CPU time per kernel pair on these machines).
Sums over n are per-worker float64 accumulators added in worker order at the end, so a result
depends on neither timing nor the caller's block size beyond float64 rounding.

Buffers are allocated once per call and reused (fresh temporaries are expensive on these
machines: shared/PERF_NOTES.md). float32 math uses the arccos polynomial of the CUDA kernels
(kernel_math.hpp); float64 arccos is a degree-26 polynomial fit (error <= 2e-15, see
_acos64_coefficients) because libm's acos does not vectorize. Numba functions are compiled once
and cached on disk.
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numba import njit, types
from numba.extending import overload

from pyfeat.backend import memory_budget
from pyfeat.ops._common import blocks, rows_per_block, working_dtype

# fast-math without nnan/ninf: NaN and inf keep their IEEE meaning
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
# error_model="numpy": no ZeroDivisionError checks in the loops (they block vectorization)
_JIT = dict(fastmath=FASTMATH, cache=True, nogil=True, error_model="numpy")

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
    coef = _ACOS64_COEF
    one64, zero64, pi64 = 1.0, 0.0, math.pi

    def acos64(x):
        ax = abs(x)
        t = 2.0 * ax - one64
        p = coef[0]
        for k in range(1, coef.shape[0]):
            p = p * t + coef[k]
        r = math.sqrt(max(one64 - ax, zero64)) * p
        return pi64 - r if x < zero64 else r

    return acos64


def _acos64_coefficients(degree=26):
    """Power-basis coefficients (highest first) in t = 2|x| - 1 of acos(|x|)/sqrt(1 - |x|) on
    [0, 1], from Chebyshev interpolation at degree + 1 nodes (the function is analytic there;
    the last coefficients are below 1e-16). float64 arccos is then sqrt(1 - |x|) * P(t), a loop
    of FMAs that vectorizes, unlike libm's acos: |error| <= 2e-15 on [-1, 1] (tested)."""
    from numpy.polynomial import chebyshev

    nodes = np.cos(np.pi * (np.arange(degree + 1) + 0.5) / (degree + 1))
    x = (nodes + 1) / 2
    cheb = chebyshev.chebfit(nodes, np.arccos(x) / np.sqrt(1 - x), degree)
    return chebyshev.cheb2poly(cheb)[::-1].copy()


_ACOS64_COEF = _acos64_coefficients()


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
# fused element-wise passes (serial: each worker runs them on its own block)


@njit(**_JIT)
def _mask_times_y(Z, b, y):
    """Z[i, j] <- y[i] if Z[i, j] + b[j] >= 0 else 0   (in place)."""
    zero = b[0] * 0  # zero of the working dtype (b is finite)
    for i in range(Z.shape[0]):
        yi = y[i]
        for j in range(Z.shape[1]):
            Z[i, j] = yi if Z[i, j] + b[j] >= zero else zero


@njit(**_JIT)
def _relu_bias(Z, b):
    """Z <- relu(Z + b)   (in place)."""
    zero = b[0] * 0
    for i in range(Z.shape[0]):
        for j in range(Z.shape[1]):
            Z[i, j] = max(Z[i, j] + b[j], zero)


@njit(**_JIT)
def _kernel_inplace(code, G, sx, sz, p0, p1, p2):
    """G[i, j] <- k(G[i, j], sx[i], sz[j])   (in place)."""
    for i in range(G.shape[0]):
        sxi = sx[i]
        for j in range(G.shape[1]):
            G[i, j] = _kval(code, G[i, j], sxi, sz[j], p0, p1, p2)


@njit(**_JIT)
def _kernel_dot(code, G, sx, sz, v, p0, p1, p2, acc):
    """acc[i] += sum_j k(G[i, j], sx[i], sz[j]) v[j]   (one right-hand side, fully fused)."""
    for i in range(G.shape[0]):
        sxi = sx[i]
        s = sxi * 0
        for j in range(G.shape[1]):
            s += _kval(code, G[i, j], sxi, sz[j], p0, p1, p2) * v[j]
        acc[i] += s


# ---------------------------------------------------------------------------------------------
# workers


@functools.lru_cache(maxsize=None)
def _blas_controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


_blas_lock = threading.Lock()
_blas_users = 0
_blas_saved = None


@contextlib.contextmanager
def _single_threaded_blas():
    """BLAS at one thread while any op's workers run. The setting is process-wide, so concurrent
    ops (e.g. several Dask threads) share it: the first to enter saves and sets it, the last to
    leave restores it."""
    global _blas_users, _blas_saved
    with _blas_lock:
        if _blas_users == 0:
            _blas_saved = _blas_controller().limit(limits=1, user_api="blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                _blas_saved.restore_original_limits()
                _blas_saved = None


def _n_workers():
    return max(1, numba.get_num_threads())


def _rows(block_size, bytes_per_row):
    """Rows per block: the caller's, or the per-worker share of the memory budget."""
    return block_size or rows_per_block(bytes_per_row, memory_budget("cpu") // _n_workers())


def _run(n, rows, make_state, step):
    """Row blocks of range(n): worker w builds its state once (buffers, accumulators) and runs
    step(state, s, e) on blocks w, w + T, ...; returns the states in worker order. With one
    block (or one worker) it runs here and BLAS keeps its threads."""
    spans = list(blocks(n, rows))
    workers = min(_n_workers(), len(spans))

    def work(w):
        state = make_state()
        for s, e in spans[w::workers]:
            step(state, s, e)
        return state

    if workers == 1:
        return [work(0)]
    with _single_threaded_blas(), ThreadPoolExecutor(workers) as pool:
        return list(pool.map(work, range(workers)))


def _block_of(X, s, e, dt):
    return np.ascontiguousarray(X[s:e], dtype=dt)


def _sum(arrays):
    total = arrays[0]
    for a in arrays[1:]:
        total += a
    return total


# ---------------------------------------------------------------------------------------------
# ops (validated arrays in; see pyfeat.ops for the contract)


def first_step_gradient(X, y, W, a, b, block_size):
    n, d = X.shape
    m = W.shape[0]
    dt = W.dtype
    rows = min(_rows(block_size, dt.itemsize * (m + d)), n)

    def make_state():
        return np.empty(rows * m, dt), np.empty((m, d), dt), np.zeros((m, d), np.float64)

    def step(state, s, e):
        Zbuf, Gbuf, acc = state
        Xb = _block_of(X, s, e, dt)
        Z = Zbuf[: (e - s) * m].reshape(e - s, m)
        np.matmul(Xb, W.T, out=Z)
        _mask_times_y(Z, b, y[s:e])
        np.matmul(Z.T, Xb, out=Gbuf)
        acc += Gbuf

    acc = _sum([st[2] for st in _run(n, rows, make_state, step)])
    acc *= (-2.0 / n) * a[:, None]
    return acc.astype(dt)


def relu_features(X, W, b, block_size):
    n = X.shape[0]
    out = np.empty((n, W.shape[0]), W.dtype)

    def step(state, s, e):
        np.matmul(_block_of(X, s, e, W.dtype), W.T, out=out[s:e])
        _relu_bias(out[s:e], b)

    _run(n, _rows(block_size, W.dtype.itemsize * (X.shape[1] + W.shape[0])), lambda: None, step)
    return out


# Column panels of the Gram: the upper triangle of PᵀP as panel GEMMs (NumPy matmul releases the
# GIL, SciPy's syrk does not); 256-wide panels do 56% of the full product's FLOPs at m = 2048.
_PANEL = 256


def relu_gram(X, W, b, y, block_size):
    n, d = X.shape
    m = W.shape[0]
    dt = W.dtype
    rows = min(_rows(block_size, dt.itemsize * (m + d)), n)
    panels = list(blocks(m, _PANEL))

    def make_state():
        G = np.zeros((m, m), np.float64)
        c = None if y is None else np.zeros((m,) + y.shape[1:], np.float64)
        return np.empty(rows * m, dt), np.empty((_PANEL, m), dt), G, c

    def step(state, s, e):
        Pbuf, Cbuf, G, c = state
        P = Pbuf[: (e - s) * m].reshape(e - s, m)
        np.matmul(_block_of(X, s, e, dt), W.T, out=P)
        _relu_bias(P, b)
        for i0, i1 in panels:  # rows i0:i1 of the upper triangle: P[:, i0:i1]ᵀ P[:, i0:]
            C = Cbuf[: i1 - i0, : m - i0]
            np.matmul(P[:, i0:i1].T, P[:, i0:], out=C)
            G[i0:i1, i0:] += C
        if c is not None:
            c += P.T @ y[s:e]

    states = _run(n, rows, make_state, step)
    G = _sum([st[2] for st in states])
    G = np.triu(G) + np.triu(G, 1).T
    return G, (None if y is None else _sum([st[3] for st in states]))


def relu_predict(X, W, b, a, block_size):
    n, d = X.shape
    m = W.shape[0]
    dt = W.dtype
    rows = min(_rows(block_size, dt.itemsize * (m + d)), n)
    out = np.empty((n,) + a.shape[1:], dt)

    def step(Pbuf, s, e):
        P = Pbuf[: (e - s) * m].reshape(e - s, m)
        np.matmul(_block_of(X, s, e, dt), W.T, out=P)
        _relu_bias(P, b)
        np.matmul(P, a, out=out[s:e])

    _run(n, rows, lambda: np.empty(rows * m, dt), step)
    return out


def _sq_norms(A):
    return np.einsum("ij,ij->i", A, A)


# Tile of kernel products: rows of X x rows of Z. 256 x 4096 float32 is 4 MiB per worker: the GEMM
# writes it and the fused pass reads it back while it is still in cache.
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
    v = np.ascontiguousarray(V[:, 0])  # contiguous: the fused loop vectorizes only over unit stride
    out = np.empty((nx, k), dt)

    def make_state():
        return np.empty(tx * tz, dt), np.empty((tx, k), np.float64), np.empty((tx, k), dt)

    def step(state, s, e):
        Gbuf, acc, Kv = state
        Xb = _block_of(X, s, e, dt)
        sx = _sq_norms(Xb)
        A = acc[: e - s]
        A[:] = 0.0
        a1 = A.reshape(-1)  # k == 1: a contiguous 1-D view, the layout the fused loop is compiled for
        for zs, ze in blocks(nz, tz):
            G = Gbuf[: (e - s) * (ze - zs)].reshape(e - s, ze - zs)
            np.matmul(Xb, Z[zs:ze].T, out=G)
            if k == 1:
                _kernel_dot(code, G, sx, sz[zs:ze], v[zs:ze], p0, p1, p2, a1)
            else:
                _kernel_inplace(code, G, sx, sz[zs:ze], p0, p1, p2)
                np.matmul(G, V[zs:ze], out=Kv[: e - s])
                A += Kv[: e - s]
        out[s:e] = A

    _run(nx, tx, make_state, step)
    return out


def kernel_matrix(X, Z, kernel, block_size):
    nx, nz = X.shape[0], Z.shape[0]
    dt = working_dtype(X)
    p0, p1, p2 = (dt.type(p) for p in kernel.p)
    Zc = np.ascontiguousarray(Z, dtype=dt)
    sz = _sq_norms(Zc)
    out = np.empty((nx, nz), dt)

    def step(state, s, e):
        Xb = _block_of(X, s, e, dt)
        np.matmul(Xb, Zc.T, out=out[s:e])
        _kernel_inplace(kernel.code, out[s:e], _sq_norms(Xb), sz, p0, p1, p2)

    _run(nx, _rows(block_size, dt.itemsize * X.shape[1]), lambda: None, step)
    return out
