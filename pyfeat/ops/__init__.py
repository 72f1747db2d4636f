"""The hot operations: one public function each, backend dispatch inside.

Every op takes NumPy or CuPy arrays (rows are samples) of any real dtype and layout. The working
dtype is set by X: float32 when X is float32 (or narrower), float64 otherwise. X is converted block
by block (never copied whole); the smaller inputs (W, a, b, y, V, Z) are converted once to
contiguous arrays of the working dtype. NumPy in -> NumPy out, CuPy in -> CuPy out, whatever backend
runs the work (``backend=None``/"auto", "numba", "cuda", "numpy"; see ``pyfeat.backend``).
Sums over n accumulate in float64. Extra memory is bounded by ``block_size`` (rows per block)
or, when it is None, by ``pyfeat.backend.memory_budget()`` (64 MiB on the CPU, 1 GiB on the
GPU by default; environment variable PYFEAT_MEMORY_BUDGET_MB), independent of n.

Bad inputs raise ValueError/TypeError naming the argument; a forced backend that cannot run here
raises RuntimeError saying why.
"""

from __future__ import annotations

import numpy as np

from pyfeat import backend as _backend
from pyfeat import kernels as _kernels
from pyfeat.ops._common import working_dtype

__all__ = [
    "first_step_gradient",
    "relu_features",
    "relu_gram",
    "relu_predict",
    "kernel_matvec",
    "kernel_matrix",
]


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
    args = _Args("first_step_gradient", backend)
    X = args.matrix("X", X)
    n, d = X.shape
    y = args.vector("y", y, n)
    W = args.matrix("W", W, cols=d, cols_name="X.shape[1]")
    m = W.shape[0]
    a = args.vector("a", a, m, length_name="W.shape[0]")
    b = args.bias(b, m)
    out = args.impl().first_step_gradient(X, y, W, a, b, _block(block_size))
    return args.result(out)


def relu_features(X, W, b=None, *, backend=None, block_size=None):
    """Φ = relu(X Wᵀ + b), shape (n, m), in the working dtype (materialized: small n only)."""
    args = _Args("relu_features", backend)
    X = args.matrix("X", X)
    W = args.matrix("W", W, cols=X.shape[1], cols_name="X.shape[1]")
    b = args.bias(b, W.shape[0])
    return args.result(args.impl().relu_features(X, W, b, _block(block_size)))


def relu_gram(X, W, b, y=None, *, backend=None, block_size=None):
    """(ΦᵀΦ, Φᵀy) with Φ = relu(X Wᵀ + b), accumulated over row blocks (Φ never exists whole).

    y may be (n,), (n, k) or None (then the second result is None). Both results are float64
    (they feed a linear solve), shapes (m, m) and (m,) / (m, k).
    """
    args = _Args("relu_gram", backend)
    X = args.matrix("X", X)
    n, d = X.shape
    W = args.matrix("W", W, cols=d, cols_name="X.shape[1]")
    b = args.bias(b, W.shape[0])
    if y is not None:
        y = args.vector_or_matrix("y", y, n)
    G, c = args.impl().relu_gram(X, W, b, y, _block(block_size))
    return args.result(G), (None if c is None else args.result(c))


def relu_predict(X, W, b, a, *, backend=None, block_size=None):
    """f(X) = relu(X Wᵀ + b) a, streamed over row blocks; a (m,) -> (n,), a (m, k) -> (n, k)."""
    args = _Args("relu_predict", backend)
    X = args.matrix("X", X)
    W = args.matrix("W", W, cols=X.shape[1], cols_name="X.shape[1]")
    m = W.shape[0]
    b = args.bias(b, m)
    a = args.vector_or_matrix("a", a, m, length_name="W.shape[0]")
    return args.result(args.impl().relu_predict(X, W, b, a, _block(block_size)))


def kernel_matvec(X, Z, V, kernel="ntk", *, backend=None, block_size=None):
    """K(X, Z) @ V without forming K: (n_x, n_z) tiles of inner products X Zᵀ, the kernel
    function applied to each tile and reduced against V at once (see ``pyfeat.kernels``).

    X (n_x, d), Z (n_z, d), V (n_z,) or (n_z, k) -> (n_x,) or (n_x, k) in the working dtype
    (tiles accumulate in float64). ``kernel`` is a name or a ``pyfeat.kernels.get(...)`` result.
    """
    args = _Args("kernel_matvec", backend)
    kern = _kernels.get(kernel)
    X = args.matrix("X", X)
    Z = args.matrix("Z", Z, cols=X.shape[1], cols_name="X.shape[1]")
    V = args.vector_or_matrix("V", V, Z.shape[0], length_name="Z.shape[0]")
    V2 = V.reshape(-1, 1) if V.ndim == 1 else V
    out = args.impl().kernel_matvec(X, Z, V2, kern, _block(block_size))
    return args.result(out[:, 0] if V.ndim == 1 else out)


def kernel_matrix(X, Z=None, kernel="ntk", *, backend=None, block_size=None):
    """K(X, Z), shape (n_x, n_z), in the working dtype (Z=None means Z = X).

    The matrix is materialized (what the caller asked for); temporaries are bounded by blocks.
    """
    args = _Args("kernel_matrix", backend)
    kern = _kernels.get(kernel)
    X = args.matrix("X", X)
    Z = X if Z is None else args.matrix("Z", Z, cols=X.shape[1], cols_name="X.shape[1]")
    return args.result(args.impl().kernel_matrix(X, Z, kern, _block(block_size)))


# --------------------------------------------------------------------------------------------
# validation and dispatch


def _block(block_size):
    if block_size is None:
        return None
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size < 1:
        raise ValueError(f"block_size must be a positive integer or None, got {block_size!r}")
    return int(block_size)


class _Args:
    """Validates one call's arrays, moves them to the backend's device, and remembers whether
    the caller gave CuPy or NumPy arrays (the result comes back the same way)."""

    def __init__(self, op, backend):
        self.op = op
        self.backend = _backend.resolve(backend)
        self.on_gpu = self.backend == "cuda"
        self.cupy_in = None
        self.dtype = None

    def impl(self):
        if self.backend == "numba":
            from pyfeat.ops import _numba as impl
        elif self.backend == "cuda":
            from pyfeat.ops import _cuda as impl
        else:
            from pyfeat.ops import _reference as impl
        return impl

    def _to_device(self, name, x):
        if x is None:
            raise ValueError(f"{self.op}: {name} must be an array, got None")
        cupy_x = _backend.is_cupy(x)
        if self.cupy_in is None:
            self.cupy_in = cupy_x
        if self.on_gpu:
            import cupy

            return cupy.asarray(x)
        if cupy_x:
            return x.get()
        x = np.asarray(x)
        return x

    def _check_dtype(self, name, x):
        if x.dtype.kind not in "fiub" or x.dtype.itemsize > 8:
            raise TypeError(f"{self.op}: {name} must hold real numbers (float32/float64), got dtype {x.dtype}")

    def _check_finite(self, name, x):
        if x.size == 0:
            raise ValueError(f"{self.op}: {name} is empty (shape {x.shape})")
        xp = _backend.array_module(x)
        # one float64 sum: NaN/inf anywhere make it non-finite, without an n-sized temporary
        if not bool(xp.isfinite(xp.sum(x, dtype=xp.float64))):
            bad = "NaN" if bool(xp.isnan(x).any()) else "inf"
            raise ValueError(f"{self.op}: {name} contains {bad}; expected finite values")

    def matrix(self, name, x, cols=None, cols_name=None):
        """The first matrix fixes the working dtype; later inputs are converted to it."""
        x = self._to_device(name, x)
        self._check_dtype(name, x)
        if x.ndim != 2:
            raise ValueError(f"{self.op}: {name} must be a 2-D array, got shape {x.shape}")
        if cols is not None and x.shape[1] != cols:
            raise ValueError(
                f"{self.op}: {name} must have {cols} columns ({cols_name}), got shape {x.shape}"
            )
        self._check_finite(name, x)
        if self.dtype is None:
            self.dtype = working_dtype(x)
            return x  # X itself is converted block by block
        return self._small(x)

    def _small(self, x):
        xp = _backend.array_module(x)
        return xp.ascontiguousarray(x, dtype=self.dtype)

    def vector(self, name, x, length, length_name="X.shape[0]"):
        x = self._to_device(name, x)
        self._check_dtype(name, x)
        if x.ndim != 1 or x.shape[0] != length:
            raise ValueError(
                f"{self.op}: {name} must have shape ({length},) (length {length_name}), got {x.shape}"
            )
        self._check_finite(name, x)
        return self._small(x)

    def vector_or_matrix(self, name, x, length, length_name="X.shape[0]"):
        x = self._to_device(name, x)
        self._check_dtype(name, x)
        if x.ndim not in (1, 2) or x.shape[0] != length:
            raise ValueError(
                f"{self.op}: {name} must have shape ({length},) or ({length}, k) "
                f"(length {length_name}), got {x.shape}"
            )
        self._check_finite(name, x)
        return self._small(x)

    def bias(self, b, m):
        if b is None:
            xp = __import__("cupy") if self.on_gpu else np
            return xp.zeros(m, dtype=self.dtype)
        return self.vector("b", b, m, length_name="W.shape[0]")

    def result(self, out):
        gpu_out = _backend.is_cupy(out)
        if self.cupy_in and not gpu_out:
            import cupy

            return cupy.asarray(out)
        if not self.cupy_in and gpu_out:
            return out.get()
        return out
