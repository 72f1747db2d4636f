"""Each blocked op written once, against the Device interface (``pyfeat.ops._device``).

This is also the internal entry point of the ops for pyfeat's own layers (models, solvers):
these functions neither check nor convert their inputs. The caller passes arrays already on
``dev`` (``dev.asarray``), X of any real dtype and layout (converted one row block at a time),
the other arrays contiguous in the working dtype (``pyfeat.ops._plan.working_dtype(X)``); the
public functions of ``pyfeat.ops`` validate and convert, then call these.

Range: the network ops compute every row block as it is when its entries, W and b are within
2^±20 (then the products of a block cannot leave the working dtype's range: the fast path),
and otherwise on exactly rescaled copies, X_b·2^{-s}, W·2^{-e_W}, b·2^{-t} (powers of two, so
the rounding is the same), with the scale put back in float64 (``_Scaled``). A result that is
representable is then never inf or NaN: float32 X of norm 1e20 gives the float64 Gram (≈ 1e40)
exactly as the reference does.

Memory: every op works in row blocks of X (and column tiles of Z for the kernel ops) sized by
``pyfeat.ops._plan`` from ``dev.budget()`` split over ``dev.workers``, or ``block_size`` rows;
buffers are allocated once per worker and reused; sums over n accumulate in float64, per worker,
added in worker order (results depend on neither timing nor the block size beyond float64
rounding). On the "numpy" device the call goes to the float64 reference instead.
"""

from __future__ import annotations

import numpy as np

from pyfeat._kernel_table import TABLE
from pyfeat.ops import _reference
from pyfeat.ops._plan import blocks, rows_per_block, tiles, working_dtype

__all__ = ["first_step_gradient", "residual_gradient", "network_gradient", "relu_features", "relu_gram",
           "relu_predict", "relu_transpose", "taylor_gradient", "taylor_predict", "kernel_matvec", "kernel_matrix",
           "kernel_gram_matvec"]


def _rows(dev, block_size, bytes_per_row):
    """Rows per block: the caller's, or each worker's share of the budget."""
    return block_size or rows_per_block(bytes_per_row, dev.budget() // dev.workers)


def _network_plan(dev, X, W, block_size):
    """(n, d, m, rows): the shapes of a network op and its rows per block, each block holding
    rows of X and their m activations in the working dtype."""
    n, d = X.shape
    m = W.shape[0]
    return n, d, m, min(_rows(dev, block_size, W.dtype.itemsize * (m + d)), n)


# |binary exponent| of max|X_b|, max|W|, max|b|, max|y_b| up to which a block takes the fast path
SAFE_EXPONENT = 20


class NonFiniteRows(ValueError):
    """A row block of X holds NaN or inf (``what``): the network ops' magnitude pass over each
    block (``_exponent``) doubles as X's finiteness check, so the public ops do not read X twice."""

    def __init__(self, what):
        super().__init__(f"X contains {what}; expected finite values")
        self.what = what


def _exponent(A):
    """e with max|A| = f·2^e, f ∈ [0.5, 1) (0 when A is zero), from one max/min pass; raises
    NonFiniteRows when A holds NaN or inf."""
    peak = float(max(A.max(), -A.min()))
    if not np.isfinite(peak):
        raise NonFiniteRows("NaN" if np.isnan(peak) else "inf")
    return int(np.frexp(peak)[1]) if peak > 0 else 0


class _Scaled:
    """The exact power-of-two rescaling of the network ops (module docstring): per block,
    Z = X_b Wᵀ + b = 2^t (X'_b W'ᵀ + b') with X'_b = X_b 2^{e_W - t}, W' = W 2^{-e_W},
    b' = b 2^{-t}, t = max(e_X + e_W, e_b), and y_b = 2^{e_y} y'_b; ``block`` returns
    (X'_b, W', b', y'_b, t, e_y), or the inputs themselves with zero exponents on the fast path
    (W' is not W exactly on the rescaled path). X'_b may underflow where b sets t: products that
    need X_b itself take it from ``_unit``."""

    def __init__(self, xp, W, b):
        self.xp, self.W, self.b = xp, W, b
        self.ew, self.eb = _exponent(W), _exponent(b)
        self.W1 = None  # W', made when a block first needs it

    def block(self, Xb, yb=None):
        ex, ey = _exponent(Xb), (0 if yb is None else _exponent(yb))
        if max(abs(ex), abs(self.ew), abs(self.eb), abs(ey)) <= SAFE_EXPONENT:
            return Xb, self.W, self.b, yb, 0, 0
        xp, t = self.xp, max(ex + self.ew, self.eb)
        if self.W1 is None:
            self.W1 = xp.ascontiguousarray(xp.ldexp(self.W, -self.ew))
        return (xp.ldexp(Xb, self.ew - t), self.W1, _scaled_bias(xp, self.b, t),
                None if yb is None else xp.ldexp(yb, -ey), t, ey)


def _scaled_bias(xp, b, t):
    """b' = b 2^{-t}, where it underflows to 0 (b ≠ 0) the smallest subnormal of b's sign: a
    neuron whose X_b Wᵀ is 0 keeps the sign of its bias in the ReLU mask (b = -6.5e-16 with
    t = 101 in float32 gave b' = 0 and the neuron counted as active)."""
    scaled = xp.ldexp(b, -t)
    lost = (scaled == 0) & (b != 0)
    if bool(lost.any()):
        scaled = xp.where(lost, xp.copysign(xp.asarray(xp.finfo(b.dtype).smallest_subnormal, b.dtype), b), scaled)
    return scaled


def _unit(xp, Xb):
    """(X_b 2^{-e}, e) with max|X_b| = f·2^e: the rows of a rescaled block at unit scale for the
    products that need X itself (the gradients' Zᵀ X_b), where X'_b of ``_Scaled.block`` may have
    underflowed (a bias much larger than X_b Wᵀ sets t)."""
    e = _exponent(Xb)
    return xp.ldexp(Xb, -e), e


def _unscale(xp, A, e):
    """A·2^e in float64 (A itself when e = 0)."""
    return A if e == 0 else xp.ldexp(A.astype(xp.float64), e)


def _sum(arrays):
    total = arrays[0]
    for a in arrays[1:]:
        total += a
    return total


def _masked_sum(dev, X, w, W, b, block_size):
    """S_j = Σ_i w_i 1[w_j·x_i + b_j ≥ 0] x_i (m × d, float64): per row block Z = X_b Wᵀ, the mask
    epilogue Z ← w 1[Z + b ≥ 0], then S += Zᵀ X_b (on rescaled copies outside the fast range)."""
    xp, dt = dev.xp, W.dtype
    n, d, m, rows = _network_plan(dev, X, W, block_size)

    scaled = _Scaled(xp, W, b)

    def make_state():
        return xp.empty(rows * m, dt), xp.empty((m, d), dt), xp.zeros((m, d), xp.float64)

    def step(state, s, e):
        Zbuf, Gbuf, acc = state
        X_raw = dev.block(X, s, e, dt)
        Xb, Wb, bb, wb, _, ew = scaled.block(X_raw, w[s:e])
        Z = Zbuf[: (e - s) * m].reshape(e - s, m)
        dev.matmul(Xb, Wb.T, Z)
        dev.mask_times_y(Z, bb, wb)
        Xu, ex = (Xb, 0) if Wb is scaled.W else _unit(xp, X_raw)
        dev.matmul(Z.T, Xu, Gbuf)
        acc += _unscale(xp, Gbuf, ew + ex)

    return _sum([st[2] for st in dev.run(n, rows, make_state, step)])


def first_step_gradient(dev, X, y, W, a, b, block_size=None):
    """−(2/n) Σ_i y_i a_j 1[w_j·x_i + b_j ≥ 0] x_i (see ``pyfeat.ops.first_step_gradient``)."""
    if dev.reference:
        return _reference.first_step_gradient(X, y, W, a, b, block_size)
    acc = _masked_sum(dev, X, y, W, b, block_size)
    acc *= (-2.0 / X.shape[0]) * a.astype(dev.xp.float64)[:, None]
    return acc.astype(W.dtype)


def residual_gradient(dev, X, r, W, a, b, block_size=None):
    """(1/n) Σ_i r_i a_j 1[w_j·x_i + b_j ≥ 0] x_i: the first-step gradient weighted by residuals
    r = f − y (see ``pyfeat.ops.residual_gradient``)."""
    if dev.reference:
        return _reference.residual_gradient(X, r, W, a, b, block_size)
    acc = _masked_sum(dev, X, r, W, b, block_size)
    acc *= (1.0 / X.shape[0]) * a.astype(dev.xp.float64)[:, None]
    return acc.astype(W.dtype)


def _network_block64(xp, Xb, Wb, bb, yb, a, t, ey, X_raw):
    """The sums of ``network_gradient`` for one rescaled block (``_Scaled.block``), in float64:
    Z = 2^t(X'_b W'ᵀ + b'), y_b = 2^{e_y} y'_b, and X_b itself (``X_raw``) at unit scale for g_W
    (the rare path outside the fast range, where the fused epilogue's working-dtype
    intermediates could overflow)."""
    f64 = xp.float64
    U = (Xb @ Wb.T).astype(f64) + bb.astype(f64)
    P = xp.maximum(U, 0.0)
    r = xp.ldexp(P @ a.astype(f64), t) - xp.ldexp(yb.astype(f64), ey)
    M = (U >= 0) * r[:, None]
    Xu, ex = _unit(xp, X_raw)
    return r @ r, xp.ldexp(M.T @ Xu.astype(f64), ex), xp.ldexp(P.T @ r, t), M.sum(axis=0)


def network_gradient(dev, X, y, W, b, a, block_size=None, grad_W=True):
    """Sums over the rows of X of the squared residual and of the gradients of ½(f(x_i) − y_i)²,
    f(x) = aᵀ relu(W x + b), r_i = f(x_i) − y_i, all float64:

        sq = Σ_i r_i²,   g_W = Σ_i r_i a_j 1[w_j·x_i + b_j ≥ 0] x_i  (m × d; None unless grad_W),
        g_a = Σ_i r_i relu(w_j·x_i + b_j),   g_b = Σ_i r_i a_j 1[w_j·x_i + b_j ≥ 0]   (m,).

    One pass over the data with two GEMMs per row block: Z = X_b Wᵀ; the fused epilogue
    ``dev.relu_residual`` (P = relu(Z + b), r = P a − y, g_a += Pᵀr, g_b += Σ_i r_i 1[...],
    Z ← r_i 1[Z + b ≥ 0]); then g_W += Zᵀ X_b (skipped when grad_W is False). A block outside the
    fast range (X_b, W, b, y_b or a beyond 2^±20: module docstring) is computed in float64 on
    its exactly rescaled copies instead. Returns (sq, g_W, g_a, g_b) with sq a float64 scalar
    array (the caller divides by n: these are sums, so that blocks and mini-batches add)."""
    if dev.reference:
        return _reference.network_gradient(X, y, W, b, a, block_size, grad_W)
    xp, dt = dev.xp, W.dtype
    n, d, m, rows = _network_plan(dev, X, W, block_size)

    scaled = _Scaled(xp, W, b)
    a_in_range = abs(_exponent(a)) <= SAFE_EXPONENT

    def make_state():
        Gbuf, acc = (xp.empty((m, d), dt), xp.zeros((m, d), xp.float64)) if grad_W else (None, None)
        return (xp.empty(rows * m, dt), dev.residual_workspace(rows, m), Gbuf, acc,
                xp.zeros(1, xp.float64), xp.zeros(m, xp.float64), xp.zeros(m, xp.float64))

    def step(state, s, e):
        Zbuf, ws, Gbuf, acc, sq, ga, gb = state
        X_raw = dev.block(X, s, e, dt)
        Xb, Wb, bb, yb, t, ey = scaled.block(X_raw, y[s:e])
        if Wb is not scaled.W or not a_in_range:
            sq_b, gW_b, ga_b, gb_b = _network_block64(xp, Xb, Wb, bb, yb, a, t, ey, X_raw)
            sq += sq_b
            ga += ga_b
            gb += gb_b
            if grad_W:
                acc += gW_b
            return
        Z = Zbuf[: (e - s) * m].reshape(e - s, m)
        dev.matmul(Xb, W.T, Z)
        dev.relu_residual(Z, b, a, yb, sq, ga, gb, ws)
        if grad_W:
            dev.matmul(Z.T, Xb, Gbuf)
            acc += Gbuf

    states = dev.run(n, rows, make_state, step)
    a64 = a.astype(xp.float64)
    gW = _sum([st[3] for st in states]) * a64[:, None] if grad_W else None
    sq, ga, gb = (_sum([st[k] for st in states]) for k in (4, 5, 6))
    return sq[0], gW, ga, gb * a64


def relu_features(dev, X, W, b, block_size=None):
    """Φ = relu(X Wᵀ + b) (n, m), materialized."""
    if dev.reference:
        return _reference.relu_features(X, W, b, block_size)
    xp, dt = dev.xp, W.dtype
    n, d = X.shape
    out = xp.empty((n, W.shape[0]), dt)
    scaled = _Scaled(xp, W, b)

    def step(state, s, e):
        Xb, Wb, bb, _, t, _ = scaled.block(dev.block(X, s, e, dt))
        dev.matmul(Xb, Wb.T, out[s:e])
        dev.relu_bias(out[s:e], bb)
        if t:
            out[s:e] = xp.ldexp(out[s:e], t)

    dev.run(n, min(_rows(dev, block_size, dt.itemsize * d), n), lambda: None, step)
    return out


def _relu_block(dev, X, scaled, s, e, buf, y=None):
    """P' = relu(X[s:e] Wᵀ + b)·2^{-t} in ``buf`` (the block shared by the Gram and the
    predictions), with y'_b, t and e_y of ``_Scaled.block``."""
    dt, m = scaled.W.dtype, scaled.W.shape[0]
    Xb, Wb, bb, yb, t, ey = scaled.block(dev.block(X, s, e, dt), None if y is None else y[s:e])
    P = buf[: (e - s) * m].reshape(e - s, m)
    dev.matmul(Xb, Wb.T, P)
    dev.relu_bias(P, bb)
    return P, yb, t, ey


def relu_gram(dev, X, W, b, y, block_size=None):
    """(ΦᵀΦ, Φᵀy) in float64, Φ = relu(X Wᵀ + b) one row block at a time."""
    if dev.reference:
        return _reference.relu_gram(X, W, b, y, block_size)
    xp, dt = dev.xp, W.dtype
    n, d, m, rows = _network_plan(dev, X, W, block_size)

    scaled = _Scaled(xp, W, b)

    def make_state():
        c = None if y is None else xp.zeros((m,) + y.shape[1:], xp.float64)
        return xp.empty(rows * m, dt), dev.gram_workspace(m, dt), xp.zeros((m, m), xp.float64), c

    def step(state, s, e):
        Pbuf, ws, G, c = state
        P, yb, t, ey = _relu_block(dev, X, scaled, s, e, Pbuf, y)
        if t:
            Gb = xp.zeros_like(G)
            dev.gram_update(P, Gb, ws)
            G += _unscale(xp, Gb, 2 * t)
        else:
            dev.gram_update(P, G, ws)
        if c is not None:
            c += _unscale(xp, P.T @ yb, t + ey)

    states = dev.run(n, rows, make_state, step)
    G = dev.gram_result(_sum([st[2] for st in states]))
    return G, (None if y is None else _sum([st[3] for st in states]))


def relu_predict(dev, X, W, b, a, block_size=None):
    """Φ a, a (m,) or (m, k), one row block of Φ at a time."""
    if dev.reference:
        return _reference.relu_predict(X, W, b, a, block_size)
    xp, dt = dev.xp, W.dtype
    n, d, m, rows = _network_plan(dev, X, W, block_size)
    out = xp.empty((n,) + a.shape[1:], dt)

    scaled = _Scaled(xp, W, b)

    def step(Pbuf, s, e):
        P, _, t, _ = _relu_block(dev, X, scaled, s, e, Pbuf)
        dev.matmul(P, a, out[s:e])
        if t:
            out[s:e] = xp.ldexp(out[s:e], t)

    dev.run(n, rows, lambda: xp.empty(rows * m, dt), step)
    return out


def relu_transpose(dev, X, W, b, V, block_size=None):
    """Φᵀ V in float64, Φ = relu(X Wᵀ + b) one row block at a time; V (n,) or (n, k)."""
    if dev.reference:
        return _reference.relu_transpose(X, W, b, V, block_size)
    xp, dt = dev.xp, W.dtype
    n, d, m, rows = _network_plan(dev, X, W, block_size)

    scaled = _Scaled(xp, W, b)

    def make_state():
        return xp.empty(rows * m, dt), xp.zeros((m,) + V.shape[1:], xp.float64)

    def step(state, s, e):
        Pbuf, acc = state
        P, Vb, t, ev = _relu_block(dev, X, scaled, s, e, Pbuf, V)
        acc += _unscale(xp, P.T @ Vb, t + ev)

    return _sum([st[1] for st in dev.run(n, rows, make_state, step)])


def _taylor_plan(dev, X, W, features, block_size):
    """(n, m, rows) of a Taylor-model op: each block holds its rows of X, of the features φ (when
    ``features`` is given) and of both pre-activation blocks U0 | U, in the working dtype."""
    n, d = X.shape
    m, D = W.shape
    width = d + 2 * m + (0 if features is None else D)
    return n, m, min(_rows(dev, block_size, W.dtype.itemsize * width + 8), n)


def _taylor_inputs(dev, X, features, s, e, dt, Fbuf):
    """φ(x) for rows s:e: x itself, or relu(x Vᵀ + c) in ``Fbuf`` for ``features = (V, c)``."""
    Xb = dev.block(X, s, e, dt)
    if features is None:
        return Xb
    V, c = features
    F = Fbuf[: (e - s) * V.shape[0]].reshape(e - s, V.shape[0])
    dev.matmul(Xb, V.T, F)
    dev.relu_bias(F, c)
    return F


def _taylor_loop(dev, X, W0, W, features, block_size, make_extra, epilogue):
    """The row-block loop of the Taylor-model ops: per block φ(x), one GEMM Z = φ [W0; W]ᵀ
    (rows × 2m: U0 | U before the biases), then ``epilogue(extra, Z, Φ, s, e)`` on the worker's
    ``extra = make_extra()``. Returns the extras in worker order."""
    xp, dt = dev.xp, W.dtype
    n, m, rows = _taylor_plan(dev, X, W, features, block_size)
    WW = xp.concatenate([W0, W])
    D = W.shape[1]

    def make_state():
        Fbuf = None if features is None else xp.empty(rows * D, dt)
        return Fbuf, xp.empty(rows * 2 * m, dt), make_extra(rows)

    def step(state, s, e):
        Fbuf, Zbuf, extra = state
        P = _taylor_inputs(dev, X, features, s, e, dt, Fbuf)
        Z = Zbuf[: (e - s) * 2 * m].reshape(e - s, 2 * m)
        dev.matmul(P, WW.T, Z)
        epilogue(extra, Z, P, s, e)

    return [st[2] for st in dev.run(n, rows, make_state, step)]


def taylor_gradient(dev, X, y, W0, b0, W, b, a1, a2, activation, features=None, block_size=None):
    """Sums over the rows of X of the squared residual of the Taylor model and of its gradients
    (see ``pyfeat.ops.taylor_gradient``), all float64: with φ(x) = x (or relu(Vx + c) for
    ``features = (V, c)``), u0_r = w0_r·φ + b0_r, u_r = w_r·φ + b_r,

        f(x) = Σ_r [a1_r σ'(u0_r) u_r + a2_r σ''(u0_r) u_r²/2],   r_i = f(x_i) − y_i,
        sq = Σ_i r_i²,   g_W = Σ_i P_ir φ(x_i) (m × D),   g_b = Σ_i P_ir (m,),
        P_ir = r_i [a1_r σ'(u0_ir) + a2_r σ''(u0_ir) u_ir].

    Per row block: φ (with features: a GEMM and the ReLU epilogue), one GEMM Z = φ [W0; W]ᵀ of
    width 2m, the fused epilogue ``dev.taylor_residual`` (f, r, sq, g_b, and P in place of the
    U0 half of Z), one GEMM g_W += Pᵀφ: 6·n·m·D FLOPs (+ 2·n·D·d for the features), memory
    independent of n. Returns (sq, g_W, g_b) (sums: the caller divides by n)."""
    if dev.reference:
        return _reference.taylor_gradient(X, y, W0, b0, W, b, a1, a2, activation, features, block_size)
    xp, dt = dev.xp, W.dtype
    m, D = W.shape
    bb = xp.concatenate([b0, b])

    def make_extra(rows):
        return (dev.taylor_workspace(rows, m), xp.empty((m, D), dt), xp.zeros((m, D), xp.float64),
                xp.zeros(1, xp.float64), xp.zeros(m, xp.float64))

    def epilogue(extra, Z, P, s, e):
        ws, Gbuf, gW, sq, gb = extra
        dev.taylor_residual(Z, bb, a1, a2, y[s:e], activation.code, sq, gb, ws)
        dev.matmul(Z[:, :m].T, P, Gbuf)
        gW += Gbuf

    extras = _taylor_loop(dev, X, W0, W, features, block_size, make_extra, epilogue)
    gW, sq, gb = (_sum([ex[k] for ex in extras]) for k in (2, 3, 4))
    return sq[0], gW, gb


def taylor_predict(dev, X, W0, b0, W, b, a1, a2, activation, features=None, block_size=None):
    """f(x) of the Taylor model (``taylor_gradient``) for every row of X, in the working dtype:
    per row block φ, one GEMM of width 2m and the forward epilogue ``dev.taylor_forward``."""
    if dev.reference:
        return _reference.taylor_predict(X, W0, b0, W, b, a1, a2, activation, features, block_size)
    bb = dev.xp.concatenate([b0, b])
    out = dev.xp.empty(X.shape[0], W.dtype)

    def epilogue(extra, Z, P, s, e):
        dev.taylor_forward(Z, bb, a1, a2, activation.code, out[s:e])

    _taylor_loop(dev, X, W0, W, features, block_size, lambda rows: None, epilogue)
    return out


def _with_bias(dev, A, beta):
    """[A, beta·1]: the inputs (x, beta) on which a biased cosine kernel is its bias-free form."""
    B = dev.xp.empty((A.shape[0], A.shape[1] + 1), A.dtype)
    B[:, :-1] = A
    B[:, -1] = beta
    return B


def _unbiased(dev, kernel, Z, *, block):
    """(kernel without its bias, Z with the bias column, a function giving the X block with it):
    a cosine kernel with ``bias`` β is the bias-free kernel of (x, β) (``pyfeat._kernel_table``);
    Z gets the column once, each X block when it is read. No bias: everything as it is."""
    beta = kernel.bias
    if not beta:
        return kernel, Z, block
    return kernel.without_bias(), _with_bias(dev, Z, beta), lambda *a: _with_bias(dev, block(*a), beta)


# a cosine kernel's rows are taken as they are while every squared norm is 0 (a zero row) or
# within 2^±COSINE_SAFE_EXPONENT: then 1/(|x||z|) and |x||z| are far inside float32's range
COSINE_SAFE_EXPONENT = 60


def _cosine_rows(dev, kernel, A):
    """(A', |a'|², f) for rows A of a cosine kernel: A, its squared norms and f = None, or,
    when a row's squared norm overflows or leaves 2^±COSINE_SAFE_EXPONENT (or underflows to 0),
    each row rescaled exactly by its own power of two, a'_i = a_i 2^{-e_i} (max_k |a_ik| =
    m·2^{e_i}, m ∈ [0.5, 1)), and f_i = 2^{deg·e_i} in float64, k(a_i, b_j) = f_i g_j k(a'_i, b'_j)
    (``pyfeat._kernel_table.Row.degree``). Float32 rows of norm 1e-20 gave NaN (1/(|x||z|)
    overflowed) and rows of norm 1e19 inf, although their kernel values are representable; per
    row, so a block mixing such rows with ordinary ones is exact too, whatever the block size."""
    xp = dev.xp
    sq = dev.sq_norms(A)
    degree = TABLE[kernel.name].degree
    if degree is None or A.shape[0] == 0:
        return A, sq, None
    lo, hi = 2.0 ** -COSINE_SAFE_EXPONENT, 2.0 ** COSINE_SAFE_EXPONENT
    small = sq < lo
    if float(sq.max()) <= hi and not (bool(small.any()) and float(xp.abs(A[small]).max()) > 0):
        return A, sq, None
    e = xp.frexp(xp.abs(A).max(axis=1))[1]  # 0 for a zero row
    A = xp.ascontiguousarray(xp.ldexp(A, -e[:, None].astype(xp.int32)))
    return A, dev.sq_norms(A), xp.ldexp(xp.ones(e.shape[0]), degree * e)


def _scaled_cols(V, f):
    """V with row j times f_j, in float64 (V itself when f is None)."""
    return V if f is None else V.astype(f.dtype) * f[:, None]


def _scale_tile(T, fx, fz):
    """The kernel values of rescaled rows back to scale: T_ij f_i g_j (float64), or T as it is."""
    if fx is None and fz is None:
        return T
    T = T.astype(np.float64)
    if fx is not None:
        T *= fx[:, None]
    if fz is not None:
        T *= fz[None, :]
    return T


def _difference_tiles(dev, X, Z, kernel, block_size, whole_z=False):
    """(s, e, zs, ze, K) for the tiles of K(X, Z) of a kernel ``from_differences`` (rbf,
    laplace), K in float64 from T = Σ_k ((x_k − z_k)/h)²: exp(−T/2) or exp(−√T). No |x|² + |z|² −
    2<x, z>, so nothing cancels, and a difference that overflows gives T = inf, k = 0 (its limit),
    never NaN. Serial, in array operations (any device, the reference included), each tile two
    float64 arrays within the budget; ``whole_z``: one tile spans all of Z. An elementwise pass
    per pair and dimension instead of a GEMM: for inputs the GEMM's inner products cannot resolve."""
    xp = dev.xp
    h = float(kernel.params["bandwidth"])
    nx, nz, d = X.shape[0], Z.shape[0], X.shape[1]
    rows, cols = tiles(nx, nz, row_bytes=8 * d, col_bytes=8 * d, cell_bytes=16, budget=dev.budget(),
                       max_rows=nx, max_cols=nz if whole_z else 2048, rows=block_size)
    with np.errstate(over="ignore", invalid="ignore"):
        for s, e in blocks(nx, rows):
            Xb = xp.asarray(X[s:e], dtype=xp.float64)
            for zs, ze in blocks(nz, cols):
                Zt = xp.asarray(Z[zs:ze], dtype=xp.float64)
                T = xp.zeros((e - s, ze - zs))
                D = xp.empty_like(T)
                for k in range(Xb.shape[1]):
                    xp.subtract(Xb[:, k, None], Zt[None, :, k], out=D)
                    D /= h
                    T += xp.square(D, out=D)
                if kernel.name == "rbf":
                    T *= -0.5
                else:
                    xp.negative(xp.sqrt(T, out=T), out=T)
                yield s, e, zs, ze, xp.exp(T, out=T)


def _kernel_matvec_from_differences(dev, X, Z, V, kernel, block_size):
    out = dev.xp.zeros((X.shape[0], V.shape[1]), dev.xp.float64)
    V64 = V.astype(dev.xp.float64)
    for s, e, zs, ze, K in _difference_tiles(dev, X, Z, kernel, block_size):
        out[s:e] += K @ V64[zs:ze]
    return out.astype(V.dtype, copy=False)


def kernel_matvec(dev, X, Z, V, kernel, block_size=None, symmetric=False):
    """K(X, Z) V for V (n_z, k), never forming K: row blocks of X against column tiles of Z,
    each tile reduced against V by ``dev.kernel_reduce`` into a float64 accumulator (a kernel
    ``from_differences``: ``_difference_tiles``).

    V is in the working dtype, or float64 with float32 X: then the float32 kernel values
    multiply V in float64 (one product, V at full precision); the result has V's dtype.
    ``symmetric``: X holds Z's rows (the solvers' K V; Z is used for both), and where
    ``dev.symmetric_reduce`` each pair is evaluated once (``_symmetric_kernel_matvec``)."""
    if kernel.differences:
        return _kernel_matvec_from_differences(dev, X, Z, V, kernel, block_size)
    if dev.reference:
        return _reference.kernel_matvec(X, Z, V, kernel, block_size)
    kernel, Z, block = _unbiased(dev, kernel, Z, block=dev.block)
    xp, dt = dev.xp, Z.dtype
    nx, d = X.shape[0], Z.shape[1]
    nz, k = V.shape
    if symmetric and X.shape[0] != nz:
        raise ValueError(f"kernel_matvec: symmetric=True needs X's rows as Z, got {nx} and {nz} rows")
    rows, cols = _kernel_tiles(dev, nx, nz, d, dt, row_bytes=16 * k, col_bytes=V.dtype.itemsize * k,
                               block_size=block_size, tile=dev.reduce_tile(kernel, k, d, symmetric))
    Z, sz, fz = _cosine_rows(dev, kernel, Z)
    Vz = _scaled_cols(V, fz)  # K V = F_x K' (F_z V) for rows rescaled by _cosine_rows
    # one float64 (n, k) sum per worker: within a quarter of the budget
    if symmetric and dev.symmetric_reduce(kernel, k, d) and dev.workers * nz * k * 8 <= dev.budget() // 4:
        if block_size is None:  # >= 4 blocks per worker (2 blocks on 2 workers would gain nothing)
            rows = min(rows, max(SYMMETRIC_MIN_ROWS, -(-nz // (4 * dev.workers))))
        return _symmetric_kernel_matvec(dev, kernel, Z, sz, fz, Vz, rows, cols, V.dtype)
    out = xp.empty((nx, k), V.dtype)

    def make_state():
        return dev.kernel_workspace(rows, cols, k, dt), xp.empty((rows, k), xp.float64)

    def step(state, s, e):
        ws, acc = state
        Xb, sx, fx = _cosine_rows(dev, kernel, block(X, s, e, dt))
        A = acc[: e - s]
        A[...] = 0
        for zs, ze in blocks(nz, cols):
            dev.kernel_reduce(kernel, Xb, sx, Z[zs:ze], sz[zs:ze], Vz[zs:ze], A, ws)
        out[s:e] = A if fx is None else A * fx[:, None]

    dev.run(nx, rows, make_state, step, tiled=True)
    return out


# the symmetric product's smallest row blocks (each block pair packs its column tiles once)
SYMMETRIC_MIN_ROWS = 512


def _symmetric_kernel_matvec(dev, kernel, Z, sz, fz, Vz, rows, cols, dtype):
    """K(Z, Z) V with each pair of row blocks (I ≤ J) evaluated once: block I against itself by
    ``dev.kernel_reduce``, against each later block J by ``dev.kernel_reduce_pair`` (one kernel
    evaluation of the tile adds K_IJ V_J to rows I and K_IJᵀ V_I to rows J): n(n + rows)/2 kernel
    values instead of n². The pairs are spread over the workers in turn, each adding into its own
    float64 (n, k) sum, and the workers' sums are added (as the gradient ops' are: the result
    depends on the worker count at float64 rounding only)."""
    xp = dev.xp
    n, k = Vz.shape
    Vz = xp.ascontiguousarray(Vz)  # its rows are both sides' V
    spans = list(blocks(n, rows))
    pairs = [(i, j) for i in range(len(spans)) for j in range(i, len(spans))]

    def make_state():
        return dev.kernel_workspace(rows, cols, k, Z.dtype), xp.zeros((n, k), xp.float64)

    def step(state, u, _):
        ws, acc = state
        (s, e), (zs0, ze0) = spans[pairs[u][0]], spans[pairs[u][1]]
        Zb, sb = Z[s:e], sz[s:e]
        for zs, ze in blocks(ze0 - zs0, cols):
            zs, ze = zs + zs0, ze + zs0
            if zs0 == s:
                dev.kernel_reduce(kernel, Zb, sb, Z[zs:ze], sz[zs:ze], Vz[zs:ze], acc[s:e], ws, symmetric=True)
            else:
                dev.kernel_reduce_pair(kernel, Zb, sb, Z[zs:ze], sz[zs:ze], Vz[zs:ze], Vz[s:e],
                                       acc[s:e], acc[zs:ze], ws)

    acc = _sum([st[1] for st in dev.run(len(pairs), 1, make_state, step, tiled=True)])
    if fz is not None:
        acc *= fz[:, None]
    return acc.astype(dtype, copy=False)


def kernel_matrix(dev, X, Z, kernel, block_size=None):
    """K(X, Z) (n_x, n_z), materialized: per tile a GEMM and the kernel epilogue while the tile
    is in cache (a tile buffer stored into the output by ``dev.kernel_store``, or in place in
    the output's rows when one tile spans all of Z; a kernel ``from_differences``:
    ``_difference_tiles``)."""
    if kernel.differences:
        out = dev.xp.empty((X.shape[0], Z.shape[0]), working_dtype(X))
        for s, e, zs, ze, K in _difference_tiles(dev, X, Z, kernel, block_size):
            out[s:e, zs:ze] = K
        return out
    if dev.reference:
        return _reference.kernel_matrix(X, Z, kernel, block_size)
    xp, dt = dev.xp, working_dtype(X)
    kernel, Zc, block = _unbiased(dev, kernel, xp.ascontiguousarray(Z, dtype=dt), block=dev.block)
    nx, d = X.shape[0], Zc.shape[1]
    nz = Z.shape[0]
    Zc, sz, fz = _cosine_rows(dev, kernel, Zc)
    out = xp.empty((nx, nz), dt)
    rows, cols = _kernel_tiles(dev, nx, nz, d, dt, row_bytes=0, col_bytes=0, block_size=block_size)

    writes = dev.writes_kernel(kernel, d)

    def make_state():
        return None if cols >= nz or writes else xp.empty(rows * cols, dt)

    def step(buf, s, e):
        Xb, sx, fx = _cosine_rows(dev, kernel, block(X, s, e, dt))
        if writes:  # no tile buffer: the values go from registers into the output
            for zs, ze in blocks(nz, cols):
                dev.kernel_write(kernel, Xb, sx, Zc[zs:ze], sz[zs:ze], out[s:e, zs:ze])
        elif buf is None:
            dev.matmul(Xb, Zc.T, out[s:e])
            dev.kernel_apply(kernel, out[s:e], Xb, sx, Zc, sz)
        else:
            for zs, ze in blocks(nz, cols):
                G = buf[: (e - s) * (ze - zs)].reshape(e - s, ze - zs)
                dev.matmul(Xb, Zc[zs:ze].T, G)
                dev.kernel_store(kernel, G, Xb, sx, Zc[zs:ze], sz[zs:ze], out[s:e], zs)
        if fx is not None or fz is not None:  # rescaled rows: back to scale (inf if not representable)
            out[s:e] = _scale_tile(out[s:e], fx, fz)

    dev.run(nx, rows, make_state, step, tiled=cols < nz)
    return out


def kernel_gram_matvec(dev, X, C, V, kernel, block_size=None):
    """K(X, C)ᵀ K(X, C) V for V (M, k), Falkon's fused product: per row block X_b the block
    K_b = K(X_b, C) (rows × M) is evaluated once (``dev.kernel_gram_reduce``) and reduced
    twice, acc += K_bᵀ (K_b V), in float64. X any dtype; C (M, d) in the working dtype; V in
    the working dtype or float64. Returns float64 (M, k) (a kernel ``from_differences``:
    ``_difference_tiles``, one tile per row block spanning C)."""
    if kernel.differences:
        acc = dev.xp.zeros(V.shape, dev.xp.float64)
        V64 = V.astype(dev.xp.float64)
        for _, _, _, _, K in _difference_tiles(dev, X, C, kernel, block_size, whole_z=True):
            acc += K.T @ (K @ V64)
        return acc
    if dev.reference:
        return _reference.kernel_gram_matvec(X, C, V, kernel, block_size)
    kernel, C, block = _unbiased(dev, kernel, C, block=dev.block)
    xp, dt = dev.xp, C.dtype
    nx, d = X.shape[0], C.shape[1]
    M, k = V.shape
    # the block of kernel values is the tile: all M columns at once (and a copy in V's dtype)
    rows, _ = _kernel_tiles(dev, nx, M, d, dt, row_bytes=16 * k + (dt.itemsize + V.dtype.itemsize) * M,
                            col_bytes=V.dtype.itemsize * k + 8 * k, block_size=block_size, whole_z=True)
    C, sc, fc = _cosine_rows(dev, kernel, C)

    def make_state():
        return dev.kernel_workspace(rows, M, k, dt), xp.zeros((M, k), xp.float64)

    def step(state, s, e):
        ws, acc = state
        Xb, sx, fx = _cosine_rows(dev, kernel, block(X, s, e, dt))
        if fx is None and fc is None:
            dev.kernel_gram_reduce(kernel, Xb, sx, C, sc, V, acc, ws)
            return
        # rescaled rows: K_b = F_x K'_b F_c as a float64 block, then K_bᵀ (K_b V)
        G = xp.empty((e - s, M), dt)
        dev.matmul(Xb, C.T, G)
        dev.kernel_apply(kernel, G, Xb, sx, C, sc)
        K = _scale_tile(G, fx, fc)
        acc += K.T @ (K @ V.astype(xp.float64))

    return _sum([st[1] for st in dev.run(nx, rows, make_state, step, tiled=True)])


def _kernel_tiles(dev, nx, nz, d, dt, *, row_bytes, col_bytes, block_size, whole_z=False, tile=None):
    """(rows, cols) of the kernel ops' tiles: ``tile`` (default ``dev.kernel_tile``) at most
    (its columns count 4-byte values: float64 tiles get half), within each worker's share of the
    budget with the X block, its scaled copy and norms (per row), a Z tile row's norms (per
    column) and the tile itself; ``whole_z``: one tile spans all of Z."""
    max_rows, max_cols = dev.kernel_tile if tile is None else tile
    size = dt.itemsize
    max_cols = max(1, max_cols * 4 // size)
    # as many row blocks of equal size as a multiple of the workers (EigenPro's batch of 1392
    # rows ran as blocks of 512, 512 and 368: one worker had 880 rows, the other 512)
    count = -(-nx // max_rows)
    count = -(-count // dev.workers) * dev.workers
    max_rows = max(1, -(-nx // count))
    rows, cols = tiles(nx, nz, row_bytes=size * (2 * d + 2) + row_bytes,
                       col_bytes=size * 2 + col_bytes,
                       cell_bytes=0 if whole_z else dev.tile_cell_bytes(dt),
                       budget=dev.budget() // dev.workers, max_rows=max_rows,
                       max_cols=nz if whole_z else max_cols, rows=block_size)
    return rows, cols
