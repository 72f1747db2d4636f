"""CPU device: BLAS (NumPy matmul) for the GEMM parts, Numba for the fused passes between them.

It provides the primitives and the executor of ``pyfeat.ops._device.Device``; the blocked loops
are ``pyfeat.ops.blocked``'s. The executor is one worker per core (``numba.get_num_threads()``
workers, Python threads): worker w takes row blocks w, w + T, w + 2T, ... and runs, on its own
buffers, the block's GEMM in BLAS limited to one thread and the fused element-wise pass in a
serial Numba loop (``nogil``). Both release the GIL, so the workers run in parallel with no
thread pool handing the cores back and forth: alternating a Numba parallel region with
multi-threaded BLAS left spinning threads of one pool competing with the other (measured: 10x
the CPU time per kernel pair on these machines). With one block (or one worker) the step runs
in the calling thread and BLAS keeps its threads.

Buffers are allocated once per call and reused (fresh temporaries are expensive on these
machines: shared/PERF_NOTES.md). float32 math uses the arccos polynomial of the CUDA kernels
(``pyfeat._kernel_table.ACOS32_COEFFICIENTS``, also in kernel_math.hpp); float64 arccos is a
degree-26 polynomial fit (error <= 2e-15, see _acos64_coefficients) because libm's acos does not
vectorize. Numba functions are compiled once and cached on disk.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numba import njit, types
from numba.extending import overload

from pyfeat._activation_table import TABLE as ACTIVATIONS
from pyfeat._kernel_table import ACOS32_COEFFICIENTS, TABLE
from pyfeat._linalg import single_threaded_blas as _single_threaded_blas
from pyfeat.ops._device import Device
from pyfeat.ops._plan import blocks

# fast-math without nnan/ninf: NaN and inf keep their IEEE meaning
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
# error_model="numpy": no ZeroDivisionError checks in the loops (they block vectorization)
_JIT = dict(fastmath=FASTMATH, cache=True, nogil=True, error_model="numpy")

NTK, NNGP, ARCCOS0, RBF, LAPLACE, POLY = (TABLE[k].code for k in ("ntk", "nngp", "arccos0", "rbf", "laplace", "poly"))
RELU3, SOFTPLUS, RELU2, CUBIC = (ACTIVATIONS[k].code for k in ("relu3", "softplus", "relu2", "cubic"))


# ---------------------------------------------------------------------------------------------
# scalar math, specialised by dtype at compile time (float32 constants keep float32 loops float32)


def _acos(x):
    raise NotImplementedError  # compiled only, through the overload below


@overload(_acos, inline="always", jit_options={"fastmath": FASTMATH})
def _ov_acos(x):
    if x == types.float32:
        # Abramowitz & Stegun 4.4.46 on [0, 1], |error| <= 2e-8; acos(-x) = pi - acos(x)
        c0, c1, c2, c3, c4, c5, c6, c7 = (np.float32(v) for v in ACOS32_COEFFICIENTS)
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
        if code == NTK or code == NNGP or code == ARCCOS0:
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
def _relu_residual(Z, b, a, y, sq, ga, gb):
    """Per row i: r = Σ_j a_j relu(Z[i, j] + b[j]) − y[i] (float64); sq[0] += r², ga[j] += r relu(·),
    gb[j] += r 1[Z[i, j] + b[j] ≥ 0], Z[i, j] <- r 1[Z[i, j] + b[j] ≥ 0]   (in place)."""
    zero = b[0] * 0
    s = 0.0
    for i in range(Z.shape[0]):
        f = 0.0
        for j in range(Z.shape[1]):
            f += a[j] * max(Z[i, j] + b[j], zero)
        r = f - y[i]
        s += r * r
        for j in range(Z.shape[1]):
            u = Z[i, j] + b[j]
            if u >= zero:
                ga[j] += r * u
                gb[j] += r
                Z[i, j] = r
            else:
                Z[i, j] = zero
    sq[0] += s


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


def _activation_derivatives(code, t):
    raise NotImplementedError  # compiled only, through the overload below


@overload(_activation_derivatives, inline="always", jit_options={"fastmath": FASTMATH})
def _ov_activation_derivatives(code, t):
    """(σ'(t), σ''(t)) of activation ``code``, as ``activation_derivatives`` in
    csrc/include/pyfeat/taylor_math.hpp (pyfeat._activation_table). ``code`` must be a
    compile-time constant: each activation compiles alone, so the loops vectorize."""
    T = np.float32 if t == types.float32 else np.float64
    zero, half, one = T(0), T(0.5), T(1)

    def relu3(code, t):
        r = max(t, zero)
        return half * r * r, r

    def softplus(code, t):  # e = e^-|t|: p = 1/(1 + e) or e/(1 + e), p(1 − p) = e/(1 + e)²
        e = math.exp(-abs(t))
        q = one / (one + e)
        return (q if t >= zero else e * q), e * q * q

    def relu2(code, t):
        return max(t, zero), (one if t >= zero else zero)

    def cubic(code, t):
        return half * t * t, t

    # None for a code that is not a literal: Numba then retypes the call with the literal value
    # (every caller passes a constant: the loops below)
    return {RELU3: relu3, SOFTPLUS: softplus, RELU2: relu2, CUBIC: cubic}.get(getattr(code, "literal_value", None))


def _taylor_neuron(code, u0, u, a1, a2):
    raise NotImplementedError  # compiled only, through the overload below


@overload(_taylor_neuron, inline="always", jit_options={"fastmath": FASTMATH})
def _ov_taylor_neuron(code, u0, u, a1, a2):
    """(term, slope) of one neuron of the Taylor model, as ``taylor_neuron`` in
    csrc/include/pyfeat/taylor_math.hpp: term = a1 σ'(u0) u + a2 σ''(u0) u²/2, slope = its
    derivative in u, a1 σ'(u0) + a2 σ''(u0) u."""
    half = np.float32(0.5) if u0 == types.float32 else 0.5

    def neuron(code, u0, u, a1, a2):
        d1, d2 = _activation_derivatives(code, u0)
        lin = a1 * d1
        quad = a2 * d2 * u
        return (lin + half * quad) * u, lin + quad

    return neuron


@njit(inline="always", **_JIT)
def _taylor_residual_rows(Z, bb, a1, a2, y, code, sq, gb):
    m = a1.shape[0]
    s = 0.0
    for i in range(Z.shape[0]):
        f = 0.0
        for j in range(m):
            term, slope = _taylor_neuron(code, Z[i, j] + bb[j], Z[i, m + j] + bb[m + j], a1[j], a2[j])
            f += term
            Z[i, j] = slope
        r = f - y[i]
        s += r * r
        for j in range(m):
            p = r * Z[i, j]
            gb[j] += p
            Z[i, j] = p
    sq[0] += s


@njit(inline="always", **_JIT)
def _taylor_forward_rows(Z, bb, a1, a2, code, out):
    m = a1.shape[0]
    for i in range(Z.shape[0]):
        f = 0.0
        for j in range(m):
            f += _taylor_neuron(code, Z[i, j] + bb[j], Z[i, m + j] + bb[m + j], a1[j], a2[j])[0]
        out[i] = f


# The loops above are inlined once per activation with its code a literal constant, so each
# compiles that activation's formulas alone (no branch in the inner loop: it vectorizes).


@njit(**_JIT)
def _taylor_residual(Z, bb, a1, a2, y, code, sq, gb):
    """Per row i of Z = [U0 | U] (pre-activations before the biases bb): r = Σ_j term_j − y[i]
    (float64), sq[0] += r², and Z[i, j] <- r slope_j, gb[j] += r slope_j for j < m (in place)."""
    if code == RELU3:
        _taylor_residual_rows(Z, bb, a1, a2, y, RELU3, sq, gb)
    elif code == SOFTPLUS:
        _taylor_residual_rows(Z, bb, a1, a2, y, SOFTPLUS, sq, gb)
    elif code == RELU2:
        _taylor_residual_rows(Z, bb, a1, a2, y, RELU2, sq, gb)
    else:
        _taylor_residual_rows(Z, bb, a1, a2, y, CUBIC, sq, gb)


@njit(**_JIT)
def _taylor_forward(Z, bb, a1, a2, code, out):
    """out[i] = Σ_j term_j of row i of Z = [U0 | U] (summed in float64)."""
    if code == RELU3:
        _taylor_forward_rows(Z, bb, a1, a2, RELU3, out)
    elif code == SOFTPLUS:
        _taylor_forward_rows(Z, bb, a1, a2, SOFTPLUS, out)
    elif code == RELU2:
        _taylor_forward_rows(Z, bb, a1, a2, RELU2, out)
    else:
        _taylor_forward_rows(Z, bb, a1, a2, CUBIC, out)


# ---------------------------------------------------------------------------------------------
# workers


def _block_of(X, s, e, dt):
    return np.ascontiguousarray(X[s:e], dtype=dt)


# Column panels of the Gram: the upper triangle of PᵀP as panel GEMMs (NumPy matmul releases the
# GIL, SciPy's syrk does not); 256-wide panels do 56% of the full product's FLOPs at m = 2048.
_PANEL = 256


class NumbaDevice(Device):
    """The "numba" backend (see the module docstring)."""

    name = "numba"
    kind = "cpu"
    # Tile of kernel products: rows of X x rows of Z. 256 x 4096 float32 is 4 MiB per worker: the
    # GEMM writes it and the fused pass reads it back while it is still in cache.
    kernel_tile = (256, 4096)

    @property
    def workers(self):
        return max(1, numba.get_num_threads())

    def run(self, n, rows, make_state, step):
        spans = list(blocks(n, rows))
        workers = min(self.workers, len(spans))
        errstate = np.geterr()  # NumPy's error handling is per thread: the workers take the caller's

        def work(w):
            with np.errstate(**errstate):
                state = make_state()
                for s, e in spans[w::workers]:
                    step(state, s, e)
                return state

        if workers == 1:
            return [work(0)]
        with _single_threaded_blas(), ThreadPoolExecutor(workers) as pool:
            return list(pool.map(work, range(workers)))

    block = staticmethod(_block_of)

    @staticmethod
    def matmul(A, B, out):
        np.matmul(A, B, out=out)

    @staticmethod
    def sq_norms(A):
        return np.einsum("ij,ij->i", A, A)

    mask_times_y = staticmethod(_mask_times_y)
    relu_bias = staticmethod(_relu_bias)

    @staticmethod
    def residual_workspace(rows, m):
        return None

    @staticmethod
    def relu_residual(Z, b, a, y, sq, ga, gb, ws):
        _relu_residual(Z, b, a, y, sq, ga, gb)

    @staticmethod
    def taylor_workspace(rows, m):
        return None

    @staticmethod
    def taylor_residual(Z, bb, a1, a2, y, code, sq, gb, ws):
        _taylor_residual(Z, bb, a1, a2, y, code, sq, gb)

    taylor_forward = staticmethod(_taylor_forward)

    @staticmethod
    def _params(kernel, dt):
        return tuple(dt.type(p) for p in kernel.p)

    def kernel_apply(self, kernel, G, sx, sz):
        _kernel_inplace(kernel.code, G, sx, sz, *self._params(kernel, G.dtype))

    @staticmethod
    def tile_cell_bytes(dt):
        return dt.itemsize

    @staticmethod
    def kernel_workspace(rows, cols, k, dt):
        """The tile buffer, and for k > 1 columns the tile's product with V."""
        return np.empty(rows * cols, dt), (np.empty((rows, k), dt) if k > 1 else None)

    def kernel_reduce(self, kernel, Xb, sx, Zc, szc, Vc, acc, ws):
        """acc += K(Xb, Zc) Vc: the tile of inner products by BLAS, then for one column the
        kernel and the reduction in one fused pass, else the kernel in place and a GEMM."""
        Gbuf, Kv = ws
        rows, cols = Xb.shape[0], Zc.shape[0]
        G = Gbuf[: rows * cols].reshape(rows, cols)
        np.matmul(Xb, Zc.T, out=G)
        p = self._params(kernel, G.dtype)
        if Kv is None:
            # contiguous 1-D views: the layout the fused loop is compiled (and vectorized) for
            _kernel_dot(kernel.code, G, sx, szc, np.ascontiguousarray(Vc[:, 0]), *p, acc.reshape(-1))
        else:
            _kernel_inplace(kernel.code, G, sx, szc, *p)
            np.matmul(G, Vc, out=Kv[:rows])
            acc += Kv[:rows]

    @staticmethod
    def gram_workspace(m, dt):
        return np.empty((_PANEL, m), dt)

    @staticmethod
    def gram_update(P, G, ws):
        """The upper triangle of G += PᵀP, row panels i0:i1 as P[:, i0:i1]ᵀ P[:, i0:]."""
        m = P.shape[1]
        for i0, i1 in blocks(m, _PANEL):
            C = ws[: i1 - i0, : m - i0]
            np.matmul(P[:, i0:i1].T, P[:, i0:], out=C)
            G[i0:i1, i0:] += C

    @staticmethod
    def gram_result(G):
        return np.triu(G) + np.triu(G, 1).T
