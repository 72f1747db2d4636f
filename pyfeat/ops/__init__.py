"""The hot operations: one public function each, backend dispatch inside.

Every op takes NumPy or CuPy arrays (rows are samples) of any real dtype and layout. The working
dtype is set by X: float32 when X is float32 (or narrower), float64 otherwise. X is converted block
by block (never copied whole); the smaller inputs (W, a, b, y, V, Z) are converted once to
contiguous arrays of the working dtype. NumPy in -> NumPy out, CuPy in -> CuPy out (dask arrays: see
``pyfeat.ops._dask``; sums come back as NumPy, row-wise results as lazy dask arrays), whatever backend
runs the work (``backend=None``/"auto", "numba", "cuda", "numpy"; see ``pyfeat.backend``).
Sums over n accumulate in float64. Extra memory is bounded by ``block_size`` (rows per block)
or, when it is None, by ``pyfeat.backend.memory_budget()`` (64 MiB on the CPU, 1 GiB on the
GPU by default; environment variable PYFEAT_MEMORY_BUDGET_MB), independent of n.

Bad inputs raise ValueError/TypeError naming the argument; a forced backend that cannot run here
raises RuntimeError saying why.

Inside pyfeat, models and solvers validate their data once and call ``pyfeat.ops.blocked`` (the
same blocked loops, without checks or copies) on a ``device(backend)``. How the ops are built
(one loop per op, written against a small per-backend interface): ``pyfeat.ops._device``.
"""

from __future__ import annotations


import functools

import numpy as np

from pyfeat._dask import is_dask
from pyfeat._kernel_table import parse as _parse_kernel
from pyfeat._memory import hint
from pyfeat.ops import _dask, blocked
from pyfeat.ops._device import Device, device
from pyfeat.ops._validate import Args as _Args
from pyfeat.ops._validate import block_size as _block

__all__ = [
    "first_step_gradient",
    "relu_features",
    "relu_gram",
    "relu_predict",
    "kernel_matvec",
    "kernel_matrix",
    "device",
    "Device",
]


def _checked_arithmetic(op):
    """Run the op without NumPy's overflow warnings: a result that overflowed is reported as a
    ValueError by its checks instead (``_validate.Args.result``)."""

    @functools.wraps(op)
    def call(*args, **kwargs):
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            return op(*args, **kwargs)

    return call


@_checked_arithmetic
def first_step_gradient(X, y, W, a, b=None, *, backend=None, block_size=None):
    """First-step feature gradient of Algorithm 1: ∇_W L at a network with f ≡ 0.

    With L = (1/n) Σ_i (f(x_i) − y_i)², f(x) = aᵀ relu(W x + b) and f ≡ 0 (symmetric init),

        G_j = −(2/n) Σ_i y_i a_j 1[w_j·x_i + b_j ≥ 0] x_i        (G: m × d, row j = ∇_{w_j} L)

    computed as two GEMMs per row block with the mask fused between them: the n × m activation
    mask never exists beyond one block.

    Parameters
    ----------
    X : (n, d) array.  y : (n,) labels.  W : (m, d) first layer.  a : (m,) second layer.
    b : (m,) biases or None (zeros).

    Returns
    -------
    (m, d) array in the working dtype (accumulated in float64).
    """
    if is_dask(X):
        kw = {"backend": backend, "block_size": block_size}
        return _dask.first_step_gradient(X, y, W, a, b, kw)
    args = _Args("first_step_gradient", backend)
    X = args.matrix("X", X)
    n, d = X.shape
    y = args.vector("y", y, n)
    W = args.matrix("W", W, cols=d, cols_name="X.shape[1]")
    m = W.shape[0]
    a = args.vector("a", a, m, length_name="W.shape[0]")
    b = args.bias(b, m)
    out = blocked.first_step_gradient(args.device, X, y, W, a, b, _block(block_size))
    return args.result(out)


@_checked_arithmetic
def relu_features(X, W, b=None, *, backend=None, block_size=None):
    """Φ = relu(X Wᵀ + b), shape (n, m), in the working dtype (materialized: small n only)."""
    if is_dask(X):
        kw = {"backend": backend, "block_size": block_size}
        return _dask.relu_features(X, W, b, kw)
    args = _Args("relu_features", backend)
    X = args.matrix("X", X)
    W = args.matrix("W", W, cols=X.shape[1], cols_name="X.shape[1]")
    b = args.bias(b, W.shape[0])
    with hint(f"relu_features: the {X.shape[0]} × {W.shape[0]} feature matrix",
              "the number of rows, or use relu_gram / relu_predict, which stream over them"):
        return args.result(blocked.relu_features(args.device, X, W, b, _block(block_size)))


@_checked_arithmetic
def relu_gram(X, W, b, y=None, *, backend=None, block_size=None):
    """(ΦᵀΦ, Φᵀy) with Φ = relu(X Wᵀ + b), accumulated over row blocks (Φ never exists whole).

    y may be (n,), (n, k) or None (then the second result is None). Both results are float64
    (they feed a linear solve), shapes (m, m) and (m,) / (m, k).
    """
    if is_dask(X):
        kw = {"backend": backend, "block_size": block_size}
        return _dask.relu_gram(X, W, b, y, kw)
    args = _Args("relu_gram", backend)
    X = args.matrix("X", X)
    n, d = X.shape
    W = args.matrix("W", W, cols=d, cols_name="X.shape[1]")
    b = args.bias(b, W.shape[0])
    if y is not None:
        y = args.vector_or_matrix("y", y, n)
    G, c = blocked.relu_gram(args.device, X, W, b, y, _block(block_size))
    return args.result(G), (None if c is None else args.result(c))


@_checked_arithmetic
def relu_predict(X, W, b, a, *, backend=None, block_size=None):
    """f(X) = relu(X Wᵀ + b) a, streamed over row blocks; a (m,) -> (n,), a (m, k) -> (n, k)."""
    if is_dask(X):
        kw = {"backend": backend, "block_size": block_size}
        return _dask.relu_predict(X, W, b, a, kw)
    args = _Args("relu_predict", backend)
    X = args.matrix("X", X)
    W = args.matrix("W", W, cols=X.shape[1], cols_name="X.shape[1]")
    m = W.shape[0]
    b = args.bias(b, m)
    a = args.vector_or_matrix("a", a, m, length_name="W.shape[0]")
    return args.result(blocked.relu_predict(args.device, X, W, b, a, _block(block_size)))


@_checked_arithmetic
def kernel_matvec(X, Z, V, kernel="ntk", *, backend=None, block_size=None):
    """K(X, Z) @ V without forming K: (n_x, n_z) tiles of inner products X Zᵀ, the kernel
    function applied to each tile and reduced against V at once (see ``pyfeat.kernels``).

    X (n_x, d), Z (n_z, d), V (n_z,) or (n_z, k) -> (n_x,) or (n_x, k) in the working dtype
    (tiles accumulate in float64). ``kernel`` is a name or a ``pyfeat.kernels.get(...)`` result.
    """
    if is_dask(X):
        kw = {"backend": backend, "block_size": block_size}
        return _dask.kernel_matvec(X, Z, V, _parse_kernel(kernel), kw)
    args = _Args("kernel_matvec", backend)
    kern = args.kernel(kernel)
    X = args.matrix("X", X)
    Z = args.matrix("Z", Z, cols=X.shape[1], cols_name="X.shape[1]")
    V = args.vector_or_matrix("V", V, Z.shape[0], length_name="Z.shape[0]")
    V2 = V.reshape(-1, 1) if V.ndim == 1 else V
    out = blocked.kernel_matvec(args.device, X, Z, V2, kern, _block(block_size))
    return args.result(out[:, 0] if V.ndim == 1 else out)


@_checked_arithmetic
def kernel_matrix(X, Z=None, kernel="ntk", *, backend=None, block_size=None):
    """K(X, Z), shape (n_x, n_z), in the working dtype (Z=None means Z = X).

    The matrix is materialized (what the caller asked for); temporaries are bounded by blocks.
    """
    if is_dask(X):
        kw = {"backend": backend, "block_size": block_size}
        return _dask.kernel_matrix(X, Z, _parse_kernel(kernel), kw)
    args = _Args("kernel_matrix", backend)
    kern = args.kernel(kernel)
    X = args.matrix("X", X)
    Z = X if Z is None else args.matrix("Z", Z, cols=X.shape[1], cols_name="X.shape[1]")
    with hint(f"kernel_matrix: the {X.shape[0]} × {Z.shape[0]} kernel matrix",
              "the number of rows, or use kernel_matvec, which never forms the matrix"):
        return args.result(blocked.kernel_matrix(args.device, X, Z, kern, _block(block_size)))
