"""The per-backend interface the blocked loops of ``pyfeat.ops.blocked`` are written against.

A :class:`Device` gives the loops an array module, a memory budget, an executor and a handful
of primitives; the loops themselves (row blocks, column tiles, float64 accumulation) exist once,
in ``pyfeat.ops.blocked``, so a backend adds only primitives:

=================================  ==========================================================
``xp``, ``budget()``, ``workers``  array module; bytes of temporaries per call; parallel workers
``run(n, rows, make_state, step)`` the executor: every row block [s, e) of range(n) is passed
                                   to ``step(state, s, e)`` on some worker's ``state``
                                   (``make_state()`` once per worker); returns the states in
                                   worker order (serial: one state); ``tiled=True``: the steps
                                   run many small GEMMs (the kernel ops' tiles)
``block(X, s, e, dt)``             rows s:e of X, contiguous, in dtype dt, on the device
``matmul(A, B, out)``              out = A @ B (GEMM into a buffer)
``relu_bias(Z, b)``                Z ← max(Z + b, 0) in place (ReLU epilogue)
``mask_times_y(Z, b, y)``          Z[i, j] ← y_i 1[Z_ij + b_j ≥ 0] in place (mask epilogue)
``relu_residual(Z, b, a, y, sq,``  the network-gradient epilogue, per row i of the block:
``ga, gb, ws)``                     r_i = Σ_j a_j relu(Z_ij + b_j) − y_i; sq += Σ_i r_i²,
                                   ga_j += Σ_i r_i relu(Z_ij + b_j), gb_j += Σ_i r_i 1[Z_ij + b_j ≥ 0]
                                   (float64 sq (1,), ga, gb (m,)); then Z_ij ← r_i 1[Z_ij + b_j ≥ 0]
                                   in place; ``ws = residual_workspace(rows, m)`` its scratch
``taylor_residual(Z, bb, a1, a2,`` the Taylor-model epilogue (csrc/include/pyfeat/taylor_math.hpp),
``y, code, sq, gb, ws)``           per row i of Z = [U0 | U] (rows × 2m, before the biases bb), with
                                   term and slope of taylor_neuron:
                                   r_i = Σ_j term_ij − y_i; sq += Σ_i r_i², gb_j += Σ_i r_i slope_ij,
                                   Z_ij ← r_i slope_ij for j < m (in place); ``ws =
                                   taylor_workspace(rows, m)`` its scratch
``taylor_forward(Z, bb, a1, a2,``  out_i = Σ_j term_ij (the Taylor model's predictions)
``code, out)``
``kernel_apply(k, G, X, sx, Z, sz)`` G ← k(G, sx, sz) in place (kernel epilogue of a GEMM tile
                                   G = X Zᵀ; X, Z for the pairs a kernel evaluates from the rows)
``kernel_store(k, G, X, sx, Z, sz,`` R[:, c:c + G.shape[1]] ← k(G, sx, sz) (the epilogue of a
``R, c)``                          tile of a wider output; default: kernel_apply, then a copy)
``writes_kernel(k, d)``,           whether kernel_matrix's tiles come from kernel_write(k, X, sx,
``kernel_write(...)``              Z, sz, R): R ← K(X, Z) with no GEMM tile (default: no; CPU:
                                   the cosine kernels on the AVX-512 SIMD loop)
``kernel_gram_reduce(k, ..., acc)`` acc += K_bᵀ(K_b V) for one row block, K_b evaluated once
                                   (Falkon's fused Nyström product)
``kernel_reduce(k, ..., acc, ws,`` acc += K(X_b, Z_c) V_c for one tile, fused (the kernel tile
``symmetric=False)``               reduction; CPU: GEMM + fused pass, or one SIMD loop for
                                   the cosine kernels; GPU: one fused kernel); ``symmetric``:
                                   a diagonal block of the symmetric product
``symmetric_reduce(k, n_cols, d)``  whether kernel_matvec(X, X, V) takes each pair once, with
``kernel_reduce_pair(k, X_b, sx,`` acc += K(X_b, Z_c) V_c and acc_z += K(X_b, Z_c)ᵀ V_b from one
``Z_c, sz, V_c, V_b, acc, acc_z,`` evaluation of the tile (default: no; CPU: every kernel, on
``ws)``                            the SIMD loop or the BLAS tile)
``kernel_tile``, ``reduce_tile(k,`` the largest tile (rows, columns of 4-byte values) of the
``n_cols, d, symmetric=False)``    kernel ops, and of kernel_reduce for kernel k, V's columns, d
``gram_update(P, G, ws)``          G += PᵀP (float64 G; the CPU fills only its upper triangle)
``gram_result(G)``                 the full symmetric Gram from the accumulated G
``sq_norms(A)``                    |a_i|² per row
=================================  ==========================================================

``device(backend)`` returns the Device of a backend name ("numba", "cuda", "numpy"). The
"numpy" device is the float64 reference: ``reference = True`` and the loops hand the call to
``pyfeat.ops._reference`` (an independent oracle for the tests, not written on the loops).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from pyfeat import backend as _backend
from pyfeat.ops._plan import blocks


class Device:
    """Defaults shared by the devices (a serial executor); see the module docstring."""

    name = "?"
    xp = np
    reference = False
    workers = 1
    kind = "cpu"  # which memory budget applies

    def budget(self) -> int:
        return _backend.memory_budget(self.kind)

    def run(self, n, rows, make_state, step, tiled=False):
        state = make_state()
        for s, e in blocks(n, rows):
            step(state, s, e)
        return [state]

    def reduce_tile(self, kernel, n_cols, d, symmetric=False):
        return self.kernel_tile

    def symmetric_reduce(self, kernel, n_cols, d):
        return False

    @staticmethod
    def writes_kernel(kernel, d):
        return False

    def kernel_store(self, kernel, G, X, sx, Z, sz, R, col):
        self.kernel_apply(kernel, G, X, sx, Z, sz)
        R[:, col : col + G.shape[1]] = G

    def kernel_gram_reduce(self, kernel, Xb, sx, C, sc, V, acc, ws):
        """acc += K_bᵀ(K_b V) from the primitives: K_b = K(Xb, C) by one GEMM and the kernel
        epilogue, then two products in V's dtype (the float32 block cast once for a float64 V)."""
        G = self.xp.empty((Xb.shape[0], C.shape[0]), Xb.dtype) if ws is None else ws.get("tile", (Xb.shape[0], C.shape[0]), Xb.dtype)
        self.matmul(Xb, C.T, G)
        self.kernel_apply(kernel, G, Xb, sx, C, sc)
        K = G if G.dtype == V.dtype else G.astype(V.dtype)
        acc += K.T @ (K @ V)

    def asarray(self, x, dtype=None):
        """x on this device (a copy only when it lives elsewhere or has another dtype)."""
        return self.xp.asarray(x, dtype=dtype)

    def __repr__(self):
        return f"<pyfeat device {self.name!r}>"


class Workspace:
    """One worker's buffers for the kernel primitives (``Device.kernel_workspace``), allocated on
    first use and reused: ``get(name, shape, dtype)`` is a view of the buffer ``name`` (the
    first tile of a call is its largest, so it is allocated once per call)."""

    def __init__(self, xp):
        self.xp = xp
        self._buffers = {}

    def get(self, name, shape, dtype):
        size = math.prod(shape)
        buf = self._buffers.get(name)
        if buf is None or buf.size < size or buf.dtype != dtype:
            buf = self._buffers[name] = self.xp.empty(size, dtype)
        return buf[:size].reshape(shape)


class ReferenceDevice(Device):
    """The "numpy" backend: NumPy arrays, every op computed by ``pyfeat.ops._reference``."""

    name = "numpy"
    reference = True


@functools.lru_cache(maxsize=None)
def _make(name):
    if name == "numba":
        from pyfeat.ops._numba import NumbaDevice

        return NumbaDevice()
    if name == "cuda":
        from pyfeat.ops._cuda import CudaDevice

        return CudaDevice()
    return ReferenceDevice()


def device(backend: str | Device | None = None) -> Device:
    """The Device of ``backend``: what ``pyfeat.ops.blocked`` runs its loops on.

    Models and solvers place their data on it once per fit and call the blocked loops
    directly (no checks, no copies); one Device exists per backend and process.

    Parameters
    ----------
    backend : {None, "auto", "numba", "cuda", "numpy"} or Device, default None
        A backend name, resolved by ``pyfeat.backend.resolve``; a Device is returned as is.

    Returns
    -------
    Device
        Its ``name`` is the resolved backend; ``xp`` its array module, ``budget()`` its bytes
        of temporaries per call (see ``pyfeat.ops._device``).

    Raises
    ------
    ValueError
        For an unknown backend name.
    RuntimeError
        When "cuda" cannot run here.

    Examples
    --------
    >>> import pyfeat as pf
    >>> dev = pf.ops.device("numpy")
    >>> dev, dev.reference, dev.xp.__name__
    (<pyfeat device 'numpy'>, True, 'numpy')
    >>> pf.ops.device(dev) is dev
    True
    """
    if isinstance(backend, Device):
        return backend
    return _make(_backend.resolve(backend))
