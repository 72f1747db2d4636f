"""CPU device: BLAS (NumPy matmul) for the GEMM parts, Numba for the fused passes between them.

It provides the primitives and the executor of ``pyfeat.ops._device.Device``; the blocked loops
are ``pyfeat.ops.blocked``'s. The executor is one worker per core (``numba.get_num_threads()``
workers, Python threads): worker w takes row blocks w, w + T, w + 2T, ... and runs, on its own
buffers, the block's GEMM in BLAS limited to one thread and the fused element-wise pass in a
serial Numba loop (``nogil``). Both release the GIL, so the workers run in parallel with no
thread pool handing the cores back and forth: alternating a Numba parallel region with
multi-threaded BLAS left spinning threads of one pool competing with the other (measured: 10x
the CPU time per kernel pair on these machines). With one block (or one worker) the step runs
in the calling thread and BLAS keeps its threads (except for the kernel ops, whose tile GEMMs are
too small to share: ``run(..., tiled=True)``).

Buffers are allocated once per call and reused (fresh temporaries are expensive on these
machines: shared/PERF_NOTES.md). The cosine kernels (ntk, nngp, arccos0) are evaluated as
polynomials of |cos t| with one square root per pair and no division (see ``_cosine_unit``);
arccos itself is the polynomial of the CUDA kernels in float32
(``pyfeat._kernel_table.ACOS32_COEFFICIENTS``, also in kernel_math.hpp) and a degree-26 fit in
float64 (error <= 2e-15, see _acos64_coefficients), because libm's acos does not vectorize.
Numba (LLVM) vectorizes these loops with 256-bit registers on AVX-512 CPUs too (its tuning for
them prefers 256 bits). Numba functions are compiled once and cached on disk.

On x86-64 CPUs with AVX-512 or AVX2 + FMA, kernel_matvec's tiles of the cosine kernels (up to
SIMD_COLUMNS columns: 32 on AVX-512, 4 on AVX2; d <= SIMD_MAX_D) can skip the GEMM + pass: one loop of pyfeat._core
(csrc/cpu_cosine.cpp, compiled for both instruction sets) keeps a block of inner products in
registers (8 x 32 float32 on AVX-512, 4 x 16 on AVX2), evaluates the kernel on it in the form of
_COSINE_FORMS (the coefficients above, passed from here) and adds it into the sums (float64;
float32 within a tile for float32 X and V), so
the tile never goes through the cache, and it adds both sides of a tile from one evaluation, so
that the solvers' K(X, X) V takes each pair once. Where it runs (SIMD_ONE_SIDED): on AVX-512 for
every product (NTK, n = 20,000, d = 32: 0.22 s against 0.29 s); on AVX2 for the symmetric
product only, where it evaluates half the pairs (AMD EPYC, d = 32, float32: 0.29-0.30 s against
0.42-0.47 s for the one-sided BLAS + Numba product) — its one-sided product there measured no
faster than BLAS + Numba (float32, within the noise at d = 32-128) or slower (float64: 10-25 %).
Where the one-sided product runs there (AVX-512), the same register blocks also write the kernel
tiles that are not reduced in registers (SIMD_STORE, ``writes_kernel``): kernel_matrix's, and
those a BLAS GEMM reduces against more than SIMD_COLUMNS columns of V (the preconditioners'
features, several outputs with ridge="auto") — one write of the tile instead of a GEMM tile read
back and rewritten by the kernel pass (NTK, n = 20,000, d = 32, float32: kernel_matrix 0.18 s
against 0.24 s).
Elsewhere (another CPU, no compiled core) the Numba passes run, and the symmetric product takes
each pair once there too (kernel_reduce_pair: the BLAS tile, its kernel pass, then one more pass
over the tile for the transposed side).
Both recompute the cosines of (anti)parallel pairs from the rows' differences (NEAR_PARALLEL).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numba import njit, types
from llvmlite import ir
from numba.extending import intrinsic, overload

from pyfeat import backend as _backend
from pyfeat._activation_table import TABLE as ACTIVATIONS
from pyfeat._kernel_table import ACOS32_COEFFICIENTS, TABLE
from pyfeat._linalg import single_threaded_blas as _single_threaded_blas
from pyfeat.ops._device import Device, Workspace
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


def _power_fit(f, degree):
    """Power-basis coefficients (highest first) in t = 2a - 1 of f(a) on [0, 1], from Chebyshev
    interpolation at degree + 1 nodes (f analytic on [0, 1]: the error falls geometrically with
    the degree; each use states the degree it needs)."""
    from numpy.polynomial import chebyshev

    nodes = np.cos(np.pi * (np.arange(degree + 1) + 0.5) / (degree + 1))
    return chebyshev.cheb2poly(chebyshev.chebfit(nodes, f((nodes + 1) / 2), degree))[::-1].copy()


def _acos_over_sqrt(a):
    """P(a) = arccos(a)/sqrt(1 - a) on [0, 1), analytic on [0, 1] (P(1) = sqrt(2))."""
    return np.arccos(a) / np.sqrt(1 - a)


def _acos64_coefficients(degree=26):
    """P(a) = acos(a)/sqrt(1 - a) in t = 2a - 1: float64 arccos is then sqrt(1 - |x|) * P(t), a
    loop of FMAs that vectorizes, unlike libm's acos: |error| <= 2e-15 on [-1, 1] (tested)."""
    return _power_fit(_acos_over_sqrt, degree)


_ACOS64_COEF = _acos64_coefficients()


# The cosine kernels (ntk, nngp, arccos0) as functions of c = cos t alone: with a = |c|,
# P(a) = arccos(a)/sqrt(1 - a) and arccos(-a) = pi - arccos(a),
#
#   2 pi K_ntk / (|x||z|)  = 2c(pi - t) + sin t = 2 pi max(c, 0) + sqrt(1 - a) Q_ntk(a),   Q_ntk  = sqrt(1 + a) - 2a P(a)
#   2 pi K_nngp / (|x||z|) =  c(pi - t) + sin t =   pi max(c, 0) + sqrt(1 - a) Q_nngp(a),  Q_nngp = sqrt(1 + a) -  a P(a)
#   2 pi K_arccos0         =  pi - t            =  pi - arccos(c)
#
# Q is analytic on [0, 1], so each kernel costs one polynomial and one square root per pair (no
# division, no second sqrt for sin t); c comes from rows scaled to unit norm before the GEMM
# (zero rows stay zero: c = 0, the convention t = pi/2). Degrees: float32 7 (|error| <= 4e-8 in
# exact arithmetic), float64 18 (<= 4e-15); tests/test_ops.py checks every kernel.
COSINE = (NTK, NNGP, ARCCOS0)


def _q_ntk(a):
    return np.sqrt(1 + a) - 2 * a * _acos_over_sqrt(a)


def _q_nngp(a):
    return np.sqrt(1 + a) - a * _acos_over_sqrt(a)


def _horner(coefficients, dtype):
    """A Numba function t -> p(t), Horner's rule with the coefficients (highest first) written
    out as constants of ``dtype``: a loop over a coefficient array would not vectorize."""
    consts = {f"c{i}": dtype(c) for i, c in enumerate(coefficients)}
    expr = "c0"
    for i in range(1, len(coefficients)):
        expr = f"({expr} * t + c{i})"
    exec(f"def horner(t):\n    return {expr}\n", consts)
    return njit(inline="always", fastmath=FASTMATH)(consts["horner"])


_Q_COEFFICIENTS = {(code, dt): _power_fit(f, degree)
                   for code, f in ((NTK, _q_ntk), (NNGP, _q_nngp))
                   for dt, degree in ((np.float32, 7), (np.float64, 18))}
_Q = {(code, dt): _horner(c, dt) for (code, dt), c in _Q_COEFFICIENTS.items()}


def _cosine_unit(code, c):
    raise NotImplementedError  # compiled only, through the overload below


@overload(_cosine_unit, inline="always", jit_options={"fastmath": FASTMATH})
def _ov_cosine_unit(code, c):
    """h(c) = 2 pi K/(|x||z|) (ntk, nngp) or 2 pi K (arccos0) for a literal kernel ``code``
    (formulas above; |c| may exceed 1 by rounding: then sqrt(1 - a) is 0 and h is continuous)."""
    if not isinstance(code, types.IntegerLiteral):
        return None
    T = np.float32 if c == types.float32 else np.float64
    zero, one, pi = T(0), T(1), T(math.pi)
    if code.literal_value == ARCCOS0:
        return lambda code, c: pi - _acos(c)
    q = _Q[code.literal_value, T]
    slope = T(2 * math.pi) if code.literal_value == NTK else pi

    def unit(code, c):
        a = abs(c)
        return slope * max(c, zero) + math.sqrt(max(one - a, zero)) * q(a + a - one)

    return unit


# The same h in the single form of the SIMD tile reduction (csrc/cpu_cosine.cpp), with a = |c|:
#   r = sqrt(max(1 - a, 0)) P(mu a + nu),   h = slope c + offset + sign r if c >= 0 else r,
# as (slope, offset, sign, mu, nu, radial, P's coefficients): ntk and nngp as above (P = Q in
# t = 2a - 1), arccos0 as pi - arccos(c) with _acos's polynomial (in a for float32, t for float64).
_COSINE_FORMS = {
    **{(code, dt): (slope, 0.0, 1.0, 2.0, -1.0, True, _Q_COEFFICIENTS[code, dt])
       for code, slope in ((NTK, 2 * math.pi), (NNGP, math.pi)) for dt in (np.float32, np.float64)},
    (ARCCOS0, np.float32): (0.0, math.pi, -1.0, 1.0, 0.0, False, np.array(ACOS32_COEFFICIENTS)),
    (ARCCOS0, np.float64): (0.0, math.pi, -1.0, 2.0, -1.0, False, _ACOS64_COEF),
}


# the SIMD tile reduction of the cosine kernels (NumbaDevice.kernel_reduce), for up to
# SIMD_COLUMNS columns of V and SIMD_MAX_D columns of X (the bias included); above that BLAS's
# blocked GEMM wins (NTK, 2 threads, time / GEMM floor, AVX-512 loop against BLAS + Numba, 1 and 3
# columns: d = 32 2.6-2.8 against 3.3-3.6 (float32), d = 128 1.4-1.6 against 1.7-2.1, d = 256
# 1.5-1.7 against 1.4-1.9, d = 512 1.5-1.7 against 1.0-1.5). SIMD_ONE_SIDED: whether one-sided
# products take it too (AVX-512), or only the symmetric one (AVX2: module docstring).
SIMD_ISA = _backend._cosine_loop_isa()
SIMD_REDUCE = _backend._core().cosine_reduce if SIMD_ISA else None
SIMD_STORE = getattr(_backend._core(), "cosine_store", None) if SIMD_ISA else None  # None: a core built before it
SIMD_ONE_SIDED = SIMD_ISA == "avx512"
# The most columns of V the loop reduces against from one evaluation of each pair, per ISA (the
# loop takes up to _core.cosine_max_columns = 32, csrc/cpu_cosine.cpp; beyond 4 it counts them at run time,
# its sums in the L1 cache). AVX-512: 32 (ridge="auto"'s 25 shifted systems; NTK, n = 20,000,
# d = 32, 2-core Xeon, float32, against the tile stored by the loop and reduced by GEMM: 8 columns
# 0.27 s against 0.41 s one-sided, 0.17 / 0.29 s symmetric; 25 columns 0.40 / 0.63 s, 0.28 / 0.40 s;
# float64 25 columns 0.77 / 1.07 s, 0.47 / 0.65 s). AVX2 (16 registers): 4 (its loop with 8 and 25
# columns measured no faster than the BLAS tile and two GEMMs, 25 float32 columns 0.54 s
# against 0.38 s).
SIMD_COLUMNS = {"avx512": getattr(_backend._core(), "cosine_max_columns", 4), "avx2": 4}  # (an older core: 4)
SIMD_MAX_D = 256


def _typed(A, x):
    raise NotImplementedError  # compiled only, through the overload below


@overload(_typed, inline="always")
def _ov_typed(A, x):
    """x as a number of A's dtype (a compile-time cast)."""
    T = A.dtype
    return lambda A, x: T(x)


@intrinsic
def _fma(typingctx, a, b, c):
    """a b + c rounded once (llvm.fma: fast-math reassociation neither splits nor merges it)."""
    if not (a == b == c and isinstance(a, types.Float)):
        return None
    return a(a, b, c), lambda context, builder, signature, args: builder.fma(*args)


@intrinsic
def _float_from_bits(typingctx, bits):
    """The float32 (float64) whose bits are the int32 (int64) ``bits``."""
    ty = {types.int32: (types.float32, ir.FloatType()), types.int64: (types.float64, ir.DoubleType())}.get(bits)
    if ty is None:
        return None
    return ty[0](bits), lambda context, builder, signature, args: builder.bitcast(args[0], ty[1])


def _exp_nonpositive(dtype):
    """A Numba function x -> exp(x) for x ≤ 0 that vectorizes (libm's exp does not, and Numba has
    no SVML here): k = round(x/ln 2), r = x − k ln 2 in two FMAs with ln 2 = hi + lo (Cody & Waite;
    hi with the low bits zero, so that k hi is exact), exp(r) by its Taylor polynomial on
    |r| ≤ ln(2)/2 (degree 7 in float32, 13 in float64: truncation < 5e-9 and 5e-18 relative) and
    2^k from the bits of the exponent; 0 below the smallest normal's logarithm (no subnormals),
    NaN for NaN.
    Measured within 1 ulp of exp (tests/test_ops.py), 7x (float32) and 2x (float64) libm's speed
    in a loop over a tile."""
    T = np.dtype(dtype).type
    single = T is np.float32
    I = np.int32 if single else np.int64
    degree, bias, shift = (7, 127, 23) if single else (13, 1023, 52)
    hi, lo = (0.693359375, -2.12194440e-4) if single else (6.93147180369123816490e-01, 1.90821492927058770002e-10)
    consts = {f"c{i}": T(1 / math.factorial(degree - i)) for i in range(degree + 1)}
    taylor = "c0"
    for i in range(1, degree + 1):
        taylor = f"({taylor} * r + c{i})"
    consts.update(np=np, I=I, bias=I(bias), shift=I(shift), hi=T(hi), lo=T(lo), log2e=T(1 / math.log(2)),
                  low=T(np.log(np.finfo(T).tiny)), half=T(0.5), zero=T(0), _fma=_fma, _bits=_float_from_bits)
    exec("def exp(x):\n"
         "    y = max(x, low)\n"
         "    k = np.floor(y * log2e + half)\n"
         "    r = _fma(-k, lo, _fma(-k, hi, y))\n"
         f"    p = {taylor}\n"
         "    if x >= low:\n"
         "        return p * _bits(I((I(k) + bias) << shift))\n"
         "    return zero if x < low else x\n", consts)  # x NaN: NaN
    return njit(inline="always", fastmath=FASTMATH)(consts["exp"])


_EXP = {np.float32: _exp_nonpositive(np.float32), np.float64: _exp_nonpositive(np.float64)}


def _kval(code, g, sx, sz, p0, p1, p2):
    raise NotImplementedError  # compiled only, through the overload below


@overload(_kval, inline="always", jit_options={"fastmath": FASTMATH})
def _ov_kval(code, g, sx, sz, p0, p1, p2):
    """k(g, sx, sz) of the kernels that are not cosine kernels (rbf, laplace, poly)."""
    T = np.float32 if g == types.float32 else np.float64
    zero, two = T(0), T(2)
    exp = _EXP[T]

    def kval(code, g, sx, sz, p0, p1, p2):
        if code == POLY:
            return (p0 * g + p1) ** p2
        d2 = max(sx + sz - two * g, zero)
        if code == RBF:
            return exp(-d2 / (two * p0 * p0))
        return exp(-math.sqrt(d2) / p0)

    return kval


# ---------------------------------------------------------------------------------------------
# fused element-wise passes (serial: each worker runs them on its own block)


@njit(**_JIT)
def _mask_times_y(Z, b, y):
    """Z[i, j] <- y[i] if Z[i, j] + b[j] >= 0 else 0   (in place)."""
    zero = _typed(b, 0)
    for i in range(Z.shape[0]):
        yi = y[i]
        for j in range(Z.shape[1]):
            Z[i, j] = yi if Z[i, j] + b[j] >= zero else zero


@njit(**_JIT)
def _relu_residual(Z, b, a, y, sq, ga, gb):
    """Per row i: r = Σ_j a_j relu(Z[i, j] + b[j]) − y[i] (float64); sq[0] += r², ga[j] += r relu(·),
    gb[j] += r 1[Z[i, j] + b[j] ≥ 0], Z[i, j] <- r 1[Z[i, j] + b[j] ≥ 0]   (in place)."""
    zero = _typed(b, 0)
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
    zero = _typed(b, 0)
    for i in range(Z.shape[0]):
        for j in range(Z.shape[1]):
            Z[i, j] = max(Z[i, j] + b[j], zero)


# kernel passes: K = u_i v_j h(c_ij) for the cosine kernels (u, v from the row norms), k(g) for
# the others; each entry point branches on the kernel code once and runs a loop compiled for it


@njit(**_JIT)
def _inverse_norms(sq, radial, factor, r, scale):
    """r[j] = 1/|z_j| (0 for a zero row); scale[j] = factor |z_j| if radial else factor (the
    blocked loop keeps |z_j|² within 2^±60: ``blocked._cosine_rows``)."""
    zero, one = _typed(r, 0), _typed(r, 1)
    for j in range(sq.shape[0]):
        n = math.sqrt(sq[j])
        r[j] = one / n if n > zero else zero
        scale[j] = factor * (n if radial else one)


@njit(**_JIT)
def _scaled_transpose(V, v, W):
    """W[c, j] = v[j] V[j, c]."""
    for j in range(V.shape[0]):
        for c in range(V.shape[1]):
            W[c, j] = v[j] * V[j, c]


@njit(inline="always", **_JIT)
def _reduce_row(row, W, scale, out):
    """out[c] += scale sum_j row[j] W[c, j], summed in float64."""
    for c in range(W.shape[0]):
        s = 0.0
        for j in range(row.shape[0]):
            s += np.float64(row[j]) * W[c, j]
        out[c] += scale * s


# modes of the cosine pass
APPLY, STORE, ROWS = 0, 1, 2


# Cosines with |c| >= NEAR_PARALLEL are recomputed from the rows' differences (_exact_cosine):
# the kernels have a square-root singularity sqrt(1 - |c|) at c = ±1, where the cosine of rounded
# inner products (error ~eps) gave kernel values off by ~sqrt(eps) (2e-4 relative in float32)
# that also depended on how each GEMM rounded: a pair x = z came out differently in
# kernel_matrix and kernel_matvec. Below the limit that error is <= 11 eps times the cosine's.
NEAR_PARALLEL = 1 - 2.0**-9


@njit(inline="always", **_JIT)
def _exact_cosine(x, rx, z, rz, c):
    """±(1 - |x rx ∓ z rz|²/2) in float64, the sign of c: the cosine of the unit rows from their
    difference (or sum), accurate to eps relative in 1 - |c| (exactly ±1 for x = ±z)."""
    s = 1.0 if c >= 0 else -1.0
    t = 0.0
    for k in range(x.shape[0]):
        e = np.float64(x[k]) * rx - s * np.float64(z[k]) * rz
        t += e * e
    return s * (1.0 - 0.5 * t)


@njit(**_JIT)
def _cosine_pass_code(code, mode, G, rx, rz, u, v, W, acc, R, col, X, Z):
    numba.literally(code)
    n = G.shape[1]
    near, zero, one = _typed(G, NEAR_PARALLEL), _typed(G, 0), _typed(G, 1)
    flags = np.empty(n, G.dtype)
    for i in range(G.shape[0]):
        ri, ui = rx[i], u[i]
        row = G[i]  # one array read and written: with a second name the loop would not vectorize
        count = zero  # flags and their count in the working dtype: the loop keeps its vector width
        for j in range(n):
            c = row[j] * (ri * rz[j])
            flag = one if abs(c) >= near else zero
            count += flag
            flags[j] = flag
            row[j] = _cosine_unit(code, c)
        if count > 0:  # rare (x = ±z: once per row of K(X, X)); the sign of c is that of G
            for j in range(n):
                if flags[j] > 0:
                    c = _exact_cosine(X[i], np.float64(ri), Z[j], np.float64(rz[j]), np.dot(X[i], Z[j]))
                    row[j] = _cosine_unit(code, _typed(G, c))
        if mode == ROWS:
            _reduce_row(row, W, ui, acc[i])
        elif mode == APPLY:
            for j in range(n):
                row[j] *= ui * v[j]
        else:
            out = R[i, col : col + n]
            for j in range(n):
                out[j] = ui * v[j] * row[j]


@njit(**_JIT)
def _ntk_pass(mode, G, rx, rz, u, v, W, acc, R, col, X, Z):
    _cosine_pass_code(NTK, mode, G, rx, rz, u, v, W, acc, R, col, X, Z)


@njit(**_JIT)
def _nngp_pass(mode, G, rx, rz, u, v, W, acc, R, col, X, Z):
    _cosine_pass_code(NNGP, mode, G, rx, rz, u, v, W, acc, R, col, X, Z)


@njit(**_JIT)
def _arccos0_pass(mode, G, rx, rz, u, v, W, acc, R, col, X, Z):
    _cosine_pass_code(ARCCOS0, mode, G, rx, rz, u, v, W, acc, R, col, X, Z)


# one entry point per kernel, so that a process compiles only the kernels it uses
_COSINE_PASS = {NTK: _ntk_pass, NNGP: _nngp_pass, ARCCOS0: _arccos0_pass}


def _cosine_pass(code, mode, G, rx, rz, u, v, W, acc, R, col, X, Z):
    """One pass over a tile of inner products G[i, j] = <x_i, z_j> of the rows X, Z of a cosine
    kernel, K_ij = u_i v_j h(c_ij) with c_ij = G[i, j] rx[i] rz[j] (rx, rz the inverse norms),
    or, where |c_ij| >= NEAR_PARALLEL, c_ij from the rows' difference (_exact_cosine; the
    vectorized loop flags those pairs, a second loop over a flagged row redoes them):

    APPLY  G[i, j] = K_ij (in place)
    STORE  R[i, col + j] = K_ij (R another array: a tile stored into a wider output; G is
           overwritten)
    ROWS   G[i, j] = h(c_ij) and acc[i, c] += u_i sum_j h(c_ij) W[c, j] in float64 while the
           row is in cache (W = (v ⊙ V)ᵀ in float64; W may have no rows: then only h). The
           float64 sums cost no more than sums in float32 in the same loop (measured: 0.50 and
           0.51 ns per pair at d = 32), so every V takes this path.

    Each row evaluates h in one loop shared by the modes, W is always float64, and each kernel
    has its own compiled entry point (_COSINE_PASS): a process compiles one loop per kernel and
    dtype it uses (cold cache: ~5 s on a loaded 2-core machine, ~25 s for all three kernels
    and two W dtypes before).
    """
    _COSINE_PASS[code](mode, G, rx, rz, u, v, W, acc, R, col, X, Z)


@njit(**_JIT)
def _kernel_inplace(code, G, sx, sz, p0, p1, p2):
    """G[i, j] <- k(G[i, j], sx[i], sz[j])   (in place; rbf, laplace, poly)."""
    for i in range(G.shape[0]):
        sxi = sx[i]
        for j in range(G.shape[1]):
            G[i, j] = _kval(code, G[i, j], sxi, sz[j], p0, p1, p2)


@njit(**_JIT)
def _kernel_rows(code, G, sx, sz, p0, p1, p2, W, acc):
    """G <- k(G) row by row and acc[i, c] += sum_j k(G[i, j]) W[c, j] in float64."""
    one = np.float64(1)
    for i in range(G.shape[0]):
        sxi = sx[i]
        row = G[i]
        for j in range(G.shape[1]):
            row[j] = _kval(code, row[j], sxi, sz[j], p0, p1, p2)
        _reduce_row(row, W, one, acc[i])


@njit(**_JIT)
def _transposed_rows(H, S, T):
    """T[c, j] += sum_i H[i, j] S[i, c], in float64 (T: k x M, S: rows x k)."""
    for i in range(H.shape[0]):
        row = H[i]
        for c in range(S.shape[1]):
            s = S[i, c]
            t = T[c]
            for j in range(row.shape[0]):
                t[j] += np.float64(row[j]) * s


@njit(**_JIT)
def _add_scaled_transpose(T, v, acc):
    """acc[j, c] += v[j] T[c, j]."""
    for j in range(acc.shape[0]):
        for c in range(acc.shape[1]):
            acc[j, c] += v[j] * T[c, j]


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


# Above this many float64 columns of V (with float32 X) a kernel tile is reduced by a GEMM
# instead of the fused row sums (see NumbaDevice.kernel_reduce).
_FUSED_COLUMNS = 8
# placeholders for the arguments a mode of _cosine_pass does not use
_NO_COLUMNS = np.empty((0, 1))
_NO_ACC = np.empty((0, 1))


# Column panels of the Gram: the upper triangle of PᵀP as panel GEMMs (NumPy matmul releases the
# GIL, SciPy's syrk does not); 256-wide panels do 56% of the full product's FLOPs at m = 2048.
_PANEL = 256


class NumbaDevice(Device):
    """The "numba" backend (see the module docstring)."""

    name = "numba"
    kind = "cpu"
    # Tile of kernel products: rows of X x rows of Z (columns for 4-byte values; float64 tiles
    # have half as many). 512 x 512 float32 is 1 MiB per worker: the GEMM writes it and the
    # fused pass reads it back while it is in the L2 cache (measured best of 128-2048 rows x
    # 256-4096 columns at d = 32, both dtypes: 10-20% faster than 4 MiB tiles).
    kernel_tile = (512, 512)

    @property
    def workers(self):
        return max(1, numba.get_num_threads())

    def run(self, n, rows, make_state, step, tiled=False):
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
            if not tiled:
                return [work(0)]
            # a tile GEMM is too small to share: threaded BLAS only adds wake-ups (measured here
            # 12 ms for a 512 × 64 × 32 GEMM on two threads of a loaded machine)
            with _single_threaded_blas():
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

    def kernel_apply(self, kernel, G, X, sx, Z, sz):
        if kernel.code in COSINE:
            rx, u, rz, v = self._cosine_scales(kernel.code, sx, sz, Workspace(np))
            _cosine_pass(kernel.code, APPLY, G, rx, rz, u, v, _NO_COLUMNS, _NO_ACC, G, 0, X, Z)
        else:
            _kernel_inplace(kernel.code, G, sx, sz, *self._params(kernel, G.dtype))

    def kernel_store(self, kernel, G, X, sx, Z, sz, R, col):
        """R[:, col:col + G.shape[1]] <- k(G): one pass from the tile (in cache) to the
        output's rows (C-contiguous, so the loop vectorizes; a view of the columns would not)."""
        if kernel.code not in COSINE:
            return super().kernel_store(kernel, G, X, sx, Z, sz, R, col)
        rx, u, rz, v = self._cosine_scales(kernel.code, sx, sz, Workspace(np))
        _cosine_pass(kernel.code, STORE, G, rx, rz, u, v, _NO_COLUMNS, _NO_ACC, R, col, X, Z)

    @staticmethod
    def tile_cell_bytes(dt):
        return dt.itemsize

    @staticmethod
    def kernel_workspace(rows, cols, k, dt):
        return Workspace(np)

    @staticmethod
    def _fused(kernel, n_cols, d, symmetric=False):
        """Whether a tile takes the SIMD loop (``SIMD_REDUCE``): in a symmetric product (both
        sides of a tile, and its diagonal blocks) or, where SIMD_ONE_SIDED, in any product."""
        return (kernel.code in COSINE and SIMD_REDUCE is not None and n_cols <= SIMD_COLUMNS.get(SIMD_ISA, 0)
                and d <= SIMD_MAX_D and (symmetric or SIMD_ONE_SIDED))

    @staticmethod
    def writes_kernel(kernel, d):
        """Whether kernel tiles are written by the SIMD loop (``SIMD_STORE``: the inner products
        and the kernel in registers, each value written once) instead of a BLAS GEMM tile and the
        kernel pass over it: the cosine kernels where SIMD_ONE_SIDED (kernel_matrix, and the
        products that reduce a tile by GEMM: more than SIMD_COLUMNS[SIMD_ISA] columns)."""
        return kernel.code in COSINE and SIMD_STORE is not None and d <= SIMD_MAX_D and SIMD_ONE_SIDED

    @staticmethod
    def kernel_write(kernel, Xb, sx, Zc, szc, R):
        """R <- K(Xb, Zc) by the SIMD loop (``writes_kernel``); R may be a tile of a wider array,
        the rows may have any layout (the loop reads C-contiguous copies)."""
        Xb, Zc = np.ascontiguousarray(Xb), np.ascontiguousarray(Zc)
        SIMD_STORE(Xb, sx, Zc, szc, R, *_COSINE_FORMS[kernel.code, Xb.dtype.type], NEAR_PARALLEL)

    def _kernel_tile(self, kernel, Xb, sx, Zc, szc, ws):
        """The tile K(Xb, Zc) in the workspace: written by the SIMD loop where ``writes_kernel``,
        else a GEMM tile and the kernel pass in place."""
        if self.writes_kernel(kernel, Xb.shape[1]):
            K = ws.get("tile", (Xb.shape[0], Zc.shape[0]), Xb.dtype)
            self.kernel_write(kernel, Xb, sx, Zc, szc, K)
            return K
        G = self._gemm_tile(Xb, Zc, ws)
        self.kernel_apply(kernel, G, Xb, sx, Zc, szc)
        return G

    def reduce_tile(self, kernel, n_cols, d, symmetric=False):
        """The SIMD loop keeps no tile in memory; each row block packs every column tile once,
        so its row blocks are longer (2048 rows: 10-15 % faster than 448 at d = 32, n = 20,000)."""
        return (2048, self.kernel_tile[1]) if self._fused(kernel, n_cols, d, symmetric) else self.kernel_tile

    @staticmethod
    def symmetric_reduce(kernel, n_cols, d):
        """K(X, X) V takes each pair once (kernel_reduce_pair: both sides of a tile from one
        evaluation), on the SIMD loop where it runs, else on the BLAS tile."""
        return True

    @staticmethod
    def _fused_reduce(kernel, Xb, sx, Zc, szc, Vc, acc, *both):
        """``SIMD_REDUCE`` with the kernel's form; ``both``: (Vx, acc_z) for the two sides."""
        SIMD_REDUCE(Xb, sx, Zc, szc, Vc, acc, *_COSINE_FORMS[kernel.code, Xb.dtype.type], NEAR_PARALLEL, *both)

    def kernel_reduce_pair(self, kernel, Xb, sx, Zc, szc, Vc, Vx, acc, acc_z, ws):
        """acc += K(Xb, Zc) Vc and acc_z += K(Xb, Zc)ᵀ Vx from one evaluation of the tile: the
        SIMD loop where ``_fused``; else the tile by one GEMM and the kernel pass of
        kernel_reduce (which leaves the kernel values in the tile), then one more pass over the
        tile for Kᵀ Vx (float64 sums) or, where kernel_reduce takes a GEMM of the tile, two GEMMs."""
        if self._fused(kernel, Vc.shape[1], Xb.shape[1], symmetric=True):
            self._fused_reduce(kernel, Xb, sx, Zc, szc, Vc, acc, Vx, acc_z)
            return
        if self._reduces_by_gemm(Vc, Xb.dtype):
            K = self._as_dtype(self._kernel_tile(kernel, Xb, sx, Zc, szc, ws), Vc.dtype, ws)
            acc += self._tile_times(K, Vc, ws)
            acc_z += self._tile_times(K.T, Vx, ws)
            return
        G = self._gemm_tile(Xb, Zc, ws)
        u, v = self._rows_pass(kernel, G, Xb, sx, Zc, szc, Vc, acc, ws)
        S = ws.get("s", Vx.shape, np.float64)
        if u is None:
            S[...] = Vx
        else:
            np.multiply(u[:, None], Vx, out=S)  # Kᵀ w = v ⊙ Hᵀ (u ⊙ w)
        self._add_transposed(G, S, v, acc_z, ws)

    def kernel_reduce(self, kernel, Xb, sx, Zc, szc, Vc, acc, ws, symmetric=False):
        """acc += K(Xb, Zc) Vc for one tile (``symmetric``: a diagonal block of the symmetric
        product). The cosine kernels with up to SIMD_COLUMNS columns where ``_fused``: one loop
        of pyfeat._core (csrc/cpu_cosine.cpp) with the inner products, the kernel and the float64
        sums in registers (at d = 32 the tile's round trip through the cache cost as much as the
        GEMM). Otherwise the inner products by BLAS,
        then one pass over the tile that evaluates the kernel and, while each row is in cache,
        reduces it against V in float64 (V in the working dtype or float64: with float32 X a float64 V is one product,
        no split). Several columns in the working dtype, or more than _FUSED_COLUMNS in
        float64, are reduced by a GEMM of the kernel tile instead (measured faster there: a
        fused float64 sum costs ~0.1 ns per pair and column, a GEMM column ~0.02 ns, plus
        ~0.3 ns per pair to copy a float32 tile to float64)."""
        if self._fused(kernel, Vc.shape[1], Xb.shape[1], symmetric):
            self._fused_reduce(kernel, Xb, sx, Zc, szc, Vc, acc)
            return
        if self._reduces_by_gemm(Vc, Xb.dtype):
            acc += self._tile_times(self._kernel_tile(kernel, Xb, sx, Zc, szc, ws), Vc, ws)
            return
        G = self._gemm_tile(Xb, Zc, ws)
        self._rows_pass(kernel, G, Xb, sx, Zc, szc, Vc, acc, ws)

    @staticmethod
    def _gemm_tile(Xb, Zc, ws):
        """The tile of inner products Xb Zcᵀ by BLAS, in the workspace."""
        G = ws.get("tile", (Xb.shape[0], Zc.shape[0]), Xb.dtype)
        np.matmul(Xb, Zc.T, out=G)
        return G

    @staticmethod
    def _reduces_by_gemm(V, dt):
        """Whether kernel_reduce reduces the kernel tile against V by a GEMM (more than one column
        in the working dtype, more than _FUSED_COLUMNS in float64) rather than the rows pass."""
        return V.shape[1] > (1 if V.dtype == dt else _FUSED_COLUMNS)

    def _rows_pass(self, kernel, G, Xb, sx, Zc, szc, V, acc, ws):
        """acc += K V from the GEMM tile G = Xb Zcᵀ, one pass that evaluates each row and reduces
        it against V in float64, leaving H in G: K = diag(u) H diag(v) for the cosine kernels
        (returns (u, v)), H = K otherwise (returns (None, None))."""
        code = kernel.code
        W = ws.get("w", (V.shape[1], Zc.shape[0]), np.float64)
        if code in COSINE:
            rx, u, rz, v = self._cosine_scales(code, sx, szc, ws)
            _scaled_transpose(V, v, W)
            _cosine_pass(code, ROWS, G, rx, rz, u, v, W, acc, G, 0, Xb, Zc)
            return u, v
        W[...] = V.T
        _kernel_rows(code, G, sx, szc, *self._params(kernel, G.dtype), W, acc)
        return None, None

    @staticmethod
    def _add_transposed(H, S, v, acc, ws):
        """acc += v ⊙ (Hᵀ S) (v None: 1), Hᵀ S summed in float64 in one pass over H's rows."""
        T = ws.get("t", (S.shape[1], H.shape[1]), np.float64)
        T[...] = 0
        _transposed_rows(H, S, T)
        if v is None:
            v = ws.get("ones", (H.shape[1],), H.dtype)
            v[...] = 1
        _add_scaled_transpose(T, v, acc)

    def kernel_gram_reduce(self, kernel, Xb, sx, C, sc, V, acc, ws):
        """acc += K_bᵀ (K_b V), K_b = K(Xb, C) (rows × M) evaluated once: the kernel pass
        computes K_b V row by row (float64 sums) while it leaves the kernel values in the block,
        and one more pass over the block adds K_bᵀ (K_b V); above _FUSED_COLUMNS columns, two
        GEMMs of the kernel block."""
        if V.shape[1] > _FUSED_COLUMNS:
            K = self._as_dtype(self._kernel_tile(kernel, Xb, sx, C, sc, ws), V.dtype, ws)
            acc += K.T @ self._tile_times(K, V, ws)
            return
        G = self._gemm_tile(Xb, C, ws)
        Kv = ws.get("kv", (Xb.shape[0], V.shape[1]), np.float64)
        Kv[...] = 0
        u, v = self._rows_pass(kernel, G, Xb, sx, C, sc, V, Kv, ws)  # G <- H, Kv = K_b V
        if u is not None:
            Kv *= u[:, None]  # K_bᵀ w = v ⊙ Hᵀ (u ⊙ w)
        self._add_transposed(G, Kv, v, acc, ws)

    @staticmethod
    def _cosine_scales(code, sx, sz, ws):
        """Inverse norms and scales of a tile's rows and columns: K = u_i v_j h(c_ij) with
        u = |x|/(2 pi), v = |z| (arccos0: u = 1/(2 pi), v = 1)."""
        dt, radial = sx.dtype, code != ARCCOS0
        rx, u = ws.get("rx", sx.shape, dt), ws.get("u", sx.shape, dt)
        rz, v = ws.get("rz", sz.shape, dt), ws.get("v", sz.shape, dt)
        _inverse_norms(sx, radial, dt.type(0.5 / math.pi), rx, u)
        _inverse_norms(sz, radial, dt.type(1), rz, v)
        return rx, u, rz, v

    @staticmethod
    def _as_dtype(K, dtype, ws):
        """K, or its copy in ``dtype`` (a float32 tile for the products with a float64 V)."""
        if K.dtype == dtype:
            return K
        copy = ws.get("tile_" + np.dtype(dtype).name, K.shape, dtype)
        copy[...] = K
        return copy

    def _tile_times(self, K, V, ws):
        """K V by BLAS in V's dtype, into a workspace buffer."""
        K = self._as_dtype(K, V.dtype, ws)
        out = ws.get("tile_v", (K.shape[0], V.shape[1]), V.dtype)
        np.matmul(K, V, out=out)
        return out

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
