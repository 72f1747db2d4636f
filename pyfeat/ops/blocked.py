"""Each blocked op written once, against the Device interface (``pyfeat.ops._device``).

This is also the internal entry point of the ops for pyfeat's own layers (models, solvers):
these functions neither check nor convert their inputs. The caller passes arrays already on
``dev`` (``dev.asarray``), X of any real dtype and layout (converted one row block at a time),
the other arrays contiguous in the working dtype (``pyfeat.ops._plan.working_dtype(X)``); the
public functions of ``pyfeat.ops`` validate and convert, then call these.

Memory: every op works in row blocks of X (and column tiles of Z for the kernel ops) sized by
``pyfeat.ops._plan`` from ``dev.budget()`` split over ``dev.workers``, or ``block_size`` rows;
buffers are allocated once per worker and reused; sums over n accumulate in float64, per worker,
added in worker order (results depend on neither timing nor the block size beyond float64
rounding). On the "numpy" device the call goes to the float64 reference instead.
"""

from __future__ import annotations

from pyfeat.ops import _reference
from pyfeat.ops._plan import blocks, rows_per_block, tiles, working_dtype

__all__ = ["first_step_gradient", "relu_features", "relu_gram", "relu_predict", "kernel_matvec",
           "kernel_matrix", "kernel_gram_matvec"]


def _rows(dev, block_size, bytes_per_row):
    """Rows per block: the caller's, or each worker's share of the budget."""
    return block_size or rows_per_block(bytes_per_row, dev.budget() // dev.workers)


def _network_plan(dev, X, W, block_size):
    """(n, d, m, rows): the shapes of a network op and its rows per block, each block holding
    rows of X and their m activations in the working dtype."""
    n, d = X.shape
    m = W.shape[0]
    return n, d, m, min(_rows(dev, block_size, W.dtype.itemsize * (m + d)), n)


def _sum(arrays):
    total = arrays[0]
    for a in arrays[1:]:
        total += a
    return total


def first_step_gradient(dev, X, y, W, a, b, block_size=None):
    """−(2/n) Σ_i y_i a_j 1[w_j·x_i + b_j ≥ 0] x_i (see ``pyfeat.ops.first_step_gradient``):
    per row block Z = X_b Wᵀ, the mask epilogue Z ← y 1[Z + b ≥ 0], then G += Zᵀ X_b."""
    if dev.reference:
        return _reference.first_step_gradient(X, y, W, a, b, block_size)
    xp, dt = dev.xp, W.dtype
    n, d, m, rows = _network_plan(dev, X, W, block_size)

    def make_state():
        return xp.empty(rows * m, dt), xp.empty((m, d), dt), xp.zeros((m, d), xp.float64)

    def step(state, s, e):
        Zbuf, Gbuf, acc = state
        Xb = dev.block(X, s, e, dt)
        Z = Zbuf[: (e - s) * m].reshape(e - s, m)
        dev.matmul(Xb, W.T, Z)
        dev.mask_times_y(Z, b, y[s:e])
        dev.matmul(Z.T, Xb, Gbuf)
        acc += Gbuf

    acc = _sum([st[2] for st in dev.run(n, rows, make_state, step)])
    acc *= (-2.0 / n) * a.astype(xp.float64)[:, None]
    return acc.astype(dt)


def relu_features(dev, X, W, b, block_size=None):
    """Φ = relu(X Wᵀ + b) (n, m), materialized."""
    if dev.reference:
        return _reference.relu_features(X, W, b, block_size)
    dt = W.dtype
    n, d = X.shape
    out = dev.xp.empty((n, W.shape[0]), dt)

    def step(state, s, e):
        dev.matmul(dev.block(X, s, e, dt), W.T, out[s:e])
        dev.relu_bias(out[s:e], b)

    dev.run(n, min(_rows(dev, block_size, dt.itemsize * d), n), lambda: None, step)
    return out


def _relu_block(dev, X, W, b, s, e, buf):
    """P = relu(X[s:e] Wᵀ + b) in ``buf`` (the block shared by the Gram and the predictions)."""
    dt, m = W.dtype, W.shape[0]
    P = buf[: (e - s) * m].reshape(e - s, m)
    dev.matmul(dev.block(X, s, e, dt), W.T, P)
    dev.relu_bias(P, b)
    return P


def relu_gram(dev, X, W, b, y, block_size=None):
    """(ΦᵀΦ, Φᵀy) in float64, Φ = relu(X Wᵀ + b) one row block at a time."""
    if dev.reference:
        return _reference.relu_gram(X, W, b, y, block_size)
    xp, dt = dev.xp, W.dtype
    n, d, m, rows = _network_plan(dev, X, W, block_size)

    def make_state():
        c = None if y is None else xp.zeros((m,) + y.shape[1:], xp.float64)
        return xp.empty(rows * m, dt), dev.gram_workspace(m, dt), xp.zeros((m, m), xp.float64), c

    def step(state, s, e):
        Pbuf, ws, G, c = state
        P = _relu_block(dev, X, W, b, s, e, Pbuf)
        dev.gram_update(P, G, ws)
        if c is not None:
            c += P.T @ y[s:e]

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

    def step(Pbuf, s, e):
        dev.matmul(_relu_block(dev, X, W, b, s, e, Pbuf), a, out[s:e])

    dev.run(n, rows, lambda: xp.empty(rows * m, dt), step)
    return out


def kernel_matvec(dev, X, Z, V, kernel, block_size=None):
    """K(X, Z) V for V (n_z, k), never forming K: row blocks of X against column tiles of Z,
    each tile reduced against V by ``dev.kernel_reduce`` into a float64 accumulator.

    V is in the working dtype, or float64 with float32 X: then the float32 kernel values
    multiply V in float64 (one product, V at full precision); the result has V's dtype."""
    if dev.reference:
        return _reference.kernel_matvec(X, Z, V, kernel, block_size)
    xp, dt = dev.xp, Z.dtype
    nx, d = X.shape
    nz, k = V.shape
    rows, cols = _kernel_tiles(dev, nx, nz, d, dt, row_bytes=16 * k, col_bytes=V.dtype.itemsize * k,
                               block_size=block_size)
    sz = dev.sq_norms(Z)
    out = xp.empty((nx, k), V.dtype)

    def make_state():
        return dev.kernel_workspace(rows, cols, k, dt), xp.empty((rows, k), xp.float64)

    def step(state, s, e):
        ws, acc = state
        Xb = dev.block(X, s, e, dt)
        sx = dev.sq_norms(Xb)
        A = acc[: e - s]
        A[...] = 0
        for zs, ze in blocks(nz, cols):
            dev.kernel_reduce(kernel, Xb, sx, Z[zs:ze], sz[zs:ze], V[zs:ze], A, ws)
        out[s:e] = A

    dev.run(nx, rows, make_state, step, tiled=True)
    return out


def kernel_matrix(dev, X, Z, kernel, block_size=None):
    """K(X, Z) (n_x, n_z), materialized: per tile a GEMM and the kernel epilogue while the tile
    is in cache (a tile buffer stored into the output by ``dev.kernel_store``, or in place in
    the output's rows when one tile spans all of Z)."""
    if dev.reference:
        return _reference.kernel_matrix(X, Z, kernel, block_size)
    xp, dt = dev.xp, working_dtype(X)
    nx, d = X.shape
    nz = Z.shape[0]
    Zc = xp.ascontiguousarray(Z, dtype=dt)
    sz = dev.sq_norms(Zc)
    out = xp.empty((nx, nz), dt)
    rows, cols = _kernel_tiles(dev, nx, nz, d, dt, row_bytes=0, col_bytes=0, block_size=block_size)

    def make_state():
        return None if cols >= nz else xp.empty(rows * cols, dt)

    def step(buf, s, e):
        Xb = dev.block(X, s, e, dt)
        sx = dev.sq_norms(Xb)
        if buf is None:
            dev.matmul(Xb, Zc.T, out[s:e])
            dev.kernel_apply(kernel, out[s:e], sx, sz)
            return
        for zs, ze in blocks(nz, cols):
            G = buf[: (e - s) * (ze - zs)].reshape(e - s, ze - zs)
            dev.matmul(Xb, Zc[zs:ze].T, G)
            dev.kernel_store(kernel, G, sx, sz[zs:ze], out[s:e], zs)

    dev.run(nx, rows, make_state, step, tiled=cols < nz)
    return out


def kernel_gram_matvec(dev, X, C, V, kernel, block_size=None):
    """K(X, C)ᵀ K(X, C) V for V (M, k), Falkon's fused product: per row block X_b the block
    K_b = K(X_b, C) (rows × M) is evaluated once (``dev.kernel_gram_reduce``) and reduced
    twice, acc += K_bᵀ (K_b V), in float64. X any dtype; C (M, d) in the working dtype; V in
    the working dtype or float64. Returns float64 (M, k)."""
    if dev.reference:
        return _reference.kernel_gram_matvec(X, C, V, kernel, block_size)
    xp, dt = dev.xp, C.dtype
    nx, d = X.shape
    M, k = V.shape
    # the block of kernel values is the tile: all M columns at once (and a copy in V's dtype)
    rows, _ = _kernel_tiles(dev, nx, M, d, dt, row_bytes=16 * k + (dt.itemsize + V.dtype.itemsize) * M,
                            col_bytes=V.dtype.itemsize * k + 8 * k, block_size=block_size, whole_z=True)
    sc = dev.sq_norms(C)

    def make_state():
        return dev.kernel_workspace(rows, M, k, dt), xp.zeros((M, k), xp.float64)

    def step(state, s, e):
        ws, acc = state
        Xb = dev.block(X, s, e, dt)
        dev.kernel_gram_reduce(kernel, Xb, dev.sq_norms(Xb), C, sc, V, acc, ws)

    return _sum([st[1] for st in dev.run(nx, rows, make_state, step, tiled=True)])


def _kernel_tiles(dev, nx, nz, d, dt, *, row_bytes, col_bytes, block_size, whole_z=False):
    """(rows, cols) of the kernel ops' tiles: ``dev.kernel_tile`` at most (its columns count
    4-byte values: float64 tiles get half), within each worker's share of the budget with the X
    block, its scaled copy and norms (per row), a Z tile row's norms (per column) and the tile
    itself; ``whole_z``: one tile spans all of Z."""
    max_rows, max_cols = dev.kernel_tile
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
