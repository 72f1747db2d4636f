"""GPU device: cuBLAS (CuPy matmul) for the GEMM parts, pyfeat._core CUDA kernels for the rest.

The primitives of ``pyfeat.ops._device.Device`` on CuPy arrays (the loops are
``pyfeat.ops.blocked``'s; the executor is serial). Everything runs on CuPy's current stream:
CuPy's GEMMs and pyfeat's kernels (which receive raw device pointers, sizes, leading dimensions
and the stream handle; see csrc/include/pyfeat/cuda_ops.hpp) are ordered on it. Blocks are
sized from ``pyfeat.backend.memory_budget("cuda")``.
"""

from __future__ import annotations

import functools

import cupy as cp
import numpy as np

from pyfeat import _core
from pyfeat.ops._device import Device, Workspace

# Rows of X per thread block of the fused kernel_matvec (TX in csrc/cuda/kernel_matvec.cu).
_KERNEL_TX = 64
# At most this many chunks of Z per kernel_matvec launch (each writes its own partial result).
_MAX_SPLITS = 16
# At most this many chunks of rows in the column pass of relu_residual and taylor_residual.
_MAX_RESIDUAL_SPLITS = 64


def _launcher(name, dt):
    """pyfeat._core.cuda_<name>_f32 or _f64 for the working dtype ``dt``."""
    return getattr(_core, f"cuda_{name}_{'f32' if dt == np.float32 else 'f64'}")


def _stream():
    return cp.cuda.get_current_stream().ptr


def _ld(A):
    """Leading dimension (elements between rows) of a row-major 2-D view."""
    return A.strides[0] // A.itemsize


@functools.lru_cache(maxsize=None)
def _sm_count(device_id):
    return cp.cuda.runtime.getDeviceProperties(device_id)["multiProcessorCount"]


def _column_splits(rows, m):
    """Chunks of rows for the column pass of a fused epilogue (256 columns per thread block):
    enough thread blocks to fill the GPU when m is small, at most _MAX_RESIDUAL_SPLITS."""
    want = 4 * _sm_count(cp.cuda.runtime.getDevice())
    return max(1, min(_MAX_RESIDUAL_SPLITS, rows, -(-want // -(-m // 256))))


class CudaDevice(Device):
    """The "cuda" backend (see the module docstring)."""

    name = "cuda"
    kind = "cuda"
    xp = cp
    # The fused kernel streams Z through shared memory: no tile is materialized, so a row block
    # takes all of Z in one launch.
    kernel_tile = (1 << 16, 1 << 62)

    @staticmethod
    def block(X, s, e, dt):
        return cp.ascontiguousarray(X[s:e], dtype=dt)

    @staticmethod
    def matmul(A, B, out):
        cp.matmul(A, B, out=out)

    @staticmethod
    def sq_norms(A):
        return (A * A).sum(axis=1)

    @staticmethod
    def mask_times_y(Z, b, y):
        _launcher("mask_times_y", Z.dtype)(Z.data.ptr, _ld(Z), Z.shape[0], Z.shape[1], b.data.ptr,
                                           y.data.ptr, _stream())

    @staticmethod
    def relu_bias(Z, b):
        _launcher("relu_bias", Z.dtype)(Z.data.ptr, _ld(Z), Z.shape[0], Z.shape[1], b.data.ptr, _stream())

    @staticmethod
    def residual_workspace(rows, m):
        """r (rows,) and the column chunks' partial sums (2, _MAX_SPLITS, m), in double."""
        return cp.empty(rows, cp.float64), cp.empty(2 * _MAX_RESIDUAL_SPLITS * m, cp.float64)

    @staticmethod
    def relu_residual(Z, b, a, y, sq, ga, gb, ws):
        """The fused epilogue (csrc/cuda/network.cu): the columns' sums over up to 64 chunks of
        rows (enough thread blocks to fill the GPU when m is small), added here."""
        rows, m = Z.shape
        r, parts = ws
        splits = _column_splits(rows, m)
        parts = parts[: 2 * splits * m]
        _launcher("relu_residual", Z.dtype)(Z.data.ptr, _ld(Z), rows, m, b.data.ptr, a.data.ptr, y.data.ptr,
                                            r.data.ptr, parts.data.ptr, splits, _stream())
        sq += r[:rows] @ r[:rows]
        sums = parts.reshape(2, splits, m).sum(axis=1)
        ga += sums[0]
        gb += sums[1]

    @staticmethod
    def taylor_workspace(rows, m):
        """r (rows,) and the column chunks' partial sums (_MAX_RESIDUAL_SPLITS, m), in double."""
        return cp.empty(rows, cp.float64), cp.empty(_MAX_RESIDUAL_SPLITS * m, cp.float64)

    @staticmethod
    def taylor_residual(Z, bb, a1, a2, y, code, sq, gb, ws):
        """The fused Taylor epilogue (csrc/cuda/taylor.cu) on Z = [U0 | U]; the column chunks'
        sums are added here."""
        rows, m = Z.shape[0], a1.shape[0]
        r, parts = ws
        splits = _column_splits(rows, m)
        parts = parts[: splits * m]
        _launcher("taylor_residual", Z.dtype)(Z.data.ptr, _ld(Z), rows, m, bb.data.ptr, a1.data.ptr, a2.data.ptr,
                                              y.data.ptr, code, r.data.ptr, parts.data.ptr, splits, _stream())
        sq += r[:rows] @ r[:rows]
        gb += parts.reshape(splits, m).sum(axis=0)

    @staticmethod
    def taylor_forward(Z, bb, a1, a2, code, out):
        _launcher("taylor_forward", Z.dtype)(Z.data.ptr, _ld(Z), Z.shape[0], a1.shape[0], bb.data.ptr, a1.data.ptr,
                                             a2.data.ptr, code, out.data.ptr, _stream())

    @staticmethod
    def kernel_apply(kernel, G, X, sx, Z, sz):
        _launcher("kernel_matrix", G.dtype)(kernel.code, *kernel.p, G.data.ptr, _ld(G), G.shape[0],
                                            G.shape[1], sx.data.ptr, sz.data.ptr, _stream())

    @staticmethod
    def tile_cell_bytes(dt):
        return 0

    @staticmethod
    def kernel_workspace(rows, cols, k, dt):
        return Workspace(cp)

    @staticmethod
    def kernel_reduce(kernel, Xb, sx, Zc, szc, Vc, acc, ws, symmetric=False):
        """acc += K(Xb, Zc) Vc by the fused kernel (V float64 with float32 X: the mixed launcher,
        float32 kernel values times float64 V; ``symmetric`` changes nothing here). One launch runs ceil(rows / 64) thread blocks
        per chunk of Z; when that is too few to fill the GPU (small row blocks), Z is cut into up
        to 16 chunks of at least 256 rows, run as one grid, and the partial sums added here."""
        rows, d = Xb.shape
        nz, k = Vc.shape
        want = 4 * _sm_count(cp.cuda.runtime.getDevice())
        splits = max(1, min(_MAX_SPLITS, -(-want // -(-rows // _KERNEL_TX)), nz // 256))
        parts = ws.get("parts", (splits, rows, k), Vc.dtype)
        _launcher("kernel_matvec", Xb.dtype)(kernel.code, *kernel.p, Xb.data.ptr, rows, Zc.data.ptr, nz,
                                             d, sx.data.ptr, szc.data.ptr, Vc.data.ptr, k,
                                             parts.data.ptr, _stream(), splits, Vc.dtype != Xb.dtype)
        acc += parts.sum(axis=0, dtype=cp.float64)

    @staticmethod
    def gram_workspace(m, dt):
        return cp.empty((m, m), dt)

    @staticmethod
    def gram_update(P, G, ws):
        cp.matmul(P.T, P, out=ws)
        G += ws

    @staticmethod
    def gram_result(G):
        return G
