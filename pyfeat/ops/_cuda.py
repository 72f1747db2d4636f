"""GPU backend: cuBLAS (CuPy matmul) for the GEMM parts, pyfeat._core CUDA kernels for the rest.

Same functions and contract as ``pyfeat.ops._numba``; the arguments are CuPy arrays already on
the device (``pyfeat.ops`` moved and validated them): X in any layout and dtype (converted one
row block at a time), the other arrays contiguous in the working dtype. Everything runs on
CuPy's current stream: CuPy's GEMMs and pyfeat's kernels (which receive raw device pointers,
sizes and the stream handle; see csrc/include/pyfeat/cuda_ops.hpp) are ordered on it.

Row blocks are sized from ``pyfeat.backend.memory_budget("cuda")`` (or ``block_size``), buffers
are allocated once per call, and sums over n accumulate in float64 on the device.
"""

from __future__ import annotations

import functools

import cupy as cp
import numpy as np

from pyfeat import _core
from pyfeat.backend import memory_budget
from pyfeat.ops._common import blocks, rows_per_block, working_dtype

# Rows of X per thread block of the fused kernel_matvec (TX in csrc/cuda/kernel_matvec.cu).
_KERNEL_TX = 64


def _launcher(name, dt):
    """pyfeat._core.cuda_<name>_f32 or _f64 for the working dtype ``dt``."""
    return getattr(_core, f"cuda_{name}_{'f32' if dt == np.float32 else 'f64'}")


def _stream():
    return cp.cuda.get_current_stream().ptr


def _rows(block_size, bytes_per_row):
    return block_size or rows_per_block(bytes_per_row, memory_budget("cuda"))


def _block_of(X, s, e, dt):
    return cp.ascontiguousarray(X[s:e], dtype=dt)


def _sq_norms(A):
    return (A * A).sum(axis=1)


@functools.lru_cache(maxsize=None)
def _sm_count(device_id):
    return cp.cuda.runtime.getDeviceProperties(device_id)["multiProcessorCount"]


def first_step_gradient(X, y, W, a, b, block_size):
    n, d = X.shape
    m = W.shape[0]
    dt = W.dtype
    mask_times_y = _launcher("mask_times_y", dt)
    stream = _stream()
    rows = min(_rows(block_size, dt.itemsize * (m + d)), n)
    Zbuf = cp.empty(rows * m, dt)
    Gbuf = cp.empty((m, d), dt)
    acc = cp.zeros((m, d), cp.float64)
    for s, e in blocks(n, rows):
        Xb = _block_of(X, s, e, dt)
        Z = Zbuf[: (e - s) * m].reshape(e - s, m)
        cp.matmul(Xb, W.T, out=Z)
        mask_times_y(Z.data.ptr, m, e - s, m, b.data.ptr, y[s:e].data.ptr, stream)
        cp.matmul(Z.T, Xb, out=Gbuf)
        acc += Gbuf
    acc *= (-2.0 / n) * a.astype(cp.float64)[:, None]
    return acc.astype(dt)


def relu_features(X, W, b, block_size):
    n, d = X.shape
    m = W.shape[0]
    dt = W.dtype
    relu_bias = _launcher("relu_bias", dt)
    stream = _stream()
    out = cp.empty((n, m), dt)
    for s, e in blocks(n, _rows(block_size, dt.itemsize * d)):
        P = out[s:e]
        cp.matmul(_block_of(X, s, e, dt), W.T, out=P)
        relu_bias(P.data.ptr, m, e - s, m, b.data.ptr, stream)
    return out


def relu_gram(X, W, b, y, block_size):
    n, d = X.shape
    m = W.shape[0]
    dt = W.dtype
    relu_bias = _launcher("relu_bias", dt)
    stream = _stream()
    rows = min(_rows(block_size, dt.itemsize * (m + d)), n)
    Pbuf = cp.empty(rows * m, dt)
    Cbuf = cp.empty((m, m), dt)
    G = cp.zeros((m, m), cp.float64)
    if y is None:
        c = cbuf = None
    else:
        c = cp.zeros((m,) + y.shape[1:], cp.float64)
        cbuf = cp.empty((m,) + y.shape[1:], dt)
    for s, e in blocks(n, rows):
        P = Pbuf[: (e - s) * m].reshape(e - s, m)
        cp.matmul(_block_of(X, s, e, dt), W.T, out=P)
        relu_bias(P.data.ptr, m, e - s, m, b.data.ptr, stream)
        cp.matmul(P.T, P, out=Cbuf)
        G += Cbuf
        if c is not None:
            cp.matmul(P.T, y[s:e], out=cbuf)
            c += cbuf
    return G, c


def relu_predict(X, W, b, a, block_size):
    n, d = X.shape
    m = W.shape[0]
    dt = W.dtype
    relu_bias = _launcher("relu_bias", dt)
    stream = _stream()
    rows = min(_rows(block_size, dt.itemsize * (m + d)), n)
    Pbuf = cp.empty(rows * m, dt)
    out = cp.empty((n,) + a.shape[1:], dt)
    for s, e in blocks(n, rows):
        P = Pbuf[: (e - s) * m].reshape(e - s, m)
        cp.matmul(_block_of(X, s, e, dt), W.T, out=P)
        relu_bias(P.data.ptr, m, e - s, m, b.data.ptr, stream)
        cp.matmul(P, a, out=out[s:e])
    return out


def kernel_matvec(X, Z, V, kernel, block_size):
    nx, d = X.shape
    nz, k = V.shape
    dt = Z.dtype
    matvec = _launcher("kernel_matvec", dt)
    code, (p0, p1, p2) = kernel.code, kernel.p
    stream = _stream()
    sz = _sq_norms(Z)
    rows = min(_rows(block_size, dt.itemsize * (2 * d + k)), nx)
    # One launch runs ceil(rows / 64) thread blocks, each walking over all of Z. When that is too
    # few to fill the GPU (small nx), Z is cut into chunks of at least 256 rows, each chunk is a
    # separate launch into its own partial result, and the partials are summed in float64.
    want = 4 * _sm_count(cp.cuda.runtime.getDevice())
    splits = max(1, min(-(-want // -(-rows // _KERNEL_TX)), nz // 256))
    zchunk = -(-nz // splits)
    splits = -(-nz // zchunk)  # chunks blocks(nz, zchunk) really yields
    parts = cp.empty((splits, rows, k), dt) if splits > 1 else None
    out = cp.empty((nx, k), dt)
    for s, e in blocks(nx, rows):
        Xb = _block_of(X, s, e, dt)
        sx = _sq_norms(Xb)
        if splits == 1:
            matvec(code, p0, p1, p2, Xb.data.ptr, e - s, Z.data.ptr, nz, d, sx.data.ptr,
                   sz.data.ptr, V.data.ptr, k, out[s:e].data.ptr, stream)
            continue
        for i, (zs, ze) in enumerate(blocks(nz, zchunk)):
            matvec(code, p0, p1, p2, Xb.data.ptr, e - s, Z[zs:ze].data.ptr, ze - zs, d,
                   sx.data.ptr, sz[zs:ze].data.ptr, V[zs:ze].data.ptr, k,
                   parts[i, : e - s].data.ptr, stream)
        out[s:e] = parts[:, : e - s].sum(axis=0, dtype=cp.float64).astype(dt)
    return out


def kernel_matrix(X, Z, kernel, block_size):
    nx, d = X.shape
    nz = Z.shape[0]
    dt = working_dtype(X)
    apply_kernel = _launcher("kernel_matrix", dt)
    code, (p0, p1, p2) = kernel.code, kernel.p
    stream = _stream()
    Zc = cp.ascontiguousarray(Z, dtype=dt)  # Z may be X itself (pyfeat.ops passes Z=None as X)
    sz = _sq_norms(Zc)
    out = cp.empty((nx, nz), dt)
    for s, e in blocks(nx, _rows(block_size, dt.itemsize * 2 * d)):
        Xb = _block_of(X, s, e, dt)
        sx = _sq_norms(Xb)
        G = out[s:e]
        cp.matmul(Xb, Zc.T, out=G)
        apply_kernel(code, p0, p1, p2, G.data.ptr, nz, e - s, nz, sx.data.ptr, sz.data.ptr, stream)
    return out
